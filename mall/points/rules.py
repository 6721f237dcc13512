"""Earning rules per region, inherited downward: a township or village rule with the same code
replaces (or, inactive, switches off) the county's."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.audit import services as audit
from mall.db import add_unique
from mall.errors import Conflict, NotFound, ValidationFailed
from mall.points.models import RULE_CATEGORIES, EarningRule
from mall.regions.models import Region
from mall.regions.services import ancestry
from mall.users import policy
from mall.users.models import User
from mall.users.scope import ensure_visible


def _snapshot(rule: EarningRule) -> dict[str, object]:
    return {
        "code": rule.code,
        "name": rule.name,
        "points": rule.points,
        "cap_week": rule.cap_week,
        "cap_month": rule.cap_month,
        "cap_year": rule.cap_year,
        "active": rule.active,
    }


def create_rule(
    session: Session,
    actor: User | None,
    region: Region,
    *,
    code: str,
    name: str,
    points: int,
    category: str = "other",
    cap_week: int | None = None,
    cap_month: int | None = None,
    cap_year: int | None = None,
    active: bool = True,
) -> EarningRule:
    if actor is not None:
        ensure_visible(actor, region)
        policy.ensure(policy.may_create_point_rule(actor, region))
    problems: dict[str, list[str]] = {}
    if points == 0:
        problems["points"] = ["not zero"]
    if category not in RULE_CATEGORIES:
        problems["category"] = list(RULE_CATEGORIES)
    if not code.strip() or len(code) > 32:
        problems["code"] = ["1-32 characters"]
    if problems:
        raise ValidationFailed(details={"fields": problems})
    if session.scalar(
        select(EarningRule.id).where(EarningRule.region_id == region.id, EarningRule.code == code)
    ):
        raise Conflict(details={"code": code})
    rule = EarningRule(
        region_id=region.id,
        county_id=region.county_id,
        township_id=region.township_id,
        code=code.strip(),
        name=name.strip(),
        category=category,
        points=points,
        cap_week=cap_week,
        cap_month=cap_month,
        cap_year=cap_year,
        active=active,
    )
    # Two admins adding the same code at once both pass the check above; the unique key
    # refuses the second, answered as the check would: a Conflict, not a 500. (So is a
    # code given with spaces around it, which the check compared unstripped.)
    add_unique(session, rule, Conflict(details={"code": code.strip()}))
    if actor is not None:
        audit.record(
            session,
            actor=actor,
            action="points.rule.create",
            object_type="point_rule",
            object_id=rule.id,
            county_id=rule.county_id,
            township_id=rule.township_id,
            after=_snapshot(rule),
        )
    return rule


def update_rule(
    session: Session, actor: User, rule: EarningRule, changes: dict[str, object]
) -> EarningRule:
    ensure_visible(actor, rule)
    policy.ensure(policy.may_edit_point_rule(actor, rule))
    before = _snapshot(rule)
    for key in ("name", "points", "cap_week", "cap_month", "cap_year", "active"):
        if key in changes:
            setattr(rule, key, changes[key])
    if rule.points == 0:
        raise ValidationFailed(details={"fields": {"points": ["not zero"]}})
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="points.rule.update",
        object_type="point_rule",
        object_id=rule.id,
        county_id=rule.county_id,
        township_id=rule.township_id,
        before=before,
        after=_snapshot(rule),
    )
    return rule


def get_rule(session: Session, rule_id: int) -> EarningRule:
    rule = session.get(EarningRule, rule_id)
    if rule is None:
        raise NotFound()
    return rule


def effective_rules(
    session: Session, region: Region, *, include_inactive: bool = False
) -> dict[str, EarningRule]:
    """The rules that apply in `region`, by code (nearest region wins)."""
    chain = ancestry(session, region)  # nearest first
    depth = {r.id: i for i, r in enumerate(chain)}
    rows = session.scalars(select(EarningRule).where(EarningRule.region_id.in_(list(depth))))
    best: dict[str, EarningRule] = {}
    for rule in sorted(rows, key=lambda r: -depth[r.region_id]):
        best[rule.code] = rule  # nearer regions come later and replace
    if include_inactive:
        return best
    return {code: r for code, r in best.items() if r.active}
