"""Schemas of the staff settlement API."""

from __future__ import annotations

from flask_smorest.fields import Upload
from marshmallow import fields, validate

from mall.daybook.models import FIGURES
from mall.http.openapi import BaseSchema, PageArgs

_ID = validate.Range(min=1, max=2**31 - 1)

FORMATS = ("json", "csv", "xlsx")


class SettlementFormatArgs(BaseSchema):
    format = fields.String(load_default="json", validate=validate.OneOf(FORMATS))


class SettlementPeriodArgs(SettlementFormatArgs):
    partner_id = fields.Integer(required=True, validate=_ID)
    date_from = fields.Date(required=True, data_key="from")
    date_to = fields.Date(required=True, data_key="to")


class SettlementCloseIn(BaseSchema):
    pass


class SettlementReopenIn(BaseSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class SettlementPayIn(BaseSchema):
    reference = fields.String(required=True, validate=validate.Length(min=1, max=100))
    paid_on = fields.Date(required=True)


class SettlementTownshipNet(BaseSchema):
    township_id = fields.Integer()
    integrity_fen = fields.Integer()
    points = fields.Integer()
    settlement_fen = fields.Integer()


def _figure_fields() -> dict[str, fields.Field]:
    return {key: fields.Integer() for key in FIGURES}


FiguresOut = BaseSchema.from_dict(_figure_fields(), name="SettlementFigures")


class SettlementStatementOut(FiguresOut):  # type: ignore[misc,valid-type]
    partner_id = fields.Integer()
    partner_name = fields.String()
    business_date = fields.Date()
    statement_id = fields.Integer(allow_none=True)
    version = fields.Integer()
    status = fields.String(metadata={"description": "open, closed or superseded"})
    closed = fields.Boolean()
    closed_at = fields.DateTime(allow_none=True)
    paid_reference = fields.String(allow_none=True)
    paid_on = fields.Date(allow_none=True)
    reopen_reason = fields.String(allow_none=True)
    by_township = fields.List(fields.Nested(SettlementTownshipNet))


class SettlementVersionOut(FiguresOut):  # type: ignore[misc,valid-type]
    id = fields.Integer()
    version = fields.Integer()
    status = fields.String()
    closed_at = fields.DateTime(allow_none=True)
    closed_by = fields.String(allow_none=True)
    reopen_reason = fields.String(allow_none=True)
    paid_reference = fields.String(allow_none=True)
    paid_on = fields.Date(allow_none=True)
    paid_at = fields.DateTime(allow_none=True)


class SettlementDayOut(BaseSchema):
    statement = fields.Nested(SettlementStatementOut)
    versions = fields.List(fields.Nested(SettlementVersionOut))


class SettlementPeriodOut(BaseSchema):
    partner_id = fields.Integer()
    date_from = fields.Date(data_key="from")
    date_to = fields.Date(data_key="to")
    days = fields.List(fields.Nested(SettlementStatementOut))
    totals = fields.Nested(FiguresOut)


class SettlementOutstanding(BaseSchema):
    partner_id = fields.Integer()
    partner_name = fields.String()
    integrity_fen = fields.Integer()
    points = fields.Integer()


class SettlementOutstandingList(BaseSchema):
    items = fields.List(fields.Nested(SettlementOutstanding))


class ReconcileForm(BaseSchema):
    partner_id = fields.Integer(required=True, validate=_ID)
    business_date = fields.Date(required=True)


class ReconcileFiles(BaseSchema):
    file = Upload(required=True)


class ReconciliationOut(BaseSchema):
    id = fields.Integer()
    partner_id = fields.Integer()
    business_date = fields.Date()
    filename = fields.String()
    file_format = fields.String()
    file_sha256 = fields.String()
    uploaded_by = fields.String()
    rows_count = fields.Integer()
    matched_count = fields.Integer()
    mismatched_count = fields.Integer()
    missing_count = fields.Integer()
    extra_count = fields.Integer()
    result = fields.Dict(metadata={"description": "mismatched, missing, extra, errors"})
    created_at = fields.DateTime()


class ReconciliationListArgs(PageArgs):
    partner_id = fields.Integer(load_default=None, validate=_ID)


class ReconciliationSummary(BaseSchema):
    id = fields.Integer()
    partner_id = fields.Integer()
    business_date = fields.Date()
    filename = fields.String()
    file_sha256 = fields.String()
    rows_count = fields.Integer()
    matched_count = fields.Integer()
    mismatched_count = fields.Integer()
    missing_count = fields.Integer()
    extra_count = fields.Integer()
    created_at = fields.DateTime()


class ReconciliationPage(BaseSchema):
    items = fields.List(fields.Nested(ReconciliationSummary))
    next_cursor = fields.Integer(allow_none=True)
