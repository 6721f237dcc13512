"""Schemas of the staff reports API."""

from __future__ import annotations

import re

from marshmallow import ValidationError, fields, validate, validates_schema

from mall.http.openapi import BaseSchema
from mall.reports.queries import (
    BENEFIT_GROUPS,
    HOUSEHOLD_GROUPS,
    HOUSEHOLD_MEASURES,
    PARTNER_MEASURES,
)

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class ReportArgs(BaseSchema):
    format = fields.String(load_default="json", validate=validate.OneOf(("json", "csv", "xlsx")))
    region_id = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**31 - 1))


class MonthRangeArgs(ReportArgs):
    month_from = fields.String(required=True, data_key="from", metadata={"example": "2026-01"})
    month_to = fields.String(required=True, data_key="to", metadata={"example": "2026-12"})

    @validates_schema
    def _months(self, data: dict[str, str], **_: object) -> None:
        first, last = data.get("month_from", ""), data.get("month_to", "")
        if not _MONTH.match(first) or not _MONTH.match(last):
            raise ValidationError("YYYY-MM", "from")
        if last < first:
            raise ValidationError("not before from", "to")
        y1, m1 = (int(x) for x in first.split("-"))
        y2, m2 = (int(x) for x in last.split("-"))
        if (y2 - y1) * 12 + m2 - m1 >= 36:
            raise ValidationError("at most 36 months", "to")


class HouseholdReportArgs(MonthRangeArgs):
    group_by = fields.String(load_default="township", validate=validate.OneOf(HOUSEHOLD_GROUPS))


class BenefitReportArgs(MonthRangeArgs):
    group_by = fields.String(load_default="township", validate=validate.OneOf(BENEFIT_GROUPS))


class LevelReportArgs(ReportArgs):
    group_by = fields.String(load_default="township", validate=validate.OneOf(HOUSEHOLD_GROUPS))


def _row_fields(measures: tuple[str, ...]) -> dict[str, fields.Field]:
    base: dict[str, fields.Field] = {
        "group_id": fields.Integer(),
        "group_name": fields.String(),
        "month": fields.String(),
    }
    base.update({m: fields.Integer() for m in measures})
    return base


HouseholdRow = BaseSchema.from_dict(_row_fields(HOUSEHOLD_MEASURES), name="HouseholdReportRow")
PartnerRow = BaseSchema.from_dict(_row_fields(PARTNER_MEASURES), name="PartnerReportRow")


class HouseholdLedgerReport(BaseSchema):
    group_by = fields.String()
    items = fields.List(fields.Nested(HouseholdRow))


class PartnerLedgerReportOut(BaseSchema):
    items = fields.List(fields.Nested(PartnerRow))


class ReportBenefitRow(BaseSchema):
    group_id = fields.Integer()
    group_name = fields.String()
    month = fields.String()
    category = fields.String()
    uses = fields.Integer()
    value_fen = fields.Integer()


class BenefitUseReportOut(BaseSchema):
    group_by = fields.String()
    items = fields.List(fields.Nested(ReportBenefitRow))


class ReportLevelRow(BaseSchema):
    group_id = fields.Integer()
    group_name = fields.String()
    level_code = fields.String(allow_none=True)
    households = fields.Integer()


class HouseholdsByLevelReport(BaseSchema):
    group_by = fields.String()
    items = fields.List(fields.Nested(ReportLevelRow))
