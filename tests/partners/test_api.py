"""Staff API for partners and terminals: scoping, secret shown once, rotate, disable, audit."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.audit.models import AuditEntry
from tests.factories import make_county, make_partner, make_user
from tests.helpers import staff_headers


def test_partner_and_terminal_lifecycle(client: FlaskClient, session: Session) -> None:
    county = make_county(session)
    town, other_town = county.townships
    admin = make_user(session, "township_admin", town)
    foreign = make_partner(session, other_town)
    session.commit()
    h = staff_headers(admin)
    r = client.post(
        "/api/v1/admin/partners",
        json={
            "township_id": town.id,
            "name": "龙场信用超市",
            "category": "supermarket",
            "accepts_points": True,
        },
        headers=h,
    )
    assert r.status_code == 201, r.json
    pid = r.json["id"]
    assert (
        client.post(
            "/api/v1/admin/partners",
            json={"township_id": other_town.id, "name": "x", "category": "supermarket"},
            headers=h,
        ).status_code
        == 404
    )
    ids = [p["id"] for p in client.get("/api/v1/admin/partners", headers=h).json["items"]]
    assert pid in ids
    assert foreign.id not in ids
    assert client.get(f"/api/v1/admin/partners/{foreign.id}", headers=h).status_code == 404
    r = client.patch(f"/api/v1/admin/partners/{pid}", json={"name": "新名字"}, headers=h)
    assert r.json["name"] == "新名字"

    t = client.post(f"/api/v1/admin/partners/{pid}/terminals", json={"name": "1号"}, headers=h)
    assert t.status_code == 201
    assert len(t.json["secret"]) == 64
    listed = client.get(f"/api/v1/admin/partners/{pid}/terminals", headers=h)
    assert t.json["secret"] not in listed.get_data(as_text=True)
    assert "secret" not in listed.json["items"][0]
    tid = t.json["id"]
    rotated = client.post(f"/api/v1/admin/terminals/{tid}/rotate", headers=h).json
    assert rotated["secret"] != t.json["secret"]
    assert client.post(f"/api/v1/admin/terminals/{tid}/disable", headers=h).json["active"] is False
    actions = set(session.scalars(select(AuditEntry.action)))
    assert {
        "partner.create",
        "partner.update",
        "terminal.create",
        "terminal.rotate_secret",
        "terminal.disable",
    } <= actions
    audit_text = " ".join(str(e.after) for e in session.scalars(select(AuditEntry)))
    assert t.json["secret"] not in audit_text


def test_cashier_and_auditor_cannot_write(client: FlaskClient, session: Session) -> None:
    county = make_county(session)
    partner = make_partner(session, county.townships[0])
    cashier = make_user(session, "cashier", county.townships[0], partner=partner)
    auditor = make_user(session, "auditor", county.county)
    session.commit()
    for user in (cashier, auditor):
        r = client.post(
            f"/api/v1/admin/partners/{partner.id}/terminals", json={}, headers=staff_headers(user)
        )
        assert r.status_code == 403


def test_a_repeated_create_or_a_rename_to_a_taken_name_is_a_conflict(
    client: FlaskClient, session: Session
) -> None:
    town = make_county(session).townships[0]
    admin = make_user(session, "township_admin", town)
    other = make_partner(session, town, name="新寨信用超市")
    session.commit()
    h = staff_headers(admin)
    body = {"township_id": town.id, "name": "龙场信用超市", "category": "supermarket"}
    assert client.post("/api/v1/admin/partners", json=body, headers=h).status_code == 201
    again = client.post("/api/v1/admin/partners", json=body, headers=h)
    assert again.status_code == 409
    assert again.json["error"]["code"] == "conflict"
    assert again.json["error"]["details"] == {
        "fields": {"name": ["a partner of this name exists in the township"]}
    }
    renamed = client.patch(
        f"/api/v1/admin/partners/{other.id}", json={"name": "龙场信用超市"}, headers=h
    )
    assert renamed.status_code == 409
    kept = client.get(f"/api/v1/admin/partners/{other.id}", headers=h)
    assert kept.json["name"] == "新寨信用超市"
    audited = session.scalars(
        select(AuditEntry.action).where(AuditEntry.object_type == "partner")
    ).all()
    assert audited == ["partner.create"]  # the refused writes left no trace
