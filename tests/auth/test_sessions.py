"""Ending a household's logins (mall/subjects/logins.py): a PIN change, an admin PIN reset, a lost
card, a freeze or revocation and a logout end every API login (refresh families and their
access tokens, at once, not when the 15 minutes run out) and every /m/ page session of the
household. The household acting from one device keeps that device's login, given anew.

Each trigger goes through its real entry point (farmer API, farmer pages, admin pages, staff
API, the ratings service); the live server repeats the main scenario over HTTP in
tests/e2e/test_sessions_live.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from mall.auth import tokens
from mall.auth.services import issue_farmer_tokens
from mall.codes.services import verify_code
from mall.errors import Forbidden
from mall.farmer.pages import SESSION_GEN
from mall.ratings import services as ratings
from mall.subjects.logins import RefreshToken, end_household_sessions
from mall.subjects.models import CreditSubject
from tests.admin.pages_helpers import login_as, post
from tests.auth.client import FreshRequestClient, fresh_client
from tests.factories import PIN, make_user
from tests.farmer.conftest import PHONE, Farm, effective_rating, make_farm
from tests.helpers import staff_headers

NEW_PIN = "246813"


@pytest.fixture
def farm(session: Session) -> Farm:
    farm = make_farm(session)
    session.commit()
    return farm


@pytest.fixture
def client(app: Flask, session: Session) -> FreshRequestClient:
    return fresh_client(app)


def api_login(client: FreshRequestClient, pin: str = PIN) -> dict[str, Any]:
    resp = client.post("/api/v1/auth/farmer/login", json={"phone": PHONE, "pin": pin})
    assert resp.status_code == 200, resp.json
    pair: dict[str, Any] = resp.json or {}
    return pair


def bearer(pair: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


def code_status(client: FreshRequestClient, pair: dict[str, Any]) -> int:
    """What the access token gets at /me/code (the dynamic code that pays without a PIN)."""
    return client.get("/api/v1/me/code", headers=bearer(pair)).status_code


def refresh(client: FreshRequestClient, pair: dict[str, Any]) -> TestResponse:
    return client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})


def assert_ended(client: FreshRequestClient, pair: dict[str, Any]) -> None:
    """Both halves of a login are refused: the access token at once, the refresh token too."""
    resp = client.get("/api/v1/me/code", headers=bearer(pair))
    assert (resp.status_code, (resp.json or {})["error"]["code"]) == (401, "invalid_token")
    resp = refresh(client, pair)
    assert (resp.status_code, (resp.json or {})["error"]["code"]) == (401, "invalid_token")


def assert_alive(client: FreshRequestClient, pair: dict[str, Any]) -> None:
    assert client.get("/api/v1/me", headers=bearer(pair)).status_code == 200
    assert refresh(client, pair).status_code == 200


def page_csrf(resp: TestResponse) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', resp.get_data(as_text=True))
    assert found, "no CSRF token on the page"
    return found.group(1)


def page_login(client: FreshRequestClient, pin: str = PIN) -> None:
    token = page_csrf(client.get("/m/login"))
    resp = client.post("/m/login", data={"phone": PHONE, "pin": pin, "csrf_token": token})
    assert resp.status_code == 302


def page_logged_in(client: FreshRequestClient) -> bool:
    return client.get("/m/").status_code == 200


def live_refresh_rows(session: Session, subject: CreditSubject) -> int:
    """Refresh tokens of the household that the table would still exchange."""
    rows = session.scalars(
        select(RefreshToken)
        .where(
            RefreshToken.subject_id == subject.id,
            RefreshToken.revoked_at.is_(None),
            RefreshToken.used_at.is_(None),
        )
        .execution_options(populate_existing=True)
    ).all()
    return len(rows)


# --- the domain function ---------------------------------------------------------------------


def test_end_household_sessions_moves_the_generation_and_revokes_only_that_household(
    session: Session, farm: Farm
) -> None:
    mine = issue_farmer_tokens(session, farm.household)
    theirs = issue_farmer_tokens(session, farm.neighbour)
    before = farm.household.session_gen
    end_household_sessions(session, farm.household, "pin_changed")
    end_household_sessions(session, farm.household, "logout")
    assert farm.household.session_gen == before + 2
    assert farm.neighbour.session_gen == 0
    rows = {
        r.jti: r.revoked_at
        for r in session.scalars(select(RefreshToken).execution_options(populate_existing=True))
    }
    assert rows[mine.refresh_jti] is not None
    assert rows[theirs.refresh_jti] is None
    with pytest.raises(ValueError, match="unknown reason"):
        end_household_sessions(session, farm.household, "because")


# --- the main scenario: a PIN change through the API -------------------------------------------


def test_pin_change_ends_every_other_login_at_once_and_renews_this_one(
    client: FreshRequestClient, session: Session, farm: Farm
) -> None:
    first, second = api_login(client), api_login(client)
    resp = client.put(
        "/api/v1/me/pin", json={"old_pin": PIN, "new_pin": NEW_PIN}, headers=bearer(first)
    )
    assert resp.status_code == 200, resp.json
    renewed: dict[str, Any] = resp.json or {}
    # The other login: its access token is refused now, not in 15 minutes, and so is its
    # refresh token (and no rotation brings it back).
    assert_ended(client, second)
    # The device that changed the PIN: its old pair is ended too, its new pair works.
    assert_ended(client, first)
    assert code_status(client, renewed) == 200
    assert_alive(client, renewed)
    assert live_refresh_rows(session, farm.household) == 1  # the renewed pair's rotation
    # the old PIN is gone, the new one logs in
    bad = client.post("/api/v1/auth/farmer/login", json={"phone": PHONE, "pin": PIN})
    assert bad.status_code == 401
    assert_alive(client, api_login(client, NEW_PIN))


def test_a_refused_pin_change_ends_nothing(client: FreshRequestClient, farm: Farm) -> None:
    first, second = api_login(client), api_login(client)
    for new_pin, status in ((NEW_PIN, 403), ("111111", 400)):  # wrong old PIN, weak new PIN
        old = "000001" if status == 403 else PIN
        resp = client.put(
            "/api/v1/me/pin", json={"old_pin": old, "new_pin": new_pin}, headers=bearer(first)
        )
        assert resp.status_code == status
    assert_alive(client, first)
    assert_alive(client, second)


def test_pin_change_through_the_api_ends_the_page_sessions(app: Flask, farm: Farm) -> None:
    phone, browser = fresh_client(app), fresh_client(app)
    page_login(browser)
    pair = api_login(phone)
    resp = phone.put(
        "/api/v1/me/pin", json={"old_pin": PIN, "new_pin": NEW_PIN}, headers=bearer(pair)
    )
    assert resp.status_code == 200
    assert not page_logged_in(browser)


def test_pin_change_on_the_page_ends_the_api_logins_and_keeps_the_page(
    app: Flask, farm: Farm
) -> None:
    phone, browser = fresh_client(app), fresh_client(app)
    pair = api_login(phone)
    page_login(browser)
    token = page_csrf(browser.get("/m/pin"))
    form = {"old_pin": PIN, "new_pin": NEW_PIN, "new_pin2": NEW_PIN, "csrf_token": token}
    assert browser.post("/m/pin", data=form).status_code == 302
    assert page_logged_in(browser)
    assert_ended(phone, pair)


# --- admin PIN reset -------------------------------------------------------------------------


def test_admin_pin_reset_page_ends_every_login(app: Flask, session: Session, farm: Farm) -> None:
    phone, browser, admin = fresh_client(app), fresh_client(app), fresh_client(app)
    pair = api_login(phone)
    page_login(browser)
    town_admin = make_user(session, "township_admin", farm.county.townships[0])
    session.commit()
    login_as(admin, town_admin)
    # Unlocking alone changes no credential: the logins stay.
    resp = post(admin, f"/admin/households/{farm.household.ref}/pin", {"confirm": "y"})
    assert resp.status_code == 302
    assert code_status(phone, pair) == 200
    assert page_logged_in(browser)
    # A new PIN ends them all.
    resp = post(
        admin,
        f"/admin/households/{farm.household.ref}/pin",
        {"new_pin": NEW_PIN, "confirm": "y"},
    )
    assert resp.status_code == 302
    assert_ended(phone, pair)
    assert not page_logged_in(browser)
    assert_alive(phone, api_login(phone, NEW_PIN))


def test_the_staff_api_has_no_pin_reset_to_forget(app: Flask) -> None:
    """The admin PIN reset exists on the admin pages only; should the staff API gain one, it
    must end the household's logins too (through mall.codes.services.admin_reset_pin)."""
    rules = [r.rule for r in app.url_map.iter_rules() if r.rule.startswith("/api/v1/admin/")]
    assert rules
    pin_routes = [r for r in rules if any("pin" in part.split("-") for part in r.split("/"))]
    assert pin_routes == []


