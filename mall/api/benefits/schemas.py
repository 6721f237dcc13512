"""Marshmallow schemas of the benefit list (staff API, and the shapes the POS and farmer
APIs reuse)."""

from __future__ import annotations

from marshmallow import fields, validate

from mall.benefits.models import BENEFIT_KINDS, FUNDERS
from mall.http.openapi import BaseSchema, PageArgs
from mall.partners.models import PARTNER_CATEGORIES

_COUNT = validate.Range(min=1, max=100000)
_FEN = validate.Range(min=1, max=10**9)


class BenefitTerms(BaseSchema):
    """What a benefit gives, to whom, how often (shared by create and edit)."""

    min_level_rank = fields.Integer(validate=validate.Range(min=1, max=100))
    kind = fields.String(validate=validate.OneOf(BENEFIT_KINDS))
    percent_bp = fields.Integer(
        allow_none=True,
        validate=validate.Range(min=1, max=10000),
        metadata={"description": "percent_discount: basis points, 2000 = 20%"},
    )
    cap_fen = fields.Integer(
        allow_none=True,
        validate=_FEN,
        metadata={
            "description": "percent_discount: the most one use is worth (optional); "
            "free_item: the most the item is worth (required)"
        },
    )
    fixed_fen = fields.Integer(
        allow_none=True, validate=_FEN, metadata={"description": "fixed_discount: fen off"}
    )
    title_zh = fields.String(validate=validate.Length(min=1, max=100))
    title_en = fields.String(validate=validate.Length(max=100))
    description = fields.String(validate=validate.Length(max=500))
    description_en = fields.String(validate=validate.Length(max=500))
    limit_per_day = fields.Integer(allow_none=True, validate=_COUNT)
    limit_per_month = fields.Integer(allow_none=True, validate=_COUNT)
    limit_per_year = fields.Integer(allow_none=True, validate=_COUNT)
    one_at_a_time = fields.Boolean()
    valid_from = fields.Date()
    valid_until = fields.Date(allow_none=True)
    funded_by = fields.String(validate=validate.OneOf(FUNDERS))
    active = fields.Boolean()


class BenefitCreate(BenefitTerms):
    kind = fields.String(required=True, validate=validate.OneOf(BENEFIT_KINDS))
    title_zh = fields.String(required=True, validate=validate.Length(min=1, max=100))
    partner_id = fields.Integer(
        load_default=None, metadata={"description": "one partner; or give partner_category"}
    )
    partner_category = fields.String(load_default=None, validate=validate.OneOf(PARTNER_CATEGORIES))
    township_id = fields.Integer(
        load_default=None,
        metadata={"description": "a township of the county; omitted: the whole county"},
    )


class BenefitOut(BaseSchema):
    id = fields.Integer()
    county_id = fields.Integer()
    township_id = fields.Integer(allow_none=True)
    partner_id = fields.Integer(allow_none=True)
    partner_category = fields.String(allow_none=True)
    min_level_rank = fields.Integer()
    kind = fields.String()
    percent_bp = fields.Integer(allow_none=True)
    cap_fen = fields.Integer(allow_none=True)
    fixed_fen = fields.Integer(allow_none=True)
    title_zh = fields.String()
    title_en = fields.String()
    description = fields.String()
    description_en = fields.String()
    limit_per_day = fields.Integer(allow_none=True)
    limit_per_month = fields.Integer(allow_none=True)
    limit_per_year = fields.Integer(allow_none=True)
    one_at_a_time = fields.Boolean()
    valid_from = fields.Date()
    valid_until = fields.Date(allow_none=True)
    funded_by = fields.String()
    active = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime(allow_none=True)


class BenefitPage(BaseSchema):
    items = fields.List(fields.Nested(BenefitOut))
    next_cursor = fields.Integer(allow_none=True)


class BenefitListArgs(PageArgs):
    active = fields.Boolean(load_default=None)
    partner_id = fields.Integer(load_default=None)
    category = fields.String(load_default=None, validate=validate.OneOf(PARTNER_CATEGORIES))
    township_id = fields.Integer(load_default=None)


class BenefitUseOut(BaseSchema):
    id = fields.Integer()
    benefit_id = fields.Integer()
    partner_id = fields.Integer()
    terminal_id = fields.Integer(allow_none=True)
    business_date = fields.Date()
    amount_fen = fields.Integer(allow_none=True)
    discount_fen = fields.Integer()
    funded_by = fields.String()
    actor = fields.String()
    created_at = fields.DateTime()
    closed_at = fields.DateTime(allow_none=True)


class BenefitUsePage(BaseSchema):
    items = fields.List(fields.Nested(BenefitUseOut))
    next_cursor = fields.Integer(allow_none=True)


class BenefitUseListArgs(PageArgs):
    benefit_id = fields.Integer(load_default=None)
    partner_id = fields.Integer(load_default=None)
    business_date = fields.Date(load_default=None)
