"""The household's reservation pages at /m/reservations (server-rendered like the rest of /m/,
no JavaScript): choose goods at a shop and reserve, see the pickup code large and as a QR,
cancel, and see why a reservation ended. Same session, CSRF and headers as mall.farmer.pages.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext

from mall.codes import qr
from mall.errors import DomainError, ValidationFailed, error_body
from mall.extensions import db
from mall.farmer import services as farmer
from mall.farmer.pages import farmer_page, share_page_setup
from mall.payments.services import ItemRequest
from mall.reservations import services

bp = Blueprint(
    "reservation_pages",
    __name__,
    url_prefix="/m/reservations",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
share_page_setup(bp)

MAX_QTY_FIELD = 99


def _message(exc: DomainError) -> str:
    if exc.code == "reservation_limit_reached":
        if "max_open" in exc.details:
            return gettext(
                "您已有%(n)s个未取货的预约,请先取货或取消后再预约", n=exc.details["max_open"]
            )
        return gettext("每种商品每次最多预约%(n)s件", n=exc.details.get("max_qty_per_item"))
    if exc.code == "validation_error":
        return gettext("请至少选择一件商品")
    if exc.code == "insufficient_points":
        return gettext("积分不足,请减少数量")
    return str(error_body(exc.code)["error"]["message"])


def _qr_data_url(code: str) -> str:
    return "data:image/png;base64," + base64.b64encode(qr.render_png(code)).decode()


@bp.get("/")
@farmer_page
def mine() -> Any:
    s = db.session()
    rows = [services.reservation_dict(s, r) for r in services.list_for_subject(s, g.subject)]
    return render_template("reservations/list.html", rows=rows)


def _shops() -> list[dict[str, Any]]:
    return [p for p in farmer.partners(db.session(), g.subject) if p["accepts_points"]]


def _new_page(partner_id: int | None, *, error: str | None = None, status: int = 200) -> Any:
    s = db.session()
    shops = _shops()
    shop = next((p for p in shops if p["id"] == partner_id), None)
    goods = farmer.catalog(s, g.subject, partner_id=shop["id"]) if shop else []
    limits = services.limits_for(s, g.subject)
    return (
        render_template(
            "reservations/new.html",
            shops=shops,
            shop=shop,
            goods=goods,
            wallet=farmer.wallet(s, g.subject),
            limits=limits,
            max_field=min(limits.max_qty, MAX_QTY_FIELD),
            form_key=secrets.token_urlsafe(18),
            error=error,
        ),
        status,
    )


def _partner_arg(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isascii() and raw.isdigit() and len(raw) < 10 else None


@bp.get("/new")
@farmer_page
def new() -> Any:
    return _new_page(_partner_arg(request.args.get("partner_id")))


def _form_items() -> list[ItemRequest]:
    skus, qtys = request.form.getlist("sku"), request.form.getlist("qty")
    if len(skus) != len(qtys) or len(skus) > 200:
        raise ValidationFailed(details={"fields": {"items": ["mismatched"]}})
    items = []
    for sku, qty in zip(skus, qtys, strict=True):
        text = qty.strip()
        if not text:
            continue
        if not text.isascii() or not text.isdigit() or int(text) > MAX_QTY_FIELD:
            raise ValidationFailed(details={"fields": {"items": ["qty"]}})
        if int(text) > 0:
            items.append(ItemRequest(sku[:40], int(text)))
    return items


@bp.post("/new")
@farmer_page
def create() -> Any:
    partner_id = _partner_arg(request.form.get("partner_id"))
    key = request.form.get("form_key", "")[:64] or None
    s = db.session()
    try:
        if partner_id is None:
            raise ValidationFailed(details={"fields": {"partner_id": ["required"]}})
        reservation = services.reserve(
            s, g.subject, partner_id, _form_items(), client_key=key and f"page:{key}"
        )
    except DomainError as exc:
        s.rollback()
        return _new_page(partner_id, error=_message(exc), status=exc.status)
    s.commit()
    flash(gettext("预约成功,请凭取货码到店取货"), "success")
    return redirect(url_for("reservation_pages.detail", reservation_id=reservation.public_id), 303)


@bp.get("/<string:reservation_id>")
@farmer_page
def detail(reservation_id: str) -> Any:
    s = db.session()
    reservation = services.get_for_subject(s, g.subject, reservation_id)
    r = services.reservation_dict(s, reservation)
    image = _qr_data_url(reservation.pickup_code) if reservation.status == "open" else None
    return render_template("reservations/detail.html", r=r, qr_image=image)


@bp.post("/<string:reservation_id>/cancel")
@farmer_page
def cancel(reservation_id: str) -> Any:
    s = db.session()
    if request.form.get("confirm") != "yes":
        return redirect(url_for("reservation_pages.detail", reservation_id=reservation_id))
    try:
        services.cancel(s, g.subject, reservation_id)
    except DomainError as exc:
        s.rollback()
        if exc.code != "invalid_state":
            raise
        flash(gettext("该预约已取货、已取消或已过期,不能取消"), "error")
    else:
        s.commit()
        flash(gettext("已取消预约,积分和商品已退回"), "success")
    return redirect(url_for("reservation_pages.detail", reservation_id=reservation_id), 303)
