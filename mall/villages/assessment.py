"""Village assessment (村级考评) and its rewards (Tongren, seed 003: indicators such as economic
development, credit-system upkeep, poverty relief and financial services with 29 sub-items;
villages scoring 95, 85 and 75 or more receive 10,000, 4,000 and 2,000 yuan of working funds).

A county admin defines a plan per period: indicators with weights summing to 100, each with
sub-items and their maximum marks, score bands mapping to rewards, and which fund pays. An
admin scores a village (sub-item marks → weighted score, 0-100 with two decimals, and the
band's reward); a second admin approves (the scorer cannot) or rejects back for rescoring;
an admin pays: one ledger entry `village_reward` from the township's integrity-money fund
(fund "township") or the township's county-funded reward account (fund "county") to the
village collective's reward account, idempotent by assessment id.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.audit import services as audit
from mall.clock import business_date, utcnow
from mall.db import add_unique
from mall.entities.services import collective_of
from mall.errors import Conflict, NotFound, ValidationFailed
from mall.ledger import Source, leg, post_entry, system_account, village_reward_account
from mall.ledger.models import INTEGRITY_FUND
from mall.regions.models import Region
from mall.regions.services import serialize_on
from mall.subjects.models import CreditSubject
from mall.users import policy
from mall.users.models import User
from mall.users.scope import ensure_can_write, ensure_visible, restrict
from mall.villages.models import FUNDS, AssessmentPlan, VillageAssessment

# Tongren's bands (seed 003), yuan → fen.
TONGREN_BANDS: list[dict[str, int]] = [
    {"min_score": 95, "reward_fen": 1_000_000},
    {"min_score": 85, "reward_fen": 400_000},
    {"min_score": 75, "reward_fen": 200_000},
]
# A default indicator set after the Tongren and Dahuaping sources; counties define their own.
DEFAULT_INDICATORS: list[dict[str, Any]] = [
    {
        "code": "party",
        "name": "党建引领",
        "weight": 25,
        "items": [
            {"code": "two_committees", "name": "村“两委”班子团结务实", "max": 10},
            {"code": "members", "name": "党员先锋作用", "max": 10},
        ],
    },
    {
        "code": "credit",
        "name": "信用环境",
        "weight": 30,
        "items": [
            {"code": "archive", "name": "农户信用建档率", "max": 10},
            {"code": "credit_households", "name": "信用户占比", "max": 10},
            {"code": "red_black", "name": "红黑榜与失信约束", "max": 5},
        ],
    },
    {
        "code": "finance",
        "name": "金融服务",
        "weight": 25,
        "items": [
            {"code": "station", "name": "金融服务站运行", "max": 10},
            {"code": "loans", "name": "信用贷款投放", "max": 10},
        ],
    },
    {
        "code": "governance",
        "name": "乡村治理",
        "weight": 20,
        "items": [
            {"code": "customs", "name": "乡风民风与移风易俗", "max": 10},
            {"code": "satisfaction", "name": "群众满意度", "max": 10},
        ],
    },
]


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(details={"fields": {field: [message]}})


def _check_indicators(indicators: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not indicators:
        raise _invalid("indicators", "at least one indicator")
    clean: list[dict[str, Any]] = []
    codes: set[str] = set()
    for ind in indicators:
        code, weight, items = str(ind.get("code", "")).strip(), ind.get("weight"), ind.get("items")
        if not code or code in codes:
            raise _invalid("indicators", "distinct, non-empty codes")
        if type(weight) is not int or weight <= 0:
            raise _invalid("indicators", f"{code}: a positive whole weight")
        if not items:
            raise _invalid("indicators", f"{code}: at least one sub-item")
        item_codes: set[str] = set()
        clean_items = []
        for item in items:
            icode, imax = str(item.get("code", "")).strip(), item.get("max")
            if not icode or icode in item_codes:
                raise _invalid("indicators", f"{code}: distinct, non-empty sub-item codes")
            if type(imax) is not int or imax <= 0:
                raise _invalid("indicators", f"{code}.{icode}: a positive whole maximum")
            item_codes.add(icode)
            clean_items.append({"code": icode, "name": str(item.get("name") or icode), "max": imax})
        codes.add(code)
        clean.append(
            {
                "code": code,
                "name": str(ind.get("name") or code),
                "weight": weight,
                "items": clean_items,
            }
        )
    if sum(i["weight"] for i in clean) != 100:
        raise _invalid("indicators", "weights sum to 100")
    return clean


def _check_bands(bands: list[dict[str, Any]]) -> list[dict[str, int]]:
    clean = []
    for band in bands:
        low, reward = band.get("min_score"), band.get("reward_fen")
        if type(low) is not int or not 0 <= low <= 100 or type(reward) is not int or reward < 0:
            raise _invalid("bands", "min_score 0-100 and reward_fen >= 0, whole numbers")
        clean.append({"min_score": low, "reward_fen": reward})
    clean.sort(key=lambda b: -b["min_score"])
    if len({b["min_score"] for b in clean}) != len(clean):
        raise _invalid("bands", "distinct min_score")
    if any(a["reward_fen"] < b["reward_fen"] for a, b in itertools.pairwise(clean)):
        raise _invalid("bands", "a higher band never pays less")
    return clean


def create_plan(
    session: Session,
    actor: User,
    *,
    period: str,
    name: str,
    indicators: list[dict[str, Any]] | None = None,
    bands: list[dict[str, Any]] | None = None,
    fund: str = "township",
) -> AssessmentPlan:
    """A county admin's plan for one period of their county."""
    policy.ensure(policy.may_create_assessment_plan(actor))
    period, name = period.strip(), name.strip()
    if not period or len(period) > 16:
        raise _invalid("period", "1-16 characters")
    if not name or len(name) > 100:
        raise _invalid("name", "1-100 characters")
    if fund not in FUNDS:
        raise _invalid("fund", "township or county")
    plan = AssessmentPlan(
        county_id=actor.county_id,
        period=period,
        name=name,
        fund=fund,
        indicators=_check_indicators(indicators if indicators is not None else DEFAULT_INDICATORS),
        bands=_check_bands(bands if bands is not None else TONGREN_BANDS),
        created_by=actor.id,
    )
    add_unique(
        session, plan, Conflict(details={"reason": "the county already has a plan for this period"})
    )
    audit.record(
        session,
        actor=actor,
        action="assessment.plan.create",
        object_type="assessment_plan",
        object_id=plan.id,
        county_id=plan.county_id,
        after={"period": period, "fund": fund, "bands": plan.bands},
    )
    return plan


