"""Schemas of the reservation endpoints (farmer API and POS API additions)."""

from __future__ import annotations

from marshmallow import fields, validate

from mall.schema_base import BaseSchema

SKU = validate.Regexp(r"^[A-Za-z0-9_.-]{1,40}$")


class ReservationItemIn(BaseSchema):
    sku = fields.String(required=True, validate=SKU)
    qty = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=999))


class PickupItemIn(BaseSchema):
    sku = fields.String(required=True, validate=SKU)
    qty = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=999))


class ReservationIn(BaseSchema):
    partner_id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    items = fields.List(
        fields.Nested(ReservationItemIn), required=True, validate=validate.Length(min=1, max=20)
    )


class ReservationArgs(BaseSchema):
    format = fields.String(load_default="json", validate=validate.OneOf(("json", "png", "svg")))


class ReservationPartnerOut(BaseSchema):
    id = fields.Integer()
    name = fields.String()
    address = fields.String()


class ReservationItemOut(BaseSchema):
    sku = fields.String()
    name = fields.String()
    qty = fields.Integer()
    points_price = fields.Integer()
    points = fields.Integer()
    picked_qty = fields.Integer(
        allow_none=True, metadata={"description": "handed over (after pickup)"}
    )


class ReservationOut(BaseSchema):
    reservation_id = fields.String()
    status = fields.String(metadata={"description": "open, picked_up, cancelled, expired"})
    status_label = fields.String()
    pickup_code = fields.String(metadata={"description": "8 digits, shown to the cashier"})
    pickup_code_display = fields.String(metadata={"description": "as read aloud: 1234 5678"})
    partner = fields.Nested(ReservationPartnerOut)
    items = fields.List(fields.Nested(ReservationItemOut))
    points_total = fields.Integer(metadata={"description": "points held"})
    picked_points = fields.Integer(allow_none=True, metadata={"description": "points spent"})
    expires_at = fields.DateTime(metadata={"description": "pick up before this"})
    collect_by = fields.Date(metadata={"description": "the last local day to collect"})
    created_at = fields.DateTime()
    resolved_at = fields.DateTime(allow_none=True)
    end_reason = fields.String(
        allow_none=True,
        metadata={"description": "cancelled_by_household or not_collected_in_time"},
    )
    end_reason_label = fields.String(allow_none=True)
    payment_id = fields.String(allow_none=True, metadata={"description": "the pickup's payment"})


class ReservationList(BaseSchema):
    items = fields.List(fields.Nested(ReservationOut))


class ReservationHolderOut(BaseSchema):
    display_name = fields.String(metadata={"description": "masked"})
    village = fields.String()
    level = fields.Dict(allow_none=True)


class PosReservationOut(ReservationOut):
    holder = fields.Nested(ReservationHolderOut)


class PosPickupIn(BaseSchema):
    items = fields.List(
        fields.Nested(PickupItemIn),
        load_default=None,
        validate=validate.Length(max=20),
        metadata={"description": "what was handed over; omitted: everything reserved"},
    )
