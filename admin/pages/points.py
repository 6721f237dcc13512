"""Points: earning rules, batches of behaviour events (record one by one or import a file),
submission, and approval or rejection by someone other than the maker (mall.points)."""

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
    walk,
)
from admin.forms import (
    RULE_CATEGORY_LABELS,
    BatchForm,
    DecisionForm,
    EventForm,
    ImportForm,
    RejectForm,
    RuleForm,
)
from admin.nav import NAV_ITEMS, NavItem
from mall.audit import services as audit
from mall.clock import business_date
from mall.errors import Conflict, Forbidden, NotFound, ValidationFailed
from mall.extensions import db
from mall.points import rules as rule_services
from mall.points import services as points
from mall.points.models import BATCH_STATUSES, EarningRule, PointBatch
from mall.regions.models import Region
from mall.regions.services import get_region
from mall.subjects.models import CreditSubject
from mall.subjects.services import get_by_ref
from mall.users import policy

NAV_ITEMS.append(NavItem("admin.point_batches", _l("积分"), STAFF, order=30))

BATCH_STATUS_LABELS = {
    "draft": _l("草稿"),
    "invalid": _l("导入有误"),
    "submitted": _l("待审批"),
    "approved": _l("已通过"),
    "rejected": _l("已驳回"),
}
SOURCE_LABELS = {
    "manual": _l("逐条录入"),
    "xlsx": _l("Excel导入"),
    "csv": _l("CSV导入"),
    "upstream": _l("上级系统"),
}


def _regions_for_batches() -> list[Region]:
    """Where the user may record: a clerk's village; an admin's townships and villages."""
    session = db.session()
    if g.user.role == "village_clerk":
        return queries.villages(session, g.user)
    out: list[Region] = []
    villages = queries.villages(session, g.user)
    for town in queries.townships(session, g.user):
        out.append(town)
        out.extend(v for v in villages if v.township_id == town.id)
    return out


def _region_choices() -> list[tuple[int, str]]:
    return [
        (r.id, r.name if r.kind == "township" else "　" + r.name) for r in _regions_for_batches()
    ]


def _batch(batch_id: int) -> PointBatch:
    batch: PointBatch = in_scope(g.user, db.session.get(PointBatch, batch_id))
    return batch


def _names(batches: list[PointBatch]) -> dict[int, str]:
    ids = {b.township_id for b in batches} | {b.village_id for b in batches if b.village_id}
    return queries.region_names(db.session(), ids)


@bp.get("/points")
@staff_page(*STAFF)
def point_batches() -> Any:
    status = arg_str("status")
    if status not in BATCH_STATUSES:
        status = None
    clerk_village = g.user.village_id if g.user.role == "village_clerk" else None

    def fetch(after: int | None, limit: int) -> list[PointBatch]:
        rows = points.list_batches(
            db.session(), g.user, status=status, before_id=after, limit=limit
        )
        # A clerk sees their village's batches (the service scopes to the township).
        return [b for b in rows if clerk_village is None or b.village_id == clerk_village]

    fmt = request.args.get("format")
    if fmt in ("csv", "xlsx"):
        rows_all = list(walk(fetch, lambda b: b.id))
        names = _names(rows_all)
        headers = [
            gettext("批次"),
            gettext("区域"),
            gettext("来源"),
            gettext("状态"),
            gettext("行数"),
            gettext("错误行"),
            gettext("事件数"),
            gettext("户数"),
            gettext("发放积分"),
            gettext("扣减积分"),
            gettext("创建时间"),
        ]
        return export_response(
            gettext("积分批次"),
            headers,
            (
                [
                    b.id,
                    names.get(b.village_id or b.township_id, ""),
                    str(SOURCE_LABELS.get(b.source, b.source)),
                    str(BATCH_STATUS_LABELS.get(b.status, b.status)),
                    b.rows_total,
                    b.rows_bad,
                    b.events,
                    b.households,
                    b.points_issued,
                    b.points_deducted,
                    b.created_at,
                ]
                for b in rows_all
            ),
            fmt,
        )
    page = keyset_page(fetch, lambda b: b.id)
    form = BatchForm()
    form.region_id.choices = _region_choices()
    return render_template(
        "admin/point_batches.html",
        page=page,
        names=_names(page.items),
        statuses=[(s, BATCH_STATUS_LABELS[s]) for s in BATCH_STATUSES],
        status_label=lambda s: BATCH_STATUS_LABELS.get(s, s),
        source_label=lambda s: SOURCE_LABELS.get(s, s),
        form=form,
    )


