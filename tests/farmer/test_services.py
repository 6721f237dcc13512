"""The farmer services' reads of ratings: a fixed number of queries, whatever the history."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from mall.farmer import services
from mall.ratings import services as ratings
from mall.ratings.models import RatingAppeal
from tests.factories import make_user
from tests.farmer.conftest import RATED_ON, Farm, rating_on_notice


@contextmanager
def statements(session: Session) -> Iterator[list[str]]:
    seen: list[str] = []
    engine = session.get_bind()

    def record(*args: Any) -> None:
        seen.append(str(args[2]))  # (conn, cursor, statement, ...)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_my_ratings_reads_ratings_once_and_appeals_once(
    app: Flask, session: Session, farm: Farm
) -> None:
    admin = make_user(session, "township_admin", farm.county.townships[0])
    for year in range(2026, 2030):
        day = RATED_ON.replace(year=year)
        ratings.activate_due(session, today=day)  # the previous year's notice has ended
        rating = rating_on_notice(session, farm.household, day)
        ratings.file_appeal(session, None, rating, f"{year}年的理由", today=day)
        appeal = session.scalar(select(RatingAppeal).where(RatingAppeal.rating_id == rating.id))
        assert appeal is not None
        ratings.answer_appeal(session, admin, appeal, "维持", today=day + timedelta(days=1))
    session.flush()
    session.expire_all()
    with app.test_request_context("/"), statements(session) as seen:
        items = services.my_ratings(session, farm.household, today=RATED_ON.replace(year=2029))
    assert len(items) == 4
    assert [len(i["appeals"]) for i in items] == [1, 1, 1, 1]
    assert items[0]["appeals"][0]["answer"] == "维持"
    assert items[0]["appealable"] is False  # upheld after an appeal: the re-review is final
    from_ratings = [s for s in seen if "FROM ratings" in s]
    from_appeals = [s for s in seen if "FROM rating_appeals" in s]
    assert (len(from_ratings), len(from_appeals)) == (1, 1), seen
