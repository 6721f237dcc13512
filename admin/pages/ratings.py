"""Ratings (评级): score entry with the civility review, the village notice board (printable),
appeals and answers, withdrawal, downgrade and revocation, over mall.ratings services (which
check scope and write the history and the audit entries themselves)."""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from admin import queries
from admin.blueprint import bp, staff_page
from admin.common import (
    ADMINS,
    STAFF,
    apply_service_errors,
    arg_int,
    arg_str,
    export_response,
    form_page,
    in_scope,
    keyset_page,
    require_writer,
)
from admin.forms import AnswerForm, AppealForm, ConfirmForm, DowngradeForm, ScoreForm
from admin.nav import NAV_ITEMS, NavItem
from mall.clock import business_date
from mall.errors import Conflict, NotFound, ValidationFailed
from mall.extensions import db
from mall.ratings import services as ratings
from mall.ratings.calculator import Reviewer, ReviewItem
from mall.ratings.labels import rating_status_label
from mall.ratings.models import Rating, RatingAppeal
from mall.regions.services import get_region
from mall.subjects.models import CreditSubject
from mall.subjects.services import get_by_ref

NAV_ITEMS.append(NavItem("admin.rating_notices", _l("评级"), STAFF, order=20))

APPEAL_STATUS_LABELS = {"open": _l("待答复"), "upheld": _l("维持原评"), "changed": _l("已改评")}


def _household(ref: str) -> CreditSubject:
    subject: CreditSubject = in_scope(g.user, get_by_ref(db.session(), ref))
    return subject


def _rating(rating_id: int) -> Rating:
    rating: Rating = in_scope(g.user, ratings.get_rating(db.session(), rating_id))
    return rating


def _score_input(form: ScoreForm) -> ratings.ScoreInput:
    items: list[ReviewItem] = []
    for kind, text in (("positive", form.positive.data), ("negative", form.negative.data)):
        for line in (text or "").splitlines():
            parts = line.split()
            if len(parts) == 2:
                items.append(ReviewItem(code=parts[0], points=int(parts[1]), kind=kind))
    if (form.veto.data or "").strip():
        items.append(ReviewItem(code=form.veto.data.strip(), kind="veto"))
    reviewers = []
    for line in (form.reviewers.data or "").splitlines():
        parts = line.split()
        if parts:
            reviewers.append(Reviewer(name=parts[0], related=len(parts) > 1 and parts[1] == "回避"))
    return ratings.ScoreInput(
        items=items,
        reviewers=reviewers,
        visit_score=float(form.visit_score.data) if form.visit_score.data is not None else None,
        points_score=float(form.points_score.data) if form.points_score.data is not None else None,
    )


# ---------------------------------------------------------------- notice board


@bp.get("/ratings")
@staff_page(*STAFF)
def rating_notices() -> Any:
    villages = queries.villages(db.session(), g.user)
    village_id = arg_int("village") or (villages[0].id if villages else None)
    village = next((v for v in villages if v.id == village_id), None)
    if village_id is not None and village is None:
        raise NotFound()
    rows = ratings.notice_list(db.session(), g.user, village.id) if village else []
    fmt = request.args.get("format")
    if village is not None and fmt in ("csv", "xlsx"):
        headers = [
            gettext("户编号"),
            gettext("户主"),
            gettext("信用等级"),
            gettext("得分"),
            gettext("状态"),
            gettext("公示开始"),
            gettext("公示截止"),
            gettext("复议截止"),
        ]
        return export_response(
            gettext("%(v)s评级公示", v=village.name),
            headers,
            (
                [
                    r["household_ref"],
                    r["household_name"],
                    r["level_label"],
                    r["score"],
                    rating_status_label(r["status"]),
                    r["notice_from"],
                    r["notice_until"],
                    r["appeal_until"],
                ]
                for r in rows
            ),
            fmt,
        )
    return render_template(
        "admin/rating_notices.html",
        villages=villages,
        village=village,
        rows=rows,
        status_label=rating_status_label,
        printable=request.args.get("print") == "1",
    )


@bp.get("/ratings/appeals")
@staff_page(*STAFF)
def rating_appeals() -> Any:
    status = arg_str("status")
    if status not in APPEAL_STATUS_LABELS:
        status = None

    def fetch(after: int | None, limit: int) -> list[tuple[RatingAppeal, str, str, int]]:
        return queries.list_appeals(
            db.session(), g.user, status=status, after_id=after, limit=limit
        )

    page = keyset_page(fetch, lambda r: r[0].id)
    return render_template(
        "admin/rating_appeals.html",
        page=page,
        statuses=list(APPEAL_STATUS_LABELS.items()),
        appeal_label=lambda s: APPEAL_STATUS_LABELS.get(s, s),
        village_names=queries.region_names(db.session(), {r[3] for r in page.items}),
    )


