"""Concurrency on PostgreSQL: real commits, one thread per till request."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, text

from mall.benefits.models import Benefit, BenefitUse
from mall.catalog.services import create_goods
from mall.clock import utcnow
from mall.codes.services import card_code, issue_card, report_lost, sign_dynamic_code
from mall.extensions import db
from mall.ledger.models import Account
from mall.partners.models import Partner
from mall.partners.services import create_terminal
from mall.payments.models import OfflineRecord, Payment
from mall.payments.services import available_balances
from pos_adapter import idempotency
from tests.factories import PIN, make_county, make_household, make_partner
from tests.pos_adapter.conftest import Till, fund_household, rate

pytestmark = pytest.mark.postgres_only


def _setup(app: Flask, integrity_fen: int, points: int = 0, rank: int = 5) -> dict[str, Any]:
    db.session.remove()
    db.session.configure(bind=None, join_transaction_mode="conditional_savepoint")
    session = db.session()
    county = make_county(session, townships=1, villages_per_township=1)
    partner = make_partner(session, county.townships[0])
    terminal, secret = create_terminal(session, partner)
    household = make_household(session, county.villages[0])
    rate(household, rank)
    session.flush()
    fund_household(session, household, integrity_fen=integrity_fen, points=points)
    goods = create_goods(
        session,
        partner,
        sku="SOAP",
        name="肥皂",
        points_price=10,
        settlement_price_fen=300,
        stock=5,
    )
    session.commit()
    return {"terminal": terminal, "secret": secret, "household": household, "goods": goods}


def _parallel(
    app: Flask, ctx: dict[str, Any], bodies: list[Any], path: str, key: str | None = None
) -> list[Any]:
    def one(body: Any) -> tuple[int, dict[str, Any]]:
        with app.app_context():
            till = Till(app.test_client(), ctx["terminal"], ctx["secret"])
            r = till.post(path, body, key=key)
            db.session.remove()
            return r.status_code, r.json

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(one, bodies))


def test_one_dynamic_code_twenty_tills(committed: Flask) -> None:
    ctx = _setup(committed, integrity_fen=100_000)
    code = sign_dynamic_code(db.session(), ctx["household"]).code
    db.session.commit()
    results = _parallel(
        committed, ctx, [{"code": code, "amount_fen": 1_000}] * 20, "/pos/v1/payments"
    )
    statuses = Counter(s for s, _ in results)
    assert statuses == {201: 1, 409: 19}, results
    assert {b["error"]["code"] for s, b in results if s == 409} == {"code_already_used"}
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 1


def test_one_idempotency_key_from_twelve_requests_at_once(committed: Flask) -> None:
    ctx = _setup(committed, integrity_fen=100_000)
    code = sign_dynamic_code(db.session(), ctx["household"]).code
    db.session.commit()
    body = {"code": code, "amount_fen": 1_000}
    results = _parallel(committed, ctx, [body] * 12, "/pos/v1/payments", key="twelve")
    # The first runs; a repeat arriving while it runs is refused as in progress, one arriving
    # after it committed replays its answer. Never a second payment, never a 500.
    assert {s for s, _ in results} <= {201, 409}, results
    assert {b["error"]["code"] for s, b in results if s == 409} <= {"request_in_progress"}
    assert len({b["payment_id"] for s, b in results if s == 201}) == 1
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 1
    # Once the first has finished, every repeat gets its answer.
    again = _parallel(committed, ctx, [body] * 4, "/pos/v1/payments", key="twelve")
    assert {(s, b["payment_id"]) for s, b in again} == {
        (201, next(b["payment_id"] for s, b in results if s == 201))
    }


def test_a_key_being_run_elsewhere_is_in_progress(committed: Flask) -> None:
    """While another transaction holds the key's claim (its advisory lock), a repeat answers
    request_in_progress at once; when that transaction rolls back, the repeat runs."""
    ctx = _setup(committed, integrity_fen=100_000)
    code = sign_dynamic_code(db.session(), ctx["household"]).code
    db.session.commit()
    body = {"code": code, "amount_fen": 1_000}
    lock_id = idempotency._advisory_key(ctx["terminal"].id, "held")
    with db.engine.connect() as other:
        other.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_id})
        [(status, answer)] = _parallel(committed, ctx, [body], "/pos/v1/payments", key="held")
        assert (status, answer["error"]["code"]) == (409, "request_in_progress")
        other.rollback()
    [(status, answer)] = _parallel(committed, ctx, [body], "/pos/v1/payments", key="held")
    assert status == 201, answer


def test_forty_card_payments_on_one_wallet(committed: Flask) -> None:
    ctx = _setup(committed, integrity_fen=7_777)  # 5 stars: 10%, 500 fen per 5,000 sale
    session = db.session()
    code = card_code(session, issue_card(session, ctx["household"]))
    session.commit()
    bodies = [{"code": code, "amount_fen": 5_000, "pin": PIN}] * 40
    results = _parallel(committed, ctx, bodies, "/pos/v1/payments")
    assert all(s == 201 for s, _ in results), results
    spent = sum(b["integrity_discount_fen"] for _, b in results)
    assert spent == 7_777  # 15 x 500, one of 277, then nothing: exact, never negative
    assert sorted({b["integrity_discount_fen"] for _, b in results}) == [0, 277, 500]
    db.session.remove()
    assert available_balances(db.session(), ctx["household"]) == (0, 0)
    negative = db.session.scalar(
        select(func.count())
        .select_from(Account)
        .where(Account.posted_balance < 0, Account.no_negative)
    )
    assert negative == 0


def test_last_items_of_stock(committed: Flask) -> None:
    ctx = _setup(committed, integrity_fen=0, points=10_000)
    session = db.session()
    codes = [sign_dynamic_code(session, ctx["household"]).code for _ in range(20)]
    session.commit()
    bodies = [{"code": c, "amount_fen": 0, "items": [{"sku": "SOAP", "qty": 1}]} for c in codes]
    results = _parallel(committed, ctx, bodies, "/pos/v1/payments")
    statuses = Counter(s for s, _ in results)
    assert statuses == {201: 5, 409: 15}, results
    db.session.remove()
    goods = db.session.get(type(ctx["goods"]), ctx["goods"].id)
    assert goods is not None
    assert goods.stock == 0
    assert available_balances(db.session(), ctx["household"]) == (0, 10_000 - 50)


def test_offline_batch_uploaded_twice_at_once(committed: Flask) -> None:
    """Six uploads of one batch at once: each record applied once, every upload answered
    alike. Among them a sale on a card reported lost after it (the terminal not seen since
    before): honoured by whichever upload came first, though that upload is a contact after
    the report that would refuse the sale to any later upload judging it anew."""
    ctx = _setup(committed, integrity_fen=100_000)
    at = utcnow() - timedelta(minutes=10)
    session = db.session()
    card = issue_card(session, ctx["household"], now=at - timedelta(hours=1))
    records = [
        {
            "local_id": f"L{i}",
            "code": sign_dynamic_code(session, ctx["household"], now=at).code,
            "captured_at": at.isoformat(),
            "amount_fen": 1_000,
            "integrity_discount_fen": 100,
        }
        for i in range(5)
    ]
    records.append({**records[0], "local_id": "CARD", "code": card_code(session, card)})
    report_lost(session, ctx["household"], now=at + timedelta(minutes=5))
    session.commit()
    bodies = [{"batch_id": f"B{n}", "records": records} for n in range(6)]
    results = _parallel(committed, ctx, bodies, "/pos/v1/offline-batches")
    assert all(s == 200 for s, _ in results), results
    first = results[0][1]["results"]
    assert all(b["results"] == first for _, b in results)
    assert [r["status"] for r in first] == ["applied"] * 6
    db.session.remove()
    assert db.session.scalar(select(func.count()).select_from(OfflineRecord)) == 6
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 6
    assert available_balances(db.session(), ctx["household"])[0] == 100_000 - 600
    # once more, after all of them: the stored answers, nothing applied again
    [(status, again)] = _parallel(
        committed, ctx, [bodies[0] | {"batch_id": "B9"}], "/pos/v1/offline-batches"
    )
    assert (status, again["results"]) == (200, first)
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 6


def _limited_benefit(ctx: dict[str, Any], **terms: Any) -> int:
    session = db.session()
    partner = session.get_one(Partner, ctx["terminal"].partner_id)
    benefit = Benefit(
        county_id=partner.county_id,
        partner_id=partner.id,
        kind="free_item",
        cap_fen=30_000,
        min_level_rank=1,
        title_zh="免费体检",
        valid_from=date(2000, 1, 1),
        funded_by="township_fund",
        active=True,
        **terms,
    )
    session.add(benefit)
    session.commit()
    return benefit.id


def test_a_limited_benefit_from_ten_tills_at_once(committed: Flask) -> None:
    """Issue 19: the household's per-day limit holds when tills grant the same benefit at the
    same moment, by card (with its PIN) and by dynamic codes alike; each use is worth the
    benefit's cap, whatever bill the till reported."""
    ctx = _setup(committed, integrity_fen=0)
    bid = _limited_benefit(ctx, limit_per_day=2)
    session = db.session()
    card = card_code(session, issue_card(session, ctx["household"]))
    dynamic = [sign_dynamic_code(session, ctx["household"]).code for _ in range(5)]
    session.commit()
    bodies = [{"code": card, "pin": PIN, "benefit_id": bid, "amount_fen": 100_000_000}] * 5 + [
        {"code": c, "benefit_id": bid, "amount_fen": 100_000_000} for c in dynamic
    ]
    results = _parallel(committed, ctx, bodies, "/pos/v1/benefit-uses")
    statuses = Counter(s for s, _ in results)
    assert statuses == {201: 2, 409: 8}, results
    assert {b["error"]["code"] for s, b in results if s == 409} == {"benefit_limit_reached"}
    assert [b["discount_fen"] for s, b in results if s == 201] == [30_000, 30_000]
    db.session.remove()
    assert db.session.scalar(select(func.count()).select_from(BenefitUse)) == 2
    assert db.session.scalar(select(func.sum(BenefitUse.discount_fen))) == 60_000


def test_wrong_pins_at_ten_tills_at_once_lock_the_card(committed: Flask) -> None:
    """Every wrong PIN sent for a benefit use is counted, also when they arrive together: four
    are answered pin_invalid, the fifth locks the card, the rest find it locked."""
    ctx = _setup(committed, integrity_fen=0)
    bid = _limited_benefit(ctx)
    session = db.session()
    card = card_code(session, issue_card(session, ctx["household"]))
    session.commit()
    bodies = [{"code": card, "pin": "000000", "benefit_id": bid, "amount_fen": 100}] * 10
    results = _parallel(committed, ctx, bodies, "/pos/v1/benefit-uses")
    codes = Counter(b["error"]["code"] for _, b in results)
    assert codes == {"pin_invalid": 4, "pin_locked": 6}, results
    db.session.remove()
    assert db.session.scalar(select(func.count()).select_from(BenefitUse)) == 0
    [(status, answer)] = _parallel(
        committed, ctx, [{**bodies[0], "pin": PIN}], "/pos/v1/benefit-uses"
    )
    assert (status, answer["error"]["code"]) == (403, "pin_locked")
