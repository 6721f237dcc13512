"""Login lockout: 5 failures within 15 minutes lock an identifier for 15 minutes.

One mechanism for farmers (keyed by phone) and staff (keyed by username), API and admin
pages alike. Identifiers nobody owns are throttled too, and the answers are the same, so
the login cannot be used to find out which phones are enrolled.

Callers must commit after a refusal as well as after a success: the failure count is the
point of the exercise (see `mall.api.auth.views` and `admin.views`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mall.auth.models import LoginThrottle
from mall.clock import as_aware, utcnow
from mall.errors import TooManyRequests, Unauthorized
from mall.security.crypto import sealer

MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
LOCK_DURATION = timedelta(minutes=15)

T = TypeVar("T")


def now() -> datetime:
    """The throttle's clock; tests patch `mall.auth.throttle.now` to move time."""
    return utcnow()


def throttle_key(kind: str, identifier: str) -> str:
    """A keyed hash of the identifier: the table never holds a phone or a username."""
    return sealer().blind_index(f"{kind}:{identifier}", "login")


def form_phone(raw: str) -> str:
    """The phone number of the farmer login page's form: its digits (people type spaces and
    dashes). The API takes the phone as sent; both are looked up after `normalise`."""
    return "".join(ch for ch in raw if ch.isdigit())[:20]


def phone_limit_key(phone: str) -> str:
    """The per-phone rate limit's key (mall.http.ratelimits): a keyed hash of the phone as the login
    looks it up (normalised, as `find_by_phone` does), so every spelling of one number and
    every login path count together, and the limiter's storage holds no phone number."""
    return "phone:" + sealer().blind_index(phone, "login_limit")


def _locked(seconds: int) -> TooManyRequests:
    return TooManyRequests(
        "login_locked", details={"retry_after_seconds": max(seconds, 1)}, keeps_changes=True
    )


def _load(session: Session, key: str) -> LoginThrottle | None:
    return session.scalar(select(LoginThrottle).where(LoginThrottle.key == key).with_for_update())


def _record_failure(session: Session, key: str, row: LoginThrottle | None, at: datetime) -> bool:
    """Count one failure; True when it locks the identifier."""
    if row is None:
        row = LoginThrottle(key=key, failed_count=0)
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:
            # A concurrent first failure created it; count on the existing row.
            existing = _load(session, key)
            assert existing is not None
            row = existing
    first = as_aware(row.first_failed_at) if row.first_failed_at else None
    if first is None or at - first > FAILURE_WINDOW:
        row.failed_count = 1
        row.first_failed_at = at
    else:
        row.failed_count += 1
    if row.failed_count >= MAX_FAILURES:
        row.locked_until = at + LOCK_DURATION
        row.failed_count = 0
        row.first_failed_at = None
    session.flush()
    return row.locked_until is not None and as_aware(row.locked_until) > at


def guarded_login(session: Session, key: str, attempt: Callable[[], T | None]) -> T:
    """Run `attempt` unless `key` is locked; count its failure or clear the record.

    `attempt` returns the authenticated party or None. Refusals raise
    `TooManyRequests("login_locked")` or `Unauthorized("invalid_credentials")`.
    """
    at = now()
    row = _load(session, key)
    if row is not None and row.locked_until is not None:
        until = as_aware(row.locked_until)
        if until > at:
            raise _locked(int((until - at).total_seconds()))
        row.locked_until = None  # the lock has run out: start afresh
    result = attempt()
    if result is None:
        if _record_failure(session, key, row, at):
            raise _locked(int(LOCK_DURATION.total_seconds()))
        raise Unauthorized("invalid_credentials", keeps_changes=True)  # the count stays
    if row is not None:
        session.delete(row)
        session.flush()
    return result


def purge_stale(session: Session) -> int:
    """Delete records that no longer lock or count anything (for a periodic job)."""
    at = now()
    result = session.execute(
        delete(LoginThrottle).where(
            or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= at),
            or_(
                LoginThrottle.first_failed_at.is_(None),
                LoginThrottle.first_failed_at < at - FAILURE_WINDOW,
            ),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
