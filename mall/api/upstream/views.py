"""Upstream API for the provincial credit platform: /api/v1/upstream.

Authentication: the platform holds a staff account of this deployment with the role
`county_admin` for the county it pushes to, and sends that account's bearer token
(`POST /api/v1/auth/staff/login`, then `Authorization: Bearer ...`). We chose this over a
separate machine credential so that every push is scoped to one county by the same rules as
staff (`require_staff`), appears in the audit log under that account, and can be cut off by
disabling the account. Every push is idempotent by the platform's `upstream_id`: 201 when it
created something, 200 when it was a retry of the same push, 409 for the same id with other
content.
"""

from __future__ import annotations

from typing import Any

from flask import g
from flask.views import MethodView
from marshmallow import fields, validate, validates_schema
from marshmallow.exceptions import ValidationError

from mall.extensions import db
from mall.http.auth import require_staff
from mall.http.openapi import BaseSchema, Blueprint
from mall.upstream import services

blp = Blueprint(
    "upstream",
    __name__,
    url_prefix="/api/v1/upstream",
    description="Provincial credit platform pushes (county_admin bearer token)",
)


class UpstreamMemberIn(BaseSchema):
    name = fields.String(required=True, validate=validate.Length(1, 30))
    relation = fields.String(required=True, validate=validate.Length(1, 32))


class UpstreamHouseholdPush(BaseSchema):
    upstream_id = fields.String(required=True, validate=validate.Length(1, 64))
    village_code = fields.String(required=True)
    head_name = fields.String(required=True, validate=validate.Length(1, 30))
    id_number = fields.String(load_default=None)
    phone = fields.String(load_default=None)
    members = fields.List(fields.Nested(UpstreamMemberIn), load_default=list)


class UpstreamRatingPush(BaseSchema):
    upstream_id = fields.String(required=True, validate=validate.Length(1, 64))
    household_ref = fields.String(load_default=None)
    household_upstream_id = fields.String(load_default=None)
    score = fields.Float(load_default=None, validate=validate.Range(0, 100))
    level_code = fields.String(load_default=None)
    period_start = fields.Date(load_default=None)
    stage = fields.String(load_default="notice", validate=validate.OneOf(["notice", "effective"]))

    @validates_schema
    def _one_of(self, data: dict[str, Any], **_: Any) -> None:
        if not (data.get("household_ref") or data.get("household_upstream_id")):
            raise ValidationError("household_ref or household_upstream_id", "household_ref")
        if data.get("score") is None and not data.get("level_code"):
            raise ValidationError("score or level_code", "score")


class UpstreamPushOut(BaseSchema):
    upstream_id = fields.String()
    local_id = fields.String()
    created = fields.Boolean()


@blp.route("/households")
class Households(MethodView):
    @require_staff("county_admin")
    @blp.arguments(UpstreamHouseholdPush)
    @blp.response(201, UpstreamPushOut)
    @blp.alt_response(200, schema=UpstreamPushOut, description="a retry of an earlier push")
    def post(self, data: dict[str, Any]) -> Any:
        """Create a household from the platform (idempotent by upstream_id)."""
        pushed = services.push_household(db.session(), g.user, data)
        db.session.commit()
        body = {
            "upstream_id": data["upstream_id"],
            "local_id": pushed.local_id,
            "created": pushed.created,
        }
        return body, 201 if pushed.created else 200


@blp.route("/ratings")
class Ratings(MethodView):
    @require_staff("county_admin")
    @blp.arguments(UpstreamRatingPush)
    @blp.response(201, UpstreamPushOut)
    @blp.alt_response(200, schema=UpstreamPushOut, description="a retry of an earlier push")
    def post(self, data: dict[str, Any]) -> Any:
        """Push a rating (score or level) for notice, or already effective (idempotent)."""
        pushed = services.push_rating(db.session(), g.user, data)
        db.session.commit()
        body = {
            "upstream_id": data["upstream_id"],
            "local_id": pushed.local_id,
            "created": pushed.created,
        }
        return body, 201 if pushed.created else 200
