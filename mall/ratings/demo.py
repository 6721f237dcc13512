"""The demo county's ratings and points, through the real services: a scheme (the default five
stars), earning rules, every household's rating from notice to effect (integrity money granted
from the township funds), and one approved points batch per township (maker: the township
admin, checker: the county admin)."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.clock import business_date
from mall.points import services as points
from mall.points.rules import create_rule
from mall.ratings import services as ratings
from mall.ratings.schemes import BUILT_IN, DEFAULT_SCHEME
from mall.regions.models import Region
from mall.subjects.models import CreditSubject
from mall.users.models import User

RULES: list[tuple[str, str, int, str, dict[str, int]]] = [
    ("volunteer", "志愿服务", 10, "volunteering", {"cap_month": 50}),
    ("public_good", "公益活动", 5, "public_good", {}),
    ("customs", "移风易俗(婚事新办、丧事简办)", 8, "customs_reform", {"cap_year": 40}),
    ("village_rules", "遵守村规民约", 3, "village_rules", {"cap_week": 3}),
    ("litter", "乱扔垃圾", -5, "village_rules", {}),
]


def seed_ratings_and_points(
    session: Session, manifest: Any, county: Region, today: date | None = None
) -> None:
    day = today or business_date()
    for code, name, pts, category, caps in RULES:
        create_rule(
            session,
            None,
            county,
            code=code,
            name=name,
            points=pts,
            category=category,
            cap_week=caps.get("cap_week"),
            cap_month=caps.get("cap_month"),
            cap_year=caps.get("cap_year"),
        )
    levels = {lv.code: lv for lv in BUILT_IN[DEFAULT_SCHEME].levels}
    wanted = {h["ref"]: h.get("level") for h in manifest.households}
    subjects = list(
        session.scalars(
            select(CreditSubject)
            .where(CreditSubject.ref.in_(list(wanted)))
            .order_by(CreditSubject.id)
        )
    )
    posted_on = day - timedelta(days=10)  # the notice ran its 7 days already
    drafted = []
    for subject in subjects:
        level = levels.get(wanted[subject.ref] or "")
        if level is None:
            continue
        rating = ratings.draft_rating(
            session, None, subject, ratings.ScoreInput(score=level.score_threshold), today=posted_on
        )
        ratings.post_notice(session, None, rating, today=posted_on)
        drafted.append(rating)
    ratings.activate(session, drafted, day)
    _points(session, subjects, day)


def _points(session: Session, subjects: list[CreditSubject], day: date) -> None:
    rng = random.Random(7)
    checker = session.scalar(select(User).where(User.username == "county_admin"))
    assert checker is not None
    by_township: dict[int, list[CreditSubject]] = {}
    for s in subjects:
        by_township.setdefault(s.township_id, []).append(s)
    for township_id, members in sorted(by_township.items()):
        maker = session.scalar(
            select(User).where(User.township_id == township_id, User.role == "township_admin")
        )
        assert maker is not None
        batch = points.create_batch(session, maker, township_id)
        for s in members:
            for code in rng.sample([r[0] for r in RULES[:4]], 2):
                points.record_event(
                    session,
                    maker,
                    batch,
                    subject=s,
                    rule_code=code,
                    occurred_on=day - timedelta(days=rng.randint(0, 20)),
                    today=day,
                )
        points.submit_batch(session, maker, batch)
        points.approve_batch(session, checker, batch.id, note="演示批次", today=day)
