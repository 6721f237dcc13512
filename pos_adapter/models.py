"""The nonce store and the idempotency store of the POS API.

Both live in the database, not in Redis: every gunicorn worker (and every host) sees the same
rows without another moving part, a unique key decides races exactly, and an idempotency row
commits in the same transaction as the payment it answers for, so a crash can never leave a
payment without its stored response (or a response without its payment). The tables are
small: rows older than their window are deleted by `prune` (run by the jobs command).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, PrimaryKeyConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mall.db import Base
from mall.models_common import BigId


class PosNonce(Base):
    """A nonce seen from a terminal; the primary key refuses a second one."""

    __tablename__ = "pos_nonces"
    __table_args__ = (
        PrimaryKeyConstraint("terminal_id", "nonce"),
        Index("ix_pos_nonces_seen_at", "seen_at"),
    )

    terminal_id: Mapped[int] = mapped_column(ForeignKey("terminals.id", ondelete="CASCADE"))
    nonce: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PosIdempotencyKey(Base):
    """One Idempotency-Key of one terminal: the request's hash and, once done, its response."""

    __tablename__ = "pos_idempotency_keys"
    __table_args__ = (
        Index("uq_pos_idempotency_keys_terminal_key", "terminal_id", "key", unique=True),
        Index("ix_pos_idempotency_keys_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    terminal_id: Mapped[int] = mapped_column(ForeignKey("terminals.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    # NULL while the first request is running; then the stored response.
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
