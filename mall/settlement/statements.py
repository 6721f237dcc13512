"""Reading statements: one day (stored if closed, else live), a period, the POS view."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.daybook.models import FIGURES, SettlementStatement
from mall.partners.models import Partner
from mall.reports.exports import Cell
from mall.settlement.closing import current_statement
from mall.settlement.figures import DayFigures, compute_day, compute_range

LABELS = {
    "payments_count": "交易笔数",
    "sales_amount_fen": "销售金额(分)",
    "integrity_discount_fen": "诚信金抵扣(分)",
    "offline_shortfall_fen": "离线垫付(分)",
    "points_redeemed": "兑换积分",
    "points_settlement_fen": "积分兑换结算金额(分)",
    "cash_due_fen": "现金应收(分)",
    "voided_count": "撤销笔数",
    "needs_review_count": "待复核笔数",
    "refunds_count": "退款笔数",
    "refunded_amount_fen": "退款金额(分)",
    "refunded_integrity_fen": "退回诚信金(分)",
    "refunded_points": "退回积分",
    "refunded_settlement_fen": "退回结算金额(分)",
    "net_payable_fen": "应付净额(分)",
}
STATUS_LABELS = {"open": "未结", "closed": "已结", "superseded": "已作废版本"}
HEADERS = [
    "商户编号",
    "商户名称",
    "营业日",
    "版本",
    "状态",
    *(LABELS[k] for k in FIGURES),
    "付款凭证号",
    "付款日期",
]


@dataclass
class StatementView:
    """A partner's day as shown: the frozen figures when closed, live ones when open."""

    partner_id: int
    partner_name: str
    business_date: date
    statement_id: int | None
    version: int
    status: str
    figures: dict[str, int]
    by_township: list[dict[str, int]]
    closed_at: Any = None
    paid_reference: str | None = None
    paid_on: date | None = None
    reopen_reason: str | None = None

    @property
    def closed(self) -> bool:
        return self.status == "closed"

    def as_dict(self) -> dict[str, Any]:
        return {
            "partner_id": self.partner_id,
            "partner_name": self.partner_name,
            "business_date": self.business_date,
            "statement_id": self.statement_id,
            "version": self.version,
            "status": self.status,
            "closed": self.closed,
            "closed_at": self.closed_at,
            "paid_reference": self.paid_reference,
            "paid_on": self.paid_on,
            "reopen_reason": self.reopen_reason,
            "by_township": self.by_township,
            **self.figures,
        }

    def row(self) -> list[Cell]:
        return [
            self.partner_id,
            self.partner_name,
            self.business_date.isoformat(),
            self.version,
            STATUS_LABELS.get(self.status, self.status),
            *(self.figures[k] for k in FIGURES),
            self.paid_reference,
            self.paid_on.isoformat() if self.paid_on else None,
        ]


def _from_row(partner: Partner, row: SettlementStatement, live: DayFigures | None) -> StatementView:
    frozen = row.status != "open"
    return StatementView(
        partner_id=partner.id,
        partner_name=partner.name,
        business_date=row.business_date,
        statement_id=row.id,
        version=row.version,
        status=row.status,
        figures=row.figures() if frozen or live is None else dict(live.totals),
        by_township=list(row.by_township) if frozen or live is None else live.by_township(),
        closed_at=row.closed_at,
        paid_reference=row.paid_reference,
        paid_on=row.paid_on,
        reopen_reason=row.reopen_reason,
    )


def _live(partner: Partner, day: date, live: DayFigures) -> StatementView:
    return StatementView(
        partner_id=partner.id,
        partner_name=partner.name,
        business_date=day,
        statement_id=None,
        version=1,
        status="open",
        figures=dict(live.totals),
        by_township=live.by_township(),
    )


def day_statement(session: Session, partner: Partner, day: date) -> StatementView:
    row = current_statement(session, partner.id, day)
    if row is not None and row.status == "closed":
        return _from_row(partner, row, None)
    live = compute_day(session, partner.id, day)
    return _from_row(partner, row, live) if row is not None else _live(partner, day, live)


@dataclass
class PeriodStatement:
    partner_id: int
    first: date
    last: date
    days: list[StatementView]
    totals: dict[str, int]


def period_statement(
    session: Session, partner: Partner, first: date, last: date
) -> PeriodStatement:
    """Every day of [first, last] with activity or a statement, and the period's totals:
    one grouped query per table over the partner's date range, plus the stored rows."""
    live = compute_range(session, partner.id, first, last)
    stored = {
        row.business_date: row
        for row in session.scalars(
            select(SettlementStatement).where(
                SettlementStatement.partner_id == partner.id,
                SettlementStatement.business_date >= first,
                SettlementStatement.business_date <= last,
                SettlementStatement.status != "superseded",
            )
        )
    }
    days = []
    for day in sorted(set(live) | set(stored)):
        if day in stored:
            days.append(_from_row(partner, stored[day], live.get(day) or DayFigures(day)))
        else:
            days.append(_live(partner, day, live[day]))
    totals = dict.fromkeys(FIGURES, 0)
    for view in days:
        for key in FIGURES:
            totals[key] += view.figures[key]
    return PeriodStatement(partner.id, first, last, days, totals)


def history(session: Session, partner_id: int, day: date) -> list[SettlementStatement]:
    """Every stored version of the day, oldest first (superseded ones included)."""
    return list(
        session.scalars(
            select(SettlementStatement)
            .where(
                SettlementStatement.partner_id == partner_id,
                SettlementStatement.business_date == day,
            )
            .order_by(SettlementStatement.version)
        )
    )
