"""Tables of the benefit list: benefits and the record of each use."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from mall.db import Base
from mall.models_common import BigId, created_at

BENEFIT_KINDS = (
    "percent_discount",  # percent_bp of the amount, at most cap_fen
    "fixed_discount",  # fixed_fen off (at most the amount)
    "deposit_waiver",  # no deposit asked (hospital, library)
    "priority_service",  # served first (green channel)
    "free_item",  # an item or service free of charge: the bill, at most cap_fen
)
FUNDERS = ("partner", "township_fund")
LIMIT_PERIODS = ("day", "month", "year")


def _sql_list(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class Benefit(Base):
    """One line of the benefit list.

    Scope: a county (`township_id` NULL) or one township; the benefit applies at partners of
    one category in that scope, or at one named partner. A household gets it when its
    effective level rank is at least `min_level_rank` and it lives in the same scope.
    Limits count uses per household: per business day, month and year (each optional), and
    `one_at_a_time` (e.g. a library deposit waiver: one open loan until the use is closed).
    What one use is worth follows from `kind` and its terms alone (`percent_bp`, `fixed_fen`,
    `cap_fen`; mall.benefits.services.discount_for), applied to the bill the till reports.
    """

    __tablename__ = "benefits"
    __table_args__ = (
        CheckConstraint(f"kind IN ({_sql_list(BENEFIT_KINDS)})", name="kind"),
        CheckConstraint(f"funded_by IN ({_sql_list(FUNDERS)})", name="funded_by"),
        CheckConstraint(
            "(partner_id IS NULL) <> (partner_category IS NULL)", name="partner_or_category"
        ),
        CheckConstraint("min_level_rank >= 1", name="min_level_rank_positive"),
        CheckConstraint(
            "kind <> 'percent_discount' OR (percent_bp BETWEEN 1 AND 10000)",
            name="percent_bp_for_percent",
        ),
        CheckConstraint("kind <> 'fixed_discount' OR fixed_fen > 0", name="fixed_fen_for_fixed"),
        CheckConstraint("cap_fen IS NULL OR cap_fen > 0", name="cap_fen_positive"),
        CheckConstraint(
            "(limit_per_day IS NULL OR limit_per_day > 0)"
            " AND (limit_per_month IS NULL OR limit_per_month > 0)"
            " AND (limit_per_year IS NULL OR limit_per_year > 0)",
            name="limits_positive",
        ),
        CheckConstraint("valid_until IS NULL OR valid_until >= valid_from", name="validity_order"),
        Index("ix_benefits_county_id_category", "county_id", "partner_category"),
        Index("ix_benefits_partner_id", "partner_id"),
        Index("ix_benefits_township_id", "township_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    county_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    township_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    partner_category: Mapped[str | None] = mapped_column(String(20))
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id", ondelete="RESTRICT"))
    min_level_rank: Mapped[int] = mapped_column(Integer, default=1)
    kind: Mapped[str] = mapped_column(String(20))
    percent_bp: Mapped[int | None] = mapped_column(Integer)
    cap_fen: Mapped[int | None] = mapped_column(Integer)
    fixed_fen: Mapped[int | None] = mapped_column(Integer)
    title_zh: Mapped[str] = mapped_column(String(100))
    title_en: Mapped[str] = mapped_column(String(100), default="")
    description: Mapped[str] = mapped_column(String(500), default="")
    description_en: Mapped[str] = mapped_column(String(500), default="")
    limit_per_day: Mapped[int | None] = mapped_column(Integer)
    limit_per_month: Mapped[int | None] = mapped_column(Integer)
    limit_per_year: Mapped[int | None] = mapped_column(Integer)
    one_at_a_time: Mapped[bool] = mapped_column(Boolean, default=False)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    funded_by: Mapped[str] = mapped_column(String(16), default="partner")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[created_at]
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BenefitUse(Base):
    """A benefit granted once to a household at a partner. Never edited, except that an
    open use of a one-at-a-time benefit is closed (`closed_at`) when it ends; other uses are
    closed when recorded. `amount_fen` is the bill the till reported; `discount_fen` is what
    the benefit was worth in money, computed by the server from the benefit's terms on that
    bill, never sent by the till (0 for a waiver or priority service); `funded_by` is copied
    from the benefit for settlement."""

    __tablename__ = "benefit_uses"
    __table_args__ = (
        CheckConstraint("amount_fen IS NULL OR amount_fen >= 0", name="amount_not_negative"),
        CheckConstraint("discount_fen >= 0", name="discount_not_negative"),
        CheckConstraint(
            "amount_fen IS NULL OR discount_fen <= amount_fen", name="discount_within_amount"
        ),
        CheckConstraint(f"funded_by IN ({_sql_list(FUNDERS)})", name="funded_by"),
        # The limit checks: uses of one benefit by one household in a date range.
        Index("ix_benefit_uses_benefit_subject_date", "benefit_id", "subject_id", "business_date"),
        # Open uses (one-at-a-time benefits): a small partial index.
        Index(
            "ix_benefit_uses_open",
            "benefit_id",
            "subject_id",
            postgresql_where=text("closed_at IS NULL"),
            sqlite_where=text("closed_at IS NULL"),
        ),
        Index("ix_benefit_uses_partner_date", "partner_id", "business_date"),
        Index("ix_benefit_uses_subject_id", "subject_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    benefit_id: Mapped[int] = mapped_column(ForeignKey("benefits.id", ondelete="RESTRICT"))
    subject_id: Mapped[int] = mapped_column(ForeignKey("credit_subjects.id", ondelete="RESTRICT"))
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="RESTRICT"))
    terminal_id: Mapped[int | None] = mapped_column(ForeignKey("terminals.id", ondelete="RESTRICT"))
    county_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    township_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    business_date: Mapped[date] = mapped_column(Date)
    amount_fen: Mapped[int | None] = mapped_column(Integer)
    discount_fen: Mapped[int] = mapped_column(Integer, default=0)
    funded_by: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[created_at]
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
