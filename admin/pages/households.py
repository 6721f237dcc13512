"""Households (农户): search and filters, detail with both wallets, enrolment, xlsx import and
export, status changes, reveal of one field, PIN reset, card reissue and village card sheets."""

from __future__ import annotations

import io
from typing import Any

from flask import Response, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from openpyxl import load_workbook

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
    service_errors,
    walk,
)
from admin.forms import (
    STATUS_LABELS,
    CheckboxConfirmForm,
    HouseholdForm,
    HouseholdImportForm,
    PinResetForm,
    RevealForm,
    StatusForm,
)
from admin.nav import NAV_ITEMS, NavItem
from mall.audit import services as audit
from mall.codes import services as codes
from mall.codes.sheet import render_sheet_pages, sheet_pdf, sheet_png, village_card_faces
from mall.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from mall.extensions import db
from mall.ledger.models import HOUSEHOLD_INTEGRITY, HOUSEHOLD_POINTS
from mall.ledger.queries import account_history
from mall.ratings import services as ratings
from mall.regions.models import Region
from mall.regions.services import get_region
from mall.subjects import services as subjects
from mall.subjects.models import SUBJECT_STATUSES, CreditSubject
from mall.subjects.queries import SubjectFilter, search
from mall.users import policy

NAV_ITEMS.append(NavItem("admin.households", _l("农户"), STAFF, order=10))

IMPORT_MAX_ROWS = 5000
IMPORT_HEADERS = {
    "village": {"村", "所属村", "village"},
    "name": {"户主姓名", "户主", "姓名", "name", "head_name"},
    "id_number": {"身份证号", "身份证号码", "id_number"},
    "phone": {"手机号", "手机号码", "电话", "phone"},
    "members": {"家庭成员", "members"},
}


def _household(ref: str) -> CreditSubject:
    subject: CreditSubject = in_scope(g.user, subjects.get_by_ref(db.session(), ref))
    return subject


def _village_filter() -> int | None:
    if g.user.role == "village_clerk":
        return int(g.user.village_id)
    return arg_int("village")


@bp.get("/households")
@staff_page(*STAFF)
def households() -> Any:
    status = arg_str("status")
    f = SubjectFilter(
        q=arg_str("q", 40),
        village_id=_village_filter(),
        status=status if status in SUBJECT_STATUSES else None,
        level_code=arg_str("level", 16),
    )

    def fetch(after: int | None, limit: int) -> list[CreditSubject]:
        return search(db.session(), g.user, f, after_id=after, limit=limit)

    villages = queries.villages(db.session(), g.user)
    village_names = {v.id: v.name for v in villages}
    fmt = request.args.get("format")
    if fmt in ("csv", "xlsx"):
        headers = [
            gettext("户编号"),
            gettext("村"),
            gettext("户主(脱敏)"),
            gettext("身份证号(脱敏)"),
            gettext("手机号(脱敏)"),
            gettext("家庭人数"),
            gettext("状态"),
            gettext("信用等级"),
            gettext("等级有效期至"),
            gettext("登记时间"),
        ]
        rows = (
            [
                s.ref,
                village_names.get(s.village_id, ""),
                s.name_masked,
                s.id_number_masked,
                s.phone_masked,
                len(s.members) + 1,
                str(STATUS_LABELS.get(s.status, s.status)),
                s.level_code or gettext("未评级"),
                s.level_valid_until,
                s.created_at,
            ]
            for s in walk(fetch, lambda s: s.id)
        )
        return export_response(gettext("农户名单"), headers, rows, fmt)
    page = keyset_page(fetch, lambda s: s.id)
    return render_template(
        "admin/households.html",
        page=page,
        villages=villages,
        village_names=village_names,
        statuses=[(s, STATUS_LABELS[s]) for s in SUBJECT_STATUSES],
    )


