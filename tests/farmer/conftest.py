"""Fixtures of the farmer tests: a rated household with money, points, a card and a list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from sqlalchemy.orm import Session

from mall.benefits.models import Benefit
from mall.codes.services import issue_card
from mall.farmer import services as farmer_services
from mall.ledger import Leg, household_wallets, partner_payable, post_entry, system_account
from mall.ledger.models import CNY, INTEGRITY_FUND, POINTS, POINTS_FUND
from mall.partners.models import Partner
from mall.ratings import services as ratings
from mall.ratings.models import Rating
from mall.subjects.models import CreditSubject
from tests.factories import County, make_county, make_household, make_partner
from tests.ratings.conftest import score_for

PHONE = "13800138111"
RATED_ON = date(2026, 3, 2)  # notice 3-2 to 3-8 (7 days), appeals until 3-18, answers in 5 days


@dataclass
class Farm:
    county: County
    household: CreditSubject
    neighbour: CreditSubject
    shop: Partner
    hospital: Partner


def make_farm(session: Session) -> Farm:
    county = make_county(session, townships=2, villages_per_township=1)
    household = make_household(session, county.villages[0], phone=PHONE)
    household.level_code, household.level_rank = "3", 3
    household.level_valid_until = date(2099, 12, 31)
    neighbour = make_household(session, county.villages[0], name="王小明")
    shop = make_partner(session, county.townships[0], name="龙场信用超市")
    hospital = make_partner(session, county.townships[0], category="hospital", name="龙场卫生院")
    session.flush()
    town = county.townships[0].id
    wallets = household_wallets(session, household)
    points_fund = system_account(session, town, POINTS_FUND, POINTS)
    integrity_fund = system_account(session, town, INTEGRITY_FUND, CNY)
    payable = partner_payable(session, town, shop.id, CNY)
    post_entry(
        session,
        township_id=town,
        kind="integrity_granted",
        legs=[Leg(integrity_fund.id, -120000), Leg(wallets.integrity.id, 120000)],
        actor="system",
        reason="三星级诚信金",
    )
    post_entry(
        session,
        township_id=town,
        kind="points_issued",
        legs=[Leg(points_fund.id, -50), Leg(wallets.points.id, 50)],
        actor="user:clerk",
        reason="志愿服务",
    )
    post_entry(
        session,
        township_id=town,
        kind="integrity_spent",
        legs=[Leg(wallets.integrity.id, -606), Leg(payable.id, 606)],
        actor="terminal:T1",
    )
    session.add(
        Benefit(
            county_id=county.county.id,
            partner_category="hospital",
            kind="deposit_waiver",
            min_level_rank=3,
            title_zh="住院免押金",
            title_en="No deposit",
            valid_from=date(2020, 1, 1),
            funded_by="partner",
            active=True,
            one_at_a_time=True,
        )
    )
    session.add(
        Benefit(
            county_id=county.county.id,
            partner_category="scenic_spot",
            kind="percent_discount",
            percent_bp=2000,
            min_level_rank=4,
            title_zh="门票八折",
            valid_from=date(2020, 1, 1),
            funded_by="partner",
            active=True,
        )
    )
    issue_card(session, household)
    session.flush()
    return Farm(county, household, neighbour, shop, hospital)


@pytest.fixture
def farm(session: Session) -> Farm:
    return make_farm(session)


class Calendar:
    """The business date the farmer services see (they pass it on to the rating services)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.day = RATED_ON
        monkeypatch.setattr(farmer_services, "business_date", lambda at=None: self.day)

    def set(self, day: date) -> None:
        self.day = day


@pytest.fixture
def calendar(monkeypatch: pytest.MonkeyPatch) -> Calendar:
    return Calendar(monkeypatch)


def rating_on_notice(
    session: Session, subject: CreditSubject, day: date = RATED_ON, score: float = 85
) -> Rating:
    """A rating drafted and posted for notice on `day` (by the system)."""
    rating = ratings.draft_rating(session, None, subject, score_for(score), today=day)
    return ratings.post_notice(session, None, rating, today=day)


def effective_rating(session: Session, subject: CreditSubject, day: date = RATED_ON) -> Rating:
    """A rating posted on `day` that took effect when its notice ended (day + 7)."""
    rating = rating_on_notice(session, subject, day)
    ratings.activate_due(session, today=day + timedelta(days=7))
    session.refresh(rating)
    assert rating.status == "effective"
    assert rating.effective_from == day + timedelta(days=7)
    return rating
