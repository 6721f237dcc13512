"""Which local object an upstream id became: the idempotency record of every push."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mall.db import Base
from mall.models_common import created_at

LINK_KINDS = ("household", "rating")


class UpstreamLink(Base):
    __tablename__ = "upstream_links"
    __table_args__ = (
        UniqueConstraint("county_id", "kind", "upstream_id"),
        CheckConstraint("kind IN ('household', 'rating')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    county_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(16))
    upstream_id: Mapped[str] = mapped_column(String(64))
    local_id: Mapped[str] = mapped_column(String(64))  # household ref or rating id
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[created_at]
