"""Limits hold under concurrent uses: two tills cannot both grant the last use; and a use is
judged on the household as another request's committed suspension or new level left it."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from mall.benefits import services
from mall.benefits.models import BenefitUse
from mall.errors import Conflict, DomainError, Forbidden
from mall.extensions import db
from mall.partners.models import Partner
from mall.subjects.models import CreditSubject
from tests.benefits.conftest import TODAY, add_benefit, build_world

pytestmark = pytest.mark.postgres_only
THREADS = 8


@pytest.mark.parametrize("terms", [{"limit_per_day": 2}, {"one_at_a_time": True}])
def test_concurrent_uses_respect_the_limit(committed: Flask, terms: dict[str, object]) -> None:
    session = db.session()
    w = build_world(session)
    benefit = add_benefit(session, w.county, **terms)
    session.commit()
    ids = (benefit.id, w.hospital.id, w.household.id)
    db.session.remove()
    barrier = threading.Barrier(THREADS)
    outcomes: list[str] = []

    def worker() -> None:
        with committed.app_context():
            s = db.session()
            try:
                _use(s, *ids, before=barrier.wait)
                s.commit()
                outcomes.append("ok")
            except Conflict as exc:
                s.rollback()
                outcomes.append(exc.code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    allowed = 2 if "limit_per_day" in terms else 1
    assert outcomes.count("ok") == allowed
    assert outcomes.count("benefit_limit_reached") == THREADS - allowed
    count = db.session().scalar(select(func.count(BenefitUse.id)))
    assert count == allowed


def _use(
    s: Session, benefit_id: int, partner_id: int, household_id: int, *, before: Callable[[], object]
) -> None:
    """Load the partner and the household in `s`, run `before`, then record the use."""
    partner = s.get_one(Partner, partner_id)
    subject = s.get_one(CreditSubject, household_id)
    before()
    services.record_benefit_use(
        s, benefit_id=benefit_id, partner=partner, subject=subject, actor="t", today=TODAY
    )


CHANGES = [
    ({"status": "frozen"}, "holder_suspended"),
    ({"level_code": "1", "level_rank": 1}, "level_too_low"),
]


def _committed_world(committed: Flask) -> tuple[int, int, int]:
    """(benefit id, partner id, household id), committed; the benefit has no limits."""
    session = db.session()
    w = build_world(session)
    benefit = add_benefit(session, w.county, min_level_rank=3)
    session.commit()
    ids = (benefit.id, w.hospital.id, w.household.id)
    db.session.remove()
    return ids


def _change_household(household_id: int, change: dict[str, object]) -> object:
    households = CreditSubject.__table__
    return update(households).where(households.c.id == household_id).values(**change)


@pytest.mark.parametrize(("change", "refusal"), CHANGES)
def test_a_change_committed_after_the_household_was_loaded_refuses_the_use(
    committed: Flask, change: dict[str, object], refusal: str
) -> None:
    benefit_id, partner_id, household_id = _committed_world(committed)
    s = db.session()

    def change_elsewhere() -> None:
        with db.engine.begin() as other_request:  # its own connection; commits at once
            other_request.execute(_change_household(household_id, change))  # type: ignore[arg-type]
        loaded = s.get_one(CreditSubject, household_id)
        assert (loaded.status, loaded.level_rank) == ("active", 3)  # as loaded

    with pytest.raises(Forbidden) as exc:
        _use(s, benefit_id, partner_id, household_id, before=change_elsewhere)
    assert (exc.value.code, exc.value.status) == (refusal, 403)
    s.rollback()
    db.session.remove()
    assert db.session().scalar(select(func.count(BenefitUse.id))) == 0


@pytest.mark.parametrize(("change", "refusal"), CHANGES)
def test_a_use_waits_for_a_change_in_progress_and_then_sees_it(
    committed: Flask, change: dict[str, object], refusal: str
) -> None:
    """The till's use and a suspension (or re-rating) at the same moment: the use waits for
    the household's row lock the other transaction holds, then is judged on what it wrote."""
    benefit_id, partner_id, household_id = _committed_world(committed)
    loaded, go = threading.Event(), threading.Event()
    outcome: list[str] = []

    def till() -> None:
        with committed.app_context():
            s = db.session()
            try:

                def loaded_then_wait() -> None:
                    loaded.set()
                    go.wait(10)

                _use(s, benefit_id, partner_id, household_id, before=loaded_then_wait)
                s.commit()
                outcome.append("ok")
            except DomainError as exc:
                s.rollback()
                outcome.append(exc.code)
            finally:
                db.session.remove()

    thread = threading.Thread(target=till)
    thread.start()
    assert loaded.wait(10)
    with db.engine.connect() as other_request:
        other_request.execute(_change_household(household_id, change))  # type: ignore[arg-type]
        go.set()  # the row is locked by the UPDATE until this transaction ends
        thread.join(0.5)
        assert thread.is_alive(), outcome  # waiting for the household's row lock
        other_request.commit()
    thread.join(10)
    assert outcome == [refusal]
    assert db.session().scalar(select(func.count(BenefitUse.id))) == 0
