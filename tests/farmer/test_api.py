"""Farmer API v1: every endpoint, own data only, error codes of the contract."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from mall.auth.services import issue_farmer_tokens, issue_staff_token
from mall.catalog.services import create_goods
from mall.codes.services import verify_code
from mall.ratings.models import RatingAppeal
from mall.subjects.models import CreditSubject
from tests.auth.client import FreshRequestClient, fresh_client
from tests.factories import PIN, make_user
from tests.farmer.conftest import (
    RATED_ON,
    Calendar,
    Farm,
    effective_rating,
    rating_on_notice,
)


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
    ("get", "/api/v1/me/ratings"),
    ("post", "/api/v1/me/ratings/1/appeals"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_needs_a_farmer_token(
    client: FreshRequestClient, session: Session, farm: Farm, method: str, path: str
) -> None:
    kwargs: dict[str, Any] = {"json": {"old_pin": PIN, "new_pin": "246813", "grounds": "分数算错"}}
    assert code_of(getattr(client, method)(path, **kwargs)) == "unauthorized"
    bad = {"Authorization": "Bearer not-a-token"}
    assert code_of(getattr(client, method)(path, headers=bad, **kwargs)) == "invalid_token"
    staff = make_user(session, "county_admin", farm.county.county)
    staff_token = {"Authorization": f"Bearer {issue_staff_token(staff)[0]}"}
    resp = getattr(client, method)(path, headers=staff_token, **kwargs)
    assert resp.status_code == 401
    assert code_of(resp) == "invalid_token"


# Bodies that fail validation, sent to the writes that take one: the token is checked first.
BAD_BODIES: list[dict[str, Any]] = [
    {"json": {}},
    {"json": {"old_pin": 1, "new_pin": None, "grounds": 42}},
    {"json": ["not", "an", "object"]},
    {"data": "{not json", "content_type": "application/json"},
]
WRITES_WITH_A_BODY = [("put", "/api/v1/me/pin"), ("post", "/api/v1/me/ratings/{id}/appeals")]


# Reads whose query string fails validation: the token is checked first there too.
BAD_QUERIES = [
    "/api/v1/me/code?format=gif",
    "/api/v1/me/transactions?limit=0",
    "/api/v1/catalog?partner_id=-1",
    "/api/v1/partners?category=nope",
]


@pytest.mark.parametrize("url", BAD_QUERIES)
def test_the_token_is_checked_before_the_query_string(
    client: FreshRequestClient, session: Session, farm: Farm, url: str
) -> None:
    anonymous = client.get(url)
    assert (anonymous.status_code, code_of(anonymous)) == (401, "unauthorized")
    forged = client.get(url, headers={"Authorization": "Bearer not-a-token"})
    assert (forged.status_code, code_of(forged)) == (401, "invalid_token")
    signed_in = client.get(url, headers=auth(session, farm.household))
    assert (signed_in.status_code, code_of(signed_in)) == (400, "validation_error")


@pytest.mark.parametrize("bad_body", BAD_BODIES)
@pytest.mark.parametrize(("method", "path"), WRITES_WITH_A_BODY)
def test_the_token_is_checked_before_the_body(
    client: FreshRequestClient,
    session: Session,
    farm: Farm,
    method: str,
    path: str,
    bad_body: dict[str, Any],
) -> None:
    rating = rating_on_notice(session, farm.household)
    url = path.format(id=rating.id)
    send = getattr(client, method)
    anonymous = send(url, **bad_body)
    assert (anonymous.status_code, code_of(anonymous)) == (401, "unauthorized")
    forged = send(url, headers={"Authorization": "Bearer not-a-token"}, **bad_body)
    assert (forged.status_code, code_of(forged)) == (401, "invalid_token")
    signed_in = send(url, headers=auth(session, farm.household), **bad_body)
    assert (signed_in.status_code, code_of(signed_in)) == (400, "validation_error")


def test_the_request_bodies_stay_documented(client: FreshRequestClient) -> None:
    paths = (client.get("/openapi.json").json or {})["paths"]
    for path, method, schema in (
        ("/api/v1/me/pin", "put", "FarmerPinChange"),
        ("/api/v1/me/ratings/{rating_id}/appeals", "post", "FarmerAppealIn"),
    ):
        operation = paths[path][method]
        assert operation["requestBody"]["required"] is True
        assert operation["requestBody"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{schema}"
        }
        assert operation["security"] == [{"bearerAuth": []}]
        assert "400" in operation["responses"]


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
    assert ok.status_code == 200
    assert ok.headers["Cache-Control"] == "no-store"
    assert set(body(ok)) == {"access_token", "refresh_token", "expires_in"}
    # every login ended, this one too; the answer is this device's new login
    assert client.get("/api/v1/me", headers=h).status_code == 401
    renewed = {"Authorization": f"Bearer {body(ok)['access_token']}"}
    assert client.get("/api/v1/me", headers=renewed).status_code == 200
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
    # every login ended, this one too; the answer carries this device's new login
    assert client.get("/api/v1/me", headers=h).status_code == 401
    h = {"Authorization": f"Bearer {body(resp)['access_token']}"}
    again = client.post("/api/v1/me/card/report-lost", headers=h)
    assert again.status_code == 404
    assert body(client.get("/api/v1/me", headers=h))["card"] is None


# ---------------------------------------------------------------- ratings and appeals (additions)


def appeal(
    client: FreshRequestClient, headers: dict[str, str], rating_id: int, grounds: Any = "分数算错了"
) -> TestResponse:
    return client.post(
        f"/api/v1/me/ratings/{rating_id}/appeals", json={"grounds": grounds}, headers=headers
    )


def test_my_ratings_shows_the_notice_and_that_it_may_be_appealed(
    client: FreshRequestClient, session: Session, farm: Farm, calendar: Calendar
) -> None:
    rating = rating_on_notice(session, farm.household)
    rating_on_notice(session, farm.neighbour)
    calendar.set(RATED_ON + timedelta(days=2))
    resp = client.get("/api/v1/me/ratings", headers=auth(session, farm.household))
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    [item] = body(resp)["items"]  # the neighbour's is not here
    assert item == {
        "id": rating.id,
        "level": {"code": "3", "label": "三星级", "rank": 3},
        "status": "notice",
        "status_label": "公示中",
        "origin": "review",
        "notice_from": "2026-03-02",
        "notice_until": "2026-03-08",
        "appeal_until": "2026-03-18",
        "effective_from": None,
        "appealable": True,
        "appeals": [],
    }


def test_my_ratings_hides_drafts_newest_first_at_most_five(
    client: FreshRequestClient, session: Session, farm: Farm, calendar: Calendar
) -> None:
    from mall.ratings import services as ratings
    from tests.ratings.conftest import score_for

    h = auth(session, farm.household)
    draft = ratings.draft_rating(session, None, farm.household, score_for(85), today=RATED_ON)
    assert body(client.get("/api/v1/me/ratings", headers=h))["items"] == []
    assert appeal(client, h, draft.id).status_code == 404  # not public yet
    ratings.post_notice(session, None, draft, today=RATED_ON)
    ids = [draft.id]
    for year in range(2027, 2033):
        ratings.activate_due(session, today=RATED_ON.replace(year=year - 1) + timedelta(days=7))
        ids.append(rating_on_notice(session, farm.household, RATED_ON.replace(year=year)).id)
    items = body(client.get("/api/v1/me/ratings", headers=h))["items"]
    assert [i["id"] for i in items] == ids[::-1][:5]
    assert [i["status"] for i in items] == ["notice", "effective"] + ["superseded"] * 3


def test_appeal_during_notice(
    client: FreshRequestClient, session: Session, farm: Farm, calendar: Calendar
) -> None:
    rating = rating_on_notice(session, farm.household)
    calendar.set(RATED_ON + timedelta(days=3))
    h = auth(session, farm.household)
    resp = appeal(client, h, rating.id, "  家里有人参军,没有加分  ")
    assert resp.status_code == 201
    assert resp.headers["Cache-Control"] == "no-store"
    filed = body(resp)
    assert filed == {
        "id": filed["id"],
        "status": "open",
        "status_label": "等待村里答复",
        "grounds": "家里有人参军,没有加分",
        "filed_on": "2026-03-05",
        "answer_due": "2026-03-10",
        "answer": None,
        "answered_at": None,
    }
    session.refresh(rating)
    assert rating.status == "appealed"
    stored = session.get(RatingAppeal, filed["id"])
    assert stored is not None
    assert stored.filed_by == f"household:{farm.household.ref}"
    [item] = body(client.get("/api/v1/me/ratings", headers=h))["items"]
    assert (item["status"], item["status_label"], item["appealable"]) == (
        "appealed",
        "复议中",
        False,
    )
    assert [a["id"] for a in item["appeals"]] == [filed["id"]]
    again = appeal(client, h, rating.id)
    assert again.status_code == 409
    assert code_of(again) == "invalid_state"


def test_appeal_within_ten_days_after_the_notice_on_an_effective_rating(
    client: FreshRequestClient, session: Session, farm: Farm, calendar: Calendar
) -> None:
    rating = effective_rating(session, farm.household)
    calendar.set(rating.appeal_until)  # type: ignore[arg-type]  # the last day
    h = auth(session, farm.household)
    [item] = body(client.get("/api/v1/me/ratings", headers=h))["items"]
    assert (item["status"], item["effective_from"], item["appealable"]) == (
        "effective",
        "2026-03-09",
        True,
    )
    resp = appeal(client, h, rating.id)
    assert resp.status_code == 201
    session.refresh(rating)
    assert rating.status == "effective"  # it stays in force while the village answers
    [item] = body(client.get("/api/v1/me/ratings", headers=h))["items"]
    assert item["appealable"] is False  # an appeal is open
    assert item["appeals"][0]["answer_due"] == "2026-03-23"
    second = appeal(client, h, rating.id)
    assert second.status_code == 409
    assert code_of(second) == "invalid_state"


def test_appeal_after_the_window(
    client: FreshRequestClient, session: Session, farm: Farm, calendar: Calendar
) -> None:
    rating = effective_rating(session, farm.household)
    calendar.set(rating.appeal_until + timedelta(days=1))  # type: ignore[operator]
    h = auth(session, farm.household)
    [item] = body(client.get("/api/v1/me/ratings", headers=h))["items"]
    assert item["appealable"] is False
    resp = appeal(client, h, rating.id)
    assert resp.status_code == 409
    assert code_of(resp) == "invalid_state"
    assert session.query(RatingAppeal).filter_by(rating_id=rating.id).count() == 0


def test_appeal_of_someone_elses_rating_is_not_found(
    client: FreshRequestClient, session: Session, farm: Farm, calendar: Calendar
) -> None:
    theirs = rating_on_notice(session, farm.neighbour)
    h = auth(session, farm.household)
    for rating_id in (theirs.id, theirs.id + 1000, 99999999999999999999):
        resp = appeal(client, h, rating_id)
        assert resp.status_code == 404, rating_id
        assert code_of(resp) == "not_found"
    session.refresh(theirs)
    assert theirs.status == "notice"


def test_appeal_grounds_are_required_and_short(
    client: FreshRequestClient, session: Session, farm: Farm, calendar: Calendar
) -> None:
    rating = rating_on_notice(session, farm.household)
    h = auth(session, farm.household)
    for grounds in ("", "   ", "议" * 1001, None, 42, "分数\x00算错"):
        resp = appeal(client, h, rating.id, grounds)
        assert resp.status_code == 400, grounds
        assert code_of(resp) == "validation_error"
        assert "grounds" in body(resp)["error"]["details"]["fields"]
    missing = client.post(f"/api/v1/me/ratings/{rating.id}/appeals", json={}, headers=h)
    assert code_of(missing) == "validation_error"
    session.refresh(rating)
    assert rating.status == "notice"
    assert appeal(client, h, rating.id, "议" * 1000).status_code == 201