# --- lost card -------------------------------------------------------------------------------


def test_lost_card_through_the_api_ends_the_other_logins(
    app: Flask, session: Session, farm: Farm
) -> None:
    phone_a, phone_b, browser = fresh_client(app), fresh_client(app), fresh_client(app)
    first, second = api_login(phone_a), api_login(phone_b)
    page_login(browser)
    resp = phone_a.post("/api/v1/me/card/report-lost", headers=bearer(first))
    assert resp.status_code == 200
    body: dict[str, Any] = resp.json or {}
    assert body["status"] == "revoked"
    assert_ended(phone_b, second)
    assert_ended(phone_a, first)
    assert not page_logged_in(browser)
    assert_alive(phone_a, body)  # the reporting device's new login


def test_lost_card_on_the_page_ends_the_api_logins_and_keeps_the_page(
    app: Flask, farm: Farm
) -> None:
    phone, browser = fresh_client(app), fresh_client(app)
    pair = api_login(phone)
    page_login(browser)
    token = page_csrf(browser.get("/m/card-lost"))
    done = browser.post("/m/card-lost", data={"csrf_token": token, "confirm": "yes"})
    assert "已挂失" in done.get_data(as_text=True)
    assert page_logged_in(browser)
    assert_ended(phone, pair)


# --- freeze and revocation -------------------------------------------------------------------


