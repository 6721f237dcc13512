"""Real threads on real PostgreSQL: two admins acting on one village at the same moment get
one result and a clear refusal, never a duplicate, a lost update or a 500."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mall.entities.services import ensure_village_subjects
from mall.extensions import db
from mall.ledger.models import Entry
from mall.regions.models import Region
from mall.users.models import User
from mall.villages import assessment, workflow
from mall.villages.models import (
    AssessmentPlan,
    CreditVillageApplication,
    CreditVillageEvent,
    VillageAssessment,
)
from tests.factories import make_county, make_user
from tests.threads import count, run_threads
from tests.villages.conftest import NOW
from tests.villages.test_assessment import INDICATORS, _marks

pytestmark = pytest.mark.postgres_only

THREADS = 12


class Ids:
    """What the threads need, as ids: each thread loads them in its own session."""

    def __init__(self) -> None:
        session = db.session()
        c = make_county(session)
        for village in c.villages:
            ensure_village_subjects(session, village)
        self.village = c.villages[0].id
        self.clerk = make_user(session, "village_clerk", c.villages[0]).id
        self.town_admin = make_user(session, "township_admin", c.townships[0]).id
        self.town_admin2 = make_user(session, "township_admin", c.townships[0]).id
        self.county_admin = make_user(session, "county_admin", c.county).id
        self.county_admin2 = make_user(session, "county_admin", c.county).id
        session.commit()


def yearly_plan(session: Session, ids: Ids) -> AssessmentPlan:
    return assessment.create_plan(
        session,
        session.get_one(User, ids.county_admin),
        period="2025",
        name="年度",
        indicators=INDICATORS,
    )


def test_one_application_when_a_village_applies_twelve_times_at_once(committed: Flask) -> None:
    ids = Ids()

    def apply(session: Session) -> None:
        village = session.get_one(Region, ids.village)
        workflow.apply(session, session.get_one(User, ids.clerk), village, "AA", "申报", now=NOW)

    outcomes = run_threads(THREADS, apply)
    assert outcomes.count("ok") == 1
    assert outcomes.count("invalid_state") == THREADS - 1  # "an application is under way"
    assert count(select(func.count()).select_from(CreditVillageApplication)) == 1


def test_one_decision_when_twelve_decide_at_once(committed: Flask) -> None:
    ids = Ids()
    session = db.session()
    village = session.get_one(Region, ids.village)
    app = workflow.apply(session, session.get_one(User, ids.clerk), village, "AA", "申报", now=NOW)
    workflow.town_review(
        session, session.get_one(User, ids.town_admin), app, approve=True, opinion="同意", now=NOW
    )
    workflow.county_review(
        session, session.get_one(User, ids.county_admin), app, approve=True, opinion="合格", now=NOW
    )
    workflow.post_notice(session, session.get_one(User, ids.county_admin), app, now=NOW)
    session.commit()
    app_id = app.id

    def decide(s: Session) -> None:
        decider = s.get_one(User, ids.county_admin2)
        app = workflow.get_application(s, app_id, decider)  # as the views read it: no lock
        workflow.decide(
            s, decider, app, approve=True, decision_no="县〔2026〕1号", now=NOW + timedelta(7)
        )

    outcomes = run_threads(THREADS, decide)
    assert outcomes.count("ok") == 1
    assert outcomes.count("invalid_state") == THREADS - 1
    with Session(db.engine) as s:
        awarded = s.get_one(CreditVillageApplication, app_id)
        assert awarded.status == "awarded"
        assert awarded.plaque_serial
    awards = select(func.count()).where(
        CreditVillageEvent.application_id == app_id, CreditVillageEvent.action == "awarded"
    )
    assert count(awards) == 1


def test_first_scores_of_one_village_at_once_make_one_assessment(committed: Flask) -> None:
    ids = Ids()
    session = db.session()
    plan = yearly_plan(session, ids)
    session.commit()
    plan_id = plan.id

    def score(s: Session) -> None:
        village = s.get_one(Region, ids.village)
        the_plan = s.get_one(AssessmentPlan, plan_id)
        assessment.score_village(
            s, s.get_one(User, ids.town_admin), the_plan, village, _marks(10, 10, 45), now=NOW
        )

    outcomes = run_threads(THREADS, score)
    assert outcomes == ["ok"] * THREADS  # the first scores, the others rescore it
    assert count(select(func.count()).select_from(VillageAssessment)) == 1


def test_a_reward_paid_by_twelve_at_once_is_posted_once(committed: Flask) -> None:
    ids = Ids()
    session = db.session()
    plan = yearly_plan(session, ids)
    village = session.get_one(Region, ids.village)
    scored = assessment.score_village(
        session, session.get_one(User, ids.town_admin), plan, village, _marks(10, 10, 45), now=NOW
    )
    assessment.approve(session, session.get_one(User, ids.town_admin2), scored.id)
    session.commit()
    assessment_id = scored.id

    def pay(s: Session) -> None:
        assessment.pay(s, s.get_one(User, ids.town_admin), assessment_id, now=NOW)

    outcomes = run_threads(THREADS, pay)
    assert outcomes == ["ok"] * THREADS  # paying again answers the paid assessment
    rewards = select(func.count()).where(Entry.kind == "village_reward")
    assert count(rewards) == 1
