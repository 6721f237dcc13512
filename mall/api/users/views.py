"""Staff API for staff accounts: /api/v1/admin/users."""

from __future__ import annotations

from typing import Any

from flask import g
from flask.views import MethodView
from marshmallow import fields, validate
from sqlalchemy import select

from mall.audit import services as audit
from mall.errors import ValidationFailed
from mall.extensions import db
from mall.http.auth import require_staff
from mall.http.openapi import BaseSchema, Blueprint, PageArgs, page
from mall.partners.models import Partner
from mall.regions.services import get_region
from mall.staff.services import create_user
from mall.users import policy
from mall.users.models import ROLES, User
from mall.users.policy import ADMIN_ROLES, READER_ROLES
from mall.users.scope import ensure_visible, restrict

blp = Blueprint("admin_users", __name__, url_prefix="/api/v1/admin/users", description="Staff")


class UserOut(BaseSchema):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    role = fields.String()
    region_id = fields.Integer()
    county_id = fields.Integer()
    township_id = fields.Integer(allow_none=True)
    partner_id = fields.Integer(allow_none=True)
    active = fields.Boolean()
    created_at = fields.DateTime()


class UserPage(BaseSchema):
    items = fields.List(fields.Nested(UserOut))
    next_cursor = fields.Integer(allow_none=True)


class UserCreate(BaseSchema):
    username = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_.-]{3,64}$"))
    display_name = fields.String(load_default="", validate=validate.Length(max=64))
    password = fields.String(
        required=True, load_only=True, validate=validate.Length(min=10, max=128)
    )
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    region_id = fields.Integer(required=True)
    partner_id = fields.Integer(load_default=None)


@blp.route("")
class Users(MethodView):
    @require_staff(*READER_ROLES)
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, UserPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        stmt = restrict(
            select(User), g.user, county_col=User.county_id, township_col=User.township_id
        )
        if args["cursor"]:
            stmt = stmt.where(User.id < args["cursor"])
        rows = list(db.session.scalars(stmt.order_by(User.id.desc()).limit(args["limit"])))
        return page(rows, args["limit"])

    @require_staff(*ADMIN_ROLES)
    @blp.arguments(UserCreate)
    @blp.response(201, UserOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a staff account within the caller's region (audited)."""
        policy.ensure(policy.may_manage_role(g.user, data["role"]))
        region = ensure_visible(g.user, get_region(db.session(), data["region_id"]))
        partner = None
        if data["partner_id"] is not None:
            partner = ensure_visible(g.user, db.session.get(Partner, data["partner_id"]))
        elif data["role"] == "cashier":
            raise ValidationFailed(details={"fields": {"partner_id": ["required for a cashier"]}})
        user = create_user(
            db.session(),
            username=data["username"],
            password=data["password"],
            role=data["role"],
            region=region,
            display_name=data["display_name"],
            partner=partner,
        )
        audit.record(
            db.session(),
            actor=g.user,
            action="user.create",
            object_type="user",
            object_id=user.id,
            county_id=user.county_id,
            township_id=user.township_id,
            after={"username": user.username, "role": user.role, "region_id": user.region_id},
        )
        db.session.commit()
        return user
