"""Catalogue goods: stock never below zero; the staff API is scoped and audited."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from mall.catalog.services import create_goods, restore_stock, take_stock
from mall.errors import Conflict
from tests.factories import make_county, make_partner, make_user
from tests.helpers import staff_headers


def test_stock_never_below_zero(session: Session) -> None:
    county = make_county(session)
    partner = make_partner(session, county.townships[0])
    goods = create_goods(
        session, partner, sku="S", name="肥皂", points_price=5, settlement_price_fen=100, stock=2
    )
    take_stock(session, goods.id, 2)
    with pytest.raises(Conflict) as exc:
        take_stock(session, goods.id, 1)
    assert exc.value.code == "out_of_stock"
    restore_stock(session, goods.id, 1)
    assert goods.stock == 1


def test_staff_api(client: FlaskClient, session: Session) -> None:
    county = make_county(session)
    partner = make_partner(session, county.townships[0])
    foreign = make_partner(session, county.townships[1])
    admin = make_user(session, "township_admin", county.townships[0])
    session.commit()
    h = staff_headers(admin)
    body = {
        "sku": "RICE-5KG",
        "name": "大米5公斤",
        "points_price": 300,
        "settlement_price_fen": 2500,
        "stock": 20,
        "min_level_rank": 3,
    }
    r = client.post(f"/api/v1/admin/partners/{partner.id}/goods", json=body, headers=h)
    assert r.status_code == 201, r.json
    assert (
        client.post(f"/api/v1/admin/partners/{partner.id}/goods", json=body, headers=h).status_code
        == 409
    )
    assert (
        client.post(f"/api/v1/admin/partners/{foreign.id}/goods", json=body, headers=h).status_code
        == 404
    )
    r = client.patch(f"/api/v1/admin/goods/{r.json['id']}", json={"stock": 5}, headers=h)
    assert r.json["stock"] == 5
    bad = client.patch(f"/api/v1/admin/goods/{r.json['id']}", json={"stock": -1}, headers=h)
    assert bad.status_code == 400
    items = client.get(f"/api/v1/admin/partners/{partner.id}/goods", headers=h).json["items"]
    assert [i["sku"] for i in items] == ["RICE-5KG"]
