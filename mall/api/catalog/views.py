"""Staff API for catalogue goods: /api/v1/admin/partners/<id>/goods, /api/v1/admin/goods/<id>."""

from __future__ import annotations

from typing import Any

from flask import g
from flask.views import MethodView
from marshmallow import fields, validate

from mall.audit import services as audit
from mall.catalog import services
from mall.catalog.models import Goods
from mall.extensions import db
from mall.http.auth import BEARER_SECURITY, require_staff
from mall.http.openapi import BaseSchema, Blueprint
from mall.partners.models import Partner
from mall.users.policy import ADMIN_ROLES, READER_ROLES
from mall.users.scope import ensure_visible

blp = Blueprint("admin_catalog", __name__, url_prefix="/api/v1/admin", description="Catalogue")


class AdminGoodsOut(BaseSchema):
    id = fields.Integer()
    partner_id = fields.Integer()
    sku = fields.String()
    name = fields.String()
    points_price = fields.Integer()
    settlement_price_fen = fields.Integer()
    stock = fields.Integer()
    min_level_rank = fields.Integer(allow_none=True)
    active = fields.Boolean()


class AdminGoodsList(BaseSchema):
    items = fields.List(fields.Nested(AdminGoodsOut))


class AdminGoodsEdit(BaseSchema):
    name = fields.String(validate=validate.Length(min=1, max=100))
    points_price = fields.Integer(strict=True, validate=validate.Range(min=1, max=10_000_000))
    settlement_price_fen = fields.Integer(
        strict=True, validate=validate.Range(min=0, max=100_000_000)
    )
    stock = fields.Integer(strict=True, validate=validate.Range(min=0, max=10_000_000))
    min_level_rank = fields.Integer(
        strict=True, allow_none=True, validate=validate.Range(min=1, max=20)
    )
    active = fields.Boolean()


class AdminGoodsCreate(AdminGoodsEdit):
    sku = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_.-]{1,40}$"))
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    points_price = fields.Integer(
        strict=True, required=True, validate=validate.Range(min=1, max=10_000_000)
    )
    settlement_price_fen = fields.Integer(
        strict=True, required=True, validate=validate.Range(min=0, max=100_000_000)
    )


def _partner(partner_id: int) -> Partner:
    partner: Partner = ensure_visible(g.user, db.session.get(Partner, partner_id))
    return partner


def _record(action: str, goods: Goods, before: dict[str, Any] | None = None) -> None:
    audit.record(
        db.session(),
        actor=g.user,
        action=action,
        object_type="goods",
        object_id=goods.id,
        county_id=goods.county_id,
        township_id=goods.township_id,
        before=before,
        after=AdminGoodsOut().dump(goods),
    )


@blp.route("/partners/<int:partner_id>/goods")
class PartnerGoods(MethodView):
    @require_staff(*READER_ROLES)
    @blp.response(200, AdminGoodsList)
    @blp.doc(security=BEARER_SECURITY)
    def get(self, partner_id: int) -> dict[str, Any]:
        return {"items": services.list_goods(db.session(), _partner(partner_id).id)}

    @require_staff(*ADMIN_ROLES)
    @blp.arguments(AdminGoodsCreate)
    @blp.response(201, AdminGoodsOut)
    @blp.doc(security=BEARER_SECURITY)
    def post(self, data: dict[str, Any], partner_id: int) -> Goods:
        """Add goods to a partner's catalogue (audited)."""
        goods = services.create_goods(db.session(), _partner(partner_id), **data)
        _record("goods.create", goods)
        db.session.commit()
        return goods


@blp.route("/goods/<int:goods_id>")
class GoodsItem(MethodView):
    @require_staff(*ADMIN_ROLES)
    @blp.arguments(AdminGoodsEdit)
    @blp.response(200, AdminGoodsOut)
    @blp.doc(security=BEARER_SECURITY)
    def patch(self, data: dict[str, Any], goods_id: int) -> Goods:
        """Edit price, stock, minimum level or availability (audited with before)."""
        goods = services.get_goods(db.session(), goods_id)
        _partner(goods.partner_id)
        before = services.update_goods(db.session(), goods, data)
        _record("goods.update", goods, before)
        db.session.commit()
        return goods
