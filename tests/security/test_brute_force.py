"""Brute force through the real server, with the rate limits on and shared by its workers.

A private gunicorn (two workers) over a database of this module's own (scratch_live_server:
the locks these tests leave must not reach the households other tests log in with), with
Flask-Limiter counting in Redis as production is told to (README: RATELIMIT_STORAGE_URI).
Guessing a farmer's PIN at the login is cut off by the per-address limit, whichever worker
answers, and the phone's login locks after five failures; guessing a card's PIN at a till
locks the card's PIN after five failures, after which even the right PIN is refused.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests

from pos_adapter.client import sign
from tests.faults.helpers import Gunicorn
from tests.faults.outage import till_and_holders
from tests.live import LiveServer, require_redis

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def limited_server(scratch_live_server: LiveServer, tmp_path: Path) -> Any:
    redis_url = require_redis()
    server = Gunicorn(
        scratch_live_server.database_url,
        tmp_path / "gunicorn.log",
        workers=2,
        RATELIMIT_ENABLED="1",
        RATELIMIT_STORAGE_URI=redis_url,
        RATELIMIT_KEY_PREFIX=f"brute{uuid.uuid4().hex[:8]}",
        RATELIMIT_LOGIN="5/minute",
    )
    yield server
    server.stop()


def test_guessing_a_farmer_pin_is_cut_off_across_workers(
    limited_server: Gunicorn, scratch_live_server: LiveServer
) -> None:
    phone = scratch_live_server.manifest["households"][0]["phone"]
    statuses: Counter[tuple[int, str]] = Counter()
    for guess in range(12):
        # A new connection each time: gunicorn's sync workers take turns answering.
        resp = requests.post(
            limited_server.url + "/api/v1/auth/farmer/login",
            json={"phone": phone, "pin": f"{guess:06d}"},
            headers={"Connection": "close"},
            timeout=10,
        )
        statuses[(resp.status_code, resp.json()["error"]["code"])] += 1
    # Five guesses reach the login in all, not five per worker (the count is shared in Redis),
    # and the fifth failure also locks this phone's login for 15 minutes (farmer-api-v1).
    assert statuses == {
        (401, "invalid_credentials"): 4,
        (429, "login_locked"): 1,
        (429, "rate_limited"): 7,
    }, statuses


def _pay(server: Gunicorn, till: dict[str, Any], code: str, pin: str) -> requests.Response:
    body = json.dumps({"code": code, "amount_fen": 1000, "pin": pin}).encode()
    ts, nonce = str(int(time.time())), secrets.token_urlsafe(18)
    headers = {
        "X-Terminal-Id": till["terminal_id"],
        "X-Timestamp": ts,
        "X-Nonce": nonce,
        "X-Signature": sign(till["secret"], "POST", "/pos/v1/payments", ts, nonce, body),
        "Idempotency-Key": uuid.uuid4().hex,
        "Content-Type": "application/json",
    }
    return requests.post(server.url + "/pos/v1/payments", data=body, headers=headers, timeout=10)


def test_guessing_a_card_pin_at_the_till_locks_it(
    limited_server: Gunicorn, scratch_live_server: LiveServer
) -> None:
    till, holders = till_and_holders(scratch_live_server.manifest)
    holder = holders[-1]
    wrong = "000000" if holder["pin"] != "000000" else "111111"
    answers = [_pay(limited_server, till, holder["card_code"], wrong) for _ in range(6)]
    codes = [(r.status_code, r.json()["error"]["code"]) for r in answers]
    assert codes[:4] == [(403, "pin_invalid")] * 4, codes
    assert codes[4:] == [(403, "pin_locked")] * 2, codes
    right = _pay(limited_server, till, holder["card_code"], holder["pin"])
    assert (right.status_code, right.json()["error"]["code"]) == (403, "pin_locked")
