"""Response schemas of the public key endpoints (documented in the OpenAPI description)."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields


class JwkSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    kty = fields.String(metadata={"example": "OKP"})
    crv = fields.String(metadata={"example": "Ed25519"})
    x = fields.String(metadata={"description": "public key, base64url"})
    kid = fields.String()
    use = fields.String(metadata={"example": "sig"})
    alg = fields.String(metadata={"example": "EdDSA"})


class OfflinePolicySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    floor_limit_fen = fields.Integer()
    code_lifetime_seconds = fields.Integer()
    allowed_skew_seconds = fields.Integer()
    card_floor_limit_fen = fields.Integer(
        metadata={
            "description": "of floor_limit_fen, what card codes (no PIN offline) may take per "
            "household per business day; 0: no discount on card codes offline"
        }
    )
    revocation_list_path = fields.String(
        metadata={
            "description": "the signed endpoint of the card revocation list; a till that "
            "sells offline on card codes keeps it and checks every card against it"
        }
    )


class JwksSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    keys = fields.List(fields.Nested(JwkSchema))


class PosKeysSchema(JwksSchema):
    offline_policy = fields.Nested(OfflinePolicySchema)
