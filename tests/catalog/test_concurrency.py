"""Real threads on real PostgreSQL: two admins adding the same SKU at once get one goods row
and a clear refusal, never a 500."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mall.catalog.models import Goods
from mall.catalog.services import create_goods
from mall.extensions import db
from mall.partners.models import Partner
from tests.factories import make_county, make_partner
from tests.threads import count, run_threads

pytestmark = pytest.mark.postgres_only

THREADS = 6


def test_one_goods_row_when_a_sku_is_added_six_times_at_once(committed: Flask) -> None:
    session = db.session()
    partner_id = make_partner(session, make_county(session).townships[0]).id
    session.commit()

    def add(s: Session) -> None:
        partner = s.get(Partner, partner_id)
        assert partner is not None
        create_goods(s, partner, sku="SOAP", name="肥皂", points_price=5, settlement_price_fen=100)

    outcomes = run_threads(THREADS, add)
    assert sorted(outcomes) == ["conflict"] * (THREADS - 1) + ["ok"]
    assert count(select(func.count()).select_from(Goods)) == 1