@bp.get("/households/<ref>")
@staff_page(*STAFF)
def household(ref: str) -> Any:
    subject = _household(ref)
    session = db.session()
    accounts = queries.household_accounts(session, subject)
    wallets: dict[str, dict[str, Any] | None] = {}
    for kind, arg in ((HOUSEHOLD_POINTS, "p_after"), (HOUSEHOLD_INTEGRITY, "i_after")):
        account = accounts.get(kind)
        if account is None:
            wallets[kind] = None
            continue
        cursor = request.args.get(arg) or None
        try:
            history = account_history(
                session, subject.township_id, account.id, limit=20, cursor=cursor
            )
        except ValidationFailed:
            history = account_history(session, subject.township_id, account.id, limit=20)
        wallets[kind] = {"account": account, "history": history, "arg": arg}
    rating_rows, rating_events = ratings.history(session, subject.id)
    return render_template(
        "admin/household.html",
        s=subject,
        village=get_region(session, subject.village_id),
        wallets=wallets,
        POINTS=HOUSEHOLD_POINTS,
        INTEGRITY=HOUSEHOLD_INTEGRITY,
        ratings=rating_rows,
        rating_events=rating_events,
        card=codes.active_card(session, subject),
        can_admin=g.user.role in ADMINS,
        can_change_status=policy.may_change_household_status(g.user, subject),
    )


@bp.route("/households/new", methods=["GET", "POST"])
@staff_page(*STAFF)
def household_new() -> Any:
    require_writer(g.user)
    form = HouseholdForm()
    form.village_id.choices = [(v.id, v.name) for v in queries.villages(db.session(), g.user)]
    if form.validate_on_submit():
        village = in_scope(g.user, get_region(db.session(), form.village_id.data))
        try:
            subject = subjects.enrol_household(
                db.session(),
                g.user,
                village=village,
                head_name=form.head_name.data or "",
                id_number=(form.id_number.data or "").strip().upper() or None,
                phone=(form.phone.data or "").strip() or None,
                members=_members(form.members.data or ""),
            )
        except (ValidationFailed, Conflict) as exc:
            db.session.rollback()
            if isinstance(exc, Conflict):
                form.form_errors.append(gettext("该身份证号或手机号已登记"))
            else:
                apply_service_errors(form, exc)
        else:
            db.session.commit()
            flash(gettext("农户已登记,户编号 %(ref)s", ref=subject.ref), "success")
            return redirect(url_for("admin.household", ref=subject.ref))
    return form_page(
        form=form,
        title=gettext("登记农户"),
        submit=gettext("登记"),
        back_url=url_for("admin.households"),
        intro=gettext("身份证号、手机号加密保存,页面只显示脱敏后的号码。"),
    )


def _members(text: str) -> list[subjects.MemberInput]:
    out = []
    for line in text.replace(";", "\n").replace(";", "\n").splitlines():
        parts = line.split()
        if len(parts) == 2:
            out.append(subjects.MemberInput(parts[0], parts[1]))
    return out


# ---------------------------------------------------------------- import


def _columns(header: tuple[Any, ...]) -> dict[str, int]:
    cols: dict[str, int] = {}
    for i, value in enumerate(header):
        name = str(value or "").strip()
        for key, names in IMPORT_HEADERS.items():
            if name in names or name.lower() in names:
                cols.setdefault(key, i)
    return cols


def _row_error(exc: DomainError) -> str:
    if isinstance(exc, Conflict):
        return gettext("身份证号或手机号已登记")
    messages = [m for ms in service_errors(exc).values() for m in ms]
    return ";".join(messages) or (exc.message or gettext("数据有误"))


@bp.route("/households/import", methods=["GET", "POST"])
@staff_page(*STAFF)
def household_import() -> Any:
    """Every row goes through enrol_household inside one savepoint; with any bad row the
    savepoint is rolled back (nothing applied) unless the admin chose to apply the good rows."""
    require_writer(g.user)
    form = HouseholdImportForm()
    report: dict[str, Any] | None = None
    if form.validate_on_submit():
        try:
            wb = load_workbook(io.BytesIO(form.file.data.read()), read_only=True, data_only=True)
            rows = list(wb.active.iter_rows(values_only=True)) if wb.active is not None else []
        except Exception:  # openpyxl raises many kinds for a file that is not a workbook
            rows = None
        if not rows:
            form.file.errors = [gettext("无法读取该文件,请使用 xlsx 格式并保留表头")]
        else:
            cols = _columns(tuple(rows[0]))
            missing = [k for k in ("village", "name") if k not in cols]
            if missing:
                form.file.errors = [gettext("表头须包含“村”和“户主姓名”列")]
            elif len(rows) - 1 > IMPORT_MAX_ROWS:
                form.file.errors = [gettext("一次最多导入%(n)s行", n=IMPORT_MAX_ROWS)]
            else:
                report = _import_rows(rows, cols, bool(form.apply_good_rows.data))
    status = 200
    if request.method == "POST" and report is None:
        status = 400
    elif report is not None and report["errors"]:
        status = 422
    return render_template("admin/household_import.html", form=form, report=report), status


