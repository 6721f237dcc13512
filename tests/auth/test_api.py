"""The authentication API: farmer login, lockout, refresh rotation, staff login, guards."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from mall.auth import throttle, tokens
from mall.auth.models import LoginThrottle
from mall.clock import utcnow
from mall.codes.services import admin_reset_pin
from mall.errors import Forbidden, Unauthorized, ValidationFailed
from mall.http.auth import require_farmer, require_staff
from mall.security.crypto import sealer
from mall.security.passwords import hash_password
from mall.subjects.logins import RefreshToken
from mall.subjects.models import CreditSubject
from mall.users.models import User
from tests.factories import PASSWORD, PIN, make_county, make_household, make_user

PHONE = "13800138000"
UNKNOWN_PHONE = "13912345678"


def farmer_login(
    client: FlaskClient, phone: str = PHONE, pin: str = PIN, lang: str | None = None
) -> TestResponse:
    headers = {"Accept-Language": lang} if lang else {}
    return client.post(
        "/api/v1/auth/farmer/login", json={"phone": phone, "pin": pin}, headers=headers
    )


def staff_login(client: FlaskClient, username: str, password: str = PASSWORD) -> TestResponse:
    return client.post(
        "/api/v1/auth/admin/login", json={"username": username, "password": password}
    )


def _unsigned_header() -> str:
    return base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error_code(resp: TestResponse) -> str:
    body: dict[str, Any] = resp.json or {}
    return str(body["error"]["code"])


@pytest.fixture
def household(session: Session) -> CreditSubject:
    county = make_county(session)
    return make_household(session, county.villages[0], phone=PHONE)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """The throttle's clock, frozen; tests move it by assigning `clock[0]`."""
    now = [utcnow()]
    monkeypatch.setattr(throttle, "now", lambda: now[0])
    return now


# --- farmer login ----------------------------------------------------------------------------


def test_farmer_login_answers_a_token_pair(
    client: FlaskClient, household: CreditSubject, app: Flask
) -> None:
    resp = farmer_login(client)
    assert resp.status_code == 200, resp.json
    body = resp.json or {}
    assert set(body) == {"access_token", "refresh_token", "expires_in"}
    assert body["expires_in"] == 900
    with app.app_context():
        access = tokens.decode(body["access_token"], tokens.FARMER_ACCESS)
        refresh = tokens.decode(body["refresh_token"], tokens.REFRESH)
    assert access["sub"] == refresh["sub"] == household.ref
    assert access["exp"] - access["iat"] == 900


def test_phone_is_matched_after_normalising(client: FlaskClient, household: CreditSubject) -> None:
    assert farmer_login(client, phone="138 0013 8000").status_code == 200


def test_wrong_pin_is_invalid_credentials_in_chinese_by_default(
    client: FlaskClient, household: CreditSubject
) -> None:
    resp = farmer_login(client, pin="246801")
    assert resp.status_code == 401
    assert resp.json == {
        "error": {"code": "invalid_credentials", "message": "手机号或密码错误", "details": {}}
    }


def test_wrong_pin_in_english(client: FlaskClient, household: CreditSubject) -> None:
    resp = farmer_login(client, pin="246801", lang="en")
    assert resp.status_code == 401
    assert (resp.json or {})["error"]["message"] == "Wrong phone number or PIN"


def test_unknown_phone_answers_exactly_like_a_wrong_pin(
    client: FlaskClient, household: CreditSubject
) -> None:
    wrong_pin = farmer_login(client, pin="246801")
    unknown = farmer_login(client, phone=UNKNOWN_PHONE)
    assert unknown.status_code == wrong_pin.status_code == 401
    assert unknown.json == wrong_pin.json


def test_five_failures_lock_even_the_right_pin_until_15_minutes_pass(
    client: FlaskClient, household: CreditSubject, clock: list[datetime]
) -> None:
    for _ in range(4):
        assert farmer_login(client, pin="246801").status_code == 401
    fifth = farmer_login(client, pin="246801")
    assert fifth.status_code == 429
    assert error_code(fifth) == "login_locked"
    locked = farmer_login(client)  # the right PIN
    assert locked.status_code == 429
    assert (locked.json or {})["error"]["message"] == "登录失败次数过多,请稍后再试"
    assert (locked.json or {})["error"]["details"]["retry_after_seconds"] > 0
    assert farmer_login(client, lang="en").json["error"]["message"] == (  # type: ignore[index]
        "Too many failed logins; please try again later"
    )

    clock[0] += timedelta(minutes=14)
    assert farmer_login(client).status_code == 429
    clock[0] += timedelta(minutes=1, seconds=1)
    assert farmer_login(client).status_code == 200


