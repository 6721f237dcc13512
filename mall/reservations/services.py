"""Reserve, cancel, look up, pick up and expire reservations. Services flush only.

Lock order, the same as a till payment's (mall.payments.services): the household row (only
when reserving: it serialises one household's reservations, so the open-reservation limit
holds), the reservation row (its conditional status change), the goods rows in id order,
then the ledger accounts (mall.ledger). Every resolution of a reservation is one
`UPDATE reservations SET status = ... WHERE id = :id AND status = 'open'`: of two
concurrent resolutions (a pickup and an expiry, two cancels, two job runners) exactly one
changes the row; the other finds nothing to change and is refused or skips it.

A pickup becomes a completed payment of `code_kind` "pickup": its points entry (kind
`points_redeemed`, partner payable credited, idempotency key `pay:{public id}:points`) captures the
hold, and its items carry the goods' settlement prices, so statements, reconciliation,
refunds and reports count it exactly like points goods redeemed at the till.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import Table, func, select, update
from sqlalchemy.orm import Session, selectinload

from mall.catalog.models import Goods
from mall.catalog.services import goods_by_sku, restore_stock, take_stock
from mall.clock import as_aware, business_date, local_zone, utcnow
from mall.db import add_unique, lock_row
from mall.errors import Conflict, Forbidden, NotFound, ValidationFailed
from mall.ledger.accounts import household_wallet, partner_payable
from mall.ledger.holds import capture_hold, place_hold, void_hold
from mall.ledger.models import HOUSEHOLD_POINTS, POINTS
from mall.ledger.posting import Source
from mall.partners.models import Partner
from mall.payments.models import Payment, PaymentItem
from mall.payments.services import ItemRequest, new_public_id
from mall.ratings import services as ratings
from mall.regions.models import Region
from mall.regions.services import effective_settings
from mall.reservations.labels import end_reason_label, status_label
from mall.reservations.models import OPEN_PICKUP_CODE_INDEX, Reservation, ReservationLine
from mall.subjects.models import CreditSubject

_reservations: Table = Reservation.__table__  # type: ignore[assignment]

MAX_LINES = 20
CODE_DIGITS = 8
CODE_ATTEMPTS = 5  # inserts refused because a concurrent reservation drew the same code
EXPIRY_ACTOR = "system:reservation-expiry"
PICKUP_CODE_KIND = "pickup"


@dataclass(frozen=True)
class Limits:
    """The region's reservation settings for a household (mall.regions DEFAULT_SETTINGS)."""

    days: int
    max_open: int
    max_qty: int


def limits_for(session: Session, subject: CreditSubject) -> Limits:
    village = session.get(Region, subject.village_id)
    assert village is not None
    settings = effective_settings(session, village)
    return Limits(
        days=max(1, int(settings["reservation_days"])),
        max_open=max(0, int(settings["reservation_max_open"])),
        max_qty=max(1, int(settings["reservation_max_qty"])),
    )


# ---------------------------------------------------------------- pickup codes


def new_pickup_code() -> str:
    """Eight random digits: easy to read aloud and to type on a till's keypad. 10^8 codes
    against the few open reservations of one partner (codes are looked up only within the
    partner that holds the reservation) and a limit on wrong lookups per terminal
    (mall.http.ratelimits) make guessing impractical."""
    return "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))


def normalize_code(raw: object) -> str | None:
    """The code as typed or scanned ("1234 5678", "1234-5678", full-width digits): its eight
    digits, or None when it cannot be one."""
    if not isinstance(raw, str) or len(raw) > 40:
        return None
    kept = [ch for ch in raw if not ch.isspace() and ch not in "-_"]
    digits = "".join(str(int(ch)) if ch.isdecimal() else "x" for ch in kept)
    if len(digits) != CODE_DIGITS or not digits.isdigit():
        return None
    return digits


def format_code(code: str) -> str:
    """As shown and read aloud: two groups of four (1234 5678)."""
    return f"{code[:4]} {code[4:]}"


def _unused_code(session: Session, partner_id: int) -> str:
    """A new code no open reservation of the partner holds, as far as this transaction sees
    (one drawn at the same moment by another reservation is not seen: `_add_with_a_free_code`)."""
    for _ in range(20):
        code = new_pickup_code()
        taken = session.scalar(
            select(Reservation.id).where(
                Reservation.partner_id == partner_id,
                Reservation.pickup_code == code,
                Reservation.status == "open",
            )
        )
        if taken is None:
            return code
    raise Conflict(details={"reason": "no free pickup code"})  # pragma: no cover


