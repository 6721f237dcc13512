"""The one error envelope: every failure, however malformed the input, answers in it."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.factories import make_county, make_user
from tests.helpers import staff_headers


def _envelope(resp) -> dict:  # type: ignore[no-untyped-def, type-arg]
    body = resp.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def test_unknown_route(client: FlaskClient) -> None:
    resp = client.get("/no/such/thing")
    assert resp.status_code == 404
    err = _envelope(resp)
    assert err["code"] == "not_found"
    assert err["message"] == "未找到"


def test_english_on_request(client: FlaskClient) -> None:
    resp = client.get("/no/such/thing", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert _envelope(resp)["message"] == "Not found"


def test_wrong_method(client: FlaskClient) -> None:
    resp = client.delete("/healthz")
    assert resp.status_code == 405
    assert _envelope(resp)["code"] == "method_not_allowed"


@pytest.fixture
def admin_headers(session: Session) -> dict[str, str]:
    c = make_county(session)
    return staff_headers(make_user(session, "county_admin", c.county))


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"\xff\xfe\x00", "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b'"a string"', "application/json"),
        (b"null", "application/json"),
        (b"village_id=1", "application/x-www-form-urlencoded"),
        (b"", "application/json"),
        (b'{"village_id": 1e999, "head_name": {"x": []}}', "application/json"),
        (b'{"village_id": ' + b"9" * 5000 + b"}", "application/json"),
        (b'{"village_id": 1, "head_name": "\\ud800"}', "application/json"),
        (b"[" * 200_000 + b"]" * 200_000, "application/json"),
    ],
)
def test_malformed_bodies_are_400(
    client: FlaskClient, admin_headers: dict[str, str], body: bytes, content_type: str
) -> None:
    resp = client.post(
        "/api/v1/admin/households", data=body, content_type=content_type, headers=admin_headers
    )
    assert resp.status_code in (400, 415), resp.get_data(as_text=True)
    assert _envelope(resp)["code"] in {"validation_error", "bad_request", "unsupported_media_type"}


def test_huge_body_is_413(client: FlaskClient, admin_headers: dict[str, str]) -> None:
    resp = client.post(
        "/api/v1/admin/households",
        data=b"{" + b" " * (3 * 1024 * 1024) + b"}",
        content_type="application/json",
        headers=admin_headers,
    )
    assert resp.status_code == 413
    assert _envelope(resp)["code"] == "payload_too_large"


def test_bad_query_types(client: FlaskClient, admin_headers: dict[str, str]) -> None:
    resp = client.get(
        "/api/v1/admin/households",
        query_string={"cursor": "abc", "limit": 10**9},
        headers=admin_headers,
    )
    assert resp.status_code == 400
    assert set(_envelope(resp)["details"]["fields"]) == {"cursor", "limit"}
