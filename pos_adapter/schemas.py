"""Request and response schemas of the POS API v1 (they make the OpenAPI description)."""

from __future__ import annotations

from marshmallow import fields, validate

from mall.http.openapi import BaseSchema
from mall.models_common import MAX_BILL_FEN

MAX_FEN = MAX_BILL_FEN
MAX_VERSION = 2**53 - 1  # a revocation list version: a BIGINT, and exact in JSON
Fen = fields.Integer


class PosItemIn(BaseSchema):
    sku = fields.String(required=True, validate=validate.Length(min=1, max=40))
    qty = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=999))


class PosCodeIn(BaseSchema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=1024))


class PosQuoteIn(PosCodeIn):
    amount_fen = fields.Integer(
        strict=True, required=True, validate=validate.Range(min=0, max=MAX_FEN)
    )
    items = fields.List(
        fields.Nested(PosItemIn), load_default=list, validate=validate.Length(max=50)
    )
    use_integrity = fields.Boolean(load_default=True)


class PosPaymentIn(PosQuoteIn):
    capture = fields.Boolean(load_default=True)
    pin = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=16))
    external_ref = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=64)
    )


class PosCaptureIn(BaseSchema):
    amount_fen = fields.Integer(
        strict=True, load_default=None, allow_none=True, validate=validate.Range(min=0, max=MAX_FEN)
    )


class PosRefundIn(BaseSchema):
    amount_fen = fields.Integer(
        strict=True, load_default=None, allow_none=True, validate=validate.Range(min=0, max=MAX_FEN)
    )
    items = fields.List(fields.Nested(PosItemIn), load_default=None, allow_none=True)


class PosListArgs(BaseSchema):
    business_date = fields.Date(required=True)
    cursor = fields.String(load_default=None, validate=validate.Length(max=40))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class PosStatementArgs(BaseSchema):
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))


class PosOfflineRecordIn(BaseSchema):
    local_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    code = fields.String(required=True, validate=validate.Length(min=1, max=1024))
    captured_at = fields.AwareDateTime(required=True)
    amount_fen = fields.Integer(
        strict=True, required=True, validate=validate.Range(min=0, max=MAX_FEN)
    )
    integrity_discount_fen = fields.Integer(
        strict=True, required=True, validate=validate.Range(min=0, max=MAX_FEN)
    )
    revocation_list_version = fields.Integer(
        strict=True,
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=0, max=MAX_VERSION),
        metadata={
            "description": "the version of the card revocation list the till had when it "
            "made the sale (GET /pos/v1/card-revocations); a card that list names is refused"
        },
    )


class PosOfflineBatchIn(BaseSchema):
    batch_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    records = fields.List(
        fields.Nested(PosOfflineRecordIn), required=True, validate=validate.Length(min=1, max=500)
    )


# ---------------------------------------------------------------- responses


class PosLevelOut(BaseSchema):
    code = fields.String()
    label = fields.String()
    rank = fields.Integer()


class PosHolderOut(BaseSchema):
    ref = fields.String()
    display_name = fields.String(metadata={"description": "masked, e.g. 张*华"})
    village = fields.String()
    level = fields.Nested(PosLevelOut, allow_none=True)
    valid_until = fields.Date(allow_none=True)
    status = fields.String()


class PosWalletOut(BaseSchema):
    integrity_fen = fields.Integer()
    points = fields.Integer()


class PosBenefitOut(BaseSchema):
    benefit_id = fields.Integer()
    title = fields.String()
    title_en = fields.String()
    description = fields.String()
    kind = fields.String()
    percent_bp = fields.Integer(allow_none=True)
    cap_fen = fields.Integer(allow_none=True)
    fixed_fen = fields.Integer(allow_none=True)
    min_level_rank = fields.Integer()
    limit_per_day = fields.Integer(allow_none=True)
    limit_per_month = fields.Integer(allow_none=True)
    limit_per_year = fields.Integer(allow_none=True)


class PosBenefitUseIn(PosCodeIn):
    benefit_id = fields.Integer(strict=True, required=True, validate=validate.Range(min=1))
    amount_fen = fields.Integer(
        strict=True,
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=0, max=MAX_FEN),
        metadata={
            "description": "the bill the benefit applies to; what the benefit is worth "
            "(discount_fen) is computed from the benefit's terms, never sent"
        },
    )
    pin = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=16),
        metadata={"description": "the household PIN: required with a card code, as for a payment"},
    )


class PosBenefitUseResult(BaseSchema):
    use_id = fields.Integer()
    benefit_id = fields.Integer()
    holder_ref = fields.String()
    amount_fen = fields.Integer(allow_none=True)
    discount_fen = fields.Integer()
    funded_by = fields.String()
    business_date = fields.Date()
    created_at = fields.DateTime()


class PosScanOut(BaseSchema):
    holder = fields.Nested(PosHolderOut)
    wallet = fields.Nested(PosWalletOut)
    discount_rate_bp = fields.Integer()
    benefits = fields.List(fields.Nested(PosBenefitOut))
    pin_required = fields.Boolean()
    code_kind = fields.String(metadata={"description": "dynamic or card"})
    code_expires_at = fields.DateTime(allow_none=True)


