"""The demo county: believable, complete, and its manifest usable."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mall.auth.services import login_farmer, login_staff
from mall.demo.builder import build
from mall.demo.names import id_number
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


def test_demo_id_numbers_are_valid_and_unique_for_a_large_county() -> None:
    """bench/run.py builds 10,800 households: a random date and sequence code collided there."""
    rng = random.Random(7)
    numbers = [id_number(rng, "520221", i) for i in range(30_000)]
    assert len(set(numbers)) == len(numbers)
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    for n in numbers[::997]:
        born = date(int(n[6:10]), int(n[10:12]), int(n[12:14]))
        assert date(1945, 1, 1) <= born <= date(1995, 12, 31)
        total = sum(int(d) * w for d, w in zip(n[:17], weights, strict=True))
        assert n[17] == "10X98765432"[total % 11]
