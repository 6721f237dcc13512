"""Staff API: /api/v1/admin/settlement (region-scoped; writes audited, one commit each)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import Response, g
from flask.views import MethodView
from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.api.settlement.schemas import (
    ReconcileFiles,
    ReconcileForm,
    ReconciliationListArgs,
    ReconciliationOut,
    ReconciliationPage,
    SettlementCloseIn,
    SettlementDayOut,
    SettlementFormatArgs,
    SettlementOutstandingList,
    SettlementPayIn,
    SettlementPeriodArgs,
    SettlementPeriodOut,
    SettlementReopenIn,
    SettlementStatementOut,
)
from mall.daybook.models import SettlementStatement
from mall.errors import NotFound, ValidationFailed
from mall.extensions import db
from mall.http.auth import BEARER_SECURITY, require_staff
from mall.http.openapi import Blueprint, page
from mall.partners.services import visible_partner
from mall.reports.exports import export
from mall.settlement import closing, payout, reconcile, statements
from mall.settlement.access import READERS, SETTLERS, UPLOADERS, restrict_to_user
from mall.settlement.models import Reconciliation

blp = Blueprint(
    "admin_settlement",
    __name__,
    url_prefix="/api/v1/admin/settlement",
    description="Settlement with partners (结算): statements, closing, payout, reconciliation",
)

MAX_PERIOD_DAYS = 92
MAX_UPLOAD = 10 * 1024 * 1024


def _s() -> Session:
    return db.session()


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(details={"fields": {"business_date": ["YYYY-MM-DD"]}}) from None


def _statement(statement_id: int) -> SettlementStatement:
    statement = closing.get_statement(_s(), statement_id)
    visible_partner(_s(), g.user, statement.partner_id)
    return statement


def _file(body: bytes, mimetype: str, name: str) -> Response:
    resp = Response(body, mimetype=mimetype)
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return resp


@blp.route("/statements")
class Period(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @require_staff(*READERS)
    @blp.arguments(SettlementPeriodArgs, location="query")
    @blp.response(
        200, SettlementPeriodOut, description="JSON, or ?format=csv|xlsx (Chinese headers)"
    )
    def get(self, args: dict[str, Any]) -> Any:
        """A partner's statements of a period (at most 92 days): each day, and the totals."""
        first, last = args["date_from"], args["date_to"]
        if last < first or (last - first) > timedelta(days=MAX_PERIOD_DAYS - 1):
            raise ValidationFailed(details={"fields": {"to": ["1 to 92 days after from"]}})
        partner = visible_partner(_s(), g.user, args["partner_id"])
        period = statements.period_statement(_s(), partner, first, last)
        if args["format"] != "json":
            rows = [view.row() for view in period.days]
            rows.append(
                [partner.id, partner.name, "合计", None, None, *period.totals.values(), None, None]
            )
            body, mimetype, ext = export(args["format"], "结算单", statements.HEADERS, rows)
            name = f"statement-{partner.id}-{first.isoformat()}-{last.isoformat()}.{ext}"
            return _file(body, mimetype, name)
        return {
            "partner_id": partner.id,
            "date_from": first,
            "date_to": last,
            "days": [view.as_dict() for view in period.days],
            "totals": period.totals,
        }