def test_success_clears_the_failure_count(
    client: FlaskClient, session: Session, household: CreditSubject, clock: list[datetime]
) -> None:
    for _ in range(4):
        farmer_login(client, pin="246801")
    assert farmer_login(client).status_code == 200
    assert session.scalar(select(func.count()).select_from(LoginThrottle)) == 0
    for _ in range(4):
        assert farmer_login(client, pin="246801").status_code == 401


def test_failures_older_than_the_window_do_not_count(
    client: FlaskClient, household: CreditSubject, clock: list[datetime]
) -> None:
    for _ in range(4):
        farmer_login(client, pin="246801")
    clock[0] += timedelta(minutes=16)
    for _ in range(4):
        assert farmer_login(client, pin="246801").status_code == 401
    assert farmer_login(client).status_code == 200


def test_unknown_phones_are_throttled_too(client: FlaskClient, session: Session) -> None:
    for _ in range(4):
        assert farmer_login(client, phone=UNKNOWN_PHONE).status_code == 401
    assert farmer_login(client, phone=UNKNOWN_PHONE).status_code == 429
    assert error_code(farmer_login(client, phone=UNKNOWN_PHONE)) == "login_locked"


def test_throttle_rows_hold_no_phone_number(
    client: FlaskClient, session: Session, household: CreditSubject
) -> None:
    farmer_login(client, pin="246801")
    farmer_login(client, phone=UNKNOWN_PHONE)
    keys = set(session.scalars(select(LoginThrottle.key)))
    assert keys == {
        sealer().blind_index(f"farmer:{PHONE}", "login"),
        sealer().blind_index(f"farmer:{UNKNOWN_PHONE}", "login"),
    }
    assert not any(PHONE in k or UNKNOWN_PHONE in k for k in keys)


def test_lockout_by_updating_the_throttle_row(
    client: FlaskClient, session: Session, household: CreditSubject
) -> None:
    for _ in range(5):
        farmer_login(client, pin="246801")
    assert farmer_login(client).status_code == 429
    session.execute(update(LoginThrottle).values(locked_until=utcnow() - timedelta(seconds=1)))
    session.commit()
    assert farmer_login(client).status_code == 200


def test_an_admin_pin_reset_or_unlock_lifts_the_login_lockout(
    client: FlaskClient, session: Session, household: CreditSubject
) -> None:
    for new_pin in (None, "246813"):  # an unlock, then a reset with a new PIN
        for _ in range(5):
            farmer_login(client, pin="000001")
        assert farmer_login(client).status_code == 429
        admin_reset_pin(session, household, new_pin)  # what /admin/households/<ref>/pin does
        session.commit()
        assert farmer_login(client, pin=new_pin or PIN).status_code == 200


def test_revoked_household_cannot_log_in(
    client: FlaskClient, session: Session, household: CreditSubject
) -> None:
    session.execute(
        update(CreditSubject).where(CreditSubject.id == household.id).values(status="revoked")
    )
    session.commit()
    resp = farmer_login(client)
    assert resp.status_code == 401
    assert error_code(resp) == "invalid_credentials"


def test_frozen_household_can_log_in_to_read(
    client: FlaskClient, session: Session, household: CreditSubject
) -> None:
    session.execute(
        update(CreditSubject).where(CreditSubject.id == household.id).values(status="frozen")
    )
    session.commit()
    assert farmer_login(client).status_code == 200


def test_household_without_pin_cannot_log_in(client: FlaskClient, session: Session) -> None:
    county = make_county(session)
    make_household(session, county.villages[0], phone="13700000001", pin=None)
    resp = farmer_login(client, phone="13700000001", pin="000000")
    assert error_code(resp) == "invalid_credentials"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"phone": PHONE},
        {"pin": PIN},
        {"phone": 13800138000, "pin": PIN},
        {"phone": "", "pin": ""},
    ],
)
def test_malformed_login_is_a_validation_error(
    client: FlaskClient, household: CreditSubject, body: dict[str, Any]
) -> None:
    resp = client.post("/api/v1/auth/farmer/login", json=body)
    assert resp.status_code == 400
    assert error_code(resp) == "validation_error"


