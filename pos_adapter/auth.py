"""Terminal authentication: HMAC-SHA256 request signing (POS API v1, section 1).

    canonical = METHOD \\n PATH(with query, as sent) \\n TIMESTAMP \\n NONCE \\n sha256(body)
    X-Signature = lowercase hex HMAC-SHA256(secret, canonical)

Checks, in order: the terminal exists (terminal_unknown) and is active with an active partner
(terminal_disabled), the clock is within 300 s (stale_request), the signature matches in
constant time (bad_signature), and only then the nonce is new for this terminal within 600 s
(replayed_request): unsigned junk never reaches the nonce store. The nonce is committed at
once, so a request that later fails still burns its nonce.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from flask import Request
from sqlalchemy import Table, delete, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mall.clock import as_aware, utcnow
from mall.errors import Unauthorized
from mall.partners.models import Partner, Terminal
from mall.partners.services import terminal_secret
from pos_adapter.models import PosNonce

CLOCK_SKEW_SECONDS = 300
REPLAY_WINDOW_SECONDS = 600
LAST_SEEN_EVERY = timedelta(seconds=60)
NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
SIGNATURE_RE = re.compile(r"^[0-9a-f]{64}$")
TERMINAL_ID_MAX = 40

_nonces: Table = PosNonce.__table__  # type: ignore[assignment]
_terminals: Table = Terminal.__table__  # type: ignore[assignment]


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def canonical_string(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    return "\n".join((method.upper(), path, timestamp, nonce, body_sha256(body)))


def sign(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """The X-Signature of a request (the reference client uses this same function)."""
    canonical = canonical_string(method, path, timestamp, nonce, body)
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def request_path(req: Request) -> str:
    """The path and query string exactly as the client sent them."""
    raw = req.environ.get("RAW_URI") or req.environ.get("REQUEST_URI")
    if isinstance(raw, str) and raw.startswith("/"):
        return raw
    query = req.query_string.decode("latin-1")
    return req.path + (f"?{query}" if query else "")


@lru_cache(maxsize=8192)
def _secret(secret_enc: str) -> str:
    # Keyed by the sealed value: a rotation changes the key, so no stale secret is served.
    return terminal_secret(Terminal(secret_enc=secret_enc))


@dataclass(frozen=True)
class Authenticated:
    terminal: Terminal
    partner: Partner


def _fail(code: str, **details: Any) -> Unauthorized:
    return Unauthorized(code, details=details)


def authenticate(session: Session, req: Request, *, now: datetime | None = None) -> Authenticated:
    """Verify the request's signature headers; raises Unauthorized with one of the five codes.
    Records the nonce (and, at most once a minute, last_seen_at) and commits."""
    now = now or utcnow()
    terminal_code = req.headers.get("X-Terminal-Id", "")
    if not terminal_code or len(terminal_code) > TERMINAL_ID_MAX:
        raise _fail("terminal_unknown")
    row = session.execute(
        select(Terminal, Partner)
        .join(Partner, Partner.id == Terminal.partner_id)
        .where(Terminal.terminal_id == terminal_code)
    ).first()
    if row is None:
        raise _fail("terminal_unknown")
    terminal, partner = row
    if not terminal.active or not partner.active:
        raise _fail("terminal_disabled")
    timestamp = req.headers.get("X-Timestamp", "")
    if not (timestamp.isdigit() and len(timestamp) <= 12):
        raise _fail("stale_request", reason="timestamp")
    if abs(int(timestamp) - now.timestamp()) > CLOCK_SKEW_SECONDS:
        raise _fail("stale_request", server_time=int(now.timestamp()))
    nonce = req.headers.get("X-Nonce", "")
    signature = req.headers.get("X-Signature", "")
    if not NONCE_RE.match(nonce):
        raise _fail("bad_signature", reason="nonce")
    expected = sign(
        _secret(terminal.secret_enc),
        req.method,
        request_path(req),
        timestamp,
        nonce,
        req.get_data(cache=True),
    )
    if not SIGNATURE_RE.match(signature) or not hmac.compare_digest(expected, signature):
        raise _fail("bad_signature")
    _remember_nonce(session, terminal, nonce, now)
    if terminal.last_seen_at is None or as_aware(terminal.last_seen_at) < now - LAST_SEEN_EVERY:
        session.execute(
            update(_terminals)
            .where(
                _terminals.c.id == terminal.id,
                or_(
                    _terminals.c.last_seen_at.is_(None),
                    _terminals.c.last_seen_at < now - LAST_SEEN_EVERY,
                ),
            )
            .values(last_seen_at=now)
        )
    if session.get_bind().dialect.name == "postgresql":
        # The nonce needs no fsync of its own: WAL is flushed in order, so any later durable
        # commit (a payment, an idempotency record) makes it durable too. A crash can lose
        # only nonces of requests that changed nothing, whose replay changes nothing either.
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    session.commit()
    return Authenticated(terminal, partner)


def _remember_nonce(session: Session, terminal: Terminal, nonce: str, now: datetime) -> None:
    dialect = session.get_bind().dialect.name
    ins: Any = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_nonces)
    # RETURNING, not rowcount: psycopg 3 reports -1 for INSERT ... ON CONFLICT DO NOTHING.
    inserted = session.execute(
        ins.values(terminal_id=terminal.id, nonce=nonce, seen_at=now)
        .on_conflict_do_nothing()
        .returning(_nonces.c.nonce)
    ).first()
    if inserted is not None:
        return
    # Seen before. Older than the window it could not have passed the clock check anyway,
    # but the row may outlive the window until pruned: refresh it and let the request in.
    refreshed = session.execute(
        update(_nonces)
        .where(
            _nonces.c.terminal_id == terminal.id,
            _nonces.c.nonce == nonce,
            _nonces.c.seen_at < now - timedelta(seconds=REPLAY_WINDOW_SECONDS),
        )
        .values(seen_at=now)
    )
    if refreshed.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise _fail("replayed_request")


def prune_nonces(session: Session, *, now: datetime | None = None) -> int:
    """Delete nonces older than the replay window. Returns rows deleted."""
    cutoff = (now or utcnow()) - timedelta(seconds=REPLAY_WINDOW_SECONDS)
    result = session.execute(delete(_nonces).where(_nonces.c.seen_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
