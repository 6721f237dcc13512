"""Credit subjects beyond households (经营主体、村集体、信用村) and village assessment (村级考评):
entity lists, credit-village applications with their stage actions and the plaque download,
assessment plans with the scoring form, approval and payout status. Over mall.entities.services
and mall.villages services, which check roles and scope and write the audit entries."""

from __future__ import annotations

from typing import Any

from flask import Response, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response as WerkzeugResponse

from admin import queries
from admin.blueprint import bp, staff_page
from admin.common import ADMINS, STAFF, arg_int, arg_str, require_writer
from admin.nav import NAV_ITEMS, NavItem
from mall.entities import services as entities
from mall.entities.models import ENTITY_KINDS
from mall.errors import DomainError, NotFound
from mall.extensions import db
from mall.regions.services import get_region
from mall.users import policy
from mall.villages import assessment, plaque, workflow

NAV_ITEMS.append(NavItem("admin.entities", _l("经营主体与村集体"), STAFF, order=35))
NAV_ITEMS.append(NavItem("admin.credit_villages", _l("信用村评定"), STAFF, order=36))
NAV_ITEMS.append(NavItem("admin.assessments", _l("村级考评"), STAFF, order=37))

KIND_LABELS = {
    "business": _l("新型农业经营主体"),
    "collective": _l("村集体经济组织"),
    "village": _l("行政村"),
}
TYPE_LABELS = {
    "family_farm": _l("家庭农场"),
    "cooperative": _l("农民专业合作社"),
    "enterprise": _l("企业"),
    "other": _l("其他"),
}
APP_STATUS_LABELS = {
    "applied": _l("已申报"),
    "town_passed": _l("乡镇初审通过"),
    "county_passed": _l("县级复审通过"),
    "notice": _l("公示中"),
    "awarded": _l("已认定"),
    "rejected": _l("未通过"),
    "expired": _l("已到期"),
    "superseded": _l("已续期"),
}
ASSESSMENT_STATUS_LABELS = {
    "scored": _l("待审核"),
    "approved": _l("已审核,待发放"),
    "paid": _l("已发放"),
    "rejected": _l("退回重评"),
}


def _label(table: dict[str, Any], key: str | None) -> str:
    return str(table.get(key or "", key or ""))


def _back(endpoint: str, **values: Any) -> WerkzeugResponse:
    return redirect(url_for(endpoint, **values))


# ---------------------------------------------------------------- entities


@bp.get("/entities", endpoint="entities")
@staff_page(*STAFF)
def entities_list() -> str:
    kind = arg_str("kind", 16) or "business"
    if kind not in ENTITY_KINDS:
        kind = "business"
    rows = entities.search_entities(db.session(), g.user, kind=kind, q=arg_str("q", 64), limit=200)
    return render_template(
        "admin/entities.html",
        rows=rows,
        kind=kind,
        kinds=[(k, _label(KIND_LABELS, k)) for k in ENTITY_KINDS],
        type_label=lambda t: _label(TYPE_LABELS, t),
        villages=queries.villages(db.session(), g.user),
        types=list(TYPE_LABELS.items()),
    )


@bp.post("/entities/businesses")
@staff_page(*STAFF)
def entities_create_business() -> WerkzeugResponse:
    require_writer(g.user)
    f = request.form
    try:
        village = get_region(db.session(), int(f.get("village_id") or 0))
        entities.register_business(
            db.session(),
            g.user,
            village=village,
            name=f.get("name", ""),
            uscc=f.get("uscc", ""),
            business_type=f.get("business_type", ""),
            legal_rep=f.get("legal_rep", ""),
            members=[],
        )
        db.session.commit()
        flash(gettext("已登记经营主体"), "success")
    except DomainError as exc:
        db.session.rollback()
        flash(gettext("登记未完成:%(m)s", m=_message(exc)), "error")
    return _back("admin.entities", kind="business")


def _message(exc: DomainError) -> str:
    fields = (exc.details or {}).get("fields") or {}
    if fields:
        return "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in fields.items())
    return exc.message or str(exc.code)


# ---------------------------------------------------------------- credit villages


@bp.get("/credit-villages")
@staff_page(*STAFF)
def credit_villages() -> str:
    status = arg_str("status", 16)
    rows = workflow.list_applications(db.session(), g.user, status=status or None, limit=200)
    names = {v.id: v.name for v in queries.villages(db.session(), g.user)}
    return render_template(
        "admin/credit_villages.html",
        rows=rows,
        names=names,
        status=status,
        statuses=list(APP_STATUS_LABELS.items()),
        status_text=lambda s: _label(APP_STATUS_LABELS, s),
    )


@bp.post("/credit-villages")
@staff_page(*STAFF)
def credit_village_apply() -> WerkzeugResponse:
    require_writer(g.user)
    try:
        village = get_region(db.session(), int(request.form.get("village_id") or 0))
        app = workflow.apply(
            db.session(),
            g.user,
            village,
            request.form.get("grade", ""),
            request.form.get("statement", ""),
        )
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        flash(gettext("申报未完成:%(m)s", m=_message(exc)), "error")
        return _back("admin.credit_villages")
    flash(gettext("已提交申报"), "success")
    return _back("admin.credit_village", app_id=app.id)


@bp.get("/credit-villages/<int:app_id>")
@staff_page(*STAFF)
def credit_village(app_id: int) -> str:
    app = workflow.get_application(db.session(), app_id, g.user)
    village = get_region(db.session(), app.village_id)
    step = workflow.next_step(app)
    return render_template(
        "admin/credit_village.html",
        app=app,
        village=village,
        step=step if step and policy.may_take_village_step(g.user, app, step) else None,
        events=workflow.events(db.session(), app.id),
        status_text=lambda s: _label(APP_STATUS_LABELS, s),
    )