class _CodeDrawnMeanwhile(Exception):
    """Another open reservation of the partner took the pickup code first."""


def _add_with_a_free_code(session: Session, reservation: Reservation) -> None:
    """Insert the reservation (and its lines) with a pickup code no other open reservation of
    its partner holds. Two reservations at one partner drawing the same code at once both
    pass `_unused_code` (neither sees the other's uncommitted row), and the partial unique
    index makes the second INSERT wait for the first and then refuses it: the INSERT runs in
    a savepoint (`add_unique`), so the refusal undoes only it, and it is tried again with a
    fresh code. After CODE_ATTEMPTS refusals, a conflict (409), never a 500."""
    for _ in range(CODE_ATTEMPTS):
        reservation.pickup_code = _unused_code(session, reservation.partner_id)
        try:
            add_unique(session, reservation, _CodeDrawnMeanwhile(), only=OPEN_PICKUP_CODE_INDEX)
        except _CodeDrawnMeanwhile:
            continue  # the savepoint's rollback made the reservation transient again
        return
    raise Conflict(details={"reason": "no free pickup code"})


def _deadline(now: datetime, days: int) -> datetime:
    """The end of the local day `days` after today: a household reserving on Monday with
    7 days may collect until the next Monday closes."""
    last_day = business_date(now) + timedelta(days=days + 1)
    # In UTC: SQLite keeps the wall time without its zone, and readers take it as UTC.
    return datetime.combine(last_day, time.min, tzinfo=local_zone()).astimezone(UTC)


# ---------------------------------------------------------------- reserving


def _merge(items: list[ItemRequest], max_qty: int) -> dict[str, int]:
    if not items:
        raise ValidationFailed(details={"fields": {"items": ["at least one item"]}})
    if len(items) > MAX_LINES:
        raise ValidationFailed(details={"fields": {"items": [f"at most {MAX_LINES}"]}})
    merged: dict[str, int] = {}
    for item in items:
        if type(item.qty) is not int or item.qty <= 0:
            raise ValidationFailed(details={"fields": {"items": ["qty: a positive integer"]}})
        merged[item.sku] = merged.get(item.sku, 0) + item.qty
    over = sorted(sku for sku, qty in merged.items() if qty > max_qty)
    if over:
        raise Conflict(
            "reservation_limit_reached", details={"skus": over, "max_qty_per_item": max_qty}
        )
    return merged


def _partner_for(session: Session, subject: CreditSubject, partner_id: int) -> Partner:
    partner = session.get(Partner, partner_id)
    if partner is None or partner.county_id != subject.county_id:
        raise NotFound(details={"partner_id": partner_id})
    if not partner.active or not partner.accepts_points:
        raise Forbidden("partner_not_eligible", details={"reason": "points"})
    return partner


def _replayed(
    session: Session, subject: CreditSubject, client_key: str, partner_id: int, merged: dict
) -> Reservation | None:
    found = session.scalar(
        select(Reservation)
        .where(Reservation.subject_id == subject.id, Reservation.client_key == client_key)
        .options(selectinload(Reservation.lines))
    )
    if found is None:
        return None
    if found.partner_id != partner_id or {ln.sku: ln.qty for ln in found.lines} != merged:
        raise Conflict("idempotency_conflict", details={"idempotency_key": client_key})
    return found


