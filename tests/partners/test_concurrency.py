"""Partners created and renamed at once (PostgreSQL): one partner of a name per township,
and the others refused with a conflict, never a 500."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mall.extensions import db
from mall.partners.models import Partner
from mall.partners.services import create_partner, update_partner
from mall.regions.models import Region
from mall.users.models import User
from tests.factories import make_county, make_partner, make_user
from tests.threads import count, run_threads

pytestmark = pytest.mark.postgres_only

THREADS = 6


def test_one_partner_when_the_same_one_is_created_six_times_at_once(committed: Flask) -> None:
    session = db.session()
    township_id = make_county(session).townships[0].id
    session.commit()

    def create(s: Session) -> None:
        create_partner(
            s, township=s.get_one(Region, township_id), name="龙场信用超市", category="bank"
        )

    outcomes = run_threads(THREADS, create)
    assert sorted(outcomes) == ["conflict"] * (THREADS - 1) + ["ok"]
    assert count(select(func.count()).select_from(Partner)) == 1


def test_one_rename_wins_when_six_partners_take_one_name_at_once(committed: Flask) -> None:
    session = db.session()
    town = make_county(session).townships[0]
    admin_id = make_user(session, "township_admin", town).id
    ids = [make_partner(session, town, name=f"店{i}").id for i in range(THREADS)]
    session.commit()
    turn = iter(ids)

    def rename(s: Session) -> None:
        partner = s.get_one(Partner, next(turn))
        update_partner(s, s.get_one(User, admin_id), partner, {"name": "龙场信用超市"})

    outcomes = run_threads(THREADS, rename)
    assert sorted(outcomes) == ["conflict"] * (THREADS - 1) + ["ok"]
    taken = select(func.count()).where(Partner.name == "龙场信用超市")
    assert count(taken) == 1
