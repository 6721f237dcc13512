"""Clock and business dates. A business date is the local date in the deployment's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context

DEFAULT_TZ = "Asia/Shanghai"


def utcnow() -> datetime:
    return datetime.now(UTC)


def local_zone() -> ZoneInfo:
    name = current_app.config.get("TIMEZONE", DEFAULT_TZ) if has_app_context() else DEFAULT_TZ
    return ZoneInfo(name)


def business_date(at: datetime | None = None) -> date:
    return (at or utcnow()).astimezone(local_zone()).date()


def as_aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes for timezone-aware columns; they are stored in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
