"""Rate limits (mall/http/ratelimits.py): they trip, answer 429 `rate_limited` in the envelope with
Retry-After, and count per address, per terminal or per household as documented.

The other tests run with the limits off (tests/conftest.py); this module builds its own app
with them on, over its own scratch database, and puts the shared engine back afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from werkzeug.test import TestResponse

from mall.extensions import db
from mall.http.extensions import limiter
from mall.http.ratelimits import LIMITED
from mall.partners.models import Terminal
from mall.partners.services import create_terminal
from tests.admin.pages_helpers import login_as, post
from tests.auth.client import fresh_client
from tests.conftest import create_scratch_database, make_test_app
from tests.factories import PIN, make_county, make_household, make_partner, make_user
from tests.pos_adapter.conftest import Till


@pytest.fixture(scope="module")
def limited_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    db.session.remove()
    url, drop = create_scratch_database(str(tmp_path_factory.mktemp("rl")), "rl")
    app = make_test_app(
        url,
        RATELIMIT_ENABLED=True,
        RATELIMIT_LOGIN="3/minute",
        RATELIMIT_LOGIN_PHONE="2/minute",
        RATELIMIT_SCAN="2/minute",
        RATELIMIT_FARMER_CODE="2/minute",
    )
    with app.app_context():
        upgrade(revision="heads")
    try:
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        drop()  # type: ignore[operator]


@pytest.fixture
def limited(limited_app: Flask) -> Iterator[FlaskClient]:
    limiter.reset()
    with limited_app.app_context():
        yield fresh_client(limited_app)
        db.session.remove()
    limiter.reset()


def _assert_rate_limited(resp: object, *, json: bool = True) -> None:
    assert resp.status_code == 429  # type: ignore[attr-defined]
    headers = resp.headers  # type: ignore[attr-defined]
    assert int(headers["Retry-After"]) >= 0
    assert headers["X-RateLimit-Limit"]
    if json:
        body = resp.get_json()  # type: ignore[attr-defined]
        assert body["error"]["code"] == "rate_limited"
        assert body["error"]["message"]


def test_every_limited_endpoint_exists(limited_app: Flask) -> None:
    missing = [rule.endpoint for rule in LIMITED if rule.endpoint not in limited_app.view_functions]
    assert missing == []


def test_farmer_login_is_limited_per_address(limited: FlaskClient) -> None:
    # One phone after another, as a guesser spreads an address's tries over many phones.
    for n in range(3):
        body = {"phone": f"1380000000{n}", "pin": "000000"}
        assert limited.post("/api/v1/auth/farmer/login", json=body).status_code == 401
    body = {"phone": "13800000003", "pin": "000000"}
    resp = limited.post("/api/v1/auth/farmer/login", json=body)
    _assert_rate_limited(resp)
    other = limited.post(
        "/api/v1/auth/farmer/login", json=body, environ_base={"REMOTE_ADDR": "10.0.0.9"}
    )
    assert other.status_code == 401


def _page_login(
    client: FlaskClient, phone: str, pin: str, address: str = "127.0.0.1"
) -> TestResponse:
    env = {"REMOTE_ADDR": address}
    token = _csrf(client.get("/m/login", environ_base=env).get_data(as_text=True))
    return client.post(
        "/m/login", data={"phone": phone, "pin": pin, "csrf_token": token}, environ_base=env
    )


def _api_login(
    client: FlaskClient, phone: str, pin: str, address: str = "127.0.0.1"
) -> TestResponse:
    return client.post(
        "/api/v1/auth/farmer/login",
        json={"phone": phone, "pin": pin},
        environ_base={"REMOTE_ADDR": address},
    )


def test_an_address_has_one_farmer_login_allowance_for_the_api_and_the_page(
    limited: FlaskClient,
) -> None:
    assert _api_login(limited, "13800000010", "000000").status_code == 401
    assert _page_login(limited, "13800000011", "000000").status_code == 401
    assert _api_login(limited, "13800000012", "000000").status_code == 401
    page = _page_login(limited, "13800000013", "000000")
    assert page.status_code == 429  # a page for the farmer, not JSON
    assert int(page.headers["Retry-After"]) >= 0
    assert "请求过于频繁" in page.get_data(as_text=True)
    _assert_rate_limited(_api_login(limited, "13800000014", "000000"))
    assert _api_login(limited, "13800000014", "000000", "10.0.0.9").status_code == 401


def test_a_phone_has_one_login_allowance_across_addresses_paths_and_spellings(
    limited: FlaskClient,
) -> None:
    s = db.session()
    county = make_county(s, townships=1, villages_per_township=1)
    make_household(s, county.villages[0], phone="13911110000")
    s.commit()
    assert _api_login(limited, "13911110000", "000000", "10.0.1.1").status_code == 401
    assert _page_login(limited, "139 1111 0000", "000000", "10.0.1.2").status_code == 401
    _assert_rate_limited(_api_login(limited, "139-1111-0000", "000000", "10.0.1.3"))
    # over the allowance even the right PIN waits, from any address and on either path
    _assert_rate_limited(_api_login(limited, "１３９１１１１００００", PIN, "10.0.1.4"))
    assert _page_login(limited, "13911110000", PIN, "10.0.1.5").status_code == 429
    # another phone from the same address is not held up
    assert _api_login(limited, "13911110001", "000000", "10.0.1.3").status_code == 401
    # the limiter's storage holds no phone number
    keys = " ".join(str(k) for k in getattr(limiter.storage, "storage", {}))
    assert "phone:" in keys
    assert "13911110000" not in keys


def test_an_admin_pin_unlock_gives_the_phone_its_logins_back(limited: FlaskClient) -> None:
    s = db.session()
    county = make_county(s, townships=1, villages_per_township=1)
    household = make_household(s, county.villages[0], phone="13922220000")
    admin = make_user(s, "township_admin", county.townships[0])
    s.commit()
    for _ in range(2):
        assert _api_login(limited, "13922220000", "000000", "10.0.2.1").status_code == 401
    _assert_rate_limited(_api_login(limited, "13922220000", PIN, "10.0.2.2"))
    staff = fresh_client(limited.application)
    login_as(staff, admin)
    resp = post(staff, f"/admin/households/{household.ref}/pin", {"confirm": "y"})
    assert resp.status_code == 302
    assert _api_login(limited, "13922220000", PIN, "10.0.2.2").status_code == 200


def test_staff_login_api_is_limited(limited: FlaskClient) -> None:
    body = {"username": "nobody-api", "password": "wrong-password"}
    for _ in range(3):
        assert limited.post("/api/v1/auth/admin/login", json=body).status_code == 401
    _assert_rate_limited(limited.post("/api/v1/auth/admin/login", json=body))


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert found
    return found.group(1)


@pytest.mark.parametrize("path", ["/cashier/login", "/admin/login"])
def test_login_pages_are_limited_but_not_their_get(limited: FlaskClient, path: str) -> None:
    for _ in range(5):
        page = limited.get(path)
        assert page.status_code == 200
    form = {
        "username": "nobody" + path.replace("/", "-"),  # the lockout counts per name
        "password": "wrong",
        "csrf_token": _csrf(page.get_data(as_text=True)),
    }
    for _ in range(3):
        assert limited.post(path, data=form).status_code == 401
    resp = limited.post(path, data=form)
    assert resp.status_code == 429
    assert int(resp.headers["Retry-After"]) >= 0
    if path.startswith("/cashier"):
        assert "请求过于频繁" in resp.get_data(as_text=True)  # a page for the cashier
    else:
        assert resp.get_json()["error"]["code"] == "rate_limited"


def test_scan_is_limited_per_terminal(limited: FlaskClient) -> None:
    s = db.session()
    county = make_county(s, townships=1, villages_per_township=1)
    partner = make_partner(s, county.townships[0])
    first, first_secret = create_terminal(s, partner)
    second, second_secret = create_terminal(s, partner)
    s.commit()
    till = Till(limited, first, first_secret)
    # unsigned requests naming the terminal are refused (401) and do not spend its allowance
    for _ in range(3):
        resp = limited.post(
            "/pos/v1/scan", json={"code": "x"}, headers={"X-Terminal-Id": first.terminal_id}
        )
        assert resp.status_code == 401
    for _ in range(2):
        assert till.post("/pos/v1/scan", {"code": "not-a-code"}).status_code == 422
    _assert_rate_limited(till.post("/pos/v1/scan", {"code": "not-a-code"}))
    # another terminal has its own allowance
    other = Till(limited, s.get(Terminal, second.id), second_secret)  # type: ignore[arg-type]
    assert other.post("/pos/v1/scan", {"code": "not-a-code"}).status_code == 422


def test_farmer_code_is_limited_per_household(limited: FlaskClient) -> None:
    s = db.session()
    county = make_county(s, townships=1, villages_per_township=1)
    make_household(s, county.villages[0], phone="13912345678")
    s.commit()
    login = limited.post("/api/v1/auth/farmer/login", json={"phone": "13912345678", "pin": PIN})
    assert login.status_code == 200, login.get_json()
    headers = {"Authorization": "Bearer " + login.get_json()["access_token"]}
    for _ in range(2):
        assert limited.get("/api/v1/me/code", headers=headers).status_code == 200
    _assert_rate_limited(limited.get("/api/v1/me/code", headers=headers))
    # bad tokens are refused as before, and do not count for anyone
    assert limited.get("/api/v1/me/code", headers={"Authorization": "Bearer x"}).status_code == 401
