"""Token encoding and the rejection matrix of `mall.auth.tokens.decode`."""

from __future__ import annotations

import base64
import json
import warnings
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask
from jwt.warnings import InsecureKeyLengthWarning
from sqlalchemy.orm import Session

from mall.auth import tokens
from mall.clock import utcnow
from mall.errors import Unauthorized


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(kind: str = tokens.FARMER_ACCESS, **overrides: Any) -> dict[str, Any]:
    now = utcnow()
    claims: dict[str, Any] = {
        "iss": tokens.ISSUER,
        "sub": "h123",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "jti": "a" * 32,
        "kind": kind,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _rejected(token: object, kind: str = tokens.FARMER_ACCESS) -> None:
    with pytest.raises(Unauthorized) as info:
        tokens.decode(token, kind)
    assert info.value.code == "invalid_token"


def test_round_trip_carries_every_claim(session: Session, app: Flask) -> None:
    issued = tokens.encode(tokens.FARMER_ACCESS, "h123", 900)
    claims = tokens.decode(issued.token, tokens.FARMER_ACCESS)
    assert claims["iss"] == "credit-mall"
    assert claims["sub"] == "h123"
    assert claims["kind"] == "farmer_access"
    assert claims["jti"] == issued.jti
    assert claims["exp"] - claims["iat"] == 900
    assert jwt.get_unverified_header(issued.token)["alg"] == "HS256"


def test_each_token_has_its_own_jti(session: Session) -> None:
    a = tokens.encode(tokens.REFRESH, "h1", 60)
    b = tokens.encode(tokens.REFRESH, "h1", 60)
    assert a.jti != b.jti


def test_alg_none_is_rejected(session: Session) -> None:
    unsigned = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(_claims()) + "."
    _rejected(unsigned)


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_other_hmac_algorithm_with_our_secret_is_rejected(
    session: Session, app: Flask, algorithm: str
) -> None:
    with warnings.catch_warnings():
        # Our 44-byte dev secret is "short" for SHA-384/512; this token is an attack anyway.
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        forged = jwt.encode(_claims(), app.config["JWT_SECRET"], algorithm=algorithm)
    _rejected(forged)


def test_rs256_with_a_generated_key_is_rejected(session: Session) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _rejected(jwt.encode(_claims(), key, algorithm="RS256"))


def test_es256_with_a_generated_key_is_rejected(session: Session) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    _rejected(jwt.encode(_claims(), key, algorithm="ES256"))


def test_another_secret_is_rejected(session: Session) -> None:
    _rejected(jwt.encode(_claims(), "another-secret-of-sufficient-length-000", algorithm="HS256"))


def test_tampered_payload_is_rejected(session: Session) -> None:
    header, _payload, signature = tokens.encode(tokens.FARMER_ACCESS, "h123", 900).token.split(".")
    forged = header + "." + _b64(_claims(sub="h999")) + "." + signature
    _rejected(forged)


def test_expired_token_is_rejected(session: Session, app: Flask) -> None:
    past = utcnow() - timedelta(hours=1)
    expired = tokens.encode(tokens.FARMER_ACCESS, "h123", 900, now=past)
    _rejected(expired.token)


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "kind", "jti", "iss"])
def test_every_claim_is_required(session: Session, app: Flask, missing: str) -> None:
    claims = _claims()
    del claims[missing]
    _rejected(jwt.encode(claims, app.config["JWT_SECRET"], algorithm="HS256"))


def test_wrong_issuer_is_rejected(session: Session, app: Flask) -> None:
    token = jwt.encode(_claims(iss="someone-else"), app.config["JWT_SECRET"], algorithm="HS256")
    _rejected(token)


@pytest.mark.parametrize(
    ("issued_kind", "wanted_kind"),
    [
        (tokens.REFRESH, tokens.FARMER_ACCESS),
        (tokens.REFRESH, tokens.ADMIN_ACCESS),
        (tokens.ADMIN_ACCESS, tokens.FARMER_ACCESS),
        (tokens.FARMER_ACCESS, tokens.ADMIN_ACCESS),
        (tokens.FARMER_ACCESS, tokens.REFRESH),
    ],
)
def test_other_kinds_are_rejected(session: Session, issued_kind: str, wanted_kind: str) -> None:
    _rejected(tokens.encode(issued_kind, "1", 900).token, wanted_kind)


def test_unknown_kind_in_claims_is_rejected(session: Session, app: Flask) -> None:
    token = jwt.encode(_claims(kind="superuser"), app.config["JWT_SECRET"], algorithm="HS256")
    _rejected(token)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "abc",
        "a.b.c",
        "...",
        "Bearer x",
        "eyJ.eyJ.sig",
        "x" * 5000,
        None,
        42,
        ["a"],
        "中文.令牌.坏",
    ],
)
def test_garbage_is_rejected(session: Session, garbage: object) -> None:
    _rejected(garbage)


def test_non_string_subject_is_rejected(session: Session, app: Flask) -> None:
    # Signed correctly but with a numeric `sub`: PyJWT refuses it, and so does our check.
    payload = json.dumps(_claims() | {"sub": 7}).encode()
    _rejected(jwt.api_jws.encode(payload, app.config["JWT_SECRET"], algorithm="HS256"))


def test_unknown_kind_cannot_be_issued(session: Session) -> None:
    with pytest.raises(ValueError, match="unknown token kind"):
        tokens.encode("superuser", "1", 60)
