"""A county with two county admins (re-reviewer and decider), township admins and a clerk."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from mall.entities.services import ensure_village_subjects
from mall.users.models import User
from tests.factories import County, make_county, make_user

NOW = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # 12:00 in Asia/Shanghai


@dataclass
class World:
    c: County
    county_admin: User
    county_admin2: User
    town_admin: User
    town_admin2: User
    other_town_admin: User
    clerk: User
    auditor: User


@pytest.fixture
def world(session: Session) -> World:
    c = make_county(session)
    for village in c.villages:
        ensure_village_subjects(session, village)
    return World(
        c=c,
        county_admin=make_user(session, "county_admin", c.county),
        county_admin2=make_user(session, "county_admin", c.county),
        town_admin=make_user(session, "township_admin", c.townships[0]),
        town_admin2=make_user(session, "township_admin", c.townships[0]),
        other_town_admin=make_user(session, "township_admin", c.townships[1]),
        clerk=make_user(session, "village_clerk", c.villages[0]),
        auditor=make_user(session, "auditor", c.county),
    )
