"""Idempotency-Key handling (POS API v1, section 2), stored in the database.

The key row is inserted and committed first, in its own short transaction: a concurrent
repeat (another worker, another host) finds it and answers request_in_progress instead of
running the work twice. The work and its stored response then commit together, so after a
crash there is either both or neither (a key left without a response for longer than
`LEASE` is taken over by the next repeat). Final responses below 500 are stored, including
refusals: a repeat gets exactly the first answer. A 5xx stores nothing and frees the key,
so a client retrying after a server failure runs the request again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import Request, Response, current_app
from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from mall.clock import as_aware, utcnow
from mall.db import commit_without_waiting_for_disk, insert_for
from mall.errors import Conflict, DomainError, ValidationFailed
from pos_adapter.models import PosIdempotencyKey

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
RETENTION = timedelta(hours=25)  # the contract promises at least 24 hours
LEASE = timedelta(seconds=60)  # longer than any request may run (gunicorn's timeout is 30 s)
_NOT_STORED = frozenset({"idempotency_conflict", "request_in_progress", "rate_limited"})

_keys: Table = PosIdempotencyKey.__table__  # type: ignore[assignment]


def request_hash(req: Request) -> str:
    h = hashlib.sha256()
    h.update(req.method.encode() + b"\n" + req.path.encode() + b"\n")
    h.update(req.get_data(cache=True))
    return h.hexdigest()


def _key(req: Request) -> str:
    return _checked_key(req.headers.get(KEY_HEADER, ""))


def _checked_key(key: str) -> str:
    if not 1 <= len(key) <= 64 or not key.isprintable():
        raise ValidationFailed("idempotency_key_required")
    return key


def form_digest(req: Request) -> str:
    """The fingerprint of a form POST: method, path and every field in order."""
    h = hashlib.sha256()
    h.update(req.method.encode() + b"\n" + req.path.encode() + b"\n")
    for name, value in req.form.items(multi=True):
        h.update(json.dumps([name, value], ensure_ascii=False).encode() + b"\n")
    return h.hexdigest()


def _claim(session: Session, terminal_pk: int, key: str, digest: str, now: datetime) -> Any:
    """Insert the key row, or return the existing one (None when we own a fresh row)."""
    ins = insert_for(session, _keys)
    # RETURNING, not rowcount: psycopg 3 reports -1 for INSERT ... ON CONFLICT DO NOTHING.
    inserted = session.execute(
        ins.values(terminal_id=terminal_pk, key=key, request_hash=digest, created_at=now)
        .on_conflict_do_nothing()
        .returning(_keys.c.id)
    ).first()
    if inserted is not None:
        commit_without_waiting_for_disk(session)
        return None
    row = session.execute(
        select(_keys).where(_keys.c.terminal_id == terminal_pk, _keys.c.key == key)
    ).one()
    if row.request_hash != digest:
        raise Conflict("idempotency_conflict", details={"idempotency_key": key})
    if row.response_status is not None:
        return row
    if as_aware(row.created_at) > now - LEASE:
        raise Conflict("request_in_progress", details={"idempotency_key": key})
    taken = session.execute(
        update(_keys)
        .where(
            _keys.c.id == row.id,
            _keys.c.response_status.is_(None),
            _keys.c.created_at == row.created_at,
        )
        .values(created_at=now)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("request_in_progress", details={"idempotency_key": key})
    commit_without_waiting_for_disk(session)
    return None


def _replay(row: Any) -> Response:
    resp = Response(row.response_body, status=row.response_status, mimetype="application/json")
    resp.headers[REPLAYED_HEADER] = "true"
    return resp


def _error_response(exc: Exception) -> Response:
    resp = current_app.handle_user_exception(exc)
    return resp if isinstance(resp, Response) else current_app.make_response(resp)


def run(
    session: Session,
    req: Request,
    terminal_pk: int,
    work: Callable[[], Any],
    *,
    key: str | None = None,
    digest: str | None = None,
) -> Response:
    """Run `work` (a view returning a response) at most once per key of this terminal.

    The key comes from the Idempotency-Key header and the fingerprint from the raw body,
    unless given: the cashier pages send the key in a hidden form field, and their form
    body is consumed by the CSRF check before the view runs (see `form_digest`)."""
    key = _key(req) if key is None else _checked_key(key)
    now = utcnow()
    existing = _claim(session, terminal_pk, key, digest or request_hash(req), now)
    if existing is not None:
        return _replay(existing)
    try:
        resp = current_app.make_response(work())
    except (DomainError, HTTPException) as exc:
        if isinstance(exc, DomainError) and exc.keeps_changes:
            session.commit()  # e.g. a PIN failure count (nothing else was written)
        else:
            session.rollback()
        resp = _error_response(exc)
        if isinstance(exc, DomainError) and exc.code in _NOT_STORED:
            _release(session, terminal_pk, key)
            return resp
    except Exception:
        session.rollback()
        _release(session, terminal_pk, key)
        raise
    if resp.status_code >= 500:
        session.rollback()
        _release(session, terminal_pk, key)
        return resp
    session.execute(
        update(_keys)
        .where(_keys.c.terminal_id == terminal_pk, _keys.c.key == key)
        .values(
            response_status=resp.status_code,
            response_body=resp.get_data(as_text=True),
            completed_at=utcnow(),
        )
    )
    session.commit()
    return resp


def _release(session: Session, terminal_pk: int, key: str) -> None:
    session.execute(delete(_keys).where(_keys.c.terminal_id == terminal_pk, _keys.c.key == key))
    session.commit()


def prune_keys(session: Session, *, now: datetime | None = None) -> int:
    """Delete keys older than the retention window. Returns rows deleted."""
    cutoff = (now or utcnow()) - RETENTION
    result = session.execute(delete(_keys).where(_keys.c.created_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)


def stored_body(resp: Response) -> dict[str, Any]:
    return json.loads(resp.get_data(as_text=True))
