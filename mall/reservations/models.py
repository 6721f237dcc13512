"""Reservations and their lines.

A reservation resolves exactly once: every change of `status` is a conditional
`UPDATE ... WHERE status = 'open'` (mall.reservations.services). While it is open its
`pickup_code` is unique at its partner (a partial unique index); afterwards the code may be
issued again. The reserved quantity of a goods row is the sum of `qty` over the open
reservations' lines: that stock is already out of `catalog_goods.stock`, which is what is on
sale, so the till and the catalogue never offer reserved goods.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mall.db import Base
from mall.models_common import BigId, created_at

RESERVATION_STATUSES = ("open", "picked_up", "cancelled", "expired")
# Why a reservation ended without (or before) a pickup, shown to the household.
END_REASONS = ("cancelled_by_household", "not_collected_in_time")
# The partial unique index of an open reservation's code at its partner (the services retry
# an INSERT it refuses with a fresh code).
OPEN_PICKUP_CODE_INDEX = "uq_reservations_open_pickup_code"


class Reservation(Base):
    __tablename__ = "reservations"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'picked_up', 'cancelled', 'expired')", name="status"),
        CheckConstraint("points_total > 0", name="points_total_positive"),
        CheckConstraint(
            "picked_points IS NULL OR (picked_points > 0 AND picked_points <= points_total)",
            name="picked_points",
        ),
        CheckConstraint("(status = 'open') = (resolved_at IS NULL)", name="resolved_at"),
        CheckConstraint(
            "(status = 'picked_up') = (payment_id IS NOT NULL)", name="payment_when_picked_up"
        ),
        UniqueConstraint("subject_id", "client_key"),
        Index(
            OPEN_PICKUP_CODE_INDEX,
            "partner_id",
            "pickup_code",
            unique=True,
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
        Index("ix_reservations_subject_id_id", "subject_id", "id"),
        Index("ix_reservations_partner_id_pickup_code", "partner_id", "pickup_code"),
        Index(
            "ix_reservations_open_expires_at",
            "expires_at",
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="RESTRICT"))
    subject_id: Mapped[int] = mapped_column(ForeignKey("credit_subjects.id", ondelete="RESTRICT"))
    # The household's township: the ledger tenant of the hold and of the pickup's entry.
    township_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(12), default="open")
    pickup_code: Mapped[str] = mapped_column(String(16))
    points_total: Mapped[int] = mapped_column(Integer)
    points_hold_id: Mapped[int] = mapped_column(BigId)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[created_at]
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    end_reason: Mapped[str | None] = mapped_column(String(32))
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id", ondelete="RESTRICT"))
    picked_points: Mapped[int | None] = mapped_column(Integer)
    # The client's Idempotency-Key (farmer API) or the page form's token: one reservation.
    client_key: Mapped[str | None] = mapped_column(String(64))

    lines: Mapped[list[ReservationLine]] = relationship(
        back_populates="reservation", order_by="ReservationLine.id", cascade="all, delete-orphan"
    )


class ReservationLine(Base):
    __tablename__ = "reservation_lines"
    __table_args__ = (
        CheckConstraint("qty > 0", name="qty_positive"),
        CheckConstraint(
            "picked_qty IS NULL OR (picked_qty >= 0 AND picked_qty <= qty)", name="picked_qty"
        ),
        UniqueConstraint("reservation_id", "goods_id"),
        Index("ix_reservation_lines_goods_id", "goods_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reservation_id: Mapped[int] = mapped_column(ForeignKey("reservations.id", ondelete="CASCADE"))
    goods_id: Mapped[int] = mapped_column(ForeignKey("catalog_goods.id", ondelete="RESTRICT"))
    sku: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    qty: Mapped[int] = mapped_column(Integer)
    points_price: Mapped[int] = mapped_column(Integer)
    settlement_price_fen: Mapped[int] = mapped_column(Integer)
    picked_qty: Mapped[int | None] = mapped_column(Integer)

    reservation: Mapped[Reservation] = relationship(back_populates="lines")
