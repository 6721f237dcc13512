from __future__ import annotations

from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mall.db import Base
from mall.models_common import JsonDoc, json_default

REGION_KINDS = ("county", "township", "village")


class Region(Base):
    """A county, township or village. `township_id` and `county_id` are denormalised so
    every scope check is one indexed comparison, never a walk up the tree."""

    __tablename__ = "regions"
    __table_args__ = (
        CheckConstraint("kind IN ('county', 'township', 'village')", name="kind"),
        CheckConstraint(
            "(kind = 'county' AND parent_id IS NULL)"
            " OR (kind <> 'county' AND parent_id IS NOT NULL)",
            name="parent_by_kind",
        ),
        Index("ix_regions_parent_id_name", "parent_id", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    county_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    township_id: Mapped[int | None] = mapped_column(
        ForeignKey("regions.id", ondelete="RESTRICT"), index=True
    )
    # Only the keys set at this level; `effective_settings` merges the chain.
    settings: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=json_default)

    parent: Mapped[Region | None] = relationship(remote_side=[id], foreign_keys=[parent_id])
