"""Closing a day against voids of that day's payments, on PostgreSQL with real commits.

The closer locks the partner row FOR UPDATE and each void asks "is the day closed?" under
FOR SHARE (mall.settlement.closing), so every void either commits before the day's figures
are frozen, and is counted in them, or sees the closed statement and is refused
(`invalid_state`, settled). Whatever the interleaving, the frozen statement must equal the
day recomputed afterwards: nothing may change a closed day.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from mall.clock import business_date, utcnow
from mall.codes.services import sign_dynamic_code
from mall.daybook.models import SettlementStatement
from mall.errors import Conflict
from mall.extensions import db
from mall.partners.models import Partner
from mall.payments.models import Payment
from mall.payments.services import PayRequest, create_payment, void_payment
from mall.settlement.closing import close_statement
from mall.settlement.figures import compute_day
from mall.users.models import User
from tests.factories import make_county, make_household, make_partner, make_user
from tests.pos_adapter.conftest import fund_household, rate

pytestmark = pytest.mark.postgres_only

VOIDS = 12


def _sales(app: Flask) -> dict[str, Any]:
    db.session.remove()
    db.session.configure(bind=None, join_transaction_mode="conditional_savepoint")
    session = db.session()
    county = make_county(session, townships=1, villages_per_township=1)
    partner = make_partner(session, county.townships[0])
    admin = make_user(session, "township_admin", county.townships[0])
    households = [make_household(session, county.villages[0]) for _ in range(VOIDS + 4)]
    for h in households:
        rate(h, 5)
    session.flush()
    for h in households:
        fund_household(session, h, integrity_fen=50_000)
    payments = [
        create_payment(
            session,
            partner,
            PayRequest(code=sign_dynamic_code(session, h).code, amount_fen=10_000),
            terminal_code="test",
        ).payment
        for h in households
    ]
    session.commit()
    return {
        "partner_id": partner.id,
        "admin_id": admin.id,
        "payment_ids": [p.id for p in payments],
        "day": payments[0].business_date,
    }


def test_close_against_voids_counts_each_void_exactly_once(committed: Flask) -> None:
    ctx = _sales(committed)
    day = ctx["day"]
    tomorrow = utcnow() + timedelta(days=1)
    assert business_date(tomorrow) > day

    def close() -> str:
        with committed.app_context():
            session = db.session()
            try:
                partner = session.get(Partner, ctx["partner_id"])
                user = session.get(User, ctx["admin_id"])
                assert partner is not None
                assert user is not None
                close_statement(session, user, partner, day, now=tomorrow)
                session.commit()
                return "closed"
            finally:
                db.session.remove()

    def void(payment_id: int) -> str:
        with committed.app_context():
            session = db.session()
            try:
                payment = session.get(Payment, payment_id)
                assert payment is not None
                void_payment(session, payment, actor="test")
                session.commit()
                return "voided"
            except Conflict as exc:
                session.rollback()
                return f"refused:{exc.details.get('reason')}"
            finally:
                db.session.remove()

    jobs: list[Any] = [close] + [(lambda pid=pid: void(pid)) for pid in ctx["payment_ids"][:VOIDS]]
    # The close in the middle of the voids, so some land before it and some after.
    jobs.insert(VOIDS // 2, jobs.pop(0))
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        outcomes = Counter(pool.map(lambda job: job(), jobs))
    assert outcomes["closed"] == 1, outcomes
    assert outcomes["voided"] + outcomes["refused:settled"] == VOIDS, outcomes

    session = db.session()
    statement = session.scalars(
        select(SettlementStatement).where(SettlementStatement.partner_id == ctx["partner_id"])
    ).one()
    assert statement.status == "closed"
    voided = session.scalars(
        select(Payment).where(Payment.id.in_(ctx["payment_ids"]), Payment.status == "voided")
    ).all()
    assert len(voided) == outcomes["voided"]
    # The frozen figures are the day as it stands now: no void slipped in after the close.
    now_figures = compute_day(session, ctx["partner_id"], day).totals
    frozen = {key: getattr(statement, key) for key in now_figures}
    assert frozen == now_figures
    assert statement.voided_count == outcomes["voided"]
