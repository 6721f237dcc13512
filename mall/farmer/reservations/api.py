"""Farmer API additions (/api/v1/me/reservations): reserve, list, show (or its pickup QR),
cancel. Behind a farmer access token like the rest of /api/v1/me; a household reaches only
its own reservations."""

from __future__ import annotations

from typing import Any

from flask import Response, g, request
from flask.views import MethodView

from mall.codes import qr
from mall.errors import ValidationFailed
from mall.extensions import db
from mall.http.auth import BEARER_SECURITY, require_farmer
from mall.http.openapi import Blueprint
from mall.payments.services import ItemRequest
from mall.reservations import services
from mall.reservations.schemas import (
    ReservationArgs,
    ReservationIn,
    ReservationList,
    ReservationOut,
)

blp = Blueprint(
    "farmer_reservations",
    __name__,
    url_prefix="/api/v1/me/reservations",
    description="Farmer API v1 additions: reserve points goods, pick them up at the shop",
)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_IMAGE_DOC = {
    "responses": {
        "200": {
            "description": "the reservation, or with `?format=png|svg` its pickup code as QR",
            "content": {
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "image/svg+xml": {"schema": {"type": "string"}},
            },
        }
    }
}


def _client_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= 64 or not key.isprintable():
        raise ValidationFailed("idempotency_key_required")
    return key


@blp.route("")
class MyReservations(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, ReservationList)
    @require_farmer
    def get(self) -> tuple[dict[str, Any], int, dict[str, str]]:
        """The household's reservations, newest first (the latest 50)."""
        s = db.session()
        rows = services.list_for_subject(s, g.subject)
        return {"items": [services.reservation_dict(s, r) for r in rows]}, 200, NO_STORE

    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(ReservationIn)
    @blp.response(201, ReservationOut)
    @blp.alt_response(403, description="holder_suspended, level_too_low, partner_not_eligible")
    @blp.alt_response(404, description="not_found: partner or goods")
    @blp.alt_response(
        409, description="out_of_stock, insufficient_points, reservation_limit_reached"
    )
    @require_farmer
    def post(self, body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Reserve goods at a partner: points held, stock set aside, a pickup code issued.
        An optional `Idempotency-Key` header makes a retry return the same reservation."""
        s = db.session()
        reservation = services.reserve(
            s,
            g.subject,
            body["partner_id"],
            [ItemRequest(i["sku"], i["qty"]) for i in body["items"]],
            client_key=_client_key(),
        )
        s.commit()
        return services.reservation_dict(s, reservation), 201, NO_STORE


@blp.route("/<string:reservation_id>")
class MyReservation(MethodView):
    @blp.doc(security=BEARER_SECURITY, **_IMAGE_DOC)
    @blp.arguments(ReservationArgs, location="query")
    @blp.response(200, ReservationOut)
    @require_farmer
    def get(self, args: dict[str, str], reservation_id: str) -> Any:
        """One reservation; `?format=png|svg` gives its pickup code as a QR image."""
        s = db.session()
        reservation = services.get_for_subject(s, g.subject, reservation_id)
        if args["format"] == "json":
            return services.reservation_dict(s, reservation), 200, NO_STORE
        if args["format"] == "png":
            resp = Response(qr.render_png(reservation.pickup_code), mimetype="image/png")
        else:
            resp = Response(qr.render_svg(reservation.pickup_code), mimetype="image/svg+xml")
        resp.headers.update(NO_STORE)
        return resp


@blp.route("/<string:reservation_id>/cancel")
class CancelReservation(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, ReservationOut)
    @blp.alt_response(409, description="invalid_state: picked up, cancelled or expired")
    @require_farmer
    def post(self, reservation_id: str) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Cancel before pickup: the points and the stock are released."""
        s = db.session()
        reservation = services.cancel(s, g.subject, reservation_id)
        s.commit()
        return services.reservation_dict(s, reservation), 200, NO_STORE
