"""Staff API: /api/v1/admin/reports (region-scoped reads; JSON, CSV or xlsx)."""

from __future__ import annotations

from typing import Any

from flask import Response, g
from flask.views import MethodView

from mall.api.reports.schemas import (
    BenefitReportArgs,
    BenefitUseReportOut,
    HouseholdLedgerReport,
    HouseholdReportArgs,
    HouseholdsByLevelReport,
    LevelReportArgs,
    MonthRangeArgs,
    PartnerLedgerReportOut,
)
from mall.extensions import db
from mall.http.auth import BEARER_SECURITY, require_staff
from mall.http.openapi import Blueprint
from mall.reports import queries
from mall.reports.exports import Cell, export
from mall.reports.scope import REPORT_ROLES, report_scope

blp = Blueprint(
    "admin_reports",
    __name__,
    url_prefix="/api/v1/admin/reports",
    description="Reports (统计报表) from the ledger, by region, partner and month",
)

GROUP_LABELS = {"county": "县", "township": "乡镇", "village": "村", "partner": "商户"}
MEASURE_LABELS = {
    "points_issued": "发放积分",
    "points_deducted": "扣减积分",
    "points_redeemed": "兑换积分",
    "points_expired": "过期积分",
    "points_other": "其他积分变动",
    "points_outstanding": "月末积分余额",
    "integrity_granted_fen": "发放诚信金(分)",
    "integrity_spent_fen": "使用诚信金(分)",
    "integrity_expired_fen": "过期诚信金(分)",
    "integrity_clawed_back_fen": "收回诚信金(分)",
    "integrity_other_fen": "其他诚信金变动(分)",
    "integrity_outstanding_fen": "月末诚信金余额(分)",
    "offline_shortfall_fen": "离线垫付(分)",
    "points_settled": "已结算积分",
    "fen_settled": "已结算金额(分)",
    "payable_points_outstanding": "月末应付积分",
    "payable_fen_outstanding": "月末应付金额(分)",
}


def _file(fmt: str, title: str, headers: list[str], rows: list[list[Cell]], name: str) -> Response:
    body, mimetype, ext = export(fmt, title, headers, rows)
    resp = Response(body, mimetype=mimetype)
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}.{ext}"'
    return resp


def _measure_table(
    group_by: str, measures: tuple[str, ...], rows: list[queries.ReportRow]
) -> tuple[list[str], list[list[Cell]]]:
    headers = [f"{GROUP_LABELS[group_by]}编号", GROUP_LABELS[group_by], "月份"]
    headers += [MEASURE_LABELS[m] for m in measures]
    return headers, [
        [r.group_id, r.group_name, r.month, *(r.values.get(m, 0) for m in measures)] for r in rows
    ]


@blp.route("/ledger")
class LedgerReport(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @require_staff(*REPORT_ROLES)
    @blp.arguments(HouseholdReportArgs, location="query")
    @blp.response(200, HouseholdLedgerReport, description="JSON, or ?format=csv|xlsx")
    def get(self, args: dict[str, Any]) -> Any:
        """Points issued, redeemed and outstanding; integrity money granted, spent, expired
        and outstanding (the fund's liability), by county, township or village and month."""
        scope = report_scope(db.session(), g.user, args["region_id"])
        first, last = queries.month_bounds(args["month_from"], args["month_to"])
        rows = queries.household_report(db.session(), scope, args["group_by"], first, last)
        if args["format"] != "json":
            headers, cells = _measure_table(args["group_by"], queries.HOUSEHOLD_MEASURES, rows)
            return _file(args["format"], "积分与诚信金", headers, cells, "ledger-report")
        return {"group_by": args["group_by"], "items": [r.as_dict() for r in rows]}


@blp.route("/partners")
class PartnerLedgerReport(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @require_staff(*REPORT_ROLES)
    @blp.arguments(MonthRangeArgs, location="query")
    @blp.response(200, PartnerLedgerReportOut, description="JSON, or ?format=csv|xlsx")
    def get(self, args: dict[str, Any]) -> Any:
        """Per partner and month: points redeemed, integrity money spent, shortfalls, what
        was settled, and the payables outstanding at month end."""
        scope = report_scope(db.session(), g.user, args["region_id"])
        first, last = queries.month_bounds(args["month_from"], args["month_to"])
        rows = queries.partner_report(db.session(), scope, first, last)
        if args["format"] != "json":
            headers, cells = _measure_table("partner", queries.PARTNER_MEASURES, rows)
            return _file(args["format"], "商户结算", headers, cells, "partner-report")
        return {"items": [r.as_dict() for r in rows]}


@blp.route("/benefit-uses")
class BenefitUseReport(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @require_staff(*REPORT_ROLES)
    @blp.arguments(BenefitReportArgs, location="query")
    @blp.response(200, BenefitUseReportOut, description="JSON, or ?format=csv|xlsx")
    def get(self, args: dict[str, Any]) -> Any:
        """Benefit uses by group, month and partner category."""
        scope = report_scope(db.session(), g.user, args["region_id"])
        first, last = queries.month_bounds(args["month_from"], args["month_to"])
        rows = queries.benefit_use_report(db.session(), scope, args["group_by"], first, last)
        if args["format"] != "json":
            label = GROUP_LABELS[args["group_by"]]
            headers = [f"{label}编号", label, "月份", "商户类别", "使用次数", "优惠金额(分)"]
            cells: list[list[Cell]] = [
                [
                    r["group_id"],
                    r["group_name"],
                    r["month"],
                    r["category"],
                    r["uses"],
                    r["value_fen"],
                ]
                for r in rows
            ]
            return _file(args["format"], "权益使用", headers, cells, "benefit-uses")
        return {"group_by": args["group_by"], "items": rows}


@blp.route("/households-by-level")
class HouseholdsByLevel(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @require_staff(*REPORT_ROLES)
    @blp.arguments(LevelReportArgs, location="query")
    @blp.response(200, HouseholdsByLevelReport, description="JSON, or ?format=csv|xlsx")
    def get(self, args: dict[str, Any]) -> Any:
        """Active households by current level (null: unrated), by county, township or village."""
        scope = report_scope(db.session(), g.user, args["region_id"])
        rows = queries.households_by_level(db.session(), scope, args["group_by"])
        if args["format"] != "json":
            label = GROUP_LABELS[args["group_by"]]
            headers = [f"{label}编号", label, "等级", "户数"]
            cells: list[list[Cell]] = [
                [r["group_id"], r["group_name"], r["level_code"] or "未评级", r["households"]]
                for r in rows
            ]
            return _file(args["format"], "农户等级", headers, cells, "households-by-level")
        return {"group_by": args["group_by"], "items": rows}
