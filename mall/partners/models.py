from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from mall.db import Base
from mall.models_common import JsonDoc, created_at, json_default

PARTNER_CATEGORIES = (
    "supermarket",
    "wholesale",
    "hospital",
    "scenic_spot",
    "bus",
    "library",
    "bank",
    "other",
)
PARTNER_NAME_KEY = "uq_partners_township_id_name"
# A terminal's `last_seen_at` is written at most once per this (pos_adapter/auth.py): after any
# signed request at time t it is at least t - LAST_SEEN_EVERY, so a terminal whose
# `last_seen_at` is L had no online contact after L + LAST_SEEN_EVERY (mall/payments/offline.py).
LAST_SEEN_EVERY = timedelta(seconds=60)


class Partner(Base):
    __tablename__ = "partners"
    __table_args__ = (
        CheckConstraint(
            "category IN ('supermarket', 'wholesale', 'hospital', 'scenic_spot', 'bus', "
            "'library', 'bank', 'other')",
            name="category",
        ),
        Index("ix_partners_township_id_category", "township_id", "category"),
        # Cashiers, farmers and statements tell partners apart by name: two of one name in a
        # township would be one shop entered twice (a repeated POST, say), not two shops.
        Index(PARTNER_NAME_KEY, "township_id", "name", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    county_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    township_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(String(200), default="")
    contact_name: Mapped[str] = mapped_column(String(64), default="")
    contact_phone_masked: Mapped[str] = mapped_column(String(20), default="")
    contact_phone_enc: Mapped[str | None] = mapped_column(String(255))
    accepts_integrity: Mapped[bool] = mapped_column(Boolean, default=True)
    accepts_points: Mapped[bool] = mapped_column(Boolean, default=False)
    settlement: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=json_default)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[created_at]


class Terminal(Base):
    """A till. The HMAC secret is sealed at rest and shown once, at creation or rotation."""

    __tablename__ = "terminals"

    id: Mapped[int] = mapped_column(primary_key=True)
    terminal_id: Mapped[str] = mapped_column(String(40), unique=True)
    partner_id: Mapped[int] = mapped_column(
        ForeignKey("partners.id", ondelete="RESTRICT"), index=True
    )
    township_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(100), default="")
    secret_enc: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[created_at]
    secret_rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What the till last fetched of the card revocation list (`GET /pos/v1/card-revocations`):
    # the version it was given and when. Offline records are judged against them.
    revocation_list_version: Mapped[int | None] = mapped_column(BigInteger)
    revocation_list_synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
