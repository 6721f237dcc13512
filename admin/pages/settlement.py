"""Settlement (结算): the partners' daily statements, closing a day, reopening it, marking it
paid and reconciliation uploads, all over mall.settlement (which audits each act)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import Response, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from admin import queries
from admin.blueprint import bp, staff_page
from admin.common import ADMINS, READERS, arg_date, arg_int, can_write, export_response, in_scope
from admin.forms import CheckboxConfirmForm, ConfirmForm, PaidForm, ReconcileForm
from admin.nav import NAV_ITEMS, NavItem
from mall.clock import business_date
from mall.daybook import services as daybook
from mall.errors import MESSAGES, Conflict, DomainError, NotFound
from mall.extensions import db
from mall.partners.models import Partner
from mall.payments.statements import daily_statement, statement_csv
from mall.settlement import closing, payout, reconcile, statements
from mall.settlement.models import Reconciliation

NAV_ITEMS.append(NavItem("admin.settlement", _l("结算"), READERS, order=60))

STATEMENT_LABELS = {
    "payments_count": _l("成交笔数"),
    "sales_amount_fen": _l("销售额(元)"),
    "integrity_discount_fen": _l("诚信金抵扣(元)"),
    "offline_shortfall_fen": _l("离线差额(元)"),
    "points_redeemed": _l("兑换积分"),
    "points_settlement_fen": _l("积分商品结算额(元)"),
    "cash_due_fen": _l("现金应收(元)"),
    "voided_count": _l("撤销/过期笔数"),
    "needs_review_count": _l("待复核笔数"),
    "refunds_count": _l("退款笔数"),
    "refunded_amount_fen": _l("退款额(元)"),
    "refunded_integrity_fen": _l("退回诚信金(元)"),
    "refunded_points": _l("退回积分"),
    "refunded_settlement_fen": _l("退回结算额(元)"),
    "net_payable_fen": _l("乡镇应付商户(元)"),
}


@bp.get("/settlement")
@staff_page(*READERS)
def settlement() -> Any:
    today = business_date()
    since = arg_date("since") or today - timedelta(days=30)
    until = arg_date("until") or today
    partner_id = arg_int("partner")
    if partner_id is not None:
        in_scope(g.user, db.session.get(Partner, partner_id))
    days = queries.statement_days(
        db.session(), g.user, partner_id=partner_id, since=since, until=until, limit=500
    )
    fmt = request.args.get("format")
    if fmt in ("csv", "xlsx"):
        headers = [
            gettext("营业日"),
            gettext("商户"),
            gettext("成交笔数"),
            gettext("销售额(元)"),
            gettext("诚信金抵扣(元)"),
            gettext("兑换积分"),
            gettext("积分商品结算额(元)"),
        ]
        rows = (
            [
                d.business_date,
                d.partner_name,
                d.payments,
                d.amount_fen / 100,
                d.integrity_fen / 100,
                d.points,
                d.points_settlement_fen / 100,
            ]
            for d in days
        )
        return export_response(gettext("商户日对账"), headers, rows, fmt)
    return render_template(
        "admin/settlement.html",
        days=days,
        since=since,
        until=until,
        partners=queries.list_partners(db.session(), g.user, limit=500),
        partner_id=partner_id,
    )


def _partner_day(partner_id: int, day: str) -> tuple[Partner, date]:
    partner: Partner = in_scope(g.user, db.session.get(Partner, partner_id))
    try:
        return partner, date.fromisoformat(day)
    except ValueError:
        raise NotFound() from None


def _back(partner: Partner, on: date) -> Any:
    return redirect(url_for("admin.statement", partner_id=partner.id, day=on.isoformat()))


@bp.get("/settlement/<int:partner_id>/<day>")
@staff_page(*READERS)
def statement(partner_id: int, day: str) -> Any:
    partner, on = _partner_day(partner_id, day)
    if request.args.get("format") == "csv":
        return Response(
            statement_csv(daily_statement(db.session(), partner.id, on)),
            mimetype="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="statement-{partner.id}-{on}.csv"'
            },
        )
    view = statements.day_statement(db.session(), partner, on)  # frozen figures once closed
    rows = [
        (label, view.figures.get(key, 0), key.endswith("_fen"))
        for key, label in STATEMENT_LABELS.items()
    ]
    uploads = db.session.scalars(
        select(Reconciliation)
        .where(Reconciliation.partner_id == partner.id, Reconciliation.business_date == on)
        .order_by(Reconciliation.id.desc())
        .limit(20)
    ).all()
    return render_template(
        "admin/statement.html",
        partner=partner,
        day=on,
        view=view,
        rows=rows,
        uploads=uploads,
        versions=statements.history(db.session(), partner.id, on),
        can_close=can_write(g.user) and view.status == "open" and on < business_date(),
        paid_form=PaidForm(paid_on=business_date()),
        reconcile_form=ReconcileForm(),
    )


@bp.route("/settlement/<int:partner_id>/<day>/close", methods=["GET", "POST"])
@staff_page(*ADMINS)
def statement_close(partner_id: int, day: str) -> Any:
    partner, on = _partner_day(partner_id, day)
    form = CheckboxConfirmForm()
    if form.validate_on_submit():
        try:
            closing.close_statement(db.session(), g.user, partner, on)
        except DomainError as exc:
            db.session.rollback()
            flash(_message(exc), "error")
        else:
            db.session.commit()
            flash(gettext("已关账,此后的退款计入下一个营业日"), "success")
        return _back(partner, on)
    return _confirm(
        form,
        partner,
        on,
        gettext("关账"),
        gettext("关账后该日对账单不再变化,之后的退款计入下一个营业日。关账会记入审计日志。"),
    )


@bp.route("/settlement/<int:partner_id>/<day>/reopen", methods=["GET", "POST"])
@staff_page(*ADMINS)
def statement_reopen(partner_id: int, day: str) -> Any:
    partner, on = _partner_day(partner_id, day)
    form = ConfirmForm()
    if form.validate_on_submit():
        current = daybook.current_statement(db.session(), partner.id, on)
        try:
            if current is None:
                raise Conflict("invalid_state")
            closing.reopen_statement(db.session(), g.user, current, form.reason.data or "")
        except DomainError as exc:
            db.session.rollback()
            flash(_message(exc), "error")
        else:
            db.session.commit()
            flash(gettext("已重新打开,新版本对账单已生成"), "success")
        return _back(partner, on)
    return _confirm(
        form,
        partner,
        on,
        gettext("重新打开对账单"),
        gettext("重新打开会生成新版本,原版本保留备查。请写明原因;此操作记入审计日志。"),
    )


@bp.post("/settlement/<int:partner_id>/<day>/paid")
@staff_page(*ADMINS)
def statement_paid(partner_id: int, day: str) -> Any:
    partner, on = _partner_day(partner_id, day)
    form = PaidForm()
    current = daybook.current_statement(db.session(), partner.id, on)
    if not form.validate_on_submit():
        flash("; ".join(str(m) for ms in form.errors.values() for m in ms), "error")
    elif current is None:
        flash(gettext("该日尚未关账"), "error")
    else:
        try:
            payout.mark_paid(
                db.session(),
                g.user,
                current,
                reference=form.reference.data or "",
                paid_on=form.paid_on.data or business_date(),
            )
        except DomainError as exc:
            db.session.rollback()
            flash(_message(exc), "error")
        else:
            db.session.commit()
            flash(gettext("已标记为已付款"), "success")
    return _back(partner, on)


@bp.post("/settlement/<int:partner_id>/<day>/reconcile")
@staff_page(*ADMINS)
def statement_reconcile(partner_id: int, day: str) -> Any:
    partner, on = _partner_day(partner_id, day)
    form = ReconcileForm()
    if not form.validate_on_submit():
        flash("; ".join(str(m) for ms in form.errors.values() for m in ms), "error")
        return _back(partner, on)
    upload = form.file.data
    try:
        record = reconcile.reconcile(
            db.session(),
            g.user,
            partner,
            on,
            filename=upload.filename or "upload.csv",
            content=upload.read(MAX_UPLOAD),
        )
    except DomainError as exc:
        db.session.rollback()
        flash(_message(exc), "error")
    else:
        db.session.commit()
        flash(
            gettext(
                "对账完成:一致 %(m)s 笔,不一致 %(x)s 笔,我方缺少 %(e)s 笔,商户缺少 %(s)s 笔",
                m=record.matched_count,
                x=record.mismatched_count,
                e=record.extra_count,
                s=record.missing_count,
            ),
            "success",
        )
    return _back(partner, on)


MAX_UPLOAD = 10 * 1024 * 1024


def _message(exc: DomainError) -> str:
    return exc.message or str(MESSAGES.get(exc.code, exc.code))


def _confirm(form: Any, partner: Partner, on: date, title: str, warning: str) -> Any:
    return render_template(
        "admin/confirm.html",
        form=form,
        title=title,
        warning=warning,
        submit=title,
        facts=[(gettext("商户"), partner.name), (gettext("营业日"), on.isoformat())],
        back_url=url_for("admin.statement", partner_id=partner.id, day=on.isoformat()),
    ), (400 if form.errors else 200)
