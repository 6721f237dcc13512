"""Idempotency-Key handling (POS API v1, section 2), stored in the database.

The key row is claimed inside the request's own transaction and committed with the work and
its stored response, so there is always both or neither: a crash, a 5xx or a killed worker
leaves no trace, and the client's retry simply runs the request. On PostgreSQL the claim also
takes a transaction-scoped advisory lock on the key: a concurrent repeat (another worker,
another host) cannot take it, finds no committed row, and answers request_in_progress instead
of running the work twice or waiting. On SQLite every write transaction is serial anyway.

A POS write that authenticated from cached terminal rows (pos_adapter/auth.py) passes their
versions: the claim then also requires both rows to be unchanged, in the same statement, and
when it inserts nothing the rows are read afresh and checked before anything else is decided.

Final responses below 500 are stored, including refusals (the work is rolled back, then the
refusal is stored): a repeat gets exactly the first answer. A row without a response is only
ever committed by an older version of this module (which claimed in a transaction of its own);
such a row is in progress for `LEASE`, then taken over by the next repeat.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Request, Response, current_app
from sqlalchemy import (
    BigInteger,
    DateTime,
    Integer,
    String,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    func,
    literal_column,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from mall.clock import as_aware, utcnow
from mall.db import insert_for, insert_for_dialect
from mall.driver_sql import DriverStatement
from mall.errors import Conflict, DomainError, ValidationFailed
from mall.partners.models import Partner, Terminal
from pos_adapter.auth import RowVersions
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


def _advisory_key(terminal_pk: int, key: str) -> int:
    """A signed 64-bit lock id for (terminal, key), apart from the app's other advisory locks
    by its prefix. A collision only makes a repeat answer request_in_progress (retryable)."""
    digest = hashlib.blake2b(f"pos-idempotency:{terminal_pk}:{key}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def _claim_statement(dialect: str, *, confirming: bool = False) -> Any:
    """INSERT the key row unless it exists; on PostgreSQL only once the key's advisory lock
    is ours (a repeat running elsewhere holds it until its transaction ends), and when
    `confirming`, only while the terminal and partner rows are the versions authenticated."""
    free: Any = (
        func.pg_try_advisory_xact_lock(bindparam("b_lock_id", type_=BigInteger))
        if dialect == "postgresql"
        else true()
    )
    if confirming:
        free = and_(free, _unchanged())
    row = select(
        bindparam("b_terminal_id", type_=Integer),
        bindparam("b_key", type_=String),
        bindparam("b_request_hash", type_=String),
        bindparam("b_created_at", type_=DateTime(timezone=True)),
    ).where(free)
    columns = [_keys.c.terminal_id, _keys.c.key, _keys.c.request_hash, _keys.c.created_at]
    # RETURNING, not rowcount: psycopg 3 reports -1 for INSERT ... ON CONFLICT DO NOTHING.
    insert = insert_for_dialect(dialect, _keys).from_select(columns, row)
    return insert.on_conflict_do_nothing().returning(_keys.c.id)


def _unchanged() -> Any:
    # `xmin` changes with every UPDATE of a row; active and the secret are compared as well,
    # so that what authentication relied on is stated, not only implied.
    return exists().where(
        Terminal.id == bindparam("b_terminal_id"),
        Partner.id == Terminal.partner_id,
        literal_column("terminals.xmin::text") == bindparam("b_terminal_version", type_=String),
        literal_column("partners.xmin::text") == bindparam("b_partner_version", type_=String),
        Terminal.secret_enc == bindparam("b_secret_enc", type_=String),
        Terminal.active.is_(True),
        Partner.active.is_(True),
    )


_CLAIM = DriverStatement(_claim_statement)
_CLAIM_CONFIRMING = DriverStatement(lambda dialect: _claim_statement(dialect, confirming=True))
_STORE = DriverStatement(
    lambda _dialect: (
        update(_keys)
        .where(_keys.c.terminal_id == bindparam("b_terminal_id"), _keys.c.key == bindparam("b_key"))
        .values(
            response_status=bindparam("b_status", type_=Integer),
            response_body=bindparam("b_body", type_=String),
            completed_at=bindparam("b_completed_at", type_=DateTime(timezone=True)),
        )
    )
)


def _claim(
    session: Session,
    terminal_pk: int,
    key: str,
    digest: str,
    now: datetime,
    confirm: Confirmation | None = None,
) -> Any:
    """Insert the key row in this transaction, or return the stored one to replay (None when
    the request is ours to run)."""
    params: dict[str, Any] = {
        "b_lock_id": _advisory_key(terminal_pk, key),
        "b_terminal_id": terminal_pk,
        "b_key": key,
        "b_request_hash": digest,
        "b_created_at": now,
    }
    if confirm is None:
        inserted = _CLAIM.first(session, params)
    else:
        v = confirm.versions
        params.update(
            b_terminal_version=v.terminal, b_partner_version=v.partner, b_secret_enc=v.secret_enc
        )
        inserted = _CLAIM_CONFIRMING.first(session, params)
    if inserted is not None:
        return None
    if confirm is not None:
        # Changed rows, or a key taken: which, is found out with the rows read afresh (and
        # the request refused here if the terminal may no longer write).
        confirm.refresh()
        return _claim(session, terminal_pk, key, digest, now)
    row = session.execute(
        select(_keys).where(_keys.c.terminal_id == terminal_pk, _keys.c.key == key)
    ).first()
    if row is None:  # the lock is taken and the row not committed: the first is still running
        raise Conflict("request_in_progress", details={"idempotency_key": key})
    if row.request_hash != digest:
        raise Conflict("idempotency_conflict", details={"idempotency_key": key})
    if row.response_status is not None:
        return row
    # A claim committed without a response (an older version of this module; see above).
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
    return None


@dataclass(frozen=True)
class Confirmation:
    """Row versions a write authenticated from, and what to do when they changed: read the
    rows afresh and check again (raising if the terminal may no longer write)."""

    versions: RowVersions
    refresh: Callable[[], None]


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
    confirm: Confirmation | None = None,
) -> Response:
    """Run `work` (a view returning a response) at most once per key of this terminal.

    The key comes from the Idempotency-Key header and the fingerprint from the raw body,
    unless given: the cashier pages send the key in a hidden form field, and their form
    body is consumed by the CSRF check before the view runs (see `form_digest`).
    `confirm`: the terminal rows the request authenticated from, to confirm in the claim."""
    key = _key(req) if key is None else _checked_key(key)
    digest = digest or request_hash(req)
    existing = _claim(session, terminal_pk, key, digest, utcnow(), confirm)
    if existing is not None:
        return _replay(existing)
    try:
        resp = current_app.make_response(work())
    except (DomainError, HTTPException) as exc:
        resp = _error_response(exc)
        if isinstance(exc, DomainError) and exc.keeps_changes:
            # e.g. a PIN failure count: it commits together with the stored refusal
            _store(session, terminal_pk, key, resp)
            return resp
        session.rollback()
        if not (isinstance(exc, DomainError) and exc.code in _NOT_STORED):
            _store_refusal(session, terminal_pk, key, digest, resp)
        return resp
    except Exception:
        session.rollback()
        raise
    if resp.status_code >= 500:
        session.rollback()  # the claim goes with it: a retry runs the request again
        return resp
    _store(session, terminal_pk, key, resp)
    return resp


def _store(session: Session, terminal_pk: int, key: str, resp: Response) -> None:
    """Record the response on this transaction's claim and commit it with the work."""
    _STORE.rowcount(
        session,
        {
            "b_terminal_id": terminal_pk,
            "b_key": key,
            "b_status": resp.status_code,
            "b_body": resp.get_data(as_text=True),
            "b_completed_at": utcnow(),
        },
    )
    session.commit()


