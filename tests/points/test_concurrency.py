"""Real threads on real PostgreSQL: a clerk's double click, two checkers at once and two
admins adding one rule get one result and a clear refusal, never a lost count, points above
a rule's cap or a 500."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mall.extensions import db
from mall.points import services
from mall.points.models import EarningRule, PointBatch, PointEvent
from mall.points.rules import create_rule
from mall.regions.models import Region
from mall.subjects.models import CreditSubject
from mall.users.models import User
from tests.factories import make_county, make_household, make_user
from tests.points.conftest import DAY, points_of
from tests.threads import count, run_threads

pytestmark = pytest.mark.postgres_only

THREADS = 6


class Ids:
    """What the threads need, as ids: each thread loads them in its own session. The rule
    `volunteer` gives 10 points, at most 30 a month."""

    def __init__(self) -> None:
        session = db.session()
        c = make_county(session)
        create_rule(
            session, None, c.county, code="volunteer", name="志愿服务", points=10, cap_month=30
        )
        self.county = c.county.id
        self.village = c.villages[0].id
        self.clerk = make_user(session, "village_clerk", c.villages[0]).id
        self.town_admin = make_user(session, "township_admin", c.townships[0]).id
        self.household = make_household(session, c.villages[0], pin=None).id
        session.commit()


def test_a_rule_added_six_times_at_once_is_one_rule(committed: Flask) -> None:
    ids = Ids()

    def add(s: Session) -> None:
        county = s.get_one(Region, ids.county)
        create_rule(s, None, county, code="tidy", name="庭院整洁", points=5)

    outcomes = run_threads(THREADS, add)
    assert sorted(outcomes) == ["conflict"] * (THREADS - 1) + ["ok"]
    assert count(select(func.count()).where(EarningRule.code == "tidy")) == 1


def test_events_recorded_at_once_are_all_counted(committed: Flask) -> None:
    ids = Ids()
    session = db.session()
    batch_id = services.create_batch(session, session.get_one(User, ids.clerk), ids.village).id
    session.commit()

    def record(s: Session) -> None:
        batch = s.get_one(PointBatch, batch_id)
        services.record_event(
            s,
            s.get_one(User, ids.clerk),
            batch,
            subject=s.get_one(CreditSubject, ids.household),
            rule_code="volunteer",
            occurred_on=DAY,
            today=DAY,
        )

    assert run_threads(THREADS, record) == ["ok"] * THREADS
    with Session(db.engine) as s:
        batch = s.get_one(PointBatch, batch_id)
        assert (batch.events, batch.rows_total) == (THREADS, THREADS)
    assert count(select(func.count()).where(PointEvent.batch_id == batch_id)) == THREADS


def test_batches_approved_at_once_keep_the_monthly_cap(committed: Flask) -> None:
    ids = Ids()
    session = db.session()
    clerk = session.get_one(User, ids.clerk)
    batch_ids = []
    for _ in range(THREADS):
        batch = services.create_batch(session, clerk, ids.village)
        for day in (DAY, DAY - timedelta(days=1), DAY - timedelta(days=2)):  # 30: the cap
            services.record_event(
                session,
                clerk,
                batch,
                subject=session.get_one(CreditSubject, ids.household),
                rule_code="volunteer",
                occurred_on=day,
                today=DAY,
            )
        services.submit_batch(session, clerk, batch)
        batch_ids.append(batch.id)
    session.commit()
    taken = iter(batch_ids)

    def approve(s: Session) -> None:
        services.approve_batch(s, s.get_one(User, ids.town_admin), next(taken), today=DAY)

    assert run_threads(THREADS, approve) == ["ok"] * THREADS
    with Session(db.engine) as s:
        assert points_of(s, s.get_one(CreditSubject, ids.household)) == 30
