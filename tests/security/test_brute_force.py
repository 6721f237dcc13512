"""Brute force through the real server, with the rate limits on and shared by its workers.

A private gunicorn (two workers) over a database of this module's own (scratch_live_server:
the locks these tests leave must not reach the households other tests log in with), with
Flask-Limiter counting in Redis as production is told to (README: RATELIMIT_STORAGE_URI).
Guessing a farmer's PIN at the login is cut off by the per-address limit, whichever worker
answers, and by the per-phone limit from many addresses on both login paths (API and /m/
page), and the phone's login locks after five failures; guessing a card's PIN at a till
locks the card's PIN after five failures, after which even the right PIN is refused.
"""

from __future__ import annotations

import json
import re
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
        # One proxy in front, as in production: the address is the one it appends to
        # X-Forwarded-For, so a test can speak from many addresses.
        RATELIMIT_TRUSTED_PROXIES="1",
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


def _guess(url: str, phone: str, pin: str, address: str, page: bool) -> tuple[int, str]:
    """One login try from `address`, on the farmer page or through the API, as (status, what
    it answered); a new connection each time (the workers take turns)."""
    headers = {"X-Forwarded-For": address, "Connection": "close"}
    if not page:
        resp = requests.post(
            url + "/api/v1/auth/farmer/login",
            json={"phone": phone, "pin": pin},
            headers=headers,
            timeout=10,
        )
        return resp.status_code, resp.json()["error"]["code"] if resp.status_code != 200 else "ok"
    browser = requests.Session()
    form = browser.get(url + "/m/login", headers=headers, timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token, form[:500]
    resp = browser.post(
        url + "/m/login",
        data={"phone": phone, "pin": pin, "csrf_token": token.group(1)},
        headers=headers,
        allow_redirects=False,
        timeout=10,
    )
    said = {
        302: "ok",
        401: "invalid_credentials",
        429: "login_locked" if "登录失败次数过多" in resp.text else "rate_limited",
    }
    return resp.status_code, said.get(resp.status_code, resp.text[:200])


def test_guessing_one_phone_from_many_addresses_on_both_login_paths_is_cut_off(
    limited_server: Gunicorn, scratch_live_server: LiveServer
) -> None:
    household = scratch_live_server.manifest["households"][1]
    phone, pin = household["phone"], household["pin"]
    spellings = [phone, f"{phone[:3]} {phone[3:7]} {phone[7:]}", f"{phone[:3]}-{phone[3:]}"]
    statuses: Counter[tuple[int, str]] = Counter()
    for n in range(12):
        wrong = f"{(n * 7919) % 1_000_000:06d}"
        wrong = wrong if wrong != pin else "000001"
        answer = _guess(
            limited_server.url, spellings[n % 3], wrong, f"10.20.{n}.{n + 1}", page=n % 2 == 1
        )
        statuses[answer] += 1
    # Twelve addresses, each far under its own allowance, two paths, three spellings: five
    # tries reach the login in all (the per-phone allowance), the fifth locks the phone.
    assert statuses == {
        (401, "invalid_credentials"): 4,
        (429, "login_locked"): 1,
        (429, "rate_limited"): 7,
    }, statuses
    assert _guess(limited_server.url, phone, pin, "10.20.99.1", page=False) == (
        429,
        "rate_limited",
    )


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