def get_plan(session: Session, plan_id: int, viewer: User) -> AssessmentPlan:
    plan = session.get(AssessmentPlan, plan_id)
    if plan is None or plan.county_id != viewer.county_id:
        raise NotFound()
    return plan


def list_plans(session: Session, viewer: User) -> list[AssessmentPlan]:
    return list(
        session.scalars(
            select(AssessmentPlan)
            .where(AssessmentPlan.county_id == viewer.county_id)
            .order_by(AssessmentPlan.id.desc())
        )
    )


def compute(
    plan: AssessmentPlan, item_scores: dict[str, dict[str, Any]]
) -> tuple[Decimal, dict[str, Any]]:
    """Each indicator scores weight × (marks / maximum marks) over its sub-items; the total is
    the sum, rounded half up to two decimals. Every sub-item needs a mark from 0 to its max."""
    total = Decimal(0)
    detail: dict[str, Any] = {}
    known = {ind["code"] for ind in plan.indicators}
    if set(item_scores) - known:
        raise _invalid("items", f"unknown indicators {sorted(set(item_scores) - known)}")
    for ind in plan.indicators:
        given = item_scores.get(ind["code"]) or {}
        unknown = set(given) - {i["code"] for i in ind["items"]}
        if unknown:
            raise _invalid("items", f"{ind['code']}: unknown sub-items {sorted(unknown)}")
        marks = Decimal(0)
        for item in ind["items"]:
            value = given.get(item["code"])
            if value is None or isinstance(value, bool):
                raise _invalid("items", f"{ind['code']}.{item['code']}: a mark is required")
            mark = Decimal(str(value))
            if not Decimal(0) <= mark <= item["max"]:
                raise _invalid("items", f"{ind['code']}.{item['code']}: 0 to {item['max']}")
            marks += mark
        maximum = sum(i["max"] for i in ind["items"])
        score = Decimal(ind["weight"]) * marks / Decimal(maximum)
        detail[ind["code"]] = {
            "marks": str(marks),
            "max": maximum,
            "weight": ind["weight"],
            "score": str(score.quantize(Decimal("0.01"), ROUND_HALF_UP)),
        }
        total += score
    return total.quantize(Decimal("0.01"), ROUND_HALF_UP), detail