def _freeze_through_the_staff_api(client: FreshRequestClient, admin: Any, ref: str) -> None:
    resp = client.post(
        f"/api/v1/admin/households/{ref}/status",
        json={"status": "frozen", "reason": "拖欠"},
        headers=staff_headers(admin),
    )
    assert resp.status_code == 200, resp.json


def _freeze_on_the_admin_page(client: FreshRequestClient, admin: Any, ref: str) -> None:
    login_as(client, admin)
    resp = post(
        client,
        f"/admin/households/{ref}/status",
        {"status": "frozen", "reason": "拖欠", "confirm": "y"},
    )
    assert resp.status_code == 302


@pytest.mark.parametrize("freeze", [_freeze_through_the_staff_api, _freeze_on_the_admin_page])
def test_freeze_ends_every_login_and_the_codes_obtained_before(
    app: Flask, session: Session, farm: Farm, freeze: Any
) -> None:
    phone, browser, staff = fresh_client(app), fresh_client(app), fresh_client(app)
    pair = api_login(phone)
    page_login(browser)
    code = (phone.get("/api/v1/me/code", headers=bearer(pair)).json or {})["code"]
    town_admin = make_user(session, "township_admin", farm.county.townships[0])
    session.commit()
    freeze(staff, town_admin, farm.household.ref)
    assert_ended(phone, pair)
    assert not page_logged_in(browser)
    # the code fetched before the freeze does not pay
    with pytest.raises(Forbidden) as info:
        verify_code(session, code)
    assert info.value.code == "holder_suspended"
    # a frozen household may log in again to read its status, but gets no code
    again = api_login(phone)
    me = phone.get("/api/v1/me", headers=bearer(again))
    assert (me.status_code, (me.json or {})["status"]) == (200, "frozen")
    assert code_status(phone, again) == 403


def test_a_change_to_the_same_status_ends_nothing(
    client: FreshRequestClient, session: Session, farm: Farm
) -> None:
    admin = make_user(session, "township_admin", farm.county.townships[0])
    session.commit()
    pair = api_login(client)
    resp = client.post(
        f"/api/v1/admin/households/{farm.household.ref}/status",
        json={"status": "active", "reason": "核实"},
        headers=staff_headers(admin),
    )
    assert resp.status_code == 200
    assert_alive(client, pair)


def test_revoking_the_household_ends_every_login_for_good(
    client: FreshRequestClient, session: Session, farm: Farm
) -> None:
    admin = make_user(session, "township_admin", farm.county.townships[0])
    session.commit()
    pair = api_login(client)
    resp = client.post(
        f"/api/v1/admin/households/{farm.household.ref}/status",
        json={"status": "revoked", "reason": "注销"},
        headers=staff_headers(admin),
    )
    assert resp.status_code == 200
    assert_ended(client, pair)
    assert live_refresh_rows(session, farm.household) == 0
    resp = client.post("/api/v1/auth/farmer/login", json={"phone": PHONE, "pin": PIN})
    assert resp.status_code == 401


