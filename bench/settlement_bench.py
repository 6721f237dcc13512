"""Settlement and reports benchmark on PostgreSQL (creates and drops its own scratch database).

    .venv/bin/python bench/settlement_bench.py [--payments 100000] [--base-url postgresql://...]

Data: one county, 10 townships, 20,000 households; integrity money and points granted the
month before; then, in the benchmark month, N payments at one partner by households of every
township (6% integrity discount each, a towel for 50 points at 5 yuan in every tenth), and
N/50 partial refunds. The ledger rows are written by the bulk path (mall.ledger.bulk:
the same entries, postings, balances and hash chain as the services), payments and refunds by
multi-row inserts; `verify_ledger` checks the result.

Measures: the month's statement for the partner (`period_statement`), its xlsx export, and
the baseline: the same aggregation as one raw SQL statement, in the same run. Then every
report query, timed, with the key lines of its EXPLAIN plan.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import time
from datetime import date, timedelta
from typing import Any

from scratch import scratch_app  # bench/scratch.py, beside this script
from sqlalchemy import event, insert, text

from mall.benefits.models import Benefit, BenefitUse
from mall.catalog.services import create_goods
from mall.clock import business_date, utcnow
from mall.extensions import db
from mall.ledger.accounts import partner_payable, system_account
from mall.ledger.bulk import Transfer, post_household_transfers
from mall.ledger.models import (
    CNY,
    HOUSEHOLD_INTEGRITY,
    HOUSEHOLD_POINTS,
    INTEGRITY_FUND,
    POINTS,
    POINTS_FUND,
)
from mall.ledger.verify import verify_ledger
from mall.partners.services import create_partner
from mall.payments.models import Payment, Refund
from mall.regions.services import create_region
from mall.reports import queries
from mall.reports.exports import table_xlsx
from mall.reports.scope import Scope
from mall.settlement import statements
from mall.subjects.models import CreditSubject

TOWNSHIPS = 10
EXPLAIN = os.environ.get("BENCH_EXPLAIN", "EXPLAIN ")
HOUSEHOLDS_PER_TOWNSHIP = 2_000


def timed(label: str, fn, repeat: int = 3):  # type: ignore[no-untyped-def]
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    print(f"{label}: {best * 1000:.0f} ms (best of {repeat})", flush=True)
    return result, best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--payments", type=int, default=100_000)
    parser.add_argument("--history-months", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--base-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with scratch_app(args.base_url, "settle", keep=args.keep):
        run(args.payments, args.history_months)


def _households(
    session: Any, county_id: int, towns: list[Any], villages: dict[int, list[int]]
) -> dict[int, list[int]]:
    now = utcnow()
    rows = []
    for town in towns:
        for i in range(HOUSEHOLDS_PER_TOWNSHIP):
            vs = villages[town.id]
            rows.append(
                {
                    "ref": f"h{town.id}x{i}",
                    "kind": "household",
                    "county_id": county_id,
                    "township_id": town.id,
                    "village_id": vs[i % len(vs)],
                    "status": "active",
                    "name_enc": "x",
                    "name_masked": "张*华",
                    "name_bidx": f"b{town.id}x{i}",
                    "level_code": str(1 + i % 5),
                    "level_rank": 1 + i % 5,
                    "pin_failed_count": 0,
                    "created_at": now,
                }
            )
    result = session.execute(
        insert(CreditSubject).returning(
            CreditSubject.id, CreditSubject.township_id, sort_by_parameter_order=True
        ),
        rows,
    )
    by_town: dict[int, list[int]] = {}
    for sid, tid in result:
        by_town.setdefault(tid, []).append(sid)
    return by_town


def build(n: int, history: int) -> tuple[Any, Scope, date, date]:
    session = db.session()
    rng = random.Random(7)
    county = create_region(session, kind="county", code="SB", name="结算县")
    towns = [
        create_region(session, kind="township", code=f"SB{t}", name=f"第{t}镇", parent=county)
        for t in range(TOWNSHIPS)
    ]
    villages = {
        town.id: [
            create_region(
                session, kind="village", code=f"SB{t}V{v}", name=f"{t}镇{v}村", parent=town
            ).id
            for v in range(5)
        ]
        for t, town in enumerate(towns)
    }
    partner = create_partner(
        session,
        township=towns[0],
        name="基准信用超市",
        category="supermarket",
        accepts_points=True,
    )
    create_goods(
        session,
        partner,
        sku="TOWEL",
        name="毛巾",
        points_price=50,
        settlement_price_fen=500,
        stock=10,
    )
    households = _households(session, county.id, towns, villages)
    session.commit()

    today = business_date()
    first = (today.replace(day=1) - timedelta(days=1)).replace(day=1)  # last month
    last = today.replace(day=1) - timedelta(days=1)
    granted_on = _months(first, history, n)[0][0] - timedelta(days=1)  # before them all
    start = time.perf_counter()
    for town in towns:
        ids = households[town.id]
        for kind, counter, amount in (
            (HOUSEHOLD_INTEGRITY, system_account(session, town.id, INTEGRITY_FUND), 1_200_000),
            (HOUSEHOLD_POINTS, system_account(session, town.id, POINTS_FUND, POINTS), 100_000),
        ):
            post_household_transfers(
                session,
                township_id=town.id,
                wallet_kind=kind,
                counter=counter,
                transfers=[Transfer(s, amount, f"g{s}", f"grant:{kind}:{s}") for s in ids],
                credit_kind="integrity_granted" if kind == HOUSEHOLD_INTEGRITY else "points_issued",
                debit_kind="integrity_clawed_back",
                actor="bench",
                reason="发放",
                source_type="bench",
                business_date=granted_on,
            )
    session.commit()

    now = utcnow()
    seq = 0
    payment_rows: list[dict[str, Any]] = []
    all_days: list[date] = []
    for month_start, count in _months(first, history, n):
        month_end = (month_start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        month_days = [month_start + timedelta(days=i) for i in range(month_end.day)]
        seq = _payments(
            session, rng, partner, towns, households, month_days, count, seq, now, payment_rows
        )
        all_days += month_days
    result = session.execute(
        insert(Payment).returning(Payment.id, sort_by_parameter_order=True), payment_rows
    )
    payment_ids = [r.id for r in result]
    _refunds(session, rng, partner, payment_rows, payment_ids, first, last, now, n // 50)
    _benefit_uses(session, county.id, partner, households, all_days, rng, n * (history + 1) // 10)
    session.commit()
    session.execute(text("ANALYZE"))
    session.commit()
    print(
        f"generated {len(payment_rows)} payments ({history} month(s) of history before the"
        f" benchmark month), {TOWNSHIPS * HOUSEHOLDS_PER_TOWNSHIP} households in"
        f" {time.perf_counter() - start:.1f} s",
        flush=True,
    )
    report = verify_ledger(session.connection())
    print(f"verify_ledger: {report}", flush=True)
    return partner, Scope(county.id, [t.id for t in towns]), first, last


def _months(first: date, history: int, n: int) -> list[tuple[date, int]]:
    """The history months (n/2 payments each), oldest first, then the benchmark month."""
    starts = [first]
    for _ in range(history):
        starts.insert(0, (starts[0] - timedelta(days=1)).replace(day=1))
    return [(s, n // 2) for s in starts[:-1]] + [(first, n)]


def _payments(
    session: Any,
    rng: random.Random,
    partner: Any,
    towns: list[Any],
    households: dict[int, list[int]],
    days: list[date],
    n: int,
    seq: int,
    now: Any,
    payment_rows: list[dict[str, Any]],
) -> int:
    per_call = n // (len(days) * TOWNSHIPS)
    extra = n - per_call * len(days) * TOWNSHIPS
    for d_index, day in enumerate(days):
        for t_index, town in enumerate(towns):
            count = per_call + (1 if d_index * TOWNSHIPS + t_index < extra else 0)
            buyers = rng.sample(households[town.id], count)
            spent, points = [], []
            for sid in buyers:
                seq += 1
                amount = rng.randint(500, 30_000)
                discount = amount * 600 // 10_000
                towel = seq % 10 == 0
                spent.append(Transfer(sid, -discount, f"pay_b{seq}", f"pay:b{seq}:integrity"))
                if towel:
                    points.append(Transfer(sid, -50, f"pay_b{seq}", f"pay:b{seq}:points"))
                payment_rows.append(
                    {
                        "public_id": f"pay_b{seq}",
                        "partner_id": partner.id,
                        "township_id": town.id,
                        "subject_id": sid,
                        "origin": "online",
                        "code_kind": "dynamic",
                        "status": "completed",
                        "amount_fen": amount,
                        "discount_rate_bp": 600,
                        "integrity_discount_fen": discount,
                        "offline_shortfall_fen": 0,
                        "points_cost": 50 if towel else 0,
                        "points_settlement_fen": 500 if towel else 0,
                        "cash_due_fen": amount - discount,
                        "refunded_amount_fen": 0,
                        "refunded_integrity_fen": 0,
                        "refunded_points": 0,
                        "refunded_settlement_fen": 0,
                        "needs_review": False,
                        "external_ref": f"POS-{seq}",
                        "business_date": day,
                        "created_at": now,
                        "captured_at": now,
                    }
                )
            post_household_transfers(
                session,
                township_id=town.id,
                wallet_kind=HOUSEHOLD_INTEGRITY,
                counter=partner_payable(session, town.id, partner.id, CNY),
                transfers=spent,
                credit_kind="integrity_refunded",
                debit_kind="integrity_spent",
                actor="bench",
                reason="诚信金抵扣",
                source_type="payment",
                business_date=day,
            )
            if points:
                post_household_transfers(
                    session,
                    township_id=town.id,
                    wallet_kind=HOUSEHOLD_POINTS,
                    counter=partner_payable(session, town.id, partner.id, POINTS),
                    transfers=points,
                    credit_kind="points_refunded",
                    debit_kind="points_redeemed",
                    actor="bench",
                    reason="积分兑换",
                    source_type="payment",
                    business_date=day,
                )
    return seq


def _refunds(
    session: Any,
    rng: random.Random,
    partner: Any,
    payment_rows: list[dict[str, Any]],
    payment_ids: list[int],
    first: date,
    last: date,
    now: Any,
    count: int,
) -> None:
    in_month = [i for i, row in enumerate(payment_rows) if row["business_date"] >= first]
    # Partial refunds: half the amount, half the discount back, on a later day of the month.
    refunds: list[dict[str, Any]] = []
    by_key: dict[tuple[int, date], list[Transfer]] = {}
    refunded: set[int] = set()
    for index in rng.sample(in_month, count):
        row = payment_rows[index]
        if row["subject_id"] in refunded:
            continue  # one refund per household keeps each bulk call to one posting each
        refunded.add(row["subject_id"])
        day = min(row["business_date"] + timedelta(days=1), last)
        back = row["integrity_discount_fen"] // 2
        refunds.append(
            {
                "public_id": f"rf_b{index}",
                "payment_id": payment_ids[index],
                "partner_id": partner.id,
                "amount_fen": row["amount_fen"] // 2,
                "integrity_fen": back,
                "points": 0,
                "settlement_fen": 0,
                "items": [],
                "business_date": day,
                "created_at": now,
            }
        )
        by_key.setdefault((row["township_id"], day), []).append(
            Transfer(row["subject_id"], back, f"rf_b{index}", f"rf:b{index}:integrity")
        )
    session.execute(insert(Refund), refunds)
    for (town_id, day), transfers in sorted(by_key.items()):
        post_household_transfers(
            session,
            township_id=town_id,
            wallet_kind=HOUSEHOLD_INTEGRITY,
            counter=partner_payable(session, town_id, partner.id, CNY),
            transfers=transfers,
            credit_kind="integrity_refunded",
            debit_kind="integrity_spent",
            actor="bench",
            reason="退款",
            source_type="refund",
            business_date=day,
        )


def _benefit_uses(
    session: Any,
    county_id: int,
    partner: Any,
    households: dict[int, list[int]],
    days: list[date],
    rng: random.Random,
    count: int,
) -> None:
    benefit_id = session.execute(
        insert(Benefit).returning(Benefit.id),
        [
            {
                "county_id": county_id,
                "partner_category": "supermarket",
                "min_level_rank": 1,
                "kind": "percent_discount",
                "percent_bp": 500,
                "title_zh": "购物九五折",
                "title_en": "5% off",
                "description": "",
                "description_en": "",
                "one_at_a_time": False,
                "valid_from": days[0] - timedelta(days=365),
                "funded_by": "partner",
                "active": True,
                "created_at": utcnow(),
            }
        ],
    ).scalar_one()
    towns = sorted(households)
    rows = []
    for i in range(count):
        town = towns[i % len(towns)]
        amount = rng.randint(1_000, 20_000)
        rows.append(
            {
                "benefit_id": benefit_id,
                "subject_id": rng.choice(households[town]),
                "partner_id": partner.id,
                "county_id": county_id,
                "township_id": partner.township_id,
                "business_date": rng.choice(days),
                "amount_fen": amount,
                "discount_fen": amount * 500 // 10_000,
                "funded_by": "partner",
                "actor": "bench",
                "created_at": utcnow(),
                "closed_at": utcnow(),
            }
        )
    session.execute(insert(BenefitUse), rows)


BASELINE = """
SELECT business_date, count(*) FILTER (WHERE status = 'completed'),
       sum(amount_fen) FILTER (WHERE status = 'completed'),
       sum(integrity_discount_fen) FILTER (WHERE status = 'completed'),
       sum(points_cost) FILTER (WHERE status = 'completed'),
       sum(points_settlement_fen) FILTER (WHERE status = 'completed')
