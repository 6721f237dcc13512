"""Staff API for earning rules and point batches: /api/v1/admin/points."""

from __future__ import annotations

from typing import Any

from flask import g
from flask.views import MethodView
from sqlalchemy.orm import Session

from mall.api.points.schemas import (
    BatchArgs,
    BatchIn,
    BatchOut,
    BatchPage,
    DecisionIn,
    ErrorArgs,
    ErrorPage,
    EventIn,
    EventOut,
    EventPage,
    ImportFiles,
    ImportForm,
    ImportOut,
    RejectIn,
    RuleArgs,
    RuleIn,
    RuleList,
    RuleOut,
    RulePatch,
)
from mall.errors import ValidationFailed
from mall.extensions import db
from mall.http.auth import require_staff
from mall.http.openapi import Blueprint, page
from mall.points import rules, services
from mall.regions.services import get_region
from mall.subjects.services import get_by_ref
from mall.users.policy import ADMIN_ROLES, STAFF_ROLES, WRITER_ROLES
from mall.users.scope import ensure_visible

blp = Blueprint(
    "admin_points", __name__, url_prefix="/api/v1/admin/points", description="Credit points (staff)"
)
MAX_UPLOAD = 20 * 1024 * 1024


def _s() -> Session:
    return db.session()


@blp.route("/rules")
class Rules(MethodView):
    @require_staff(*STAFF_ROLES)
    @blp.arguments(RuleArgs, location="query")
    @blp.response(200, RuleList)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The rules in force in a region (inherited from above, nearest first)."""
        region = ensure_visible(g.user, get_region(_s(), args["region_id"]))
        found = rules.effective_rules(_s(), region, include_inactive=True)
        return {"items": sorted(found.values(), key=lambda r: r.code)}

    @require_staff(*ADMIN_ROLES)
    @blp.arguments(RuleIn)
    @blp.response(201, RuleOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Add an earning (or deducting) rule for a county or township; audited."""
        region = get_region(_s(), data.pop("region_id"))
        rule = rules.create_rule(_s(), g.user, region, **data)
        _s().commit()
        return rule


@blp.route("/rules/<int:rule_id>")
class RuleOne(MethodView):
    @require_staff(*ADMIN_ROLES)
    @blp.arguments(RulePatch)
    @blp.response(200, RuleOut)
    def patch(self, data: dict[str, Any], rule_id: int) -> Any:
        rule = rules.update_rule(_s(), g.user, rules.get_rule(_s(), rule_id), data)
        _s().commit()
        return rule


@blp.route("/batches")
class Batches(MethodView):
    @require_staff(*STAFF_ROLES)
    @blp.arguments(BatchArgs, location="query")
    @blp.response(200, BatchPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Batches in the caller's region, newest first (keyset on id)."""
        rows = services.list_batches(
            _s(), g.user, status=args["status"], before_id=args["cursor"], limit=args["limit"]
        )
        return page(rows, args["limit"])

    @require_staff(*WRITER_ROLES)
    @blp.arguments(BatchIn)
    @blp.response(201, BatchOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Open a draft batch for single entries in a village or township."""
        batch = services.create_batch(_s(), g.user, data["region_id"])
        _s().commit()
        return batch


@blp.route("/batches/import")
class BatchImport(MethodView):
    @require_staff(*WRITER_ROLES)
    @blp.arguments(ImportForm, location="form")
    @blp.arguments(ImportFiles, location="files")
    @blp.response(201, ImportOut)
    def post(self, form: dict[str, Any], files: dict[str, Any]) -> dict[str, Any]:
        """Import events from .xlsx or .csv (户编号, 规则代码, 日期, 备注). Every bad row is
        reported; with any, nothing is applied unless `apply_good_rows` is true."""
        upload = files["file"]
        content = upload.read(MAX_UPLOAD + 1)
        if len(content) > MAX_UPLOAD:
            raise ValidationFailed(details={"fields": {"file": ["at most 20 MB"]}})
        result = services.import_events(
            _s(),
            g.user,
            form["region_id"],
            filename=upload.filename or "upload.csv",
            content=content,
            apply_good_rows=form["apply_good_rows"],
        )
        _s().commit()
        return {
            "batch": result.batch,
            "applied": result.applied,
            "errors": [{"row": n, "reason": r} for n, r in result.errors[:1000]],
        }


@blp.route("/batches/<int:batch_id>")
class BatchOne(MethodView):
    @require_staff(*STAFF_ROLES)
    @blp.response(200, BatchOut)
    def get(self, batch_id: int) -> Any:
        return services.get_batch(_s(), batch_id, g.user)


@blp.route("/batches/<int:batch_id>/events")
class BatchEvents(MethodView):
    @require_staff(*STAFF_ROLES)
    @blp.arguments(ErrorArgs, location="query")
    @blp.response(200, EventPage)
    def get(self, args: dict[str, Any], batch_id: int) -> dict[str, Any]:
        batch = services.get_batch(_s(), batch_id, g.user)
        after = args["after_row"] or None
        rows = services.batch_events(_s(), batch, after_id=after, limit=args["limit"])
        return {"items": rows, "next_cursor": rows[-1].id if len(rows) == args["limit"] else None}

    @require_staff(*WRITER_ROLES)
    @blp.arguments(EventIn)
    @blp.response(201, EventOut)
    def post(self, data: dict[str, Any], batch_id: int) -> Any:
        """Record one event in a draft batch."""
        batch = services.get_batch(_s(), batch_id, g.user)
        event = services.record_event(
            _s(),
            g.user,
            batch,
            subject=get_by_ref(_s(), data["household_ref"]),
            rule_code=data["rule_code"],
            occurred_on=data["occurred_on"],
            note=data["note"],
        )
        _s().commit()
        return event


@blp.route("/batches/<int:batch_id>/errors")
class BatchErrors(MethodView):
    @require_staff(*STAFF_ROLES)
    @blp.arguments(ErrorArgs, location="query")
    @blp.response(200, ErrorPage)
    def get(self, args: dict[str, Any], batch_id: int) -> dict[str, Any]:
        """The import's bad rows with reasons, by row number (keyset on row number)."""
        batch = services.get_batch(_s(), batch_id, g.user)
        rows = services.import_errors(_s(), batch, after_row=args["after_row"], limit=args["limit"])
        return {"items": [{"row": e.row_number, "reason": e.reason} for e in rows]}


@blp.route("/batches/<int:batch_id>/submit")
class BatchSubmit(MethodView):
    @require_staff(*WRITER_ROLES)
    @blp.response(200, BatchOut)
    def post(self, batch_id: int) -> Any:
        batch = services.submit_batch(_s(), g.user, services.get_batch(_s(), batch_id, g.user))
        _s().commit()
        return batch


@blp.route("/batches/<int:batch_id>/approve")
class BatchApprove(MethodView):
    @require_staff(*ADMIN_ROLES)
    @blp.arguments(DecisionIn)
    @blp.response(200, BatchOut)
    def post(self, data: dict[str, Any], batch_id: int) -> Any:
        """Approve (never one's own batch): points post from the township fund in bulk."""
        batch = services.approve_batch(_s(), g.user, batch_id, note=data["note"])
        _s().commit()
        return batch


@blp.route("/batches/<int:batch_id>/reject")
class BatchReject(MethodView):
    @require_staff(*ADMIN_ROLES)
    @blp.arguments(RejectIn)
    @blp.response(200, BatchOut)
    def post(self, data: dict[str, Any], batch_id: int) -> Any:
        batch = services.reject_batch(_s(), g.user, batch_id, data["reason"])
        _s().commit()
        return batch
