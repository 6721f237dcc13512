"""Staff accounts: who may create whom, and region isolation."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.factories import make_county, make_partner, make_user
from tests.helpers import staff_headers


def test_township_admin_creates_cashier_for_own_partner(
    client: FlaskClient, session: Session
) -> None:
    c = make_county(session)
    admin = make_user(session, "township_admin", c.townships[0])
    mine = make_partner(session, c.townships[0])
    theirs = make_partner(session, c.townships[1])
    h = staff_headers(admin)
    body = {
        "username": "cashier_a",
        "password": "long-enough-pw",
        "role": "cashier",
        "region_id": c.townships[0].id,
        "partner_id": mine.id,
    }
    r = client.post("/api/v1/admin/users", headers=h, json=body)
    assert r.status_code == 201, r.json
    assert "password" not in r.json
    r = client.post(
        "/api/v1/admin/users",
        headers=h,
        json={
            **body,
            "username": "cashier_b",
            "partner_id": theirs.id,
            "region_id": c.townships[1].id,
        },
    )
    assert r.status_code == 404
    r = client.post(
        "/api/v1/admin/users",
        headers=h,
        json={
            **body,
            "username": "boss",
            "role": "county_admin",
            "region_id": c.county.id,
            "partner_id": None,
        },
    )
    assert r.status_code == 403


def test_user_list_is_scoped(client: FlaskClient, session: Session) -> None:
    c = make_county(session)
    a = make_user(session, "township_admin", c.townships[0])
    b = make_user(session, "township_admin", c.townships[1])
    names = {
        u["username"]
        for u in client.get("/api/v1/admin/users", headers=staff_headers(a)).json["items"]
    }
    assert a.username in names
    assert b.username not in names


def test_duplicate_username_conflicts(client: FlaskClient, session: Session) -> None:
    c = make_county(session)
    county = make_user(session, "county_admin", c.county)
    body = {
        "username": "dup_user",
        "password": "long-enough-pw",
        "role": "auditor",
        "region_id": c.county.id,
    }
    assert (
        client.post("/api/v1/admin/users", headers=staff_headers(county), json=body).status_code
        == 201
    )
    r = client.post("/api/v1/admin/users", headers=staff_headers(county), json=body)
    assert r.status_code == 409
