"""Staff APIs: /api/v1/admin/entities, /api/v1/admin/credit-villages and
/api/v1/admin/assessments. Views parse, call one service, commit once and serialise; the
services check roles and region scope and write the audit entries."""

from __future__ import annotations

from typing import Any

from flask import Response, g
from flask.views import MethodView
from sqlalchemy.orm import Session

from mall.api.villages.schemas import (
    ApplicationArgs,
    ApplicationDetail,
    ApplicationOut,
    ApplicationPage,
    ApplyIn,
    AssessmentList,
    AssessmentOut,
    AssessmentRejectIn,
    BusinessCreate,
    DecideIn,
    EntityOut,
    EntityPage,
    EntitySearchArgs,
    PlanIn,
    PlanList,
    PlanOut,
    ReviewIn,
    VillageEntityCreate,
    VillageScoreIn,
)
from mall.entities import services as entities
from mall.extensions import db
from mall.http.auth import require_staff
from mall.http.openapi import Blueprint, page
from mall.regions.services import get_region
from mall.subjects.services import MemberInput
from mall.users.policy import ADMIN_ROLES, STAFF_ROLES, WRITER_ROLES
from mall.villages import assessment, plaque, workflow

entities_blp = Blueprint(
    "admin_entities",
    __name__,
    url_prefix="/api/v1/admin/entities",
    description="Business entities, village collectives and villages (staff)",
)
villages_blp = Blueprint(
    "admin_credit_villages",
    __name__,
    url_prefix="/api/v1/admin/credit-villages",
    description="Credit-village applications, decisions and plaques (staff)",
)
assessments_blp = Blueprint(
    "admin_assessments",
    __name__,
    url_prefix="/api/v1/admin/assessments",
    description="Village assessment plans, scores, approval and rewards (staff)",
)


def _s() -> Session:
    return db.session()


# --- entities ---------------------------------------------------------------------------------


