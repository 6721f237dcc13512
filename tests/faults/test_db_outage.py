"""The database goes away under load, and comes back.

A private gunicorn reaches PostgreSQL through a TCP proxy in this process (the machine's
server is shared with other tests and is never restarted here; bench/faults.py does that).
Cutting the proxy closes every connection and refuses new ones. While it is cut the service
answers 503 `service_unavailable` in the envelope, never a 500 and never a hang; /readyz
answers 503. After it is restored the service recovers by itself (pool_pre_ping), and every
payment key, retried, exists exactly once.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from pos_adapter.client import sign
from tests.faults.helpers import Gunicorn, TcpProxy, pg_port, via_proxy
from tests.live import LiveServer

pytestmark = [pytest.mark.e2e, pytest.mark.postgres_only]

REQUEST_TIMEOUT = 15  # a request taking this long counts as a hang


def _signed(base: str, till: dict[str, Any], path: str, body: dict[str, Any], key: str | None):
    data = json.dumps(body).encode()
    ts, nonce = str(int(time.time())), secrets.token_urlsafe(18)
    headers = {
        "X-Terminal-Id": till["terminal_id"],
        "X-Timestamp": ts,
        "X-Nonce": nonce,
        "X-Signature": sign(till["secret"], "POST", path, ts, nonce, data),
        "Content-Type": "application/json",
    }
    if key:
        headers["Idempotency-Key"] = key
    return requests.post(base + path, data=data, headers=headers, timeout=REQUEST_TIMEOUT)


def test_database_cut_and_restored_under_load(
    live_server: LiveServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    m = live_server.manifest
    town = {p["partner_id"]: p["township"] for p in m["partners"]}
    till = next(t for t in m["terminals"] if t["partner_category"] == "supermarket")
    from mall.demo.builder import TOWNSHIPS

    villages = dict(TOWNSHIPS)[town[till["partner_id"]]]
    holders = [
        h for h in m["households"] if h.get("card_code") and h["level"] and h["village"] in villages
    ]
    holders = holders[len(holders) // 3 : len(holders) // 3 + 6]

    proxy = TcpProxy(pg_port(live_server.database_url))
    server = Gunicorn(via_proxy(live_server.database_url, proxy), tmp_path / "gunicorn.log")
    request.addfinalizer(proxy.close)  # also when an assertion fails before the cleanup below
    request.addfinalizer(server.stop)
    seen: list[tuple[str, int, str | None, float]] = []  # phase, status, error code, seconds
    keys: dict[str, dict[str, Any]] = {}
    phase = {"name": "before"}
    stop = threading.Event()
    lock = threading.Lock()

    def load(n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            holder = holders[(n + i) % len(holders)]
            pay = i % 3 == 0
            key = f"cut-{uuid.uuid4().hex[:16]}" if pay else None
            body: dict[str, Any] = {"code": holder["card_code"]}
            if pay:
                body |= {"amount_fen": 1_000, "pin": holder["pin"], "external_ref": key}
            path = "/pos/v1/payments" if pay else "/pos/v1/scan"
            started = time.monotonic()
            try:
                resp = _signed(server.url, till, path, body, key)
                status = resp.status_code
                code = resp.json().get("error", {}).get("code") if status >= 400 else None
            except requests.RequestException:
                status, code = 0, "transport"
            with lock:
                seen.append((phase["name"], status, code, time.monotonic() - started))
                if key:
                    keys[key] = {"body": body, "status": status}
            time.sleep(0.02)

    threads = [threading.Thread(target=load, args=(n,)) for n in range(3)]
    try:
        for t in threads:
            t.start()
        time.sleep(1.5)
        phase["name"] = "cut"
        proxy.cut()
        time.sleep(1.0)
        ready = requests.get(server.url + "/readyz", timeout=REQUEST_TIMEOUT)
        assert ready.status_code == 503
        assert ready.json()["error"]["code"] == "service_unavailable"
        assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
        time.sleep(2.0)
        phase["name"] = "restored"
        proxy.restore()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if requests.get(server.url + "/readyz", timeout=REQUEST_TIMEOUT).status_code == 200:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the service did not recover after the database came back")
        time.sleep(1.5)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)

    try:
        by_phase = Counter((p, s, c) for p, s, c, _ in seen)
        slowest = max(d for *_, d in seen)
        assert not [x for x in seen if x[1] >= 500 and x[1] != 503], by_phase
        assert not [x for x in seen if x[1] == 503 and x[2] != "service_unavailable"], by_phase
        log = (tmp_path / "gunicorn.log").read_text("utf-8", errors="replace")
        noise = [ln for ln in log.splitlines() if not re.search(r'" (200|201|503) ', ln)]
        assert not [x for x in seen if x[1] == 0], f"transport errors: {by_phase}\n" + "\n".join(
            noise[-60:]
        )
        assert slowest < REQUEST_TIMEOUT
        assert any(p == "cut" and s == 503 for p, s, _, _ in seen), by_phase
        assert any(p == "restored" and s in (200, 201) for p, s, _, _ in seen), by_phase
        assert all(s in (200, 201, 503) for _, s, _, _ in seen), by_phase

        # Retry every payment key: those that failed now succeed, those that succeeded replay.
        url = live_server.database_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(  # claims abandoned mid-request would otherwise wait out the lease
                "UPDATE pos_idempotency_keys SET created_at = created_at - interval '2 minutes' "
                "WHERE key = ANY(%s) AND response_status IS NULL",
                (list(keys),),
            )
        for key, sent in keys.items():
            again = _signed(server.url, till, "/pos/v1/payments", sent["body"], key)
            assert again.status_code == 201, again.text
            if sent["status"] == 201:
                assert again.headers.get("Idempotent-Replayed") == "true"
        with psycopg.connect(url) as conn:
            counts = conn.execute(
                "SELECT external_ref, count(*) FROM payments WHERE external_ref = ANY(%s) "
                "GROUP BY external_ref",
                (list(keys),),
            ).fetchall()
        assert dict(counts) == dict.fromkeys(keys, 1)
    finally:
        server.stop()
        proxy.close()
    log = (tmp_path / "gunicorn.log").read_text("utf-8", errors="replace")
    assert "WORKER TIMEOUT" not in log
