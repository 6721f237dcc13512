from __future__ import annotations

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from mall.db import Base
from mall.models_common import created_at

ROLES = ("county_admin", "township_admin", "village_clerk", "auditor", "cashier")


class User(Base):
    """A staff account. `region_id` is the scope: a county, a township or a village.
    `county_id`/`township_id` are denormalised from it for one-comparison scope checks."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "role IN ('county_admin', 'township_admin', 'village_clerk', 'auditor', 'cashier')",
            name="role",
        ),
        CheckConstraint("role <> 'cashier' OR partner_id IS NOT NULL", name="cashier_partner"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    county_id: Mapped[int] = mapped_column(
        ForeignKey("regions.id", ondelete="RESTRICT"), index=True
    )
    township_id: Mapped[int | None] = mapped_column(
        ForeignKey("regions.id", ondelete="RESTRICT"), index=True
    )
    village_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    partner_id: Mapped[int | None] = mapped_column(
        ForeignKey("partners.id", ondelete="RESTRICT"), index=True
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[created_at]
