"""The farmer's mobile pages: login with CSRF, every page, language, headers, weight."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from tests.auth.client import FreshRequestClient, fresh_client
from tests.factories import PIN
from tests.farmer.conftest import (
    PHONE,
    RATED_ON,
    Calendar,
    Farm,
    effective_rating,
    rating_on_notice,
)

PAGES = [
    "/m/",
    "/m/code",
    "/m/history",
    "/m/benefits",
    "/m/catalog",
    "/m/pin",
    "/m/card-lost",
    "/m/rating",
]


@pytest.fixture
def client(app: Flask, session: Session) -> FreshRequestClient:
    return fresh_client(app)


def csrf_token(resp: TestResponse) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', resp.get_data(as_text=True))
    assert found, "no CSRF token on the page"
    return found.group(1)


def login(client: FreshRequestClient, phone: str = PHONE, pin: str = PIN) -> TestResponse:
    token = csrf_token(client.get("/m/login"))
    return client.post("/m/login", data={"phone": phone, "pin": pin, "csrf_token": token})


@pytest.mark.parametrize("path", PAGES)
def test_pages_need_a_login(client: FreshRequestClient, farm: Farm, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/m/login")


def test_login_needs_csrf(client: FreshRequestClient, farm: Farm) -> None:
    resp = client.post("/m/login", data={"phone": PHONE, "pin": PIN})
    assert resp.status_code == 400
    assert "页面已过期" in resp.get_data(as_text=True)


def test_wrong_pin_and_lockout(client: FreshRequestClient, farm: Farm) -> None:
    statuses = [login(client, pin="000001").status_code for _ in range(6)]
    assert statuses == [401] * 4 + [429, 429]  # the fifth failure locks, as the API does


def test_login_and_every_page(client: FreshRequestClient, farm: Farm) -> None:
    resp = login(client)
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/m/"
    for path in PAGES:
        page = client.get(path)
        assert page.status_code == 200, path
        assert page.headers["Cache-Control"] == "no-store"
        assert "default-src 'none'" in page.headers["Content-Security-Policy"]
        assert page.headers["X-Frame-Options"] == "DENY"
        assert len(page.data) < 50_000 or path == "/m/code", (path, len(page.data))
    home = client.get("/m/").get_data(as_text=True)
    assert "三星级" in home
    assert "1193.94" in home  # integrity money in yuan, two decimals
    assert ">50<" in home  # points
    history = client.get("/m/history").get_data(as_text=True)
    assert "龙场信用超市" in history
    assert "-6.06" in history
    benefits = client.get("/m/benefits").get_data(as_text=True)
    assert "住院免押金" in benefits
    assert "门票八折" not in benefits  # four stars and up only


def test_english(client: FreshRequestClient, farm: Farm) -> None:
    login(client)
    page = client.get("/m/?lang=en").get_data(as_text=True)
    assert 'lang="en"' in page
    assert "Show my credit code" in page
    assert "3 stars" in page


def test_code_page_and_refresh(client: FreshRequestClient, farm: Farm) -> None:
    login(client)
    page = client.get("/m/code").get_data(as_text=True)
    assert 'src="data:image/png;base64,' in page
    data = client.get("/m/code.json").json or {}
    assert data["image"].startswith("data:image/png;base64,")
    assert 0 < data["refresh_in"] < data["expires_in"] <= 60
    other = client.get("/m/code.json").json or {}
    assert other["code"] != data["code"]


def test_code_json_without_login(client: FreshRequestClient, farm: Farm) -> None:
    resp = client.get("/m/code.json")
    assert resp.status_code == 401
    assert (resp.json or {})["error"]["code"] == "unauthorized"


def test_history_more(client: FreshRequestClient, session: Session, farm: Farm) -> None:
    from mall.ledger import Leg, household_wallets, post_entry, system_account
    from mall.ledger.models import POINTS, POINTS_FUND

    town = farm.county.townships[0].id
    wallets = household_wallets(session, farm.household)
    fund = system_account(session, town, POINTS_FUND, POINTS)
    for i in range(25):
        post_entry(
            session,
            township_id=town,
            kind="points_issued",
            legs=[Leg(fund.id, -1), Leg(wallets.points.id, 1)],
            actor="user:clerk",
            reason=f"打扫卫生{i}",
        )
    login(client)
    first = client.get("/m/history").get_data(as_text=True)
    assert first.count('class="tx"') == 20
    more = re.search(r'id="more" class="btn btn-plain" href="([^"]+)"', first)
    assert more
    part = client.get(more.group(1).replace("&amp;", "&") + "&partial=1")
    assert part.get_data(as_text=True).count('class="tx"') == 8
    assert part.headers["X-Next-Url"] == ""


def test_change_pin_page(client: FreshRequestClient, farm: Farm) -> None:
    login(client)
    token = csrf_token(client.get("/m/pin"))
    form = {"old_pin": PIN, "new_pin": "111111", "new_pin2": "111111", "csrf_token": token}
    weak = client.post("/m/pin", data=form)
    assert weak.status_code == 400
    assert "不能全部相同" in weak.get_data(as_text=True)
    form |= {"old_pin": "000001", "new_pin": "246813", "new_pin2": "246813"}
    wrong = client.post("/m/pin", data=form)
    assert wrong.status_code == 403
    assert "还可以再试4次" in wrong.get_data(as_text=True)
    form |= {"old_pin": PIN}
    ok = client.post("/m/pin", data=form)
    assert ok.status_code == 302
    assert client.get("/m/").status_code == 200  # this session stays


def test_pin_change_ends_other_sessions(app: Flask, farm: Farm) -> None:
    phone_a, phone_b = fresh_client(app), fresh_client(app)
    login(phone_a)
    login(phone_b)
    token = csrf_token(phone_a.get("/m/pin"))
    phone_a.post(
        "/m/pin",
        data={"old_pin": PIN, "new_pin": "246813", "new_pin2": "246813", "csrf_token": token},
    )
    assert phone_a.get("/m/").status_code == 200
    assert phone_b.get("/m/").status_code == 302


def test_report_lost_with_confirmation(client: FreshRequestClient, farm: Farm) -> None:
    login(client)
    page = client.get("/m/card-lost")
    assert "确认挂失" in page.get_data(as_text=True)
    token = csrf_token(page)
    unconfirmed = client.post("/m/card-lost", data={"csrf_token": token})
    assert unconfirmed.status_code == 302
    done = client.post("/m/card-lost", data={"csrf_token": token, "confirm": "yes"})
    assert "已挂失" in done.get_data(as_text=True)
    assert "没有在用的诚信卡" in client.get("/m/card-lost").get_data(as_text=True)


def test_logout(client: FreshRequestClient, farm: Farm) -> None:
    login(client)
    token = csrf_token(client.get("/m/"))
    assert client.post("/m/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/m/").status_code == 302


def test_open_redirect_refused(client: FreshRequestClient, farm: Farm) -> None:
    token = csrf_token(client.get("/m/login"))
    resp = client.post(
        "/m/login?next=//evil.example/x", data={"phone": PHONE, "pin": PIN, "csrf_token": token}
    )
    assert resp.headers["Location"] == "/m/"


# ---------------------------------------------------------------- rating and appeal


def test_rating_page_files_an_appeal(
    client: FreshRequestClient, session: Session, farm: Farm, calendar: Calendar
) -> None:
    rating = rating_on_notice(session, farm.household)
    calendar.set(RATED_ON + timedelta(days=2))
    login(client)
    assert "我的评级与复议" in client.get("/m/").get_data(as_text=True)
    page = client.get("/m/rating")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "公示中" in text
    assert '<span class="date">2026-03-02</span> 至 <span class="date">2026-03-08</span>' in text
    assert "截止日期 2026-03-18" in text
    assert 'name="grounds"' in text
    assert "复议理由" in text
    form = {"rating_id": str(rating.id), "grounds": "家里有人参军,没有加分"}
    no_csrf = client.post("/m/rating", data=form)
    assert no_csrf.status_code == 400
    assert "页面已过期" in no_csrf.get_data(as_text=True)
    session.refresh(rating)
    assert rating.status == "notice"
    done = client.post("/m/rating", data={**form, "csrf_token": csrf_token(page)})
    assert done.status_code == 302
    assert done.headers["Location"] == "/m/rating"
    after = client.get("/m/rating").get_data(as_text=True)
    assert "复议申请已提交。村里将在2026-03-09前答复。" in after  # the flash
    assert "复议中" in after
    assert "家里有人参军,没有加分" in after
    assert "等待村里答复" in after
    assert 'name="grounds"' not in after  # appealed: no second appeal
    session.refresh(rating)
    assert rating.status == "appealed"


def test_rating_page_shows_errors_on_the_page(
    client: FreshRequestClient, session: Session, farm: Farm, calendar: Calendar
) -> None:
    rating = rating_on_notice(session, farm.household)
    theirs = rating_on_notice(session, farm.neighbour)
    login(client)
    token = csrf_token(client.get("/m/rating"))
    empty = client.post(
        "/m/rating", data={"rating_id": str(rating.id), "grounds": "  ", "csrf_token": token}
    )
    assert empty.status_code == 400
    assert "请填写复议理由" in empty.get_data(as_text=True)
    long = client.post(
        "/m/rating", data={"rating_id": str(rating.id), "grounds": "议" * 1001, "csrf_token": token}
    )
    assert long.status_code == 400
    assert "复议理由不能超过1000字" in long.get_data(as_text=True)
    assert "议" * 1001 in long.get_data(as_text=True)  # what was typed is kept
    nul = client.post(
        "/m/rating", data={"rating_id": str(rating.id), "grounds": "a\x00b", "csrf_token": token}
    )
    assert nul.status_code == 400
    assert "无法保存的字符" in nul.get_data(as_text=True)
    for other in (str(theirs.id), "abc", "", "9" * 30):
        resp = client.post(
            "/m/rating", data={"rating_id": other, "grounds": "理由", "csrf_token": token}
        )
        assert resp.status_code == 404, other
        assert "没有找到这条评级" in resp.get_data(as_text=True)
    session.refresh(theirs)
    assert theirs.status == "notice"


def test_rating_page_after_the_window_has_no_form(
    client: FreshRequestClient, session: Session, farm: Farm, calendar: Calendar
) -> None:
    rating = effective_rating(session, farm.household)
    calendar.set(rating.appeal_until)  # type: ignore[arg-type]
    login(client)
    open_page = client.get("/m/rating")
    assert "生效" in open_page.get_data(as_text=True)
    assert 'name="grounds"' in open_page.get_data(as_text=True)  # the last day to appeal
    token = csrf_token(open_page)
    calendar.set(rating.appeal_until + timedelta(days=1))  # type: ignore[operator]
    page = client.get("/m/rating")
    text = page.get_data(as_text=True)
    assert "生效日期" in text
    assert 'name="grounds"' not in text
    resp = client.post(
        "/m/rating",
        data={"rating_id": str(rating.id), "grounds": "理由", "csrf_token": token},
    )
    assert resp.status_code == 409
    assert "不能申请复议" in resp.get_data(as_text=True)


def test_rating_page_in_english(
    client: FreshRequestClient, session: Session, farm: Farm, calendar: Calendar
) -> None:
    rating_on_notice(session, farm.household)
    login(client)
    text = client.get("/m/rating?lang=en").get_data(as_text=True)
    assert "My rating and appeals" in text
    assert "On notice" in text
    assert "File the appeal" in text
