"""Benefit matching by partner and level, discounts, limits, and recording uses."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from mall.benefits import services
from mall.benefits.models import Benefit, BenefitUse
from mall.errors import Conflict, Forbidden, NotFound, ValidationFailed
from mall.subjects.models import CreditSubject
from tests.benefits.conftest import TODAY, World, add_benefit, rate
from tests.factories import make_county, make_partner


def use(session: Session, w: World, benefit_id: int, **kw: object) -> BenefitUse:
    args: dict[str, object] = {
        "benefit_id": benefit_id,
        "partner": w.hospital,
        "subject": w.household,
        "amount_fen": None,
        "terminal_id": None,
        "actor": "test",
        "today": TODAY,
    }
    args.update(kw)
    return services.record_benefit_use(session, **args)  # type: ignore[arg-type]


def test_matching_by_category_scope_and_level(session: Session, world: World) -> None:
    w = world
    county_wide = add_benefit(session, w.county, min_level_rank=3)
    too_high = add_benefit(session, w.county, min_level_rank=4)
    own_town = add_benefit(session, w.county, township_id=w.county.townships[0].id)
    other_town = add_benefit(session, w.county, township_id=w.county.townships[1].id)
    exact = add_benefit(session, w.county, partner_id=w.hospital.id, partner_category=None)
    add_benefit(session, w.county, partner_category="scenic_spot")
    add_benefit(session, w.county, active=False)
    add_benefit(
        session, w.county, valid_until=TODAY - timedelta(days=1), valid_from=date(2026, 1, 1)
    )
    add_benefit(session, w.county, valid_from=TODAY + timedelta(days=1))
    found = services.applicable_benefits(
        session, partner=w.hospital, subject=w.household, today=TODAY
    )
    assert {b.id for b in found} == {county_wide.id, own_town.id, exact.id}
    assert too_high.id not in {b.id for b in found}
    # At the other township's hospital: county-wide lines only (the household's township
    # line covers a partner elsewhere neither); the other town's line is not the household's.
    there = services.applicable_benefits(
        session, partner=w.other_town_hospital, subject=w.household, today=TODAY
    )
    assert {b.id for b in there} == {county_wide.id}
    assert other_town.id not in {b.id for b in there}


def test_unrated_expired_or_frozen_households_get_nothing(session: Session, world: World) -> None:
    w = world
    add_benefit(session, w.county)
    rate(w.household, None)
    assert (
        services.applicable_benefits(session, partner=w.hospital, subject=w.household, today=TODAY)
        == []
    )
    rate(w.household, 5, until=TODAY - timedelta(days=1))
    assert (
        services.applicable_benefits(session, partner=w.hospital, subject=w.household, today=TODAY)
        == []
    )
    rate(w.household, 5)
    w.household.status = "frozen"
    assert (
        services.applicable_benefits(session, partner=w.hospital, subject=w.household, today=TODAY)
        == []
    )


def test_another_county_sees_nothing(session: Session, world: World) -> None:
    other = make_county(session, townships=1, villages_per_township=1)
    foreign_hospital = make_partner(session, other.townships[0], category="hospital")
    add_benefit(session, world.county)
    assert (
        services.applicable_benefits(
            session, partner=foreign_hospital, subject=world.household, today=TODAY
        )
        == []
    )


@pytest.mark.parametrize(
    ("terms", "amount", "expected"),
    [
        ({"kind": "percent_discount", "percent_bp": 2000}, 8000, 1600),
        ({"kind": "percent_discount", "percent_bp": 2000, "cap_fen": 1000}, 8000, 1000),
        ({"kind": "percent_discount", "percent_bp": 333}, 99, 3),  # floor, never rounds up
        ({"kind": "fixed_discount", "fixed_fen": 500}, 300, 300),  # never more than the bill
        ({"kind": "fixed_discount", "fixed_fen": 500}, None, 500),
        ({"kind": "free_item", "cap_fen": 3000}, 2500, 2500),
        ({"kind": "free_item", "cap_fen": 3000}, 4000, 3000),  # never more than the item's cap
        ({"kind": "free_item", "cap_fen": 3000}, None, 0),
        ({"kind": "free_item"}, 2500, 0),  # a line from before free items had a cap
        ({"kind": "deposit_waiver"}, 100000, 0),
        ({"kind": "priority_service"}, None, 0),
    ],
)
def test_discount_worked_examples(
    session: Session, world: World, terms: dict[str, object], amount: int | None, expected: int
) -> None:
    benefit = add_benefit(session, world.county, **terms)
    recorded = use(session, world, benefit.id, amount_fen=amount)
    assert recorded.discount_fen == expected
    assert recorded.business_date == TODAY
    assert recorded.township_id == world.hospital.township_id


@pytest.mark.parametrize(
    ("terms", "expected"),
    [
        ({"kind": "percent_discount", "percent_bp": 2000, "cap_fen": 3000}, 3000),
        ({"kind": "fixed_discount", "fixed_fen": 500}, 500),
        ({"kind": "free_item", "cap_fen": 30000}, 30000),
        ({"kind": "free_item"}, 0),
        ({"kind": "deposit_waiver"}, 0),
        ({"kind": "priority_service"}, 0),
    ],
)
def test_a_huge_bill_is_worth_only_what_the_terms_give(
    session: Session, world: World, terms: dict[str, object], expected: int
) -> None:
    """Issue 19: a till reported a bill of 100,000,000 fen for a free health check and the use
    was recorded as worth all of it. The value comes from the benefit's terms: the bill, at
    most the cap."""
    benefit = add_benefit(session, world.county, **terms)
    recorded = use(session, world, benefit.id, amount_fen=100_000_000)
    assert (recorded.amount_fen, recorded.discount_fen) == (100_000_000, expected)


@pytest.mark.parametrize("amount", [-1, 100_000_001, 10**12, True])
def test_an_absurd_bill_is_refused(session: Session, world: World, amount: object) -> None:
    benefit = add_benefit(session, world.county, kind="free_item", cap_fen=30000)
    with pytest.raises(ValidationFailed) as exc:
        use(session, world, benefit.id, amount_fen=amount)
    assert (exc.value.status, exc.value.code) == (400, "validation_error")
    assert "amount_fen" in exc.value.details["fields"]
    assert session.query(BenefitUse).count() == 0


def test_percent_discount_needs_an_amount(session: Session, world: World) -> None:
    benefit = add_benefit(session, world.county, kind="percent_discount", percent_bp=500)
    with pytest.raises(ValidationFailed):
        use(session, world, benefit.id)


def test_refusals_name_the_rule(session: Session, world: World) -> None:
    w = world
    with pytest.raises(NotFound):
        use(session, w, 999999)
    benefit = add_benefit(session, w.county, min_level_rank=4)
    with pytest.raises(Forbidden) as exc:
        use(session, w, benefit.id)
    assert exc.value.code == "level_too_low"
    scenic_only = add_benefit(session, w.county, partner_category="scenic_spot")
    with pytest.raises(Forbidden) as exc:
        use(session, w, scenic_only.id)
    assert exc.value.code == "partner_not_eligible"
    inactive = add_benefit(session, w.county, active=False)
    with pytest.raises(Forbidden) as exc:
        use(session, w, inactive.id)
    assert exc.value.code == "benefit_not_applicable"
    elsewhere = add_benefit(session, w.county, township_id=w.county.townships[1].id)
    with pytest.raises(Forbidden) as exc:
        use(session, w, elsewhere.id, partner=w.other_town_hospital)
    assert exc.value.code == "benefit_not_applicable"  # the household lives in township 1
    w.household.status = "frozen"
    ok = add_benefit(session, w.county)
    with pytest.raises(Forbidden) as exc:
        use(session, w, ok.id)
    assert exc.value.code == "holder_suspended"


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({"status": "frozen"}, "holder_suspended"),
        ({"level_code": "1", "level_rank": 1}, "level_too_low"),
    ],
)
def test_the_household_is_judged_as_it_is_now_not_as_loaded(
    session: Session, world: World, change: dict[str, object], refusal: str
) -> None:
    """A suspension or a new level written by another request after the till loaded the
    household (here a bare UPDATE the session's copy does not see) refuses the use, also for
    a benefit without limits."""
    benefit = add_benefit(session, world.county, min_level_rank=3)
    households = CreditSubject.__table__
    session.execute(
        update(households).where(households.c.id == world.household.id).values(**change)
    )
    assert (world.household.status, world.household.level_rank) == ("active", 3)  # as loaded
    with pytest.raises(Forbidden) as exc:
        use(session, world, benefit.id)
    assert (exc.value.code, exc.value.status) == (refusal, 403)


def test_per_day_month_and_year_limits(session: Session, world: World) -> None:
    benefit = add_benefit(
        session, world.county, limit_per_day=1, limit_per_month=2, limit_per_year=3
    )
    use(session, world, benefit.id, today=date(2026, 3, 1))
    with pytest.raises(Conflict) as exc:
        use(session, world, benefit.id, today=date(2026, 3, 1))
    assert exc.value.code == "benefit_limit_reached"
    assert exc.value.details["period"] == "day"
    use(session, world, benefit.id, today=date(2026, 3, 2))
    with pytest.raises(Conflict) as exc:
        use(session, world, benefit.id, today=date(2026, 3, 3))
    assert exc.value.details["period"] == "month"
    use(session, world, benefit.id, today=date(2026, 4, 1))
    with pytest.raises(Conflict) as exc:
        use(session, world, benefit.id, today=date(2026, 5, 1))
    assert exc.value.details["period"] == "year"
    use(session, world, benefit.id, today=date(2027, 1, 1))  # a new year


def test_one_at_a_time_until_closed(session: Session, world: World) -> None:
    benefit = add_benefit(session, world.county, one_at_a_time=True)
    first = use(session, world, benefit.id)
    assert first.closed_at is None
    with pytest.raises(Conflict) as exc:
        use(session, world, benefit.id)
    assert exc.value.details["period"] == "one_at_a_time"
    with pytest.raises(NotFound):
        services.close_benefit_use(session, use_id=first.id, partner=world.scenic)
    services.close_benefit_use(session, use_id=first.id, partner=world.hospital)
    again = use(session, world, benefit.id)
    assert again.id != first.id


def test_limits_are_per_household(session: Session, world: World) -> None:
    from tests.factories import make_household

    benefit = add_benefit(session, world.county, limit_per_day=1)
    use(session, world, benefit.id)
    neighbour = make_household(session, world.county.villages[0])
    rate(neighbour, 3)
    use(session, world, benefit.id, subject=neighbour)


def test_household_benefits_lists_partners_of_the_county(session: Session, world: World) -> None:
    w = world
    add_benefit(session, w.county, min_level_rank=2)
    add_benefit(session, w.county, min_level_rank=5)
    lines = services.household_benefits(session, w.household, today=TODAY)
    assert len(lines) == 1
    names = [p.name for p in lines[0].partners]
    assert names == ["一镇卫生院", "二镇卫生院"]  # own township first


def test_the_offers_a_till_sees_are_cached_briefly_and_dropped_on_a_change(
    session: Session, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scans read the partner's benefit list through a per-worker cache (mall.cache): a change
    this process flushes shows at once; one made elsewhere (here a bare UPDATE, which no ORM
    event sees) shows once HOT_CACHE_SECONDS have passed."""
    now = [1000.0]
    monkeypatch.setattr(services._offers, "timer", lambda: now[0])
    w = world
    first = add_benefit(session, w.county)

    def offered() -> set[int]:
        found = services.applicable_benefits(
            session, partner=w.hospital, subject=w.household, today=TODAY
        )
        return {b.id for b in found}

    assert offered() == {first.id}
    second = add_benefit(session, w.county)  # flushed here: the cache is dropped
    assert offered() == {first.id, second.id}
    session.execute(update(Benefit).where(Benefit.id == first.id).values(active=False))
    assert offered() == {first.id, second.id}  # another worker's change: not seen yet
    now[0] += 5.1
    assert offered() == {second.id}
