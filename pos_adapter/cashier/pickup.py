"""The cashier's pickup page (取货) at /cashier/pickup: goods reserved online.

The cashier scans the household's pickup QR (the scanner gun types the eight digits and
Enter) or types the code read aloud, sees the holder and the goods, unticks what is missing,
and confirms; the receipt is the pickup's payment. Plain forms, no script. Routes of the
cashier blueprint (same login, CSRF, headers and error pages), kept apart from the till.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext

from mall.errors import NotFound, ValidationFailed
from mall.extensions import db
from mall.payments.models import Payment
from mall.payments.services import ItemRequest, holder_view
from mall.reservations import services as reservations
from mall.subjects.models import CreditSubject
from pos_adapter.cashier.views import (
    MAX_QTY,
    _actor,
    _ctx,
    _message,
    _refusal,
    _run_once,
    bp,
    cashier_page,
)


def _view(code: str) -> dict[str, Any]:
    s = db.session()
    reservation = reservations.find_for_partner(s, _ctx().partner.id, code)
    subject = s.get(CreditSubject, reservation.subject_id)
    assert subject is not None
    return {
        **reservations.reservation_dict(s, reservation),
        "holder": holder_view(s, subject),
        "past_deadline": reservations.is_past_deadline(reservation),
    }


def _page(code: str = "", *, error: str | None = None, status: int = 200) -> tuple[str, int]:
    r = None
    if code:
        try:
            r = _view(code)
        except NotFound:
            if error is None:
                error, status = gettext("没有找到这个取货码的预约,请核对后重新输入"), 404
    return (
        render_template(
            "cashier/pickup.html",
            code=code[:40],
            r=r,
            error=error,
            idempotency_key=secrets.token_urlsafe(24),
        ),
        status,
    )


@bp.get("/pickup")
@cashier_page
def pickup() -> Any:
    """Enter or scan the pickup code; with `?code=` show that reservation."""
    return _page(request.args.get("code", "").strip())


def _handed_over() -> list[ItemRequest]:
    skus, qtys = request.form.getlist("item_sku"), request.form.getlist("item_qty")
    if len(skus) != len(qtys) or len(skus) > 50:
        raise ValidationFailed(details={"fields": {"items": ["mismatched"]}})
    items = []
    for sku, qty in zip(skus, qtys, strict=True):
        text = qty.strip() or "0"
        if not text.isascii() or not text.isdigit() or int(text) > MAX_QTY:
            raise ValidationFailed(details={"fields": {"items": [f"0 to {MAX_QTY}"]}})
        items.append(ItemRequest(sku[:40], int(text)))
    return items


@bp.post("/pickup/<string:code>")
@cashier_page
def pickup_confirm(code: str) -> Any:
    """Hand the goods over, once per form (the hidden idempotency key)."""
    s = db.session()
    ctx = _ctx()
    try:
        items = _handed_over()
    except ValidationFailed as exc:
        return _page(code, error=_message(exc.code, exc.details), status=400)

    def work() -> Any:
        reservation = reservations.pickup(
            s,
            ctx.partner,
            code,
            items,
            actor=_actor(),
            terminal_id=ctx.terminal.id,
            cashier_user_id=ctx.user.id,
        )
        payment = s.get(Payment, reservation.payment_id)
        assert payment is not None
        return {"payment_id": payment.public_id}, 200

    resp = _run_once(work)
    if resp.status_code == 200:
        payment_id = json.loads(resp.get_data(as_text=True))["payment_id"]
        flash(gettext("已取货,积分已扣除"), "success")
        return redirect(url_for("cashier.receipt", payment_id=payment_id), 303)
    s.expire_all()
    err_code, details = _refusal(resp)
    if err_code == "validation_error":
        message = gettext("请至少交付一件商品;一件都没有请让农户取消预约")
    elif err_code == "invalid_state":
        message = gettext("该预约已取货、已取消或已过期,不能再取货")
    else:
        message = _message(err_code, details)
    return _page(code, error=message, status=resp.status_code)


__all__ = ["pickup", "pickup_confirm"]
