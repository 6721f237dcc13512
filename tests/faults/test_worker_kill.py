"""kill -9 of gunicorn workers in the middle of payments driven by the reference client.

Four tills pay with card codes (PIN checks make each payment take a while, so kills land
mid-request) while a killer thread SIGKILLs a worker every 0.3 s; the master respawns them.
The clients retry on transport errors with the same Idempotency-Key (pos_adapter.client).
Afterwards every key is sent once more: each must come back as the same one payment. Proven:
no partial entry (every payment has exactly its ledger entry, `flask verify` passes), exactly
once per key (payments and ledger entries counted by key), wallets moved by exactly the sum
of the discounts.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from typing import Any

import psycopg
import pytest

from pos_adapter.client import PosClient, PosError
from tests.faults.helpers import children, gunicorn_master
from tests.live import LiveServer, run_flask

pytestmark = [pytest.mark.e2e, pytest.mark.postgres_only]

PAYMENTS_PER_TILL = 5
AMOUNT_FEN = 10_000


def _pg(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def _age_abandoned_claims(url: str, keys: list[str]) -> int:
    """A claim left by a killed worker blocks its key for the lease (60 s). Move those claims
    back in time instead of sleeping: what the next repeat then does is the point."""
    with _pg(url) as conn:
        cur = conn.execute(
            "UPDATE pos_idempotency_keys SET created_at = created_at - interval '2 minutes' "
            "WHERE key = ANY(%s) AND response_status IS NULL",
            (keys,),
        )
        return cur.rowcount


def test_kill_workers_mid_payment_exactly_once(live_server: LiveServer) -> None:
    m = live_server.manifest
    town = {p["partner_id"]: p["township"] for p in m["partners"]}
    tills = [t for t in m["terminals"] if t["partner_category"] in ("supermarket", "wholesale")]
    # Households with a card and a level, from the end of the list (other tests use the first).
    holders = [h for h in reversed(m["households"]) if h.get("card_code") and h["level"]]
    port = int(live_server.url.rsplit(":", 1)[1])
    master = gunicorn_master(port)

    jobs: list[dict[str, Any]] = []
    for i, till in enumerate(tills):
        client = PosClient(
            live_server.url, till["terminal_id"], till["secret"], retries=6, backoff=0.1
        )
        mine = [h for h in holders if _township_of(m, h) == town[till["partner_id"]]]
        for n in range(PAYMENTS_PER_TILL):
            holder = mine[(i * PAYMENTS_PER_TILL + n) % len(mine)]
            key = f"kill-{uuid.uuid4().hex[:20]}"
            jobs.append({"client": client, "holder": holder, "key": key, "till": i})

    distinct = {j["holder"]["ref"]: j["holder"] for j in jobs}
    before = {ref: _balance(jobs, h) for ref, h in distinct.items()}

    def pay(job: dict[str, Any]) -> dict[str, Any]:
        return job["client"].pay(  # type: ignore[no-any-return]
            job["holder"]["card_code"],
            AMOUNT_FEN,
            pin=job["holder"]["pin"],
            external_ref=job["key"],
            idempotency_key=job["key"],
        )

    outcomes: dict[str, Any] = {}

    def till_thread(index: int) -> None:
        for job in (j for j in jobs if j["till"] == index):
            try:
                outcomes[job["key"]] = pay(job)["payment_id"]
            except (PosError, OSError) as exc:  # in progress on a killed worker, or gone
                outcomes[job["key"]] = exc

    kills: list[int] = []
    stop = threading.Event()

    def killer() -> None:
        deadline = time.monotonic() + 20
        while not stop.is_set() and time.monotonic() < deadline and len(kills) < 8:
            time.sleep(0.3)
            workers = children(master)
            if workers:
                victim = workers[len(kills) % len(workers)]
                os.kill(victim, signal.SIGKILL)
                kills.append(victim)

    threads = [threading.Thread(target=till_thread, args=(i,)) for i in range(len(tills))]
    k = threading.Thread(target=killer)
    k.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    stop.set()
    k.join()
    assert kills, "no worker was killed"
    _wait_for_workers(master, live_server)

    # Every key once more, as a till that never got (or lost) its answer would.
    keys = [j["key"] for j in jobs]
    _age_abandoned_claims(live_server.database_url, keys)
    final = {}
    for job in jobs:
        final[job["key"]] = pay(job)["payment_id"]
        first = outcomes[job["key"]]
        if isinstance(first, str):
            assert final[job["key"]] == first, "a retry with the same key made a new payment"

    with _pg(live_server.database_url) as conn:
        rows = conn.execute(
            "SELECT external_ref, public_id, integrity_discount_fen, integrity_entry_id "
            "FROM payments WHERE external_ref = ANY(%s)",
            (keys,),
        ).fetchall()
        entries = conn.execute(
            "SELECT count(*) FROM ledger_entries e JOIN payments p "
            "ON e.idempotency_key LIKE 'pay:' || p.public_id || ':%%' "
            "WHERE p.external_ref = ANY(%s)",
            (keys,),
        ).fetchone()
    assert len(rows) == len(keys), "a key made no payment or more than one"
    assert {r[0] for r in rows} == set(keys)
    assert {r[1] for r in rows} == set(final.values())
    with_discount = [r for r in rows if r[2] > 0]
    assert all(r[3] is not None for r in with_discount), "a payment without its ledger entry"
    assert entries is not None
    assert entries[0] == len(with_discount)

    spent: dict[str, int] = {}
    by_key = {r[0]: r[2] for r in rows}
    for job in jobs:
        spent[job["holder"]["ref"]] = spent.get(job["holder"]["ref"], 0) + by_key[job["key"]]
    for ref, was in before.items():
        holder_job = next(j for j in jobs if j["holder"]["ref"] == ref)
        assert _balance(jobs, holder_job["holder"]) == was - spent[ref]

    env = {**os.environ, "DATABASE_URL": live_server.database_url}
    run_flask(env, "verify")


def _township_of(m: dict[str, Any], holder: dict[str, Any]) -> str:
    from mall.demo.builder import TOWNSHIPS

    for town, villages in TOWNSHIPS:
        if holder["village"] in villages:
            return town
    raise LookupError(holder["village"])


def _balance(jobs: list[dict[str, Any]], holder: dict[str, Any]) -> int:
    client = next(j["client"] for j in jobs if j["holder"]["ref"] == holder["ref"])
    return int(client.scan(holder["card_code"])["wallet"]["integrity_fen"])


def _wait_for_workers(master: int, live: LiveServer) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if len(children(master)) >= 2:
            try:
                PosClient(live.url, "x", "y", retries=0).keys()
                return
            except (PosError, OSError):
                pass
        time.sleep(0.2)
    raise AssertionError("gunicorn did not respawn its workers")
