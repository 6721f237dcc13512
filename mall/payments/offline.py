"""Offline store-and-forward: sales a terminal granted while it had no connection.

Each record is applied exactly once per terminal and `local_id`, whatever batch carries it:
the unique key on `offline_records` decides, and a repeat answers the stored result. A record
is `applied`, `applied_short` or `rejected` with a code.

What a record may take (docs/pos-api.md section 6):
- never more discount than the household's level gives at this partner on the sale's day,
  by the rule an online payment uses (`mall.payments.rates`). A till that granted more is
  applied at the right amount (`applied_short`, `reason` `over_discount_rate`): the household
  pays what it would have online, the partner is paid that, and the excess (`overgrant_fen`)
  is the partner's own: no one pays it, least of all the township;
- within the floor limits of the household's business day: `OFFLINE_FLOOR_LIMIT_FEN` in all,
  of which card codes (no PIN can be checked offline) at most `OFFLINE_CARD_FLOOR_LIMIT_FEN`;
- what the wallet holds: the rest of a genuine grant within those limits is paid to the
  partner from the township's offline-shortfall account and flagged for review
  (`applied_short`, `reason` `wallet_short`).

A card revoked (lost, reissued) before the upload: `captured_at` is the till's word, so it
is never enough on its own. The record is honoured only when the till could not have known:
the card was revoked after `captured_at`, after the terminal's last online contact before
this upload (any signed request, or its last fetch of the revocation list), and after the
version of the revocation list the record says the till had; and the sale was captured after
that last contact. See `_judge_revoked_card`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import Table, case, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mall.clock import as_aware, business_date, utcnow
from mall.codes import policy
from mall.codes.models import IntegrityCard
from mall.codes.services import VerifiedCode, consume_dynamic_code, verify_code
from mall.db import lock_row
from mall.errors import MESSAGES, DomainError, Forbidden, Unprocessable
from mall.ledger.accounts import household_wallets, partner_payable, system_account
from mall.ledger.models import CNY, OFFLINE_SHORTFALL
from mall.ledger.posting import EntrySpec, Leg, Source, lock_accounts, post_entries
from mall.partners.models import LAST_SEEN_EVERY, Partner, Terminal
from mall.payments.models import OfflineRecord, Payment
from mall.payments.rates import discount_rate_bp, integrity_discount_fen
from mall.payments.services import new_public_id, open_business_date
from mall.subjects.models import CreditSubject

MAX_RECORD_AGE = timedelta(hours=72)

_terminals: Table = Terminal.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class OfflineSale:
    local_id: str
    code: str
    captured_at: datetime
    amount_fen: int
    integrity_discount_fen: int
    # The version of the card revocation list the till had when it made the sale (optional).
    revocation_list_version: int | None = None


@dataclass(frozen=True)
class TerminalContact:
    """What the server knew of a terminal before an upload: its last recorded online contact
    (written at most once per `resolution`, so it may have been online until
    `last_seen_at + resolution`), and the revocation list version it was last given, when."""

    last_seen_at: datetime | None = None
    resolution: timedelta = LAST_SEEN_EVERY
    list_version: int | None = None
    list_synced_at: datetime | None = None

    @property
    def last_known_contact(self) -> datetime | None:
        """The latest moment the terminal is known to have been online."""
        known = [as_aware(t) for t in (self.last_seen_at, self.list_synced_at) if t is not None]
        return max(known) if known else None

    @property
    def online_until(self) -> datetime | None:
        """The latest moment the terminal may have been online (None: never seen)."""
        seen = [as_aware(self.last_seen_at) + self.resolution] if self.last_seen_at else []
        if self.list_synced_at is not None:
            seen.append(as_aware(self.list_synced_at))
        return max(seen) if seen else None


def terminal_contact(session: Session, terminal: Terminal) -> TerminalContact:
    """The terminal's contact as committed now (read afresh, not from a cached row)."""
    row = session.execute(
        select(
            _terminals.c.last_seen_at,
            _terminals.c.revocation_list_version,
            _terminals.c.revocation_list_synced_at,
        ).where(_terminals.c.id == terminal.id)
    ).one()
    return TerminalContact(
        last_seen_at=row.last_seen_at,
        list_version=row.revocation_list_version,
        list_synced_at=row.revocation_list_synced_at,
    )


