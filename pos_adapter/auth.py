"""Terminal authentication: HMAC-SHA256 request signing (POS API v1, section 1).

    canonical = METHOD \\n PATH(with query, as sent) \\n TIMESTAMP \\n NONCE \\n sha256(body)
    X-Signature = lowercase hex HMAC-SHA256(secret, canonical)

Checks, in order: the terminal exists (terminal_unknown) and is active with an active partner
(terminal_disabled), the clock is within 300 s (stale_request), the signature matches in
constant time (bad_signature), and only then the nonce is new for this terminal within 600 s
(replayed_request): unsigned junk never reaches the nonce store (pos_adapter/nonces.py). The
nonce is stored at once, so a request that later fails still burns its nonce.

The terminal and partner rows may come from a per-worker cache (mall/cache.py), up to
HOT_CACHE_SECONDS old. A read (a scan) accepts that. A write must not: a terminal disabled or
re-keyed a moment ago moves no money. On PostgreSQL a write uses the cached rows too, but with
their row versions (`xmin`, which every UPDATE changes), and its idempotency claim, the first
statement of its transaction, only succeeds while both rows are still those versions
(pos_adapter/idempotency.py); otherwise `reauthenticate` reads them afresh and checks again.
That spares every payment a read of its own. Elsewhere (SQLite) a write reads them afresh.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from flask import Request
from sqlalchemy import Table, bindparam, literal_column, or_, select, update
from sqlalchemy.orm import Session

from mall.cache import HotCache
from mall.clock import as_aware, utcnow
from mall.driver_sql import DriverStatement, EntityLoader
from mall.errors import Unauthorized
from mall.partners.models import LAST_SEEN_EVERY, Partner, Terminal
from mall.partners.services import terminal_secret
from pos_adapter.nonces import current_store

CLOCK_SKEW_SECONDS = 300
NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
SIGNATURE_RE = re.compile(r"^[0-9a-f]{64}$")
TERMINAL_ID_MAX = 40

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


# Every POS request runs it (on the driver: mall/driver_sql.py). On PostgreSQL it also reads
# the two rows' versions, last.
_TERMINALS = EntityLoader(Terminal)
_PARTNERS = EntityLoader(Partner)
_VERSIONED = "postgresql"


def _terminal_by_code(dialect: str) -> Any:
    columns = [*_TERMINALS.columns, *_PARTNERS.columns]
    if dialect == _VERSIONED:
        columns += [literal_column("terminals.xmin::text"), literal_column("partners.xmin::text")]
    return (
        select(*columns)
        .join(Partner, Partner.id == Terminal.partner_id)
        .where(Terminal.terminal_id == bindparam("code"))
    )


_TERMINAL_BY_CODE = DriverStatement(_terminal_by_code)
_PARTNER_AT = len(_TERMINALS.columns)
_VERSIONS_AT = _PARTNER_AT + len(_PARTNERS.columns)


_recent_terminals = HotCache("pos_terminals", (Terminal, Partner))
# The refusals that a newer terminal or partner row could turn into an acceptance.
_ROW_DEPENDENT = frozenset({"terminal_disabled", "bad_signature"})


@dataclass(frozen=True)
class RowVersions:
    """The versions (PostgreSQL `xmin`) of the terminal and partner rows as they were read,
    and what authenticating took from them; `idempotency.run` confirms them in its claim."""

    terminal: str
    partner: str
    secret_enc: str


@dataclass(frozen=True)
class Authenticated:
    terminal: Terminal
    partner: Partner
    # Set when a write authenticated from possibly cached rows: it must confirm them.
    versions: RowVersions | None = None


@dataclass(frozen=True)
class _Found:
    terminal: Terminal
    partner: Partner
    versions: tuple[str, str] | None


def _fail(code: str, **details: Any) -> Unauthorized:
    return Unauthorized(code, details=details)


def _terminal_and_partner(session: Session, terminal_code: str, *, fresh: bool) -> _Found | None:
    if fresh:
        row = _TERMINAL_BY_CODE.first(session, {"code": terminal_code})
        if row is None:
            return None
        return _Found(
            _TERMINALS.attach(session, row, populate_existing=True),
            _PARTNERS.attach(session, row, _PARTNER_AT, populate_existing=True),
            _versions(row),
        )

    def load() -> _Found | None:
        row = _TERMINAL_BY_CODE.first(session, {"code": terminal_code})
        if row is None:
            return None
        return _Found(
            _TERMINALS.detached(row), _PARTNERS.detached(row, _PARTNER_AT), _versions(row)
        )

    # The cached copies themselves: a request only reads their columns (neither model has a
    # relationship to load), so they need not join this request's session.
    return _recent_terminals.get_or_load(terminal_code, load)


def _versions(row: tuple[Any, ...]) -> tuple[str, str] | None:
    return (row[_VERSIONS_AT], row[_VERSIONS_AT + 1]) if len(row) > _VERSIONS_AT else None


def _terminal_code(req: Request) -> str:
    terminal_code = req.headers.get("X-Terminal-Id", "")
    if not terminal_code or len(terminal_code) > TERMINAL_ID_MAX:
        raise _fail("terminal_unknown")
    return terminal_code


def _check_signed(req: Request, found: _Found | None, now: datetime) -> str:
    """Every check but the nonce's, in the contract's order; returns the nonce."""
    if found is None:
        raise _fail("terminal_unknown")
    if not found.terminal.active or not found.partner.active:
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
        _secret(found.terminal.secret_enc),
        req.method,
        request_path(req),
        timestamp,
        nonce,
        req.get_data(cache=True),
    )
    if not SIGNATURE_RE.match(signature) or not hmac.compare_digest(expected, signature):
        raise _fail("bad_signature")
    return nonce


def authenticate(
    session: Session,
    req: Request,
    *,
    now: datetime | None = None,
    write: bool = False,
    record_contact: bool = True,
) -> Authenticated:
    """Verify the request's signature headers; raises Unauthorized with one of the five codes.
    Records the nonce, and at most once a minute the terminal's last_seen_at (committed).
    Not with `record_contact` False: an offline upload is judged against the terminal's
    contact *before* it, and records its own in its transaction (mall/payments/offline.py).

    The terminal and partner rows may be as read up to HOT_CACHE_SECONDS ago (mall/cache.py).
    For a `write` on PostgreSQL the answer then carries their `versions`, which the write's
    transaction must confirm (`idempotency.run`); elsewhere a write reads them afresh."""
    now = now or utcnow()
    terminal_code = _terminal_code(req)
    fresh = write and session.get_bind().dialect.name != _VERSIONED
    found = _terminal_and_partner(session, terminal_code, fresh=fresh)
    try:
        nonce = _check_signed(req, found, now)
    except Unauthorized as refused:
        if fresh or refused.code not in _ROW_DEPENDENT:
            raise
        # Cached rows a moment old (re-keyed, enabled again): decide on the rows as they are.
        _recent_terminals.discard(terminal_code)
        found = _terminal_and_partner(session, terminal_code, fresh=False)
        nonce = _check_signed(req, found, now)
    assert found is not None
    terminal, partner = found.terminal, found.partner
    if not current_store().remember(session, terminal.id, nonce, now):
        raise _fail("replayed_request")
    if record_contact and (
        terminal.last_seen_at is None or as_aware(terminal.last_seen_at) < now - LAST_SEEN_EVERY
    ):
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
        session.commit()
        _recent_terminals.discard(terminal_code)
    versions = None
    if write and not fresh and found.versions is not None:
        versions = RowVersions(*found.versions, terminal.secret_enc)
    return Authenticated(terminal, partner, versions)


def forget_terminal(terminal_code: str) -> None:
    """Drop this worker's cached row of the terminal (after changing the row)."""
    _recent_terminals.discard(terminal_code)


def reauthenticate(session: Session, req: Request, *, now: datetime | None = None) -> Authenticated:
    """For a write whose cached rows turned out changed: the rows afresh, in the write's
    transaction, and every check again but the nonce's (spent already by `authenticate`)."""
    terminal_code = _terminal_code(req)
    _recent_terminals.discard(terminal_code)
    found = _terminal_and_partner(session, terminal_code, fresh=True)
    _check_signed(req, found, now or utcnow())
    assert found is not None
    return Authenticated(found.terminal, found.partner)