@bp.post("/points/batches")
@staff_page(*STAFF)
def point_batch_create() -> Any:
    require_writer(g.user)
    form = BatchForm()
    form.region_id.choices = _region_choices()
    if not form.validate_on_submit():
        flash(gettext("请选择村或乡镇"), "error")
        return redirect(url_for("admin.point_batches"))
    batch = points.create_batch(db.session(), g.user, form.region_id.data)
    audit.record(
        db.session(),
        actor=g.user,
        action="points.batch.create",
        object_type="point_batch",
        object_id=batch.id,
        county_id=batch.county_id,
        township_id=batch.township_id,
        after={"status": batch.status, "region_id": form.region_id.data},
    )
    db.session.commit()
    flash(gettext("已新建积分批次 %(id)s,请逐条录入事件", id=batch.id), "success")
    return redirect(url_for("admin.point_batch", batch_id=batch.id))


def _event_form(batch: PointBatch) -> EventForm:
    form = EventForm()
    region = get_region(db.session(), batch.village_id or batch.township_id)
    rules = rule_services.effective_rules(db.session(), region)
    form.rule_code.choices = [
        (code, f"{r.name}({r.points:+d})") for code, r in sorted(rules.items())
    ]
    if request.method == "GET":
        form.occurred_on.data = business_date()
    return form


def _batch_page(batch: PointBatch, event_form: EventForm | None = None, status: int = 200) -> Any:
    session = db.session()
    events = points.batch_events(session, batch, after_id=arg_int("after"), limit=201)
    more = len(events) > 200
    events = events[:200]
    subject_ids = {e.subject_id for e in events}
    subjects = {
        s.id: s
        for s in session.scalars(select(CreditSubject).where(CreditSubject.id.in_(subject_ids)))
    }
    rule_ids = {e.rule_id for e in events}
    rule_rows = {
        r.id: r for r in session.scalars(select(EarningRule).where(EarningRule.id.in_(rule_ids)))
    }
    user = g.user
    is_maker = batch.maker_id == user.id
    can_decide = batch.status == "submitted" and policy.may_decide_point_batch(user, batch)
    form = event_form
    if form is None and batch.status == "draft" and batch.source == "manual" and is_maker:
        form = _event_form(batch)
    return render_template(
        "admin/point_batch.html",
        batch=batch,
        events=events,
        more_url=url_for("admin.point_batch", batch_id=batch.id, after=events[-1].id)
        if more
        else None,
        subjects=subjects,
        rules=rule_rows,
        errors=points.import_errors(session, batch, limit=500),
        region_name=get_region(session, batch.village_id or batch.township_id).name,
        is_maker=is_maker,
        can_decide=can_decide,
        event_form=form,
        status_label=lambda s: BATCH_STATUS_LABELS.get(s, s),
        source_label=lambda s: SOURCE_LABELS.get(s, s),
    ), status


@bp.get("/points/batches/<int:batch_id>")
@staff_page(*STAFF)
def point_batch(batch_id: int) -> Any:
    batch = _batch(batch_id)
    if request.args.get("format") == "errors":
        return export_response(
            gettext("批次%(id)s错误行", id=batch.id),
            [gettext("行号"), gettext("原因")],
            (
                [e.row_number, e.reason]
                for e in points.import_errors(db.session(), batch, limit=200_000)
            ),
            "csv",
        )
    return _batch_page(batch)


