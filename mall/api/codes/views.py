"""Public credit-code keys: `GET /pos/v1/keys` (with the offline policy) and the JWKS."""

from __future__ import annotations

from typing import Any

from mall.api.codes.schemas import JwksSchema, PosKeysSchema
from mall.codes import keys, policy
from mall.extensions import db
from mall.http.openapi import Blueprint

blp = Blueprint("codes", __name__, description="Credit-code public keys")

# Terminals refresh within five minutes; rotation can pre-publish a key for longer than that
# (`codes rotate-key --activate-in 600`) so an offline terminal already knows the new key.
CACHE_CONTROL = "public, max-age=300"


def _current_jwks() -> list[dict[str, str]]:
    session = db.session()
    jwks = keys.published_jwks(session)
    if not jwks:
        # No key yet: create the first one now rather than publish an empty set that
        # terminals would cache. One request ever does this.
        keys.signing_key(session)
        session.commit()
        jwks = keys.published_jwks(session)
    return jwks


@blp.get("/pos/v1/keys")
@blp.response(200, PosKeysSchema)
def pos_keys() -> tuple[dict[str, Any], int, dict[str, str]]:
    """The credit-code public keys (current and still-valid previous) and the offline policy."""
    body = {
        "keys": _current_jwks(),
        "offline_policy": {
            "floor_limit_fen": policy.offline_floor_limit_fen(),
            # Additions to the contract (docs/pos-api.md section 6).
            "card_floor_limit_fen": min(
                policy.offline_card_floor_limit_fen(), policy.offline_floor_limit_fen()
            ),
            "revocation_list_path": "/pos/v1/card-revocations",
            "code_lifetime_seconds": policy.code_lifetime_seconds(),
            "allowed_skew_seconds": policy.allowed_skew_seconds(),
        },
    }
    return body, 200, {"Cache-Control": CACHE_CONTROL}


@blp.get("/.well-known/jwks.json")
@blp.response(200, JwksSchema)
def jwks() -> tuple[dict[str, Any], int, dict[str, str]]:
    """The same keys as a plain JWKS (RFC 7517)."""
    return {"keys": _current_jwks()}, 200, {"Cache-Control": CACHE_CONTROL}
