"""The rating lifecycle with a movable clock, and integrity money as ledger entries."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.errors import Conflict, NotFound
from mall.extensions import db
from mall.ledger.models import Entry
from mall.ledger.verify import verify_ledger
from mall.ratings import services
from mall.ratings.models import Rating
from mall.regions.services import update_settings
from tests.factories import make_household, make_user
from tests.ratings.conftest import DAY, World, integrity_balance, make_effective, score_for


def _verify(session: Session) -> None:
    session.flush()
    report = verify_ledger(session.connection())
    assert report.ok, report.first


def test_notice_then_effective_grants_the_level_money(session: Session, world: World) -> None:
    rating = services.draft_rating(session, world.clerk, world.household, score_for(91), today=DAY)
    assert (rating.status, rating.level_code) == ("draft", "4")
    services.post_notice(session, world.clerk, rating, today=DAY)
    assert rating.notice_until == DAY + timedelta(days=6)  # 7 days of notice
    assert rating.appeal_until == rating.notice_until + timedelta(days=10)
    assert services.activate_due(session, today=rating.notice_until) == 0  # last notice day
    assert services.activate_due(session, today=rating.notice_until + timedelta(days=1)) == 1
    assert rating.status == "effective"
    assert (world.household.level_code, world.household.level_valid_until) == (
        "4",
        date(2026, 12, 31),
    )
    assert integrity_balance(session, world.household) == 160000
    assert rating.granted_fen == 160000
    _verify(session)


def test_notice_days_are_configurable(session: Session, world: World) -> None:
    update_settings(session, world.county.townships[0], {"notice_days": 3})
    rating = services.draft_rating(session, world.clerk, world.household, score_for(70), today=DAY)
    services.post_notice(session, world.clerk, rating, today=DAY)
    assert rating.notice_until == DAY + timedelta(days=2)


def test_notice_list_per_village(session: Session, world: World) -> None:
    rating = services.draft_rating(session, world.clerk, world.household, score_for(75), today=DAY)
    services.post_notice(session, world.clerk, rating, today=DAY)
    board = services.notice_list(session, world.clerk, world.county.villages[0].id)
    assert [(r["household_ref"], r["level_label"]) for r in board] == [
        (world.household.ref, "二星级")
    ]
    assert "*" in board[0]["household_name"]
    outsider = make_user(session, "village_clerk", world.county.villages[2])
    with pytest.raises(NotFound):  # another township's clerk sees nothing
        services.notice_list(session, outsider, world.county.villages[0].id)


def test_appeal_during_notice_blocks_activation_then_re_review(
    session: Session, world: World
) -> None:
    rating = services.draft_rating(session, world.clerk, world.household, score_for(72), today=DAY)
    services.post_notice(session, world.clerk, rating, today=DAY)
    appeal = services.file_appeal(
        session, None, rating, "志愿服务未计入", today=DAY + timedelta(days=2), filed_by="household"
    )
    assert rating.status == "appealed"
    assert appeal.answer_due == DAY + timedelta(days=7)
    assert services.activate_due(session, today=DAY + timedelta(days=30)) == 0
    services.answer_appeal(
        session,
        world.town_admin,
        appeal,
        "复核后加分",
        services.ScoreInput(score=85),
        today=DAY + timedelta(days=5),
    )
    assert appeal.status == "changed"
    assert rating.status == "superseded"
    result = session.get(Rating, appeal.result_rating_id)
    assert result is not None
    assert (result.status, result.level_code, result.re_reviewed) == ("notice", "3", True)
    with pytest.raises(Conflict):  # the re-review result is final
        services.file_appeal(session, None, result, "again", today=DAY + timedelta(days=6))
    services.activate_due(session, today=result.notice_until + timedelta(days=1))  # type: ignore[operator]
    assert result.status == "effective"
    assert integrity_balance(session, world.household) == 120000


def test_upheld_appeal_posts_the_rating_again(session: Session, world: World) -> None:
    rating = services.draft_rating(session, world.clerk, world.household, score_for(72), today=DAY)
    services.post_notice(session, world.clerk, rating, today=DAY)
    appeal = services.file_appeal(
        session, world.clerk, rating, "不服", today=DAY + timedelta(days=1)
    )
    services.answer_appeal(session, world.town_admin, appeal, "维持", today=DAY + timedelta(days=3))
    assert (appeal.status, rating.status, rating.notice_from) == (
        "upheld",
        "notice",
        DAY + timedelta(days=3),
    )


def test_appeal_after_effect_and_upgrade_pays_the_difference(
    session: Session, world: World
) -> None:
    rating = make_effective(session, world.clerk, world.household, 72)  # 2 stars, 800 yuan
    assert integrity_balance(session, world.household) == 80000
    appeal = services.file_appeal(
        session, None, rating, "漏评", today=DAY + timedelta(days=10), filed_by="household"
    )
    assert rating.status == "effective"
    services.answer_appeal(
        session,
        world.town_admin,
        appeal,
        "改为四星",
        services.ScoreInput(score=90),
        today=DAY + timedelta(days=12),
    )
    result = session.get(Rating, appeal.result_rating_id)
    assert result is not None
    services.activate_due(session, today=DAY + timedelta(days=40))
    assert (rating.status, result.status) == ("superseded", "effective")
    assert integrity_balance(session, world.household) == 160000
    assert result.granted_fen == 160000
    _verify(session)


def test_appeal_window_closes(session: Session, world: World) -> None:
    rating = make_effective(session, world.clerk, world.household, 72)
    with pytest.raises(Conflict):
        services.file_appeal(
            session, None, rating, "晚了", today=rating.appeal_until + timedelta(days=1)
        )  # type: ignore[operator]


def test_downgrade_claws_back_the_difference(session: Session, world: World) -> None:
    make_effective(session, world.clerk, world.household, 96)  # 5 stars, 2,000 yuan
    new = services.downgrade(
        session,
        world.town_admin,
        world.household,
        "2",
        "失信:拖欠贷款",
        today=DAY + timedelta(days=20),
    )
    assert new.origin == "downgrade"
    assert world.household.level_code == "2"
    assert integrity_balance(session, world.household) == 80000
    assert new.granted_fen == 80000
    _, events = services.history(session, world.household.id)
    assert [e.action for e in events][-2:] == ["superseded", "downgraded"]
    _verify(session)


def test_revoke_freezes_and_claws_back_then_repair(session: Session, world: World) -> None:
    make_effective(session, world.clerk, world.household, 82)
    services.revoke(
        session, world.town_admin, world.household, "严重失信", today=DAY + timedelta(days=20)
    )
    assert world.household.status == "frozen"
    assert world.household.level_code is None
    assert integrity_balance(session, world.household) == 0
    assert services.discount_rate_bp(session, world.household, DAY) == 0
    repair = services.re_rate(
        session,
        world.town_admin,
        world.household,
        score_for(71),
        "已还清欠款",
        today=DAY + timedelta(days=60),
    )
    services.post_notice(session, world.town_admin, repair, today=DAY + timedelta(days=60))
    services.activate_due(session, today=DAY + timedelta(days=70))
    assert repair.status == "effective"
    assert world.household.status == "active"
    assert integrity_balance(session, world.household) == 80000
    ratings, _ = services.history(session, world.household.id)
    assert [r.status for r in ratings] == ["revoked", "effective"]
    _verify(session)


def test_period_end_expires_unused_money_back_to_the_fund(session: Session, world: World) -> None:
    make_effective(session, world.clerk, world.household, 62)
    assert services.expire_periods(session, today=date(2026, 12, 31)) == 0
    assert services.expire_periods(session, today=date(2027, 1, 1)) == 1
    assert world.household.level_code is None
    assert integrity_balance(session, world.household) == 0
    kinds = session.scalars(select(Entry.kind).order_by(Entry.id)).all()
    assert kinds[-1] == "integrity_expired"
    _verify(session)


def test_carry_over_keeps_unused_money(session: Session, world: World) -> None:
    update_settings(session, world.county.county, {"integrity_money_carry_over": True})
    make_effective(session, world.clerk, world.household, 62)
    services.expire_periods(session, today=date(2027, 1, 1))
    assert integrity_balance(session, world.household) == 40000
    make_effective(session, world.clerk, world.household, 62, day=date(2027, 2, 1))
    assert integrity_balance(session, world.household) == 80000


def test_quarter_periods(session: Session, world: World) -> None:
    update_settings(session, world.county.county, {"rating_period": "quarter"})
    rating = make_effective(session, world.clerk, world.household, 62)
    assert (rating.period_start, rating.period_end) == (date(2026, 1, 1), date(2026, 3, 31))


def test_one_rating_under_way_per_household(session: Session, world: World) -> None:
    services.draft_rating(session, world.clerk, world.household, score_for(70), today=DAY)
    with pytest.raises(Conflict):
        services.draft_rating(session, world.clerk, world.household, score_for(80), today=DAY)


def test_clerk_writes_only_in_their_village(session: Session, world: World) -> None:
    other = make_household(session, world.county.villages[1])
    with pytest.raises(NotFound):
        services.draft_rating(session, world.clerk, other, score_for(70), today=DAY)


def test_activation_of_many_in_bulk(session: Session, world: World) -> None:
    households = [make_household(session, world.county.villages[0], pin=None) for _ in range(30)]
    for i, h in enumerate(households):
        r = services.draft_rating(session, world.clerk, h, score_for(60 + i * 1.3), today=DAY)
        services.post_notice(session, world.clerk, r, today=DAY)
    assert services.activate_due(session, today=DAY + timedelta(days=8)) == 30
    assert sorted({h.level_code for h in households}) == ["1", "2", "3", "4", "5"]
    _verify(session)
    db.session.flush()
