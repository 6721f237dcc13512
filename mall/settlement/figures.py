"""Statement figures computed from the payments: set-based, one pass per table.

Both queries read a partner's date range through the (partner_id, business_date) indexes of
`payments` and `payment_refunds` and group in the database, so a month of 100,000 payments
is two index range scans (bench/settlement_bench.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from mall.daybook.models import FIGURES
from mall.payments.models import Payment, Refund


@dataclass
class TownshipNet:
    """The net movement of a partner's payables in one ledger tenant on one day."""

    township_id: int
    integrity_fen: int = 0  # CNY payable: discounts + shortfalls - refunded integrity money
    points: int = 0  # POINTS payable: points redeemed - points refunded
    settlement_fen: int = 0  # what those points are worth at the goods' settlement prices

    def as_dict(self) -> dict[str, int]:
        return {
            "township_id": self.township_id,
            "integrity_fen": self.integrity_fen,
            "points": self.points,
            "settlement_fen": self.settlement_fen,
        }


@dataclass
class DayFigures:
    business_date: date
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIGURES, 0))
    townships: dict[int, TownshipNet] = field(default_factory=dict)

    def township(self, township_id: int) -> TownshipNet:
        if township_id not in self.townships:
            self.townships[township_id] = TownshipNet(township_id)
        return self.townships[township_id]

    def by_township(self) -> list[dict[str, int]]:
        return [self.townships[t].as_dict() for t in sorted(self.townships)]


def _sum_if(condition: Any, column: Any) -> Any:
    return func.coalesce(func.sum(case((condition, column), else_=0)), 0)


def _count_if(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def compute_range(
    session: Session, partner_id: int, first: date, last: date
) -> dict[date, DayFigures]:
    """Figures of every business date in [first, last] with any activity, by day."""
    done = Payment.status == "completed"
    pay_rows = session.execute(
        select(
            Payment.business_date,
            Payment.township_id,
            _count_if(done),
            _sum_if(done, Payment.amount_fen),
            _sum_if(done, Payment.integrity_discount_fen),
            _sum_if(done, Payment.offline_shortfall_fen),
            _sum_if(done, Payment.points_cost),
            _sum_if(done, Payment.points_settlement_fen),
            _sum_if(done, Payment.cash_due_fen),
            _count_if(Payment.status.in_(("voided", "expired"))),
            _count_if(Payment.needs_review.is_(True)),
        )
        .where(
            Payment.partner_id == partner_id,
            Payment.business_date >= first,
            Payment.business_date <= last,
        )
        .group_by(Payment.business_date, Payment.township_id)
    ).all()
    refund_rows = session.execute(
        select(
            Refund.business_date,
            Payment.township_id,
            func.count(Refund.id),
            func.coalesce(func.sum(Refund.amount_fen), 0),
            func.coalesce(func.sum(Refund.integrity_fen), 0),
            func.coalesce(func.sum(Refund.points), 0),
            func.coalesce(func.sum(Refund.settlement_fen), 0),
        )
        .join(Payment, and_(Payment.id == Refund.payment_id))
        .where(
            Refund.partner_id == partner_id,
            Refund.business_date >= first,
            Refund.business_date <= last,
        )
        .group_by(Refund.business_date, Payment.township_id)
    ).all()
    days: dict[date, DayFigures] = {}
    for row in pay_rows:
        day = days.setdefault(row[0], DayFigures(row[0]))
        t = day.totals
        (count, sales, integrity, shortfall, points, settlement, cash, voided, flagged) = (
            int(v) for v in row[2:]
        )
        t["payments_count"] += count
        t["sales_amount_fen"] += sales
        t["integrity_discount_fen"] += integrity
        t["offline_shortfall_fen"] += shortfall
        t["points_redeemed"] += points
        t["points_settlement_fen"] += settlement
        t["cash_due_fen"] += cash
        t["voided_count"] += voided
        t["needs_review_count"] += flagged
        net = day.township(int(row[1]))
        net.integrity_fen += integrity + shortfall
        net.points += points
        net.settlement_fen += settlement
    for row in refund_rows:
        day = days.setdefault(row[0], DayFigures(row[0]))
        t = day.totals
        count, amount, integrity, points, settlement = (int(v) for v in row[2:])
        t["refunds_count"] += count
        t["refunded_amount_fen"] += amount
        t["refunded_integrity_fen"] += integrity
        t["refunded_points"] += points
        t["refunded_settlement_fen"] += settlement
        net = day.township(int(row[1]))
        net.integrity_fen -= integrity
        net.points -= points
        net.settlement_fen -= settlement
    for day in days.values():
        t = day.totals
        t["net_payable_fen"] = (
            t["integrity_discount_fen"]
            + t["offline_shortfall_fen"]
            + t["points_settlement_fen"]
            - t["refunded_integrity_fen"]
            - t["refunded_settlement_fen"]
        )
    return days


def compute_day(session: Session, partner_id: int, day: date) -> DayFigures:
    return compute_range(session, partner_id, day, day).get(day) or DayFigures(day)


def add_up(days: list[DayFigures]) -> dict[str, int]:
    """The totals of several days (a month's statement)."""
    total = dict.fromkeys(FIGURES, 0)
    for day in days:
        for key in FIGURES:
            total[key] += day.totals[key]
    return total
