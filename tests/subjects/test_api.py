"""Households API: region isolation on every route, masking, audit."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mall.audit.models import AuditEntry
from tests.factories import make_county, make_household, make_user
from tests.helpers import staff_headers


def _setup(session: Session):  # type: ignore[no-untyped-def]
    c = make_county(session)
    mine = make_household(session, c.villages[0], phone="13900000001")
    theirs = make_household(session, c.villages[2], phone="13900000002")
    admin = make_user(session, "township_admin", c.townships[0])
    return c, mine, theirs, admin


def test_list_shows_only_own_township_masked(client: FlaskClient, session: Session) -> None:
    _, mine, _, admin = _setup(session)
    resp = client.get("/api/v1/admin/households", headers=staff_headers(admin))
    assert resp.status_code == 200
    items = resp.json["items"]
    assert [i["ref"] for i in items] == [mine.ref]
    assert items[0]["phone"] == "139****0001"
    assert "13900000001" not in resp.get_data(as_text=True)


def test_other_township_is_invisible_on_every_route(client: FlaskClient, session: Session) -> None:
    c, _, theirs, admin = _setup(session)
    h = staff_headers(admin)
    assert client.get(f"/api/v1/admin/households/{theirs.ref}", headers=h).status_code == 404
    r = client.post(
        f"/api/v1/admin/households/{theirs.ref}/status",
        headers=h,
        json={"status": "frozen", "reason": "x"},
    )
    assert r.status_code == 404
    r = client.post(
        f"/api/v1/admin/households/{theirs.ref}/reveal",
        headers=h,
        json={"field": "phone", "reason": "x"},
    )
    assert r.status_code == 404
    r = client.post(
        "/api/v1/admin/households",
        headers=h,
        json={"village_id": c.villages[2].id, "head_name": "赵四"},
    )
    assert r.status_code == 404
    r = client.get("/api/v1/admin/households", headers=h, query_string={"q": theirs.ref})
    assert r.json["items"] == []
    assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_county_admin_sees_all_townships(client: FlaskClient, session: Session) -> None:
    c, mine, theirs, _ = _setup(session)
    county = make_user(session, "county_admin", c.county)
    refs = {
        i["ref"]
        for i in client.get("/api/v1/admin/households", headers=staff_headers(county)).json["items"]
    }
    assert refs == {mine.ref, theirs.ref}


def test_create_freeze_reveal_round_trip(client: FlaskClient, session: Session) -> None:
    c, _, _, admin = _setup(session)
    h = staff_headers(admin)
    r = client.post(
        "/api/v1/admin/households",
        headers=h,
        json={
            "village_id": c.villages[1].id,
            "head_name": " 刘玉珍 ",
            "phone": "13700001111",
            "id_number": "340823198001011234",
            "members": [{"name": "刘海军", "relation": "儿子"}],
            "unknown_field": "ignored",
        },
    )
    assert r.status_code == 201, r.json
    ref = r.json["ref"]
    assert r.json["name"] == "刘*珍"
    assert r.json["members"] == [{"name": "刘*军", "relation": "儿子"}]
    r = client.post(
        f"/api/v1/admin/households/{ref}/status",
        headers=h,
        json={"status": "frozen", "reason": "核查"},
    )
    assert r.json["status"] == "frozen"
    r = client.post(
        f"/api/v1/admin/households/{ref}/reveal",
        headers=h,
        json={"field": "id_number", "reason": "贷款核验"},
    )
    assert r.json["value"] == "340823198001011234"
    actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["household.create", "household.status.frozen", "household.reveal"]


def test_auditor_reads_but_cannot_write(client: FlaskClient, session: Session) -> None:
    c, mine, _, _ = _setup(session)
    auditor = make_user(session, "auditor", c.county)
    h = staff_headers(auditor)
    assert client.get(f"/api/v1/admin/households/{mine.ref}", headers=h).status_code == 200
    r = client.post(
        f"/api/v1/admin/households/{mine.ref}/status",
        headers=h,
        json={"status": "frozen", "reason": "x"},
    )
    assert r.status_code == 403
    assert r.json["error"]["code"] == "forbidden"


def test_clerk_writes_only_in_own_village(client: FlaskClient, session: Session) -> None:
    c, _, _, _ = _setup(session)
    clerk = make_user(session, "village_clerk", c.villages[0])
    h = staff_headers(clerk)
    ok = client.post(
        "/api/v1/admin/households",
        headers=h,
        json={"village_id": c.villages[0].id, "head_name": "孙德胜"},
    )
    assert ok.status_code == 201
    other_village = client.post(
        "/api/v1/admin/households",
        headers=h,
        json={"village_id": c.villages[1].id, "head_name": "孙德胜"},
    )
    assert other_village.status_code == 404


def test_validation_errors_name_fields(client: FlaskClient, session: Session) -> None:
    _, _, _, admin = _setup(session)
    r = client.post(
        "/api/v1/admin/households",
        headers=staff_headers(admin),
        json={"village_id": "abc", "head_name": 5},
    )
    assert r.status_code == 400
    assert r.json["error"]["code"] == "validation_error"
    assert set(r.json["error"]["details"]["fields"]) == {"village_id", "head_name"}


def test_requires_a_staff_token(client: FlaskClient, session: Session) -> None:
    r = client.get("/api/v1/admin/households")
    assert r.status_code == 401
    assert r.json["error"]["code"] in {"unauthorized", "invalid_token"}