def record_contact(session: Session, terminal: Terminal, now: datetime) -> None:
    """The terminal was online at `now` (an upload records its own contact this way, in its
    transaction: one that fails records nothing, so its retry is judged as it was)."""
    session.execute(
        update(_terminals)
        .where(
            _terminals.c.id == terminal.id,
            or_(_terminals.c.last_seen_at.is_(None), _terminals.c.last_seen_at < now),
        )
        .values(last_seen_at=now)
    )


def record_list_sync(session: Session, terminal: Terminal, version: int, now: datetime) -> None:
    """The terminal was given the revocation list up to `version` at `now` (a contact too)."""
    had = _terminals.c.revocation_list_version
    session.execute(
        update(_terminals)
        .where(_terminals.c.id == terminal.id)
        .values(
            # The highest version it was ever given: it knew of those cards from then on.
            revocation_list_version=case((or_(had.is_(None), had < version), version), else_=had),
            revocation_list_synced_at=now,
            last_seen_at=now,
        )
    )


class Rejected(DomainError):
    status = 422


def _invalid(reason: str, **details: Any) -> Rejected:
    return Rejected("invalid_code", details={"reason": reason, **details})


def _verify_at(session: Session, code: str, at: datetime) -> VerifiedCode:
    """The code as it was at `at`. A card revoked since comes back with its card, whose
    revocation the caller judges (`_judge_revoked_card`)."""
    try:
        return verify_code(session, code, now=at)
    except Unprocessable as exc:
        if exc.details.get("reason") != "card_revoked":
            raise
    # The signature verified (it is checked before the card); find the card as it was.
    code = code.strip()
    kid = jwt.get_unverified_header(code).get("kid")
    claims = jwt.decode(code, options={"verify_signature": False})
    card = session.scalar(select(IntegrityCard).where(IntegrityCard.serial == claims.get("card")))
    subject = session.scalar(select(CreditSubject).where(CreditSubject.ref == claims.get("sub")))
    if (
        card is None
        or subject is None
        or card.subject_id != subject.id
        or card.kid != kid
        or card.status != "revoked"
        or card.revoked_at is None
    ):
        raise Unprocessable("invalid_code", details={"reason": "card_revoked"})
    if subject.status != "active":
        raise Forbidden("holder_suspended")
    return VerifiedCode(
        subject=subject,
        kind="card",
        jti=str(claims.get("jti")),
        kid=card.kid,
        level_code=claims.get("lvl"),
        issued_at=datetime.fromtimestamp(int(claims.get("iat", 0)), tz=at.tzinfo),
        expires_at=None,
        card=card,
    )


def _judge_revoked_card(
    card: IntegrityCard, sale: OfflineSale, captured_at: datetime, contact: TerminalContact
) -> None:
    """A record of a card revoked by now is honoured only if its till could not have known;
    otherwise `invalid_code` with the reason. In order:

    1. `card_revoked`: revoked at or before `captured_at` (the till's own word against it);
    2. `card_on_revocation_list`: the record says the till's list had a version that names
       the card;
    3. `card_revoked_before_sync`: the terminal was given a list naming the card, or was (or
       may have been: `last_seen_at` is written once a minute) online at or after the
       revocation, before this upload. Its till could have known; and a till that has been
       online since cannot backdate `captured_at` past this, since the rule does not read it;
    4. `captured_before_last_contact`: the terminal was online after `captured_at` (and before
       the revocation) and did not upload the sale then. An honest till uploads its queue
       first thing when it is back online; this bounds how far back a till that stayed
       silent since the revocation can date a sale: to its last contact, not 72 hours.

    What remains honoured: a sale dated between the terminal's last contact and the
    revocation, uploaded with no contact in between: the till was offline all along and
    could not know. That window is the floor limits' to bound (the card floor, per day)."""
    assert card.revoked_at is not None  # `_verify_at` returns only revoked cards with a date
    revoked_at = as_aware(card.revoked_at)
    version = card.revocation_version
    if revoked_at <= captured_at:
        raise _invalid("card_revoked")
    claimed = sale.revocation_list_version
    if claimed is not None and version is not None and claimed >= version:
        raise _invalid("card_on_revocation_list", revocation_version=version)
    synced = contact.list_version
    online_until = contact.online_until
    if (synced is not None and version is not None and synced >= version) or (
        online_until is not None and online_until >= revoked_at
    ):
        raise _invalid("card_revoked_before_sync", revocation_version=version)
    last_contact = contact.last_known_contact
    if last_contact is not None and captured_at < last_contact:
        raise _invalid("captured_before_last_contact")


