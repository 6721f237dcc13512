"""Concurrent logins and refreshes on PostgreSQL: row locks keep the counts honest."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask

from mall.extensions import db
from tests.factories import make_county, make_household

PHONE = "13600136000"


def _household(app: Flask) -> None:
    db.session.remove()
    county = make_county(db.session())
    make_household(db.session(), county.villages[0], phone=PHONE)
    db.session.commit()
    db.session.remove()


def _statuses(app: Flask, path: str, bodies: list[dict[str, str]]) -> list[int]:
    def call(body: dict[str, str]) -> int:
        return app.test_client().post(path, json=body).status_code

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(call, bodies))


@pytest.mark.postgres_only
def test_concurrent_failures_are_all_counted(committed: Flask) -> None:
    app = committed
    _household(app)
    statuses = _statuses(app, "/api/v1/auth/farmer/login", [{"phone": PHONE, "pin": "246801"}] * 10)
    # Serialised by the row lock: four refusals, the fifth locks, the rest find it locked.
    assert sorted(statuses) == [401] * 4 + [429] * 6
    right = app.test_client().post(
        "/api/v1/auth/farmer/login", json={"phone": PHONE, "pin": "135790"}
    )
    assert right.status_code == 429


@pytest.mark.postgres_only
def test_concurrent_refresh_of_one_token_lets_one_win(committed: Flask) -> None:
    app = committed
    _household(app)
    pair = (
        app.test_client()
        .post("/api/v1/auth/farmer/login", json={"phone": PHONE, "pin": "135790"})
        .json
    )
    assert pair is not None
    statuses = _statuses(
        app, "/api/v1/auth/refresh", [{"refresh_token": pair["refresh_token"]}] * 4
    )
    assert sorted(statuses) == [200, 401, 401, 401]
