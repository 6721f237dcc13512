"""Points tables: earning rules, batches of events (maker-checker), import errors, expiry runs."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from mall.db import Base
from mall.models_common import BigId, created_at

BATCH_STATUSES = ("draft", "invalid", "submitted", "approved", "rejected")
BATCH_SOURCES = ("manual", "xlsx", "csv", "upstream")
EVENT_STATUSES = ("pending", "approved", "rejected")
RULE_CATEGORIES = ("volunteering", "public_good", "customs_reform", "village_rules", "other")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class EarningRule(Base):
    """A way to earn (or lose) points in a region and the regions below it. A rule at a
    lower level with the same code replaces the inherited one."""

    __tablename__ = "point_rules"
    __table_args__ = (
        UniqueConstraint("region_id", "code"),
        CheckConstraint("points <> 0", name="points_not_zero"),
        CheckConstraint(f"category IN ({_in(RULE_CATEGORIES)})", name="category"),
        CheckConstraint(
            "(cap_week IS NULL OR cap_week > 0) AND (cap_month IS NULL OR cap_month > 0)"
            " AND (cap_year IS NULL OR cap_year > 0)",
            name="caps_positive",
        ),
        Index("ix_point_rules_county_id_code", "county_id", "code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    county_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    township_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(32), default="other")
    points: Mapped[int] = mapped_column(Integer)  # per event; negative rules deduct
    # Caps on the points one household earns from this rule per calendar week/month/year.
    cap_week: Mapped[int | None] = mapped_column(Integer)
    cap_month: Mapped[int | None] = mapped_column(Integer)
    cap_year: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[created_at]


class PointBatch(Base):
    """Events recorded together and approved (or rejected) together by someone else."""

    __tablename__ = "point_batches"
    __table_args__ = (
        CheckConstraint(f"status IN ({_in(BATCH_STATUSES)})", name="status"),
        CheckConstraint(f"source IN ({_in(BATCH_SOURCES)})", name="source"),
        CheckConstraint("checker_id IS NULL OR checker_id <> maker_id", name="maker_checker"),
        Index("ix_point_batches_township_id_status_id", "township_id", "status", "id"),
        Index("ix_point_batches_county_id_id", "county_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    county_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    township_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    village_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    source: Mapped[str] = mapped_column(String(16), default="manual")
    filename: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    maker_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    checker_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_note: Mapped[str | None] = mapped_column(String(500))
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_bad: Mapped[int] = mapped_column(Integer, default=0)
    events: Mapped[int] = mapped_column(Integer, default=0)
    households: Mapped[int] = mapped_column(Integer, default=0)
    points_issued: Mapped[int] = mapped_column(BigInteger, default=0)
    points_deducted: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[created_at]


class PointEvent(Base):
    """One behaviour event of one household under one rule. `awarded` is what counted after
    the caps, fixed when the batch is approved."""

    __tablename__ = "point_events"
    __table_args__ = (
        CheckConstraint(f"status IN ({_in(EVENT_STATUSES)})", name="status"),
        CheckConstraint("points <> 0", name="points_not_zero"),
        Index("ix_point_events_batch_id_id", "batch_id", "id"),
        Index("ix_point_events_subject_rule_day", "subject_id", "rule_id", "occurred_on"),
        Index("ix_point_events_township_id_status", "township_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    batch_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("point_batches.id", ondelete="RESTRICT")
    )
    county_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    township_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    village_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    subject_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("credit_subjects.id", ondelete="RESTRICT")
    )
    rule_id: Mapped[int] = mapped_column(ForeignKey("point_rules.id", ondelete="RESTRICT"))
    points: Mapped[int] = mapped_column(Integer)
    awarded: Mapped[int | None] = mapped_column(Integer)
    occurred_on: Mapped[date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(String(200), default="")
    row_number: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")


class PointImportError(Base):
    """A row of an imported file that failed validation, with its reason."""

    __tablename__ = "point_import_errors"
    __table_args__ = (
        Index("ix_point_import_errors_batch_id_row_number", "batch_id", "row_number"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    batch_id: Mapped[int] = mapped_column(BigId, ForeignKey("point_batches.id", ondelete="CASCADE"))
    row_number: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(200))


class PointExpiryRun(Base):
    """One township's point expiry for one cutoff date: done once."""

    __tablename__ = "point_expiry_runs"
    __table_args__ = (UniqueConstraint("township_id", "cutoff"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    township_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    cutoff: Mapped[date] = mapped_column(Date)
    households: Mapped[int] = mapped_column(Integer, default=0)
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    ran_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
