"""Column helpers shared by the typed models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import mapped_column

from mall.clock import utcnow

# BIGINT on PostgreSQL, INTEGER on SQLite (only INTEGER PRIMARY KEY autoincrements there).
BigId = BigInteger().with_variant(sqlite.INTEGER(), "sqlite")
JsonDoc = JSON().with_variant(postgresql.JSONB(), "postgresql")

bigid_pk = Annotated[int, mapped_column(BigId, primary_key=True, autoincrement=True)]
created_at = Annotated[
    datetime, mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
]
Int = Integer


def json_default() -> dict[str, Any]:
    return {}
