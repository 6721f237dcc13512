"""Fixtures of the reservation tests: a shop with goods and a terminal, another shop with its
own terminal, a 3-star household with 1,000 points, and helpers to read the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from mall.auth.services import issue_farmer_tokens
from mall.catalog.models import Goods
from mall.catalog.services import create_goods
from mall.ledger.accounts import household_wallet, partner_payable
from mall.ledger.models import HOUSEHOLD_POINTS, POINTS
from mall.partners.models import Partner
from mall.partners.services import create_terminal
from mall.payments.services import ItemRequest
from mall.subjects.models import CreditSubject
from tests.factories import County, make_county, make_household, make_partner
from tests.pos_adapter.conftest import Till, fund_household, rate

PHONE = "13800138222"


@dataclass
class Shop:
    county: County
    partner: Partner
    other_partner: Partner
    household: CreditSubject
    towel: Goods  # 30 points, stock 10
    rice: Goods  # 100 points, four stars and above, stock 5
    soap: Goods  # 10 points, the last one
    till: Till | None = None
    other_till: Till | None = None

    def items(self, **qty: int) -> list[ItemRequest]:
        return [ItemRequest(sku.upper(), n) for sku, n in qty.items()]


def make_shop(session: Session) -> Shop:
    county = make_county(session, townships=2, villages_per_township=1)
    partner = make_partner(session, county.townships[0], name="龙场信用超市")
    other = make_partner(session, county.townships[0], name="新寨信用超市")
    household = make_household(session, county.villages[0], phone=PHONE)
    rate(household, 3)
    session.flush()
    fund_household(session, household, points=1_000)
    towel = create_goods(
        session,
        partner,
        sku="TOWEL",
        name="毛巾",
        points_price=30,
        settlement_price_fen=800,
        stock=10,
    )
    rice = create_goods(
        session,
        partner,
        sku="RICE",
        name="大米5斤",
        points_price=100,
        settlement_price_fen=2500,
        stock=5,
        min_level_rank=4,
    )
    soap = create_goods(
        session,
        partner,
        sku="SOAP",
        name="肥皂",
        points_price=10,
        settlement_price_fen=300,
        stock=1,
    )
    create_goods(
        session,
        other,
        sku="TOWEL",
        name="毛巾",
        points_price=30,
        settlement_price_fen=800,
        stock=10,
    )
    session.commit()
    return Shop(county, partner, other, household, towel, rice, soap)


@pytest.fixture
def shop(session: Session) -> Shop:
    return make_shop(session)


@pytest.fixture
def tills(app: Flask, client: FlaskClient, session: Session, shop: Shop) -> Shop:
    terminal, secret = create_terminal(session, shop.partner)
    other_terminal, other_secret = create_terminal(session, shop.other_partner)
    session.commit()
    shop.till = Till(client, terminal, secret)
    shop.other_till = Till(client, other_terminal, other_secret)
    return shop


def points_wallet(session: Session, subject: CreditSubject) -> dict[str, int]:
    account = household_wallet(session, subject, HOUSEHOLD_POINTS)
    session.refresh(account)
    return {
        "posted": account.posted_balance,
        "held": account.held_balance,
        "available": account.posted_balance - account.held_balance,
    }


def payable_points(session: Session, shop: Shop, partner: Partner | None = None) -> int:
    account = partner_payable(
        session, shop.household.township_id, (partner or shop.partner).id, POINTS
    )
    session.refresh(account)
    return account.posted_balance


def stock(session: Session, goods: Goods) -> int:
    session.refresh(goods)
    return goods.stock


def farmer_headers(session: Session, subject: CreditSubject) -> dict[str, Any]:
    token = issue_farmer_tokens(session, subject).access_token
    session.commit()
    return {"Authorization": f"Bearer {token}"}
