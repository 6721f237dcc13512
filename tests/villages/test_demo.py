"""The demo's credit subjects beyond households."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.demo.builder import build
from mall.ledger import verify_ledger
from mall.subjects.models import CreditSubject
from mall.villages.models import CreditVillageApplication, VillageAssessment


def test_demo_has_entities_every_stage_and_paid_rewards(session: Session) -> None:
    build(session, households_per_village=1)
    kinds = Counter(session.scalars(select(CreditSubject.kind)))
    assert kinds == {"household": 6, "business": 3, "collective": 6, "village": 6}
    rated = session.scalars(
        select(CreditSubject.level_code).where(CreditSubject.kind == "business")
    ).all()
    assert sorted(rated) == ["A", "AA", "AAA"]
    stages = set(session.scalars(select(CreditVillageApplication.status)))
    assert stages == {"applied", "town_passed", "county_passed", "notice", "awarded", "rejected"}
    paid = session.scalars(select(VillageAssessment)).all()
    assert [a.status for a in paid] == ["paid"] * 3
    assert sorted(a.reward_fen for a in paid) == [200_000, 400_000, 1_000_000]
    assert verify_ledger(session.connection()).ok
