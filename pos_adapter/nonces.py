"""Where signed POS requests' nonces are remembered, so that a replay is refused.

A nonce is new for its terminal within REPLAY_WINDOW_SECONDS (the clock check refuses anything
older, so nothing older needs remembering). Two stores, chosen by `POS_NONCE_STORE_URL`:

- the database (the default, and the only store on SQLite): a row in `pos_nonces` per nonce,
  the primary key deciding between concurrent workers, pruned by the jobs command;
- Redis (`redis://...`): one `SET key 1 NX EX 600` per request. Redis expires the key itself
  and the database sees no write at all for a read such as a scan, which is what makes the
  hot path cheap. Redis unreachable means the request is refused with 503: a replay check
  that cannot run must not pass.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Protocol

import redis
from flask import Flask, current_app
from sqlalchemy import Table, delete, update
from sqlalchemy.orm import Session

from mall.clock import utcnow
from mall.db import commit_without_waiting_for_disk, insert_for
from mall.errors import ServiceUnavailable
from pos_adapter.models import PosNonce

REPLAY_WINDOW_SECONDS = 600
_EXTENSION = "pos_nonce_store"

_nonces: Table = PosNonce.__table__  # type: ignore[assignment]


class NonceStore(Protocol):
    writes_database: bool  # whether remembering a nonce writes (and commits) to the database

    # True when the nonce is new for this terminal (and is now remembered), False on a replay.
    def remember(self, session: Session, terminal_pk: int, nonce: str, now: datetime) -> bool: ...


class DatabaseNonces:
    """Nonces as rows, committed at once (a replay in flight must find the row)."""

    writes_database = True

    def remember(self, session: Session, terminal_pk: int, nonce: str, now: datetime) -> bool:
        ins = insert_for(session, _nonces)
        # RETURNING, not rowcount: psycopg 3 reports -1 for INSERT ... ON CONFLICT DO NOTHING.
        inserted = session.execute(
            ins.values(terminal_id=terminal_pk, nonce=nonce, seen_at=now)
            .on_conflict_do_nothing()
            .returning(_nonces.c.nonce)
        ).first()
        if inserted is None:
            # Seen before. A row older than the window may outlive it until pruned: such a
            # nonce is new again (its request passed the clock check), so refresh the row.
            refreshed = session.execute(
                update(_nonces)
                .where(
                    _nonces.c.terminal_id == terminal_pk,
                    _nonces.c.nonce == nonce,
                    _nonces.c.seen_at < now - timedelta(seconds=REPLAY_WINDOW_SECONDS),
                )
                .values(seen_at=now)
            )
            if refreshed.rowcount != 1:  # type: ignore[attr-defined]
                session.rollback()
                return False
        commit_without_waiting_for_disk(session)  # the nonce's request may change nothing
        return True


class RedisNonces:
    """Nonces as expiring Redis keys, shared by every gunicorn worker pointing at the server."""

    writes_database = False

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self._local = threading.local()

    @property
    def client(self) -> redis.Redis:
        """This thread's client. One connection per thread, kept: every request uses it, and
        a client without a pool skips the pool's checkout (a third of a SET's cost). Short
        timeouts: a stalled Redis must fail the request quickly, not hold a worker."""
        client: redis.Redis | None = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = redis.Redis.from_url(
                self.url,
                socket_timeout=0.5,
                socket_connect_timeout=0.5,
                single_connection_client=True,
            )
        return client

    def remember(self, session: Session, terminal_pk: int, nonce: str, now: datetime) -> bool:
        key = f"{self.prefix}:nonce:{terminal_pk}:{nonce}"
        try:
            return bool(self.client.set(key, b"1", nx=True, ex=REPLAY_WINDOW_SECONDS))
        except redis.RedisError as exc:
            raise ServiceUnavailable(details={"store": "nonces"}) from exc


def store_for(app: Flask) -> NonceStore:
    store: NonceStore | None = app.extensions.get(_EXTENSION)
    if store is None:
        url = app.config.get("POS_NONCE_STORE_URL", "")
        if url.startswith(("redis://", "rediss://", "unix://")):
            store = RedisNonces(url, app.config.get("RATELIMIT_KEY_PREFIX", "mall"))
        elif url:
            raise RuntimeError("POS_NONCE_STORE_URL must be empty or a redis:// URL")
        else:
            store = DatabaseNonces()
        app.extensions[_EXTENSION] = store
    return store


def current_store() -> NonceStore:
    return store_for(current_app)


def prune_nonces(session: Session, *, now: datetime | None = None) -> int:
    """Delete database nonces older than the replay window. Returns rows deleted."""
    cutoff = (now or utcnow()) - timedelta(seconds=REPLAY_WINDOW_SECONDS)
    result = session.execute(delete(_nonces).where(_nonces.c.seen_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
