"""A PIN change ends the household's other logins, through the real server (gunicorn, two
workers, the suite's database backend): the attack of issue 19 replayed over HTTP.

Two logins of one household; the first changes the PIN through the API. The second's refresh
token is refused, and so is its access token at /me/code (whose dynamic code pays without a
PIN) at once, whichever worker answers; the first device carries on with the pair the PIN
change answered. The demo PIN is put back afterwards: the live server is shared.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.live import LiveServer

pytestmark = pytest.mark.e2e

NEW_PIN = "469135"


def _login(url: str, phone: str, pin: str) -> dict[str, Any]:
    resp = requests.post(
        url + "/api/v1/auth/farmer/login", json={"phone": phone, "pin": pin}, timeout=10
    )
    assert resp.status_code == 200, resp.text
    pair: dict[str, Any] = resp.json()
    return pair


def _code(url: str, pair: dict[str, Any]) -> requests.Response:
    # A new connection each time: the two sync workers take turns answering.
    return requests.get(
        url + "/api/v1/me/code",
        headers={"Authorization": f"Bearer {pair['access_token']}", "Connection": "close"},
        timeout=10,
    )


def _refresh(url: str, pair: dict[str, Any]) -> requests.Response:
    return requests.post(
        url + "/api/v1/auth/refresh",
        json={"refresh_token": pair["refresh_token"]},
        headers={"Connection": "close"},
        timeout=10,
    )


def _change_pin(url: str, pair: dict[str, Any], old: str, new: str) -> requests.Response:
    return requests.put(
        url + "/api/v1/me/pin",
        json={"old_pin": old, "new_pin": new},
        headers={"Authorization": f"Bearer {pair['access_token']}"},
        timeout=10,
    )


def test_a_pin_change_ends_the_other_login_at_once(live_server: LiveServer) -> None:
    url = live_server.url
    # The last household: the other live tests pick theirs from the front of the list.
    household = live_server.manifest["households"][-1]
    phone, demo_pin = household["phone"], household["pin"]
    first = _login(url, phone, demo_pin)
    second = _login(url, phone, demo_pin)
    # The second login rotates once before the change: a live family, not a fresh token.
    rotated = _refresh(url, second)
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    for pair in (first, second):
        assert _code(url, pair).status_code == 200
    changed = _change_pin(url, first, demo_pin, NEW_PIN)
    assert changed.status_code == 200, changed.text
    renewed = changed.json()
    try:
        # Several tries: each worker answers some of them, and none may let the login through.
        for _ in range(4):
            code = _code(url, second)
            assert (code.status_code, code.json()["error"]["code"]) == (401, "invalid_token")
        refused = _refresh(url, second)
        assert (refused.status_code, refused.json()["error"]["code"]) == (401, "invalid_token")
        assert _refresh(url, second).status_code == 401  # no later rotation revives it
        # The device that changed the PIN: its old access token is ended too, its new one works.
        assert _code(url, first).status_code == 401
        assert _code(url, renewed).status_code == 200
        again = _refresh(url, renewed)
        assert again.status_code == 200, again.text
        renewed = again.json()
        assert _code(url, renewed).status_code == 200
    finally:
        restore = _change_pin(url, renewed, NEW_PIN, demo_pin)
        assert restore.status_code == 200, restore.text