class PosLineOut(BaseSchema):
    sku = fields.String()
    name = fields.String()
    qty = fields.Integer()
    points_price = fields.Integer()
    points = fields.Integer()


class PosQuoteOut(BaseSchema):
    amount_fen = fields.Integer()
    discount_rate_bp = fields.Integer()
    integrity_discount_fen = fields.Integer()
    points_cost = fields.Integer()
    cash_due_fen = fields.Integer()
    lines = fields.List(fields.Nested(PosLineOut))
    wallet = fields.Nested(PosWalletOut)


class PosPaymentItemOut(BaseSchema):
    sku = fields.String()
    name = fields.String()
    qty = fields.Integer()
    points_price = fields.Integer()
    refunded_qty = fields.Integer()


class PosRefundOut(BaseSchema):
    refund_id = fields.String()
    amount_fen = fields.Integer()
    integrity_fen = fields.Integer()
    points = fields.Integer()
    items = fields.List(fields.Dict())
    business_date = fields.Date()
    created_at = fields.DateTime()


class PosPaymentOut(BaseSchema):
    payment_id = fields.String()
    status = fields.String()
    origin = fields.String()
    code_kind = fields.String()
    amount_fen = fields.Integer()
    discount_rate_bp = fields.Integer()
    integrity_discount_fen = fields.Integer()
    offline_shortfall_fen = fields.Integer()
    points_cost = fields.Integer()
    points_settlement_fen = fields.Integer()
    cash_due_fen = fields.Integer()
    refunded_amount_fen = fields.Integer()
    refunded_integrity_fen = fields.Integer()
    refunded_points = fields.Integer()
    needs_review = fields.Boolean()
    external_ref = fields.String(allow_none=True)
    holder_ref = fields.String()
    business_date = fields.Date()
    created_at = fields.DateTime()
    captured_at = fields.DateTime(allow_none=True)
    expires_at = fields.DateTime(allow_none=True)
    voided_at = fields.DateTime(allow_none=True)
    items = fields.List(fields.Nested(PosPaymentItemOut))
    refunds = fields.List(fields.Nested(PosRefundOut))
    balances_after = fields.Nested(PosWalletOut, allow_none=True)


class PosRefundResultOut(PosRefundOut):
    payment = fields.Nested(PosPaymentOut)


class PosPaymentPage(BaseSchema):
    items = fields.List(fields.Nested(PosPaymentOut))
    next_cursor = fields.String(allow_none=True)


class PosStatementOut(BaseSchema):
    partner_id = fields.Integer()
    business_date = fields.Date()
    closed = fields.Boolean()
    payments_count = fields.Integer()
    sales_amount_fen = fields.Integer()
    integrity_discount_fen = fields.Integer()
    offline_shortfall_fen = fields.Integer()
    points_redeemed = fields.Integer()
    points_settlement_fen = fields.Integer()
    cash_due_fen = fields.Integer()
    voided_count = fields.Integer()
    needs_review_count = fields.Integer()
    refunds_count = fields.Integer()
    refunded_amount_fen = fields.Integer()
    refunded_integrity_fen = fields.Integer()
    refunded_points = fields.Integer()
    refunded_settlement_fen = fields.Integer()
    net_payable_fen = fields.Integer()


class PosCatalogItemOut(BaseSchema):
    sku = fields.String()
    name = fields.String()
    points_price = fields.Integer()
    stock = fields.Integer()
    min_level = fields.Integer(allow_none=True, metadata={"description": "minimum level rank"})


class PosCatalogOut(BaseSchema):
    items = fields.List(fields.Nested(PosCatalogItemOut))


class PosRevocationArgs(BaseSchema):
    since_version = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_VERSION))
    limit = fields.Integer(load_default=1000, validate=validate.Range(min=1, max=5000))


class PosRevokedCardOut(BaseSchema):
    serial = fields.String(metadata={"description": "the card serial (the code's `card` claim)"})
    version = fields.Integer(metadata={"description": "the list version that first names it"})


class PosRevocationsOut(BaseSchema):
    since_version = fields.Integer()
    version = fields.Integer(
        metadata={"description": "the list version this answer brings the till up to"}
    )
    more = fields.Boolean(metadata={"description": "ask again with since_version=version"})
    cards = fields.List(fields.Nested(PosRevokedCardOut))


class PosOfflineResultOut(BaseSchema):
    local_id = fields.String()
    status = fields.String(metadata={"description": "applied, applied_short or rejected"})
    reason = fields.String(
        metadata={
            "description": "applied_short only: over_discount_rate (the till granted more "
            "than the household's rate here: applied at the right amount, the excess "
            "`overgrant_fen` is not paid) or wallet_short (the township paid `shortfall_fen`)"
        }
    )
    payment_id = fields.String()
    integrity_discount_fen = fields.Integer(metadata={"description": "taken from the wallet"})
    shortfall_fen = fields.Integer(metadata={"description": "paid by the township fund"})
    discount_rate_bp = fields.Integer()
    overgrant_fen = fields.Integer(
        metadata={"description": "granted by the till beyond the rate: paid by nobody"}
    )
    code = fields.String()
    message = fields.String()
    details = fields.Dict()


class PosOfflineBatchOut(BaseSchema):
    batch_id = fields.String()
    results = fields.List(fields.Nested(PosOfflineResultOut))
