"""Catalogue goods of a partner, redeemable for credit points."""

from __future__ import annotations

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mall.db import Base
from mall.models_common import BigId, created_at


class Goods(Base):
    """One SKU of one partner. `stock` never goes below zero (a CHECK, and every decrement is
    a conditional UPDATE); `settlement_price_fen` is what the township pays the partner."""

    __tablename__ = "catalog_goods"
    __table_args__ = (
        UniqueConstraint("partner_id", "sku"),
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("points_price > 0", name="points_price_positive"),
        CheckConstraint("settlement_price_fen >= 0", name="settlement_not_negative"),
        CheckConstraint(
            "min_level_rank IS NULL OR min_level_rank >= 1", name="min_level_rank_positive"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[int] = mapped_column(
        ForeignKey("partners.id", ondelete="RESTRICT"), index=True
    )
    county_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    township_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    sku: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    points_price: Mapped[int] = mapped_column(Integer)
    settlement_price_fen: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int] = mapped_column(Integer, default=0)
    min_level_rank: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[created_at]
