"""Who is calling: `require_farmer` and `require_staff(*roles)` for views.

Farmers authenticate with a `farmer_access` bearer token. Staff use an `admin_access`
bearer token or the admin web session cookie; with the cookie, unsafe methods must also
carry the CSRF token, since a browser sends cookies on behalf of any page.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import current_app, g, request, session
from flask_wtf.csrf import CSRFError
from sqlalchemy import select

from mall.auth import idempotency, tokens
from mall.auth.services import FARMER_LOGIN_BLOCKED_STATUSES, session_version
from mall.clock import utcnow
from mall.errors import Forbidden, Unauthorized, ValidationFailed
from mall.extensions import db
from mall.http.extensions import csrf
from mall.subjects.logins import generation_matches
from mall.subjects.models import CreditSubject
from mall.users.models import User

P = ParamSpec("P")
R = TypeVar("R")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Keys of the admin web session (Flask's signed cookie).
SESSION_USER_ID = "staff_uid"
SESSION_VERSION = "staff_sv"
SESSION_LOGIN_AT = "staff_at"
DEFAULT_ADMIN_SESSION_SECONDS = 12 * 3600

BEARER_SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def bearer_token() -> str | None:
    """The bearer token of the request, None without an Authorization header."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("invalid_token")
    return token.strip()


def farmer_from_token(token: str) -> CreditSubject:
    """The household of a farmer access token. Refused once the household's logins have been
    ended after the token was issued (its `gen` claim is not the row's session generation:
    mall.subjects.logins), compared on the row this loads anyway."""
    claims = tokens.decode(token, tokens.FARMER_ACCESS)
    subject = db.session.scalar(select(CreditSubject).where(CreditSubject.ref == claims["sub"]))
    if (
        subject is None
        or subject.status in FARMER_LOGIN_BLOCKED_STATUSES
        or not generation_matches(subject, claims.get("gen"))
    ):
        raise Unauthorized("invalid_token")
    return subject


def staff_from_token(token: str) -> User:
    claims = tokens.decode(token, tokens.ADMIN_ACCESS)
    user = db.session.get(User, int(claims["sub"])) if claims["sub"].isdigit() else None
    if user is None or not user.active or claims.get("sv") != session_version(user):
        raise Unauthorized("invalid_token")
    return user


def _admin_session_seconds() -> int:
    return int(current_app.config.get("ADMIN_SESSION_SECONDS", DEFAULT_ADMIN_SESSION_SECONDS))


def start_staff_session(user: User) -> None:
    """Log `user` in to the admin pages: a fresh session, nothing kept from before."""
    session.clear()
    session[SESSION_USER_ID] = user.id
    session[SESSION_VERSION] = session_version(user)
    session[SESSION_LOGIN_AT] = int(utcnow().timestamp())


def end_staff_session() -> None:
    session.clear()


def staff_from_session() -> User | None:
    """The user of a valid admin session, or None (and the stale session is dropped)."""
    user_id = session.get(SESSION_USER_ID)
    if user_id is None:
        return None
    login_at = session.get(SESSION_LOGIN_AT)
    user = db.session.get(User, user_id) if isinstance(user_id, int) else None
    too_old = (
        not isinstance(login_at, int) or utcnow().timestamp() - login_at > _admin_session_seconds()
    )
    if (
        user is None
        or not user.active
        or too_old
        or session.get(SESSION_VERSION) != session_version(user)
    ):
        end_staff_session()
        return None
    return user


def require_farmer(view: Callable[P, R]) -> Callable[P, R]:
    """Sets `g.subject` from a farmer_access bearer token; 401 otherwise."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        token = bearer_token()
        if token is None:
            raise Unauthorized()
        g.subject = farmer_from_token(token)
        return view(*args, **kwargs)

    return wrapper


def current_staff() -> User:
    """The staff user of this request (bearer token first, else the admin session)."""
    token = bearer_token()
    if token is not None:
        return staff_from_token(token)
    user = staff_from_session()
    if user is None:
        raise Unauthorized()
    if request.method not in SAFE_METHODS:
        try:
            csrf.protect()
        except CSRFError as exc:
            raise ValidationFailed("csrf_failed") from exc
    return user


def require_staff(*roles: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Sets `g.user`; 401 without valid credentials, 403 when the role is not in `roles`
    (any staff role when `roles` is empty)."""

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            user = current_staff()
            if roles and user.role not in roles:
                raise Forbidden()
            g.user = user
            return idempotency.run(user, lambda: view(*args, **kwargs))

        return wrapper

    return decorator
