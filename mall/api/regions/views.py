"""Staff API for regions and their inherited settings: /api/v1/admin/regions."""

from __future__ import annotations

from typing import Any

from flask import g
from flask.views import MethodView
from marshmallow import fields
from sqlalchemy import select

from mall.extensions import db
from mall.http.auth import require_staff
from mall.http.openapi import BaseSchema, Blueprint
from mall.regions.models import Region
from mall.regions.services import change_settings, effective_settings, get_region
from mall.users.policy import ADMIN_ROLES, STAFF_ROLES
from mall.users.scope import COUNTY_ROLES, ensure_visible

blp = Blueprint(
    "admin_regions", __name__, url_prefix="/api/v1/admin/regions", description="Regions (staff)"
)


class RegionOut(BaseSchema):
    id = fields.Integer()
    kind = fields.String()
    code = fields.String()
    name = fields.String()
    parent_id = fields.Integer(allow_none=True)
    county_id = fields.Integer(allow_none=True)
    township_id = fields.Integer(allow_none=True)


class RegionList(BaseSchema):
    items = fields.List(fields.Nested(RegionOut))


class SettingsOut(BaseSchema):
    own = fields.Dict()
    effective = fields.Dict()


class SettingsIn(BaseSchema):
    settings = fields.Dict(required=True)


def _visible(region: Region) -> Region:
    # A county row has county_id = its id and no township: only county roles see it.
    return ensure_visible(g.user, region)


@blp.route("")
class Regions(MethodView):
    @require_staff(*STAFF_ROLES)
    @blp.response(200, RegionList)
    def get(self) -> dict[str, Any]:
        """The regions in the caller's scope, county first, then townships and villages."""
        stmt = select(Region).where(Region.county_id == g.user.county_id)
        if g.user.role not in COUNTY_ROLES:
            stmt = stmt.where(Region.township_id == g.user.township_id)
        rows = db.session.scalars(stmt.order_by(Region.kind, Region.id))
        order = {"county": 0, "township": 1, "village": 2}
        return {"items": sorted(rows, key=lambda r: (order[r.kind], r.id))}


@blp.route("/<int:region_id>/settings")
class RegionSettings(MethodView):
    @require_staff(*STAFF_ROLES)
    @blp.response(200, SettingsOut)
    def get(self, region_id: int) -> dict[str, Any]:
        region = _visible(get_region(db.session(), region_id))
        return {"own": region.settings or {}, "effective": effective_settings(db.session(), region)}

    @require_staff(*ADMIN_ROLES)
    @blp.arguments(SettingsIn)
    @blp.response(200, SettingsOut)
    def patch(self, data: dict[str, Any], region_id: int) -> dict[str, Any]:
        """Override settings of a county or township (audited); children inherit what they
        do not set. Who may: `policy.may_edit_region_settings`."""
        region = get_region(db.session(), region_id)
        change_settings(db.session(), g.user, region, data["settings"])
        db.session.commit()
        return {"own": region.settings, "effective": effective_settings(db.session(), region)}
