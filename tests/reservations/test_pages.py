"""The farmer's reservation pages (/m/reservations) and the cashier's pickup page."""

from __future__ import annotations

import re

from flask import Flask
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from mall.reservations.models import Reservation
from mall.reservations.services import reserve
from tests.admin.pages_helpers import login_as
from tests.auth.client import FreshRequestClient, fresh_client
from tests.factories import PASSWORD, PIN, make_user
from tests.reservations.conftest import PHONE, Shop, points_wallet, stock


def _field(resp: TestResponse, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', resp.get_data(as_text=True))
    assert found, resp.get_data(as_text=True)[:800]
    return found.group(1)


def _farmer(app: Flask) -> FreshRequestClient:
    client = fresh_client(app)
    token = _field(client.get("/m/login"), "csrf_token")
    resp = client.post("/m/login", data={"phone": PHONE, "pin": PIN, "csrf_token": token})
    assert resp.status_code == 302
    return client


def _cashier(app: Flask, session: Session, shop: Shop) -> FreshRequestClient:
    township = shop.county.townships[0]
    user = make_user(session, "cashier", township, partner=shop.partner)
    session.commit()
    client = fresh_client(app)
    token = _field(client.get("/cashier/login"), "csrf_token")
    resp = client.post(
        "/cashier/login",
        data={"username": user.username, "password": PASSWORD, "csrf_token": token},
    )
    assert resp.status_code == 302
    return client


def _reserve_on_page(client: FreshRequestClient, shop: Shop, towels: int) -> TestResponse:
    page = client.get(f"/m/reservations/new?partner_id={shop.partner.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "毛巾" in html
    assert 'id="qty-RICE" value="" disabled' in html  # four stars and above only
    return client.post(
        "/m/reservations/new",
        data={
            "csrf_token": _field(page, "csrf_token"),
            "form_key": _field(page, "form_key"),
            "partner_id": str(shop.partner.id),
            "sku": ["SOAP", "TOWEL"],
            "qty": ["", str(towels)],
        },
    )


def test_pages_need_a_login(app: Flask, session: Session, shop: Shop) -> None:
    client = fresh_client(app)
    for path in ("/m/reservations/", "/m/reservations/new"):
        resp = client.get(path)
        assert resp.status_code == 302
        assert resp.headers["Location"].startswith("/m/login")
    assert client.post("/m/reservations/new", data={}).status_code == 400  # no CSRF token


def test_reserve_see_the_code_and_cancel(app: Flask, session: Session, shop: Shop) -> None:
    client = _farmer(app)
    assert "/m/reservations/" in client.get("/m/").get_data(as_text=True)
    assert client.get("/m/reservations/new").status_code == 200  # the shop list
    resp = _reserve_on_page(client, shop, 2)
    assert resp.status_code == 303
    detail = client.get(resp.headers["Location"])
    html = detail.get_data(as_text=True)
    reservation = session.query(Reservation).one()
    code = reservation.pickup_code
    assert f"{code[:4]} {code[4:]}" in html
    assert 'id="pickup-qr" src="data:image/png;base64,' in html
    assert detail.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert points_wallet(session, shop.household)["held"] == 60
    # a second submission of the same form is the same reservation
    listing = client.get("/m/reservations/")
    assert listing.get_data(as_text=True).count("rsv-open") == 1
    cancel = client.post(
        f"/m/reservations/{reservation.public_id}/cancel",
        data={"csrf_token": _field(detail, "csrf_token"), "confirm": "yes"},
    )
    assert cancel.status_code == 303
    after = client.get(cancel.headers["Location"]).get_data(as_text=True)
    assert "您已取消预约" in after
    assert stock(session, shop.towel) == 10
    assert points_wallet(session, shop.household)["held"] == 0


def test_refusals_are_shown_on_the_form(app: Flask, session: Session, shop: Shop) -> None:
    client = _farmer(app)
    resp = _reserve_on_page(client, shop, 0)
    assert resp.status_code == 400
    assert "请至少选择一件商品" in resp.get_data(as_text=True)
    resp = _reserve_on_page(client, shop, 6)
    assert resp.status_code == 409
    assert "每种商品每次最多预约5件" in resp.get_data(as_text=True)
    english = client.get("/m/reservations/?lang=en").get_data(as_text=True)
    assert "My reservations" in english


def test_cashier_picks_up_part(app: Flask, session: Session, shop: Shop) -> None:
    farmer = _farmer(app)
    _reserve_on_page(farmer, shop, 3)
    reservation = session.query(Reservation).one()
    code = reservation.pickup_code
    cashier = _cashier(app, session, shop)
    assert "/cashier/pickup" in cashier.get("/cashier/").get_data(as_text=True)
    empty = cashier.get("/cashier/pickup")
    assert empty.status_code == 200
    wrong = cashier.get("/cashier/pickup?code=00000000")
    assert wrong.status_code == 404
    assert "没有找到" in wrong.get_data(as_text=True)
    page = cashier.get(f"/cashier/pickup?code={code[:4]}+{code[4:]}")
    assert page.status_code == 200
    assert shop.household.name_masked in page.get_data(as_text=True)
    form = {
        "csrf_token": _field(page, "csrf_token"),
        "idempotency_key": _field(page, "idempotency_key"),
        "item_sku": ["TOWEL"],
        "item_qty": ["2"],
    }
    done = cashier.post(f"/cashier/pickup/{code}", data=form)
    assert done.status_code == 303, done.get_data(as_text=True)[:500]
    assert "/cashier/payments/pay_" in done.headers["Location"]
    receipt = cashier.get(done.headers["Location"]).get_data(as_text=True)
    assert "已取货" in receipt
    # the same form again (a double click): the same answer, nothing more
    again = cashier.post(f"/cashier/pickup/{code}", data=form)
    assert again.headers["Location"] == done.headers["Location"]
    assert points_wallet(session, shop.household) == {"posted": 940, "held": 0, "available": 940}
    assert stock(session, shop.towel) == 8
    # a new form: refused, picked up already
    page = cashier.get(f"/cashier/pickup?code={code}")
    assert "rsv-closed" in page.get_data(as_text=True)
    form["idempotency_key"] = "another-key-123"
    refused = cashier.post(f"/cashier/pickup/{code}", data=form)
    assert refused.status_code == 409
    assert "不能再取货" in refused.get_data(as_text=True)
    # the household sees it picked up
    assert "已取货" in farmer.get(f"/m/reservations/{reservation.public_id}").get_data(as_text=True)


def test_the_admin_goods_list_shows_what_is_reserved(
    app: Flask, session: Session, shop: Shop
) -> None:
    reserve(session, shop.household, shop.partner.id, shop.items(towel=3, soap=1))
    admin = make_user(session, "township_admin", shop.county.townships[0])
    session.commit()
    client = fresh_client(app)
    login_as(client, admin)
    html = client.get(f"/admin/partners/{shop.partner.id}").get_data(as_text=True)
    rows = {
        sku: re.findall(r'<td class="num">([^<]*)</td>', row)
        for sku, row in re.findall(r"<td>(TOWEL|SOAP|RICE)</td>(.*?)</tr>", html, re.S)
    }
    # points, settlement price, stock on sale, reserved for pickup
    assert rows["TOWEL"][2:] == ["7", "3"]
    assert rows["SOAP"][2:] == ["0", "1"]
    assert rows["RICE"][2:] == ["5", "0"]