STAGES = ("town_review", "county_review", "notice", "decide")


@bp.post("/credit-villages/<int:app_id>/<stage>")
@staff_page(*ADMINS)
def credit_village_step(app_id: int, stage: str) -> WerkzeugResponse:
    session = db.session()
    app = workflow.get_application(session, app_id, g.user)
    if stage in STAGES:  # the same answer as the service's, before a flash could hide it
        policy.ensure(policy.may_take_village_step(g.user, app, stage))
    f = request.form
    approve = f.get("approve") == "1"
    try:
        if stage == "town_review":
            workflow.town_review(
                session, g.user, app, approve=approve, opinion=f.get("opinion", "")
            )
        elif stage == "county_review":
            workflow.county_review(
                session,
                g.user,
                app,
                approve=approve,
                opinion=f.get("opinion", ""),
                grade=f.get("grade") or None,
            )
        elif stage == "notice":
            workflow.post_notice(session, g.user, app)
        elif stage == "decide":
            workflow.decide(
                session,
                g.user,
                app,
                approve=approve,
                decision_no=f.get("decision_no", ""),
                reason=f.get("opinion", ""),
            )
        else:
            return _back("admin.credit_village", app_id=app_id)
        db.session.commit()
        flash(gettext("已办理"), "success")
    except DomainError as exc:
        db.session.rollback()
        flash(gettext("未办理:%(m)s", m=_message(exc)), "error")
    return _back("admin.credit_village", app_id=app_id)


@bp.get("/credit-villages/<int:app_id>/plaque.png")
@staff_page(*STAFF)
def credit_village_plaque(app_id: int) -> Response:
    app = workflow.get_application(db.session(), app_id, g.user)
    return Response(
        plaque.plaque_png(db.session(), app),
        mimetype="image/png",
        headers={"Content-Disposition": f'attachment; filename="plaque-{app.id}.png"'},
    )


# ---------------------------------------------------------------- assessments


@bp.get("/assessments")
@staff_page(*STAFF)
def assessments() -> str:
    plans = assessment.list_plans(db.session(), g.user)
    plan_id = arg_int("plan") or (plans[0].id if plans else None)
    plan = assessment.get_plan(db.session(), plan_id, g.user) if plan_id else None
    rows = assessment.list_assessments(db.session(), g.user, plan.id) if plan else []
    villages = queries.villages(db.session(), g.user)
    return render_template(
        "admin/assessments.html",
        plans=plans,
        plan=plan,
        rows=rows,
        villages=villages,
        names={v.id: v.name for v in villages},
        status_text=lambda s: _label(ASSESSMENT_STATUS_LABELS, s),
        can_create_plan=policy.may_create_assessment_plan(g.user),
        can_score=policy.may_work_on_assessments(g.user),
        can_review=lambda a: policy.may_review_assessment(g.user, a),
        can_pay=lambda a: policy.may_pay_assessment(g.user, a),
    )


@bp.post("/assessments/plans")
@staff_page(*ADMINS)
def assessment_plan_create() -> WerkzeugResponse:
    policy.ensure(policy.may_create_assessment_plan(g.user))
    try:
        plan = assessment.create_plan(
            db.session(),
            g.user,
            period=request.form.get("period", ""),
            name=request.form.get("name", ""),
            fund=request.form.get("fund", "township"),
        )
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        flash(gettext("未创建:%(m)s", m=_message(exc)), "error")
        return _back("admin.assessments")
    return _back("admin.assessments", plan=plan.id)


@bp.post("/assessments/<int:plan_id>/scores")
@staff_page(*ADMINS)
def assessment_score(plan_id: int) -> WerkzeugResponse:
    session = db.session()
    plan = assessment.get_plan(session, plan_id, g.user)
    policy.ensure(policy.may_work_on_assessments(g.user))
    marks = {
        ind["code"]: {
            it["code"]: request.form.get(f"{ind['code']}.{it['code']}", "").strip() or None
            for it in ind["items"]
        }
        for ind in plan.indicators
    }
    try:
        village = get_region(session, int(request.form.get("village_id") or 0))
        assessment.score_village(session, g.user, plan, village, marks)
        db.session.commit()
        flash(gettext("已评分,待另一位管理员审核"), "success")
    except (DomainError, ArithmeticError, ValueError) as exc:
        db.session.rollback()
        msg = _message(exc) if isinstance(exc, DomainError) else gettext("分数须为数字")
        flash(gettext("未评分:%(m)s", m=msg), "error")
    return _back("admin.assessments", plan=plan_id)


@bp.post("/assessments/scores/<int:assessment_id>/<action>")
@staff_page(*ADMINS)
def assessment_action(assessment_id: int, action: str) -> WerkzeugResponse:
    session = db.session()
    a = assessment.get_assessment(session, assessment_id, g.user)
    may = {
        "approve": policy.may_review_assessment,
        "reject": policy.may_review_assessment,
        "pay": policy.may_pay_assessment,
    }.get(action)
    if may is None:
        raise NotFound()
    policy.ensure(may(g.user, a))  # 403 as the API answers; a state conflict is flashed
    try:
        if action == "approve":
            assessment.approve(session, g.user, a.id)
        elif action == "reject":
            assessment.reject(session, g.user, a.id, request.form.get("reason", ""))
        elif action == "pay":
            assessment.pay(session, g.user, a.id)
        db.session.commit()
        flash(gettext("已办理"), "success")
    except DomainError as exc:
        db.session.rollback()
        flash(gettext("未办理:%(m)s", m=_message(exc)), "error")
    return _back("admin.assessments", plan=a.plan_id)
