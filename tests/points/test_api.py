"""The points API: rules, an xlsx import, maker-checker approval over HTTP."""

from __future__ import annotations

import io

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from mall.clock import business_date
from tests.helpers import staff_headers
from tests.points.conftest import World, points_of, xlsx


def test_import_submit_approve(client: FlaskClient, session: Session, world: World) -> None:
    clerk = staff_headers(world.clerk)
    h = world.households
    content = xlsx(
        [[h[0].ref, "public", "2026-03-01", None], ["nobody", "public", "2026-03-01", None]]
    )
    resp = client.post(
        "/api/v1/admin/points/batches/import",
        data={
            "region_id": str(world.county.villages[0].id),
            "file": (io.BytesIO(content), "e.xlsx"),
        },
        headers=clerk,
        content_type="multipart/form-data",
    )
    assert resp.status_code == 201, resp.json
    assert resp.json["applied"] is False
    assert resp.json["errors"][0]["row"] == 3
    resp = client.post(
        "/api/v1/admin/points/batches/import",
        data={
            "region_id": str(world.county.villages[0].id),
            "apply_good_rows": "true",
            "file": (io.BytesIO(content), "e.xlsx"),
        },
        headers=clerk,
        content_type="multipart/form-data",
    )
    batch_id = resp.json["batch"]["id"]
    errors = client.get(f"/api/v1/admin/points/batches/{batch_id}/errors", headers=clerk)
    assert errors.json["items"][0]["row"] == 3
    assert (
        client.post(f"/api/v1/admin/points/batches/{batch_id}/submit", headers=clerk).status_code
        == 200
    )
    own = client.post(f"/api/v1/admin/points/batches/{batch_id}/approve", json={}, headers=clerk)
    assert own.status_code == 403
    resp = client.post(
        f"/api/v1/admin/points/batches/{batch_id}/approve",
        json={"note": "ok"},
        headers=staff_headers(world.town_admin),
    )
    assert resp.status_code == 200, resp.json
    assert resp.json["points_issued"] == 5
    assert points_of(session, h[0]) == 5


def test_rules_api(client: FlaskClient, world: World) -> None:
    admin = staff_headers(world.town_admin)
    resp = client.post(
        "/api/v1/admin/points/rules",
        headers=admin,
        json={
            "region_id": world.county.townships[0].id,
            "code": "clean",
            "name": "庭院整洁",
            "points": 3,
            "category": "customs_reform",
            "cap_week": 3,
        },
    )
    assert resp.status_code == 201, resp.json
    listed = client.get(
        f"/api/v1/admin/points/rules?region_id={world.county.villages[0].id}", headers=admin
    )
    assert {r["code"] for r in listed.json["items"]} == {"volunteer", "public", "litter", "clean"}
    assert (
        client.post(
            "/api/v1/admin/points/rules",
            headers=staff_headers(world.clerk),
            json={"region_id": world.county.villages[0].id, "code": "x", "name": "x", "points": 1},
        ).status_code
        == 403
    )


def test_single_entry_batch(client: FlaskClient, world: World) -> None:
    clerk = staff_headers(world.clerk)
    batch = client.post(
        "/api/v1/admin/points/batches",
        json={"region_id": world.county.villages[0].id},
        headers=clerk,
    ).json
    resp = client.post(
        f"/api/v1/admin/points/batches/{batch['id']}/events",
        headers=clerk,
        json={
            "household_ref": world.households[0].ref,
            "rule_code": "volunteer",
            "occurred_on": business_date().isoformat(),
        },
    )
    assert resp.status_code == 201, resp.json
    page = client.get("/api/v1/admin/points/batches", headers=staff_headers(world.town_admin)).json
    assert page["items"][0]["events"] == 1
