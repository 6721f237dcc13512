# ruff: noqa: E501  (SQL literals read better unwrapped)
"""Ledger benchmark on PostgreSQL: committed spends per second, beside a raw-SQL baseline.

    .venv/bin/python bench/ledger_bench.py [--seconds 8] [--threads 8] [--postings 1000000]

Creates a scratch database on postgresql://postgres@127.0.0.1:5432 (BENCH_PG_URL overrides),
builds it with the migrations, and drops it afterwards. In one run it measures:

- spends/s across 10,000 distinct wallets (10 townships of 1,000 wallets, 20 partners each),
  and across 10,000 wallets in one township (one hash chain: the serial case);
- spends/s on one hot wallet with N threads;
- each beside a baseline: psycopg and hand-written SQL doing the same work (lock the accounts
  in id order, lock the chain head, idempotency check, SHA-256 chain hash, insert the entry and
  its postings, update balances and the chain head, commit), no ORM, no Python services;
- anomalies: wallets below zero, wallets whose final balance is not the start minus the
  committed spends, and `verify` failures;
- `verify` over a million postings, bulk-loaded by an equivalent balanced generator (correct
  balances, balance_after and chain hashes, written with COPY with triggers off, as a restore
  would) and timed.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy.orm import Session

from mall.config import Config
from mall.errors import Conflict
from mall.extensions import db
from mall.ledger import Leg, hashing, post_entry, verify_ledger
from mall.ledger.models import GENESIS_HASH
from mall.web.app import create_app

ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
START_POINTS = 1_000_000


@dataclass
class Township:
    id: int
    fund: int
    wallets: list[int]
    payables: list[int]


# ---------------------------------------------------------------- set-up (fast, raw SQL)


def build_world(
    conn: psycopg.Connection, townships: int, wallets_each: int, partners: int
) -> list[Township]:
    """Regions, subjects, partners and accounts by multi-row INSERT; wallets funded by one
    balanced entry per township posted through the ledger itself (below)."""
    out = []
    with conn.cursor() as cur:
        tag = uuid.uuid4().hex[:6]
        cur.execute(
            "INSERT INTO regions (kind, code, name, settings) VALUES ('county', %s, '基准县', '{}') RETURNING id",
            (f"BC{tag}",),
        )
        county = cur.fetchone()[0]  # type: ignore[index]
        for t in range(townships):
            cur.execute(
                "INSERT INTO regions (kind, code, name, parent_id, county_id, settings)"
                " VALUES ('township', %s, %s, %s, %s, '{}') RETURNING id",
                (f"BC{tag}T{t}", f"基准{t}镇", county, county),
            )
            town = cur.fetchone()[0]  # type: ignore[index]
            cur.execute("UPDATE regions SET township_id = id WHERE id = %s", (town,))
            cur.execute(
                "INSERT INTO regions (kind, code, name, parent_id, county_id, township_id, settings)"
                " VALUES ('village', %s, '基准村', %s, %s, %s, '{}') RETURNING id",
                (f"BC{tag}T{t}V", town, county, town),
            )
            village = cur.fetchone()[0]  # type: ignore[index]
            cur.execute(
                "INSERT INTO credit_subjects (ref, kind, county_id, township_id, village_id, status,"
                " name_enc, name_masked, name_bidx, pin_failed_count, created_at)"
                " SELECT 'b' || %s || '-' || g, 'household', %s, %s, %s, 'active', 'x', '张*华', 'x', 0, now()"
                " FROM generate_series(1, %s) g RETURNING id",
                (f"{tag}{t}", county, town, village, wallets_each),
            )
            subjects = [r[0] for r in cur.fetchall()]
            cur.execute(
                "INSERT INTO partners (county_id, township_id, name, category, address, contact_name,"
                " contact_phone_masked, accepts_integrity, accepts_points, settlement, active, created_at)"
                " SELECT %s, %s, '信用超市' || g, 'supermarket', '', '', '', true, true, '{}', true, now()"
                " FROM generate_series(1, %s) g RETURNING id",
                (county, town, partners),
            )
            partner_ids = [r[0] for r in cur.fetchall()]
            cur.execute(
                "INSERT INTO ledger_accounts (township_id, asset, kind, no_negative, posted_balance,"
                " held_balance, created_at) VALUES (%s, 'POINTS', 'points_fund', false, 0, 0, now())"
                " RETURNING id",
                (town,),
            )
            fund = cur.fetchone()[0]  # type: ignore[index]
            cur.execute(
                "INSERT INTO ledger_accounts (township_id, asset, kind, subject_id, no_negative,"
                " posted_balance, held_balance, created_at)"
                " SELECT %s, 'POINTS', 'household_points', s, true, 0, 0, now() FROM unnest(%s::bigint[]) s"
                " RETURNING id",
                (town, subjects),
            )
            wallets = [r[0] for r in cur.fetchall()]
            cur.execute(
                "INSERT INTO ledger_accounts (township_id, asset, kind, partner_id, no_negative,"
                " posted_balance, held_balance, created_at)"
                " SELECT %s, 'POINTS', 'partner_payable', p, false, 0, 0, now() FROM unnest(%s::int[]) p"
                " RETURNING id",
                (town, partner_ids),
            )
            payables = [r[0] for r in cur.fetchall()]
            out.append(Township(town, fund, wallets, payables))
    conn.commit()
    return out


def fund(app: Flask, towns: list[Township], points: int) -> None:
    with app.app_context():
        session = db.session()
        for town in towns:
            legs = [Leg(town.fund, -points * len(town.wallets))]
            legs += [Leg(w, points) for w in town.wallets]
            post_entry(session, township_id=town.id, kind="points_issued", legs=legs, actor="bench")
        session.commit()
        db.session.remove()


# ---------------------------------------------------------------- the two spend paths


def ledger_spender(app: Flask) -> Callable[[int, int, int, int, str], bool]:
    local = threading.local()

    def spend(township: int, wallet: int, payable: int, amount: int, key: str) -> bool:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = Session(db.engine, expire_on_commit=False)
        try:
            post_entry(
                session,
                township_id=township,
                kind="points_redeemed",
                legs=[Leg(wallet, -amount), Leg(payable, amount)],
                actor="terminal:bench",
                idempotency_key=key,
            )
            session.commit()
            return True
        except Conflict:
            session.rollback()
            return False

    return spend


LOCK_SQL = """
SELECT a.id, a.no_negative, a.posted_balance, a.held_balance, NULL::bigint, NULL::varchar
FROM (SELECT id, no_negative, posted_balance, held_balance FROM ledger_accounts
      WHERE township_id = %(t)s AND id = ANY(%(ids)s) ORDER BY id FOR UPDATE) a
