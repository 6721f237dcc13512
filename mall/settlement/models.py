"""Reconciliation uploads (the daily statements themselves are in mall.daybook).

A statement row is one version of a partner's business date. While `open` it carries no
figures (they are computed live from the payments); closing freezes the figures into the
row and no service changes them afterwards. Reopening marks the closed version
`superseded` and starts the next version `open`; at most one version per partner and date is
not superseded (a partial unique index), so two closers cannot both win.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from mall.db import Base
from mall.models_common import BigId, JsonDoc, created_at


class Reconciliation(Base):
    """A partner's own record of a day, as uploaded, and what matching it found."""

    __tablename__ = "settlement_reconciliations"
    __table_args__ = (
        CheckConstraint("file_format IN ('csv', 'xlsx')", name="file_format"),
        Index("ix_settlement_reconciliations_partner_date", "partner_id", "business_date"),
        Index("ix_settlement_reconciliations_township_id", "township_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="RESTRICT"))
    county_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    township_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    business_date: Mapped[date] = mapped_column(Date)
    filename: Mapped[str] = mapped_column(String(200))
    file_format: Mapped[str] = mapped_column(String(8))
    file_sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[str] = mapped_column(String(100))
    rows_count: Mapped[int] = mapped_column(Integer, default=0)
    matched_count: Mapped[int] = mapped_column(Integer, default=0)
    mismatched_count: Mapped[int] = mapped_column(Integer, default=0)
    missing_count: Mapped[int] = mapped_column(Integer, default=0)
    extra_count: Mapped[int] = mapped_column(Integer, default=0)
    # {"mismatched": [...], "missing": [...], "extra": [...], "errors": [...]}
    result: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    created_at: Mapped[created_at]
