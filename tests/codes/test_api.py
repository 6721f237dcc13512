"""Public key endpoints: `GET /pos/v1/keys` and `GET /.well-known/jwks.json`."""

from __future__ import annotations

from datetime import timedelta

import jwt
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mall.clock import utcnow
from mall.codes import keys
from mall.codes.models import CodeSigningKey
from mall.codes.services import sign_dynamic_code
from mall.subjects.models import CreditSubject


def test_pos_keys_is_public_and_creates_the_first_key(
    client: FlaskClient, session: Session
) -> None:
    assert session.scalar(select(func.count(CodeSigningKey.id))) == 0
    resp = client.get("/pos/v1/keys")
    assert resp.status_code == 200
    assert "max-age=" in resp.headers["Cache-Control"]
    assert resp.headers["Cache-Control"].startswith("public")
    body = resp.get_json()
    assert len(body["keys"]) == 1
    jwk = body["keys"][0]
    assert set(jwk) == {"kty", "crv", "x", "kid", "use", "alg"}
    assert (jwk["kty"], jwk["crv"], jwk["use"], jwk["alg"]) == ("OKP", "Ed25519", "sig", "EdDSA")
    assert len(keys.b64url_decode(jwk["x"])) == 32
    assert "d" not in jwk  # never the private part
    assert body["offline_policy"] == {
        "floor_limit_fen": 5000,
        "code_lifetime_seconds": 60,
        "allowed_skew_seconds": 10,
        # additions to the contract (docs/pos-api.md section 6)
        "card_floor_limit_fen": 2000,
        "revocation_list_path": "/pos/v1/card-revocations",
    }
    # Asking again does not create another key.
    client.get("/pos/v1/keys")
    assert session.scalar(select(func.count(CodeSigningKey.id))) == 1


def test_a_terminal_can_verify_a_code_with_the_published_key(
    client: FlaskClient, session: Session, household: CreditSubject
) -> None:
    """What an offline terminal does: PyJWK from the cached JWKS, EdDSA only."""
    code = sign_dynamic_code(session, household).code
    body = client.get("/pos/v1/keys").get_json()
    by_kid = {k["kid"]: jwt.PyJWK(k) for k in body["keys"]}
    kid = jwt.get_unverified_header(code)["kid"]
    claims = jwt.decode(code, by_kid[kid].key, algorithms=["EdDSA"])
    assert claims["sub"] == household.ref


def test_jwks_lists_the_same_keys_and_the_previous_one_after_rotation(
    client: FlaskClient, session: Session
) -> None:
    first = client.get("/.well-known/jwks.json")
    assert first.status_code == 200
    assert "max-age=" in first.headers["Cache-Control"]
    old_kid = first.get_json()["keys"][0]["kid"]
    new = keys.rotate_key(session)
    session.commit()
    pos = client.get("/pos/v1/keys").get_json()["keys"]
    jwks = client.get("/.well-known/jwks.json").get_json()
    assert set(jwks) == {"keys"}
    assert jwks["keys"] == pos
    assert [k["kid"] for k in pos] == [new.kid, old_kid]


def test_expired_keys_leave_the_published_set(client: FlaskClient, session: Session) -> None:
    an_hour_ago = utcnow() - timedelta(hours=1)
    keys.signing_key(session, an_hour_ago)
    keys.rotate_key(session, now=an_hour_ago)
    session.commit()
    listed = client.get("/pos/v1/keys").get_json()["keys"]
    assert len(listed) == 1  # the old key's overlap ended long ago
    assert len(keys.published_jwks(session, now=an_hour_ago + timedelta(seconds=1))) == 2


def test_keys_are_in_the_openapi_description(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    assert "/pos/v1/keys" in spec["paths"]
    assert "/.well-known/jwks.json" in spec["paths"]
