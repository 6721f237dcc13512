"""A county with rules, a clerk (maker) and a township admin (checker)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date

import pytest
from openpyxl import Workbook
from sqlalchemy.orm import Session

from mall.ledger.accounts import household_wallet
from mall.ledger.models import HOUSEHOLD_POINTS
from mall.points.rules import create_rule
from mall.subjects.models import CreditSubject
from mall.users.models import User
from tests.factories import County, make_county, make_household, make_user

DAY = date(2026, 3, 20)


@dataclass
class World:
    county: County
    clerk: User
    town_admin: User
    other_admin: User
    households: list[CreditSubject]


@pytest.fixture
def world(session: Session) -> World:
    c = make_county(session)
    create_rule(
        session,
        None,
        c.county,
        code="volunteer",
        name="志愿服务",
        points=10,
        category="volunteering",
        cap_month=30,
    )
    create_rule(
        session, None, c.county, code="public", name="公益活动", points=5, category="public_good"
    )
    create_rule(
        session, None, c.county, code="litter", name="乱扔垃圾", points=-8, category="village_rules"
    )
    return World(
        county=c,
        clerk=make_user(session, "village_clerk", c.villages[0]),
        town_admin=make_user(session, "township_admin", c.townships[0]),
        other_admin=make_user(session, "township_admin", c.townships[0]),
        households=[make_household(session, c.villages[0], pin=None) for _ in range(3)],
    )


def points_of(session: Session, subject: CreditSubject) -> int:
    wallet = household_wallet(session, subject, HOUSEHOLD_POINTS)
    session.refresh(wallet)
    return wallet.posted_balance


def xlsx(rows: list[list[object]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["户编号", "规则代码", "日期", "备注"])
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