def reserve(
    session: Session,
    subject: CreditSubject,
    partner_id: int,
    items: list[ItemRequest],
    *,
    client_key: str | None = None,
) -> Reservation:
    """Hold the points and take the stock of `items` at the partner for the household, and
    give it a pickup code. A repeat with the same `client_key` returns the first reservation.
    Refusals: holder_suspended, level_too_low, partner_not_eligible, not_found (goods or
    partner), out_of_stock, insufficient_points, reservation_limit_reached."""
    # One household's reservations run one at a time, so the limits below hold under races;
    # and the household is judged as it is now (a freeze may have landed since it was loaded).
    lock_row(session, subject)
    if subject.status != "active":
        raise Forbidden("holder_suspended")
    limits = limits_for(session, subject)
    merged = _merge(items, limits.max_qty)
    partner = _partner_for(session, subject, partner_id)
    if client_key is not None:
        found = _replayed(session, subject, client_key, partner.id, merged)
        if found is not None:
            return found
    open_count = session.scalar(
        select(func.count(Reservation.id)).where(
            Reservation.subject_id == subject.id, Reservation.status == "open"
        )
    )
    if (open_count or 0) >= limits.max_open:
        raise Conflict("reservation_limit_reached", details={"max_open": limits.max_open})
    goods = goods_by_sku(session, partner.id, list(merged))
    missing = [sku for sku in merged if sku not in goods or not goods[sku].active]
    if missing:
        raise NotFound(details={"skus": missing})
    level = ratings.current_level(session, subject)
    rank = level.rank if level is not None else 0
    for sku in merged:
        needed = goods[sku].min_level_rank
        if needed is not None and rank < needed:
            raise Forbidden("level_too_low", details={"sku": sku, "min_level_rank": needed})
    ordered = sorted((goods[sku] for sku in merged), key=lambda g: g.id)
    for g in ordered:
        take_stock(session, g.id, merged[g.sku])
    points_total = sum(g.points_price * merged[g.sku] for g in ordered)
    now = utcnow()
    public_id = new_public_id("rsv_")
    expires_at = _deadline(now, limits.days)
    hold = place_hold(
        session,
        account=household_wallet(session, subject, HOUSEHOLD_POINTS),
        counter_account=partner_payable(session, subject.township_id, partner.id, POINTS),
        amount=points_total,
        actor=f"household:{subject.ref}",
        reason=f"{partner.name} 预约兑换",
        source=Source("reservation", public_id),
        expires_at=expires_at,
        idempotency_key=f"rsv:{public_id}:points",
    )
    reservation = Reservation(
        public_id=public_id,
        partner_id=partner.id,
        subject_id=subject.id,
        township_id=subject.township_id,
        status="open",
        points_total=points_total,
        points_hold_id=hold.id,
        expires_at=expires_at,
        created_at=now,
        client_key=client_key,
        lines=[
            ReservationLine(
                goods_id=g.id,
                sku=g.sku,
                name=g.name,
                qty=merged[g.sku],
                points_price=g.points_price,
                settlement_price_fen=g.settlement_price_fen,
            )
            for g in ordered
        ],
    )
    _add_with_a_free_code(session, reservation)
    return reservation


# ---------------------------------------------------------------- reads


def list_for_subject(
    session: Session, subject: CreditSubject, limit: int = 50
) -> list[Reservation]:
    """The household's reservations, newest first."""
    return list(
        session.scalars(
            select(Reservation)
            .where(Reservation.subject_id == subject.id)
            .options(selectinload(Reservation.lines))
            .order_by(Reservation.id.desc())
            .limit(limit)
        )
    )


def get_for_subject(session: Session, subject: CreditSubject, public_id: str) -> Reservation:
    found = session.scalar(select(Reservation).where(Reservation.public_id == public_id[:40]))
    if found is None or found.subject_id != subject.id:
        raise NotFound()
    return found


def find_for_partner(session: Session, partner_id: int, raw_code: object) -> Reservation:
    """The partner's reservation with this pickup code: the open one, else the latest (so a
    second pickup is told invalid_state). Another partner's code answers not_found."""
    code = normalize_code(raw_code)
    if code is None:
        raise NotFound()
    found = session.scalar(
        select(Reservation)
        .where(Reservation.partner_id == partner_id, Reservation.pickup_code == code)
        .order_by((Reservation.status == "open").desc(), Reservation.id.desc())
        .limit(1)
    )
    if found is None:
        raise NotFound()
    return found


# ---------------------------------------------------------------- resolving


