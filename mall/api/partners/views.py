"""Staff API for partners and their terminals: /api/v1/admin/partners, /api/v1/admin/terminals.

Scoped by region (mall.users.scope) and audited. A terminal's secret appears in exactly two
responses: its creation and its rotation.
"""

from __future__ import annotations

from typing import Any

from flask import g
from flask.views import MethodView
from marshmallow import fields, validate
from sqlalchemy import select

from mall.audit import services as audit
from mall.extensions import db
from mall.http.auth import BEARER_SECURITY, require_staff
from mall.http.openapi import BaseSchema, Blueprint, PageArgs, page
from mall.partners.models import PARTNER_CATEGORIES, Partner, Terminal
from mall.partners.services import (
    create_partner,
    create_terminal,
    partner_snapshot,
    rotate_terminal_secret,
    set_terminal_active,
    update_partner,
    visible_partner,
    visible_terminal,
)
from mall.regions.services import get_region
from mall.users.scope import ensure_can_write, ensure_visible, restrict

blp = Blueprint(
    "admin_partners", __name__, url_prefix="/api/v1/admin", description="Partners and terminals"
)
ADMINS = ("county_admin", "township_admin")
READERS = (*ADMINS, "auditor")


class AdminPartnerOut(BaseSchema):
    id = fields.Integer()
    county_id = fields.Integer()
    township_id = fields.Integer()
    name = fields.String()
    category = fields.String()
    address = fields.String()
    contact_name = fields.String()
    contact_phone_masked = fields.String()
    accepts_integrity = fields.Boolean()
    accepts_points = fields.Boolean()
    active = fields.Boolean()
    created_at = fields.DateTime()


class AdminPartnerPage(BaseSchema):
    items = fields.List(fields.Nested(AdminPartnerOut))
    next_cursor = fields.Integer(allow_none=True)


class AdminPartnerCreate(BaseSchema):
    township_id = fields.Integer(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    category = fields.String(required=True, validate=validate.OneOf(PARTNER_CATEGORIES))
    address = fields.String(load_default="", validate=validate.Length(max=200))
    contact_name = fields.String(load_default="", validate=validate.Length(max=64))
    contact_phone = fields.String(load_default="", validate=validate.Regexp(r"^(1\d{10})?$"))
    accepts_integrity = fields.Boolean(load_default=True)
    accepts_points = fields.Boolean(load_default=False)


class AdminPartnerEdit(BaseSchema):
    name = fields.String(validate=validate.Length(min=1, max=100))
    address = fields.String(validate=validate.Length(max=200))
    contact_name = fields.String(validate=validate.Length(max=64))
    accepts_integrity = fields.Boolean()
    accepts_points = fields.Boolean()
    active = fields.Boolean()


class AdminTerminalOut(BaseSchema):
    id = fields.Integer()
    terminal_id = fields.String()
    partner_id = fields.Integer()
    name = fields.String()
    active = fields.Boolean()
    created_at = fields.DateTime()
    secret_rotated_at = fields.DateTime(allow_none=True)
    last_seen_at = fields.DateTime(allow_none=True)


class AdminTerminalWithSecret(AdminTerminalOut):
    secret = fields.String(metadata={"description": "shown once; store it in the till"})


class AdminTerminalList(BaseSchema):
    items = fields.List(fields.Nested(AdminTerminalOut))


class AdminTerminalCreate(BaseSchema):
    name = fields.String(load_default="", validate=validate.Length(max=100))


def _partner(partner_id: int) -> Partner:
    return visible_partner(db.session(), g.user, partner_id)


def _terminal(terminal_pk: int) -> tuple[Terminal, Partner]:
    return visible_terminal(db.session(), g.user, terminal_pk)


@blp.route("/partners")
class Partners(MethodView):
    @require_staff(*READERS)
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, AdminPartnerPage)
    @blp.doc(security=BEARER_SECURITY)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Partners in the caller's region, newest first."""
        stmt = restrict(
            select(Partner), g.user, county_col=Partner.county_id, township_col=Partner.township_id
        )
        if args["cursor"]:
            stmt = stmt.where(Partner.id < args["cursor"])
        rows = list(db.session.scalars(stmt.order_by(Partner.id.desc()).limit(args["limit"])))
        return page(rows, args["limit"])

    @require_staff(*ADMINS)
    @blp.arguments(AdminPartnerCreate)
    @blp.response(201, AdminPartnerOut)
    @blp.alt_response(409, description="conflict: a partner of this name is in the township")
    @blp.doc(security=BEARER_SECURITY)
    def post(self, data: dict[str, Any]) -> Partner:
        """Create a partner in a township of the caller's region (audited)."""
        ensure_can_write(g.user)
        township = ensure_visible(g.user, get_region(db.session(), data.pop("township_id")))
        partner = create_partner(db.session(), township=township, **data)
        audit.record(
            db.session(),
            actor=g.user,
            action="partner.create",
            object_type="partner",
            object_id=partner.id,
            county_id=partner.county_id,
            township_id=partner.township_id,
            after=partner_snapshot(partner),
        )
        db.session.commit()
        return partner


