"""Farmer API v1: every endpoint, own data only, error codes of the contract."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from mall.auth.services import issue_farmer_tokens, issue_staff_token
from mall.catalog.services import create_goods
from mall.codes.services import verify_code
from mall.subjects.models import CreditSubject
from tests.auth.client import FreshRequestClient, fresh_client
from tests.factories import PIN, make_user
from tests.farmer.conftest import Farm


@pytest.fixture
def client(app: Flask, session: Session) -> FreshRequestClient:
    return fresh_client(app)


def auth(session: Session, subject: CreditSubject) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_farmer_tokens(session, subject).access_token}"}


def body(resp: TestResponse) -> dict[str, Any]:
    data: dict[str, Any] = resp.json or {}
    return data


def code_of(resp: TestResponse) -> str:
    return str(body(resp)["error"]["code"])


ENDPOINTS = [
    ("get", "/api/v1/me"),
    ("get", "/api/v1/me/code"),
    ("get", "/api/v1/me/transactions"),
    ("get", "/api/v1/me/benefits"),
    ("get", "/api/v1/catalog"),
    ("get", "/api/v1/partners"),
    ("put", "/api/v1/me/pin"),
    ("post", "/api/v1/me/card/report-lost"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_needs_a_farmer_token(
    client: FreshRequestClient, session: Session, farm: Farm, method: str, path: str
) -> None:
    kwargs: dict[str, Any] = {"json": {"old_pin": PIN, "new_pin": "246813"}}
    assert code_of(getattr(client, method)(path, **kwargs)) == "unauthorized"
    bad = {"Authorization": "Bearer not-a-token"}
    assert code_of(getattr(client, method)(path, headers=bad, **kwargs)) == "invalid_token"
    staff = make_user(session, "county_admin", farm.county.county)
    staff_token = {"Authorization": f"Bearer {issue_staff_token(staff)[0]}"}
    resp = getattr(client, method)(path, headers=staff_token, **kwargs)
    assert resp.status_code == 401
    assert code_of(resp) == "invalid_token"


def test_me(client: FreshRequestClient, session: Session, farm: Farm) -> None:
    resp = client.get("/api/v1/me", headers=auth(session, farm.household))
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    me = body(resp)
    assert me["ref"] == farm.household.ref
    assert me["name"] == "张*华"
    assert me["village"] == farm.county.villages[0].name
    assert me["township"] == farm.county.townships[0].name
    assert me["level"] == {"code": "3", "label": "三星级", "rank": 3}
    assert me["wallet"] == {"integrity_fen": 120000 - 606, "points": 50}
    assert me["members"] == [{"name": "李*英", "relation": "配偶"}]
    assert me["card"]["status"] == "active"
    assert "phone" not in str(me)
    en = client.get("/api/v1/me?lang=en", headers=auth(session, farm.household))
    assert body(en)["level"]["label"] == "3 stars"


def test_a_household_sees_only_its_own_data(
    client: FreshRequestClient, session: Session, farm: Farm
) -> None:
    h = auth(session, farm.neighbour)
    me = body(client.get("/api/v1/me", headers=h))
    assert me["ref"] == farm.neighbour.ref
    assert me["wallet"] == {"integrity_fen": 0, "points": 0}
    assert body(client.get("/api/v1/me/transactions", headers=h))["items"] == []
    assert body(client.get("/api/v1/me/benefits", headers=h))["groups"] == []  # unrated
    code = body(client.get("/api/v1/me/code", headers=h))["code"]
    assert verify_code(session, code).subject.id == farm.neighbour.id


def test_code_json_png_svg(client: FreshRequestClient, session: Session, farm: Farm) -> None:
    h = auth(session, farm.household)
    resp = client.get("/api/v1/me/code", headers=h)
    c = body(resp)
    assert resp.headers["Cache-Control"] == "no-store"
    assert c["refresh_after"] < c["expires_at"]
    verified = verify_code(session, c["code"])
    assert verified.kind == "dynamic"
    assert verified.subject.id == farm.household.id
    png = client.get("/api/v1/me/code?format=png", headers=h)
    assert png.status_code == 200
    assert png.mimetype == "image/png"
    assert png.data.startswith(b"\x89PNG")
    assert png.headers["Cache-Control"] == "no-store"
    assert "X-Code-Expires-At" in png.headers
    svg = client.get("/api/v1/me/code?format=svg", headers=h)
    assert svg.mimetype == "image/svg+xml"
    assert b"<svg" in svg.data
    assert code_of(client.get("/api/v1/me/code?format=gif", headers=h)) == "validation_error"


def test_frozen_household_gets_no_code(
    client: FreshRequestClient, session: Session, farm: Farm
) -> None:
    h = auth(session, farm.household)
    farm.household.status = "frozen"
    session.flush()
    resp = client.get("/api/v1/me/code", headers=h)
    assert resp.status_code == 403
    assert code_of(resp) == "holder_suspended"


def test_transactions_newest_first_with_partner_and_pages(
    client: FreshRequestClient, session: Session, farm: Farm
) -> None:
    h = auth(session, farm.household)
    first = body(client.get("/api/v1/me/transactions?limit=2", headers=h))
    kinds = [(t["kind"], t["amount"], t["balance_after"]) for t in first["items"]]
    assert kinds == [("integrity_spent", -606, 119394), ("points_earned", 50, 50)]
    assert first["items"][0]["partner"]["name"] == "龙场信用超市"
    assert first["items"][0]["kind_label"] == "诚信金抵扣"
    assert first["items"][1]["reason"] == "志愿服务"
    assert first["next_cursor"]
    rest = body(
        client.get(f"/api/v1/me/transactions?limit=2&cursor={first['next_cursor']}", headers=h)
    )
    assert [t["kind"] for t in rest["items"]] == ["integrity_granted"]
    assert rest["next_cursor"] is None
    bad = client.get("/api/v1/me/transactions?cursor=zzz", headers=h)
    assert code_of(bad) == "validation_error"


def test_benefits_grouped_with_places(
    client: FreshRequestClient, session: Session, farm: Farm
) -> None:
    data = body(client.get("/api/v1/me/benefits", headers=auth(session, farm.household)))
    assert data["level"]["rank"] == 3
    assert [g["category"] for g in data["groups"]] == ["hospital"]  # the 4-star line is hidden
    line = data["groups"][0]["benefits"][0]
    assert line["title"] == "住院免押金"
    assert line["min_level_label"] == "三星级"
    assert line["limits"]["one_at_a_time"] is True
    assert [p["name"] for p in line["partners"]] == ["龙场卫生院"]
    assert line["partners"][0]["township"] == farm.county.townships[0].name


def test_partners_and_catalog(client: FreshRequestClient, session: Session, farm: Farm) -> None:
    h = auth(session, farm.household)
    names = [p["name"] for p in body(client.get("/api/v1/partners", headers=h))["items"]]
    assert set(names) == {"龙场信用超市", "龙场卫生院"}
    hospitals = body(client.get("/api/v1/partners?category=hospital", headers=h))["items"]
    assert [p["name"] for p in hospitals] == ["龙场卫生院"]
    assert code_of(client.get("/api/v1/partners?category=zoo", headers=h)) == "validation_error"
    create_goods(
        session,
        farm.shop,
        sku="TOWEL",
        name="毛巾",
        points_price=20,
        settlement_price_fen=500,
        stock=3,
        min_level_rank=4,
    )
    items = body(client.get(f"/api/v1/catalog?partner_id={farm.shop.id}", headers=h))["items"]
    assert [(i["sku"], i["points_price"], i["stock"], i["min_level"]) for i in items] == [
        ("TOWEL", 20, 3, 4)
    ]
    assert items[0]["eligible"] is False
    assert items[0]["partner"]["name"] == "龙场信用超市"
    assert body(client.get("/api/v1/catalog?partner_id=999999", headers=h))["items"] == []


def test_change_pin(client: FreshRequestClient, session: Session, farm: Farm) -> None:
    h = auth(session, farm.household)
    weak = client.put("/api/v1/me/pin", json={"old_pin": PIN, "new_pin": "123456"}, headers=h)
    assert weak.status_code == 400
    assert code_of(weak) == "pin_too_weak"
    wrong = client.put("/api/v1/me/pin", json={"old_pin": "000001", "new_pin": "246813"}, headers=h)
    assert wrong.status_code == 403
    assert code_of(wrong) == "pin_invalid"
    ok = client.put("/api/v1/me/pin", json={"old_pin": PIN, "new_pin": "246813"}, headers=h)
    assert ok.status_code == 204
    login = client.post("/api/v1/auth/farmer/login", json={"phone": "13800138111", "pin": "246813"})
    assert login.status_code == 200


def test_pin_lockout(client: FreshRequestClient, session: Session, farm: Farm) -> None:
    h = auth(session, farm.household)
    codes = [
        code_of(
            client.put("/api/v1/me/pin", json={"old_pin": "000001", "new_pin": "246813"}, headers=h)
        )
        for _ in range(5)
    ]
    assert codes == ["pin_invalid"] * 4 + ["pin_locked"]
    locked = client.put("/api/v1/me/pin", json={"old_pin": PIN, "new_pin": "246813"}, headers=h)
    assert code_of(locked) == "pin_locked"


def test_report_card_lost(client: FreshRequestClient, session: Session, farm: Farm) -> None:
    h = auth(session, farm.household)
    resp = client.post("/api/v1/me/card/report-lost", headers=h)
    assert resp.status_code == 200
    assert body(resp)["status"] == "revoked"
    again = client.post("/api/v1/me/card/report-lost", headers=h)
    assert again.status_code == 404
    assert body(client.get("/api/v1/me", headers=h))["card"] is None
