"""The database goes away under load and comes back: the scenario both outage tests run.

Three client threads scan and pay (a third of requests are payments, each with its own
Idempotency-Key) against a private gunicorn. `cut()` takes the database away, `restore()`
brings it back. Meanwhile the service must answer 503 `service_unavailable` in the envelope,
never a 500 and never a hang, with /readyz 503 and /healthz 200; afterwards it must recover by
itself, and every payment key, retried, must exist exactly once.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from pos_adapter.client import sign

REQUEST_TIMEOUT = 15  # a request taking this long counts as a hang


def till_and_holders(manifest: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A supermarket till and six rated card holders of its township (from the demo)."""
    from mall.demo.builder import TOWNSHIPS

    town = {p["partner_id"]: p["township"] for p in manifest["partners"]}
    till = next(t for t in manifest["terminals"] if t["partner_category"] == "supermarket")
    villages = dict(TOWNSHIPS)[town[till["partner_id"]]]
    holders = [
        h
        for h in manifest["households"]
        if h.get("card_code") and h["level"] and h["village"] in villages
    ]
    return till, holders[len(holders) // 3 : len(holders) // 3 + 6]


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


def run_outage(
    server_url: str,
    database_url: str,
    log_path: Path,
    till: dict[str, Any],
    holders: list[dict[str, Any]],
    cut: Callable[[], None],
    restore: Callable[[], None],
) -> Counter[tuple[str, int, str | None]]:
    """Load, cut, wait, restore, recover, then check every answer and every payment key.
    Returns the answers counted by (phase, status, error code), for the test's own checks."""
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
                resp = _signed(server_url, till, path, body, key)
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
        cut()
        time.sleep(1.0)
        ready = requests.get(server_url + "/readyz", timeout=REQUEST_TIMEOUT)
        assert ready.status_code == 503
        assert ready.json()["error"]["code"] == "service_unavailable"
        assert requests.get(server_url + "/healthz", timeout=5).status_code == 200
        time.sleep(2.0)
        phase["name"] = "restored"
        restore()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if requests.get(server_url + "/readyz", timeout=REQUEST_TIMEOUT).status_code == 200:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the service did not recover after the database came back")
        time.sleep(1.5)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)

    by_phase = Counter((p, s, c) for p, s, c, _ in seen)
    slowest = max(d for *_, d in seen)
    assert not [x for x in seen if x[1] >= 500 and x[1] != 503], by_phase
    assert not [x for x in seen if x[1] == 503 and x[2] != "service_unavailable"], by_phase
    log = log_path.read_text("utf-8", errors="replace")
    noise = [ln for ln in log.splitlines() if not re.search(r'" (200|201|503) ', ln)]
    assert not [x for x in seen if x[1] == 0], f"transport errors: {by_phase}\n" + "\n".join(
        noise[-60:]
    )
    assert slowest < REQUEST_TIMEOUT
    assert any(p == "cut" and s == 503 for p, s, _, _ in seen), by_phase
    assert any(p == "restored" and s in (200, 201) for p, s, _, _ in seen), by_phase
    assert all(s in (200, 201, 503) for _, s, _, _ in seen), by_phase

    # Retry every payment key: those that failed now succeed, those that succeeded replay.
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(  # claims abandoned mid-request would otherwise wait out the lease
            "UPDATE pos_idempotency_keys SET created_at = created_at - interval '2 minutes' "
            "WHERE key = ANY(%s) AND response_status IS NULL",
            (list(keys),),
        )
    for key, sent in keys.items():
        again = _signed(server_url, till, "/pos/v1/payments", sent["body"], key)
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
    return by_phase
