"""The demo county: believable, complete, and its manifest usable."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mall.auth.services import login_farmer, login_staff
from mall.demo.builder import build
from mall.partners.models import PARTNER_CATEGORIES, Partner
from mall.regions.models import Region
from mall.subjects.models import CreditSubject


def test_demo_builds_a_county(session: Session) -> None:
    m = build(session, households_per_village=10)
    kinds = Counter(session.scalars(select(Region.kind)))
    assert kinds == {"county": 1, "township": 2, "village": 6}
    households = select(func.count()).where(CreditSubject.kind == "household")
    assert session.scalar(households) == 60
    categories = set(session.scalars(select(Partner.category)))
    assert {"supermarket", "wholesale", "hospital", "scenic_spot", "bus", "library"} <= categories
    assert categories <= set(PARTNER_CATEGORIES)
    assert {h["level"] for h in m.households} >= {None, "1", "3", "5"}
    roles = {a["role"] for a in m.admins}
    assert roles == {"county_admin", "auditor", "township_admin", "village_clerk", "cashier"}
    assert all(len(t["secret"]) >= 64 for t in m.terminals)


def test_manifest_logins_work(session: Session) -> None:
    m = build(session, households_per_village=2)
    admin = m.admins[0]
    assert login_staff(session, admin["username"], admin["password"]).username == admin["username"]
    h = m.households[0]
    assert login_farmer(session, h["phone"], h["pin"]).access_token
