"""Closing business dates: the cut-off, the job, the admin action and reopening.

A partner's business date D is due for closing once local time passes D+1 at the region's
`settlement_cutoff_hour` (2 = 02:00 the next morning). Closing freezes the figures into the
current statement version; a closed statement never changes. Anything booked later (a
refund, a late offline sale) goes to the partner's first open date (`first_open_date`).

Races: the closer locks the partner row FOR UPDATE; bookings that ask "is this day open?"
(`is_closed`, `first_open_date`) lock it FOR SHARE, so a void or late sale either commits
before the day is frozen (and is counted) or sees the closed statement (and moves on).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select, union
from sqlalchemy.orm import Session

from mall.audit import services as audit
from mall.clock import business_date, local_zone, utcnow
from mall.daybook.models import SettlementStatement
from mall.daybook.services import (
    current_statement,
    last_closed,
    lock_partner,
)
from mall.errors import Conflict, NotFound, ValidationFailed
from mall.partners.models import Partner
from mall.payments.models import Payment, Refund
from mall.regions.models import Region
from mall.regions.services import effective_settings
from mall.settlement.figures import compute_day
from mall.users.models import User

DEFAULT_CUTOFF_HOUR = 2


def cutoff_hour(session: Session, partner: Partner) -> int:
    region = session.get(Region, partner.township_id)
    if region is None:
        return DEFAULT_CUTOFF_HOUR
    value = effective_settings(session, region).get("settlement_cutoff_hour")
    if type(value) is not int or not 0 <= value <= 23:
        return DEFAULT_CUTOFF_HOUR
    return value


def due_through(now: datetime, hour: int) -> date:
    """The last business date whose cut-off has passed at `now`."""
    local = now.astimezone(local_zone())
    return (local - timedelta(hours=hour)).date() - timedelta(days=1)


def _freeze(
    session: Session, partner: Partner, day: date, actor: str, now: datetime
) -> SettlementStatement:
    statement = current_statement(session, partner.id, day)
    if statement is not None and statement.status == "closed":
        raise Conflict("invalid_state", details={"reason": "already_closed"})
    if statement is None:
        last_version = session.scalar(
            select(func.max(SettlementStatement.version)).where(
                SettlementStatement.partner_id == partner.id,
                SettlementStatement.business_date == day,
            )
        )
        statement = SettlementStatement(
            partner_id=partner.id,
            county_id=partner.county_id,
            township_id=partner.township_id,
            business_date=day,
            version=(last_version or 0) + 1,
            created_at=now,
        )
        session.add(statement)
    figures = compute_day(session, partner.id, day)
    for key, value in figures.totals.items():
        setattr(statement, key, value)
    statement.by_township = figures.by_township()
    statement.status = "closed"
    statement.closed_at = now
    statement.closed_by = actor
    session.flush()
    return statement


def close_statement(
    session: Session,
    user: User,
    partner: Partner,
    day: date,
    *,
    now: datetime | None = None,
) -> SettlementStatement:
    """The admin action: close a past business date now, before or after its cut-off
    (today cannot be closed: sales are still being made). Audited."""
    now = now or utcnow()
    if day >= business_date(now):
        raise ValidationFailed(details={"fields": {"business_date": ["a past business date"]}})
    lock_partner(session, partner.id, share=False)
    statement = _freeze(session, partner, day, f"user:{user.id}", now)
    audit.record(
        session,
        actor=user,
        action="settlement.close",
        object_type="settlement_statement",
        object_id=statement.id,
        county_id=partner.county_id,
        township_id=partner.township_id,
        after={
            "partner_id": partner.id,
            "business_date": day.isoformat(),
            "version": statement.version,
            "net_payable_fen": statement.net_payable_fen,
        },
    )
    return statement


def _candidate_days(session: Session, partner_id: int, through: date) -> list[date]:
    last = last_closed(session, partner_id)
    pay = select(Payment.business_date.label("d")).where(
        Payment.partner_id == partner_id, Payment.business_date <= through
    )
    ref = select(Refund.business_date.label("d")).where(
        Refund.partner_id == partner_id, Refund.business_date <= through
    )
    if last is not None:
        pay = pay.where(Payment.business_date > last)
        ref = ref.where(Refund.business_date > last)
    reopened = select(SettlementStatement.business_date.label("d")).where(
        SettlementStatement.partner_id == partner_id,
        SettlementStatement.status == "open",
        SettlementStatement.business_date <= through,
    )
    days = session.scalars(union(pay, ref, reopened)).all()
    return sorted(set(days))


def close_due_statements(session: Session, now: datetime | None = None) -> int:
    """Close every partner's business dates whose cut-off has passed (the jobs command).
    Idempotent: a closed day is skipped. Returns how many statements were closed."""
    now = now or utcnow()
    closed = 0
    hours: dict[int, int] = {}
    for partner in session.scalars(select(Partner).order_by(Partner.id)).all():
        if partner.township_id not in hours:
            hours[partner.township_id] = cutoff_hour(session, partner)
        through = due_through(now, hours[partner.township_id])
        days = _candidate_days(session, partner.id, through)
        if not days:
            continue
        lock_partner(session, partner.id, share=False)
        for day in days:
            current = current_statement(session, partner.id, day)
            if current is not None and current.status == "closed":
                continue
            _freeze(session, partner, day, "system:settlement-closing", now)
            closed += 1
    return closed


def reopen_statement(
    session: Session, user: User, statement: SettlementStatement, reason: str
) -> SettlementStatement:
    """Reopen a closed day: the closed version is superseded (kept, with its payout, as
    history) and a new open version starts. Audited; the reason is required."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(details={"fields": {"reason": ["required"]}})
    lock_partner(session, statement.partner_id, share=False)
    session.refresh(statement)
    if statement.status != "closed":
        raise Conflict("invalid_state", details={"status": statement.status})
    statement.status = "superseded"
    session.flush()
    new = SettlementStatement(
        partner_id=statement.partner_id,
        county_id=statement.county_id,
        township_id=statement.township_id,
        business_date=statement.business_date,
        version=statement.version + 1,
        status="open",
        reopen_reason=reason[:500],
        created_at=utcnow(),
    )
    session.add(new)
    session.flush()
    audit.record(
        session,
        actor=user,
        action="settlement.reopen",
        object_type="settlement_statement",
        object_id=new.id,
        county_id=statement.county_id,
        township_id=statement.township_id,
        before={"statement_id": statement.id, "version": statement.version, "status": "closed"},
        after={"statement_id": new.id, "version": new.version, "status": "open"},
        note=reason,
    )
    return new


def get_statement(session: Session, statement_id: int) -> SettlementStatement:
    if not 0 < statement_id < 2**63:
        raise NotFound()
    statement = session.get(SettlementStatement, statement_id)
    if statement is None:
        raise NotFound()
    return statement
