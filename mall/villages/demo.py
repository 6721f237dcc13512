"""The demo county's credit subjects beyond households, through the real services: business
entities with ratings, a collective and a village subject for every village, one credit-village
application at each stage, and last year's assessment with rewards paid."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.clock import business_date, utcnow
from mall.entities import services as entities
from mall.ratings import services as ratings
from mall.regions.models import Region
from mall.staff.services import create_user
from mall.subjects.services import MemberInput
from mall.users.models import User
from mall.villages import assessment, workflow

BUSINESSES = [
    ("family_farm", "{village}建华家庭农场", "张建华", 92),
    ("family_farm", "{village}春花生态养殖场", "刘春花", 78),
    ("cooperative", "{village}猕猴桃种植专业合作社", "王德明", 85),
]
MARKS = [  # (party, credit, finance, governance) as a share of each sub-item's maximum
    (1.0, 0.96, 0.95, 0.95),
    (0.9, 0.85, 0.85, 0.8),
    (0.8, 0.75, 0.7, 0.8),
]


def _uscc(index: int) -> str:
    body = f"93520221MA{index:07d}"
    return body + entities.uscc_check_char(body)


def _user(session: Session, m: Any, username: str, region: Region, role: str) -> User:
    password = "demo-password-2026"  # noqa: S105 (the published demo login)
    user = create_user(
        session,
        username=username,
        password=password,
        role=role,
        region=region,
        display_name=username,
    )
    m.admins.append(
        {
            "username": username,
            "password": password,
            "role": role,
            "region": region.name,
            "region_id": region.id,
            "partner_id": None,
        }
    )
    return user


def build_villages(session: Session, m: Any, county: Region) -> None:
    now = utcnow()
    day = business_date(now)
    county_admin = session.scalar(select(User).where(User.username == "county_admin"))
    town_admin = session.scalar(select(User).where(User.username == "town1_admin"))
    assert county_admin is not None
    assert town_admin is not None
    decider = _user(session, m, "county_admin2", county, "county_admin")
    town = session.get(Region, town_admin.township_id)
    assert town is not None
    checker = _user(session, m, "town1_admin2", town, "township_admin")
    villages = list(
        session.scalars(
            select(Region)
            .where(Region.county_id == county.id, Region.kind == "village")
            .order_by(Region.id)
        )
    )
    for village in villages:
        entities.ensure_village_subjects(session, village)
    # Business entities, rated on the AAA-D family (notice ran its course already).
    drafted = []
    for i, (kind, name, rep, score) in enumerate(BUSINESSES):
        village = villages[i]
        business = entities.create_business(
            session,
            village=village,
            name=name.format(village=village.name),
            uscc=_uscc(i + 1),
            business_type=kind,
            legal_rep=rep,
            members=[MemberInput("李秀英", "成员")],
        )
        rating = ratings.draft_rating(
            session, None, business, ratings.ScoreInput(score=score), today=day - timedelta(days=10)
        )
        ratings.post_notice(session, None, rating, today=day - timedelta(days=10))
        drafted.append(rating)
    ratings.activate(session, drafted, day)
    # One application at each stage: applied, town_passed, county_passed, notice, awarded,
    # rejected (the demo has six villages).
    earlier = now - timedelta(days=10)
    stages = ["applied", "town_passed", "county_passed", "notice", "awarded", "rejected"]
    for village, stage in zip(villages, stages, strict=False):
        at = earlier if stage == "awarded" else now
        tadmin = (
            town_admin
            if village.township_id == town_admin.township_id
            else session.scalar(
                select(User).where(
                    User.township_id == village.township_id, User.role == "township_admin"
                )
            )
        )
        assert tadmin is not None
        app = workflow.apply(
            session, tadmin, village, "AAA" if stage == "awarded" else "AA", "申报材料齐全", now=at
        )
        if stage == "applied":
            continue
        if stage == "rejected":
            workflow.town_review(
                session, tadmin, app, approve=False, opinion="信用户占比未达标", now=at
            )
            continue
        workflow.town_review(session, tadmin, app, approve=True, opinion="同意上报", now=at)
        if stage == "town_passed":
            continue
        workflow.county_review(session, county_admin, app, approve=True, opinion="复审合格", now=at)
        if stage == "county_passed":
            continue
        workflow.post_notice(session, county_admin, app, now=at)
        if stage == "awarded":
            workflow.decide(
                session, decider, app, approve=True, decision_no=f"信用办〔{day.year}〕1号", now=now
            )
    # Last year's assessment in the first township, scored, approved and paid.
    plan = assessment.create_plan(
        session, county_admin, period=str(day.year - 1), name=f"{day.year - 1}年度村级考评"
    )
    for village, shares in zip(
        [v for v in villages if v.township_id == town.id], MARKS, strict=False
    ):
        marks = {
            ind["code"]: {it["code"]: str(round(it["max"] * share, 2)) for it in ind["items"]}
            for ind, share in zip(plan.indicators, shares, strict=True)
        }
        scored = assessment.score_village(session, town_admin, plan, village, marks, now=now)
        assessment.approve(session, checker, scored.id, now=now)
        assessment.pay(session, checker, scored.id, now=now)
