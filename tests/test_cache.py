"""mall.cache: per-process hot caches, expiring after HOT_CACHE_SECONDS and dropped when this
process flushes a change to one of their models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from mall.cache import HotCache, detached_copy
from mall.regions.models import Region
from tests.factories import make_county


class FakeTimer:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def timer() -> FakeTimer:
    return FakeTimer()


@pytest.fixture
def cache(timer: FakeTimer, session: Session) -> HotCache:
    return HotCache("test_regions", (Region,), timer=timer)


def test_a_value_is_loaded_once_then_served_until_it_expires(
    cache: HotCache, timer: FakeTimer
) -> None:
    loads: list[int] = []

    def load() -> str:
        loads.append(1)
        return f"value {len(loads)}"

    assert cache.get_or_load("k", load) == "value 1"
    timer.now += 4.9
    assert cache.get_or_load("k", load) == "value 1"
    timer.now += 0.2  # past the default 5 s
    assert cache.get_or_load("k", load) == "value 2"
    assert len(loads) == 2


def test_none_is_not_cached(cache: HotCache) -> None:
    loads: list[int] = []

    def load() -> None:
        loads.append(1)

    cache.get_or_load("missing", load)
    cache.get_or_load("missing", load)
    assert len(loads) == 2


def test_a_flushed_change_to_a_watched_model_drops_the_cache(
    cache: HotCache, session: Session
) -> None:
    county = make_county(session, townships=1, villages_per_township=1)
    session.flush()
    assert cache.get_or_load("name", lambda: county.county.name) == county.county.name
    county.county.name = "改名县"
    session.flush()  # the after_update event drops every entry
    assert cache.get_or_load("name", lambda: "reloaded") == "reloaded"


def test_discard_drops_one_key(cache: HotCache) -> None:
    cache.get_or_load("a", lambda: 1)
    cache.get_or_load("b", lambda: 2)
    cache.discard("a")
    assert cache.get_or_load("a", lambda: 10) == 10
    assert cache.get_or_load("b", lambda: 20) == 2


def test_zero_seconds_turns_caching_off(app: Flask, session: Session, timer: FakeTimer) -> None:
    off = HotCache("test_off", (Region,), timer=timer)
    app.config["HOT_CACHE_SECONDS"] = 0
    try:
        assert off.get_or_load("k", lambda: 1) == 1
        assert off.get_or_load("k", lambda: 2) == 2
    finally:
        app.config["HOT_CACHE_SECONDS"] = 5


@pytest.fixture
def statements(app: Flask) -> Iterator[list[str]]:
    seen: list[str] = []
    engine = app.extensions["mall_db_engine"]

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_a_detached_copy_attaches_to_a_session_without_a_query(
    session: Session, statements: list[str]
) -> None:
    county = make_county(session, townships=1, villages_per_township=1)
    session.flush()
    region = session.scalars(select(Region).where(Region.id == county.county.id)).one()
    copy = detached_copy(region)
    session.expunge_all()
    statements.clear()
    attached = session.merge(copy, load=False)
    assert statements == []
    assert (attached.id, attached.name, attached.kind) == (region.id, region.name, "county")
    assert attached is not copy  # the cached copy itself never joins a session
