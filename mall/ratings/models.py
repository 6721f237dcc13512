"""Rating tables: custom schemes, ratings (one row per rating, never deleted), appeals, history.

A household's current grade is cached on `credit_subjects` (level_code/level_rank/
level_valid_until) by the services in this package, in the same transaction as the rating
row changes; the partial unique indexes below let the database refuse two effective ratings
(or two open ones) for one household.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

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
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from mall.db import Base
from mall.models_common import BigId, JsonDoc, created_at, json_default

RATING_STATUSES = (
    "draft",
    "notice",
    "appealed",
    "effective",
    "expired",
    "superseded",
    "revoked",
    "withdrawn",
)
OPEN_STATUSES = ("draft", "notice", "appealed")
RATING_ORIGINS = ("review", "re_review", "downgrade", "re_rating", "upstream")
PERIOD_KINDS = ("year", "quarter")
APPEAL_STATUSES = ("open", "upheld", "changed")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class RatingScheme(Base):
    """A county's own scheme; the built-in ones (schemes.BUILT_IN) need no row."""

    __tablename__ = "rating_schemes"
    __table_args__ = (UniqueConstraint("county_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    county_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    code: Mapped[str] = mapped_column(String(32))
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[created_at]


class RatingSchemeLevel(Base):
    __tablename__ = "rating_scheme_levels"
    __table_args__ = (
        UniqueConstraint("scheme_id", "code"),
        UniqueConstraint("scheme_id", "rank"),
        CheckConstraint("rank > 0", name="rank_positive"),
        CheckConstraint("integrity_money_fen >= 0", name="money_not_negative"),
        CheckConstraint("discount_bp >= 0 AND discount_bp <= 10000", name="discount_bp"),
        CheckConstraint("score_threshold >= 0 AND score_threshold <= 100", name="threshold"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    scheme_id: Mapped[int] = mapped_column(ForeignKey("rating_schemes.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(16))
    label_zh: Mapped[str] = mapped_column(String(32))
    label_en: Mapped[str] = mapped_column(String(32))
    rank: Mapped[int] = mapped_column(Integer)
    integrity_money_fen: Mapped[int] = mapped_column(BigInteger)
    discount_bp: Mapped[int] = mapped_column(Integer)
    score_threshold: Mapped[int] = mapped_column(Integer)
    credit_household: Mapped[bool] = mapped_column(Boolean)


class Rating(Base):
    """One rating of one household for one period, from draft to its end. Never deleted."""

    __tablename__ = "ratings"
    __table_args__ = (
        CheckConstraint(f"status IN ({_in(RATING_STATUSES)})", name="status"),
        CheckConstraint(f"origin IN ({_in(RATING_ORIGINS)})", name="origin"),
        CheckConstraint(f"period_kind IN ({_in(PERIOD_KINDS)})", name="period_kind"),
        CheckConstraint("period_end >= period_start", name="period"),
        CheckConstraint("score_centi >= 0 AND score_centi <= 10000", name="score"),
        CheckConstraint("granted_fen >= 0", name="granted_not_negative"),
        CheckConstraint("(level_code IS NULL) = (level_rank IS NULL)", name="level_code_with_rank"),
        CheckConstraint(
            "status NOT IN ('notice', 'appealed') OR notice_until IS NOT NULL",
            name="notice_dates",
        ),
        # One effective rating, and one rating under way, per household: the database refuses
        # a second even if two requests race.
        Index(
            "uq_ratings_one_effective",
            "subject_id",
            unique=True,
            postgresql_where=text("status = 'effective'"),
            sqlite_where=text("status = 'effective'"),
        ),
        Index(
            "uq_ratings_one_open",
            "subject_id",
            unique=True,
            postgresql_where=text("status IN ('draft', 'notice', 'appealed')"),
            sqlite_where=text("status IN ('draft', 'notice', 'appealed')"),
        ),
        Index("ix_ratings_subject_id_id", "subject_id", "id"),
        Index("ix_ratings_status_notice_until", "status", "notice_until"),
        Index("ix_ratings_status_period_end", "status", "period_end"),
        Index("ix_ratings_village_id_status_id", "village_id", "status", "id"),
        Index("ix_ratings_township_id_status_id", "township_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subject_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("credit_subjects.id", ondelete="RESTRICT")
    )
    county_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    township_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    village_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    scheme_code: Mapped[str] = mapped_column(String(32))
    level_code: Mapped[str | None] = mapped_column(String(16))
    level_rank: Mapped[int | None] = mapped_column(Integer)
    score_centi: Mapped[int] = mapped_column(Integer, default=0)
    score_detail: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=json_default)
    origin: Mapped[str] = mapped_column(String(16), default="review")
    status: Mapped[str] = mapped_column(String(16), default="draft")
    period_kind: Mapped[str] = mapped_column(String(8), default="year")
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    notice_from: Mapped[date | None] = mapped_column(Date)
    notice_until: Mapped[date | None] = mapped_column(Date)  # the last day of the notice
    appeal_until: Mapped[date | None] = mapped_column(Date)  # the last day to appeal
    re_reviewed: Mapped[bool] = mapped_column(Boolean, default=False)
    effective_from: Mapped[date | None] = mapped_column(Date)
    ended_on: Mapped[date | None] = mapped_column(Date)
    end_reason: Mapped[str | None] = mapped_column(String(500))
    supersedes_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("ratings.id", ondelete="RESTRICT")
    )
    # Integrity money granted to the wallet on account of this rating, net of adjustments.
    granted_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[created_at]


class RatingAppeal(Base):
    """A household's appeal (复议) against a rating under notice or just effective."""

    __tablename__ = "rating_appeals"
    __table_args__ = (
        CheckConstraint(f"status IN ({_in(APPEAL_STATUSES)})", name="status"),
        Index("ix_rating_appeals_rating_id", "rating_id"),
        Index(
            "ix_rating_appeals_township_id_status_answer_due", "township_id", "status", "answer_due"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    rating_id: Mapped[int] = mapped_column(BigId, ForeignKey("ratings.id", ondelete="RESTRICT"))
    subject_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("credit_subjects.id", ondelete="RESTRICT")
    )
    county_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    township_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    grounds: Mapped[str] = mapped_column(Text)
    filed_on: Mapped[date] = mapped_column(Date)
    answer_due: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="open")
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[str | None] = mapped_column(String(100))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    result_rating_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("ratings.id", ondelete="RESTRICT")
    )
    filed_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[created_at]


class RatingHistory(Base):
    """Every state change of every rating, in order: the household's full rating history."""

    __tablename__ = "rating_history"
    __table_args__ = (
        Index("ix_rating_history_subject_id_id", "subject_id", "id"),
        Index("ix_rating_history_rating_id", "rating_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    rating_id: Mapped[int] = mapped_column(BigId, ForeignKey("ratings.id", ondelete="RESTRICT"))
    subject_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("credit_subjects.id", ondelete="RESTRICT")
    )
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    level_code: Mapped[str | None] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))
    note: Mapped[str] = mapped_column(String(500), default="")
    on_date: Mapped[date] = mapped_column(Date)
    created_at: Mapped[created_at]