def band_for(bands: list[dict[str, int]], score: Decimal) -> dict[str, int] | None:
    """The highest band whose minimum the score reaches (95.00 is in the 95 band)."""
    return next((b for b in bands if score >= b["min_score"]), None)


def _audit(
    session: Session, actor: User, action: str, a: VillageAssessment, note: str = ""
) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        object_type="village_assessment",
        object_id=a.id,
        county_id=a.county_id,
        township_id=a.township_id,
        after={"status": a.status, "score": a.score_centi / 100, "reward_fen": a.reward_fen},
        note=note,
    )


def score_village(
    session: Session,
    actor: User,
    plan: AssessmentPlan,
    village: Region,
    item_scores: dict[str, dict[str, Any]],
    *,
    now: datetime | None = None,
) -> VillageAssessment:
    """Score a village (or rescore one that is scored or rejected); the scorer is recorded."""
    at = now or utcnow()
    policy.ensure(policy.may_score_village(actor, village))
    ensure_visible(actor, village)
    if village.kind != "village" or village.county_id != plan.county_id:
        raise _invalid("village_id", "a village of the plan's county")
    collective = collective_of(session, village.id)
    if collective is None:
        raise _invalid("village_id", "the village has no collective to receive the reward")
    score, detail = compute(plan, item_scores)
    band = band_for(plan.bands, score)
    serialize_on(session, village.id)  # a concurrent first score then finds this one
    existing = session.scalar(
        select(VillageAssessment)
        .where(VillageAssessment.plan_id == plan.id, VillageAssessment.village_id == village.id)
        .with_for_update()
    )
    if existing is not None and existing.status not in ("scored", "rejected"):
        raise Conflict("invalid_state", details={"status": existing.status})
    a = existing or VillageAssessment(
        plan_id=plan.id,
        county_id=plan.county_id,
        township_id=village.township_id,
        village_id=village.id,
    )
    a.collective_id = collective.id
    a.status = "scored"
    a.item_scores = item_scores
    a.score_detail = detail
    a.score_centi = int(score * 100)
    a.band_min_score = band["min_score"] if band else None
    a.reward_fen = band["reward_fen"] if band else 0
    a.fund = plan.fund
    a.scored_by, a.scored_at = actor.id, at
    a.approved_by = a.approved_at = a.rejected_reason = None
    if existing is None:
        session.add(a)
    session.flush()
    _audit(session, actor, "assessment.score", a)
    return a


def get_assessment(session: Session, assessment_id: int, viewer: User) -> VillageAssessment:
    a = session.get(VillageAssessment, assessment_id)
    if a is None:
        raise NotFound()
    ensure_visible(viewer, a)
    if viewer.role == "village_clerk" and viewer.village_id != a.village_id:
        raise NotFound()
    return a