@bp.post("/points/batches/<int:batch_id>/events")
@staff_page(*STAFF)
def point_event_add(batch_id: int) -> Any:
    batch = _batch(batch_id)
    require_writer(g.user)
    form = _event_form(batch)
    if form.validate_on_submit():
        try:
            subject = in_scope(
                g.user, get_by_ref(db.session(), (form.household_ref.data or "").strip())
            )
        except NotFound:
            form.household_ref.errors = [gettext("户编号不存在或不在本辖区")]
        else:
            try:
                event = points.record_event(
                    db.session(),
                    g.user,
                    batch,
                    subject=subject,
                    rule_code=form.rule_code.data or "",
                    occurred_on=form.occurred_on.data,
                    note=form.note.data or "",
                )
            except ValidationFailed as exc:
                db.session.rollback()
                apply_service_errors(form, exc, {"subject": "household_ref"})
            else:
                audit.record(
                    db.session(),
                    actor=g.user,
                    action="points.event.record",
                    object_type="point_batch",
                    object_id=batch.id,
                    county_id=batch.county_id,
                    township_id=batch.township_id,
                    after={"event_id": event.id, "household": subject.ref, "points": event.points},
                )
                db.session.commit()
                flash(gettext("已录入:%(ref)s", ref=subject.ref), "success")
                return redirect(url_for("admin.point_batch", batch_id=batch.id))
    return _batch_page(_batch(batch_id), form, 400)


@bp.post("/points/batches/<int:batch_id>/submit")
@staff_page(*STAFF)
def point_batch_submit(batch_id: int) -> Any:
    batch = _batch(batch_id)
    try:
        points.submit_batch(db.session(), g.user, batch)
    except Conflict:
        db.session.rollback()
        flash(gettext("只有含事件的草稿批次可以提交"), "error")
        return redirect(url_for("admin.point_batch", batch_id=batch_id))
    db.session.commit()
    flash(gettext("批次已提交,等待审批"), "success")
    return redirect(url_for("admin.point_batch", batch_id=batch_id))


@bp.route("/points/batches/<int:batch_id>/<any(approve, reject):decision>", methods=["GET", "POST"])
@staff_page(*ADMINS)
def point_batch_decide(batch_id: int, decision: str) -> Any:
    batch = _batch(batch_id)
    form: DecisionForm | RejectForm = DecisionForm() if decision == "approve" else RejectForm()
    if form.validate_on_submit() and request.form.get("confirm"):
        try:
            if decision == "approve":
                points.approve_batch(
                    db.session(), g.user, batch.id, note=(form.data.get("note") or "").strip()
                )
            else:
                points.reject_batch(db.session(), g.user, batch.id, form.data.get("reason") or "")
        except Forbidden as exc:
            db.session.rollback()
            if exc.code == "own_batch":
                flash(gettext("不能审批自己录入的积分批次"), "error")
                return redirect(url_for("admin.point_batch", batch_id=batch_id))
            raise
        except Conflict:
            db.session.rollback()
            flash(gettext("该批次当前状态不能审批"), "error")
            return redirect(url_for("admin.point_batch", batch_id=batch_id))
        db.session.commit()
        flash(
            gettext("批次已审批通过,积分已发放")
            if decision == "approve"
            else gettext("批次已驳回"),
            "success",
        )
        return redirect(url_for("admin.point_batch", batch_id=batch_id))
    missing_confirm = request.method == "POST" and not request.form.get("confirm")
    return render_template(
        "admin/point_decide.html",
        batch=batch,
        form=form,
        decision=decision,
        missing_confirm=missing_confirm,
    ), (400 if request.method == "POST" else 200)


@bp.route("/points/import", methods=["GET", "POST"])
@staff_page(*STAFF)
def point_import() -> Any:
    require_writer(g.user)
    form = ImportForm()
    form.region_id.choices = _region_choices()
    result = None
    if form.validate_on_submit():
        upload = form.file.data
        try:
            result = points.import_events(
                db.session(),
                g.user,
                form.region_id.data,
                filename=upload.filename or "upload.xlsx",
                content=upload.read(),
                apply_good_rows=bool(form.apply_good_rows.data),
            )
        except ValidationFailed as exc:
            db.session.rollback()
            apply_service_errors(form, exc)
        except Exception as exc:  # a file openpyxl cannot read is the user's file, not our bug
            if isinstance(exc, NotFound | Forbidden):
                raise
            db.session.rollback()
            form.file.errors = [gettext("无法读取该文件,请确认是 xlsx 或 UTF-8 编码的 csv")]
        else:
            db.session.commit()
            if result.applied:
                flash(
                    gettext(
                        "已导入 %(n)s 条事件到批次 %(id)s,请核对后提交审批",
                        n=result.batch.events,
                        id=result.batch.id,
                    ),
                    "success",
                )
                return redirect(url_for("admin.point_batch", batch_id=result.batch.id))
    status = 200 if request.method == "GET" or (result is not None) else 400
    if result is not None and result.errors:
        status = 422
    return render_template("admin/point_import.html", form=form, result=result), status


