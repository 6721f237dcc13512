"""Settlement (结算): the partners' daily statements (mall.payments.statements). Closing a day,
marking it paid and reconciliation uploads belong to the settlement issue; until its services
exist the page says so instead of offering buttons that would do nothing."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import Response, g, render_template, request
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from admin import queries
from admin.common import READERS, arg_date, arg_int, export_response, in_scope
from admin.nav import NAV_ITEMS, NavItem
from admin.views import bp, staff_page
from mall.clock import business_date
from mall.extensions import db
from mall.partners.models import Partner
from mall.payments.statements import daily_statement, statement_csv

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


@bp.get("/settlement/<int:partner_id>/<day>")
@staff_page(*READERS)
def statement(partner_id: int, day: str) -> Any:
    partner: Partner = in_scope(g.user, db.session.get(Partner, partner_id))
    try:
        on = date.fromisoformat(day)
    except ValueError:
        from mall.errors import NotFound

        raise NotFound() from None
    data = daily_statement(db.session(), partner.id, on)
    if request.args.get("format") == "csv":
        return Response(
            statement_csv(data),
            mimetype="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="statement-{partner.id}-{on}.csv"'
            },
        )
    rows = [(label, data[key], key.endswith("_fen")) for key, label in STATEMENT_LABELS.items()]
    return render_template("admin/statement.html", partner=partner, day=on, data=data, rows=rows)
