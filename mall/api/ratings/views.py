"""Staff API for rating schemes and the rating lifecycle: /api/v1/admin/ratings.

Views parse, call one service, commit once and serialise; the services check region scope,
write the history and the audit entries.
"""

from __future__ import annotations

from typing import Any

from flask import g
from flask.views import MethodView
from sqlalchemy.orm import Session

from mall.api.ratings.schemas import (
    AnswerIn,
    AppealIn,
    AppealOut,
    DowngradeIn,
    DraftIn,
    HistoryOut,
    NoticeArgs,
    NoticeOut,
    RatingOut,
    ReasonIn,
    ReRateIn,
    SchemeIn,
    SchemeList,
    SchemeOut,
)
from mall.errors import NotFound
from mall.extensions import db
from mall.http.auth import require_staff
from mall.http.openapi import Blueprint
from mall.ratings import schemes, services
from mall.ratings.calculator import Reviewer, ReviewItem
from mall.ratings.models import RatingAppeal
from mall.subjects.services import get_by_ref
from mall.users.policy import ADMIN_ROLES, STAFF_ROLES, WRITER_ROLES
from mall.users.scope import ensure_visible

blp = Blueprint(
    "admin_ratings", __name__, url_prefix="/api/v1/admin/ratings", description="Ratings (staff)"
)


def _s() -> Session:
    return db.session()


def score_input(data: dict[str, Any]) -> services.ScoreInput:
    return services.ScoreInput(
        items=[ReviewItem(i["code"], i["points"], i["kind"]) for i in data.get("items", [])],
        reviewers=[Reviewer(r["name"], r["related"]) for r in data.get("reviewers", [])],
        visit_score=data.get("visit_score"),
        points_score=data.get("points_score"),
        score=data.get("score"),
    )


def _scheme_out(s: schemes.Scheme) -> dict[str, Any]:
    return {**vars(s), "levels": [lv.as_dict() for lv in s.levels]}


@blp.route("/schemes")
class Schemes(MethodView):
    @require_staff(*STAFF_ROLES)
    @blp.response(200, SchemeList)
    def get(self) -> dict[str, Any]:
        """The built-in schemes and the county's own."""
        return {"items": [_scheme_out(s) for s in schemes.list_schemes(_s(), g.user.county_id)]}

    @require_staff("county_admin")
    @blp.arguments(SchemeIn)
    @blp.response(201, SchemeOut)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Define a county scheme (levels, money per period, discount, thresholds); audited.
        A region uses it by setting `rating_scheme` to its code."""
        from mall.audit import services as audit

        scheme = schemes.define_scheme(_s(), county_id=g.user.county_id, **data)
        audit.record(
            _s(),
            actor=g.user,
            action="rating.scheme.create",
            object_type="rating_scheme",
            object_id=scheme.code,
            after=_scheme_out(scheme),
        )
        _s().commit()
        return _scheme_out(scheme)


@blp.route("")
class Ratings(MethodView):
    @require_staff(*WRITER_ROLES)
    @blp.arguments(DraftIn)
    @blp.response(201, RatingOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Draft a rating from the civility review and the other score components."""
        subject = get_by_ref(_s(), data["household_ref"])
        rating = services.draft_rating(
            _s(), g.user, subject, score_input(data), period_start=data["period_start"]
        )
        _s().commit()
        return rating


@blp.route("/<int:rating_id>")
class RatingOne(MethodView):
    @require_staff(*STAFF_ROLES)
    @blp.response(200, RatingOut)
    def get(self, rating_id: int) -> Any:
        return services.get_rating(_s(), rating_id, g.user)


@blp.route("/<int:rating_id>/notice")
class RatingNotice(MethodView):
    @require_staff(*WRITER_ROLES)
    @blp.response(200, RatingOut)
    def post(self, rating_id: int) -> Any:
        """Post the draft for public notice in its village."""
        rating = services.post_notice(_s(), g.user, services.get_rating(_s(), rating_id, g.user))
        _s().commit()
        return rating


