"""Staff API for households: /api/v1/admin/households."""

from __future__ import annotations

from typing import Any

from flask import g
from flask.views import MethodView

from mall.api.subjects.schemas import (
    HouseholdCreate,
    HouseholdOut,
    HouseholdPage,
    HouseholdSearchArgs,
    RevealIn,
    RevealOut,
    StatusChange,
)
from mall.extensions import db
from mall.http.auth import require_staff
from mall.http.openapi import Blueprint, page
from mall.regions.services import get_region
from mall.subjects import queries, services
from mall.subjects.services import MemberInput
from mall.users.scope import ensure_visible

blp = Blueprint(
    "admin_households",
    __name__,
    url_prefix="/api/v1/admin/households",
    description="Households (staff)",
)

ALL_STAFF = ("county_admin", "township_admin", "village_clerk", "auditor")


@blp.route("")
class Households(MethodView):
    @require_staff(*ALL_STAFF)
    @blp.arguments(HouseholdSearchArgs, location="query")
    @blp.response(200, HouseholdPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Search (exact ref, phone, ID number or full name) and filter, newest first."""
        f = queries.SubjectFilter(
            q=args["q"],
            village_id=args["village_id"],
            township_id=args["township_id"],
            status=args["status"],
            level_code=args["level_code"],
        )
        rows = queries.search(db.session(), g.user, f, after_id=args["cursor"], limit=args["limit"])
        return page(rows, args["limit"])

    @require_staff("county_admin", "township_admin", "village_clerk")
    @blp.arguments(HouseholdCreate)
    @blp.response(201, HouseholdOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Enrol a household (audited)."""
        village = get_region(db.session(), data["village_id"])
        subject = services.enrol_household(
            db.session(),
            g.user,
            village=village,
            head_name=data["head_name"],
            id_number=data["id_number"],
            phone=data["phone"],
            members=[MemberInput(m["name"], m["relation"]) for m in data["members"]],
        )
        db.session.commit()
        return subject


@blp.route("/<ref>")
class Household(MethodView):
    @require_staff(*ALL_STAFF)
    @blp.response(200, HouseholdOut)
    def get(self, ref: str) -> Any:
        return ensure_visible(g.user, services.get_by_ref(db.session(), ref), "holder_not_found")


@blp.route("/<ref>/status")
class HouseholdStatus(MethodView):
    @require_staff("county_admin", "township_admin")
    @blp.arguments(StatusChange)
    @blp.response(200, HouseholdOut)
    def post(self, data: dict[str, Any], ref: str) -> Any:
        """Freeze, revoke or reactivate, with a reason (audited)."""
        subject = services.get_by_ref(db.session(), ref)
        services.change_status(db.session(), g.user, subject, data["status"], data["reason"])
        db.session.commit()
        return subject


@blp.route("/<ref>/reveal")
class HouseholdReveal(MethodView):
    @require_staff("county_admin", "township_admin")
    @blp.arguments(RevealIn)
    @blp.response(200, RevealOut)
    def post(self, data: dict[str, Any], ref: str) -> dict[str, Any]:
        """Show one personal field in full; the reveal is written to the audit log."""
        subject = services.get_by_ref(db.session(), ref)
        value = services.reveal(db.session(), g.user, subject, data["field"], data["reason"])
        db.session.commit()
        return {"field": data["field"], "value": value}