# ---------------------------------------------------------------- one rating


@bp.get("/ratings/<int:rating_id>")
@staff_page(*STAFF)
def rating(rating_id: int) -> str:
    r = _rating(rating_id)
    session = db.session()
    subject = session.get(CreditSubject, r.subject_id)
    appeals = list(
        session.scalars(
            select(RatingAppeal).where(RatingAppeal.rating_id == r.id).order_by(RatingAppeal.id)
        )
    )
    return render_template(
        "admin/rating.html",
        r=r,
        s=subject,
        appeals=appeals,
        status_label=rating_status_label,
        appeal_label=lambda s: APPEAL_STATUS_LABELS.get(s, s),
        village=get_region(session, r.village_id).name,
        today=business_date(),
    )


@bp.route("/households/<ref>/rate", methods=["GET", "POST"])
@staff_page(*STAFF)
def rating_new(ref: str) -> Any:
    subject = _household(ref)
    require_writer(g.user)
    form = ScoreForm()
    if form.validate_on_submit():
        try:
            r = ratings.draft_rating(db.session(), g.user, subject, _score_input(form))
        except ValidationFailed as exc:
            db.session.rollback()
            apply_service_errors(form, exc)
        except Conflict:
            db.session.rollback()
            form.form_errors.append(gettext("该户已有进行中的评级(草稿、公示或复议中)"))
        else:
            db.session.commit()
            flash(gettext("评分已保存为草稿,请核对后发布公示"), "success")
            return redirect(url_for("admin.rating", rating_id=r.id))
    return form_page(
        form=form,
        title=gettext("评分:%(ref)s %(name)s", ref=subject.ref, name=subject.name_masked),
        submit=gettext("计算并保存草稿"),
        back_url=url_for("admin.household", ref=subject.ref),
        intro=gettext(
            "乡风文明评议:基础分80分,加分项合计最多加20分,扣分项逐项扣分,一票否决项使评议得分为0;"
            "评议得分按区域设置的权重(默认30%)计入评级总分。与该户有亲属关系的评议人应回避。"
        ),
    )


@bp.post("/ratings/<int:rating_id>/activate")
@staff_page(*STAFF)
def rating_activate(rating_id: int) -> Any:
    r = _rating(rating_id)
    try:
        ratings.activate_rating(db.session(), g.user, r)
    except Conflict:
        db.session.rollback()
        flash(gettext("公示期结束且无人复议后才能生效"), "error")
    else:
        db.session.commit()
        flash(gettext("评级已生效"), "success")
    return redirect(url_for("admin.rating", rating_id=rating_id))


@bp.post("/ratings/<int:rating_id>/notice")
@staff_page(*STAFF)
def rating_post_notice(rating_id: int) -> Any:
    r = _rating(rating_id)
    try:
        ratings.post_notice(db.session(), g.user, r)
    except Conflict:
        db.session.rollback()
        flash(gettext("只有草稿可以发布公示"), "error")
        return redirect(url_for("admin.rating", rating_id=rating_id))
    db.session.commit()
    flash(gettext("已发布公示,公示期至 %(d)s", d=r.notice_until), "success")
    return redirect(url_for("admin.rating", rating_id=rating_id))


@bp.route("/ratings/<int:rating_id>/withdraw", methods=["GET", "POST"])
@staff_page(*STAFF)
def rating_withdraw(rating_id: int) -> Any:
    r = _rating(rating_id)
    require_writer(g.user)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            ratings.withdraw(db.session(), g.user, r, form.reason.data or "")
        except Conflict:
            db.session.rollback()
            flash(gettext("当前状态不能撤回"), "error")
            return redirect(url_for("admin.rating", rating_id=rating_id))
        db.session.commit()
        flash(gettext("评级已撤回"), "success")
        return redirect(url_for("admin.rating", rating_id=rating_id))
    return render_template(
        "admin/confirm.html",
        form=form,
        title=gettext("撤回评级"),
        warning=gettext("撤回后本次评级作废,需要重新评分。"),
        submit=gettext("确认撤回"),
        facts=[
            (gettext("等级"), r.level_code or gettext("未评级")),
            (gettext("状态"), rating_status_label(r.status)),
        ],
        back_url=url_for("admin.rating", rating_id=rating_id),
    ), (400 if form.errors else 200)


