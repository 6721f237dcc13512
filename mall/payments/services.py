"""Scan, quote, pay (one phase or two), capture, void and expire.

Every move of money or points goes through the ledger (`mall.ledger`): a captured payment
posts `integrity_spent` / `points_redeemed` entries, an authorisation places holds; their
idempotency keys derive from the payment's public id, so a payment can never post twice. Services
flush only; the caller commits once.

Order inside a payment, chosen for correctness under concurrency (PostgreSQL):
1. verify the code (no lock);
2. spend the dynamic code (a primary key; concurrent spends of one code wait here and all
   but one fail) or check the card PIN (locks the household row: card payments of one
   household run one at a time);
3. take catalogue stock (conditional UPDATE per goods row);
4. lock the household's wallets and the partner's payables (in id order) and read what is
   available, then compute the discount; a sale captured now locks the township's chain head
   in the same read (on PostgreSQL), the lock its entries need next;
5. post through the ledger, on those locks.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from mall.benefits.models import Benefit
from mall.benefits.services import applicable_benefits
from mall.catalog.models import Goods
from mall.catalog.services import goods_by_sku, restore_stock, take_stock
from mall.clock import as_aware, business_date, utcnow
from mall.codes.services import VerifiedCode, check_code_pin, verify_code
from mall.daybook.services import first_open_date, is_closed
from mall.db import lock_row
from mall.driver_sql import MappedInsert
from mall.errors import Conflict, Forbidden, NotFound, ValidationFailed
from mall.ledger.accounts import sale_accounts
from mall.ledger.holds import capture_hold, place_hold, void_hold
from mall.ledger.models import CNY, HOUSEHOLD_INTEGRITY, HOUSEHOLD_POINTS, POINTS, Account
from mall.ledger.posting import EntrySpec, Leg, Source, post_entries, reverse_entry
from mall.models_common import check_bill_fen
from mall.partners.models import Partner
from mall.payments.models import Payment, PaymentItem
from mall.payments.rates import (
    discount_rate_bp,
    effective_rank,
    integrity_discount_fen,
    level_label,
)
from mall.regions.models import Region
from mall.subjects.models import CreditSubject

AUTHORIZATION_TTL = timedelta(minutes=15)
MAX_ITEMS = 50


@dataclass(frozen=True)
class ItemRequest:
    sku: str
    qty: int


@dataclass
class Line:
    goods: Goods
    qty: int

    @property
    def points(self) -> int:
        return self.goods.points_price * self.qty

    @property
    def settlement_fen(self) -> int:
        return self.goods.settlement_price_fen * self.qty

    def as_dict(self) -> dict[str, Any]:
        return {
            "sku": self.goods.sku,
            "name": self.goods.name,
            "qty": self.qty,
            "points_price": self.goods.points_price,
            "points": self.points,
        }


@dataclass
class Quote:
    subject: CreditSubject
    discount_rate_bp: int
    amount_fen: int
    integrity_discount_fen: int
    points_cost: int
    settlement_fen: int
    cash_due_fen: int
    lines: list[Line] = field(default_factory=list)
    integrity_available_fen: int = 0
    points_available: int = 0


def new_public_id(prefix: str) -> str:
    return prefix + secrets.token_hex(10)


def actor_label(terminal_code: str | None, user_id: int | None) -> str:
    if user_id is not None:
        return f"cashier:{user_id}"
    return f"terminal:{terminal_code}"


# ---------------------------------------------------------------- reads


# Built once: every scan and payment runs it.
_AVAILABLE = select(Account.kind, Account.posted_balance - Account.held_balance).where(
    Account.township_id == bindparam("township_id"),
    Account.subject_id == bindparam("subject_id"),
    Account.kind.in_((HOUSEHOLD_POINTS, HOUSEHOLD_INTEGRITY)),
)


def available_balances(session: Session, subject: CreditSubject) -> tuple[int, int]:
    """(integrity fen, points) available now: posted minus open holds."""
    available: dict[str, int] = dict(
        session.execute(
            _AVAILABLE, {"township_id": subject.township_id, "subject_id": subject.id}
        ).all()
    )
    return available.get(HOUSEHOLD_INTEGRITY, 0), available.get(HOUSEHOLD_POINTS, 0)


def holder_view(
    session: Session, subject: CreditSubject, village_name: str | None = None
) -> dict[str, Any]:
    """What the till shows of the holder; `village_name` when the caller has read it already."""
    if village_name is None:
        village = session.get(Region, subject.village_id)
        village_name = village.name if village else ""
    rank = effective_rank(subject)
    level = (
        {
            "code": subject.level_code,
            "label": level_label(subject.level_code, subject.level_rank),
            "rank": rank,
        }
        if rank is not None
        else None
    )
    return {
        "ref": subject.ref,
        "display_name": subject.name_masked,
        "village": village_name,
        "level": level,
        "valid_until": subject.level_valid_until if level else None,
        "status": subject.status,
    }


def benefit_view(benefit: Benefit) -> dict[str, Any]:
    """What the till shows of a benefit from the benefit list."""
    return {
        "benefit_id": benefit.id,
        "title": benefit.title_zh,
        "title_en": benefit.title_en,
        "description": benefit.description,
        "kind": benefit.kind,
        "percent_bp": benefit.percent_bp,
        "cap_fen": benefit.cap_fen,
        "fixed_fen": benefit.fixed_fen,
        "min_level_rank": benefit.min_level_rank,
        "limit_per_day": benefit.limit_per_day,
        "limit_per_month": benefit.limit_per_month,
        "limit_per_year": benefit.limit_per_year,
    }


def scan(session: Session, partner: Partner, code: object) -> dict[str, Any]:
    """Who holds this code, what they have and what they get here. No side effect."""
    verified = verify_code(session, code)
    subject = verified.subject
    integrity, points = verified.available_integrity_fen, verified.available_points
    return {
        "holder": holder_view(session, subject, verified.village_name),
        "wallet": {"integrity_fen": integrity, "points": points},
        "discount_rate_bp": discount_rate_bp(session, subject, partner),
        "benefits": [
            benefit_view(b) for b in applicable_benefits(session, partner=partner, subject=subject)
        ],
        "pin_required": verified.kind == "card",
        "code_kind": verified.kind,
        "code_expires_at": verified.expires_at,
    }


# ---------------------------------------------------------------- quoting


def _lines(
    session: Session, partner: Partner, subject: CreditSubject, items: list[ItemRequest]
) -> list[Line]:
    if not items:
        return []
    if len(items) > MAX_ITEMS:
        raise ValidationFailed(details={"fields": {"items": [f"at most {MAX_ITEMS}"]}})
    if not partner.accepts_points:
        raise Forbidden("partner_not_eligible", details={"reason": "points"})
    merged: dict[str, int] = {}
    for item in items:
        merged[item.sku] = merged.get(item.sku, 0) + item.qty
    found = goods_by_sku(session, partner.id, list(merged))
    missing = [sku for sku in merged if sku not in found or not found[sku].active]
    if missing:
        raise NotFound(details={"skus": missing})
    rank = effective_rank(subject) or 0
    lines = []
    for sku, qty in merged.items():
        goods = found[sku]
        if goods.min_level_rank is not None and rank < goods.min_level_rank:
            raise Forbidden(
                "level_too_low", details={"sku": sku, "min_level_rank": goods.min_level_rank}
            )
        lines.append(Line(goods, qty))
    return lines


def _check_amount(amount_fen: int) -> None:
    check_bill_fen(amount_fen)


def _price(
    session: Session,
    partner: Partner,
    subject: CreditSubject,
    amount_fen: int,
    lines: list[Line],
    use_integrity: bool,
    integrity_available: int,
    points_available: int,
) -> Quote:
    rate = discount_rate_bp(session, subject, partner) if use_integrity else 0
    discount = integrity_discount_fen(amount_fen, rate, integrity_available)
    points_cost = sum(line.points for line in lines)
    if points_cost > points_available:
        raise Conflict(
            "insufficient_points", details={"available": points_available, "required": points_cost}
        )
    return Quote(
        subject=subject,
        discount_rate_bp=rate,
        amount_fen=amount_fen,
        integrity_discount_fen=discount,
        points_cost=points_cost,
        settlement_fen=sum(line.settlement_fen for line in lines),
        cash_due_fen=amount_fen - discount,
        lines=lines,
        integrity_available_fen=integrity_available,
        points_available=points_available,
    )


def quote(
    session: Session,
    partner: Partner,
    code: object,
    amount_fen: int,
    items: list[ItemRequest] | None = None,
    use_integrity: bool = True,
) -> Quote:
    """What a payment would do now. No side effect."""
    _check_amount(amount_fen)
    verified = verify_code(session, code)
    subject = verified.subject
    lines = _lines(session, partner, subject, items or [])
    for line in lines:
        if line.goods.stock < line.qty:
            raise Conflict("out_of_stock", details={"sku": line.goods.sku})
    integrity, points = verified.available_integrity_fen, verified.available_points
    return _price(session, partner, subject, amount_fen, lines, use_integrity, integrity, points)


# ---------------------------------------------------------------- paying


@dataclass(frozen=True)
class PayRequest:
    code: object
    amount_fen: int
    items: list[ItemRequest] = field(default_factory=list)
    use_integrity: bool = True
    capture: bool = True
    pin: str | None = None
    external_ref: str | None = None


def _spend_code(session: Session, verified: VerifiedCode, pin: str | None) -> None:
    # A dynamic code was spent as it was verified (verify_code(spend=True)); a card is
    # checked by its PIN, and a PinRejected keeps its failure count (DomainError.keeps_changes).
    check_code_pin(session, verified, pin)


@dataclass(frozen=True)
class Sale:
    """A committed sale: the payment, and what the wallets have available after it (known
    from their locked state, so the till's answer needs no second read)."""

    payment: Payment
    available_integrity_fen: int
    available_points: int


# The payment row is written by one statement, not the unit of work (mall/driver_sql.py).
_INSERT_PAYMENT = MappedInsert(Payment)


def create_payment(
    session: Session,
    partner: Partner,
    req: PayRequest,
    *,
    terminal_id: int | None = None,
    terminal_code: str | None = None,
    cashier_user_id: int | None = None,
) -> Sale:
    """Commit a sale: spend the code, take stock, post or hold integrity money and points."""
    _check_amount(req.amount_fen)
    if req.amount_fen == 0 and not req.items:  # before the code is spent: nothing to sell
        raise ValidationFailed(
            details={"fields": {"amount_fen": ["a sale needs an amount or goods"]}}
        )
    if not partner.active:
        raise Forbidden("partner_not_eligible", details={"reason": "partner_inactive"})
    verified = verify_code(session, req.code, spend=True)
    subject = verified.subject
    _spend_code(session, verified, req.pin)
    lines = _lines(session, partner, subject, req.items)
    for line in lines:
        take_stock(session, line.goods.id, line.qty)
    # Locked until the commit; a captured sale's read also locks what its entries post on.
    spends = [asset for asset, used in ((CNY, req.use_integrity), (POINTS, bool(lines))) if used]
    posting = req.capture and bool(spends)  # a cash-only sale posts nothing
    accounts = sale_accounts(session, subject, partner.id, posting=posting, spends=spends)
    wallets = accounts.wallets
    integrity_available = wallets.integrity.posted_balance - wallets.integrity.held_balance
    points_available = wallets.points.posted_balance - wallets.points.held_balance
    q = _price(
        session,
        partner,
        subject,
        req.amount_fen,
        lines,
        req.use_integrity,
        integrity_available,
        points_available,
    )
    now = utcnow()
    payment: Payment = _INSERT_PAYMENT.new(
        public_id=new_public_id("pay_"),
        partner_id=partner.id,
        terminal_id=terminal_id,
        cashier_user_id=cashier_user_id,
        township_id=subject.township_id,
        subject_id=subject.id,
        origin="online",
        code_kind=verified.kind,
        status="completed" if req.capture else "authorized",
        amount_fen=q.amount_fen,
        discount_rate_bp=q.discount_rate_bp,
        integrity_discount_fen=q.integrity_discount_fen,
        points_cost=q.points_cost,
        points_settlement_fen=q.settlement_fen,
        cash_due_fen=q.cash_due_fen,
        external_ref=req.external_ref,
        business_date=business_date(now),
        created_at=now,
        captured_at=now if req.capture else None,
        expires_at=None if req.capture else now + AUTHORIZATION_TTL,
    )
    # Inserted last, with its entry or hold ids: the ledger keys use the public id, so the
    # row needs no second write once the money has moved.
    actor = actor_label(terminal_code, cashier_user_id)
    source = Source("payment", payment.public_id)
    t = subject.township_id
    if req.capture:
        specs = []
        if q.integrity_discount_fen:
            payable = accounts.payable(session, CNY)
            specs.append(
                EntrySpec(
                    township_id=t,
                    kind="integrity_spent",
                    legs=[
                        Leg(wallets.integrity.id, -q.integrity_discount_fen),
                        Leg(payable.id, q.integrity_discount_fen),
                    ],
                    actor=actor,
                    reason=f"{partner.name} 诚信金抵扣",
                    source=source,
                    idempotency_key=f"pay:{payment.public_id}:integrity",
                    business_date=payment.business_date,
                )
            )
        if q.points_cost:
            payable_pts = accounts.payable(session, POINTS)
            specs.append(
                EntrySpec(
                    township_id=t,
                    kind="points_redeemed",
                    legs=[
                        Leg(wallets.points.id, -q.points_cost),
                        Leg(payable_pts.id, q.points_cost),
                    ],
                    actor=actor,
                    reason=f"{partner.name} 积分兑换",
                    source=source,
                    idempotency_key=f"pay:{payment.public_id}:points",
                    business_date=payment.business_date,
                )
            )
        posted = post_entries(session, specs, locked_books=accounts.books) if specs else []
        for spec, entry in zip(specs, posted, strict=True):
            if spec.kind == "integrity_spent":
                payment.integrity_entry_id = entry.entry_id
            else:
                payment.points_entry_id = entry.entry_id
    else:
        assert payment.expires_at is not None
        if q.integrity_discount_fen:
            hold = place_hold(
                session,
                account=wallets.integrity,
                counter_account=accounts.payable(session, CNY),
                amount=q.integrity_discount_fen,
                actor=actor,
                reason=f"{partner.name} 诚信金预授权",
                source=source,
                expires_at=payment.expires_at,
                idempotency_key=f"pay:{payment.public_id}:hold:integrity",
            )
            payment.integrity_hold_id = hold.id
        if q.points_cost:
            hold = place_hold(
                session,
                account=wallets.points,
                counter_account=accounts.payable(session, POINTS),
                amount=q.points_cost,
                actor=actor,
                reason=f"{partner.name} 积分预授权",
                source=source,
                expires_at=payment.expires_at,
                idempotency_key=f"pay:{payment.public_id}:hold:points",
            )
            payment.points_hold_id = hold.id
    _INSERT_PAYMENT.insert(
        session, payment, loaded={"subject": subject, "items": [], "refunds": []}
    )
    if lines:
        payment.items.extend(
            PaymentItem(
                goods_id=line.goods.id,
                sku=line.goods.sku,
                name=line.goods.name,
                qty=line.qty,
                points_price=line.goods.points_price,
                settlement_price_fen=line.goods.settlement_price_fen,
            )
            for line in lines
        )
        session.flush()
    # Posting lowers the posted balance and a hold raises the held one: either way what is
    # available drops by exactly what the sale took.
    return Sale(
        payment,
        integrity_available - q.integrity_discount_fen,
        points_available - q.points_cost,
    )


def get_payment(session: Session, partner_id: int, public_id: str) -> Payment:
    """The partner's payment; another partner's answers not_found (existence not disclosed)."""
    payment = session.scalar(select(Payment).where(Payment.public_id == public_id))
    if payment is None or payment.partner_id != partner_id:
        raise NotFound()
    return payment


def _lock_payment(session: Session, payment: Payment) -> Payment:
    lock_row(session, payment)
    return payment


def capture_payment(
    session: Session, payment: Payment, amount_fen: int | None = None, *, actor: str
) -> Payment:
    """Complete an authorised payment, optionally for a smaller sale amount."""
    _lock_payment(session, payment)
    if payment.status != "authorized":
        raise Conflict("invalid_state", details={"status": payment.status})
    now = utcnow()
    if payment.expires_at is not None and as_aware(payment.expires_at) <= now:
        raise Conflict("invalid_state", details={"status": "expired"})
    if amount_fen is not None:
        _check_amount(amount_fen)
        if amount_fen > payment.amount_fen:
            raise ValidationFailed(
                details={"fields": {"amount_fen": [f"at most {payment.amount_fen}"]}}
            )
    sale_fen = payment.amount_fen if amount_fen is None else amount_fen
    discount = min(sale_fen * payment.discount_rate_bp // 10000, payment.integrity_discount_fen)
    # Set the sale's figures together, before any query: an autoflush between the amount and
    # the discount would write a row the discount-within-amount CHECK refuses.
    payment.amount_fen = sale_fen
    payment.integrity_discount_fen = discount
    payment.cash_due_fen = sale_fen - discount
    bdate = business_date(now)
    t = payment.township_id
    if payment.integrity_hold_id is not None:
        if discount > 0:
            entry = capture_hold(
                session,
                township_id=t,
                hold_id=payment.integrity_hold_id,
                actor=actor,
                amount=discount,
                idempotency_key=f"pay:{payment.public_id}:integrity",
                business_date=bdate,
            )
            payment.integrity_entry_id = entry.entry_id
        else:
            void_hold(session, township_id=t, hold_id=payment.integrity_hold_id, actor=actor)
    if payment.points_hold_id is not None:
        entry = capture_hold(
            session,
            township_id=t,
            hold_id=payment.points_hold_id,
            actor=actor,
            idempotency_key=f"pay:{payment.public_id}:points",
            business_date=bdate,
        )
        payment.points_entry_id = entry.entry_id
    payment.status = "completed"
    payment.captured_at = now
    payment.business_date = bdate
    session.flush()
    return payment


def _restore_items(session: Session, payment: Payment) -> None:
    for item in payment.items:
        restore_stock(session, item.goods_id, item.qty - item.refunded_qty)


def business_date_settled(session: Session, partner_id: int, day: date) -> bool:
    """Whether the partner's statement of `day` is closed (mall.daybook); voids of
    completed payments check it."""
    return is_closed(session, partner_id, day)


def open_business_date(session: Session, partner_id: int, day: date) -> date:
    """The business date to book something of `day` on: `day` unless the partner's
    statement of it is closed, else the next open day (mall.daybook)."""
    return first_open_date(session, partner_id, day)


def why_not_voidable(
    session: Session, payment: Payment, *, lock: bool = True
) -> dict[str, str] | None:
    """Why `payment` cannot be voided (the details of `invalid_state`), or None if it can: an
    authorised payment always can; a completed one only if it was taken online, has no
    refunds and its business day is not settled. `lock=False` asks without the partner's
    share lock, for a page deciding whether to offer the button."""
    if payment.status == "authorized":
        return None
    if payment.status != "completed" or payment.origin != "online" or payment.refunds:
        return {"status": payment.status}
    if is_closed(session, payment.partner_id, payment.business_date, lock=lock):
        return {"reason": "settled"}
    return None


def may_void(session: Session, payment: Payment) -> bool:
    """Whether `void_payment` would accept `payment` now (what the till shows)."""
    return why_not_voidable(session, payment, lock=False) is None


def void_payment(session: Session, payment: Payment, *, actor: str) -> Payment:
    """Undo an authorised payment, or a completed one whose day is not settled and which
    has no refunds; restores integrity money, points and stock."""
    _lock_payment(session, payment)
    t = payment.township_id
    refusal = why_not_voidable(session, payment)
    if refusal is not None:
        raise Conflict("invalid_state", details=refusal)
    if payment.status == "authorized":
        for hold_id in (payment.integrity_hold_id, payment.points_hold_id):
            if hold_id is not None:
                void_hold(session, township_id=t, hold_id=hold_id, actor=actor)
    else:
        for entry_id, what in (
            (payment.integrity_entry_id, "integrity"),
            (payment.points_entry_id, "points"),
        ):
            if entry_id is not None:
                reverse_entry(
                    session,
                    township_id=t,
                    entry_id=entry_id,
                    actor=actor,
                    reason="撤销交易",
                    idempotency_key=f"pay:{payment.public_id}:void:{what}",
                    business_date=payment.business_date,
                )
    _restore_items(session, payment)
    payment.status = "voided"
    payment.voided_at = utcnow()
    session.flush()
    return payment


def expire_authorizations(session: Session, now: datetime | None = None, limit: int = 500) -> int:
    """Expire authorisations not captured within 15 minutes: release their holds and stock.
    Returns how many. Run by the jobs command (and safe beside the ledger's hold expiry)."""
    now = now or utcnow()
    due = list(
        session.scalars(
            select(Payment)
            .where(Payment.status == "authorized", Payment.expires_at <= now)
            .order_by(Payment.id)
            .limit(limit)
        )
    )
    count = 0
    for payment in due:
        _lock_payment(session, payment)
        if payment.status != "authorized":
            continue
        for hold_id in (payment.integrity_hold_id, payment.points_hold_id):
            if hold_id is not None:
                # Conflict: the ledger's own hold expiry got there first (released already).
                with contextlib.suppress(Conflict):
                    void_hold(
                        session,
                        township_id=payment.township_id,
                        hold_id=hold_id,
                        actor="system:authorization-expiry",
                    )
        _restore_items(session, payment)
        payment.status = "expired"
        payment.voided_at = now
        count += 1
    session.flush()
    return count