def _import_rows(
    rows: list[tuple[Any, ...]], cols: dict[str, int], apply_good: bool
) -> dict[str, Any]:
    session = db.session()
    villages = {v.name: v for v in queries.villages(session, g.user)}
    villages.update({v.code: v for v in villages.values()})
    errors: list[tuple[int, str]] = []
    created: list[str] = []
    width = max(cols.values()) + 1

    def cell(row: tuple[Any, ...], key: str) -> str:
        return str(row[cols[key]] or "").strip() if key in cols else ""

    outer = session.begin_nested()
    for number, raw in enumerate(rows[1:], start=2):
        row = tuple(raw) + (None,) * max(0, width - len(raw))
        if all(v is None or str(v).strip() == "" for v in row):
            continue
        village = villages.get(cell(row, "village"))
        if village is None:
            errors.append((number, gettext("村不存在或不在本辖区:%(v)s", v=cell(row, "village"))))
            continue
        try:
            with session.begin_nested():
                subject = subjects.enrol_household(
                    session,
                    g.user,
                    village=village,
                    head_name=cell(row, "name"),
                    id_number=cell(row, "id_number").upper() or None,
                    phone=cell(row, "phone") or None,
                    members=_members(cell(row, "members")),
                )
        except (ValidationFailed, Conflict, Forbidden, NotFound) as exc:
            errors.append((number, _row_error(exc)))
            continue
        created.append(subject.ref)
    applied = bool(created) and (not errors or apply_good)
    if applied:
        outer.commit()
        db.session.commit()
    else:
        outer.rollback()  # nothing of this file stays: not the households, not their audit
    return {
        "errors": errors,
        "created": len(created) if applied else 0,
        "good": len(created),
        "applied": applied,
        "total": len(errors) + len(created),
    }


# ---------------------------------------------------------------- status, reveal, PIN, card


@bp.route("/households/<ref>/status", methods=["GET", "POST"])
@staff_page(*STAFF)
def household_status(ref: str) -> Any:
    subject = _household(ref)
    policy.ensure(policy.may_change_household_status(g.user, subject))
    form = StatusForm()
    form.status.choices = [c for c in form.status.choices if c.value != subject.status]
    if request.method == "GET" and request.args.get("to"):
        form.status.data = request.args["to"]
    if form.validate_on_submit():
        try:
            subjects.change_status(
                db.session(), g.user, subject, form.status.data or "", form.reason.data or ""
            )
        except ValidationFailed as exc:
            db.session.rollback()
            apply_service_errors(form, exc)
        else:
            db.session.commit()
            flash(
                gettext("状态已改为:%(s)s", s=STATUS_LABELS.get(subject.status, subject.status)),
                "success",
            )
            return redirect(url_for("admin.household", ref=subject.ref))
    return render_template(
        "admin/confirm.html",
        form=form,
        title=gettext("变更农户状态"),
        warning=gettext(
            "冻结后该户不能在商户处使用积分和诚信金;撤销为长期处理。变更会记入审计日志。"
        ),
        submit=gettext("确认变更"),
        facts=[
            (gettext("户编号"), subject.ref),
            (gettext("户主"), subject.name_masked),
            (gettext("当前状态"), STATUS_LABELS.get(subject.status, subject.status)),
        ],
        back_url=url_for("admin.household", ref=subject.ref),
    ), (400 if form.errors or form.form_errors else 200)


@bp.route("/households/<ref>/reveal", methods=["GET", "POST"])
@staff_page(*ADMINS)
def household_reveal(ref: str) -> Any:
    subject = _household(ref)
    form = RevealForm()
    if form.validate_on_submit():
        value = subjects.reveal(
            db.session(), g.user, subject, form.field.data or "", form.reason.data or ""
        )
        db.session.commit()
        label = next((c.label for c in form.field.choices if c.value == form.field.data), "")
        # Rendered, not redirected: the value is in this one response (no-store) and nowhere else.
        return render_template(
            "admin/household_reveal.html", s=subject, label=label, value=value or "—"
        )
    return form_page(
        form=form,
        title=gettext("查看完整信息:%(ref)s", ref=subject.ref),
        submit=gettext("查看"),
        back_url=url_for("admin.household", ref=subject.ref),
        intro=gettext("完整信息只显示一次,查看行为(含原因)将记入审计日志。"),
    )