@entities_blp.route("")
class Entities(MethodView):
    @require_staff(*STAFF_ROLES)
    @entities_blp.arguments(EntitySearchArgs, location="query")
    @entities_blp.response(200, EntityPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Search one kind (exact ref, full name or unified social credit code), newest first."""
        rows = entities.search_entities(
            _s(),
            g.user,
            kind=args["kind"],
            q=args["q"],
            village_id=args["village_id"],
            after_id=args["cursor"],
            limit=args["limit"],
        )
        next_cursor = rows[-1].subject.id if len(rows) == args["limit"] else None
        return {"items": rows, "next_cursor": next_cursor}


@entities_blp.route("/businesses")
class Businesses(MethodView):
    @require_staff(*WRITER_ROLES)
    @entities_blp.arguments(BusinessCreate)
    @entities_blp.response(201, EntityOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Register a business entity (family farm, cooperative...); audited."""
        subject = entities.register_business(
            _s(),
            g.user,
            village=get_region(_s(), data["village_id"]),
            name=data["name"],
            uscc=data["uscc"],
            business_type=data["business_type"],
            legal_rep=data["legal_rep"],
            members=[MemberInput(m["name"], m["relation"]) for m in data["members"]],
        )
        db.session.commit()
        return entities.get_entity(_s(), subject.ref)


@entities_blp.route("/collectives")
class Collectives(MethodView):
    @require_staff(*ADMIN_ROLES)
    @entities_blp.arguments(VillageEntityCreate)
    @entities_blp.response(201, EntityOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Register the village collective economic organisation of a village; audited."""
        subject = entities.register_collective(
            _s(), g.user, village=get_region(_s(), data["village_id"]), name=data["name"]
        )
        db.session.commit()
        return entities.get_entity(_s(), subject.ref)


@entities_blp.route("/villages")
class Villages(MethodView):
    @require_staff(*ADMIN_ROLES)
    @entities_blp.arguments(VillageEntityCreate)
    @entities_blp.response(201, EntityOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Register an administrative village as a credit subject; audited."""
        subject = entities.register_village(
            _s(), g.user, village=get_region(_s(), data["village_id"])
        )
        db.session.commit()
        return entities.get_entity(_s(), subject.ref)


@entities_blp.route("/<ref>")
class Entity(MethodView):
    @require_staff(*STAFF_ROLES)
    @entities_blp.response(200, EntityOut)
    def get(self, ref: str) -> Any:
        return entities.get_entity(_s(), ref, g.user)


# --- credit villages ----------------------------------------------------------------------------


def _app_detail(app: Any) -> dict[str, Any]:
    out = {c: getattr(app, c) for c in ApplicationOut().fields}
    out["events"] = workflow.events(_s(), app.id)
    return out


@villages_blp.route("")
class Applications(MethodView):
    @require_staff(*STAFF_ROLES)
    @villages_blp.arguments(ApplicationArgs, location="query")
    @villages_blp.response(200, ApplicationPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        rows = workflow.list_applications(
            _s(),
            g.user,
            status=args["status"],
            village_id=args["village_id"],
            after_id=args["cursor"],
            limit=args["limit"],
        )
        return page(rows, args["limit"])

    @require_staff(*WRITER_ROLES)
    @villages_blp.arguments(ApplyIn)
    @villages_blp.response(201, ApplicationDetail)
    def post(self, data: dict[str, Any]) -> Any:
        """A village applies for a grade (or renews its title); audited."""
        app = workflow.apply(
            _s(), g.user, get_region(_s(), data["village_id"]), data["grade"], data["statement"]
        )
        db.session.commit()
        return _app_detail(app)


@villages_blp.route("/<int:app_id>")
class Application(MethodView):
    @require_staff(*STAFF_ROLES)
    @villages_blp.response(200, ApplicationDetail)
    def get(self, app_id: int) -> Any:
        return _app_detail(workflow.get_application(_s(), app_id, g.user))


@villages_blp.route("/<int:app_id>/town-review")
class TownReview(MethodView):
    @require_staff(*ADMIN_ROLES)
    @villages_blp.arguments(ReviewIn)
    @villages_blp.response(200, ApplicationDetail)
    def post(self, data: dict[str, Any], app_id: int) -> Any:
        """Township pre-review: pass or reject with the opinion."""
        app = workflow.get_application(_s(), app_id, g.user)
        workflow.town_review(_s(), g.user, app, approve=data["approve"], opinion=data["opinion"])
        db.session.commit()
        return _app_detail(app)


@villages_blp.route("/<int:app_id>/county-review")
class CountyReview(MethodView):
    @require_staff(*ADMIN_ROLES)
    @villages_blp.arguments(ReviewIn)
    @villages_blp.response(200, ApplicationDetail)
    def post(self, data: dict[str, Any], app_id: int) -> Any:
        """County re-review: pass (optionally at a lower grade) or reject."""
        app = workflow.get_application(_s(), app_id, g.user)
        workflow.county_review(
            _s(),
            g.user,
            app,
            approve=data["approve"],
            opinion=data["opinion"],
            grade=data["grade"],
        )
        db.session.commit()
        return _app_detail(app)


@villages_blp.route("/<int:app_id>/notice")
class Notice(MethodView):
    @require_staff(*ADMIN_ROLES)
    @villages_blp.response(200, ApplicationDetail)
    def post(self, app_id: int) -> Any:
        """Start the public notice."""
        app = workflow.get_application(_s(), app_id, g.user)
        workflow.post_notice(_s(), g.user, app)
        db.session.commit()
        return _app_detail(app)


@villages_blp.route("/<int:app_id>/decision")
class Decision(MethodView):
    @require_staff(*ADMIN_ROLES)
    @villages_blp.arguments(DecideIn)
    @villages_blp.response(200, ApplicationDetail)
    def post(self, data: dict[str, Any], app_id: int) -> Any:
        """The official decision, by a county admin other than the re-reviewer."""
        app = workflow.get_application(_s(), app_id, g.user)
        workflow.decide(
            _s(),
            g.user,
            app,
            approve=data["approve"],
            decision_no=data["decision_no"],
            reason=data["reason"],
        )
        db.session.commit()
        return _app_detail(app)


@villages_blp.route("/<int:app_id>/plaque.png")
class Plaque(MethodView):
    @require_staff(*STAFF_ROLES)
    @villages_blp.response(200, content_type="image/png", description="PNG, A4 at 300 dpi")
    def get(self, app_id: int) -> Response:
        """The plaque certificate of an awarded application."""
        app = workflow.get_application(_s(), app_id, g.user)
        body = plaque.plaque_png(_s(), app)
        return Response(
            body,
            mimetype="image/png",
            headers={"Content-Disposition": f'inline; filename="plaque-{app.id}.png"'},
        )


# --- assessments -------------------------------------------------------------------------------


@assessments_blp.route("/plans")
class Plans(MethodView):
    @require_staff(*STAFF_ROLES)
    @assessments_blp.response(200, PlanList)
    def get(self) -> dict[str, Any]:
        return {"items": assessment.list_plans(_s(), g.user)}

    @require_staff(*ADMIN_ROLES)
    @assessments_blp.arguments(PlanIn)
    @assessments_blp.response(201, PlanOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Define a period's indicators, sub-items, bands and fund (defaults: Tongren)."""
        plan = assessment.create_plan(
            _s(),
            g.user,
            period=data["period"],
            name=data["name"],
            fund=data["fund"],
            indicators=data["indicators"],
            bands=data["bands"],
        )
        db.session.commit()
        return plan


@assessments_blp.route("/plans/<int:plan_id>")
class Plan(MethodView):
    @require_staff(*STAFF_ROLES)
    @assessments_blp.response(200, PlanOut)
    def get(self, plan_id: int) -> Any:
        return assessment.get_plan(_s(), plan_id, g.user)


@assessments_blp.route("/plans/<int:plan_id>/scores")
class Scores(MethodView):
    @require_staff(*STAFF_ROLES)
    @assessments_blp.response(200, AssessmentList)
    def get(self, plan_id: int) -> dict[str, Any]:
        assessment.get_plan(_s(), plan_id, g.user)
        return {"items": assessment.list_assessments(_s(), g.user, plan_id)}

    @require_staff(*ADMIN_ROLES)
    @assessments_blp.arguments(VillageScoreIn)
    @assessments_blp.response(201, AssessmentOut)
    def post(self, data: dict[str, Any], plan_id: int) -> Any:
        """Score (or rescore) a village: sub-item marks per indicator."""
        plan = assessment.get_plan(_s(), plan_id, g.user)
        items = {k: {i: str(m) for i, m in v.items()} for k, v in data["items"].items()}
        a = assessment.score_village(
            _s(), g.user, plan, get_region(_s(), data["village_id"]), items
        )
        db.session.commit()
        return a


@assessments_blp.route("/scores/<int:assessment_id>/approve")
class Approve(MethodView):
    @require_staff(*ADMIN_ROLES)
    @assessments_blp.response(200, AssessmentOut)
    def post(self, assessment_id: int) -> Any:
        """Approve a score: an admin other than the scorer."""
        a = assessment.approve(_s(), g.user, assessment_id)
        db.session.commit()
        return a


@assessments_blp.route("/scores/<int:assessment_id>/reject")
class Reject(MethodView):
    @require_staff(*ADMIN_ROLES)
    @assessments_blp.arguments(AssessmentRejectIn)
    @assessments_blp.response(200, AssessmentOut)
    def post(self, data: dict[str, Any], assessment_id: int) -> Any:
        a = assessment.reject(_s(), g.user, assessment_id, data["reason"])
        db.session.commit()
        return a


@assessments_blp.route("/scores/<int:assessment_id>/pay")
class Pay(MethodView):
    @require_staff(*ADMIN_ROLES)
    @assessments_blp.response(200, AssessmentOut)
    def post(self, assessment_id: int) -> Any:
        """Pay the approved reward into the collective's account (idempotent)."""
        a = assessment.pay(_s(), g.user, assessment_id)
        db.session.commit()
        return a
