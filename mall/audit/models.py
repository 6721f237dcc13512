from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from mall.clock import utcnow
from mall.db import Base
from mall.models_common import BigId, JsonDoc


class AuditEntry(Base):
    """One admin action. Never updated or deleted (a PostgreSQL trigger refuses both).
    `before`/`after` hold masked values only: the log must not become a copy of the PII."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_township_id_id", "township_id", "id"),
        Index("ix_audit_log_county_id_id", "county_id", "id"),
        Index("ix_audit_log_actor_user_id_id", "actor_user_id", "id"),
        Index("ix_audit_log_object_type_object_id", "object_type", "object_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    actor_label: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(64))
    county_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    township_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    ip: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    after: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    note: Mapped[str] = mapped_column(String(500), default="")
