"""Staff API for the audit log: /api/v1/admin/audit."""

from __future__ import annotations

from typing import Any

from flask import g
from flask.views import MethodView
from marshmallow import fields, validate

from mall.audit.services import list_entries
from mall.extensions import db
from mall.http.auth import require_staff
from mall.http.openapi import BaseSchema, Blueprint, page

blp = Blueprint("admin_audit", __name__, url_prefix="/api/v1/admin/audit", description="Audit log")


class AuditArgs(BaseSchema):
    action = fields.String(load_default=None, validate=validate.Length(max=64))
    object_type = fields.String(load_default=None, validate=validate.Length(max=40))
    object_id = fields.String(load_default=None, validate=validate.Length(max=64))
    actor_user_id = fields.Integer(load_default=None)
    since = fields.AwareDateTime(load_default=None)
    until = fields.AwareDateTime(load_default=None)
    cursor = fields.Integer(load_default=None, validate=validate.Range(min=1))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class AuditOut(BaseSchema):
    id = fields.Integer()
    at = fields.DateTime()
    actor_user_id = fields.Integer(allow_none=True)
    actor_label = fields.String()
    action = fields.String()
    object_type = fields.String()
    object_id = fields.String()
    county_id = fields.Integer(allow_none=True)
    township_id = fields.Integer(allow_none=True)
    ip = fields.String(allow_none=True)
    request_id = fields.String(allow_none=True)
    before = fields.Dict(allow_none=True)
    after = fields.Dict(allow_none=True)
    note = fields.String()


class AuditPage(BaseSchema):
    items = fields.List(fields.Nested(AuditOut))
    next_cursor = fields.Integer(allow_none=True)


@blp.route("")
class AuditLog(MethodView):
    @require_staff("county_admin", "township_admin", "auditor")
    @blp.arguments(AuditArgs, location="query")
    @blp.response(200, AuditPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Newest first, filterable, within the caller's region."""
        limit = args.pop("limit")
        cursor = args.pop("cursor")
        rows = list_entries(db.session(), g.user, before_id=cursor, limit=limit, **args)
        return page(rows, limit)
