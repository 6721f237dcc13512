"""Staff API for the benefit list: /api/v1/admin/benefits (region-scoped, audited)."""

from __future__ import annotations

from typing import Any

from flask import g
from flask.views import MethodView

from mall.api.benefits.schemas import (
    BenefitCreate,
    BenefitListArgs,
    BenefitOut,
    BenefitPage,
    BenefitTerms,
    BenefitUseListArgs,
    BenefitUsePage,
)
from mall.benefits import services
from mall.extensions import db
from mall.http.auth import BEARER_SECURITY, require_staff
from mall.http.openapi import Blueprint, page

blp = Blueprint(
    "admin_benefits",
    __name__,
    url_prefix="/api/v1/admin",
    description="The benefit list (信用惠民清单), staff",
)

READERS = ("county_admin", "township_admin", "village_clerk", "auditor")
EDITORS = ("county_admin", "township_admin")


@blp.route("/benefits")
class Benefits(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @require_staff(*READERS)
    @blp.arguments(BenefitListArgs, location="query")
    @blp.response(200, BenefitPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The benefit lines visible in the caller's region, newest first."""
        rows = services.list_benefits(
            db.session(),
            g.user,
            active=args["active"],
            partner_id=args["partner_id"],
            category=args["category"],
            township_id=args["township_id"],
            after_id=args["cursor"],
            limit=args["limit"],
        )
        return page(rows, args["limit"])

    @blp.doc(security=BEARER_SECURITY)
    @require_staff(*EDITORS)
    @blp.arguments(BenefitCreate)
    @blp.response(201, BenefitOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Add a line to the list (audited)."""
        benefit = services.create_benefit(db.session(), g.user, data)
        db.session.commit()
        return benefit


@blp.route("/benefits/<int:benefit_id>")
class BenefitItem(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @require_staff(*READERS)
    @blp.response(200, BenefitOut)
    def get(self, benefit_id: int) -> Any:
        return services.get_benefit(db.session(), g.user, benefit_id)

    @blp.doc(security=BEARER_SECURITY)
    @require_staff(*EDITORS)
    @blp.arguments(BenefitTerms)
    @blp.response(200, BenefitOut)
    def patch(self, changes: dict[str, Any], benefit_id: int) -> Any:
        """Change the terms of a line (audited); the scope stays."""
        session = db.session()
        benefit = services.get_benefit(session, g.user, benefit_id)
        services.update_benefit(session, g.user, benefit, changes)
        session.commit()
        return benefit


@blp.route("/benefits/<int:benefit_id>/deactivate")
class BenefitDeactivate(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @require_staff(*EDITORS)
    @blp.response(200, BenefitOut)
    def post(self, benefit_id: int) -> Any:
        """Take the line off the list (audited; recorded uses stay)."""
        session = db.session()
        benefit = services.get_benefit(session, g.user, benefit_id)
        services.deactivate_benefit(session, g.user, benefit)
        session.commit()
        return benefit


@blp.route("/benefit-uses")
class BenefitUses(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @require_staff(*READERS)
    @blp.arguments(BenefitUseListArgs, location="query")
    @blp.response(200, BenefitUsePage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Recorded uses in the caller's region, newest first."""
        rows = services.list_uses(
            db.session(),
            g.user,
            benefit_id=args["benefit_id"],
            partner_id=args["partner_id"],
            on=args["business_date"],
            after_id=args["cursor"],
            limit=args["limit"],
        )
        return page(rows, args["limit"])
