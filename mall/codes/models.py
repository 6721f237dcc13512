"""Tables of the credit-code domain: signing keys, integrity cards, used dynamic codes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from mall.db import Base
from mall.models_common import BigId, created_at

CARD_STATUSES = ("active", "revoked")


class CodeSigningKey(Base):
    """An Ed25519 key that signs credit codes.

    Life: created (and at once activated) -> retired (signs no more) -> past `verify_until`
    (no dynamic code it signed can still be valid). A key with `retired_at` NULL is the one
    that signs. Card codes follow their card, not `verify_until`: see `mall.codes.keys`.
    The private key is stored sealed (AES-GCM under ENCRYPTION_KEY), never in the clear.
    """

    __tablename__ = "code_signing_keys"
    __table_args__ = (
        CheckConstraint(
            "verify_until IS NULL OR retired_at IS NOT NULL", name="verify_until_needs_retired"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kid: Mapped[str] = mapped_column(String(16), unique=True)
    # Raw 32-byte Ed25519 public key, urlsafe base64 without padding (the JWK `x`).
    public_key: Mapped[str] = mapped_column(String(64))
    private_key_sealed: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[created_at]
    activated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    verify_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class IntegrityCard(Base):
    """The printed integrity card (诚信管理卡) of a household: a static card code names it.

    At most one active card per household (a partial unique index); reissue revokes the old.
    `kid` is the key that signed the card's code, so a card keeps verifying after rotation.
    """

    __tablename__ = "integrity_cards"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'revoked')", name="status"),
        CheckConstraint(
            "(status = 'active' AND revoked_at IS NULL)"
            " OR (status = 'revoked' AND revoked_at IS NOT NULL)",
            name="revoked_at_by_status",
        ),
        Index(
            "uq_integrity_cards_active_subject",
            "subject_id",
            unique=True,
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
        Index("ix_integrity_cards_subject_id", "subject_id"),
        Index("ix_integrity_cards_kid_status", "kid", "status"),
        # The revocation list in order (`GET /pos/v1/card-revocations?since_version=`).
        Index("uq_integrity_cards_revocation_version", "revocation_version", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    serial: Mapped[str] = mapped_column(String(16), unique=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("credit_subjects.id", ondelete="RESTRICT"))
    kid: Mapped[str] = mapped_column(ForeignKey("code_signing_keys.kid", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(16), default="active")
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(String(64))
    # The version of the revocation list that first names this card (set when revoked).
    revocation_version: Mapped[int | None] = mapped_column(BigInteger)


class CardRevocationList(Base):
    """The version of the list of revoked card serials that offline terminals keep: one row,
    raised by one with every revocation (`mall.codes.revocations`). Its row lock orders the
    revocations, so a version a terminal was given names every card revoked up to it."""

    __tablename__ = "card_revocation_list"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UsedDynamicCode(Base):
    """A dynamic code spent on a payment. The primary key on `jti` is the one-use guard."""

    __tablename__ = "used_dynamic_codes"
    __table_args__ = (Index("ix_used_dynamic_codes_expires_at", "expires_at"),)

    jti: Mapped[str] = mapped_column(String(32), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[created_at]
