"""Schemes, the civility calculator, and the reads the till uses."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy.orm import Session

from mall.errors import Conflict, ValidationFailed
from mall.ratings import calculator, schemes, services
from mall.ratings.calculator import Reviewer, ReviewItem
from mall.ratings.models import RATING_STATUSES, Rating
from mall.regions.services import update_settings
from tests.ratings.conftest import DAY, World, make_effective


def test_five_star_is_the_default_with_the_source_figures() -> None:
    scheme = schemes.BUILT_IN[schemes.DEFAULT_SCHEME]
    by_rank = {lv.rank: lv for lv in scheme.levels}
    assert [by_rank[n].integrity_money_fen for n in range(1, 6)] == [
        40000,
        80000,
        120000,
        160000,
        200000,
    ]
    assert [by_rank[n].discount_bp for n in range(1, 6)] == [200, 400, 600, 800, 1000]


def test_aaa_scheme_marks_a_and_above_as_credit_households() -> None:
    scheme = schemes.BUILT_IN["aaa_d"]
    assert [lv.code for lv in scheme.levels if lv.credit_household] == ["AAA", "AA", "A"]
    assert [lv.code for lv in schemes.BUILT_IN["three_to_five_a"].levels] == ["5A", "4A", "3A"]


def test_level_for_score_uses_thresholds() -> None:
    scheme = schemes.BUILT_IN["five_star"]
    assert scheme.level_for_score(59.99) is None
    assert scheme.level_for_score(60).code == "1"  # type: ignore[union-attr]
    assert scheme.level_for_score(95).code == "5"  # type: ignore[union-attr]


def test_periods_year_and_quarter() -> None:
    assert schemes.period_for("year", date(2026, 5, 6)) == (date(2026, 1, 1), date(2026, 12, 31))
    assert schemes.period_for("quarter", date(2026, 5, 6)) == (date(2026, 4, 1), date(2026, 6, 30))
    assert schemes.period_for("quarter", date(2026, 11, 6)) == (
        date(2026, 10, 1),
        date(2026, 12, 31),
    )
    with pytest.raises(ValidationFailed):
        schemes.period_for("month", date(2026, 5, 6))


def test_civility_review_base_cap_negative_and_veto() -> None:
    pos = [ReviewItem("volunteer", 15), ReviewItem("clean_yard", 10)]
    assert calculator.civility_review(pos).score == 100  # 80 + min(25, 20)
    neg = [ReviewItem("volunteer", 5), ReviewItem("late_fees", 12, "negative")]
    assert calculator.civility_review(neg).score == 73
    veto = [*pos, ReviewItem("gambling", 0, "veto")]
    assert calculator.civility_review(veto).score == 0


def test_related_reviewers_are_recused() -> None:
    result = calculator.civility_review([], [Reviewer("王一"), Reviewer("张二", related=True)])
    assert result.reviewers == ["王一"]
    assert result.recused == ["张二"]


def test_review_weighs_thirty_percent() -> None:
    assert calculator.rating_score({"civility": 100, "visit": 0, "points": 0}) == 30
    assert calculator.rating_score({"civility": 80, "visit": 90, "points": 50}) == 75
    with pytest.raises(ValidationFailed):
        calculator.rating_score({"civility": 80}, {"civility": 50})
    assert calculator.points_score(150, 100) == 100


def test_draft_from_review_components(session: Session, world: World) -> None:
    data = services.ScoreInput(
        items=[ReviewItem("volunteer", 20)],
        reviewers=[Reviewer("王一"), Reviewer("张二", related=True)],
        visit_score=100,
        points_score=100,
    )
    rating = services.draft_rating(session, world.clerk, world.household, data, today=DAY)
    assert rating.score_centi == 10000
    assert rating.level_code == "5"
    assert rating.score_detail["civility"]["recused"] == ["张二"]
    assert (rating.period_start, rating.period_end) == (date(2026, 1, 1), date(2026, 12, 31))


def test_custom_scheme_overrides_money_and_discount(session: Session, world: World) -> None:
    schemes.define_scheme(
        session,
        county_id=world.county.county.id,
        code="local",
        name_zh="本县",
        name_en="Local",
        levels=[
            {
                "code": "A",
                "label_zh": "A级",
                "rank": 1,
                "score_threshold": 50,
                "integrity_money_fen": 1000,
                "discount_bp": 150,
            },
            {
                "code": "AA",
                "label_zh": "AA级",
                "rank": 2,
                "score_threshold": 80,
                "integrity_money_fen": 3000,
                "discount_bp": 500,
            },
        ],
    )
    update_settings(session, world.county.county, {"rating_scheme": "local"})
    make_effective(session, world.clerk, world.household, 85)
    assert services.discount_rate_bp(session, world.household, DAY) == 500
    assert services.level_info(session, world.household, DAY) == {
        "code": "AA",
        "label": "AA级",
        "label_en": "AA",
        "rank": 2,
        "credit_household": True,
    }


def test_discount_and_level_info_for_pos(session: Session, world: World) -> None:
    assert services.discount_rate_bp(session, world.household, DAY) == 0
    assert services.level_info(session, world.household, DAY) is None
    make_effective(session, world.clerk, world.household, 82)
    assert services.discount_rate_bp(session, world.household, DAY) == 600
    info = services.level_info(session, world.household, DAY)
    assert info is not None
    assert info["label"] == "三星级"
    assert info["rank"] == 3
    # Past the period, or frozen: nothing, even before the job runs.
    assert services.discount_rate_bp(session, world.household, date(2027, 1, 1)) == 0
    world.household.status = "frozen"
    assert services.discount_rate_bp(session, world.household, DAY) == 0


# --- the appeal window (one rule for staff and for the household's own app) ----------------

APPEAL_UNTIL = DAY + timedelta(days=16)


def _rating(
    status: str, *, re_reviewed: bool = False, appeal_until: date | None = APPEAL_UNTIL
) -> Rating:
    return Rating(status=status, re_reviewed=re_reviewed, appeal_until=appeal_until)


@pytest.mark.parametrize(
    ("status", "day", "is_open"),
    [
        ("notice", DAY, True),
        ("notice", APPEAL_UNTIL + timedelta(days=1), True),  # until it takes effect
        ("effective", APPEAL_UNTIL, True),  # the last day
        ("effective", APPEAL_UNTIL + timedelta(days=1), False),
        *[
            (status, DAY, False)
            for status in RATING_STATUSES
            if status not in ("notice", "effective")
        ],
    ],
)
def test_appeal_window(status: str, day: date, is_open: bool) -> None:
    assert services.appeal_window_open(_rating(status), day) is is_open


def test_appeal_window_closed_after_a_re_review_or_without_a_date() -> None:
    assert not services.appeal_window_open(_rating("notice", re_reviewed=True), DAY)
    assert not services.appeal_window_open(_rating("effective", re_reviewed=True), DAY)
    assert not services.appeal_window_open(_rating("effective", appeal_until=None), DAY)


def test_file_appeal_follows_the_window(session: Session, world: World) -> None:
    rating = make_effective(session, world.clerk, world.household, 85)
    assert rating.appeal_until is not None
    late = rating.appeal_until + timedelta(days=1)
    assert not services.appeal_window_open(rating, late)
    with pytest.raises(Conflict):
        services.file_appeal(session, None, rating, "晚了", today=late)
    assert services.appeal_window_open(rating, rating.appeal_until)
    appeal = services.file_appeal(session, None, rating, "最后一天", today=rating.appeal_until)
    assert appeal.status == "open"
