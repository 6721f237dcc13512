"""Logins, token pairs, refresh rotation with reuse detection, logout.

Services take the session and only flush. Refusals that change state (a counted login
failure, a token family revoked after reuse) must still be committed by the caller.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import structlog
from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from mall.auth import tokens
from mall.auth.models import LoginThrottle
from mall.auth.throttle import guarded_login, throttle_key
from mall.clock import as_aware, utcnow
from mall.db import lock_row
from mall.errors import Unauthorized
from mall.security.passwords import hash_password, hash_pin, verify_password, verify_pin
from mall.subjects.logins import RefreshToken, end_household_sessions, generation_matches
from mall.subjects.models import CreditSubject
from mall.subjects.services import find_by_phone, plain_value
from mall.users.models import User

log = structlog.get_logger(__name__)

# Revoked households cannot log in at all; frozen ones can, to read their status.
FARMER_LOGIN_BLOCKED_STATUSES = frozenset({"revoked"})


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_jti: str


@cache
def _dummy_pin_hash() -> str:
    # Verified when the phone is unknown, so both answers take the same time.
    return hash_pin(secrets.token_hex(8))


@cache
def _dummy_password_hash() -> str:
    return hash_password(secrets.token_hex(16))


# --- farmers -------------------------------------------------------------------------------


def login_farmer(session: Session, phone: str, pin: str) -> TokenPair:
    """Phone + PIN to a token pair. Unknown phone, wrong PIN, revoked household: the same
    `invalid_credentials`, counted by the same throttle."""
    return issue_farmer_tokens(session, authenticate_farmer(session, phone, pin))


def authenticate_farmer(session: Session, phone: str, pin: str) -> CreditSubject:
    """Phone + PIN to the household, under the login throttle (the farmer pages keep a
    cookie session instead of tokens, with the same rules)."""

    def attempt() -> CreditSubject | None:
        subject = find_by_phone(session, phone)
        stored = subject.pin_hash if subject is not None else None
        pin_ok = verify_pin(stored or _dummy_pin_hash(), pin)
        if subject is None or not stored or not pin_ok:
            return None
        if subject.status in FARMER_LOGIN_BLOCKED_STATUSES:
            return None
        return subject

    return guarded_login(session, throttle_key("farmer", phone), attempt)


# What else counts login attempts per phone, outside the database: the web layer's rate limit
# (mall.http.ratelimits), which the composition root registers here. The domain knows no channel.
_PHONE_UNLOCK_HOOKS: dict[str, Callable[[str], None]] = {}


def on_phone_unlocked(name: str, hook: Callable[[str], None]) -> None:
    """Call `hook(phone)` whenever an admin gives a phone its login back (by name: registering
    again replaces)."""
    _PHONE_UNLOCK_HOOKS[name] = hook


def unlock_farmer_login(session: Session, subject: CreditSubject) -> None:
    """Give the household's phone its login back: the lockout's record (`mall.auth.throttle`)
    and every per-phone counter registered with `on_phone_unlocked` (the web layer's rate
    limit). For an admin who reset or unlocked the household's PIN after checking who they are:
    a stranger who spent the phone's allowance must not keep the household out until the
    window ends."""
    phone = plain_value(subject, "phone")
    if phone is None:
        return
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == throttle_key("farmer", phone)))
    session.flush()
    for hook in _PHONE_UNLOCK_HOOKS.values():
        hook(phone)


def issue_farmer_tokens(
    session: Session, subject: CreditSubject, family_id: str | None = None
) -> TokenPair:
    """A new access and refresh token for the household, under its current session generation
    (`gen`, see mall.subjects.logins): in a new family, or rotated within `family_id`."""
    at = utcnow()
    family_id = family_id or secrets.token_hex(16)
    gen = subject.session_gen
    access = tokens.encode(
        tokens.FARMER_ACCESS,
        subject.ref,
        tokens.access_token_seconds(),
        extra={"gen": gen},
        now=at,
    )
    refresh = tokens.encode(
        tokens.REFRESH,
        subject.ref,
        tokens.refresh_token_seconds(),
        extra={"fam": family_id, "gen": gen},
        now=at,
    )
    session.add(
        RefreshToken(
            jti=refresh.jti,
            family_id=family_id,
            subject_id=subject.id,
            issued_at=refresh.issued_at,
            expires_at=refresh.expires_at,
        )
    )
    session.flush()
    return TokenPair(access.token, refresh.token, tokens.access_token_seconds(), refresh.jti)


def revoke_family(session: Session, family_id: str) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    session.flush()


def _stored_refresh(session: Session, token: object) -> tuple[RefreshToken, dict[str, Any]]:
    claims = tokens.decode(token, tokens.REFRESH)
    row = session.scalar(
        select(RefreshToken).where(RefreshToken.jti == claims["jti"]).with_for_update()
    )
    if row is None or row.family_id != claims.get("fam") or row.subject.ref != claims["sub"]:
        raise Unauthorized("invalid_token")
    return row, claims


def refresh(session: Session, token: object) -> TokenPair:
    """Exchange a live refresh token for a new pair in the same family.

    A token that was already exchanged or revoked means two parties hold it (one of them
    a thief): the whole family is revoked, so the thief's rotated tokens die as well. A token
    of an ended session generation (PIN changed, card lost, frozen, logged out: see
    mall.subjects.logins) is refused, even if its row was written after the end was.
    """
    row, claims = _stored_refresh(session, token)
    at = utcnow()
    if not generation_matches(row.subject, claims.get("gen")):
        # Ended (mall.subjects.logins), not stolen: no reuse warning. Revoked here too in case
        # the row was written after the end revoked the household's rows.
        revoke_family(session, row.family_id)
        raise Unauthorized("invalid_token", keeps_changes=True)
    if row.used_at is not None or row.revoked_at is not None:
        log.warning("refresh_token_reuse", family_id=row.family_id, subject_id=row.subject_id)
        revoke_family(session, row.family_id)
        raise Unauthorized("invalid_token", keeps_changes=True)  # the revocation stays
    if as_aware(row.expires_at) <= at:
        raise Unauthorized("invalid_token")
    if row.subject.status in FARMER_LOGIN_BLOCKED_STATUSES:
        revoke_family(session, row.family_id)
        raise Unauthorized("invalid_token", keeps_changes=True)
    pair = issue_farmer_tokens(session, row.subject, row.family_id)
    row.used_at = at
    row.replaced_by = pair.refresh_jti
    session.flush()
    return pair


def logout(session: Session, token: object) -> None:
    """The app's "log out": ends every login of the household, on every device (its refresh
    families, the access tokens issued from them, its /m/ page sessions; see
    mall.subjects.logins), not only this device's family. A household has one credential, its
    phone and PIN, shared by whoever uses the app for it, and a per-device logout could not
    end the access token of that device without a lookup on every request.

    A token of a login that has ended already (an older generation, or a revoked family) ends
    nothing more: a dead token cannot log the household out again and again.
    """
    row, claims = _stored_refresh(session, token)
    # The household's row locked and read again: a PIN change (or another logout) committed
    # meanwhile has ended this token, and then this logout must not end the logins it gave.
    lock_row(session, row.subject)
    if row.revoked_at is not None or not generation_matches(row.subject, claims.get("gen")):
        return
    end_household_sessions(session, row.subject, "logout")


# --- staff ---------------------------------------------------------------------------------


def login_staff(session: Session, username: str, password: str) -> User:
    """Username + password to the user; inactive and unknown users fail like a wrong password."""
    username = username.strip()

    def attempt() -> User | None:
        user = session.scalar(select(User).where(User.username == username))
        stored = user.password_hash if user is not None else _dummy_password_hash()
        password_ok = verify_password(stored, password)
        if user is None or not password_ok or not user.active:
            return None
        return user

    return guarded_login(session, throttle_key("staff", username), attempt)


def session_version(user: User) -> str:
    """Changes when the password changes (argon2 salts every hash) or the account is
    deactivated, which ends every admin session and staff token issued before."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    msg = f"{user.id}:{user.password_hash}:{int(bool(user.active))}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()[:16]


def issue_staff_token(user: User) -> tuple[str, int]:
    lifetime = tokens.access_token_seconds()
    access = tokens.encode(
        tokens.ADMIN_ACCESS, str(user.id), lifetime, extra={"sv": session_version(user)}
    )
    return access.token, lifetime