def test_revoking_the_rating_freezes_and_ends_every_login(
    client: FreshRequestClient, session: Session, farm: Farm
) -> None:
    effective_rating(session, farm.household)
    admin = make_user(session, "township_admin", farm.county.townships[0])
    session.commit()
    pair = api_login(client)
    ratings.revoke(session, admin, farm.household, "失信")
    session.commit()
    assert farm.household.status == "frozen"
    assert_ended(client, pair)


# --- logout ----------------------------------------------------------------------------------


def test_logout_ends_every_login_of_the_household(app: Flask, farm: Farm) -> None:
    phone_a, phone_b, browser = fresh_client(app), fresh_client(app), fresh_client(app)
    first, second = api_login(phone_a), api_login(phone_b)
    page_login(browser)
    resp = phone_a.post("/api/v1/auth/logout", json={"refresh_token": first["refresh_token"]})
    assert resp.status_code == 204
    assert_ended(phone_a, first)  # this device's access token too, not only its refresh
    assert_ended(phone_b, second)
    assert not page_logged_in(browser)
    assert_alive(phone_a, api_login(phone_a))


def test_a_dead_token_cannot_log_the_household_out_again(
    client: FreshRequestClient, farm: Farm
) -> None:
    old = api_login(client)
    first = client.post("/api/v1/auth/logout", json={"refresh_token": old["refresh_token"]})
    assert first.status_code == 204
    current = api_login(client)
    again = client.post("/api/v1/auth/logout", json={"refresh_token": old["refresh_token"]})
    assert again.status_code == 204  # logging out twice is no error...
    assert_alive(client, current)  # ...and ends nothing the second time


def test_page_logout_ends_the_api_logins(app: Flask, farm: Farm) -> None:
    phone, browser = fresh_client(app), fresh_client(app)
    pair = api_login(phone)
    page_login(browser)
    token = page_csrf(browser.get("/m/"))
    assert browser.post("/m/logout", data={"csrf_token": token}).status_code == 302
    assert not page_logged_in(browser)
    assert_ended(phone, pair)


# --- what carries the generation -------------------------------------------------------------


def test_tokens_and_page_sessions_without_a_generation_are_refused(
    client: FreshRequestClient, session: Session, app: Flask, farm: Farm
) -> None:
    """Issued before generations existed (or forged with the key): refused, so a login that
    outlived an earlier PIN change does not come back with the upgrade."""
    ref = farm.household.ref
    access = tokens.encode(tokens.FARMER_ACCESS, ref, 900).token
    resp = client.get("/api/v1/me", headers={"Authorization": f"Bearer {access}"})
    assert resp.status_code == 401
    pair = issue_farmer_tokens(session, farm.household)
    row = session.scalar(select(RefreshToken).where(RefreshToken.jti == pair.refresh_jti))
    assert row is not None
    legacy = tokens.encode(tokens.REFRESH, ref, 900, extra={"fam": row.family_id})
    row.jti = tokens.decode(legacy.token, tokens.REFRESH)["jti"]
    session.commit()
    resp = client.post("/api/v1/auth/refresh", json={"refresh_token": legacy.token})
    assert resp.status_code == 401
    for bad in (None, "0", True, 0.0):
        page_login(client)
        with client.session_transaction() as cookie:
            if bad is None:
                del cookie[SESSION_GEN]
            else:
                cookie[SESSION_GEN] = bad
        assert not page_logged_in(client), bad


def test_a_login_written_after_the_end_still_carries_the_old_generation(
    client: FreshRequestClient, session: Session, farm: Farm
) -> None:
    """A login that read the household just before the end committed writes its refresh row
    after the end revoked the rows: the generation refuses it all the same."""
    pair = api_login(client)
    session.execute(
        update(CreditSubject)
        .where(CreditSubject.id == farm.household.id)
        .values(session_gen=CreditSubject.session_gen + 1)
    )
    session.commit()
    assert live_refresh_rows(session, farm.household) == 1  # the row was not revoked
    assert_ended(client, pair)
    assert live_refresh_rows(session, farm.household) == 0  # and now it is
