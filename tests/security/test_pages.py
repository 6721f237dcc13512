"""CSRF on every form POST of the admin, cashier and farmer pages (enumerated from the
url_map), the staff API refusing cookie-authenticated writes without the token, security
headers on the pages, and Secure cookies in production.

Token forgery and algorithm confusion: tests/auth. Forged, expired and replayed codes:
tests/codes. HMAC replay and tampering: tests/pos_adapter/test_auth*.
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from mall.config import Config
from tests.factories import PASSWORD, make_county, make_user

PAGE_PREFIXES = ("/admin/", "/cashier/", "/m/")
PAGES = ("/admin/login", "/cashier/login", "/m/login")


def _fill(rule: str) -> str:
    rule = re.sub(r"<any\(([^,)]+)[^>]*>", lambda m: m.group(1).strip(), rule)
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", "1", rule)


def _form_posts(app: Flask) -> list[str]:
    return sorted(
        r.rule
        for r in app.url_map.iter_rules()
        if "POST" in (r.methods or set())
        and r.rule.startswith(PAGE_PREFIXES)
        and "/static/" not in r.rule
    )


def test_every_page_post_needs_the_csrf_token(app: Flask, client: FlaskClient) -> None:
    posts = _form_posts(app)
    assert len(posts) > 30
    accepted = []
    for rule in posts:
        resp = client.post(_fill(rule), data={"anything": "1"})
        if resp.status_code != 400:
            accepted.append(f"{rule}: {resp.status_code}")
    assert not accepted, "POSTs not refused for a missing CSRF token:\n" + "\n".join(accepted)


def test_logged_in_admin_posts_need_the_token(
    app: Flask, session: Session, client: FlaskClient
) -> None:
    county = make_county(session, townships=1, villages_per_township=1)
    make_user(session, "township_admin", county.townships[0], username="csrf_admin")
    session.flush()
    page = client.get("/admin/login")
    token = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page.data)
    assert token is not None
    login = client.post(
        "/admin/login",
        data={"username": "csrf_admin", "password": PASSWORD, "csrf_token": token[1]},
    )
    assert login.status_code in (302, 303), login.data[:300]
    for rule in _form_posts(app):
        if rule.startswith("/admin/") and rule != "/admin/login":
            resp = client.post(_fill(rule), data={"anything": "1"})
            assert resp.status_code == 400, rule
    # the JSON staff API with the admin's cookie and no token: refused as well
    api = [
        r.rule
        for r in app.url_map.iter_rules()
        if r.rule.startswith("/api/v1/admin/") and "POST" in (r.methods or set())
    ]
    for rule in api:
        resp = client.post(_fill(rule), json={})
        assert resp.status_code in (400, 401), rule
        if resp.status_code == 400:
            assert resp.get_json()["error"]["code"] in ("csrf_failed", "validation_error"), rule


@pytest.mark.parametrize("path", PAGES)
def test_security_headers_on_pages(client: FlaskClient, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 200
    h = resp.headers
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
    assert "script-src 'self'" in h["Content-Security-Policy"]
    assert h["Referrer-Policy"] in ("same-origin", "no-referrer", "strict-origin")


def test_personal_data_pages_are_not_cached(
    app: Flask, session: Session, client: FlaskClient
) -> None:
    county = make_county(session, townships=1, villages_per_township=1)
    make_user(session, "township_admin", county.townships[0], username="nostore_admin")
    session.flush()
    page = client.get("/admin/login")
    token = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page.data)
    assert token is not None
    client.post(
        "/admin/login",
        data={"username": "nostore_admin", "password": PASSWORD, "csrf_token": token[1]},
    )
    resp = client.get("/admin/households")
    assert resp.status_code == 200
    assert "no-store" in resp.headers["Cache-Control"]


def test_production_cookies_are_secure() -> None:
    config = Config({"MALL_ENV": "production"})
    assert config.SESSION_COOKIE_SECURE is True
    assert config.SESSION_COOKIE_HTTPONLY is True
    assert config.SESSION_COOKIE_SAMESITE in ("Lax", "Strict")
