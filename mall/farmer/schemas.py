"""Response and request schemas of the farmer API v1 (fields fixed by the contract; the
extra ones are additions)."""

from __future__ import annotations

from marshmallow import fields, validate

from mall.farmer.services import GROUNDS_MAX_CHARS
from mall.http.openapi import BaseSchema
from mall.partners.models import PARTNER_CATEGORIES


class FarmerLevelOut(BaseSchema):
    code = fields.String()
    label = fields.String()
    rank = fields.Integer()


class FarmerWalletOut(BaseSchema):
    integrity_fen = fields.Integer(metadata={"description": "integrity money available, fen"})
    points = fields.Integer()


class FarmerMemberOut(BaseSchema):
    name = fields.String(metadata={"description": "masked"})
    relation = fields.String()


class FarmerCardOut(BaseSchema):
    serial = fields.String()
    status = fields.String()
    issued_at = fields.DateTime()


class FarmerMeOut(BaseSchema):
    ref = fields.String()
    name = fields.String(metadata={"description": "masked: 张*华"})
    village = fields.String()
    township = fields.String()
    level = fields.Nested(FarmerLevelOut, allow_none=True)
    valid_until = fields.Date(allow_none=True)
    status = fields.String()
    wallet = fields.Nested(FarmerWalletOut)
    members = fields.List(fields.Nested(FarmerMemberOut))
    card = fields.Nested(FarmerCardOut, allow_none=True)


class FarmerCodeArgs(BaseSchema):
    format = fields.String(load_default="json", validate=validate.OneOf(("json", "png", "svg")))


class FarmerCodeOut(BaseSchema):
    code = fields.String()
    expires_at = fields.DateTime()
    refresh_after = fields.DateTime()


class FarmerTransactionArgs(BaseSchema):
    cursor = fields.String(load_default=None, validate=validate.Length(max=40))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class FarmerPartnerRef(BaseSchema):
    id = fields.Integer()
    name = fields.String()


class FarmerTransactionOut(BaseSchema):
    id = fields.String()
    at = fields.DateTime()
    business_date = fields.Date()
    kind = fields.String(
        metadata={
            "description": "points_earned, points_deducted, points_redeemed, points_refunded, "
            "points_expired, integrity_granted, integrity_spent, integrity_refunded, "
            "integrity_expired, integrity_clawed_back, correction, other"
        }
    )
    kind_label = fields.String()
    entry_kind = fields.String(metadata={"description": "the ledger's entry kind"})
    asset = fields.String(metadata={"description": "points or integrity_fen"})
    amount = fields.Integer(metadata={"description": "signed: + in, - out"})
    balance_after = fields.Integer()
    partner = fields.Nested(FarmerPartnerRef, allow_none=True)
    reason = fields.String()


class FarmerTransactionPage(BaseSchema):
    items = fields.List(fields.Nested(FarmerTransactionOut))
    next_cursor = fields.String(allow_none=True)


class FarmerPartnerOut(BaseSchema):
    id = fields.Integer()
    name = fields.String()
    category = fields.String()
    category_label = fields.String()
    address = fields.String()
    township = fields.String()
    accepts_integrity = fields.Boolean()
    accepts_points = fields.Boolean()


class FarmerPartnerArgs(BaseSchema):
    category = fields.String(load_default=None, validate=validate.OneOf(PARTNER_CATEGORIES))


class FarmerPartnerList(BaseSchema):
    items = fields.List(fields.Nested(FarmerPartnerOut))


class FarmerLimitsOut(BaseSchema):
    per_day = fields.Integer(allow_none=True)
    per_month = fields.Integer(allow_none=True)
    per_year = fields.Integer(allow_none=True)
    one_at_a_time = fields.Boolean()


