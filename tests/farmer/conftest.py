"""Fixtures of the farmer tests: a rated household with money, points, a card and a list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest
from sqlalchemy.orm import Session

from mall.benefits.models import Benefit
from mall.codes.services import issue_card
from mall.ledger import Leg, household_wallets, partner_payable, post_entry, system_account
from mall.ledger.models import CNY, INTEGRITY_FUND, POINTS, POINTS_FUND
from mall.partners.models import Partner
from mall.subjects.models import CreditSubject
from tests.factories import County, make_county, make_household, make_partner

PHONE = "13800138111"


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