@blp.route("/statements/<int:partner_id>/<string:business_date>")
class Day(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @require_staff(*READERS)
    @blp.arguments(SettlementFormatArgs, location="query")
    @blp.response(200, SettlementDayOut, description="JSON, or ?format=csv|xlsx (Chinese headers)")
    def get(self, args: dict[str, Any], partner_id: int, business_date: str) -> Any:
        """A partner's day: the current statement (frozen if closed) and every version."""
        day = _day(business_date)
        partner = visible_partner(_s(), g.user, partner_id)
        view = statements.day_statement(_s(), partner, day)
        if args["format"] != "json":
            body, mimetype, ext = export(args["format"], "结算单", statements.HEADERS, [view.row()])
            return _file(body, mimetype, f"statement-{partner.id}-{day.isoformat()}.{ext}")
        return {"statement": view.as_dict(), "versions": statements.history(_s(), partner.id, day)}


@blp.route("/statements/<int:partner_id>/<string:business_date>/close")
class Close(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @require_staff(*SETTLERS)
    @blp.arguments(SettlementCloseIn)
    @blp.response(200, SettlementStatementOut)
    def post(self, _data: dict[str, Any], partner_id: int, business_date: str) -> Any:
        """Close a past business date now (audited); its figures never change afterwards."""
        day = _day(business_date)
        partner = visible_partner(_s(), g.user, partner_id)
        closing.close_statement(_s(), g.user, partner, day)
        view = statements.day_statement(_s(), partner, day)
        _s().commit()
        return view.as_dict()


@blp.route("/statements/<int:statement_id>/reopen")
class Reopen(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @require_staff(*SETTLERS)
    @blp.arguments(SettlementReopenIn)
    @blp.response(201, SettlementStatementOut)
    def post(self, data: dict[str, Any], statement_id: int) -> Any:
        """Reopen a closed statement: a new open version (audited, with the reason)."""
        statement = _statement(statement_id)
        new = closing.reopen_statement(_s(), g.user, statement, data["reason"])
        partner = visible_partner(_s(), g.user, new.partner_id)
        view = statements.day_statement(_s(), partner, new.business_date)
        _s().commit()
        return view.as_dict()


@blp.route("/statements/<int:statement_id>/pay")
class Pay(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @require_staff(*SETTLERS)
    @blp.arguments(SettlementPayIn)
    @blp.response(200, SettlementStatementOut)
    def post(self, data: dict[str, Any], statement_id: int) -> Any:
        """Mark a closed statement paid (reference, date): the ledger moves the partner's
        payables to settled payouts. Repeating the same request changes nothing."""
        statement = _statement(statement_id)
        payout.mark_paid(
            _s(), g.user, statement, reference=data["reference"], paid_on=data["paid_on"]
        )
        partner = visible_partner(_s(), g.user, statement.partner_id)
        view = statements.day_statement(_s(), partner, statement.business_date)
        _s().commit()
        return view.as_dict()


@blp.route("/outstanding")
class OutstandingPayables(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @require_staff(*READERS)
    @blp.response(200, SettlementOutstandingList)
    def get(self) -> Any:
        """What is owed to each visible partner now, from the ledger's payable balances."""
        return {"items": payout.outstanding_payables(_s(), g.user)}


@blp.route("/reconciliations")
class Reconciliations(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @require_staff(*READERS)
    @blp.arguments(ReconciliationListArgs, location="query")
    @blp.response(200, ReconciliationPage)
    def get(self, args: dict[str, Any]) -> Any:
        """Uploaded reconciliations visible to the caller, newest first."""
        stmt = restrict_to_user(
            select(Reconciliation),
            g.user,
            partner_col=Reconciliation.partner_id,
            county_col=Reconciliation.county_id,
            township_col=Reconciliation.township_id,
        )
        if args["partner_id"] is not None:
            stmt = stmt.where(Reconciliation.partner_id == args["partner_id"])
        if args["cursor"] is not None:
            stmt = stmt.where(Reconciliation.id < args["cursor"])
        rows = list(_s().scalars(stmt.order_by(Reconciliation.id.desc()).limit(args["limit"])))
        return page(rows, args["limit"])

    @blp.doc(security=BEARER_SECURITY)
    @require_staff(*UPLOADERS)
    @blp.arguments(ReconcileForm, location="form")
    @blp.arguments(ReconcileFiles, location="files")
    @blp.response(201, ReconciliationOut)
    def post(self, form: dict[str, Any], files: dict[str, Any]) -> Any:
        """Upload the partner's record of a day (.csv or .xlsx, docs/settlement.md) and get
        the matched, mismatched, missing and extra rows. Stored with the file (audited)."""
        partner = visible_partner(_s(), g.user, form["partner_id"])
        upload = files["file"]
        content = upload.read(MAX_UPLOAD + 1)
        if len(content) > MAX_UPLOAD:
            raise ValidationFailed(details={"fields": {"file": ["at most 10 MB"]}})
        record = reconcile.reconcile(
            _s(),
            g.user,
            partner,
            form["business_date"],
            filename=upload.filename or "upload.csv",
            content=content,
        )
        _s().commit()
        return record


@blp.route("/reconciliations/<int:reconciliation_id>")
class ReconciliationOne(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @require_staff(*READERS)
    @blp.response(200, ReconciliationOut)
    def get(self, reconciliation_id: int) -> Any:
        """One reconciliation with its full result."""
        record = (
            _s().get(Reconciliation, reconciliation_id) if 0 < reconciliation_id < 2**63 else None
        )
        if record is None:
            raise NotFound()
        visible_partner(_s(), g.user, record.partner_id)
        return record
