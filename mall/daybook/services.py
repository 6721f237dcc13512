"""Which business days of a partner are closed, and where a late booking goes.

Payments ask this (a void of a settled day is refused; a refund or a late offline sale is
booked on the first open day); mall.settlement closes, reopens and pays the days. Races: the
closer locks the partner row FOR UPDATE; bookings that ask "is this day open?" (`is_closed`,
`first_open_date`) lock it FOR SHARE, so a void or late sale either commits before the day is
frozen (and is counted) or sees the closed statement (and moves on).
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mall.daybook.models import SettlementStatement
from mall.partners.models import Partner


def lock_partner(session: Session, partner_id: int, *, share: bool) -> None:
    session.execute(select(Partner.id).where(Partner.id == partner_id).with_for_update(read=share))


def current_statement(session: Session, partner_id: int, day: date) -> SettlementStatement | None:
    """The open or closed version of the partner's day (never a superseded one)."""
    return session.scalar(
        select(SettlementStatement).where(
            SettlementStatement.partner_id == partner_id,
            SettlementStatement.business_date == day,
            SettlementStatement.status != "superseded",
        )
    )


def is_closed(session: Session, partner_id: int, day: date, *, lock: bool = True) -> bool:
    if lock:
        lock_partner(session, partner_id, share=True)
    found = session.scalar(
        select(SettlementStatement.id).where(
            SettlementStatement.partner_id == partner_id,
            SettlementStatement.business_date == day,
            SettlementStatement.status == "closed",
        )
    )
    return found is not None


def last_closed(session: Session, partner_id: int) -> date | None:
    return session.scalar(
        select(func.max(SettlementStatement.business_date)).where(
            SettlementStatement.partner_id == partner_id,
            SettlementStatement.status == "closed",
        )
    )


def first_open_date(session: Session, partner_id: int, day: date) -> date:
    """Where something of `day` is booked: `day` itself unless it is closed or lies before
    the partner's last closed day (then it would never be closed by the job), in which case
    the day after the last closed one. A day reopened by an admin takes its own bookings."""
    lock_partner(session, partner_id, share=True)
    current = current_statement(session, partner_id, day)
    if current is not None and current.status == "open":
        return day
    last = last_closed(session, partner_id)
    if last is None or day > last:
        return day
    return last + timedelta(days=1)


def closed_figures(session: Session, partner_id: int, day: date) -> dict[str, int] | None:
    """The frozen figures of a closed day (the POS statement answers these), else None."""
    row = session.scalar(
        select(SettlementStatement).where(
            SettlementStatement.partner_id == partner_id,
            SettlementStatement.business_date == day,
            SettlementStatement.status == "closed",
        )
    )
    return row.figures() if row is not None else None
