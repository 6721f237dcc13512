"""Limits hold under concurrent uses: two tills cannot both grant the last use."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from flask import Flask
from sqlalchemy import func, select

from mall.benefits import services
from mall.benefits.models import BenefitUse
from mall.errors import Conflict
from mall.extensions import db
from mall.partners.models import Partner
from mall.subjects.models import CreditSubject
from tests.benefits.conftest import add_benefit, build_world

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
                partner = s.get(Partner, ids[1])
                subject = s.get(CreditSubject, ids[2])
                assert partner is not None
                assert subject is not None
                barrier.wait()
                services.record_benefit_use(
                    s,
                    benefit_id=ids[0],
                    partner=partner,
                    subject=subject,
                    actor="thread",
                    today=date(2026, 11, 21),
                )
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
