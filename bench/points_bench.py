"""Ratings and points benchmark on PostgreSQL (creates and drops its own scratch database).

    .venv/bin/python bench/points_bench.py [--households 100000] [--base-url postgresql://...]

1. Approve one batch issuing points to N households: caps, one ledger entry per household
   (mall.ledger.bulk: COPY of entries and postings, one set-based balance update), committed.
   Baseline: COPY of the same number of entry and posting rows into bare tables.
2. Import an N-row xlsx with per-row validation (parse, check every row, store the events),
   committed. Baseline: openpyxl read-only iteration of the same file, nothing else.
3. `flask verify` of the resulting ledger (for information).
Writes nothing to docs: paste the printed table into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import io
import time
from datetime import timedelta

from openpyxl import Workbook, load_workbook
from scratch import scratch_app  # bench/scratch.py, beside this script
from sqlalchemy import insert, text

from mall.clock import business_date
from mall.extensions import db
from mall.ledger.bulk import copy_rows
from mall.ledger.verify import verify_ledger
from mall.points import services
from mall.points.rules import create_rule
from mall.regions.services import create_region
from mall.staff.services import create_user
from mall.subjects.models import CreditSubject


def timed(label: str, fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    print(f"{label}: {elapsed:.2f} s", flush=True)
    return result, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--base-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with scratch_app(args.base_url, "points"):
        run(args.households)


def run(n: int) -> None:
    session = db.session()
    today = business_date()
    county = create_region(session, kind="county", code="BC", name="基准县")
    town = create_region(session, kind="township", code="BCT", name="基准镇", parent=county)
    village = create_region(session, kind="village", code="BCTV", name="基准村", parent=town)
    maker = create_user(
        session, username="maker", password="bench-password-1", role="township_admin", region=town
    )
    checker = create_user(
        session, username="checker", password="bench-password-1", role="county_admin", region=county
    )
    create_rule(session, None, county, code="volunteer", name="志愿服务", points=10, cap_month=50)
    create_rule(session, None, county, code="public", name="公益活动", points=5)
    session.commit()
    # Households inserted directly (the enrolment service seals personal data one by one,
    # which is not what is measured here).
    rows = [
        {
            "ref": f"h{i:015d}",
            "kind": "household",
            "county_id": county.id,
            "township_id": town.id,
            "village_id": village.id,
            "status": "active",
            "name_enc": "x",
            "name_masked": "张*",
            "name_bidx": f"b{i}",
            "pin_failed_count": 0,
            "created_at": db_now(),
        }
        for i in range(n)
    ]
    session.execute(insert(CreditSubject.__table__), rows)  # type: ignore[arg-type]
    session.commit()
    refs = [r["ref"] for r in rows]

    # 1. approval of a batch for every household
    batch = services.create_batch(session, maker, town.id)
    ids = list(session.execute(text("SELECT id FROM credit_subjects ORDER BY id")).scalars())
    from mall.points.imports import GoodRow
    from mall.points.rules import effective_rules

    rule = effective_rules(session, village)["volunteer"]
    good = [
        GoodRow(i + 2, sid, village.id, rule.id, rule.points, today, "")
        for i, sid in enumerate(ids)
    ]
    services._store_events(session, batch, good)
    batch.events = len(good)
    services.submit_batch(session, maker, batch)
    session.commit()

    def approve() -> object:
        b = services.approve_batch(session, checker, batch.id, today=today)
        session.commit()
        return b

    approved, t_approve = timed(f"approve batch for {n} households", approve)
    assert approved.households == n  # type: ignore[attr-defined]

    def baseline_copy() -> None:
        session.execute(text("CREATE TEMP TABLE e_copy (LIKE ledger_entries)"))
        session.execute(text("CREATE TEMP TABLE p_copy (LIKE ledger_postings)"))
        now = db_now()
        copy_rows(
            session,
            "e_copy",
            [
                "township_id",
                "id",
                "chain_seq",
                "kind",
                "actor",
                "reason",
                "request_hash",
                "created_at",
                "business_date",
                "prev_hash",
                "hash",
            ],
            iter(
                [
                    [
                        town.id,
                        i,
                        i + 1,
                        "points_issued",
                        "x",
                        "",
                        "0" * 64,
                        now,
                        today,
                        "0" * 64,
                        "0" * 64,
                    ]
                    for i in range(n)
                ]
            ),
        )
        copy_rows(
            session,
            "p_copy",
            ["township_id", "id", "entry_id", "account_id", "asset", "amount", "balance_after"],
            iter([[town.id, j, j // 2, j, "POINTS", 10, 10] for j in range(2 * n)]),
        )
        session.commit()

    _, t_base1 = timed(
        f"baseline: COPY {n} entry rows + {2 * n} posting rows into bare tables", baseline_copy
    )

    # 2. import an xlsx of n rows (two rules, dates over the last weeks)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet()
    ws.append(["户编号", "规则代码", "日期", "备注"])
    for i, ref in enumerate(refs):
        ws.append([ref, "public" if i % 2 else "volunteer", today - timedelta(days=i % 28), ""])
    buf = io.BytesIO()
    wb.save(buf)
    content = buf.getvalue()
    print(f"xlsx: {len(content) / 1e6:.1f} MB", flush=True)

    def baseline_parse() -> int:
        book = load_workbook(io.BytesIO(content), read_only=True)
        count = sum(1 for _ in book.worksheets[0].iter_rows(values_only=True))
        book.close()
        return count

    _, t_base2 = timed(f"baseline: openpyxl read-only iteration of {n} rows", baseline_parse)

    def do_import() -> object:
        result = services.import_events(
            session, maker, town.id, filename="events.xlsx", content=content, today=today
        )
        session.commit()
        return result

    result, t_import = timed(f"import {n}-row xlsx with per-row validation", do_import)
    assert not result.errors, result.errors[:3]  # type: ignore[attr-defined]

    def approve_import() -> object:
        services.submit_batch(session, maker, result.batch)  # type: ignore[attr-defined]
        b = services.approve_batch(session, checker, result.batch.id, today=today)  # type: ignore[attr-defined]
        session.commit()
        return b

    _, t_approve2 = timed(
        "approve the imported batch (monthly caps apply to half the rows)", approve_import
    )
    report, t_verify = timed("verify the ledger", lambda: verify_ledger(session.connection()))
    assert report.ok, report.first  # type: ignore[attr-defined]
    print()
    print("| operation | time | baseline in the same run |")
    print("| --- | --- | --- |")
    print(
        f"| approve a batch issuing points to {n:,} households | {t_approve:.1f} s"
        f" | COPY of the same entry and posting rows into bare tables: {t_base1:.1f} s |"
    )
    print(
        f"| import a {n:,}-row xlsx with per-row validation | {t_import:.1f} s"
        f" | openpyxl read-only iteration alone: {t_base2:.1f} s |"
    )
    print(f"| approve the imported batch (with caps) | {t_approve2:.1f} s | |")
    print(f"| `verify` of {2 * n:,} entries | {t_verify:.1f} s | |")


def db_now():  # type: ignore[no-untyped-def]
    from mall.clock import utcnow

    return utcnow()


if __name__ == "__main__":
    main()