def test_login_with_broken_json_is_a_clean_400(client: FlaskClient) -> None:
    resp = client.post(
        "/api/v1/auth/farmer/login", data="{not json", content_type="application/json"
    )
    assert resp.status_code == 400
    assert "error" in (resp.json or {})


# --- refresh rotation ------------------------------------------------------------------------


def test_refresh_gives_a_new_pair_and_retires_the_old_token(
    client: FlaskClient, session: Session, household: CreditSubject
) -> None:
    first = farmer_login(client).json or {}
    resp = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert resp.status_code == 200
    second = resp.json or {}
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    rows = session.scalars(select(RefreshToken).order_by(RefreshToken.id)).all()
    assert len(rows) == 2
    assert rows[0].used_at is not None
    assert rows[0].replaced_by == rows[1].jti
    assert rows[0].family_id == rows[1].family_id
    assert rows[1].used_at is None
    assert rows[1].revoked_at is None
    # And the new one works in its turn.
    third = client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200


def test_reusing_a_retired_refresh_token_revokes_the_family(
    client: FlaskClient, session: Session, household: CreditSubject
) -> None:
    stolen = (farmer_login(client).json or {})["refresh_token"]
    rotated = client.post("/api/v1/auth/refresh", json={"refresh_token": stolen}).json or {}
    # The thief (or the victim) presents the retired token again.
    reuse = client.post("/api/v1/auth/refresh", json={"refresh_token": stolen})
    assert reuse.status_code == 401
    assert error_code(reuse) == "invalid_token"
    # The whole family is dead, including the token rotated from it.
    after = client.post("/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert after.status_code == 401
    assert all(r.revoked_at is not None for r in session.scalars(select(RefreshToken)))


def test_other_logins_survive_a_revoked_family(
    client: FlaskClient, household: CreditSubject
) -> None:
    phone_a = (farmer_login(client).json or {})["refresh_token"]
    phone_b = (farmer_login(client).json or {})["refresh_token"]
    client.post("/api/v1/auth/refresh", json={"refresh_token": phone_a})
    client.post("/api/v1/auth/refresh", json={"refresh_token": phone_a})  # reuse
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": phone_b}).status_code == 200


def test_access_token_is_not_a_refresh_token(client: FlaskClient, household: CreditSubject) -> None:
    access = (farmer_login(client).json or {})["access_token"]
    resp = client.post("/api/v1/auth/refresh", json={"refresh_token": access})
    assert resp.status_code == 401
    assert error_code(resp) == "invalid_token"


def test_signed_refresh_token_unknown_to_the_database_is_rejected(
    client: FlaskClient, household: CreditSubject, app: Flask
) -> None:
    with app.app_context():
        forged = tokens.encode(tokens.REFRESH, household.ref, 60, extra={"fam": "f" * 32})
    resp = client.post("/api/v1/auth/refresh", json={"refresh_token": forged.token})
    assert error_code(resp) == "invalid_token"


def test_refresh_after_the_household_is_revoked_fails(
    client: FlaskClient, session: Session, household: CreditSubject
) -> None:
    refresh = (farmer_login(client).json or {})["refresh_token"]
    session.execute(
        update(CreditSubject).where(CreditSubject.id == household.id).values(status="revoked")
    )
    session.commit()
    resp = client.post("/api/v1/auth/refresh", json={"refresh_token": refresh})
    assert error_code(resp) == "invalid_token"


@pytest.mark.parametrize("garbage", ["", "x", "a.b.c", 42, None])
def test_refresh_with_garbage(client: FlaskClient, garbage: object) -> None:
    resp = client.post("/api/v1/auth/refresh", json={"refresh_token": garbage})
    assert resp.status_code in (400, 401)
    assert error_code(resp) in ("validation_error", "invalid_token")


def test_logout_revokes_the_family(
    client: FlaskClient, session: Session, household: CreditSubject
) -> None:
    pair = farmer_login(client).json or {}
    logout = client.post("/api/v1/auth/logout", json={"refresh_token": pair["refresh_token"]})
    assert logout.status_code == 204
    resp = client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert error_code(resp) == "invalid_token"


# --- staff login -----------------------------------------------------------------------------


def test_staff_login_answers_an_admin_access_token(client: FlaskClient, session: Session) -> None:
    county = make_county(session)
    user = make_user(session, "township_admin", county.townships[0], username="zhangsan")
    resp = staff_login(client, "zhangsan")
    assert resp.status_code == 200, resp.json
    body = resp.json or {}
    assert body["expires_in"] == 900
    me = client.get("/api/v1/auth/admin/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert (me.json or {})["username"] == "zhangsan"
    assert (me.json or {})["role"] == "township_admin"
    assert (me.json or {})["id"] == user.id


def test_staff_wrong_password_and_unknown_user_look_alike(
    client: FlaskClient, session: Session
) -> None:
    county = make_county(session)
    make_user(session, "county_admin", county.county, username="lisi")
    wrong = staff_login(client, "lisi", "not-the-password")
    unknown = staff_login(client, "nobody-here", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json == unknown.json
    assert (wrong.json or {})["error"] == {
        "code": "invalid_credentials",
        "message": "用户名或密码错误",
        "details": {},
    }


def test_staff_lockout(client: FlaskClient, session: Session, clock: list[datetime]) -> None:
    county = make_county(session)
    make_user(session, "county_admin", county.county, username="wangwu")
    for _ in range(4):
        assert staff_login(client, "wangwu", "wrong-password").status_code == 401
    assert staff_login(client, "wangwu", "wrong-password").status_code == 429
    assert error_code(staff_login(client, "wangwu")) == "login_locked"
    clock[0] += timedelta(minutes=15, seconds=1)
    assert staff_login(client, "wangwu").status_code == 200


def test_inactive_staff_cannot_log_in(client: FlaskClient, session: Session) -> None:
    county = make_county(session)
    user = make_user(session, "county_admin", county.county, username="zhaoliu")
    session.execute(update(User).where(User.id == user.id).values(active=False))
    session.commit()
    assert error_code(staff_login(client, "zhaoliu")) == "invalid_credentials"


def test_deactivation_and_password_change_kill_staff_tokens(
    client: FlaskClient, session: Session
) -> None:
    county = make_county(session)
    user = make_user(session, "county_admin", county.county, username="sunqi")
    token = (staff_login(client, "sunqi").json or {})["access_token"]
    session.execute(
        update(User).where(User.id == user.id).values(password_hash=hash_password("a-new-password"))
    )
    session.commit()
    resp = client.get("/api/v1/auth/admin/me", headers=bearer(token))
    assert error_code(resp) == "invalid_token"
    token = (staff_login(client, "sunqi", "a-new-password").json or {})["access_token"]
    assert client.get("/api/v1/auth/admin/me", headers=bearer(token)).status_code == 200
    session.execute(update(User).where(User.id == user.id).values(active=False))
    session.commit()
    assert error_code(client.get("/api/v1/auth/admin/me", headers=bearer(token))) == "invalid_token"


# --- the guards: each rejects the other's tokens ---------------------------------------------


@pytest.fixture
def staff_token(client: FlaskClient, session: Session) -> str:
    county = make_county(session)
    make_user(session, "township_admin", county.townships[0], username="guard-staff")
    return str((staff_login(client, "guard-staff").json or {})["access_token"])


def test_staff_route_rejection_matrix(
    client: FlaskClient, household: CreditSubject, staff_token: str, app: Flask
) -> None:
    pair = farmer_login(client).json or {}
    # The staff token's own claims, re-sent unsigned with `alg: none`.
    none_alg = _unsigned_header() + "." + staff_token.split(".")[1] + "."
    cases = {
        "farmer access token": bearer(pair["access_token"]),
        "refresh token": bearer(pair["refresh_token"]),
        "garbage": bearer("not-a-token"),
        "alg none": bearer(none_alg),
        "other scheme": {"Authorization": f"Basic {staff_token}"},
        "empty bearer": {"Authorization": "Bearer "},
    }
    for name, headers in cases.items():
        resp = client.get("/api/v1/auth/admin/me", headers=headers)
        assert resp.status_code == 401, name
        assert error_code(resp) == "invalid_token", name
    missing = client.get("/api/v1/auth/admin/me")
    assert missing.status_code == 401
    assert error_code(missing) == "unauthorized"
    assert client.get("/api/v1/auth/admin/me", headers=bearer(staff_token)).status_code == 200


def test_invalid_token_message_in_both_languages(client: FlaskClient) -> None:
    zh = client.get("/api/v1/auth/admin/me", headers=bearer("x"))
    en = client.get("/api/v1/auth/admin/me", headers={**bearer("x"), "Accept-Language": "en"})
    assert (zh.json or {})["error"]["message"] == "登录凭证无效或已过期"
    assert (en.json or {})["error"]["message"] == "Invalid or expired token"
    missing = client.get("/api/v1/auth/admin/me", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert (missing.json or {})["error"]["message"] == "Login required"


@require_farmer
def _farmer_view() -> str:
    return str(g.subject.ref)


@require_staff("county_admin")
def _county_only_view() -> str:
    return str(g.user.username)


def _call_as(app: Flask, view: Any, headers: dict[str, str], method: str = "GET") -> Any:
    with app.test_request_context("/probe", method=method, headers=headers):
        return view()


def test_farmer_guard_rejection_matrix(
    client: FlaskClient, app: Flask, session: Session, household: CreditSubject, staff_token: str
) -> None:
    pair = farmer_login(client).json or {}
    assert _call_as(app, _farmer_view, bearer(pair["access_token"])) == household.ref
    expired = tokens.encode(
        tokens.FARMER_ACCESS, household.ref, 900, now=utcnow() - timedelta(hours=1)
    )
    for name, headers in {
        "admin token": bearer(staff_token),
        "refresh token": bearer(pair["refresh_token"]),
        "expired": bearer(expired.token),
        "garbage": bearer("garbage"),
        "no scheme": {"Authorization": pair["access_token"]},
    }.items():
        with pytest.raises(Unauthorized) as info:
            _call_as(app, _farmer_view, headers)
        assert info.value.code == "invalid_token", name
    with pytest.raises(Unauthorized) as info:
        _call_as(app, _farmer_view, {})
    assert info.value.code == "unauthorized"


def test_farmer_guard_refuses_revoked_but_admits_frozen(
    client: FlaskClient, app: Flask, session: Session, household: CreditSubject
) -> None:
    access = (farmer_login(client).json or {})["access_token"]
    session.execute(
        update(CreditSubject).where(CreditSubject.id == household.id).values(status="frozen")
    )
    session.commit()
    assert _call_as(app, _farmer_view, bearer(access)) == household.ref
    session.execute(
        update(CreditSubject).where(CreditSubject.id == household.id).values(status="revoked")
    )
    session.commit()
    with pytest.raises(Unauthorized) as info:
        _call_as(app, _farmer_view, bearer(access))
    assert info.value.code == "invalid_token"


def test_staff_guard_checks_the_role(
    client: FlaskClient, app: Flask, session: Session, staff_token: str
) -> None:
    with pytest.raises(Forbidden):
        _call_as(app, _county_only_view, bearer(staff_token))
    county = make_county(session)
    make_user(session, "county_admin", county.county, username="county-boss")
    token = (staff_login(client, "county-boss").json or {})["access_token"]
    assert _call_as(app, _county_only_view, bearer(token)) == "county-boss"


def test_staff_guard_with_session_cookie_needs_csrf_on_unsafe_methods(
    app: Flask, session: Session
) -> None:
    county = make_county(session)
    user = make_user(session, "county_admin", county.county)
    from mall.http.auth import start_staff_session

    with app.test_request_context("/probe", method="POST"):
        start_staff_session(user)
        with pytest.raises(ValidationFailed) as info:
            _county_only_view()
        assert info.value.code == "csrf_failed"
    with app.test_request_context("/probe", method="GET"):
        start_staff_session(user)
        assert _county_only_view() == user.username


def test_openapi_declares_bearer_security(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").json or {}
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    assert spec["paths"]["/api/v1/auth/admin/me"]["get"]["security"] == [{"bearerAuth": []}]
    assert "/api/v1/auth/farmer/login" in spec["paths"]
    assert "/api/v1/auth/refresh" in spec["paths"]