def _locked(session: Session, actor: User, assessment_id: int) -> VillageAssessment:
    policy.ensure(policy.may_work_on_assessments(actor))
    a = session.scalar(
        select(VillageAssessment)
        .where(VillageAssessment.id == assessment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if a is None:
        raise NotFound()
    ensure_visible(actor, a)
    ensure_can_write(actor)
    return a


def approve(
    session: Session, actor: User, assessment_id: int, *, now: datetime | None = None
) -> VillageAssessment:
    """The checker: an admin other than the scorer."""
    a = _locked(session, actor, assessment_id)
    if a.status != "scored":
        raise Conflict("invalid_state", details={"status": a.status})
    policy.ensure(
        policy.may_review_assessment(actor, a),
        "same_person",
        {"reason": "the scorer cannot approve"},
    )
    a.status, a.approved_by, a.approved_at = "approved", actor.id, now or utcnow()
    session.flush()
    _audit(session, actor, "assessment.approve", a)
    return a


def reject(session: Session, actor: User, assessment_id: int, reason: str) -> VillageAssessment:
    """Send a score back for rescoring, with a reason (the scorer cannot reject their own)."""
    a = _locked(session, actor, assessment_id)
    if a.status != "scored":
        raise Conflict("invalid_state", details={"status": a.status})
    policy.ensure(
        policy.may_review_assessment(actor, a),
        "same_person",
        {"reason": "the scorer cannot review"},
    )
    if not reason.strip():
        raise _invalid("reason", "required")
    a.status, a.rejected_reason = "rejected", reason.strip()[:1000]
    session.flush()
    _audit(session, actor, "assessment.reject", a, reason)
    return a


def idempotency_key(a: VillageAssessment) -> str:
    return f"village_reward:{a.id}"


def pay(
    session: Session, actor: User, assessment_id: int, *, now: datetime | None = None
) -> VillageAssessment:
    """Pay an approved reward: fund → the collective's reward account, one entry. Paying
    again answers the paid assessment and posts nothing (the entry's idempotency key is the
    assessment). A reward of 0 is marked paid with no entry."""
    at = now or utcnow()
    a = _locked(session, actor, assessment_id)
    policy.ensure(policy.may_pay_assessment(actor, a))
    if a.status == "paid":
        return a
    if a.status != "approved":
        raise Conflict("invalid_state", details={"status": a.status})
    if a.reward_fen > 0:
        collective = session.get(CreditSubject, a.collective_id)
        assert collective is not None
        village = session.get(Region, a.village_id)
        plan = session.get(AssessmentPlan, a.plan_id)
        assert village is not None
        assert plan is not None
        fund = (
            system_account(session, a.township_id, INTEGRITY_FUND)
            if a.fund == "township"
            else village_reward_account(session, a.township_id)
        )
        wallet = village_reward_account(session, a.township_id, collective)
        posted = post_entry(
            session,
            township_id=a.township_id,
            kind="village_reward",
            legs=[leg(fund, -a.reward_fen), leg(wallet, a.reward_fen)],
            actor=f"{actor.username} ({actor.role})",
            reason=f"{plan.period} {plan.name} 考评奖励 {village.name}"[:500],
            source=Source("village_assessment", str(a.id)),
            idempotency_key=idempotency_key(a),
            business_date=business_date(at),
        )
        a.entry_id = posted.entry_id
    a.status, a.paid_by, a.paid_at = "paid", actor.id, at
    session.flush()
    _audit(session, actor, "assessment.pay", a)
    return a


def list_assessments(
    session: Session, viewer: User, plan_id: int, *, status: str | None = None
) -> list[VillageAssessment]:
    stmt = restrict(
        select(VillageAssessment).where(VillageAssessment.plan_id == plan_id),
        viewer,
        county_col=VillageAssessment.county_id,
        township_col=VillageAssessment.township_id,
    )
    if viewer.role == "village_clerk":
        stmt = stmt.where(VillageAssessment.village_id == viewer.village_id)
    if status:
        stmt = stmt.where(VillageAssessment.status == status)
    return list(session.scalars(stmt.order_by(VillageAssessment.id)))
