"""Marshmallow schemas of the entities, credit-village and assessment APIs."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from mall.api.subjects.schemas import MemberIn, MemberOut
from mall.entities.models import BUSINESS_TYPES, ENTITY_KINDS
from mall.http.openapi import BaseSchema
from mall.villages.models import APPLICATION_STATUSES, ASSESSMENT_STATUSES, FUNDS, GRADES

# --- entities ---------------------------------------------------------------------------------


class EntityOut(BaseSchema):
    ref = fields.Method("_ref")
    kind = fields.Method("_kind")
    business_type = fields.Method("_type", allow_none=True)
    name = fields.Method("_name")
    uscc = fields.Method("_uscc", allow_none=True, metadata={"description": "masked"})
    status = fields.Method("_status")
    county_id = fields.Method("_county")
    township_id = fields.Method("_township")
    village_id = fields.Method("_village")
    level = fields.Method("_level", allow_none=True)
    members = fields.Method("_members")

    def _ref(self, v: Any) -> str:
        return str(v.subject.ref)

    def _kind(self, v: Any) -> str:
        return str(v.subject.kind)

    def _type(self, v: Any) -> str | None:
        return v.profile.business_type

    def _name(self, v: Any) -> str:
        return str(v.subject.name_masked)

    def _uscc(self, v: Any) -> str | None:
        return v.subject.id_number_masked

    def _status(self, v: Any) -> str:
        return str(v.subject.status)

    def _county(self, v: Any) -> int:
        return int(v.subject.county_id)

    def _township(self, v: Any) -> int:
        return int(v.subject.township_id)

    def _village(self, v: Any) -> int:
        return int(v.subject.village_id)

    def _level(self, v: Any) -> dict[str, Any] | None:
        s = v.subject
        if s.level_code is None:
            return None
        return {"code": s.level_code, "rank": s.level_rank, "valid_until": str(s.level_valid_until)}

    def _members(self, v: Any) -> list[dict[str, Any]]:
        return MemberOut(many=True).dump(v.subject.members)


class EntityPage(BaseSchema):
    items = fields.List(fields.Nested(EntityOut))
    next_cursor = fields.Integer(allow_none=True)


class EntitySearchArgs(BaseSchema):
    kind = fields.String(load_default="business", validate=validate.OneOf(ENTITY_KINDS))
    q = fields.String(load_default=None, validate=validate.Length(max=64))
    village_id = fields.Integer(load_default=None)
    cursor = fields.Integer(load_default=None, validate=validate.Range(min=1))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class BusinessCreate(BaseSchema):
    village_id = fields.Integer(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=60))
    uscc = fields.String(required=True, validate=validate.Length(min=1, max=32))
    business_type = fields.String(required=True, validate=validate.OneOf(BUSINESS_TYPES))
    legal_rep = fields.String(required=True, validate=validate.Length(min=1, max=30))
    members = fields.List(
        fields.Nested(MemberIn), load_default=list, validate=validate.Length(max=50)
    )


class VillageEntityCreate(BaseSchema):
    village_id = fields.Integer(required=True)
    name = fields.String(load_default=None, validate=validate.Length(min=1, max=60))


# --- credit villages ----------------------------------------------------------------------------


class CreditVillageEventOut(BaseSchema):
    action = fields.String()
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    actor = fields.String(attribute="actor_label")
    actor_id = fields.Integer(allow_none=True)
    note = fields.String()
    at = fields.DateTime()


class ApplicationOut(BaseSchema):
    id = fields.Integer()
    village_id = fields.Integer()
    township_id = fields.Integer()
    county_id = fields.Integer()
    status = fields.String()
    grade_applied = fields.String()
    grade_awarded = fields.String(allow_none=True)
    statement = fields.String()
    renewal_of_id = fields.Integer(allow_none=True)
    applied_by = fields.Integer()
    applied_at = fields.DateTime()
    town_reviewer_id = fields.Integer(allow_none=True)
    town_reviewed_at = fields.DateTime(allow_none=True)
    town_opinion = fields.String(allow_none=True)
    county_reviewer_id = fields.Integer(allow_none=True)
    county_reviewed_at = fields.DateTime(allow_none=True)
    county_opinion = fields.String(allow_none=True)
    notice_from = fields.Date(allow_none=True)
    notice_until = fields.Date(allow_none=True)
    decided_by = fields.Integer(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    decision_no = fields.String(allow_none=True)
    valid_from = fields.Date(allow_none=True)
    valid_until = fields.Date(allow_none=True)
    plaque_serial = fields.String(allow_none=True)
    rejected_stage = fields.String(allow_none=True)
    rejected_reason = fields.String(allow_none=True)


class ApplicationDetail(ApplicationOut):
    events = fields.List(fields.Nested(CreditVillageEventOut))


class ApplicationPage(BaseSchema):
    items = fields.List(fields.Nested(ApplicationOut))
    next_cursor = fields.Integer(allow_none=True)


class ApplicationArgs(BaseSchema):
    status = fields.String(load_default=None, validate=validate.OneOf(APPLICATION_STATUSES))
    village_id = fields.Integer(load_default=None)
    cursor = fields.Integer(load_default=None, validate=validate.Range(min=1))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class ApplyIn(BaseSchema):
    village_id = fields.Integer(required=True)
    grade = fields.String(required=True, validate=validate.OneOf(GRADES))
    statement = fields.String(load_default="", validate=validate.Length(max=2000))


class ReviewIn(BaseSchema):
    approve = fields.Boolean(required=True)
    opinion = fields.String(required=True, validate=validate.Length(min=1, max=1000))
    grade = fields.String(load_default=None, validate=validate.OneOf(GRADES))


class DecideIn(BaseSchema):
    approve = fields.Boolean(required=True)
    decision_no = fields.String(load_default="", validate=validate.Length(max=64))
    reason = fields.String(load_default="", validate=validate.Length(max=1000))


# --- assessments -------------------------------------------------------------------------------


class ItemDef(BaseSchema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=32))
    name = fields.String(load_default=None, validate=validate.Length(max=64))
    max = fields.Integer(required=True, validate=validate.Range(min=1, max=1000))


class IndicatorDef(BaseSchema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=32))
    name = fields.String(load_default=None, validate=validate.Length(max=64))
    weight = fields.Integer(required=True, validate=validate.Range(min=1, max=100))
    items = fields.List(fields.Nested(ItemDef), required=True, validate=validate.Length(1, 50))


class BandDef(BaseSchema):
    min_score = fields.Integer(required=True, validate=validate.Range(0, 100))
    reward_fen = fields.Integer(required=True, validate=validate.Range(min=0, max=10**10))


class PlanIn(BaseSchema):
    period = fields.String(required=True, validate=validate.Length(min=1, max=16))
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    fund = fields.String(load_default="township", validate=validate.OneOf(FUNDS))
    indicators = fields.List(
        fields.Nested(IndicatorDef), load_default=None, validate=validate.Length(1, 30)
    )
    bands = fields.List(fields.Nested(BandDef), load_default=None, validate=validate.Length(0, 20))


class PlanOut(BaseSchema):
    id = fields.Integer()
    county_id = fields.Integer()
    period = fields.String()
    name = fields.String()
    fund = fields.String()
    indicators = fields.List(fields.Dict())
    bands = fields.List(fields.Dict())
    created_at = fields.DateTime()


class PlanList(BaseSchema):
    items = fields.List(fields.Nested(PlanOut))


class VillageScoreIn(BaseSchema):
    village_id = fields.Integer(required=True)
    items = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(keys=fields.String(), values=fields.Decimal(as_string=True)),
        required=True,
        metadata={"description": "indicator code → sub-item code → mark"},
    )


class AssessmentOut(BaseSchema):
    id = fields.Integer()
    plan_id = fields.Integer()
    village_id = fields.Integer()
    township_id = fields.Integer()
    collective_id = fields.Integer()
    status = fields.String(validate=validate.OneOf(ASSESSMENT_STATUSES))
    score = fields.Method("_score")
    score_detail = fields.Dict()
    band_min_score = fields.Integer(allow_none=True)
    reward_fen = fields.Integer()
    fund = fields.String()
    scored_by = fields.Integer()
    scored_at = fields.DateTime()
    approved_by = fields.Integer(allow_none=True)
    approved_at = fields.DateTime(allow_none=True)
    rejected_reason = fields.String(allow_none=True)
    paid_at = fields.DateTime(allow_none=True)
    entry_id = fields.Integer(allow_none=True)

    def _score(self, a: Any) -> float:
        return float(a.score_centi) / 100


class AssessmentList(BaseSchema):
    items = fields.List(fields.Nested(AssessmentOut))


class AssessmentRejectIn(BaseSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000))
