"""The service under gunicorn: probes, OpenAPI, a staff login and a scoped read."""

from __future__ import annotations

import pytest
import requests

from tests.live import LiveServer

pytestmark = pytest.mark.e2e


def test_probes_and_openapi(live_server: LiveServer) -> None:
    assert requests.get(live_server.url + "/healthz", timeout=5).json() == {"status": "ok"}
    ready = requests.get(live_server.url + "/readyz", timeout=5)
    assert ready.status_code == 200, ready.text
    spec = requests.get(live_server.url + "/openapi.json", timeout=5).json()
    assert "/api/v1/admin/households" in spec["paths"]
    assert "/api/v1/auth/farmer/login" in spec["paths"]
    assert requests.get(live_server.url + "/docs", timeout=5).status_code == 200


def test_demo_township_admin_sees_only_own_township(live_server: LiveServer) -> None:
    admin = next(a for a in live_server.manifest["admins"] if a["role"] == "township_admin")
    login = requests.post(
        live_server.url + "/api/v1/auth/admin/login",
        timeout=10,
        json={"username": admin["username"], "password": admin["password"]},
    )
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    seen: set[int] = set()
    cursor = None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = requests.get(
            live_server.url + "/api/v1/admin/households", headers=headers, params=params, timeout=10
        ).json()
        seen |= {item["township_id"] for item in page["items"]}
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 1


def test_no_personal_data_in_server_log(live_server: LiveServer) -> None:
    farmer = live_server.manifest["households"][0]
    requests.post(
        live_server.url + "/api/v1/auth/farmer/login",
        timeout=10,
        json={"phone": farmer["phone"], "pin": "000000"},
    )
    requests.get(
        live_server.url + "/api/v1/admin/households", timeout=10, params={"q": farmer["phone"]}
    )
    log = live_server.log_text()
    for h in live_server.manifest["households"]:
        assert h["phone"] not in log
