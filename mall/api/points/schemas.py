"""Marshmallow schemas of the points API."""

from __future__ import annotations

from flask_smorest.fields import Upload
from marshmallow import fields, validate

from mall.http.openapi import BaseSchema
from mall.points.models import BATCH_STATUSES, RULE_CATEGORIES


class RuleIn(BaseSchema):
    region_id = fields.Integer(required=True)
    code = fields.String(required=True, validate=validate.Length(1, 32))
    name = fields.String(required=True, validate=validate.Length(1, 100))
    category = fields.String(load_default="other", validate=validate.OneOf(RULE_CATEGORIES))
    points = fields.Integer(required=True, validate=validate.Range(-10000, 10000))
    cap_week = fields.Integer(load_default=None, validate=validate.Range(min=1))
    cap_month = fields.Integer(load_default=None, validate=validate.Range(min=1))
    cap_year = fields.Integer(load_default=None, validate=validate.Range(min=1))
    active = fields.Boolean(load_default=True)


class RulePatch(BaseSchema):
    name = fields.String(validate=validate.Length(1, 100))
    points = fields.Integer(validate=validate.Range(-10000, 10000))
    cap_week = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    cap_month = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    cap_year = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    active = fields.Boolean()


class RuleOut(BaseSchema):
    id = fields.Integer()
    region_id = fields.Integer()
    code = fields.String()
    name = fields.String()
    category = fields.String()
    points = fields.Integer()
    cap_week = fields.Integer(allow_none=True)
    cap_month = fields.Integer(allow_none=True)
    cap_year = fields.Integer(allow_none=True)
    active = fields.Boolean()


class RuleArgs(BaseSchema):
    region_id = fields.Integer(required=True)


class RuleList(BaseSchema):
    items = fields.List(fields.Nested(RuleOut))


class BatchIn(BaseSchema):
    region_id = fields.Integer(required=True)


class BatchOut(BaseSchema):
    id = fields.Integer()
    township_id = fields.Integer()
    village_id = fields.Integer(allow_none=True)
    source = fields.String()
    filename = fields.String(allow_none=True)
    status = fields.String()
    maker_id = fields.Integer()
    checker_id = fields.Integer(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    decision_note = fields.String(allow_none=True)
    rows_total = fields.Integer()
    rows_bad = fields.Integer()
    events = fields.Integer()
    households = fields.Integer()
    points_issued = fields.Integer()
    points_deducted = fields.Integer()


class BatchArgs(BaseSchema):
    status = fields.String(load_default=None, validate=validate.OneOf(BATCH_STATUSES))
    cursor = fields.Integer(load_default=None, validate=validate.Range(min=1))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))


class BatchPage(BaseSchema):
    items = fields.List(fields.Nested(BatchOut))
    next_cursor = fields.Integer(allow_none=True)


class EventIn(BaseSchema):
    household_ref = fields.String(required=True)
    rule_code = fields.String(required=True)
    occurred_on = fields.Date(required=True)
    note = fields.String(load_default="", validate=validate.Length(0, 200))


class EventOut(BaseSchema):
    id = fields.Integer()
    subject_id = fields.Integer()
    rule_id = fields.Integer()
    points = fields.Integer()
    awarded = fields.Integer(allow_none=True)
    occurred_on = fields.Date()
    note = fields.String()
    row_number = fields.Integer(allow_none=True)
    status = fields.String()


class EventPage(BaseSchema):
    items = fields.List(fields.Nested(EventOut))
    next_cursor = fields.Integer(allow_none=True)


class ImportForm(BaseSchema):
    region_id = fields.Integer(required=True)
    apply_good_rows = fields.Boolean(load_default=False)


class ImportFiles(BaseSchema):
    file = Upload(required=True)


class RowError(BaseSchema):
    row = fields.Integer()
    reason = fields.String()


class ImportOut(BaseSchema):
    batch = fields.Nested(BatchOut)
    applied = fields.Boolean()
    errors = fields.List(fields.Nested(RowError))


class ErrorArgs(BaseSchema):
    after_row = fields.Integer(load_default=0, validate=validate.Range(min=0))
    limit = fields.Integer(load_default=200, validate=validate.Range(1, 1000))


class ErrorPage(BaseSchema):
    items = fields.List(fields.Nested(RowError))


class DecisionIn(BaseSchema):
    note = fields.String(load_default="", validate=validate.Length(0, 500))


class RejectIn(BaseSchema):
    reason = fields.String(required=True, validate=validate.Length(1, 500))