def _granted_today(session: Session, subject_id: int, day: object, *, cards: bool = False) -> int:
    """What offline records already took of the household's floor that business day; of
    card codes only with `cards`."""
    query = select(func.coalesce(func.sum(OfflineRecord.granted_fen), 0)).where(
        OfflineRecord.subject_id == subject_id,
        OfflineRecord.business_date == day,
        OfflineRecord.status != "rejected",
    )
    if cards:
        query = query.join(Payment, Payment.id == OfflineRecord.payment_id).where(
            Payment.code_kind == "card"
        )
    return int(session.scalar(query) or 0)


def _apply(  # noqa: C901 (to split by step, issue 20)
    session: Session,
    terminal: Terminal,
    partner: Partner,
    batch_id: str,
    sale: OfflineSale,
    now: datetime,
    contact: TerminalContact,
) -> dict[str, Any]:
    record = OfflineRecord(
        terminal_id=terminal.id,
        local_id=sale.local_id,
        batch_id=batch_id,
        status="rejected",
        granted_fen=0,
        result={},
    )
    session.add(record)
    session.flush()  # a duplicate local_id stops here (IntegrityError), before any work
    captured_at = as_aware(sale.captured_at)
    skew = timedelta(seconds=policy.allowed_skew_seconds())
    if captured_at < now - MAX_RECORD_AGE:
        raise Rejected("record_too_old")
    if captured_at > now + skew:
        raise Rejected("invalid_code", details={"reason": "captured_in_future"})
    if not 0 <= sale.integrity_discount_fen <= sale.amount_fen:
        raise Rejected("validation_error", details={"fields": {"integrity_discount_fen": []}})
    verified = _verify_at(session, sale.code, captured_at)
    if verified.card is not None and verified.card.status == "revoked":
        _judge_revoked_card(verified.card, sale, captured_at, contact)
    subject = verified.subject
    if not partner.accepts_integrity and sale.integrity_discount_fen:
        raise Rejected("partner_not_eligible")
    day = business_date(captured_at)
    # One upload at a time per household, so two terminals cannot both pass the floor limit.
    lock_row(session, subject)
    # What the till granted, and what the household's level gives here on the sale's day:
    # the online payment's rule (mall.payments.rates), never more.
    claimed = sale.integrity_discount_fen
    rate = discount_rate_bp(session, subject, partner, day)
    granted = integrity_discount_fen(sale.amount_fen, rate, claimed)
    overgrant = claimed - granted  # the partner's own: nobody pays it
    floor = policy.offline_floor_limit_fen()
    if _granted_today(session, subject.id, day) + granted > floor:
        raise Rejected("over_floor_limit", details={"floor_limit_fen": floor})
    if verified.kind == "card":
        card_floor = min(policy.offline_card_floor_limit_fen(), floor)
        if _granted_today(session, subject.id, day, cards=True) + granted > card_floor:
            raise Rejected(
                "over_floor_limit", details={"floor_limit_fen": card_floor, "code_kind": "card"}
            )
    if verified.kind == "dynamic":
        assert verified.expires_at is not None
        consume_dynamic_code(session, verified.jti, verified.expires_at)
    wallets = household_wallets(session, subject)
    state = lock_accounts(session, subject.township_id, [wallets.integrity.id])[
        wallets.integrity.id
    ]
    taken = min(granted, max(0, state.posted - state.held))
    booked = open_business_date(session, partner.id, day)  # a closed day takes nothing
    # Only a genuine shortfall (a grant within the rate and the floor the wallet could not
    # cover) is the township's.
    shortfall = granted - taken
    payment = Payment(
        public_id=new_public_id("pay_"),
        partner_id=partner.id,
        terminal_id=terminal.id,
        township_id=subject.township_id,
        subject_id=subject.id,
        origin="offline",
        code_kind=verified.kind,
        status="completed",
        amount_fen=sale.amount_fen,
        discount_rate_bp=rate,
        integrity_discount_fen=taken,
        offline_shortfall_fen=shortfall,
        cash_due_fen=sale.amount_fen - claimed,  # what the customer paid at the till
        needs_review=shortfall > 0 or overgrant > 0,
        external_ref=f"offline:{sale.local_id}"[:64],
        business_date=booked,
        created_at=now,
        captured_at=captured_at,
    )
    session.add(payment)
    session.flush()
    t = subject.township_id
    payable = partner_payable(session, t, partner.id, CNY)
    actor = f"terminal:{terminal.terminal_id}"
    source = Source("payment", payment.public_id)
    specs = []
    if taken:
        specs.append(
            EntrySpec(
                township_id=t,
                kind="integrity_spent",
                legs=[Leg(wallets.integrity.id, -taken), Leg(payable.id, taken)],
                actor=actor,
                reason=f"{partner.name} 离线诚信金抵扣",
                source=source,
                idempotency_key=f"pay:{payment.public_id}:integrity",
                business_date=booked,
            )
        )
    if shortfall:
        fund = system_account(session, t, OFFLINE_SHORTFALL)
        specs.append(
            EntrySpec(
                township_id=t,
                kind="offline_shortfall",
                legs=[Leg(fund.id, -shortfall), Leg(payable.id, shortfall)],
                actor=actor,
                reason=f"离线交易余额不足,由乡镇垫付(待复核) {sale.local_id}",
                source=source,
                idempotency_key=f"pay:{payment.public_id}:shortfall",
                business_date=booked,
            )
        )
    if specs:
        posted = post_entries(session, specs)
        if taken:
            payment.integrity_entry_id = posted[0].entry_id
    status = "applied_short" if shortfall or overgrant else "applied"
    result: dict[str, Any] = {
        "local_id": sale.local_id,
        "status": status,
        "payment_id": payment.public_id,
        "integrity_discount_fen": taken,
        "shortfall_fen": shortfall,
        "discount_rate_bp": rate,
        "overgrant_fen": overgrant,
    }
    if status == "applied_short":
        result["reason"] = "over_discount_rate" if overgrant else "wallet_short"
    record.status = status
    record.subject_id = subject.id
    record.business_date = day
    record.granted_fen = granted
    record.payment_id = payment.id
    record.result = result
    session.flush()
    return result


