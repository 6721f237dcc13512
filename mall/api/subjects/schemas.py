from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from mall.http.openapi import BaseSchema


class MemberOut(BaseSchema):
    name = fields.String(attribute="name_masked")
    relation = fields.String()


class LevelOut(BaseSchema):
    code = fields.String()
    rank = fields.Integer()


class HouseholdOut(BaseSchema):
    ref = fields.String()
    kind = fields.String()
    status = fields.String()
    name = fields.String(attribute="name_masked", metadata={"description": "masked: 张*华"})
    phone = fields.String(attribute="phone_masked", allow_none=True)
    id_number = fields.String(attribute="id_number_masked", allow_none=True)
    county_id = fields.Integer()
    township_id = fields.Integer()
    village_id = fields.Integer()
    level = fields.Method("_level", allow_none=True)
    valid_until = fields.Date(attribute="level_valid_until", allow_none=True)
    members = fields.List(fields.Nested(MemberOut))
    created_at = fields.DateTime()

    def _level(self, obj: Any) -> dict[str, Any] | None:
        if obj.level_code is None:
            return None
        return {"code": obj.level_code, "rank": obj.level_rank}


class HouseholdPage(BaseSchema):
    items = fields.List(fields.Nested(HouseholdOut))
    next_cursor = fields.Integer(allow_none=True)


class MemberIn(BaseSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=30))
    relation = fields.String(required=True, validate=validate.Length(min=1, max=32))


class HouseholdCreate(BaseSchema):
    village_id = fields.Integer(required=True)
    head_name = fields.String(required=True, validate=validate.Length(min=1, max=30))
    id_number = fields.String(load_default=None, validate=validate.Length(max=32))
    phone = fields.String(load_default=None, validate=validate.Length(max=20))
    members = fields.List(
        fields.Nested(MemberIn), load_default=list, validate=validate.Length(max=30)
    )


class HouseholdSearchArgs(BaseSchema):
    q = fields.String(load_default=None, validate=validate.Length(max=64))
    village_id = fields.Integer(load_default=None)
    township_id = fields.Integer(load_default=None)
    status = fields.String(
        load_default=None, validate=validate.OneOf(["active", "frozen", "revoked"])
    )
    level_code = fields.String(load_default=None, validate=validate.Length(max=16))
    cursor = fields.Integer(load_default=None, validate=validate.Range(min=1))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class StatusChange(BaseSchema):
    status = fields.String(required=True, validate=validate.OneOf(["active", "frozen", "revoked"]))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class RevealIn(BaseSchema):
    field = fields.String(required=True, validate=validate.OneOf(["name", "id_number", "phone"]))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class RevealOut(BaseSchema):
    field = fields.String()
    value = fields.String(allow_none=True)
