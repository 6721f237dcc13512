"""Pruning of the POS stores, for the jobs command: `prune_pos_stores(session)`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from pos_adapter.idempotency import prune_keys
from pos_adapter.nonces import prune_nonces


def prune_pos_stores(session: Session, now: datetime | None = None) -> int:
    """Delete nonces past the replay window and idempotency keys past retention (flushes
    only; the caller commits). Returns rows deleted."""
    return prune_nonces(session, now=now) + prune_keys(session, now=now)
