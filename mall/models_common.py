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


# The largest bill a till may report, in fen (a million yuan): payments, benefit uses and the
# terminal API's schemas share it.
MAX_BILL_FEN = 100_000_000


def check_bill_fen(amount_fen: object, field: str = "amount_fen") -> None:
    """Refuse (`validation_error` on `field`) anything but an integer bill of 0 to MAX_BILL_FEN."""
    from mall.errors import ValidationFailed

    if type(amount_fen) is not int or not 0 <= amount_fen <= MAX_BILL_FEN:
        raise ValidationFailed(details={"fields": {field: [f"0 to {MAX_BILL_FEN} fen"]}})
