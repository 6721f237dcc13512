"""A partner's business days: one statement row per version of each day (open, closed or
superseded).

A statement row is one version of a partner's business date. While `open` it carries no
figures (they are computed live from the payments); closing freezes the figures into the
row and no service changes them afterwards. Reopening marks the closed version
`superseded` and starts the next version `open`; at most one version per partner and date is
not superseded (a partial unique index), so two closers cannot both win. (The table keeps
its name, settlement_statements; mall.settlement closes, reopens and pays the days.)
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from mall.db import Base
from mall.models_common import BigId, JsonDoc, created_at

STATEMENT_STATUSES = ("open", "closed", "superseded")

# The figures of a statement, in the order the exports show them (all integers: fen,
# points or counts). The same keys as the POS statement (mall.payments.statements).
FIGURES = (
    "payments_count",
    "sales_amount_fen",
    "integrity_discount_fen",
    "offline_shortfall_fen",
    "points_redeemed",
    "points_settlement_fen",
    "cash_due_fen",
    "voided_count",
    "needs_review_count",
    "refunds_count",
    "refunded_amount_fen",
    "refunded_integrity_fen",
    "refunded_points",
    "refunded_settlement_fen",
    "net_payable_fen",
)


class SettlementStatement(Base):
    __tablename__ = "settlement_statements"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'closed', 'superseded')", name="status"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("(status = 'open') = (closed_at IS NULL)", name="closed_at_when_closed"),
        CheckConstraint(
            "(paid_at IS NULL) = (paid_reference IS NULL)", name="paid_fields_together"
        ),
        UniqueConstraint("partner_id", "business_date", "version"),
        # One current (open or closed) version per partner and day.
        Index(
            "uq_settlement_statements_current",
            "partner_id",
            "business_date",
            unique=True,
            postgresql_where=text("status <> 'superseded'"),
            sqlite_where=text("status <> 'superseded'"),
        ),
        Index("ix_settlement_statements_township_date", "township_id", "business_date"),
        Index("ix_settlement_statements_county_date", "county_id", "business_date"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="RESTRICT"))
    # The partner's region: who may see and settle the statement.
    county_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    township_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    business_date: Mapped[date] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(12), default="open")

    payments_count: Mapped[int] = mapped_column(Integer, default=0)
    sales_amount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    integrity_discount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    offline_shortfall_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    points_redeemed: Mapped[int] = mapped_column(BigInteger, default=0)
    points_settlement_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    cash_due_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    voided_count: Mapped[int] = mapped_column(Integer, default=0)
    needs_review_count: Mapped[int] = mapped_column(Integer, default=0)
    refunds_count: Mapped[int] = mapped_column(Integer, default=0)
    refunded_amount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_integrity_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_points: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_settlement_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    net_payable_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    # Per ledger tenant (the households' townships): the net movement of the partner's
    # payables that day, [{"township_id", "integrity_fen", "points", "settlement_fen"}].
    by_township: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, default=list)

    created_at: Mapped[created_at]
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by: Mapped[str | None] = mapped_column(String(100))
    reopen_reason: Mapped[str | None] = mapped_column(String(500))
    paid_reference: Mapped[str | None] = mapped_column(String(100))
    paid_on: Mapped[date | None] = mapped_column(Date)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paid_by: Mapped[str | None] = mapped_column(String(100))

    def figures(self) -> dict[str, int]:
        return {key: int(getattr(self, key)) for key in FIGURES}
