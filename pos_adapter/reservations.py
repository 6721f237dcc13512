"""POS API v1 additions: pickup of goods reserved online (docs/pos-api.md, section 8).

`GET /pos/v1/reservations/{pickup_code}` shows the reservation to the till (this partner's
only: any other code answers not_found); `POST .../pickup` hands the goods over under an
Idempotency-Key. Thin over `mall.reservations.services`, signed like every POS request.
"""

from __future__ import annotations

from typing import Any

from flask import g
from marshmallow import fields

from mall.extensions import db
from mall.http.openapi import Blueprint
from mall.partners.models import Partner
from mall.payments.models import Payment
from mall.payments.services import ItemRequest, holder_view
from mall.reservations import services
from mall.reservations.models import Reservation
from mall.reservations.schemas import PosPickupIn, PosReservationOut
from mall.subjects.models import CreditSubject
from pos_adapter.schemas import PosPaymentOut
from pos_adapter.views import SIGNED, payment_dict, terminal_request

blp = Blueprint(
    "pos_reservations",
    __name__,
    url_prefix="/pos/v1/reservations",
    description="POS API v1 additions: pick up goods reserved online (signed, idempotent)",
)


class PosPickupOut(PosReservationOut):
    payment = fields.Nested(PosPaymentOut, metadata={"description": "as GET /payments/{id}"})


def _partner() -> Partner:
    partner: Partner = g.partner
    return partner


def _view(reservation: Reservation) -> dict[str, Any]:
    s = db.session()
    subject = s.get(CreditSubject, reservation.subject_id)
    assert subject is not None
    holder = holder_view(s, subject)
    return {
        **services.reservation_dict(s, reservation),
        "holder": {k: holder[k] for k in ("display_name", "village", "level")},
    }


@blp.get("/<string:pickup_code>")
@terminal_request()
@blp.response(200, PosReservationOut)
@blp.alt_response(404, description="not_found: no reservation of this partner has this code")
@blp.doc(security=SIGNED)
def get_reservation(pickup_code: str) -> dict[str, Any]:
    """The reservation behind a pickup code: holder (masked), goods, status, deadline."""
    return _view(services.find_for_partner(db.session(), _partner().id, pickup_code))


@blp.post("/<string:pickup_code>/pickup")
@terminal_request(idempotent=True)
@blp.arguments(PosPickupIn)
@blp.response(200, PosPickupOut)
@blp.alt_response(409, description="invalid_state: picked up, cancelled, expired")
@blp.doc(security=SIGNED)
def pickup(data: dict[str, Any], pickup_code: str) -> dict[str, Any]:
    """Hand the goods over: the held points are spent (for less when `items` lists fewer
    than reserved; the rest of the hold and the missing stock are released)."""
    s = db.session()
    items = data["items"]
    reservation = services.pickup(
        s,
        _partner(),
        pickup_code,
        None if items is None else [ItemRequest(i["sku"], i["qty"]) for i in items],
        actor=f"terminal:{g.terminal.terminal_id}",
        terminal_id=g.terminal.id,
    )
    payment = s.get(Payment, reservation.payment_id)
    assert payment is not None
    return {**_view(reservation), "payment": payment_dict(payment, with_balances=True)}
