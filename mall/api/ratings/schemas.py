"""Marshmallow schemas of the ratings API."""

from __future__ import annotations

from marshmallow import fields, validate

from mall.http.openapi import BaseSchema


class LevelOut(BaseSchema):
    code = fields.String()
    label_zh = fields.String()
    label_en = fields.String()
    rank = fields.Integer()
    integrity_money_fen = fields.Integer()
    discount_bp = fields.Integer()
    score_threshold = fields.Integer()
    credit_household = fields.Boolean()


class LevelIn(BaseSchema):
    code = fields.String(required=True, validate=validate.Length(1, 16))
    label_zh = fields.String(required=True, validate=validate.Length(1, 32))
    label_en = fields.String(load_default=None, validate=validate.Length(1, 32))
    rank = fields.Integer(required=True, validate=validate.Range(min=1))
    integrity_money_fen = fields.Integer(load_default=0, validate=validate.Range(min=0))
    discount_bp = fields.Integer(load_default=0, validate=validate.Range(0, 10000))
    score_threshold = fields.Integer(required=True, validate=validate.Range(0, 100))
    credit_household = fields.Boolean(load_default=True)


class SchemeOut(BaseSchema):
    code = fields.String()
    name_zh = fields.String()
    name_en = fields.String()
    built_in = fields.Boolean()
    levels = fields.List(fields.Nested(LevelOut))


class SchemeList(BaseSchema):
    items = fields.List(fields.Nested(SchemeOut))


class SchemeIn(BaseSchema):
    code = fields.String(required=True, validate=validate.Length(1, 32))
    name_zh = fields.String(required=True, validate=validate.Length(1, 64))
    name_en = fields.String(load_default="", validate=validate.Length(0, 64))
    levels = fields.List(fields.Nested(LevelIn), required=True, validate=validate.Length(1, 20))


class ReviewItemIn(BaseSchema):
    code = fields.String(required=True, validate=validate.Length(1, 32))
    points = fields.Integer(load_default=0, validate=validate.Range(0, 100))
    kind = fields.String(
        load_default="positive", validate=validate.OneOf(["positive", "negative", "veto"])
    )


class ReviewerIn(BaseSchema):
    name = fields.String(required=True, validate=validate.Length(1, 30))
    related = fields.Boolean(load_default=False)


class ScoreIn(BaseSchema):
    items = fields.List(fields.Nested(ReviewItemIn), load_default=list)
    reviewers = fields.List(fields.Nested(ReviewerIn), load_default=list)
    visit_score = fields.Float(load_default=None, validate=validate.Range(0, 100))
    points_score = fields.Float(load_default=None, validate=validate.Range(0, 100))
    score = fields.Float(load_default=None, validate=validate.Range(0, 100))


class DraftIn(ScoreIn):
    household_ref = fields.String(required=True)
    period_start = fields.Date(load_default=None)


class ReRateIn(ScoreIn):
    reason = fields.String(required=True, validate=validate.Length(1, 500))


class RatingOut(BaseSchema):
    id = fields.Integer()
    subject_id = fields.Integer()
    village_id = fields.Integer()
    scheme_code = fields.String()
    level_code = fields.String(allow_none=True)
    level_rank = fields.Integer(allow_none=True)
    score = fields.Function(lambda r: r.score_centi / 100)
    score_detail = fields.Dict()
    origin = fields.String()
    status = fields.String()
    period_kind = fields.String()
    period_start = fields.Date()
    period_end = fields.Date()
    notice_from = fields.Date(allow_none=True)
    notice_until = fields.Date(allow_none=True)
    appeal_until = fields.Date(allow_none=True)
    re_reviewed = fields.Boolean()
    effective_from = fields.Date(allow_none=True)
    ended_on = fields.Date(allow_none=True)
    end_reason = fields.String(allow_none=True)
    supersedes_id = fields.Integer(allow_none=True)
    granted_fen = fields.Integer()
    created_by = fields.String()


class HistoryItemOut(BaseSchema):
    id = fields.Integer()
    rating_id = fields.Integer()
    action = fields.String()
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    level_code = fields.String(allow_none=True)
    actor = fields.String()
    note = fields.String()
    on_date = fields.Date()


class HistoryOut(BaseSchema):
    ratings = fields.List(fields.Nested(RatingOut))
    events = fields.List(fields.Nested(HistoryItemOut))


class ReasonIn(BaseSchema):
    reason = fields.String(required=True, validate=validate.Length(1, 500))


class DowngradeIn(ReasonIn):
    level_code = fields.String(required=True)


class AppealIn(BaseSchema):
    grounds = fields.String(required=True, validate=validate.Length(1, 2000))


class AppealOut(BaseSchema):
    id = fields.Integer()
    rating_id = fields.Integer()
    grounds = fields.String()
    filed_on = fields.Date()
    answer_due = fields.Date()
    status = fields.String()
    answer = fields.String(allow_none=True)
    answered_by = fields.String(allow_none=True)
    result_rating_id = fields.Integer(allow_none=True)


class AnswerIn(BaseSchema):
    answer = fields.String(required=True, validate=validate.Length(1, 2000))
    new_score = fields.Nested(ScoreIn, load_default=None)


class NoticeArgs(BaseSchema):
    village_id = fields.Integer(required=True)


class NoticeItemOut(BaseSchema):
    rating_id = fields.Integer()
    household_ref = fields.String()
    household_name = fields.String()
    level_code = fields.String(allow_none=True)
    level_label = fields.String()
    score = fields.Float()
    status = fields.String()
    notice_from = fields.Date()
    notice_until = fields.Date()
    appeal_until = fields.Date()
    re_review = fields.Boolean()


class NoticeOut(BaseSchema):
    village_id = fields.Integer()
    items = fields.List(fields.Nested(NoticeItemOut))