def _stored(session: Session, terminal: Terminal, local_id: str) -> dict[str, Any] | None:
    found = session.scalar(
        select(OfflineRecord.result).where(
            OfflineRecord.terminal_id == terminal.id, OfflineRecord.local_id == local_id
        )
    )
    return dict(found) if found is not None else None


def apply_sale(
    session: Session,
    terminal: Terminal,
    partner: Partner,
    batch_id: str,
    sale: OfflineSale,
    *,
    now: datetime | None = None,
    contact: TerminalContact | None = None,
) -> dict[str, Any]:
    """Apply one offline sale exactly once; returns its result (the stored one on repeat).
    `contact`: the terminal's contact before the upload (read now when not given)."""
    now = now or utcnow()
    stored = _stored(session, terminal, sale.local_id)
    if stored is not None:
        return stored
    if contact is None:
        contact = terminal_contact(session, terminal)
    try:
        with session.begin_nested():
            return _apply(session, terminal, partner, batch_id, sale, now, contact)
    except IntegrityError:
        stored = _stored(session, terminal, sale.local_id)
        if stored is not None:
            return stored
        raise
    except DomainError as exc:
        result = {
            "local_id": sale.local_id,
            "status": "rejected",
            "code": exc.code,
            "message": str(MESSAGES.get(exc.code, exc.code)),
            "details": exc.details,
        }
    try:
        with session.begin_nested():
            session.add(
                OfflineRecord(
                    terminal_id=terminal.id,
                    local_id=sale.local_id,
                    batch_id=batch_id,
                    status="rejected",
                    granted_fen=0,
                    result=result,
                )
            )
            session.flush()
    except IntegrityError:
        stored = _stored(session, terminal, sale.local_id)
        if stored is not None:
            return stored
        raise
    return result


def apply_batch(
    session: Session,
    terminal: Terminal,
    partner: Partner,
    batch_id: str,
    sales: list[OfflineSale],
    *,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Apply an uploaded batch: every record judged against the terminal's contact before
    the upload, which then counts as a contact itself (in the same transaction)."""
    now = now or utcnow()
    contact = terminal_contact(session, terminal)
    results = [
        apply_sale(session, terminal, partner, batch_id, s, now=now, contact=contact) for s in sales
    ]
    record_contact(session, terminal, now)
    return results