UNION ALL
SELECT NULL, NULL, NULL, NULL, h.last_seq, h.last_hash
FROM (SELECT last_seq, last_hash FROM ledger_chain_heads WHERE township_id = %(t)s FOR UPDATE) h
"""

WRITE_SQL = """
WITH e AS (
  INSERT INTO ledger_entries (township_id, chain_seq, kind, actor, reason, idempotency_key,
    request_hash, created_at, business_date, prev_hash, hash)
  SELECT %(t)s::int, %(seq)s::bigint, 'points_redeemed', 'terminal:bench', '', %(key)s::varchar,
    %(req)s::varchar, %(at)s::timestamptz, %(bd)s::date, %(prev)s::varchar, %(hash)s::varchar
  WHERE NOT EXISTS (SELECT 1 FROM ledger_entries
                    WHERE township_id = %(t)s::int AND idempotency_key = %(key)s::varchar)
  RETURNING id
), p AS (
  INSERT INTO ledger_postings (township_id, entry_id, account_id, asset, amount, balance_after)
  SELECT %(t)s, e.id, v.a, 'POINTS', v.m, v.b FROM e,
    (VALUES (%(w)s::bigint, %(wm)s::bigint, %(wb)s::bigint), (%(p)s, %(pm)s, %(pb)s)) v(a, m, b)
), acc AS (
  UPDATE ledger_accounts SET posted_balance = v.b
  FROM e, (VALUES (%(w)s::bigint, %(wb)s::bigint), (%(p)s, %(pb)s)) v(a, b)
  WHERE ledger_accounts.township_id = %(t)s AND ledger_accounts.id = v.a
), h AS (
  UPDATE ledger_chain_heads SET last_seq = %(seq)s, last_hash = %(hash)s, last_entry_id = e.id
  FROM e WHERE ledger_chain_heads.township_id = %(t)s
)
SELECT id FROM e
"""


def baseline_spender(dsn: str) -> Callable[[int, int, int, int, str], bool]:
    """The same work in hand-written SQL over psycopg, with the same round trips as the ledger
    (lock accounts then chain head; one write; commit) and the same hashes: what the ledger
    costs above the floor is SQLAlchemy, the session and the service code."""
    local = threading.local()

    def spend(township: int, wallet: int, payable: int, amount: int, key: str) -> bool:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = psycopg.connect(dsn)
        cur = conn.cursor()
        cur.execute(
            "SELECT id FROM ledger_entries WHERE township_id = %s AND idempotency_key = %s",
            (township, key),
        )
        if cur.fetchone() is not None:
            conn.rollback()
            return True
        cur.execute(LOCK_SQL, {"t": township, "ids": sorted((wallet, payable))})
        rows = cur.fetchall()
        state = {r[0]: r for r in rows if r[0] is not None}
        seq, prev = next((r[4], r[5]) for r in rows if r[0] is None)
        w = state[wallet]
        if w[2] - amount < w[3]:
            conn.rollback()
            return False
        new = {wallet: w[2] - amount, payable: state[payable][2] + amount}
        now = datetime.now(UTC)
        seq += 1
        legs = [(wallet, -amount), (payable, amount)]
        req = hashing.request_hash(
            kind="points_redeemed", legs=legs, source_type=None, source_id=None
        )
        header = hashing.entry_header(
            township_id=township, chain_seq=seq, kind="points_redeemed", actor="terminal:bench",
            reason="", source_type=None, source_id=None, idempotency_key=key, request_hash=req,
            reverses_entry_id=None, hold_id=None, created_at=now, business_date=now.date(),
        )  # fmt: skip
        posts = [
            (wallet, "POINTS", -amount, new[wallet]),
            (payable, "POINTS", amount, new[payable]),
        ]
        digest = hashing.chain_hash(prev, header, hashing.postings_part(posts))
        cur.execute(
            WRITE_SQL,
            {
                "t": township, "seq": seq, "key": key, "req": req, "at": now, "bd": now.date(),
                "prev": prev, "hash": digest, "w": wallet, "wm": -amount, "wb": new[wallet],
                "p": payable, "pm": amount, "pb": new[payable],
            },
        )  # fmt: skip
        cur.fetchone()
        conn.commit()
        return True

    return spend


# ---------------------------------------------------------------- the measurements


def run_for(
    seconds: float,
    threads: int,
    pick: Callable[[random.Random], tuple[int, int, int]],
    spend: Callable[[int, int, int, int, str], bool],
    label: str,
) -> tuple[float, int, int]:
    """Each thread spends 1 point at a time until the clock runs out; returns (rate, ok, refused)."""
    ok = refused = 0
    lock = threading.Lock()
    stop = time.perf_counter() + seconds
    barrier = threading.Barrier(threads + 1)

    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            work(n)
        except BaseException as exc:  # surfaced below: a benchmark that errs measures nothing
            errors.append(exc)
            raise

    def work(n: int) -> None:
        nonlocal ok, refused
        rnd = random.Random(n)
        mine_ok = mine_refused = 0
        barrier.wait()
        i = 0
        while time.perf_counter() < stop:
            township, wallet, payable = pick(rnd)
            i += 1
            if spend(township, wallet, payable, 1, f"{label}-{n}-{i}"):
                mine_ok += 1
            else:
                mine_refused += 1
        with lock:
            ok += mine_ok
            refused += mine_refused

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in pool:
        t.join()
    if errors:
        raise RuntimeError(f"{label}: {len(errors)} worker(s) failed") from errors[0]
    return ok / (time.perf_counter() - started), ok, refused


def anomalies(dsn: str) -> tuple[int, int]:
    with psycopg.connect(dsn) as conn:
        negative = conn.execute(
            "SELECT count(*) FROM ledger_accounts WHERE no_negative"
            " AND (posted_balance < 0 OR posted_balance < held_balance)"
        ).fetchone()[0]  # type: ignore[index]
        drift = conn.execute(
            "SELECT count(*) FROM ledger_accounts a LEFT JOIN (SELECT township_id, account_id,"
            " sum(amount) s FROM ledger_postings GROUP BY 1, 2) p"
            " ON p.township_id = a.township_id AND p.account_id = a.id"
            " WHERE a.posted_balance <> coalesce(p.s, 0)"
        ).fetchone()[0]  # type: ignore[index]
    return negative, drift


def bulk_load(dsn: str, town: Township, postings: int) -> float:
    """Half a million balanced two-posting entries, with exact balance_after and chain hashes
    computed by the ledger's own hashing module, written with COPY (triggers off, as in a
    restore). Returns the seconds it took."""
    started = time.perf_counter()
    entries = postings // 2
    balances = dict.fromkeys((town.fund, *town.wallets, *town.payables), 0)
    rnd = random.Random(7)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    bdate = date(2026, 1, 1)
    with psycopg.connect(dsn) as conn:
        conn.execute("SET session_replication_role = replica")
        first_id = conn.execute(
            "SELECT nextval(pg_get_serial_sequence('ledger_entries', 'id'))"
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "SELECT setval(pg_get_serial_sequence('ledger_entries', 'id'), %s)",
            (first_id + entries,),
        )
        prev, seq = GENESIS_HASH, 0
        entry_rows, posting_rows = [], []
        for i in range(entries):
            wallet = rnd.choice(town.wallets)
            if i % 3 == 0 or balances[wallet] == 0:
                kind, src, dst, amount = "points_issued", town.fund, wallet, rnd.randint(5, 50)
            else:
                kind, src, dst = "points_redeemed", wallet, rnd.choice(town.payables)
                amount = rnd.randint(1, balances[wallet])
            balances[src] -= amount
            balances[dst] += amount
            seq += 1
            created = base + timedelta(microseconds=i * 1000)
            legs = [(src, -amount), (dst, amount)]
            req = hashing.request_hash(kind=kind, legs=legs, source_type=None, source_id=None)
            header = hashing.entry_header(
                township_id=town.id, chain_seq=seq, kind=kind, actor="bulk", reason="",
                source_type=None, source_id=None, idempotency_key=None, request_hash=req,
                reverses_entry_id=None, hold_id=None, created_at=created, business_date=bdate,
            )  # fmt: skip
            posts = [
                (src, "POINTS", -amount, balances[src]),
                (dst, "POINTS", amount, balances[dst]),
            ]
            digest = hashing.chain_hash(prev, header, hashing.postings_part(posts))
            entry_id = first_id + i
            entry_rows.append((town.id, entry_id, seq, kind, req, created, bdate, prev, digest))
            for account, _asset, amt, after in posts:
                posting_rows.append((town.id, entry_id, account, amt, after))
            prev = digest
        with conn.cursor() as cur:
            with cur.copy(
                "COPY ledger_entries (township_id, id, chain_seq, kind, actor, reason, request_hash,"
                " created_at, business_date, prev_hash, hash) FROM STDIN"
            ) as copy:
                for t, eid, s, k, r, c, d, p, h in entry_rows:
                    copy.write_row((t, eid, s, k, "bulk", "", r, c, d, p, h))
            with cur.copy(
                "COPY ledger_postings (township_id, entry_id, account_id, asset, amount, balance_after)"
                " FROM STDIN"
            ) as copy:
                for t, eid, a, m, b in posting_rows:
                    copy.write_row((t, eid, a, "POINTS", m, b))
            cur.executemany(
                "UPDATE ledger_accounts SET posted_balance = %s WHERE township_id = %s AND id = %s",
                [(b, town.id, a) for a, b in balances.items()],
            )
            cur.execute(
                "INSERT INTO ledger_chain_heads (township_id, last_seq, last_hash, last_entry_id)"
                " VALUES (%s, %s, %s, %s)",
                (town.id, seq, prev, first_id + entries - 1),
            )
        conn.commit()
        conn.execute("ANALYZE ledger_entries")
        conn.execute("ANALYZE ledger_postings")
    return time.perf_counter() - started


def timed_verify(app: Flask) -> tuple[float, bool, str]:
    with app.app_context():
        started = time.perf_counter()
        with db.engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
            report = verify_ledger(conn)
        elapsed = time.perf_counter() - started
        db.engine.dispose()
    return elapsed, report.ok, f"{report.entries} entries, {report.postings} postings"


def commit_latency_ms(dsn: str, n: int = 200) -> float:
    """The floor under any one hot row: a one-row insert and a durable commit."""
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE bench_commit_probe (x int)")
        conn.commit()
        started = time.perf_counter()
        for _ in range(n):
            conn.execute("INSERT INTO bench_commit_probe VALUES (1)")
            conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_commit_probe")
        conn.commit()
    return elapsed / n * 1000


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
        with open("/proc/meminfo") as f:
            kb = int(next(line.split()[1] for line in f if line.startswith("MemTotal")))
    except (OSError, StopIteration):
        kb = 0
    pg = subprocess.run(
        ["psql", ADMIN_URL, "-Atc", "SHOW server_version"], capture_output=True, text=True
    ).stdout.strip()
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {kb / 1024 / 1024:.0f} GiB RAM, PostgreSQL {pg},"
        f" Python {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--postings", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--skip-spends", action="store_true", help="only the verify figures")
    args = parser.parse_args()

    name = f"mall_bench_ledger_{os.getpid()}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        run(dsn, args)
    finally:
        if args.keep:
            print(f"kept database {name}")
        else:
            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(dsn: str, args: argparse.Namespace) -> None:
    app = create_app(Config({"DATABASE_URL": dsn, "LOG_LEVEL": "WARNING"}))
    with app.app_context():
        upgrade(revision="heads")
    print(f"machine: {machine()}")
    print(f"threads: {args.threads}, {args.seconds:.0f} s per measurement")
    print(f"commit latency (1-row insert + commit): {commit_latency_ms(dsn):.2f} ms\n")
    with psycopg.connect(dsn) as conn:
        spread = build_world(conn, townships=10, wallets_each=1_000, partners=20)
        single = build_world(conn, townships=1, wallets_each=10_000, partners=20)
        hot = build_world(conn, townships=1, wallets_each=1, partners=20)
    fund(app, spread + single, 1_000)
    fund(app, hot, START_POINTS)

    def pick_spread(rnd: random.Random) -> tuple[int, int, int]:
        town = rnd.choice(spread)
        return town.id, rnd.choice(town.wallets), rnd.choice(town.payables)

    def pick_single(rnd: random.Random) -> tuple[int, int, int]:
        town = single[0]
        return town.id, rnd.choice(town.wallets), rnd.choice(town.payables)

    def pick_hot(rnd: random.Random) -> tuple[int, int, int]:
        town = hot[0]
        return town.id, town.wallets[0], rnd.choice(town.payables)

    rows = []
    if args.skip_spends:
        verify_million(app, dsn, args.postings)
        return
    with app.app_context():
        ledger = ledger_spender(app)
        baseline = baseline_spender(dsn)
        spent_hot = 0
        for label, pick in (
            ("10,000 wallets, 10 townships", pick_spread),
            ("10,000 wallets, 1 township", pick_single),
            ("1 hot wallet", pick_hot),
        ):
            results = {}
            for impl, spend in (("baseline", baseline), ("ledger", ledger)):
                rate, ok, refused = run_for(
                    args.seconds, args.threads, pick, spend, f"{impl}{label}"
                )
                results[impl] = (rate, ok, refused)
                if pick is pick_hot:
                    spent_hot += ok
            rows.append((label, results))
            b, led = results["baseline"][0], results["ledger"][0]
            print(
                f"{label:30s} baseline {b:7.0f}/s   ledger {led:7.0f}/s   ratio {led / b:5.0%}"
                f"   refused {results['ledger'][2]}"
            )
        db.session.remove()
        db.engine.dispose()

    negative, drift = anomalies(dsn)
    with psycopg.connect(dsn) as conn:
        hot_left = conn.execute(
            "SELECT posted_balance FROM ledger_accounts WHERE id = %s", (hot[0].wallets[0],)
        ).fetchone()[0]  # type: ignore[index]
    wrong_hot = int(hot_left != START_POINTS - spent_hot)
    elapsed, ok, what = timed_verify(app)
    print(
        f"\nanomalies: {negative} negative wallets, {drift} cached balances off the postings,"
        f" {wrong_hot} hot-wallet balance mismatch, verify {'OK' if ok else 'FAILED'}"
        f" ({what}, {elapsed:.2f} s)"
    )

    verify_million(app, dsn, args.postings)


def verify_million(app: Flask, dsn: str, postings: int) -> None:
    """A township with a million postings beside the rest, then verify everything."""
    with psycopg.connect(dsn) as conn:
        big = build_world(conn, townships=1, wallets_each=1_000, partners=20)[0]
    load = bulk_load(dsn, big, postings)
    print(f"bulk load of {postings:,} postings: {load:.1f} s")
    elapsed, ok, what = timed_verify(app)
    print(f"verify: {'OK' if ok else 'FAILED'} over {what} in {elapsed:.2f} s")


if __name__ == "__main__":
    main()