class FarmerBenefitItemOut(BaseSchema):
    id = fields.Integer()
    title = fields.String()
    description = fields.String()
    kind = fields.String()
    kind_label = fields.String()
    min_level = fields.Integer(metadata={"description": "minimum level rank"})
    min_level_label = fields.String()
    percent_bp = fields.Integer(allow_none=True)
    cap_fen = fields.Integer(allow_none=True)
    fixed_fen = fields.Integer(allow_none=True)
    limits = fields.Nested(FarmerLimitsOut)
    valid_until = fields.Date(allow_none=True)
    funded_by = fields.String()
    partners = fields.List(fields.Nested(FarmerPartnerOut))


class FarmerBenefitGroupOut(BaseSchema):
    category = fields.String()
    category_label = fields.String()
    benefits = fields.List(fields.Nested(FarmerBenefitItemOut))


class FarmerBenefitsOut(BaseSchema):
    level = fields.Nested(FarmerLevelOut, allow_none=True)
    groups = fields.List(fields.Nested(FarmerBenefitGroupOut))


class FarmerCatalogArgs(BaseSchema):
    partner_id = fields.Integer(load_default=None, validate=validate.Range(min=1))


class FarmerGoodsOut(BaseSchema):
    id = fields.Integer()
    sku = fields.String()
    name = fields.String()
    points_price = fields.Integer()
    stock = fields.Integer()
    min_level = fields.Integer(allow_none=True, metadata={"description": "minimum level rank"})
    min_level_label = fields.String(allow_none=True)
    eligible = fields.Boolean(metadata={"description": "this household's level is enough"})
    partner = fields.Nested(FarmerPartnerOut, metadata={"description": "where to redeem"})


class FarmerCatalogOut(BaseSchema):
    items = fields.List(fields.Nested(FarmerGoodsOut))


class FarmerPinChange(BaseSchema):
    old_pin = fields.String(required=True, validate=validate.Length(min=1, max=32))
    new_pin = fields.String(required=True, validate=validate.Length(min=1, max=32))


class FarmerNewLogin(BaseSchema):
    """A PIN change or a lost card ends every login of the household, the caller's too; the
    caller's device gets a new one in the answer (fields as the login's)."""

    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    expires_in = fields.Integer(required=True, metadata={"description": "seconds"})


class FarmerPinChangedOut(FarmerNewLogin):
    pass


class FarmerCardLostOut(FarmerNewLogin):
    serial = fields.String()
    status = fields.String()
    revoked_at = fields.DateTime(allow_none=True)


# Additions to farmer-api-v1: the household's ratings and its appeals (复议).


class FarmerAppealOut(BaseSchema):
    id = fields.Integer()
    status = fields.String(metadata={"description": "open, upheld, changed"})
    status_label = fields.String()
    grounds = fields.String()
    filed_on = fields.Date()
    answer_due = fields.Date(metadata={"description": "the village answers by this day"})
    answer = fields.String(allow_none=True)
    answered_at = fields.DateTime(allow_none=True)


class FarmerRatingOut(BaseSchema):
    id = fields.Integer()
    level = fields.Nested(
        FarmerLevelOut, allow_none=True, metadata={"description": "null: unrated"}
    )
    status = fields.String(
        metadata={"description": "notice, appealed, effective, superseded, expired, revoked"}
    )
    status_label = fields.String()
    origin = fields.String(
        metadata={"description": "review, re_review, downgrade, re_rating, upstream"}
    )
    notice_from = fields.Date(allow_none=True)
    notice_until = fields.Date(allow_none=True, metadata={"description": "last day of notice"})
    appeal_until = fields.Date(allow_none=True, metadata={"description": "last day to appeal"})
    effective_from = fields.Date(allow_none=True)
    appealable = fields.Boolean(metadata={"description": "the household may appeal it today"})
    appeals = fields.List(fields.Nested(FarmerAppealOut))


class FarmerRatingList(BaseSchema):
    items = fields.List(fields.Nested(FarmerRatingOut))


class FarmerAppealIn(BaseSchema):
    grounds = fields.String(required=True, validate=validate.Length(min=1, max=GROUNDS_MAX_CHARS))