# ---------------------------------------------------------------- earning rules


@bp.get("/points/rules")
@staff_page(*STAFF)
def point_rules() -> Any:
    regions = _regions_for_batches()
    region_id = arg_int("region") or (regions[0].id if regions else None)
    region = next((r for r in regions if r.id == region_id), None)
    if region_id is not None and region is None:
        raise NotFound()
    rules = (
        rule_services.effective_rules(db.session(), region, include_inactive=True) if region else {}
    )
    names = queries.region_names(db.session(), {r.region_id for r in rules.values()})
    return render_template(
        "admin/point_rules.html",
        regions=regions,
        region=region,
        rules=sorted(rules.values(), key=lambda r: r.code),
        region_names=names,
        category_label=lambda c: RULE_CATEGORY_LABELS.get(c, c),
        can_create_rule=any(policy.may_create_point_rule(g.user, r) for r in regions),
        can_edit_rule=lambda rule: policy.may_edit_point_rule(g.user, rule),
    )


def _rule_regions(form: RuleForm) -> None:
    session = db.session()
    choices: list[tuple[int, str]] = []
    county = get_region(session, g.user.county_id)
    if policy.may_create_point_rule(g.user, county):
        choices.append((county.id, county.name))
    choices.extend(_region_choices())
    form.region_id.choices = choices


@bp.route("/points/rules/new", methods=["GET", "POST"])
@staff_page(*ADMINS)
def point_rule_new() -> Any:
    form = RuleForm()
    _rule_regions(form)
    if form.validate_on_submit():
        region = in_scope(g.user, get_region(db.session(), form.region_id.data))
        try:
            rule = rule_services.create_rule(
                db.session(),
                g.user,
                region,
                code=(form.code.data or "").strip(),
                name=(form.name.data or "").strip(),
                points=form.points.data or 0,
                category=form.category.data or "other",
                cap_week=form.cap_week.data,
                cap_month=form.cap_month.data,
                cap_year=form.cap_year.data,
            )
        except ValidationFailed as exc:
            apply_service_errors(form, exc)
        except Conflict:
            form.code.errors = [gettext("该区域已有此编码的规则")]
        else:
            db.session.commit()
            flash(gettext("积分规则“%(n)s”已创建", n=rule.name), "success")
            return redirect(url_for("admin.point_rules", region=region.id))
    return form_page(
        form=form,
        title=gettext("新增积分规则"),
        submit=gettext("创建规则"),
        back_url=url_for("admin.point_rules"),
        intro=gettext("下级区域的同编码规则会替换上级规则。"),
    )


@bp.route("/points/rules/<int:rule_id>/edit", methods=["GET", "POST"])
@staff_page(*ADMINS)
def point_rule_edit(rule_id: int) -> Any:
    rule = in_scope(g.user, rule_services.get_rule(db.session(), rule_id))
    policy.ensure(policy.may_edit_point_rule(g.user, rule))
    form = RuleForm(obj=rule)
    form.region_id.choices = [(rule.region_id, get_region(db.session(), rule.region_id).name)]
    form.code.render_kw = {"readonly": True}
    active = request.form.get("active") == "y" if request.method == "POST" else rule.active
    if form.validate_on_submit():
        try:
            rule_services.update_rule(
                db.session(),
                g.user,
                rule,
                {
                    "name": (form.name.data or "").strip(),
                    "points": form.points.data,
                    "cap_week": form.cap_week.data,
                    "cap_month": form.cap_month.data,
                    "cap_year": form.cap_year.data,
                    "active": active,
                },
            )
        except ValidationFailed as exc:
            db.session.rollback()
            apply_service_errors(form, exc)
        else:
            db.session.commit()
            flash(gettext("积分规则已保存"), "success")
            return redirect(url_for("admin.point_rules", region=rule.region_id))
    return render_template("admin/point_rule_edit.html", form=form, rule=rule, active=active), (
        400 if form.errors or form.form_errors else 200
    )
