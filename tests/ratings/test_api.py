"""The ratings API and the upstream push API, end to end through HTTP."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.audit.models import AuditEntry
from tests.factories import make_user
from tests.helpers import staff_headers
from tests.ratings.conftest import World


def test_draft_notice_board_and_history(
    client: FlaskClient, session: Session, world: World
) -> None:
    h = staff_headers(world.clerk)
    resp = client.post(
        "/api/v1/admin/ratings",
        json={
            "household_ref": world.household.ref,
            "items": [{"code": "volunteer", "points": 20}],
            "visit_score": 90,
            "points_score": 80,
            "reviewers": [{"name": "王一", "related": True}],
        },
        headers=h,
    )
    assert resp.status_code == 201, resp.json
    rating = resp.json
    assert (rating["score"], rating["level_code"]) == (90.0, "4")
    resp = client.post(f"/api/v1/admin/ratings/{rating['id']}/notice", headers=h)
    assert resp.json["status"] == "notice"
    board = client.get(
        f"/api/v1/admin/ratings/notices?village_id={world.household.village_id}", headers=h
    )
    assert [i["level_label"] for i in board.json["items"]] == ["四星级"]
    hist = client.get(f"/api/v1/admin/ratings/households/{world.household.ref}/history", headers=h)
    assert [e["action"] for e in hist.json["events"]] == ["drafted", "posted"]
    actions = session.scalars(
        select(AuditEntry.action).where(AuditEntry.object_type == "rating")
    ).all()
    assert set(actions) >= {"rating.review", "rating.notice"}


def test_clerk_cannot_revoke_and_other_township_is_404(
    client: FlaskClient, session: Session, world: World
) -> None:
    resp = client.post(
        f"/api/v1/admin/ratings/households/{world.household.ref}/revoke",
        json={"reason": "x"},
        headers=staff_headers(world.clerk),
    )
    assert resp.status_code == 403
    outsider = make_user(session, "township_admin", world.county.townships[1])
    resp = client.post(
        "/api/v1/admin/ratings",
        json={"household_ref": world.household.ref, "score": 80},
        headers=staff_headers(outsider),
    )
    assert resp.status_code == 404


def test_schemes_list_and_define(client: FlaskClient, world: World) -> None:
    h = staff_headers(world.county_admin)
    codes = [
        s["code"] for s in client.get("/api/v1/admin/ratings/schemes", headers=h).json["items"]
    ]
    assert {"five_star", "aaa_d", "three_to_five_a"} <= set(codes)
    resp = client.post(
        "/api/v1/admin/ratings/schemes",
        headers=h,
        json={
            "code": "mine",
            "name_zh": "本县",
            "levels": [
                {
                    "code": "X",
                    "label_zh": "X",
                    "rank": 1,
                    "score_threshold": 60,
                    "integrity_money_fen": 500,
                }
            ],
        },
    )
    assert resp.status_code == 201, resp.json


def test_upstream_pushes_are_idempotent(
    client: FlaskClient, session: Session, world: World
) -> None:
    h = staff_headers(world.county_admin)
    body = {
        "upstream_id": "AH-0001",
        "village_code": world.county.villages[0].code,
        "head_name": "李建国",
        "phone": "13900001111",
    }
    first = client.post("/api/v1/upstream/households", json=body, headers=h)
    assert first.status_code == 201, first.json
    again = client.post("/api/v1/upstream/households", json=body, headers=h)
    assert (again.status_code, again.json["local_id"]) == (200, first.json["local_id"])
    clash = client.post(
        "/api/v1/upstream/households", json={**body, "head_name": "别人"}, headers=h
    )
    assert (clash.status_code, clash.json["error"]["code"]) == (409, "idempotency_conflict")
    rating = {
        "upstream_id": "R-1",
        "household_upstream_id": "AH-0001",
        "level_code": "5",
        "stage": "effective",
    }
    resp = client.post("/api/v1/upstream/ratings", json=rating, headers=h)
    assert resp.status_code == 201, resp.json
    assert client.post("/api/v1/upstream/ratings", json=rating, headers=h).status_code == 200
    hist = client.get(
        f"/api/v1/admin/ratings/households/{first.json['local_id']}/history", headers=h
    )
    assert hist.json["ratings"][0]["status"] == "effective"
    assert hist.json["ratings"][0]["granted_fen"] == 200000


def test_upstream_needs_a_county_admin(client: FlaskClient, world: World) -> None:
    resp = client.post(
        "/api/v1/upstream/households", json={}, headers=staff_headers(world.town_admin)
    )
    assert resp.status_code == 403
    assert client.post("/api/v1/upstream/ratings", json={}).status_code == 401


def test_endpoints_are_in_openapi(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").json["paths"]
    for path in (
        "/api/v1/admin/ratings/notices",
        "/api/v1/admin/points/batches/{batch_id}/approve",
        "/api/v1/upstream/ratings",
        "/api/v1/admin/points/batches/import",
    ):
        assert path in paths