@blp.route("/partners/<int:partner_id>")
class PartnerItem(MethodView):
    @require_staff(*READERS)
    @blp.response(200, AdminPartnerOut)
    @blp.doc(security=BEARER_SECURITY)
    def get(self, partner_id: int) -> Partner:
        return _partner(partner_id)

    @require_staff(*ADMINS)
    @blp.arguments(AdminPartnerEdit)
    @blp.response(200, AdminPartnerOut)
    @blp.alt_response(409, description="conflict: a partner of this name is in the township")
    @blp.doc(security=BEARER_SECURITY)
    def patch(self, data: dict[str, Any], partner_id: int) -> Partner:
        """Edit a partner (audited with before and after)."""
        partner = _partner(partner_id)
        update_partner(db.session(), g.user, partner, data)
        db.session.commit()
        return partner


@blp.route("/partners/<int:partner_id>/terminals")
class PartnerTerminals(MethodView):
    @require_staff(*READERS)
    @blp.response(200, AdminTerminalList)
    @blp.doc(security=BEARER_SECURITY)
    def get(self, partner_id: int) -> dict[str, Any]:
        partner = _partner(partner_id)
        rows = db.session.scalars(
            select(Terminal).where(Terminal.partner_id == partner.id).order_by(Terminal.id)
        )
        return {"items": list(rows)}

    @require_staff(*ADMINS)
    @blp.arguments(AdminTerminalCreate)
    @blp.response(201, AdminTerminalWithSecret)
    @blp.doc(security=BEARER_SECURITY)
    def post(self, data: dict[str, Any], partner_id: int) -> dict[str, Any]:
        """Create a terminal; the response carries its secret, the only time it is shown."""
        partner = _partner(partner_id)
        terminal, secret = create_terminal(db.session(), partner, data["name"])
        _audit_terminal("terminal.create", terminal, partner)
        db.session.commit()
        return _with_secret(terminal, secret)


def _with_secret(terminal: Terminal, secret: str) -> dict[str, Any]:
    return {name: getattr(terminal, name) for name in AdminTerminalOut().fields} | {
        "secret": secret
    }


def _audit_terminal(action: str, terminal: Terminal, partner: Partner) -> None:
    audit.record(
        db.session(),
        actor=g.user,
        action=action,
        object_type="terminal",
        object_id=terminal.terminal_id,
        county_id=partner.county_id,
        township_id=partner.township_id,
        after={"active": terminal.active, "partner_id": partner.id},
    )


@blp.post("/terminals/<int:terminal_pk>/rotate")
@require_staff(*ADMINS)
@blp.response(200, AdminTerminalWithSecret)
@blp.doc(security=BEARER_SECURITY)
def rotate(terminal_pk: int) -> dict[str, Any]:
    """Give the terminal a new secret (shown once); the old one stops working at once."""
    terminal, partner = _terminal(terminal_pk)
    secret = rotate_terminal_secret(db.session(), terminal)
    _audit_terminal("terminal.rotate_secret", terminal, partner)
    db.session.commit()
    return _with_secret(terminal, secret)


@blp.post("/terminals/<int:terminal_pk>/disable")
@require_staff(*ADMINS)
@blp.response(200, AdminTerminalOut)
@blp.doc(security=BEARER_SECURITY)
def disable(terminal_pk: int) -> Terminal:
    """Disable a terminal: its next request answers terminal_disabled."""
    terminal, partner = _terminal(terminal_pk)
    set_terminal_active(db.session(), terminal, False)
    _audit_terminal("terminal.disable", terminal, partner)
    db.session.commit()
    return terminal


@blp.post("/terminals/<int:terminal_pk>/enable")
@require_staff(*ADMINS)
@blp.response(200, AdminTerminalOut)
@blp.doc(security=BEARER_SECURITY)
def enable(terminal_pk: int) -> Terminal:
    terminal, partner = _terminal(terminal_pk)
    set_terminal_active(db.session(), terminal, True)
    _audit_terminal("terminal.enable", terminal, partner)
    db.session.commit()
    return terminal