def _store_refusal(
    session: Session, terminal_pk: int, key: str, digest: str, resp: Response
) -> None:
    """After the work rolled back (and the claim with it): the key and its refusal, in a
    transaction of their own. Should a repeat have claimed the key meanwhile, its row waits
    on ours or wins; a row left without a response is completed."""
    now = utcnow()
    ins = insert_for(session, _keys).values(
        terminal_id=terminal_pk,
        key=key,
        request_hash=digest,
        created_at=now,
        response_status=resp.status_code,
        response_body=resp.get_data(as_text=True),
        completed_at=now,
    )
    session.execute(
        ins.on_conflict_do_update(
            index_elements=[_keys.c.terminal_id, _keys.c.key],
            set_={
                "response_status": ins.excluded.response_status,
                "response_body": ins.excluded.response_body,
                "completed_at": ins.excluded.completed_at,
            },
            where=_keys.c.response_status.is_(None) & (_keys.c.request_hash == digest),
        )
    )
    session.commit()


def prune_keys(session: Session, *, now: datetime | None = None) -> int:
    """Delete keys older than the retention window. Returns rows deleted."""
    cutoff = (now or utcnow()) - RETENTION
    result = session.execute(delete(_keys).where(_keys.c.created_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)


def stored_body(resp: Response) -> dict[str, Any]:
    return json.loads(resp.get_data(as_text=True))