FROM payments WHERE partner_id = :p AND business_date BETWEEN :a AND :b
GROUP BY business_date;
"""
BASELINE_REFUNDS = """
SELECT business_date, count(*), sum(amount_fen), sum(integrity_fen), sum(settlement_fen)
FROM payment_refunds WHERE partner_id = :p AND business_date BETWEEN :a AND :b
GROUP BY business_date;
"""


def explain(session: Any, label: str, fn: Any) -> None:
    """Run `fn` while capturing its SQL, then EXPLAIN each statement; print the key lines."""
    captured: list[tuple[str, Any]] = []
    engine = session.get_bind()

    def capture(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        fn()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    dbapi = session.connection().connection.dbapi_connection
    print(f"  EXPLAIN {label}: {len(captured)} statement(s)")
    for number, (statement, parameters) in enumerate(captured, start=1):
        with dbapi.cursor() as cur:
            cur.execute(EXPLAIN + statement, parameters)
            plan = [r[0] for r in cur.fetchall()]
        keys = [
            line.strip()
            for line in plan
            if re.search(r"Scan|Join|Aggregate", line) and "Filter" not in line
        ]
        print(f"    [{number}] " + "\n        ".join(keys))


def run(n: int, history: int) -> None:
    partner, scope, first, last = build(n, history)
    session = db.session()
    period, took = timed(
        f"month statement ({first}..{last}, {n} payments)",
        lambda: statements.period_statement(session, partner, first, last),
    )
    print(
        f"  payments_count={period.totals['payments_count']} "
        f"net_payable_fen={period.totals['net_payable_fen']} days={len(period.days)}"
    )
    params = {"p": partner.id, "a": first, "b": last}
    _, base = timed(
        "baseline: the same aggregation as raw SQL",
        lambda: (
            session.execute(text(BASELINE), params).all(),
            session.execute(text(BASELINE_REFUNDS), params).all(),
        ),
    )
    print(f"  ratio statement/baseline: {took / base:.2f}")
    timed(
        "month statement as xlsx",
        lambda: table_xlsx("结算单", statements.HEADERS, [v.row() for v in period.days]),
    )
    month = first.strftime("%Y-%m")
    one_town = Scope(scope.county_id, scope.township_ids[:1])
    cases = [
        (
            "ledger report, county scope, by village",
            lambda: queries.household_report(session, scope, "village", first, last),
        ),
        (
            "ledger report, one township, by township",
            lambda: queries.household_report(session, one_town, "township", first, last),
        ),
        (
            "partner report, county scope",
            lambda: queries.partner_report(session, scope, first, last),
        ),
        (
            "benefit uses, county scope, by partner",
            lambda: queries.benefit_use_report(session, scope, "partner", first, last),
        ),
        (
            "households by level, one township, by village",
            lambda: queries.households_by_level(session, one_town, "village"),
        ),
    ]
    for label, fn in cases:
        timed(f"{label} ({month})", fn)
        explain(session, label, fn)
    session.rollback()


if __name__ == "__main__":
    main()
