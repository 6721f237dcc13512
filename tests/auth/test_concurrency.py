"""Concurrent logins and refreshes on PostgreSQL: row locks keep the counts honest, and a PIN
change ends every login whatever races it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

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


@pytest.mark.postgres_only
def test_no_login_outlives_a_pin_change_that_races_it(committed: Flask) -> None:
    """Six devices refresh their logins over and over, two more log in with the old PIN and
    two log out while a seventh changes the PIN: no deadlock, and whatever each read, every
    login they end up holding is refused afterwards (the session generation,
    mall.subjects.logins); only the new login the PIN change answered works."""
    app = committed
    _household(app)
    login = {"phone": PHONE, "pin": "135790"}
    pairs = [app.test_client().post("/api/v1/auth/farmer/login", json=login).json for _ in range(9)]
    assert all(pairs)
    changer, devices, leaving = pairs[0], pairs[1:7], pairs[7:]
    start = threading.Barrier(len(devices) + len(leaving) + 3)

    def keep_refreshing(pair: dict[str, Any]) -> list[dict[str, Any]]:
        held, client = [pair], app.test_client()
        start.wait()
        for _ in range(6):
            resp = client.post(
                "/api/v1/auth/refresh", json={"refresh_token": held[-1]["refresh_token"]}
            )
            if resp.status_code != 200:
                break
            held.append(resp.json or {})
        return held

    def log_in_with_the_old_pin(_: object) -> list[dict[str, Any]]:
        start.wait()
        resp = app.test_client().post("/api/v1/auth/farmer/login", json=login)
        return [resp.json or {}] if resp.status_code == 200 else []

    def log_out(pair: dict[str, Any]) -> list[dict[str, Any]]:
        start.wait()
        body = {"refresh_token": pair["refresh_token"]}
        resp = app.test_client().post("/api/v1/auth/logout", json=body)
        assert resp.status_code == 204, resp.json
        return [pair]

    def change_pin(_: object) -> list[dict[str, Any]]:
        start.wait()
        resp = app.test_client().put(
            "/api/v1/me/pin",
            json={"old_pin": "135790", "new_pin": "246813"},
            headers={"Authorization": f"Bearer {changer['access_token']}"},
        )
        assert resp.status_code == 200, resp.json
        return [resp.json or {}]

    with ThreadPoolExecutor(max_workers=len(devices) + len(leaving) + 3) as pool:
        held = [pool.submit(keep_refreshing, pair) for pair in devices]
        racing = [pool.submit(log_in_with_the_old_pin, None) for _ in range(2)]
        racing += [pool.submit(log_out, pair) for pair in leaving]
        renewed = pool.submit(change_pin, None).result()[0]
        others = [p for f in held + racing for p in f.result()]
    client = app.test_client()
    for pair in [changer, *others]:
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
        assert me.status_code == 401
        again = client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert again.status_code == 401
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {renewed['access_token']}"})
    assert me.status_code == 200
