"""Offline store-and-forward: sales a terminal granted while it had no connection.

Each record is applied exactly once per terminal and `local_id`, whatever batch carries it:
the unique key on `offline_records` decides, and a repeat answers the stored result. A record
is `applied`, `applied_short` (the wallet held less than was granted: what it held is taken,
the rest is paid to the partner from the township's offline-shortfall account and the payment
is flagged for review) or `rejected` with a code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import func, select
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
from mall.partners.models import Partner, Terminal
from mall.payments.models import OfflineRecord, Payment
from mall.payments.services import new_public_id, open_business_date
from mall.subjects.models import CreditSubject

MAX_RECORD_AGE = timedelta(hours=72)


@dataclass(frozen=True)
class OfflineSale:
    local_id: str
    code: str
    captured_at: datetime
    amount_fen: int
    integrity_discount_fen: int


class Rejected(DomainError):
    status = 422


def _verify_at(session: Session, code: str, at: datetime) -> VerifiedCode:
    """The code as it was at `at`: a card revoked after the sale still counts."""
    try:
        return verify_code(session, code, now=at)
    except Unprocessable as exc:
        if exc.details.get("reason") != "card_revoked":
            raise
    # The signature verified (it is checked before the card); find the card as it was.
    claims = jwt.decode(code.strip(), options={"verify_signature": False})
    card = session.scalar(select(IntegrityCard).where(IntegrityCard.serial == claims.get("card")))
    subject = session.scalar(select(CreditSubject).where(CreditSubject.ref == claims.get("sub")))
    if (
        card is None
        or subject is None
        or card.subject_id != subject.id
        or card.revoked_at is None
        or as_aware(card.revoked_at) <= at
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


def _granted_today(session: Session, subject_id: int, day: object) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(OfflineRecord.granted_fen), 0)).where(
            OfflineRecord.subject_id == subject_id,
            OfflineRecord.business_date == day,
            OfflineRecord.status != "rejected",
        )
    )
    return int(total or 0)


def _apply(
    session: Session,
    terminal: Terminal,
    partner: Partner,
    batch_id: str,
    sale: OfflineSale,
    now: datetime,
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
    subject = verified.subject
    if not partner.accepts_integrity and sale.integrity_discount_fen:
        raise Rejected("partner_not_eligible")
    day = business_date(captured_at)
    # One upload at a time per household, so two terminals cannot both pass the floor limit.
    lock_row(session, subject)
    floor = policy.offline_floor_limit_fen()
    if _granted_today(session, subject.id, day) + sale.integrity_discount_fen > floor:
        raise Rejected("over_floor_limit", details={"floor_limit_fen": floor})
    if verified.kind == "dynamic":
        assert verified.expires_at is not None
        consume_dynamic_code(session, verified.jti, verified.expires_at)
    wallets = household_wallets(session, subject)
    state = lock_accounts(session, subject.township_id, [wallets.integrity.id])[
        wallets.integrity.id
    ]
    granted = sale.integrity_discount_fen
    taken = min(granted, max(0, state.posted - state.held))
    booked = open_business_date(session, partner.id, day)  # a closed day takes nothing
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
        discount_rate_bp=0,
        integrity_discount_fen=taken,
        offline_shortfall_fen=shortfall,
        cash_due_fen=sale.amount_fen - granted,
        needs_review=shortfall > 0,
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
    status = "applied_short" if shortfall else "applied"
    result: dict[str, Any] = {
        "local_id": sale.local_id,
        "status": status,
        "payment_id": payment.public_id,
        "integrity_discount_fen": taken,
        "shortfall_fen": shortfall,
    }
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
) -> dict[str, Any]:
    """Apply one offline sale exactly once; returns its result (the stored one on repeat)."""
    now = now or utcnow()
    stored = _stored(session, terminal, sale.local_id)
    if stored is not None:
        return stored
    try:
        with session.begin_nested():
            return _apply(session, terminal, partner, batch_id, sale, now)
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
    return [apply_sale(session, terminal, partner, batch_id, s, now=now) for s in sales]
