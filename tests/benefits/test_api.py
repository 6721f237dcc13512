"""Staff API of the benefit list: region scope, roles, validation, audit."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.audit.models import AuditEntry
from tests.benefits.conftest import World
from tests.factories import make_county, make_user
from tests.helpers import staff_headers

URL = "/api/v1/admin/benefits"
SCENIC = {
    "kind": "percent_discount",
    "percent_bp": 2000,
    "cap_fen": 3000,
    "min_level_rank": 4,
    "limit_per_month": 4,
    "partner_category": "scenic_spot",
    "title_zh": "景区门票八折",
    "title_en": "20% off tickets",
}


def test_county_admin_creates_edits_and_deactivates(
    client: FlaskClient, session: Session, world: World
) -> None:
    admin = make_user(session, "county_admin", world.county.county)
    h = staff_headers(admin)
    resp = client.post(URL, json=SCENIC, headers=h)
    assert resp.status_code == 201, resp.json
    body: dict[str, Any] = resp.json or {}
    assert body["township_id"] is None
    assert body["county_id"] == world.county.county.id
    bid = body["id"]
    resp = client.patch(f"{URL}/{bid}", json={"cap_fen": 2000}, headers=h)
    assert resp.status_code == 200
    assert (resp.json or {})["cap_fen"] == 2000
    resp = client.post(f"{URL}/{bid}/deactivate", headers=h)
    assert (resp.json or {})["active"] is False
    listed = client.get(URL + "?active=false", headers=h).json or {}
    assert [b["id"] for b in listed["items"]] == [bid]
    actions = [
        e.action
        for e in session.scalars(
            select(AuditEntry).where(AuditEntry.object_type == "benefit").order_by(AuditEntry.id)
        )
    ]
    assert actions == ["benefit.create", "benefit.update", "benefit.update"]


def test_township_admin_scope(client: FlaskClient, session: Session, world: World) -> None:
    county_admin = make_user(session, "county_admin", world.county.county)
    town1 = make_user(session, "township_admin", world.county.townships[0])
    town2 = make_user(session, "township_admin", world.county.townships[1])
    county_line = client.post(URL, json=SCENIC, headers=staff_headers(county_admin)).json or {}
    own = client.post(URL, json=SCENIC, headers=staff_headers(town1))
    assert own.status_code == 201
    own_line = own.json or {}
    assert own_line["township_id"] == world.county.townships[0].id
    # township 2 sees the county line but not township 1's; cannot edit either
    seen = {b["id"] for b in (client.get(URL, headers=staff_headers(town2)).json or {})["items"]}
    assert seen == {county_line["id"]}
    assert client.get(f"{URL}/{own_line['id']}", headers=staff_headers(town2)).status_code == 404
    resp = client.patch(
        f"{URL}/{county_line['id']}", json={"cap_fen": 1}, headers=staff_headers(town1)
    )
    assert resp.status_code == 403
    # a township admin may not place a line in another township
    resp = client.post(
        URL,
        json={**SCENIC, "township_id": world.county.townships[1].id},
        headers=staff_headers(town1),
    )
    assert resp.status_code == 403


def test_other_county_and_roles(client: FlaskClient, session: Session, world: World) -> None:
    admin = make_user(session, "county_admin", world.county.county)
    line = client.post(URL, json=SCENIC, headers=staff_headers(admin)).json or {}
    other = make_county(session, townships=1, villages_per_township=1)
    stranger = make_user(session, "county_admin", other.county)
    assert client.get(f"{URL}/{line['id']}", headers=staff_headers(stranger)).status_code == 404
    auditor = make_user(session, "auditor", world.county.county)
    assert client.get(f"{URL}/{line['id']}", headers=staff_headers(auditor)).status_code == 200
    assert client.post(URL, json=SCENIC, headers=staff_headers(auditor)).status_code == 403
    assert client.get(URL).status_code == 401


def test_validation(client: FlaskClient, session: Session, world: World) -> None:
    h = staff_headers(make_user(session, "county_admin", world.county.county))
    cases: list[tuple[dict[str, Any], str]] = [
        ({**SCENIC, "percent_bp": None}, "percent_bp"),
        ({**SCENIC, "kind": "fixed_discount"}, "fixed_fen"),
        ({**SCENIC, "partner_id": world.hospital.id}, "partner_id"),
        ({k: v for k, v in SCENIC.items() if k != "partner_category"}, "partner_id"),
        ({**SCENIC, "valid_from": "2026-05-01", "valid_until": "2026-04-01"}, "valid_until"),
        ({**SCENIC, "kind": "bogus"}, "kind"),
    ]
    for body, field in cases:
        resp = client.post(URL, json=body, headers=h)
        assert resp.status_code == 400, (body, resp.json)
        err = (resp.json or {})["error"]
        assert err["code"] == "validation_error"
        assert field in err["details"]["fields"], (field, err)
    exact = client.post(
        URL,
        json={"kind": "deposit_waiver", "partner_id": world.hospital.id, "title_zh": "免押金"},
        headers=h,
    )
    assert exact.status_code == 201
    assert (exact.json or {})["township_id"] == world.hospital.township_id
