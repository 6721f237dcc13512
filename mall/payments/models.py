"""Payments, their goods lines, refunds and offline records.

A payment is the business record; the money and points move only in the ledger, through
entries (or holds) whose idempotency keys derive from the payment id. The amounts here are
what the till agreed; `verify` style reconciliation compares them with the ledger.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
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
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mall.db import Base
from mall.models_common import BigId, JsonDoc, created_at
from mall.subjects.models import CreditSubject

PAYMENT_STATUSES = ("authorized", "completed", "voided", "expired")


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(
            "status IN ('authorized', 'completed', 'voided', 'expired')", name="status"
        ),
        CheckConstraint("origin IN ('online', 'offline')", name="origin"),
        CheckConstraint(
            "amount_fen >= 0 AND integrity_discount_fen >= 0 AND points_cost >= 0"
            " AND points_settlement_fen >= 0 AND offline_shortfall_fen >= 0",
            name="amounts_not_negative",
        ),
        CheckConstraint("integrity_discount_fen <= amount_fen", name="discount_within_amount"),
        CheckConstraint(
            "refunded_amount_fen <= amount_fen"
            " AND refunded_integrity_fen <= integrity_discount_fen + offline_shortfall_fen"
            " AND refunded_points <= points_cost",
            name="refunds_within_payment",
        ),
        Index("ix_payments_partner_id_business_date_id", "partner_id", "business_date", "id"),
        Index("ix_payments_status_expires_at", "status", "expires_at"),
        Index("ix_payments_subject_id_business_date", "subject_id", "business_date"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="RESTRICT"))
    terminal_id: Mapped[int | None] = mapped_column(ForeignKey("terminals.id", ondelete="RESTRICT"))
    cashier_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    # The household's township: the ledger tenant of every entry of this payment.
    township_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    subject_id: Mapped[int] = mapped_column(ForeignKey("credit_subjects.id", ondelete="RESTRICT"))
    origin: Mapped[str] = mapped_column(String(8), default="online")
    code_kind: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(12))
    amount_fen: Mapped[int] = mapped_column(Integer)
    discount_rate_bp: Mapped[int] = mapped_column(Integer, default=0)
    integrity_discount_fen: Mapped[int] = mapped_column(Integer, default=0)
    # Offline only: what the wallet lacked, paid to the partner from the township's account.
    offline_shortfall_fen: Mapped[int] = mapped_column(Integer, default=0)
    points_cost: Mapped[int] = mapped_column(Integer, default=0)
    points_settlement_fen: Mapped[int] = mapped_column(Integer, default=0)
    cash_due_fen: Mapped[int] = mapped_column(Integer, default=0)
    refunded_amount_fen: Mapped[int] = mapped_column(Integer, default=0)
    refunded_integrity_fen: Mapped[int] = mapped_column(Integer, default=0)
    refunded_points: Mapped[int] = mapped_column(Integer, default=0)
    refunded_settlement_fen: Mapped[int] = mapped_column(Integer, default=0)
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    external_ref: Mapped[str | None] = mapped_column(String(64))
    business_date: Mapped[date] = mapped_column(Date)
    created_at: Mapped[created_at]
    captured_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    voided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    integrity_hold_id: Mapped[int | None] = mapped_column(BigId)
    points_hold_id: Mapped[int | None] = mapped_column(BigId)
    integrity_entry_id: Mapped[int | None] = mapped_column(BigId)
    points_entry_id: Mapped[int | None] = mapped_column(BigId)

    items: Mapped[list[PaymentItem]] = relationship(
        back_populates="payment", order_by="PaymentItem.id", cascade="all, delete-orphan"
    )
    refunds: Mapped[list[Refund]] = relationship(
        back_populates="payment", order_by="Refund.id", cascade="all, delete-orphan"
    )
    # The holder, whose ref the payment's answer shows.
    subject: Mapped[CreditSubject] = relationship()


class PaymentItem(Base):
    __tablename__ = "payment_items"
    __table_args__ = (
        CheckConstraint("qty > 0 AND refunded_qty >= 0 AND refunded_qty <= qty", name="qty"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    payment_id: Mapped[int] = mapped_column(
        ForeignKey("payments.id", ondelete="CASCADE"), index=True
    )
    goods_id: Mapped[int] = mapped_column(ForeignKey("catalog_goods.id", ondelete="RESTRICT"))
    sku: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    qty: Mapped[int] = mapped_column(Integer)
    points_price: Mapped[int] = mapped_column(Integer)
    settlement_price_fen: Mapped[int] = mapped_column(Integer)
    refunded_qty: Mapped[int] = mapped_column(Integer, default=0)

    payment: Mapped[Payment] = relationship(back_populates="items")


class Refund(Base):
    __tablename__ = "payment_refunds"
    __table_args__ = (
        CheckConstraint(
            "amount_fen >= 0 AND integrity_fen >= 0 AND points >= 0 AND settlement_fen >= 0",
            name="amounts_not_negative",
        ),
        Index("ix_payment_refunds_partner_id_business_date", "partner_id", "business_date"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    payment_id: Mapped[int] = mapped_column(
        ForeignKey("payments.id", ondelete="CASCADE"), index=True
    )
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="RESTRICT"))
    amount_fen: Mapped[int] = mapped_column(Integer)
    integrity_fen: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(Integer)
    settlement_fen: Mapped[int] = mapped_column(Integer)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, default=list)
    business_date: Mapped[date] = mapped_column(Date)
    created_at: Mapped[created_at]

    payment: Mapped[Payment] = relationship(back_populates="refunds")


class OfflineRecord(Base):
    """One uploaded offline sale. Unique per terminal and `local_id`: applied exactly once,
    whatever batch it arrives in; the stored `result` is the answer to every later upload."""

    __tablename__ = "offline_records"
    __table_args__ = (
        UniqueConstraint("terminal_id", "local_id"),
        CheckConstraint("status IN ('applied', 'applied_short', 'rejected')", name="status"),
        Index("ix_offline_records_subject_id_business_date", "subject_id", "business_date"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    terminal_id: Mapped[int] = mapped_column(ForeignKey("terminals.id", ondelete="RESTRICT"))
    local_id: Mapped[str] = mapped_column(String(64))
    batch_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[int | None] = mapped_column(
        ForeignKey("credit_subjects.id", ondelete="RESTRICT")
    )
    business_date: Mapped[date | None] = mapped_column(Date)
    granted_fen: Mapped[int] = mapped_column(Integer, default=0)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id", ondelete="RESTRICT"))
    result: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    received_at: Mapped[created_at]
