"""The nonce stores (pos_adapter/nonces.py): the database by default, Redis when
POS_NONCE_STORE_URL names one. Each refuses a replay, across workers, within the window."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest
from flask import Flask

from pos_adapter.auth import sign
from pos_adapter.nonces import REPLAY_WINDOW_SECONDS, DatabaseNonces, RedisNonces, store_for
from tests.live import REDIS_URL, require_redis
from tests.pos_adapter.conftest import Till


@pytest.fixture
def redis_nonces(app: Flask) -> Iterator[RedisNonces]:
    """The app's nonce store swapped for Redis (under a prefix of this test's own)."""
    require_redis()
    store = RedisNonces(REDIS_URL, f"test{secrets.token_hex(4)}")
    before = app.extensions.get("pos_nonce_store")
    app.extensions["pos_nonce_store"] = store
    yield store
    app.extensions["pos_nonce_store"] = before
    for key in store.client.scan_iter(f"{store.prefix}:*"):
        store.client.delete(key)


def _scan_with(till: Till, nonce: str) -> tuple[int, str | None]:
    body = b'{"code": "x"}'
    ts = str(int(time.time()))
    h = {
        "X-Terminal-Id": till.terminal.terminal_id,
        "X-Timestamp": ts,
        "X-Nonce": nonce,
        "X-Signature": sign(till.secret, "POST", "/pos/v1/scan", ts, nonce, body),
        "Content-Type": "application/json",
    }
    r = till.client.post("/pos/v1/scan", data=body, headers=h)
    return r.status_code, (r.json or {}).get("error", {}).get("code")


def test_the_database_store_is_the_default(app: Flask) -> None:
    assert isinstance(store_for(app), DatabaseNonces)


def test_redis_refuses_a_replay_and_expires_the_nonce(
    redis_nonces: RedisNonces, till: Till
) -> None:
    nonce = secrets.token_urlsafe(16)
    # The code is junk, so the scan answers 422, but only after the nonce was recorded.
    assert _scan_with(till, nonce) == (422, "invalid_code")
    assert _scan_with(till, nonce) == (401, "replayed_request")
    keys = list(redis_nonces.client.scan_iter(f"{redis_nonces.prefix}:nonce:*"))
    assert len(keys) == 1
    assert 0 < redis_nonces.client.ttl(keys[0]) <= REPLAY_WINDOW_SECONDS
    assert _scan_with(till, secrets.token_urlsafe(16)) == (422, "invalid_code")


def test_a_nonce_is_per_terminal(redis_nonces: RedisNonces, till: Till, other_till: Till) -> None:
    nonce = secrets.token_urlsafe(16)
    assert _scan_with(till, nonce)[0] == 422
    assert _scan_with(other_till, nonce)[0] == 422


def test_two_workers_share_the_redis_store(redis_nonces: RedisNonces) -> None:
    # Two processes' stores: the same server decides, so a replay to another worker fails too.
    worker_b = RedisNonces(REDIS_URL, redis_nonces.prefix)
    assert redis_nonces.remember(None, 7, "n" * 16, None) is True  # type: ignore[arg-type]
    assert worker_b.remember(None, 7, "n" * 16, None) is False  # type: ignore[arg-type]


def test_redis_unreachable_refuses_with_503(app: Flask, till: Till) -> None:
    before = app.extensions.get("pos_nonce_store")
    app.extensions["pos_nonce_store"] = RedisNonces("redis://127.0.0.1:1/0", "down")
    try:
        assert _scan_with(till, secrets.token_urlsafe(16)) == (503, "service_unavailable")
    finally:
        app.extensions["pos_nonce_store"] = before


def test_a_store_url_that_is_not_redis_is_refused(app: Flask) -> None:
    other = Flask("other")
    other.config["POS_NONCE_STORE_URL"] = "memcached://127.0.0.1"
    with pytest.raises(RuntimeError, match="POS_NONCE_STORE_URL"):
        store_for(other)
