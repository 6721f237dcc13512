"""JWT access and refresh tokens (PyJWT, HS256 under JWT_SECRET).

Every token carries `iss`, `sub`, `iat`, `exp`, `jti` and `kind`. Decoding pins the
algorithm to HS256 (so `alg: none`, RS256, ES256, HS512... are refused), requires every
claim, and checks the kind, so a refresh token is never an access token and a farmer's
token never opens a staff endpoint. Any failure is `Unauthorized("invalid_token")`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from flask import current_app

from mall.clock import utcnow
from mall.errors import Unauthorized

ISSUER = "credit-mall"
ALGORITHM = "HS256"
FARMER_ACCESS = "farmer_access"
ADMIN_ACCESS = "admin_access"
REFRESH = "refresh"
KINDS = (FARMER_ACCESS, ADMIN_ACCESS, REFRESH)
REQUIRED_CLAIMS = ["iss", "sub", "iat", "exp", "jti", "kind"]
# Ours are a few hundred bytes; anything far larger is not worth parsing.
MAX_TOKEN_LENGTH = 4096


@dataclass(frozen=True)
class IssuedToken:
    token: str
    jti: str
    issued_at: datetime
    expires_at: datetime


def _secret() -> str:
    return str(current_app.config["JWT_SECRET"])


def access_token_seconds() -> int:
    return int(current_app.config["ACCESS_TOKEN_SECONDS"])


def refresh_token_seconds() -> int:
    return int(current_app.config["REFRESH_TOKEN_SECONDS"])


def new_jti() -> str:
    return secrets.token_hex(16)


def encode(
    kind: str,
    subject: str,
    lifetime_seconds: int,
    *,
    extra: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> IssuedToken:
    if kind not in KINDS:
        raise ValueError(f"unknown token kind {kind!r}")
    issued_at = (now or utcnow()).replace(microsecond=0)
    expires_at = issued_at + timedelta(seconds=lifetime_seconds)
    jti = new_jti()
    claims: dict[str, Any] = {
        **(extra or {}),
        "iss": ISSUER,
        "sub": subject,
        "iat": int(issued_at.timestamp()),
        "exp": int(expires_at.timestamp()),
        "jti": jti,
        "kind": kind,
    }
    token = jwt.encode(claims, _secret(), algorithm=ALGORITHM)
    return IssuedToken(token=token, jti=jti, issued_at=issued_at, expires_at=expires_at)


def decode(token: object, kind: str) -> dict[str, Any]:
    """The verified claims of `token`, which must be of `kind`; else invalid_token."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise Unauthorized("invalid_token")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            _secret(),
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": REQUIRED_CLAIMS},
        )
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise Unauthorized("invalid_token") from exc
    if claims.get("kind") != kind or not isinstance(claims.get("sub"), str):
        raise Unauthorized("invalid_token")
    if not isinstance(claims.get("jti"), str):
        raise Unauthorized("invalid_token")
    return claims
