"""Idempotency-Key on the staff API (optional): a retried write answers what the first did.

A township clerk on a rural connection who loses the answer to "record this points event"
retries it; without a key the retry records the event twice. With `Idempotency-Key` (1-64
printable characters, scoped to the staff account, kept 25 hours) a repeat with the same
body gets the first answer again with `Idempotent-Replayed: true` and does nothing else;
the same key with another body answers 409 `idempotency_conflict`.

The views commit their own work, so the key is claimed inside the request's transaction
before the view runs and is committed by the view's own commit, together with the work:
a committed key always means the work was done. Its answer is stored just after, in the
next transaction. A repeat that finds a key without an answer (the first still running, or
a worker killed between the two commits) answers 409 `request_in_progress`, never runs the
work again. A refusal (4xx) rolls the claim back with the work, so a corrected retry with the
same key runs. On PostgreSQL a concurrent repeat waits on the key's unique index until the
first commits or rolls back, then answers from it or runs. Pruned by `flask jobs`.

Stored answers are sealed (mall.security.crypto): creating a terminal answers its secret,
which is never at rest in clear text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Request, Response, current_app, request
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mall.auth.models import StaffIdempotencyKey
from mall.clock import utcnow
from mall.db import add_unique
from mall.errors import Conflict, DomainError, ValidationFailed
from mall.extensions import db
from mall.security.crypto import sealer
from mall.users.models import User

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
RETENTION = timedelta(hours=25)
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SEAL_CONTEXT = "staff-idempotency"
_KEY_INDEX = "uq_staff_idempotency_keys_user_key"


def request_hash(req: Request) -> str:
    """Method, path, query and body: what makes two requests the same request."""
    h = hashlib.sha256()
    h.update(req.method.encode() + b"\n" + req.full_path.encode() + b"\n")
    h.update(req.get_data(cache=True))
    return h.hexdigest()


class _Taken(Exception):
    """The key was committed by a concurrent request while this one waited on it."""


def run(user: User, view: Callable[[], Any]) -> Any:
    """Run a staff API view under the request's Idempotency-Key, if it has one."""
    key = request.headers.get(KEY_HEADER)
    if key is None or request.method not in WRITES:
        return view()
    if not 1 <= len(key) <= 64 or not key.isprintable():
        raise ValidationFailed(details={"fields": {KEY_HEADER: ["1 to 64 printable characters"]}})
    session = db.session()
    digest = request_hash(request)
    found = _find(session, user.id, key)
    if found is not None:
        return _repeat(found, digest)
    claim = StaffIdempotencyKey(user_id=user.id, key=key, request_hash=digest, created_at=utcnow())
    try:
        add_unique(session, claim, _Taken(), only=_KEY_INDEX)
    except _Taken:
        taken = _find(session, user.id, key)
        if taken is None:  # committed and already pruned: cannot happen within 25 hours
            raise Conflict("request_in_progress") from None
        return _repeat(taken, digest)
    try:
        answer = current_app.make_response(view())
    except Exception as exc:
        if isinstance(exc, DomainError) and exc.keeps_changes:
            if claim in session:
                session.delete(claim)  # the refusal's own changes are committed, not the claim
        else:  # the work and the claim go together
            session.rollback()
        raise
    if answer.status_code < 400 and not answer.is_streamed:
        claim.response_status = answer.status_code
        claim.response_type = answer.content_type
        claim.response_sealed = sealer().seal(answer.get_data(as_text=True), _SEAL_CONTEXT)
    else:  # an answer not kept (a file streamed out) frees its key: a retry runs anew
        session.delete(claim)
    session.commit()
    return answer


def _find(session: Session, user_id: int, key: str) -> StaffIdempotencyKey | None:
    return session.scalar(
        select(StaffIdempotencyKey).where(
            StaffIdempotencyKey.user_id == user_id, StaffIdempotencyKey.key == key
        )
    )


def _repeat(found: StaffIdempotencyKey, digest: str) -> Response:
    if found.request_hash != digest:
        raise Conflict("idempotency_conflict")
    if found.response_status is None or found.response_sealed is None:
        raise Conflict("request_in_progress")
    body = sealer().open(found.response_sealed, _SEAL_CONTEXT)
    answer = Response(body, status=found.response_status, content_type=found.response_type)
    answer.headers[REPLAYED_HEADER] = "true"
    return answer


def prune_keys(session: Session) -> int:
    """Delete keys older than the retention window. Returns rows deleted."""
    cutoff = utcnow() - RETENTION
    result = session.execute(
        delete(StaffIdempotencyKey).where(StaffIdempotencyKey.created_at < cutoff)
    )
    return int(getattr(result, "rowcount", 0) or 0)
