"""Credit-village applications with their step log, and village assessments.

An application moves applied → town_passed → county_passed → notice → awarded, or to
rejected at any stage; an awarded one later becomes expired or superseded (by its renewal).
Each step's reviewer and time are columns here and a row in `credit_village_events`.

An assessment plan (per county and period) holds its indicators (weights and sub-items) and
score bands as JSON documents, validated by the services; a village's assessment moves
scored → approved (by a second admin) → paid (one ledger entry), or rejected back to scoring.
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
from mall.models_common import BigId, JsonDoc, created_at, json_default

APPLICATION_STATUSES = (
    "applied",
    "town_passed",
    "county_passed",
    "notice",
    "awarded",
    "rejected",
    "expired",
    "superseded",
)
OPEN_APPLICATION_STATUSES = ("applied", "town_passed", "county_passed", "notice")
GRADES = ("AAA", "AA", "A")
ASSESSMENT_STATUSES = ("scored", "approved", "paid", "rejected")
FUNDS = ("township", "county")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class CreditVillageApplication(Base):
    __tablename__ = "credit_village_applications"
    __table_args__ = (
        CheckConstraint(f"status IN ({_in(APPLICATION_STATUSES)})", name="status"),
        CheckConstraint(f"grade_applied IN ({_in(GRADES)})", name="grade_applied"),
        CheckConstraint(
            f"grade_awarded IS NULL OR grade_awarded IN ({_in(GRADES)})", name="grade_awarded"
        ),
        CheckConstraint(
            "status NOT IN ('awarded', 'expired', 'superseded')"
            " OR (grade_awarded IS NOT NULL AND valid_until IS NOT NULL)",
            name="awarded_has_grade",
        ),
        # One application under way per village; the database refuses a second.
        Index(
            "uq_credit_village_applications_one_open",
            "village_id",
            unique=True,
            postgresql_where=text(f"status IN ({_in(OPEN_APPLICATION_STATUSES)})"),
            sqlite_where=text(f"status IN ({_in(OPEN_APPLICATION_STATUSES)})"),
        ),
        Index("ix_credit_village_applications_township_id_id", "township_id", "id"),
        Index("ix_credit_village_applications_county_id_status", "county_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subject_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("credit_subjects.id", ondelete="RESTRICT")
    )
    county_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    township_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    village_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(16), default="applied")
    grade_applied: Mapped[str] = mapped_column(String(8))
    grade_awarded: Mapped[str | None] = mapped_column(String(8))
    statement: Mapped[str] = mapped_column(String(2000), default="")
    renewal_of_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("credit_village_applications.id", ondelete="RESTRICT")
    )
    applied_by: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    applied_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    town_reviewer_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT")
    )
    town_reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    town_opinion: Mapped[str | None] = mapped_column(String(1000))
    county_reviewer_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT")
    )
    county_reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    county_opinion: Mapped[str | None] = mapped_column(String(1000))
    notice_posted_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT")
    )
    notice_from: Mapped[date | None] = mapped_column(Date)
    notice_until: Mapped[date | None] = mapped_column(Date)  # the last day of the notice
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_no: Mapped[str | None] = mapped_column(String(64))
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    plaque_serial: Mapped[str | None] = mapped_column(String(32), unique=True)
    rejected_stage: Mapped[str | None] = mapped_column(String(16))
    rejected_reason: Mapped[str | None] = mapped_column(String(1000))
    rejected_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    rejected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[created_at]


class CreditVillageEvent(Base):
    """Every transition of every application, in order, with who and when."""

    __tablename__ = "credit_village_events"
    __table_args__ = (Index("ix_credit_village_events_application_id", "application_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    application_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("credit_village_applications.id", ondelete="RESTRICT")
    )
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    actor_label: Mapped[str] = mapped_column(String(100))
    note: Mapped[str] = mapped_column(String(1000), default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AssessmentPlan(Base):
    """A county's village assessment for one period: indicators, sub-items, bands, fund."""

    __tablename__ = "assessment_plans"
    __table_args__ = (
        UniqueConstraint("county_id", "period"),
        CheckConstraint(f"fund IN ({_in(FUNDS)})", name="fund"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    county_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    period: Mapped[str] = mapped_column(String(16))  # "2025", "2025H1", "2025Q3"
    name: Mapped[str] = mapped_column(String(100))
    fund: Mapped[str] = mapped_column(String(16), default="township")
    # [{"code", "name", "weight", "items": [{"code", "name", "max"}]}]; weights sum to 100.
    indicators: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc)
    # [{"min_score", "reward_fen"}], highest first.
    bands: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[created_at]


class VillageAssessment(Base):
    __tablename__ = "village_assessments"
    __table_args__ = (
        UniqueConstraint("plan_id", "village_id"),
        CheckConstraint(f"status IN ({_in(ASSESSMENT_STATUSES)})", name="status"),
        CheckConstraint(f"fund IN ({_in(FUNDS)})", name="fund"),
        CheckConstraint("score_centi >= 0 AND score_centi <= 10000", name="score"),
        CheckConstraint("reward_fen >= 0", name="reward_not_negative"),
        CheckConstraint(
            "approved_by IS NULL OR approved_by <> scored_by", name="approver_not_scorer"
        ),
        CheckConstraint("status <> 'paid' OR approved_by IS NOT NULL", name="paid_after_approval"),
        Index("ix_village_assessments_township_id_status", "township_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    plan_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("assessment_plans.id", ondelete="RESTRICT")
    )
    county_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    township_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    village_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    collective_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("credit_subjects.id", ondelete="RESTRICT")
    )
    status: Mapped[str] = mapped_column(String(16), default="scored")
    item_scores: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=json_default)
    score_detail: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=json_default)
    score_centi: Mapped[int] = mapped_column(Integer)
    band_min_score: Mapped[int | None] = mapped_column(Integer)
    reward_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    fund: Mapped[str] = mapped_column(String(16))
    scored_by: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    scored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rejected_reason: Mapped[str | None] = mapped_column(String(1000))
    paid_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    entry_id: Mapped[int | None] = mapped_column(BigInteger)  # the reward's ledger entry
    created_at: Mapped[created_at]
