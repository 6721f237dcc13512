from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mall.db import Base
from mall.models_common import BigId, created_at

SUBJECT_KINDS = ("household", "business", "collective", "village")
SUBJECT_STATUSES = ("active", "frozen", "revoked")


class CreditSubject(Base):
    """A rated party. Personal fields are stored sealed (`*_enc`), searchable through keyed
    blind indexes (`*_bidx`) and shown only in their masked form (`*_masked`)."""

    __tablename__ = "credit_subjects"
    __table_args__ = (
        CheckConstraint("kind IN ('household', 'business', 'collective', 'village')", name="kind"),
        CheckConstraint("status IN ('active', 'frozen', 'revoked')", name="status"),
        CheckConstraint("pin_failed_count >= 0", name="pin_failed_count"),
        Index("ix_credit_subjects_township_id_id", "township_id", "id"),
        Index("ix_credit_subjects_village_id_id", "village_id", "id"),
        Index("ix_credit_subjects_id_number_bidx", "id_number_bidx", unique=True),
        Index("ix_credit_subjects_phone_bidx", "phone_bidx", unique=True),
        Index("ix_credit_subjects_name_bidx", "name_bidx"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ref: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="household")
    county_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    township_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    village_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(16), default="active")

    name_enc: Mapped[str] = mapped_column(String(255))
    name_masked: Mapped[str] = mapped_column(String(64))
    name_bidx: Mapped[str] = mapped_column(String(40))
    # ID card number for households, unified social credit code for business entities.
    id_number_enc: Mapped[str | None] = mapped_column(String(255))
    id_number_masked: Mapped[str | None] = mapped_column(String(32))
    id_number_bidx: Mapped[str | None] = mapped_column(String(40))
    phone_enc: Mapped[str | None] = mapped_column(String(255))
    phone_masked: Mapped[str | None] = mapped_column(String(20))
    phone_bidx: Mapped[str | None] = mapped_column(String(40))

    # The current effective rating, kept by the ratings service for O(1) reads at the till.
    level_code: Mapped[str | None] = mapped_column(String(16))
    level_rank: Mapped[int | None] = mapped_column(Integer)
    level_valid_until: Mapped[date | None] = mapped_column(Date)

    pin_hash: Mapped[str | None] = mapped_column(String(255))
    pin_failed_count: Mapped[int] = mapped_column(Integer, default=0)
    pin_locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The household's session generation: every login (API tokens, /m/ page session) carries
    # the value it was issued under and is refused once this moves on. Raised by
    # mall.subjects.logins.end_household_sessions (PIN set, lost card, freeze, logout...).
    session_gen: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    created_at: Mapped[created_at]

    members: Mapped[list[SubjectMember]] = relationship(
        back_populates="subject", order_by="SubjectMember.id", cascade="all, delete-orphan"
    )


class SubjectMember(Base):
    __tablename__ = "subject_members"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subject_id: Mapped[int] = mapped_column(
        ForeignKey("credit_subjects.id", ondelete="CASCADE"), index=True
    )
    name_enc: Mapped[str] = mapped_column(String(255))
    name_masked: Mapped[str] = mapped_column(String(64))
    relation: Mapped[str] = mapped_column(String(32))

    subject: Mapped[CreditSubject] = relationship(back_populates="members")