def _claim(
    session: Session,
    reservation: Reservation,
    status: str,
    *,
    actor: str,
    now: datetime,
    end_reason: str | None = None,
    payment_id: int | None = None,
    picked_points: int | None = None,
    before_deadline: bool = False,
) -> None:
    """Flip the reservation from open to `status`, exactly once (or invalid_state)."""
    stmt = update(_reservations).where(
        _reservations.c.id == reservation.id, _reservations.c.status == "open"
    )
    if before_deadline:
        stmt = stmt.where(_reservations.c.expires_at > now)
    result = session.execute(
        stmt.values(
            status=status,
            resolved_at=now,
            resolved_by=actor,
            end_reason=end_reason,
            payment_id=payment_id,
            picked_points=picked_points,
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.expire(reservation)
        state = reservation.status
        if state == "open":
            state = "expired"  # open but past its deadline
        raise Conflict("invalid_state", details={"status": state})
    session.expire(reservation)


def _restore(session: Session, lines: list[tuple[int, int]]) -> None:
    for goods_id, qty in sorted(lines):
        restore_stock(session, goods_id, qty)


def _release(
    session: Session, reservation: Reservation, status: str, end_reason: str, actor: str
) -> None:
    """Cancel or expire: status first (the row lock), then stock, then the hold."""
    lines = [(ln.goods_id, ln.qty) for ln in reservation.lines]
    township_id, hold_id = reservation.township_id, reservation.points_hold_id
    _claim(session, reservation, status, actor=actor, now=utcnow(), end_reason=end_reason)
    _restore(session, lines)
    # Conflict: the ledger's own hold expiry released it already (at the same deadline).
    with contextlib.suppress(Conflict):
        void_hold(session, township_id=township_id, hold_id=hold_id, actor=actor)
    session.flush()


def cancel(session: Session, subject: CreditSubject, public_id: str) -> Reservation:
    """The household cancels before pickup: hold and stock released. After: invalid_state."""
    reservation = get_for_subject(session, subject, public_id)
    if reservation.status != "open":
        raise Conflict("invalid_state", details={"status": reservation.status})
    _release(
        session, reservation, "cancelled", "cancelled_by_household", f"household:{subject.ref}"
    )
    return reservation


def _picked(reservation: Reservation, items: list[ItemRequest] | None) -> dict[int, int]:
    """Quantity handed over per line: all when `items` is None, else as listed (lines not
    listed: none of them)."""
    if items is None:
        return {ln.id: ln.qty for ln in reservation.lines}
    by_sku = {ln.sku: ln for ln in reservation.lines}
    picked = {ln.id: 0 for ln in reservation.lines}
    for item in items:
        line = by_sku.get(item.sku)
        if line is None:
            raise ValidationFailed(details={"fields": {"items": [f"{item.sku}: not reserved"]}})
        if type(item.qty) is not int or item.qty < 0:
            raise ValidationFailed(details={"fields": {"items": ["qty: 0 or more"]}})
        picked[line.id] += item.qty
        if picked[line.id] > line.qty:
            raise ValidationFailed(
                details={"fields": {"items": [f"{item.sku}: at most {line.qty}"]}}
            )
    if not any(picked.values()):
        raise ValidationFailed(details={"fields": {"items": ["at least one item (or cancel)"]}})
    return picked


def pickup(
    session: Session,
    partner: Partner,
    raw_code: object,
    items: list[ItemRequest] | None = None,
    *,
    actor: str,
    terminal_id: int | None = None,
    cashier_user_id: int | None = None,
) -> Reservation:
    """Hand the goods over at the reservation's partner: the hold is captured for what was
    handed over (less when something is missing: the rest of the hold is released and the
    missing stock put back). A second pickup, or one after the deadline: invalid_state."""
    reservation = find_for_partner(session, partner.id, raw_code)
    if reservation.status != "open":
        raise Conflict("invalid_state", details={"status": reservation.status})
    picked = _picked(reservation, items)
    lines = list(reservation.lines)
    points = sum(ln.points_price * picked[ln.id] for ln in lines)
    now = utcnow()
    bdate = business_date(now)
    payment = Payment(
        public_id=new_public_id("pay_"),
        partner_id=partner.id,
        terminal_id=terminal_id,
        cashier_user_id=cashier_user_id,
        township_id=reservation.township_id,
        subject_id=reservation.subject_id,
        origin="online",
        code_kind=PICKUP_CODE_KIND,
        status="completed",
        amount_fen=0,
        discount_rate_bp=0,
        integrity_discount_fen=0,
        points_cost=points,
        points_settlement_fen=sum(ln.settlement_price_fen * picked[ln.id] for ln in lines),
        cash_due_fen=0,
        external_ref=reservation.public_id,
        business_date=bdate,
        created_at=now,
        captured_at=now,
        items=[
            PaymentItem(
                goods_id=ln.goods_id,
                sku=ln.sku,
                name=ln.name,
                qty=picked[ln.id],
                points_price=ln.points_price,
                settlement_price_fen=ln.settlement_price_fen,
            )
            for ln in lines
            if picked[ln.id] > 0
        ],
    )
    session.add(payment)
    session.flush()
    _claim(
        session,
        reservation,
        "picked_up",
        actor=actor,
        now=now,
        payment_id=payment.id,
        picked_points=points,
        before_deadline=True,
    )
    for ln in lines:
        ln.picked_qty = picked[ln.id]
    _restore(session, [(ln.goods_id, ln.qty - picked[ln.id]) for ln in lines])
    entry = capture_hold(
        session,
        township_id=reservation.township_id,
        hold_id=reservation.points_hold_id,
        actor=actor,
        amount=points,
        kind="points_redeemed",
        reason=f"{partner.name} 积分兑换(预约取货)",
        idempotency_key=f"pay:{payment.public_id}:points",
        business_date=bdate,
    )
    payment.points_entry_id = entry.entry_id
    session.flush()
    return reservation


def expire_reservations(session: Session, now: datetime | None = None, limit: int = 500) -> int:
    """Reservations past their deadline: hold and stock released, reason recorded. Returns
    how many. Run by the jobs command; two runners at once never release one twice (rows
    taken FOR UPDATE SKIP LOCKED on PostgreSQL, and the conditional status change)."""
    now = now or utcnow()
    stmt = (
        select(Reservation.id)
        .where(Reservation.status == "open", Reservation.expires_at <= now)
        .order_by(Reservation.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    count = 0
    for reservation_id in list(session.scalars(stmt)):
        reservation = session.get(Reservation, reservation_id)
        assert reservation is not None
        try:
            _release(session, reservation, "expired", "not_collected_in_time", EXPIRY_ACTOR)
        except Conflict:
            continue  # resolved meanwhile (picked up or cancelled): once, elsewhere
        count += 1
    return count


# ---------------------------------------------------------------- views


def reserved_qty(session: Session, goods_ids: list[int]) -> dict[int, int]:
    """Units of each goods row held by open reservations (already out of its stock)."""
    if not goods_ids:
        return {}
    rows = session.execute(
        select(ReservationLine.goods_id, func.sum(ReservationLine.qty))
        .join(Reservation, Reservation.id == ReservationLine.reservation_id)
        .where(ReservationLine.goods_id.in_(goods_ids), Reservation.status == "open")
        .group_by(ReservationLine.goods_id)
    ).all()
    return {int(g): int(q) for g, q in rows}


def is_past_deadline(reservation: Reservation, now: datetime | None = None) -> bool:
    return as_aware(reservation.expires_at) <= (now or utcnow())


def reservation_dict(session: Session, reservation: Reservation) -> dict[str, Any]:
    """What the household and the till see (the till adds the holder)."""
    partner = session.get(Partner, reservation.partner_id)
    payment = session.get(Payment, reservation.payment_id) if reservation.payment_id else None
    return {
        "reservation_id": reservation.public_id,
        "status": reservation.status,
        "pickup_code": reservation.pickup_code,
        "pickup_code_display": format_code(reservation.pickup_code),
        "partner": {
            "id": reservation.partner_id,
            "name": partner.name if partner else "",
            "address": partner.address if partner else "",
        },
        "items": [
            {
                "sku": ln.sku,
                "name": ln.name,
                "qty": ln.qty,
                "points_price": ln.points_price,
                "points": ln.points_price * ln.qty,
                "picked_qty": ln.picked_qty,
            }
            for ln in reservation.lines
        ],
        "points_total": reservation.points_total,
        "picked_points": reservation.picked_points,
        "expires_at": as_aware(reservation.expires_at),
        # the last local day to collect (the deadline is that day's midnight)
        "collect_by": business_date(as_aware(reservation.expires_at) - timedelta(seconds=1)),
        "created_at": as_aware(reservation.created_at),
        "resolved_at": as_aware(reservation.resolved_at) if reservation.resolved_at else None,
        "end_reason": reservation.end_reason,
        "end_reason_label": end_reason_label(reservation.end_reason),
        "status_label": status_label(reservation.status),
        "payment_id": payment.public_id if payment else None,
    }


def goods_for_reservation(session: Session, partner_id: int) -> list[Goods]:
    """The partner's active goods (for the reserve page)."""
    return list(
        session.scalars(
            select(Goods)
            .where(Goods.partner_id == partner_id, Goods.active.is_(True))
            .order_by(Goods.points_price, Goods.sku)
        )
    )
