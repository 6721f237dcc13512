"""Fixtures of the benefit tests: a county with partners, a rated household, a list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from sqlalchemy.orm import Session

from mall.benefits.models import Benefit
from mall.partners.models import Partner
from mall.subjects.models import CreditSubject
from tests.factories import County, make_county, make_household, make_partner

TODAY = date(2026, 11, 21)


@dataclass
class World:
    county: County
    household: CreditSubject
    hospital: Partner
    scenic: Partner
    other_town_hospital: Partner
    supermarket: Partner


def rate(subject: CreditSubject, rank: int | None, until: date = date(2099, 12, 31)) -> None:
    subject.level_code = None if rank is None else str(rank)
    subject.level_rank = rank
    subject.level_valid_until = None if rank is None else until


def add_benefit(session: Session, county: County, **kw: Any) -> Benefit:
    values: dict[str, Any] = {
        "county_id": county.county.id,
        "kind": "deposit_waiver",
        "min_level_rank": 1,
        "title_zh": "测试权益",
        "valid_from": date(2026, 1, 1),
        "funded_by": "partner",
        "active": True,
    }
    if "partner_id" not in kw:
        values["partner_category"] = "hospital"
    values.update(kw)
    benefit = Benefit(**values)
    session.add(benefit)
    session.flush()
    return benefit


def build_world(session: Session) -> World:
    county = make_county(session, townships=2, villages_per_township=1)
    household = make_household(session, county.villages[0])
    rate(household, 3)
    return World(
        county=county,
        household=household,
        hospital=make_partner(session, county.townships[0], category="hospital", name="一镇卫生院"),
        scenic=make_partner(session, county.townships[0], category="scenic_spot", name="草原景区"),
        other_town_hospital=make_partner(
            session, county.townships[1], category="hospital", name="二镇卫生院"
        ),
        supermarket=make_partner(session, county.townships[0], name="一镇信用超市"),
    )


@pytest.fixture
def world(session: Session) -> World:
    w = build_world(session)
    session.flush()
    return w
