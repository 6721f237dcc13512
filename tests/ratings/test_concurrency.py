"""Real threads on real PostgreSQL: two staff acting on one household's rating at the same
moment (or one double click) get one result and a clear refusal, never a duplicate, a lost
update or a 500."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mall.extensions import db
from mall.ratings import services
from mall.ratings.models import Rating, RatingAppeal, RatingHistory
from mall.subjects.models import CreditSubject
from mall.users.models import User
from tests.factories import make_county, make_household, make_user
from tests.ratings.conftest import DAY, make_effective, score_for
from tests.threads import count, run_threads

pytestmark = pytest.mark.postgres_only

THREADS = 6
LATER = DAY + timedelta(days=20)


class Ids:
    """What the threads need, as ids: each thread loads them in its own session."""

    def __init__(self) -> None:
        session = db.session()
        c = make_county(session)
        self.clerk = make_user(session, "village_clerk", c.villages[0]).id
        self.town_admin = make_user(session, "township_admin", c.townships[0]).id
        self.household = make_household(session, c.villages[0]).id
        session.commit()


def rating(session: Session, rating_id: int) -> Rating:
    return services.get_rating(session, rating_id)  # as the views read it: no lock


def history(action: str) -> int:
    return count(select(func.count()).where(RatingHistory.action == action))


def rated(ids: Ids) -> None:
    """The household holds an effective rating (committed)."""
    session = db.session()
    clerk, household = (
        session.get_one(User, ids.clerk),
        session.get_one(CreditSubject, ids.household),
    )
    make_effective(session, clerk, household, 96)
    session.commit()


def draft(ids: Ids, score: float = 72) -> int:
    session = db.session()
    r = services.draft_rating(
        session,
        session.get_one(User, ids.clerk),
        session.get_one(CreditSubject, ids.household),
        score_for(score),
        today=DAY,
    )
    session.commit()
    return r.id


def test_one_draft_when_a_household_is_scored_six_times_at_once(committed: Flask) -> None:
    ids = Ids()

    def score(s: Session) -> None:
        services.draft_rating(
            s,
            s.get_one(User, ids.clerk),
            s.get_one(CreditSubject, ids.household),
            score_for(72),
            today=DAY,
        )

    outcomes = run_threads(THREADS, score)
    assert sorted(outcomes) == ["invalid_state"] * (THREADS - 1) + ["ok"]
    assert count(select(func.count()).select_from(Rating)) == 1


def test_one_notice_when_a_draft_is_posted_six_times_at_once(committed: Flask) -> None:
    ids = Ids()
    rating_id = draft(ids)

    def post(s: Session) -> None:
        services.post_notice(s, s.get_one(User, ids.clerk), rating(s, rating_id), today=DAY)

    outcomes = run_threads(THREADS, post)
    assert sorted(outcomes) == ["invalid_state"] * (THREADS - 1) + ["ok"]
    assert history("posted") == 1


def test_a_withdrawal_and_a_notice_at_once_leave_one_of_them(committed: Flask) -> None:
    ids = Ids()
    rating_id = draft(ids)
    steps = iter(["notice", "withdraw"] * (THREADS // 2))

    def post_or_withdraw(s: Session) -> None:
        r, clerk = rating(s, rating_id), s.get_one(User, ids.clerk)
        if next(steps) == "notice":
            services.post_notice(s, clerk, r, today=DAY)
        else:
            services.withdraw(s, clerk, r, "录入有误", today=DAY)

    outcomes = run_threads(THREADS, post_or_withdraw)
    assert outcomes.count("ok") in (1, 2)  # a notice, then a withdrawal, or a withdrawal
    with Session(db.engine) as s:
        final = s.get_one(Rating, rating_id)
        assert final.status == ("withdrawn" if history("withdrawn") else "notice")
    assert history("withdrawn") <= 1
    assert history("posted") <= 1


def test_one_appeal_when_six_are_filed_at_once(committed: Flask) -> None:
    ids = Ids()
    rating_id = draft(ids)
    session = db.session()
    services.post_notice(session, None, rating(session, rating_id), today=DAY)
    session.commit()

    def appeal(s: Session) -> None:
        services.file_appeal(
            s, None, rating(s, rating_id), "志愿服务未计入", today=DAY, filed_by="household"
        )

    outcomes = run_threads(THREADS, appeal)
    assert sorted(outcomes) == ["invalid_state"] * (THREADS - 1) + ["ok"]
    assert count(select(func.count()).select_from(RatingAppeal)) == 1


def test_one_re_review_when_an_appeal_is_answered_six_times_at_once(committed: Flask) -> None:
    ids = Ids()
    rating_id = draft(ids)
    session = db.session()
    services.post_notice(session, None, rating(session, rating_id), today=DAY)
    appeal_id = services.file_appeal(
        session, None, rating(session, rating_id), "志愿服务未计入", today=DAY, filed_by="h"
    ).id
    session.commit()

    def answer(s: Session) -> None:
        appeal = s.get_one(RatingAppeal, appeal_id)
        services.answer_appeal(
            s, s.get_one(User, ids.town_admin), appeal, "复核后加分", score_for(85), today=DAY
        )

    outcomes = run_threads(THREADS, answer)
    assert sorted(outcomes) == ["invalid_state"] * (THREADS - 1) + ["ok"]
    assert history("re_reviewed") == 1
    assert count(select(func.count()).where(Rating.origin == "re_review")) == 1


def test_one_downgrade_when_six_admins_downgrade_at_once(committed: Flask) -> None:
    ids = Ids()
    rated(ids)

    def downgrade(s: Session) -> None:
        services.downgrade(
            s,
            s.get_one(User, ids.town_admin),
            s.get_one(CreditSubject, ids.household),
            "2",
            "失信:拖欠贷款",
            today=LATER,
        )

    outcomes = run_threads(THREADS, downgrade)
    # The others wait, then find the new rating already at that level: not lower.
    assert sorted(outcomes) == ["ok"] + ["validation_error"] * (THREADS - 1)
    assert count(select(func.count()).where(Rating.origin == "downgrade")) == 1


def test_one_revocation_when_six_admins_revoke_at_once(committed: Flask) -> None:
    ids = Ids()
    rated(ids)

    def revoke(s: Session) -> None:
        services.revoke(
            s,
            s.get_one(User, ids.town_admin),
            s.get_one(CreditSubject, ids.household),
            "失信",
            today=LATER,
        )

    outcomes = run_threads(THREADS, revoke)
    assert sorted(outcomes) == ["invalid_state"] * (THREADS - 1) + ["ok"]
    assert history("revoked") == 1


def test_an_activation_and_a_downgrade_at_once_leave_one_effective_rating(
    committed: Flask,
) -> None:
    """The nightly activation of a re-rating, and an admin's downgrade of the rating it
    replaces, on the same household at the same moment: either order is fine, but the
    activation must see the downgrade's new rating (it read the old one, already ended, and
    the second effective rating was a unique-index 500 that failed the whole job's batch)."""
    pairs = 4
    households = []
    session = db.session()
    c = make_county(session)
    clerk = make_user(session, "village_clerk", c.villages[0])
    admin = make_user(session, "township_admin", c.townships[0])
    for _ in range(pairs):
        h = make_household(session, c.villages[0])
        make_effective(session, clerk, h, 96)
        again = services.re_rate(session, clerk, h, score_for(90), "信用修复", today=DAY)
        services.post_notice(session, clerk, again, today=DAY + timedelta(days=10))
        households.append((h.id, again.id))
    session.commit()
    admin_id = admin.id
    steps = iter([(i, step) for i in range(pairs) for step in ("activate", "downgrade")])

    def activate_or_downgrade(s: Session) -> None:
        i, step = next(steps)
        household_id, rating_id = households[i]
        if step == "activate":
            services.activate_rating(
                s, s.get_one(User, admin_id), rating(s, rating_id), today=LATER
            )
        else:
            subject = s.get_one(CreditSubject, household_id)
            services.downgrade(s, s.get_one(User, admin_id), subject, "2", "失信", today=LATER)

    outcomes = run_threads(2 * pairs, activate_or_downgrade)
    assert set(outcomes) <= {"ok", "invalid_state"}, outcomes
    for household_id, _ in households:
        effective = select(func.count()).where(
            Rating.subject_id == household_id, Rating.status == "effective"
        )
        assert count(effective) == 1
