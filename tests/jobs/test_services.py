"""The jobs command: idempotent, safe after a long gap, and safe twice at once (PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mall.extensions import db
from mall.jobs.services import run_jobs
from mall.ledger.models import Entry
from mall.ledger.verify import verify_ledger
from mall.ratings import services
from mall.ratings.models import Rating
from tests.factories import make_county, make_household, make_user

DAY = date(2026, 3, 2)


def _posted(session: Session, n: int) -> list[Rating]:
    c = make_county(session)
    clerk = make_user(session, "village_clerk", c.villages[0])
    out = []
    for i in range(n):
        h = make_household(session, c.villages[0], pin=None)
        r = services.draft_rating(session, clerk, h, services.ScoreInput(score=60 + i), today=DAY)
        services.post_notice(session, clerk, r, today=DAY)
        out.append(r)
    return out


def test_jobs_activate_then_expire_after_a_long_gap(session: Session) -> None:
    ratings = _posted(session, 3)
    session.commit()
    report = run_jobs(db.engine, DAY + timedelta(days=8), session)
    assert report.done["rating_activation"] == 3
    again = run_jobs(db.engine, DAY + timedelta(days=8), session)
    assert again.done["rating_activation"] == 0  # idempotent
    later = run_jobs(db.engine, date(2027, 2, 1), session)
    assert later.done["rating_periods"] == 3
    for r in ratings:
        session.refresh(r)
    assert {r.status for r in ratings} == {"expired"}


def test_jobs_cli(app: Flask, session: Session) -> None:
    _posted(session, 1)
    session.commit()  # the CLI runs on the test's connection through db.session's bind
    result: Result = app.test_cli_runner().invoke(args=["jobs", "--today", "2026-03-20"])
    assert result.exit_code == 0, result.output
    assert "rating_activation: 1" in result.output


@pytest.mark.postgres_only
def test_two_runners_at_once_do_everything_once(committed: Flask) -> None:
    with Session(db.engine) as s:
        _posted(s, 40)
        s.commit()
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def runner() -> None:
        try:
            with committed.app_context():
                barrier.wait()
                run_jobs(db.engine, DAY + timedelta(days=8))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with Session(db.engine) as s:
        assert s.scalar(select(func.count()).where(Rating.status == "effective")) == 40
        assert s.scalar(select(func.count()).select_from(Entry)) == 40  # one grant each
        report = verify_ledger(s.connection())
        assert report.ok, report.first
