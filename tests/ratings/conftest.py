"""Fixtures for rating tests: a county with staff, and helpers to take a rating to effect."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from sqlalchemy.orm import Session

from mall.ledger.accounts import household_wallet
from mall.ledger.models import HOUSEHOLD_INTEGRITY
from mall.ratings import services
from mall.ratings.models import Rating
from mall.subjects.models import CreditSubject
from mall.users.models import User
from tests.factories import County, make_county, make_household, make_user

DAY = date(2026, 3, 2)


@dataclass
class World:
    county: County
    county_admin: User
    town_admin: User
    clerk: User
    household: CreditSubject


@pytest.fixture
def world(session: Session) -> World:
    c = make_county(session)
    return World(
        county=c,
        county_admin=make_user(session, "county_admin", c.county),
        town_admin=make_user(session, "township_admin", c.townships[0]),
        clerk=make_user(session, "village_clerk", c.villages[0]),
        household=make_household(session, c.villages[0]),
    )


def score_for(score: float) -> services.ScoreInput:
    return services.ScoreInput(score=score)


def make_effective(
    session: Session, actor: User, subject: CreditSubject, score: float, day: date = DAY
) -> Rating:
    rating = services.draft_rating(session, actor, subject, score_for(score), today=day)
    services.post_notice(session, actor, rating, today=day)
    services.activate_due(session, today=day + timedelta(days=7))
    session.refresh(rating)
    return rating


def integrity_balance(session: Session, subject: CreditSubject) -> int:
    wallet = household_wallet(session, subject, HOUSEHOLD_INTEGRITY)
    session.refresh(wallet)
    return wallet.posted_balance
