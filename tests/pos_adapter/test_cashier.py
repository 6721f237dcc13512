"""The cashier web terminal at /cashier, through the Flask test client."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from mall.auth import throttle
from mall.codes.services import card_code, issue_card
from mall.errors import ValidationFailed
from mall.ledger.models import Entry
from mall.partners.models import Terminal
from mall.payments.models import Payment
from mall.regions.models import Region
from mall.users.models import User
from pos_adapter.cashier.auth import WEB_TERMINAL_NAME
from pos_adapter.cashier.money import parse_yuan
from tests.auth.client import fresh_client
from tests.factories import PASSWORD, PIN, make_user
from tests.pos_adapter.conftest import World


@dataclass
class Cashier:
    client: FlaskClient
    user: User


def csrf_token(resp: TestResponse) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', resp.get_data(as_text=True))
    assert found, resp.get_data(as_text=True)[:500]
    return found.group(1)


def idem_key(resp: TestResponse) -> str:
    found = re.search(r'name="idempotency_key" value="([^"]+)"', resp.get_data(as_text=True))
    assert found
    return found.group(1)


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> TestResponse:
    token = csrf_token(client.get("/cashier/login"))
    return client.post(
        "/cashier/login", data={"username": username, "password": password, "csrf_token": token}
    )


def township(session: Session, world: World) -> Region:
    region = session.get(Region, world.partner.township_id)
    assert region is not None
    return region


@pytest.fixture
def cashier_user(session: Session, world: World) -> User:
    user = make_user(session, "cashier", township(session, world), partner=world.partner)
    session.commit()
    return user


@pytest.fixture
def cashier(client: FlaskClient, cashier_user: User) -> Cashier:
    resp = login(client, cashier_user.username)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return Cashier(client, cashier_user)


def pay_form(cashier: Cashier, code: str, amount: str, **extra: str) -> dict[str, str]:
    page = cashier.client.get("/cashier/")
    assert page.status_code == 200
    return {
        "csrf_token": csrf_token(page),
        "idempotency_key": idem_key(page),
        "code": code,
        "amount": amount,
        "use_integrity": "1",
        **extra,
    }


def json_post(cashier: Cashier, path: str, body: dict[str, object]) -> TestResponse:
    token = csrf_token(cashier.client.get("/cashier/"))
    return cashier.client.post(path, json=body, headers={"X-CSRFToken": token})


def count_payments(session: Session) -> int:
    return int(session.scalar(select(func.count(Payment.id))) or 0)


# ---------------------------------------------------------------- amounts


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("12.3", 1230),
        ("12", 1200),
        ("12.30", 1230),
        ("0.05", 5),
        (" 7.5 ", 750),
        ("¥8", 800),
        ("１２.３", 1230),
        ("1000000", 100_000_000),
    ],
)
def test_amounts_parse_exactly(text: str, fen: int) -> None:
    assert parse_yuan(text) == fen


@pytest.mark.parametrize(
    "text", ["12.345", "-1", "abc", "1e3", "1,000", "12.", ".5", "+3", "1000000.01", "NaN", ""]
)
def test_bad_amounts_are_refused(text: str) -> None:
    with pytest.raises(ValidationFailed):
        parse_yuan(text)


def test_empty_amount_may_be_allowed() -> None:
    assert parse_yuan("  ", allow_empty=True) is None


# ---------------------------------------------------------------- login


def test_login_opens_the_till_and_creates_the_web_terminal(
    session: Session, client: FlaskClient, cashier_user: User, world: World
) -> None:
    assert client.get("/cashier/").status_code == 302
    resp = login(client, cashier_user.username)
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith("/cashier/")
    page = client.get("/cashier/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert world.partner.name in html
    assert 'id="code-input"' in html
    assert "autofocus" in html
    assert "毛巾" in html  # the partner's catalogue
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    terminals = session.scalars(
        select(Terminal).where(
            Terminal.partner_id == world.partner.id, Terminal.name == WEB_TERMINAL_NAME
        )
    ).all()
    assert len(terminals) == 1
    # a second login reuses it
    client.post("/cashier/logout", data={"csrf_token": csrf_token(page)})
    assert login(client, cashier_user.username).status_code == 302
    assert (
        session.scalar(
            select(func.count(Terminal.id)).where(
                Terminal.partner_id == world.partner.id, Terminal.name == WEB_TERMINAL_NAME
            )
        )
        == 1
    )


def test_login_english(client: FlaskClient) -> None:
    html = client.get("/cashier/login?lang=en").get_data(as_text=True)
    assert "Cashier login" in html
    assert 'lang="en"' in html


def test_wrong_password_and_lockout(
    client: FlaskClient, cashier_user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(throttle.MAX_FAILURES - 1):
        resp = login(client, cashier_user.username, "wrong-password")
        assert resp.status_code == 401
        assert "用户名或密码错误" in resp.get_data(as_text=True)
    resp = login(client, cashier_user.username, "wrong-password")
    assert resp.status_code == 429
    # locked: even the right password is refused until the lock runs out
    resp = login(client, cashier_user.username)
    assert resp.status_code == 429
    assert "登录失败次数过多" in resp.get_data(as_text=True)


def test_other_staff_roles_cannot_work_the_till(
    session: Session, client: FlaskClient, world: World
) -> None:
    clerk = make_user(session, "township_admin", township(session, world))
    session.commit()
    resp = login(client, clerk.username)
    assert resp.status_code == 403
    assert "收银员" in resp.get_data(as_text=True)
    assert client.get("/cashier/").status_code == 302


def test_disabled_account_loses_its_session(session: Session, cashier: Cashier) -> None:
    cashier.user.active = False
    session.commit()
    assert cashier.client.get("/cashier/").status_code == 302


def test_cashier_session_does_not_open_the_admin(cashier: Cashier) -> None:
    resp = cashier.client.get("/admin/")
    assert resp.status_code == 302
    assert "/admin/login" in resp.headers["Location"]


# ---------------------------------------------------------------- CSRF


def test_posts_need_the_csrf_token(cashier: Cashier, world: World, session: Session) -> None:
    form = pay_form(cashier, world.code(session), "10")
    del form["csrf_token"]
    resp = cashier.client.post("/cashier/pay", data=form)
    assert resp.status_code == 400
    assert count_payments(session) == 0
    resp = cashier.client.post("/cashier/scan", json={"code": world.code(session)})
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] == "csrf_failed"


def test_login_needs_the_csrf_token(client: FlaskClient, cashier_user: User) -> None:
    resp = client.post(
        "/cashier/login", data={"username": cashier_user.username, "password": PASSWORD}
    )
    assert resp.status_code == 400


def test_json_endpoints_need_a_cashier(client: FlaskClient) -> None:
    token = csrf_token(client.get("/cashier/login"))
    resp = client.post("/cashier/scan", json={"code": "x"}, headers={"X-CSRFToken": token})
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "unauthorized"


# ---------------------------------------------------------------- scan and quote


def test_scan_shows_holder_level_balances(cashier: Cashier, world: World, session: Session) -> None:
    resp = json_post(cashier, "/cashier/scan", {"code": world.code(session)})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["holder"]["display_name"] == world.household.name_masked
    assert body["holder"]["level"]["rank"] == 3
    assert body["wallet"] == {"integrity_fen": 120_000, "integrity_yuan": "1200.00", "points": 1000}
    assert body["discount_percent"] == "6%"
    assert body["pin_required"] is False


def test_scan_refuses_garbage_in_the_envelope(cashier: Cashier) -> None:
    resp = json_post(cashier, "/cashier/scan", {"code": "not-a-code"})
    assert resp.status_code == 422
    assert resp.get_json()["error"]["code"] == "invalid_code"


def test_quote_is_live_and_exact(cashier: Cashier, world: World, session: Session) -> None:
    body = {"code": world.code(session), "amount": "12.3", "items": [{"sku": "TOWEL", "qty": "2"}]}
    resp = json_post(cashier, "/cashier/quote", body)
    assert resp.status_code == 200, resp.get_json()
    q = resp.get_json()
    assert q["amount_fen"] == 1230
    assert q["integrity_discount_fen"] == 73  # floor(1230 * 6%)
    assert q["cash_due_yuan"] == "11.57"
    assert q["points_cost"] == 60
    bad = json_post(cashier, "/cashier/quote", {"code": body["code"], "amount": "12.345"})
    assert bad.status_code == 400
    assert bad.get_json()["error"]["code"] == "validation_error"


# ---------------------------------------------------------------- paying


def test_pay_then_receipt(cashier: Cashier, world: World, session: Session) -> None:
    form = pay_form(cashier, world.code(session), "100", item_sku="TOWEL", item_qty="1")
    resp = cashier.client.post("/cashier/pay", data=form)
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    payment = session.scalars(select(Payment)).one()
    assert payment.cashier_user_id == cashier.user.id
    terminal = session.get(Terminal, payment.terminal_id)
    assert terminal is not None
    assert terminal.name == WEB_TERMINAL_NAME
    assert terminal.partner_id == world.partner.id
    assert (payment.amount_fen, payment.integrity_discount_fen, payment.points_cost) == (
        10_000,
        600,
        30,
    )
    entries = session.scalars(select(Entry).where(Entry.source_id == payment.public_id)).all()
    assert entries
    assert {e.actor for e in entries} == {f"cashier:{cashier.user.id}"}
    receipt = cashier.client.get(resp.headers["Location"])
    html = receipt.get_data(as_text=True)
    assert receipt.status_code == 200
    assert payment.public_id in html
    assert "94.00" in html  # cash due
    assert "毛巾" in html


@pytest.mark.parametrize("amount", ["12.345", "-1", "abc"])
def test_pay_refuses_bad_amounts(
    cashier: Cashier, world: World, session: Session, amount: str
) -> None:
    resp = cashier.client.post("/cashier/pay", data=pay_form(cashier, world.code(session), amount))
    assert resp.status_code == 400
    assert "金额格式不正确" in resp.get_data(as_text=True)
    assert count_payments(session) == 0


def test_double_submit_pays_once(cashier: Cashier, world: World, session: Session) -> None:
    form = pay_form(cashier, world.code(session), "50")
    first = cashier.client.post("/cashier/pay", data=form)
    second = cashier.client.post("/cashier/pay", data=form)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert count_payments(session) == 1


def test_same_key_other_sale_is_a_conflict(
    cashier: Cashier, world: World, session: Session
) -> None:
    form = pay_form(cashier, world.code(session), "50")
    assert cashier.client.post("/cashier/pay", data=form).status_code == 303
    resp = cashier.client.post("/cashier/pay", data={**form, "amount": "60"})
    assert resp.status_code == 409
    assert count_payments(session) == 1


def test_card_code_needs_the_pin(cashier: Cashier, world: World, session: Session) -> None:
    card = issue_card(session, world.household)
    session.commit()
    code = card_code(session, card)
    scan = json_post(cashier, "/cashier/scan", {"code": code}).get_json()
    assert scan["pin_required"] is True
    resp = cashier.client.post("/cashier/pay", data=pay_form(cashier, code, "10"))
    assert resp.status_code == 403
    assert "请输入密码" in resp.get_data(as_text=True)
    resp = cashier.client.post("/cashier/pay", data=pay_form(cashier, code, "10", pin="000000"))
    assert resp.status_code == 403
    assert "还可以再试4次" in resp.get_data(as_text=True)
    session.refresh(world.household)
    assert world.household.pin_failed_count == 1  # the failure outlived the refusal
    # the till comes back with the code and amount, never the PIN
    html = resp.get_data(as_text=True)
    assert 'value="10"' in html
    assert 'name="pin" type="password"' in html
    resp = cashier.client.post("/cashier/pay", data=pay_form(cashier, code, "10", pin=PIN))
    assert resp.status_code == 303
    assert count_payments(session) == 1


def test_dynamic_code_pays_once(cashier: Cashier, world: World, session: Session) -> None:
    code = world.code(session)
    assert cashier.client.post("/cashier/pay", data=pay_form(cashier, code, "5")).status_code == 303
    resp = cashier.client.post("/cashier/pay", data=pay_form(cashier, code, "5"))
    assert resp.status_code == 409
    assert "该信用码已使用" in resp.get_data(as_text=True)


def test_nothing_to_pay_is_refused(cashier: Cashier, world: World, session: Session) -> None:
    resp = cashier.client.post("/cashier/pay", data=pay_form(cashier, world.code(session), ""))
    assert resp.status_code == 400
    assert count_payments(session) == 0


# ---------------------------------------------------------------- refunds and voids


def _paid(cashier: Cashier, world: World, session: Session, amount: str, **extra: str) -> Payment:
    resp = cashier.client.post(
        "/cashier/pay", data=pay_form(cashier, world.code(session), amount, **extra)
    )
    assert resp.status_code == 303
    return session.scalars(select(Payment).order_by(Payment.id.desc())).first()  # type: ignore[return-value]


def _receipt_form(cashier: Cashier, payment: Payment) -> dict[str, str]:
    page = cashier.client.get(f"/cashier/payments/{payment.public_id}")
    return {"csrf_token": csrf_token(page), "idempotency_key": idem_key(page)}


def test_partial_then_full_refund_restores_exactly(
    cashier: Cashier, world: World, session: Session
) -> None:
    payment = _paid(cashier, world, session, "100", item_sku="TOWEL", item_qty="2")
    url = f"/cashier/payments/{payment.public_id}/refund"
    form = {**_receipt_form(cashier, payment), "mode": "partial", "refund_amount": "33.33"}
    form |= {"refund_sku": "TOWEL", "refund_qty": "1"}
    resp = cashier.client.post(url, data=form)
    assert resp.status_code == 303, resp.get_data(as_text=True)[:1500]
    again = cashier.client.post(url, data=form)  # a browser retry: nothing more
    assert again.status_code == 303
    session.refresh(payment)
    assert payment.refunded_amount_fen == 3333
    assert payment.refunded_integrity_fen == 199  # floor(600 * 3333 / 10000)
    assert payment.refunded_points == 30
    assert len(payment.refunds) == 1
    full = {**_receipt_form(cashier, payment), "mode": "full"}
    assert cashier.client.post(url, data=full).status_code == 303
    session.refresh(payment)
    assert payment.refunded_amount_fen == 10_000
    assert payment.refunded_integrity_fen == 600
    assert payment.refunded_points == 60
    page = cashier.client.get(f"/cashier/payments/{payment.public_id}").get_data(as_text=True)
    assert "部分退款" not in page  # nothing left to refund


def test_refund_more_than_paid_is_refused(cashier: Cashier, world: World, session: Session) -> None:
    payment = _paid(cashier, world, session, "10")
    form = {**_receipt_form(cashier, payment), "mode": "partial", "refund_amount": "10.01"}
    resp = cashier.client.post(f"/cashier/payments/{payment.public_id}/refund", data=form)
    assert resp.status_code == 409
    assert "退款超过原支付金额" in resp.get_data(as_text=True)
    empty = {**_receipt_form(cashier, payment), "mode": "partial", "refund_amount": ""}
    resp = cashier.client.post(f"/cashier/payments/{payment.public_id}/refund", data=empty)
    assert resp.status_code == 400


def test_void_restores_and_cannot_repeat(cashier: Cashier, world: World, session: Session) -> None:
    payment = _paid(cashier, world, session, "10", item_sku="TOWEL", item_qty="1")
    url = f"/cashier/payments/{payment.public_id}/void"
    form = _receipt_form(cashier, payment)
    assert cashier.client.post(url, data=form).status_code == 303
    assert cashier.client.post(url, data=form).status_code == 303  # replayed, same answer
    session.refresh(payment)
    assert payment.status == "voided"
    session.refresh(world.goods)
    assert world.goods.stock == 10
    assert "撤销交易" not in cashier.client.get(f"/cashier/payments/{payment.public_id}").get_data(
        as_text=True
    )
    resp = cashier.client.post(url, data={**form, "idempotency_key": "a-new-key"})
    assert resp.status_code == 409


# ---------------------------------------------------------------- the partner's own


def test_a_cashier_sees_only_its_partners_payments(
    session: Session, app: object, world: World, cashier: Cashier
) -> None:
    payment = _paid(cashier, world, session, "20")
    other_user = make_user(
        session,
        "cashier",
        township(session, world),
        partner=world.other_partner,
    )
    session.commit()
    other = fresh_client(app)  # type: ignore[arg-type]
    assert login(other, other_user.username).status_code == 302
    assert other.get(f"/cashier/payments/{payment.public_id}").status_code == 404
    page = other.get(f"/cashier/payments/{payment.public_id}/refund")
    assert page.status_code in (404, 405)
    token = csrf_token(other.get("/cashier/"))
    form = {"csrf_token": token, "idempotency_key": "k1", "mode": "full"}
    assert other.post(f"/cashier/payments/{payment.public_id}/refund", data=form).status_code == 404
    assert payment.public_id not in other.get("/cashier/day").get_data(as_text=True)
    assert payment.public_id in cashier.client.get("/cashier/day").get_data(as_text=True)


def test_day_statement_and_csv(cashier: Cashier, world: World, session: Session) -> None:
    _paid(cashier, world, session, "100")
    _paid(cashier, world, session, "50", item_sku="TOWEL", item_qty="1")
    page = cashier.client.get("/cashier/statement")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "9.00" in html  # integrity discounts: 6.00 + 3.00
    assert "17.00" in html  # net payable: 9.00 + the towel's 8.00 settlement
    csv = cashier.client.get("/cashier/statement?format=csv")
    assert csv.mimetype == "text/csv"
    assert "net_payable_fen,1700" in csv.get_data(as_text=True)
    day = cashier.client.get("/cashier/day").get_data(as_text=True)
    assert day.count("/cashier/payments/pay_") == 2


def test_the_till_offers_no_void_once_the_day_is_settled(
    cashier: Cashier, world: World, session: Session
) -> None:
    """Issue 20: the till decided `can_void` itself, without the service's "day already
    settled" rule, so it showed a button the service refused. It now asks the service."""
    from datetime import timedelta

    from mall.errors import Conflict
    from mall.payments.services import may_void, void_payment
    from mall.settlement.closing import close_statement

    payment = _paid(cashier, world, session, "10")
    receipt = f"/cashier/payments/{payment.public_id}"
    assert "撤销交易" in cashier.client.get(receipt).get_data(as_text=True)
    yesterday = payment.business_date - timedelta(days=1)
    payment.business_date = yesterday
    township = session.get_one(Region, world.partner.township_id)
    close_statement(
        session, make_user(session, "township_admin", township), world.partner, yesterday
    )
    session.commit()
    assert may_void(session, payment) is False
    assert "撤销交易" not in cashier.client.get(receipt).get_data(as_text=True)
    with pytest.raises(Conflict) as refused:
        void_payment(session, payment, actor="test")
    assert refused.value.details == {"reason": "settled"}
