"""The farmer API additions and the signed, idempotent POS endpoints of reservations."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from mall.payments.models import Payment
from tests.factories import make_household
from tests.reservations.conftest import Shop, farmer_headers, points_wallet, stock

ME = "/api/v1/me/reservations"


def _reserve(client: FlaskClient, headers: dict[str, Any], shop: Shop, **qty: int) -> Any:
    body = {
        "partner_id": shop.partner.id,
        "items": [{"sku": k.upper(), "qty": v} for k, v in qty.items()],
    }
    return client.post(ME, json=body, headers=headers)


def test_farmer_reserves_lists_shows_and_cancels(
    client: FlaskClient, session: Session, shop: Shop
) -> None:
    h = farmer_headers(session, shop.household)
    resp = _reserve(client, h, shop, towel=2)
    assert resp.status_code == 201, resp.json
    r = resp.json
    assert r["status"] == "open"
    assert r["points_total"] == 60
    assert r["pickup_code_display"] == f"{r['pickup_code'][:4]} {r['pickup_code'][4:]}"
    assert r["partner"]["name"] == "龙场信用超市"
    assert resp.headers["Cache-Control"].startswith("no-store")
    listed = client.get(ME, headers=h).json["items"]
    assert [x["reservation_id"] for x in listed] == [r["reservation_id"]]
    one = client.get(f"{ME}/{r['reservation_id']}", headers=h)
    assert one.json["pickup_code"] == r["pickup_code"]
    png = client.get(f"{ME}/{r['reservation_id']}?format=png", headers=h)
    assert png.mimetype == "image/png"
    assert png.data.startswith(b"\x89PNG")
    svg = client.get(f"{ME}/{r['reservation_id']}?format=svg", headers=h)
    assert svg.mimetype == "image/svg+xml"
    cancelled = client.post(f"{ME}/{r['reservation_id']}/cancel", headers=h)
    assert cancelled.status_code == 200
    assert cancelled.json["status"] == "cancelled"
    assert cancelled.json["end_reason"] == "cancelled_by_household"
    assert cancelled.json["end_reason_label"]
    again = client.post(f"{ME}/{r['reservation_id']}/cancel", headers=h)
    assert again.status_code == 409
    assert again.json["error"]["code"] == "invalid_state"
    assert points_wallet(session, shop.household)["held"] == 0


def test_farmer_api_refusals(client: FlaskClient, session: Session, shop: Shop) -> None:
    h = farmer_headers(session, shop.household)
    assert client.get(ME).status_code == 401
    assert _reserve(client, {}, shop, towel=1).status_code == 401
    low = _reserve(client, h, shop, rice=1)
    assert (low.status_code, low.json["error"]["code"]) == (403, "level_too_low")
    gone = _reserve(client, h, shop, soap=2)
    assert (gone.status_code, gone.json["error"]["code"]) == (409, "out_of_stock")
    assert stock(session, shop.soap) == 1  # the refusal left nothing behind
    many = _reserve(client, h, shop, towel=6)
    assert many.json["error"]["code"] == "reservation_limit_reached"
    bad = client.post(ME, json={"partner_id": shop.partner.id, "items": []}, headers=h)
    assert (bad.status_code, bad.json["error"]["code"]) == (400, "validation_error")
    neg = client.post(
        ME, json={"partner_id": shop.partner.id, "items": [{"sku": "TOWEL", "qty": -1}]}, headers=h
    )
    assert neg.status_code == 400
    nowhere = client.post(
        ME, json={"partner_id": 999999, "items": [{"sku": "X", "qty": 1}]}, headers=h
    )
    assert nowhere.status_code == 404
    # another household's reservation does not exist for this one
    r = _reserve(client, h, shop, towel=1).json
    neighbour = make_household(session, shop.county.villages[0], name="王小明")
    h2 = farmer_headers(session, neighbour)
    assert client.get(f"{ME}/{r['reservation_id']}", headers=h2).status_code == 404
    assert client.post(f"{ME}/{r['reservation_id']}/cancel", headers=h2).status_code == 404
    assert client.get(ME, headers=h2).json["items"] == []


def test_farmer_idempotency_key(client: FlaskClient, session: Session, shop: Shop) -> None:
    h = {**farmer_headers(session, shop.household), "Idempotency-Key": "retry-1"}
    first = _reserve(client, h, shop, towel=1)
    second = _reserve(client, h, shop, towel=1)
    assert first.json["reservation_id"] == second.json["reservation_id"]
    assert points_wallet(session, shop.household)["held"] == 30
    assert _reserve(client, h, shop, towel=2).json["error"]["code"] == "idempotency_conflict"


def test_pos_lookup_and_pickup_signed_and_idempotent(
    client: FlaskClient, session: Session, tills: Shop
) -> None:
    shop = tills
    assert shop.till is not None
    assert shop.other_till is not None
    h = farmer_headers(session, shop.household)
    r = _reserve(client, h, shop, towel=3, soap=1).json
    path = f"/pos/v1/reservations/{r['pickup_code']}"
    # unsigned: refused
    assert client.get(path).status_code == 401
    seen = shop.till.get(path)
    assert seen.status_code == 200, seen.json
    assert seen.json["holder"]["display_name"] == shop.household.name_masked
    assert [i["qty"] for i in seen.json["items"]] == [3, 1]
    # another partner's till: the code does not exist there
    other = shop.other_till.get(path)
    assert (other.status_code, other.json["error"]["code"]) == (404, "not_found")
    assert shop.other_till.post(path + "/pickup", {}).status_code == 404
    # a key is required
    assert shop.till.post(path + "/pickup", {}, idempotent=False).json["error"]["code"] == (
        "idempotency_key_required"
    )
    body = {"items": [{"sku": "TOWEL", "qty": 2}, {"sku": "SOAP", "qty": 0}]}
    done = shop.till.post(path + "/pickup", body, key="pick-1")
    assert done.status_code == 200, done.json
    assert done.json["status"] == "picked_up"
    assert done.json["picked_points"] == 60
    assert done.json["payment"]["status"] == "completed"
    assert done.json["payment"]["points_cost"] == 60
    assert done.json["payment"]["balances_after"]["points"] == 940
    replay = shop.till.post(path + "/pickup", body, key="pick-1")
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json == done.json
    assert shop.till.post(path + "/pickup", {}, key="pick-1").json["error"]["code"] == (
        "idempotency_conflict"
    )
    twice = shop.till.post(path + "/pickup", body, key="pick-2")
    assert (twice.status_code, twice.json["error"]["code"]) == (409, "invalid_state")
    assert session.query(Payment).filter_by(external_ref=r["reservation_id"]).count() == 1
    # the payment is an ordinary one for the till
    payment_id = done.json["payment"]["payment_id"]
    assert shop.till.get(f"/pos/v1/payments/{payment_id}").json["items"][0]["qty"] == 2
    # and the household cannot cancel it any more
    cancel = client.post(f"{ME}/{r['reservation_id']}/cancel", headers=h)
    assert cancel.json["error"]["code"] == "invalid_state"


def test_pos_pickup_refusals(client: FlaskClient, session: Session, tills: Shop) -> None:
    shop = tills
    assert shop.till is not None
    h = farmer_headers(session, shop.household)
    r = _reserve(client, h, shop, towel=1).json
    path = f"/pos/v1/reservations/{r['pickup_code']}/pickup"
    none = shop.till.post(path, {"items": [{"sku": "TOWEL", "qty": 0}]})
    assert (none.status_code, none.json["error"]["code"]) == (400, "validation_error")
    more = shop.till.post(path, {"items": [{"sku": "TOWEL", "qty": 2}]})
    assert more.status_code == 400
    alien = shop.till.post(path, {"items": [{"sku": "SOAP", "qty": 1}]})
    assert alien.status_code == 400
    assert shop.till.get("/pos/v1/reservations/not-a-code").status_code == 404
    assert shop.till.post(path, {}).status_code == 200  # all of it


def test_openapi_lists_the_additions(client: FlaskClient, shop: Shop) -> None:
    paths = client.get("/openapi.json").json["paths"]
    for p in (
        "/api/v1/me/reservations",
        "/api/v1/me/reservations/{reservation_id}/cancel",
        "/pos/v1/reservations/{pickup_code}",
        "/pos/v1/reservations/{pickup_code}/pickup",
    ):
        assert p in paths, p
