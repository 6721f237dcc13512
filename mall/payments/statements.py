"""Reconciliation reads: a partner's payments of a day (keyset) and its daily statement."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from mall.daybook.services import closed_figures
from mall.payments.models import Payment, Refund
from mall.payments.services import business_date_settled
from mall.reports import exports

# Payments that count: what was completed (refunds are counted by their own day).
_COUNTED = ("completed",)


def list_payments(
    session: Session,
    partner_id: int,
    day: date,
    *,
    after_id: int | None,
    limit: int = 100,
    newest_first: bool = False,
) -> tuple[list[Payment], int | None]:
    """The partner's payments of `day` in id order (reconciliation reads them oldest first,
    a till's screen newest first); returns the page and the next cursor."""
    stmt = (
        select(Payment)
        .where(Payment.partner_id == partner_id, Payment.business_date == day)
        .options(selectinload(Payment.items), selectinload(Payment.refunds))
        .order_by(Payment.id.desc() if newest_first else Payment.id)
        .limit(limit + 1)
    )
    if after_id is not None:
        stmt = stmt.where(Payment.id < after_id if newest_first else Payment.id > after_id)
    rows = list(session.scalars(stmt))
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], next_cursor


def daily_statement(session: Session, partner_id: int, day: date) -> dict[str, Any]:
    """Counts and totals of the partner's day, in fen and points. `net_payable_fen` is what
    the township owes for the day: integrity discounts, the settlement value of redeemed
    goods and offline shortfalls, less what refunds gave back. A closed day answers the
    figures frozen when it closed (mall.settlement)."""
    frozen = closed_figures(session, partner_id, day)
    if frozen is not None:
        return {"partner_id": partner_id, "business_date": day, "closed": True, **frozen}
    p = session.execute(
        select(
            func.count(Payment.id),
            func.coalesce(func.sum(Payment.amount_fen), 0),
            func.coalesce(func.sum(Payment.integrity_discount_fen), 0),
            func.coalesce(func.sum(Payment.offline_shortfall_fen), 0),
            func.coalesce(func.sum(Payment.points_cost), 0),
            func.coalesce(func.sum(Payment.points_settlement_fen), 0),
            func.coalesce(func.sum(Payment.cash_due_fen), 0),
        ).where(
            Payment.partner_id == partner_id,
            Payment.business_date == day,
            Payment.status.in_(_COUNTED),
        )
    ).one()
    r = session.execute(
        select(
            func.count(Refund.id),
            func.coalesce(func.sum(Refund.amount_fen), 0),
            func.coalesce(func.sum(Refund.integrity_fen), 0),
            func.coalesce(func.sum(Refund.points), 0),
            func.coalesce(func.sum(Refund.settlement_fen), 0),
        ).where(Refund.partner_id == partner_id, Refund.business_date == day)
    ).one()
    voided = session.scalar(
        select(func.count(Payment.id)).where(
            Payment.partner_id == partner_id,
            Payment.business_date == day,
            Payment.status.in_(("voided", "expired")),
        )
    )
    flagged = session.scalar(
        select(func.count(Payment.id)).where(
            Payment.partner_id == partner_id,
            Payment.business_date == day,
            Payment.needs_review.is_(True),
        )
    )
    integrity, shortfall, settlement = int(p[2]), int(p[3]), int(p[5])
    refund_integrity, refund_settlement = int(r[2]), int(r[4])
    return {
        "partner_id": partner_id,
        "business_date": day,
        "closed": business_date_settled(session, partner_id, day),
        "payments_count": int(p[0]),
        "sales_amount_fen": int(p[1]),
        "integrity_discount_fen": integrity,
        "offline_shortfall_fen": shortfall,
        "points_redeemed": int(p[4]),
        "points_settlement_fen": settlement,
        "cash_due_fen": int(p[6]),
        "voided_count": int(voided or 0),
        "needs_review_count": int(flagged or 0),
        "refunds_count": int(r[0]),
        "refunded_amount_fen": int(r[1]),
        "refunded_integrity_fen": refund_integrity,
        "refunded_points": int(r[3]),
        "refunded_settlement_fen": refund_settlement,
        "net_payable_fen": integrity
        + shortfall
        + settlement
        - refund_integrity
        - refund_settlement,
    }


def statement_csv(statement: dict[str, Any]) -> str:
    """The statement as a two-column CSV (field, value), UTF-8 with a BOM for Excel."""
    return exports.csv_text(["field", "value"], statement.items())