@blp.route("/<int:rating_id>/withdraw")
class RatingWithdraw(MethodView):
    @require_staff(*WRITER_ROLES)
    @blp.arguments(ReasonIn)
    @blp.response(200, RatingOut)
    def post(self, data: dict[str, Any], rating_id: int) -> Any:
        rating = services.withdraw(
            _s(), g.user, services.get_rating(_s(), rating_id, g.user), data["reason"]
        )
        _s().commit()
        return rating


@blp.route("/<int:rating_id>/appeals")
class RatingAppeals(MethodView):
    @require_staff(*WRITER_ROLES)
    @blp.arguments(AppealIn)
    @blp.response(201, AppealOut)
    def post(self, data: dict[str, Any], rating_id: int) -> Any:
        """Record a household's appeal and its grounds (entered by staff on its behalf)."""
        rating = services.get_rating(_s(), rating_id, g.user)
        appeal = services.file_appeal(_s(), g.user, rating, data["grounds"])
        _s().commit()
        return appeal


@blp.route("/appeals/<int:appeal_id>/answer")
class AppealAnswer(MethodView):
    @require_staff(*WRITER_ROLES)
    @blp.arguments(AnswerIn)
    @blp.response(200, AppealOut)
    def post(self, data: dict[str, Any], appeal_id: int) -> Any:
        """Answer an appeal; a new score with another level posts the re-review for notice."""
        appeal = _s().get(RatingAppeal, appeal_id)
        if appeal is None:
            raise NotFound()
        ensure_visible(g.user, appeal)
        new = score_input(data["new_score"]) if data.get("new_score") else None
        services.answer_appeal(_s(), g.user, appeal, data["answer"], new)
        _s().commit()
        return appeal


@blp.route("/notices")
class Notices(MethodView):
    @require_staff(*STAFF_ROLES)
    @blp.arguments(NoticeArgs, location="query")
    @blp.response(200, NoticeOut)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The village notice board (公示名单): ratings under notice or appeal, to show or print."""
        village_id = args["village_id"]
        return {"village_id": village_id, "items": services.notice_list(_s(), g.user, village_id)}


@blp.route("/households/<ref>/history")
class HouseholdHistory(MethodView):
    @require_staff(*STAFF_ROLES)
    @blp.response(200, HistoryOut)
    def get(self, ref: str) -> dict[str, Any]:
        """Every rating of the household and every change, oldest first."""
        subject = ensure_visible(g.user, get_by_ref(_s(), ref), "holder_not_found")
        ratings, events = services.history(_s(), subject.id)
        return {"ratings": ratings, "events": events}


@blp.route("/households/<ref>/downgrade")
class HouseholdDowngrade(MethodView):
    @require_staff(*ADMIN_ROLES)
    @blp.arguments(DowngradeIn)
    @blp.response(200, RatingOut)
    def post(self, data: dict[str, Any], ref: str) -> Any:
        """Lower the effective level now, with a reason; money above it is clawed back."""
        subject = get_by_ref(_s(), ref)
        rating = services.downgrade(_s(), g.user, subject, data["level_code"], data["reason"])
        _s().commit()
        return rating


@blp.route("/households/<ref>/revoke")
class HouseholdRevoke(MethodView):
    @require_staff(*ADMIN_ROLES)
    @blp.arguments(ReasonIn)
    @blp.response(200, RatingOut)
    def post(self, data: dict[str, Any], ref: str) -> Any:
        """Revoke the rating (dishonesty): spending frozen, integrity money clawed back."""
        subject = get_by_ref(_s(), ref)
        rating = services.revoke(_s(), g.user, subject, data["reason"])
        _s().commit()
        return rating


@blp.route("/households/<ref>/re-rate")
class HouseholdReRate(MethodView):
    @require_staff(*ADMIN_ROLES)
    @blp.arguments(ReRateIn)
    @blp.response(201, RatingOut)
    def post(self, data: dict[str, Any], ref: str) -> Any:
        """Credit repair: draft a fresh rating, which goes through notice as usual."""
        subject = get_by_ref(_s(), ref)
        rating = services.re_rate(_s(), g.user, subject, score_input(data), data["reason"])
        _s().commit()
        return rating
