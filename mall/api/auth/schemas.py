"""Request and response bodies of the authentication API."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate


class _Strict(Schema):
    class Meta:
        unknown = EXCLUDE


class FarmerLoginSchema(_Strict):
    phone = fields.String(required=True, validate=validate.Length(min=1, max=32))
    pin = fields.String(required=True, validate=validate.Length(min=1, max=32))


class StaffLoginSchema(_Strict):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=256))


class RefreshRequestSchema(_Strict):
    refresh_token = fields.String(required=True, validate=validate.Length(min=1, max=4096))


class TokenPairSchema(_Strict):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    expires_in = fields.Integer(required=True, metadata={"description": "seconds"})


class StaffTokenSchema(_Strict):
    access_token = fields.String(required=True)
    expires_in = fields.Integer(required=True, metadata={"description": "seconds"})


class StaffMeSchema(_Strict):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    role = fields.String()
    region_id = fields.Integer()
    county_id = fields.Integer()
    township_id = fields.Integer(allow_none=True)
    village_id = fields.Integer(allow_none=True)
    partner_id = fields.Integer(allow_none=True)