@bp.route("/ratings/<int:rating_id>/appeal", methods=["GET", "POST"])
@staff_page(*STAFF)
def rating_appeal(rating_id: int) -> Any:
    r = _rating(rating_id)
    require_writer(g.user)
    form = AppealForm()
    if form.validate_on_submit():
        try:
            ratings.file_appeal(db.session(), g.user, r, form.grounds.data or "")
        except Conflict:
            db.session.rollback()
            form.form_errors.append(gettext("复议期已过、已复议过或已有待答复的复议"))
        except ValidationFailed as exc:
            db.session.rollback()
            apply_service_errors(form, exc)
        else:
            db.session.commit()
            flash(gettext("复议申请已登记"), "success")
            return redirect(url_for("admin.rating", rating_id=rating_id))
    return form_page(
        form=form,
        title=gettext("登记复议申请"),
        submit=gettext("登记"),
        back_url=url_for("admin.rating", rating_id=rating_id),
        intro=gettext("农户可在公示期内或公示结束后规定天数内申请复议;村里须在期限内答复。"),
    )


@bp.route("/appeals/<int:appeal_id>/answer", methods=["GET", "POST"])
@staff_page(*STAFF)
def appeal_answer(appeal_id: int) -> Any:
    appeal = db.session.get(RatingAppeal, appeal_id)
    if appeal is None:
        raise NotFound()
    r = _rating(appeal.rating_id)
    require_writer(g.user)
    form = AnswerForm()
    if form.validate_on_submit():
        new_score = _score_input(form) if form.rescore.data else None
        try:
            ratings.answer_appeal(db.session(), g.user, appeal, form.answer.data or "", new_score)
        except Conflict:
            db.session.rollback()
            form.form_errors.append(gettext("该复议已答复"))
        except ValidationFailed as exc:
            db.session.rollback()
            apply_service_errors(form, exc)
        else:
            db.session.commit()
            flash(gettext("已答复复议"), "success")
            return redirect(url_for("admin.rating", rating_id=r.id))
    return form_page(
        form=form,
        title=gettext("答复复议"),
        submit=gettext("提交答复"),
        back_url=url_for("admin.rating", rating_id=r.id),
        intro=gettext("复议理由:%(g)s", g=appeal.grounds),
    )


# ---------------------------------------------------------------- downgrade, revoke


@bp.route("/households/<ref>/downgrade", methods=["GET", "POST"])
@staff_page(*ADMINS)
def rating_downgrade(ref: str) -> Any:
    subject = _household(ref)
    form = DowngradeForm()
    scheme = ratings.scheme_of(db.session(), subject)
    form.level_code.choices = [
        (lv.code, lv.label_zh)
        for lv in scheme.levels
        if subject.level_rank and lv.rank < subject.level_rank
    ]
    if form.validate_on_submit():
        try:
            ratings.downgrade(
                db.session(), g.user, subject, form.level_code.data or "", form.reason.data or ""
            )
        except Conflict:
            db.session.rollback()
            flash(gettext("该户没有生效的评级"), "error")
            return redirect(url_for("admin.household", ref=ref))
        except ValidationFailed as exc:
            db.session.rollback()
            apply_service_errors(form, exc)
        else:
            db.session.commit()
            flash(gettext("已降级"), "success")
            return redirect(url_for("admin.household", ref=ref))
    return render_template(
        "admin/confirm.html",
        form=form,
        title=gettext("降低信用等级"),
        warning=gettext("降级立即生效,高于新等级部分的诚信金将被收回(未使用部分)。"),
        submit=gettext("确认降级"),
        facts=[
            (gettext("户编号"), subject.ref),
            (gettext("当前等级"), subject.level_code or gettext("未评级")),
        ],
        back_url=url_for("admin.household", ref=ref),
    ), (400 if form.errors or form.form_errors else 200)


@bp.route("/households/<ref>/revoke-rating", methods=["GET", "POST"])
@staff_page(*ADMINS)
def rating_revoke(ref: str) -> Any:
    subject = _household(ref)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            ratings.revoke(db.session(), g.user, subject, form.reason.data or "")
        except Conflict:
            db.session.rollback()
            flash(gettext("该户没有生效的评级"), "error")
            return redirect(url_for("admin.household", ref=ref))
        db.session.commit()
        flash(gettext("评级已撤销,该户已冻结"), "success")
        return redirect(url_for("admin.household", ref=ref))
    return render_template(
        "admin/confirm.html",
        form=form,
        title=gettext("撤销信用评级"),
        warning=gettext("撤销后该户失去信用等级并被冻结,诚信金余额收回乡镇资金。"),
        submit=gettext("确认撤销"),
        facts=[
            (gettext("户编号"), subject.ref),
            (gettext("当前等级"), subject.level_code or gettext("未评级")),
        ],
        back_url=url_for("admin.household", ref=ref),
    ), (400 if form.errors else 200)