@bp.route("/households/<ref>/pin", methods=["GET", "POST"])
@staff_page(*ADMINS)
def household_pin(ref: str) -> Any:
    subject = _household(ref)
    form = PinResetForm()
    if form.validate_on_submit():
        try:
            changes = codes.admin_reset_pin(db.session(), subject, form.new_pin.data or None)
        except ValidationFailed as exc:
            db.session.rollback()
            apply_service_errors(form, exc, {"pin": "new_pin"})
        else:
            audit.record(
                db.session(),
                actor=g.user,
                action="household.pin_reset",
                object_type="household",
                object_id=subject.ref,
                county_id=subject.county_id,
                township_id=subject.township_id,
                after=changes,
            )
            db.session.commit()
            flash(
                gettext("密码已重置") if changes["pin_set"] else gettext("密码锁定已解除"),
                "success",
            )
            return redirect(url_for("admin.household", ref=subject.ref))
    return render_template(
        "admin/confirm.html",
        form=form,
        title=gettext("重置农户密码"),
        warning=gettext("请当面核实户主身份后再操作。操作会记入审计日志。"),
        submit=gettext("确认重置"),
        facts=[(gettext("户编号"), subject.ref), (gettext("户主"), subject.name_masked)],
        back_url=url_for("admin.household", ref=subject.ref),
    ), (400 if form.errors or form.form_errors else 200)


@bp.route("/households/<ref>/card", methods=["GET", "POST"])
@staff_page(*ADMINS)
def household_card(ref: str) -> Any:
    subject = _household(ref)
    form = CheckboxConfirmForm()
    previous = codes.active_card(db.session(), subject)
    if form.validate_on_submit():
        try:
            card = codes.issue_card(db.session(), subject)
        except Forbidden:
            db.session.rollback()
            flash(gettext("该户已冻结或撤销,不能补发诚信卡"), "error")
            return redirect(url_for("admin.household", ref=subject.ref))
        audit.record(
            db.session(),
            actor=g.user,
            action="household.card_issue",
            object_type="household",
            object_id=subject.ref,
            county_id=subject.county_id,
            township_id=subject.township_id,
            before={"serial": previous.serial} if previous else None,
            after={"serial": card.serial},
        )
        db.session.commit()
        flash(gettext("已补发新卡 %(s)s,旧卡已作废", s=codes.format_serial(card.serial)), "success")
        return redirect(url_for("admin.household", ref=subject.ref))
    return render_template(
        "admin/confirm.html",
        form=form,
        title=gettext("补发诚信卡"),
        warning=gettext("补发后旧卡立即作废,商户扫描旧卡会被拒绝。"),
        submit=gettext("确认补发"),
        facts=[
            (gettext("户编号"), subject.ref),
            (
                gettext("当前卡号"),
                codes.format_serial(previous.serial) if previous else gettext("无"),
            ),
        ],
        back_url=url_for("admin.household", ref=subject.ref),
    ), (400 if form.errors else 200)


# ---------------------------------------------------------------- card sheets


@bp.get("/cards")
@staff_page(*STAFF)
def card_sheets() -> str:
    return render_template(
        "admin/card_sheets.html", villages=queries.villages(db.session(), g.user)
    )


@bp.get("/cards/<int:village_id>.<any(pdf, png):fmt>")
@staff_page(*STAFF)
def card_sheet(village_id: int, fmt: str) -> Response:
    village: Region = in_scope(g.user, get_region(db.session(), village_id))
    if village.kind != "village":
        raise NotFound()
    if g.user.role == "village_clerk" and village.id != g.user.village_id:
        raise NotFound()
    faces = village_card_faces(db.session(), village)
    pages = render_sheet_pages(faces, heading=gettext("%(v)s 诚信管理卡", v=village.name))
    name = f"cards-{village.code}"
    if fmt == "pdf":
        body, mimetype = sheet_pdf(pages), "application/pdf"
    else:
        index = min(max((arg_int("page") or 1) - 1, 0), len(pages) - 1)
        body, mimetype = sheet_png(pages[index]), "image/png"
        name += f"-{index + 1}"
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'},
    )
