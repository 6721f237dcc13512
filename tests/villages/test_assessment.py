"""Village assessment: weighted scoring over sub-items, bands, maker-checker, exact and
idempotent reward entries, region isolation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.entities.services import collective_of
from mall.errors import Conflict, Forbidden, NotFound, ValidationFailed
from mall.ledger import verify_ledger
from mall.ledger.models import INTEGRITY_FUND, VILLAGE_REWARD, Account, Entry, Posting
from mall.villages import assessment
from mall.villages.models import AssessmentPlan
from tests.villages.conftest import NOW, World

INDICATORS = [
    {
        "code": "party",
        "name": "党建",
        "weight": 40,
        "items": [{"code": "a", "max": 10}, {"code": "b", "max": 10}],
    },
    {"code": "credit", "name": "信用环境", "weight": 60, "items": [{"code": "c", "max": 50}]},
]


def _marks(a: Any, b: Any, c: Any) -> dict[str, dict[str, Any]]:
    return {"party": {"a": a, "b": b}, "credit": {"c": c}}


@pytest.fixture
def plan(session: Session, world: World) -> AssessmentPlan:
    return assessment.create_plan(
        session, world.county_admin, period="2025", name="年度考评", indicators=INDICATORS
    )


def test_weighted_score_over_sub_items_and_bands(plan: AssessmentPlan) -> None:
    # party 40 × 15/20 = 30, credit 60 × 40/50 = 48 → 78.
    score, detail = assessment.compute(plan, _marks(10, 5, 40))
    assert score == Decimal("78.00")
    assert detail["party"]["score"] == "30.00"
    assert detail["credit"]["score"] == "48.00"
    assert assessment.band_for(plan.bands, score) == {"min_score": 75, "reward_fen": 200_000}
    assert assessment.band_for(plan.bands, Decimal("95.00"))["reward_fen"] == 1_000_000
    assert assessment.band_for(plan.bands, Decimal("94.99"))["reward_fen"] == 400_000
    assert assessment.band_for(plan.bands, Decimal("85"))["reward_fen"] == 400_000
    assert assessment.band_for(plan.bands, Decimal("74.99")) is None
    score, _ = assessment.compute(plan, _marks("9.5", 10, 50))  # 40 × 19.5/20 + 60 = 99
    assert score == Decimal("99.00")


@pytest.mark.parametrize(
    "marks",
    [
        {"party": {"a": 1, "b": 1}},  # an indicator missing
        _marks(11, 0, 0),  # above the item's maximum
        _marks(-1, 0, 0),
        {**_marks(1, 1, 1), "extra": {"x": 1}},
        {"party": {"a": 1, "b": 1, "z": 1}, "credit": {"c": 1}},
    ],
)
def test_bad_marks_are_refused(plan: AssessmentPlan, marks: dict[str, Any]) -> None:
    with pytest.raises(ValidationFailed):
        assessment.compute(plan, marks)


def test_plan_validation(session: Session, world: World) -> None:
    bad = [{**INDICATORS[0], "weight": 30}, INDICATORS[1]]  # weights sum to 90
    with pytest.raises(ValidationFailed):
        assessment.create_plan(session, world.county_admin, period="X", name="x", indicators=bad)
    with pytest.raises(ValidationFailed):
        assessment.create_plan(
            session,
            world.county_admin,
            period="X",
            name="x",
            bands=[{"min_score": 101, "reward_fen": 1}],
        )
    with pytest.raises(Forbidden):
        assessment.create_plan(session, world.town_admin, period="X", name="x")
    default = assessment.create_plan(session, world.county_admin, period="2026", name="默认")
    assert sum(i["weight"] for i in default.indicators) == 100
    assert [b["reward_fen"] for b in default.bands] == [1_000_000, 400_000, 200_000]
    with pytest.raises(Conflict):
        assessment.create_plan(session, world.county_admin, period="2026", name="again")


def _postings(session: Session, entry_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Account.kind, Account.subject_id, Posting.amount)
        .join(
            Account,
            (Account.id == Posting.account_id) & (Account.township_id == Posting.township_id),
        )
        .where(Posting.entry_id == entry_id)
    ).all()
    return {f"{k}:{'owned' if s else 'system'}": amount for k, s, amount in rows}


def test_maker_checker_and_exact_idempotent_reward_entry(
    session: Session, world: World, plan: AssessmentPlan
) -> None:
    village = world.c.villages[0]
    a = assessment.score_village(
        session, world.town_admin, plan, village, _marks(10, 10, 45), now=NOW
    )
    assert (a.score_centi, a.reward_fen, a.band_min_score) == (9400, 400_000, 85)
    with pytest.raises(Forbidden) as exc:
        assessment.approve(session, world.town_admin, a.id)
    assert exc.value.code == "same_person"
    with pytest.raises(Conflict):  # not approved yet
        assessment.pay(session, world.town_admin, a.id)
    with pytest.raises(Forbidden):
        assessment.approve(session, world.clerk, a.id)
    assessment.approve(session, world.town_admin2, a.id)
    with pytest.raises(Conflict):  # an approved score is not rescored
        assessment.score_village(session, world.town_admin, plan, village, _marks(1, 1, 1))
    assessment.pay(session, world.town_admin, a.id, now=NOW)
    assert a.status == "paid"
    assert a.entry_id is not None
    entry = session.scalar(select(Entry).where(Entry.id == a.entry_id))
    assert entry is not None
    assert entry.kind == "village_reward"
    assert entry.idempotency_key == f"village_reward:{a.id}"
    assert _postings(session, a.entry_id) == {
        f"{INTEGRITY_FUND}:system": -400_000,
        f"{VILLAGE_REWARD}:owned": 400_000,
    }
    wallet = session.scalar(
        select(Account).where(
            Account.kind == VILLAGE_REWARD,
            Account.subject_id == collective_of(session, village.id).id,
        )
    )
    assert wallet is not None
    assert wallet.posted_balance == 400_000
    # Paying again posts nothing.
    assessment.pay(session, world.town_admin2, a.id, now=NOW)
    count = session.scalars(select(Entry).where(Entry.kind == "village_reward")).all()
    assert len(count) == 1
    assert wallet.posted_balance == 400_000
    assert verify_ledger(session.connection()).ok


def test_county_fund_and_no_reward_band(session: Session, world: World) -> None:
    plan = assessment.create_plan(
        session,
        world.county_admin,
        period="2025H1",
        name="半年",
        indicators=INDICATORS,
        fund="county",
    )
    a = assessment.score_village(
        session, world.county_admin, plan, world.c.villages[2], _marks(10, 10, 50)
    )
    assessment.approve(session, world.county_admin2, a.id)
    assessment.pay(session, world.county_admin, a.id)
    assert _postings(session, a.entry_id or 0) == {
        f"{VILLAGE_REWARD}:system": -1_000_000,
        f"{VILLAGE_REWARD}:owned": 1_000_000,
    }
    low = assessment.score_village(
        session, world.county_admin, plan, world.c.villages[3], _marks(1, 1, 1)
    )
    assert low.reward_fen == 0
    assert low.band_min_score is None
    assessment.approve(session, world.county_admin2, low.id)
    assessment.pay(session, world.county_admin2, low.id)
    assert low.status == "paid"
    assert low.entry_id is None


def test_reject_sends_back_for_rescoring(
    session: Session, world: World, plan: AssessmentPlan
) -> None:
    a = assessment.score_village(
        session, world.town_admin, plan, world.c.villages[0], _marks(1, 1, 1)
    )
    with pytest.raises(ValidationFailed):
        assessment.reject(session, world.town_admin2, a.id, " ")
    assessment.reject(session, world.town_admin2, a.id, "分数有误")
    assert a.status == "rejected"
    with pytest.raises(Conflict):
        assessment.approve(session, world.town_admin2, a.id)
    again = assessment.score_village(
        session, world.town_admin, plan, world.c.villages[0], _marks(10, 10, 50)
    )
    assert again.id == a.id
    assert again.status == "scored"
    assert again.reward_fen == 1_000_000


def test_region_isolation(session: Session, world: World, plan: AssessmentPlan) -> None:
    other_village = world.c.villages[2]  # in the second township
    with pytest.raises(NotFound):
        assessment.score_village(session, world.town_admin, plan, other_village, _marks(1, 1, 1))
    a = assessment.score_village(
        session, world.other_town_admin, plan, other_village, _marks(1, 1, 1)
    )
    with pytest.raises(NotFound):
        assessment.approve(session, world.town_admin, a.id)
    assert assessment.list_assessments(session, world.town_admin, plan.id) == []
    assert [x.id for x in assessment.list_assessments(session, world.county_admin, plan.id)] == [
        a.id
    ]
