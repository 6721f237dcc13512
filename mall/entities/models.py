"""What a credit subject other than a household carries beyond `credit_subjects`.

Business entities (family farms, cooperatives, enterprises), village collective economic
organisations and administrative villages are `CreditSubject` rows of their kind; this table
adds the entity's type and, for collectives and villages, makes the database refuse a second
one for the same administrative village.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from mall.db import Base
from mall.models_common import BigId, created_at

ENTITY_KINDS = ("business", "collective", "village")
BUSINESS_TYPES = ("family_farm", "cooperative", "enterprise", "other")


class EntityProfile(Base):
    __tablename__ = "entity_profiles"
    __table_args__ = (
        CheckConstraint("kind IN ('business', 'collective', 'village')", name="kind"),
        CheckConstraint(
            "(kind = 'business' AND business_type IN "
            "('family_farm', 'cooperative', 'enterprise', 'other'))"
            " OR (kind <> 'business' AND business_type IS NULL)",
            name="business_type",
        ),
        # One collective and one village subject per administrative village.
        Index(
            "uq_entity_profiles_one_per_village",
            "kind",
            "village_id",
            unique=True,
            postgresql_where=text("kind IN ('collective', 'village')"),
            sqlite_where=text("kind IN ('collective', 'village')"),
        ),
        Index("ix_entity_profiles_village_id", "village_id"),
    )

    subject_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("credit_subjects.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    business_type: Mapped[str | None] = mapped_column(String(16))
    village_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    created_at: Mapped[created_at]
