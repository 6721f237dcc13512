"""Admin pages: login with CSRF, lockout, logout, session invalidation, language switch."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from mall.clock import utcnow
from mall.http.auth import SESSION_LOGIN_AT, SESSION_USER_ID
from mall.security.passwords import hash_password
from mall.users.models import User
from tests.factories import PASSWORD, make_county, make_user

USERNAME = "admin-zhang"


@pytest.fixture
def user(session: Session) -> User:
    county = make_county(session)
    u = make_user(session, "township_admin", county.townships[0], username=USERNAME)
    u.display_name = "张管理"
    session.commit()
    return u


def csrf_token(client: FlaskClient, path: str = "/admin/login") -> str:
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert match, html
    return match.group(1)


def login(
    client: FlaskClient, username: str = USERNAME, password: str = PASSWORD, next_url: str = ""
) -> TestResponse:
    token = csrf_token(client)
    path = "/admin/login" + (f"?next={next_url}" if next_url else "")
    return client.post(path, data={"csrf_token": token, "username": username, "password": password})


def logged_in(client: FlaskClient) -> bool:
    with client.session_transaction() as sess:
        return SESSION_USER_ID in sess


def test_pages_redirect_to_login_without_a_session(client: FlaskClient) -> None:
    resp = client.get("/admin/")
    assert resp.status_code == 302
    assert resp.location.startswith("/admin/login?next=/admin/")


def test_login_page_is_chinese_with_a_csrf_token(client: FlaskClient) -> None:
    resp = client.get("/admin/login")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert '<html lang="zh-CN">' in html
    assert "管理后台登录" in html
    assert 'name="csrf_token"' in html
    assert 'href="/admin/login?lang=en"' in html


def test_login_and_the_landing_page(client: FlaskClient, user: User) -> None:
    resp = login(client)
    assert resp.status_code == 302
    assert resp.location == "/admin/"
    assert logged_in(client)
    page = client.get("/admin/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "管理后台" in html
    assert "张管理" in html
    assert "乡镇管理员" in html
    assert "第1镇" in html
    assert "登录成功" in html  # the flash message
    assert page.headers["Cache-Control"] == "no-store"
    # Logged in, the login page sends you on.
    assert client.get("/admin/login").status_code == 302


def test_post_without_csrf_token_is_refused_and_logs_nobody_in(
    client: FlaskClient, user: User
) -> None:
    client.get("/admin/login")
    resp = client.post("/admin/login", data={"username": USERNAME, "password": PASSWORD})
    assert resp.status_code == 400
    assert "页面已过期" in resp.get_data(as_text=True)
    assert not logged_in(client)
    assert client.get("/admin/").status_code == 302


def test_post_with_a_forged_csrf_token_is_refused(client: FlaskClient, user: User) -> None:
    client.get("/admin/login")
    resp = client.post(
        "/admin/login",
        data={"csrf_token": "forged.token.value", "username": USERNAME, "password": PASSWORD},
    )
    assert resp.status_code == 400
    assert not logged_in(client)


def test_wrong_password_and_lockout(client: FlaskClient, user: User) -> None:
    for _ in range(4):
        resp = login(client, password="wrong-password")
        assert resp.status_code == 401
        assert "用户名或密码错误" in resp.get_data(as_text=True)
    locked = login(client, password="wrong-password")
    assert locked.status_code == 429
    assert login(client).status_code == 429  # even the right password
    assert "登录失败次数过多" in login(client).get_data(as_text=True)
    assert not logged_in(client)


def test_the_api_and_the_pages_share_one_lockout(client: FlaskClient, user: User) -> None:
    for _ in range(5):
        client.post(
            "/api/v1/auth/admin/login", json={"username": USERNAME, "password": "wrong-pass"}
        )
    assert login(client).status_code == 429


def test_empty_form_is_a_400_with_field_errors(client: FlaskClient) -> None:
    token = csrf_token(client)
    resp = client.post("/admin/login", data={"csrf_token": token, "username": "", "password": ""})
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert "请填写用户名" in html
    assert "请填写密码" in html
    assert 'aria-invalid="true"' in html


def test_next_is_followed_only_within_admin(client: FlaskClient, user: User) -> None:
    assert login(client, next_url="https://evil.example/").location == "/admin/"
    client.post("/admin/logout", data={"csrf_token": csrf_token(client, "/admin/")})
    assert login(client, next_url="//evil.example/admin/").location == "/admin/"
    client.post("/admin/logout", data={"csrf_token": csrf_token(client, "/admin/")})
    assert login(client, next_url="/admin/?x=1").location == "/admin/?x=1"


def test_logout_needs_csrf_and_ends_the_session(client: FlaskClient, user: User) -> None:
    login(client)
    refused = client.post("/admin/logout")
    assert refused.status_code == 400
    assert logged_in(client)
    resp = client.post("/admin/logout", data={"csrf_token": csrf_token(client, "/admin/")})
    assert resp.status_code == 302
    assert resp.location == "/admin/login"
    assert not logged_in(client)
    assert client.get("/admin/").status_code == 302
    assert client.get("/admin/logout").status_code == 405


def test_deactivation_ends_the_session(client: FlaskClient, session: Session, user: User) -> None:
    login(client)
    assert client.get("/admin/").status_code == 200
    session.execute(update(User).where(User.id == user.id).values(active=False))
    session.commit()
    assert client.get("/admin/").status_code == 302
    assert not logged_in(client)


def test_password_change_ends_the_session(
    client: FlaskClient, session: Session, user: User
) -> None:
    login(client)
    session.execute(
        update(User).where(User.id == user.id).values(password_hash=hash_password("new-password-1"))
    )
    session.commit()
    assert client.get("/admin/").status_code == 302


def test_sessions_expire(client: FlaskClient, user: User) -> None:
    login(client)
    with client.session_transaction() as sess:
        sess[SESSION_LOGIN_AT] = int((utcnow() - timedelta(hours=13)).timestamp())
    assert client.get("/admin/").status_code == 302


def test_tampered_session_cookie_is_ignored(client: FlaskClient, user: User) -> None:
    login(client)
    cookie = client.get_cookie("session")
    assert cookie is not None
    client.set_cookie("session", cookie.value[:-2] + ("AA" if cookie.value[-2:] != "AA" else "BB"))
    assert client.get("/admin/").status_code == 302


def test_admin_session_works_on_the_staff_api_for_reads(client: FlaskClient, user: User) -> None:
    login(client)
    resp = client.get("/api/v1/auth/admin/me")
    assert resp.status_code == 200
    assert (resp.json or {})["username"] == USERNAME


def test_english_switch_sets_a_cookie(client: FlaskClient, user: User) -> None:
    resp = client.get("/admin/login?lang=en")
    html = resp.get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "Administration login" in html
    assert "管理后台登录" not in html
    cookie = client.get_cookie("lang")
    assert cookie is not None
    assert cookie.value == "en"
    # The cookie keeps English on later pages, the landing page included.
    login(client)
    html = client.get("/admin/").get_data(as_text=True)
    assert "Administration" in html
    assert "Township admin" in html
    assert "Log out" in html
    assert 'href="/admin/?lang=zh_CN"' in html
    # And back to Chinese.
    html = client.get("/admin/?lang=zh_CN").get_data(as_text=True)
    assert "乡镇管理员" in html
    assert client.get_cookie("lang").value == "zh_CN"  # type: ignore[union-attr]


def test_english_error_messages_on_the_login_form(client: FlaskClient, user: User) -> None:
    client.get("/admin/login?lang=en")
    resp = login(client, password="wrong-password")
    assert "Wrong username or password" in resp.get_data(as_text=True)


def test_static_stylesheet_is_served(client: FlaskClient) -> None:
    resp = client.get("/admin/static/admin.css")
    assert resp.status_code == 200
    assert "--brand" in resp.get_data(as_text=True)
    resp.close()


def test_unknown_admin_page_is_an_html_404(client: FlaskClient, user: User) -> None:
    login(client)
    resp = client.get("/admin/no-such-page")
    assert resp.status_code == 404
