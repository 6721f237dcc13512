"""The login throttle and the staff API's idempotency keys (a household's refresh tokens are in
mall.subjects.logins)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mall.db import Base
from mall.models_common import BigId


class LoginThrottle(Base):
    """Failed logins per identifier, farmers and staff alike.

    `key` is a keyed blind index of "kind:identifier" (a phone or a username), so the
    table holds no phone numbers, and an unknown phone is throttled exactly like a known
    one: the row exists whether or not anybody owns the identifier.
    """

    __tablename__ = "login_throttles"
    __table_args__ = (CheckConstraint("failed_count >= 0", name="failed_count"),)

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    first_failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)


class StaffIdempotencyKey(Base):
    """One Idempotency-Key of one staff account on the staff API: the request's hash and, once
    done, its response (sealed: a response may carry a terminal secret shown once)."""

    __tablename__ = "staff_idempotency_keys"
    __table_args__ = (
        Index("uq_staff_idempotency_keys_user_key", "user_id", "key", unique=True),
        Index("ix_staff_idempotency_keys_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    # NULL until the request's answer is stored, just after its work committed.
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_type: Mapped[str | None] = mapped_column(String(100))
    response_sealed: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
