"""Every endpoint through the signed API, and every error code of the contract provoked."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from mall.catalog.services import create_goods
from mall.clock import business_date, utcnow
from mall.codes import keys
from mall.codes.services import _encode, card_code, issue_card, sign_dynamic_code
from mall.subjects.models import CreditSubject
from tests.factories import PIN
from tests.pos_adapter.conftest import Till, World


def err(r: Any) -> tuple[int, str]:
    return r.status_code, r.json["error"]["code"]


def pay(till: Till, code: str, amount: int = 10_000, **extra: Any) -> Any:
    return till.post("/pos/v1/payments", {"code": code, "amount_fen": amount, **extra})


def card(session: Session, subject: CreditSubject) -> str:
    c = issue_card(session, subject)
    session.commit()
    return card_code(session, c)


# ---------------------------------------------------------------- happy paths


def test_scan_quote_pay(till: Till, world: World, session: Session) -> None:
    code = world.code(session)
    s = till.post("/pos/v1/scan", {"code": code}).json
    assert s["holder"]["display_name"] == "张*华"
    assert s["holder"]["level"] == {"code": "3", "label": "三星级", "rank": 3}
    assert s["wallet"] == {"integrity_fen": 120_000, "points": 1_000}
    assert (s["discount_rate_bp"], s["pin_required"], s["benefits"]) == (600, False, [])
    q = till.post(
        "/pos/v1/quote", {"code": code, "amount_fen": 12_345, "items": [{"sku": "TOWEL", "qty": 2}]}
    ).json
    assert q["integrity_discount_fen"] == 740  # floor(12345 * 600 / 10000)
    assert (q["points_cost"], q["cash_due_fen"]) == (60, 12_345 - 740)
    assert q["lines"][0]["points"] == 60
    r = pay(till, code, 12_345, items=[{"sku": "TOWEL", "qty": 2}], external_ref="R1")
    assert r.status_code == 201, r.json
    p = r.json
    assert (p["status"], p["integrity_discount_fen"], p["points_cost"]) == ("completed", 740, 60)
    assert p["balances_after"] == {"integrity_fen": 120_000 - 740, "points": 940}
    assert p["business_date"] == business_date().isoformat()
    got = till.get(f"/pos/v1/payments/{p['payment_id']}").json
    assert got["payment_id"] == p["payment_id"]
    assert got["refunds"] == []
    assert till.get("/pos/v1/catalog").json["items"][0]["stock"] == 8


def test_discount_capped_by_balance_and_use_integrity(
    till: Till, world: World, session: Session
) -> None:
    p = pay(till, world.code(session, world.poor_household), 10_000).json
    assert (p["integrity_discount_fen"], p["cash_due_fen"]) == (100, 9_900)
    p = pay(till, world.code(session), 10_000, use_integrity=False).json
    assert p["integrity_discount_fen"] == 0


def test_authorize_capture_less(till: Till, world: World, session: Session) -> None:
    r = pay(till, world.code(session), 10_000, capture=False, items=[{"sku": "TOWEL", "qty": 1}])
    p = r.json
    assert (p["status"], p["integrity_discount_fen"]) == ("authorized", 600)
    assert p["balances_after"] == {"integrity_fen": 119_400, "points": 970}  # held
    c = till.post(f"/pos/v1/payments/{p['payment_id']}/capture", {"amount_fen": 5_000})
    assert c.status_code == 200, c.json
    assert (c.json["status"], c.json["integrity_discount_fen"], c.json["cash_due_fen"]) == (
        "completed",
        300,
        4_700,
    )
    assert c.json["balances_after"] == {"integrity_fen": 119_700, "points": 970}
    again = till.post(f"/pos/v1/payments/{p['payment_id']}/capture", {})
    assert err(again) == (409, "invalid_state")


def test_void_authorized_and_completed(till: Till, world: World, session: Session) -> None:
    a = pay(till, world.code(session), 10_000, capture=False, items=[{"sku": "TOWEL", "qty": 3}])
    v = till.post(f"/pos/v1/payments/{a.json['payment_id']}/void")
    assert v.status_code == 200, v.json
    assert v.json["status"] == "voided"
    assert v.json["balances_after"] == {"integrity_fen": 120_000, "points": 1_000}
    c = pay(till, world.code(session), 10_000, items=[{"sku": "TOWEL", "qty": 3}])
    v = till.post(f"/pos/v1/payments/{c.json['payment_id']}/void")
    assert v.json["balances_after"] == {"integrity_fen": 120_000, "points": 1_000}
    assert till.get("/pos/v1/catalog").json["items"][0]["stock"] == 10
    assert err(till.post(f"/pos/v1/payments/{c.json['payment_id']}/void")) == (409, "invalid_state")


def test_expired_authorization_releases(till: Till, world: World, session: Session) -> None:
    from mall.payments.services import expire_authorizations

    a = pay(till, world.code(session), 10_000, capture=False, items=[{"sku": "TOWEL", "qty": 1}])
    assert expire_authorizations(session, utcnow() + timedelta(minutes=14)) == 0
    assert expire_authorizations(session, utcnow() + timedelta(minutes=16)) == 1
    session.commit()
    got = till.get(f"/pos/v1/payments/{a.json['payment_id']}").json
    assert got["status"] == "expired"
    s = till.post("/pos/v1/scan", {"code": world.code(session)}).json
    assert s["wallet"] == {"integrity_fen": 120_000, "points": 1_000}
    assert till.get("/pos/v1/catalog").json["items"][0]["stock"] == 10
    assert err(till.post(f"/pos/v1/payments/{a.json['payment_id']}/capture", {})) == (
        409,
        "invalid_state",
    )


def test_card_payment_needs_pin(till: Till, world: World, session: Session) -> None:
    code = card(session, world.household)
    assert till.post("/pos/v1/scan", {"code": code}).json["pin_required"] is True
    assert err(pay(till, code)) == (403, "pin_required")
    assert err(pay(till, code, pin="000000")) == (403, "pin_invalid")
    r = pay(till, code, pin=PIN)
    assert r.status_code == 201, r.json
    assert pay(till, code, pin=PIN).status_code == 201  # a card is not single-use


def test_pin_locks_after_five(till: Till, world: World, session: Session) -> None:
    code = card(session, world.household)
    codes = [err(pay(till, code, pin="000000"))[1] for _ in range(5)]
    assert codes == ["pin_invalid"] * 4 + ["pin_locked"]
    assert err(pay(till, code, pin=PIN)) == (403, "pin_locked")


def test_list_scoped_to_partner(
    till: Till, other_till: Till, world: World, session: Session
) -> None:
    ids = [pay(till, world.code(session), 100 * i).json["payment_id"] for i in range(1, 6)]
    today = business_date().isoformat()
    seen, cursor = [], None
    while True:
        q = f"/pos/v1/payments?business_date={today}&limit=2" + (
            f"&cursor={cursor}" if cursor else ""
        )
        page = till.get(q).json
        seen += [p["payment_id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ids
    other = other_till.get(f"/pos/v1/payments?business_date={today}").json
    assert other["items"] == []
    assert err(other_till.get(f"/pos/v1/payments/{ids[0]}")) == (404, "not_found")
    assert err(other_till.post(f"/pos/v1/payments/{ids[0]}/refunds", {})) == (404, "not_found")
    assert err(other_till.post(f"/pos/v1/payments/{ids[0]}/void")) == (404, "not_found")
    assert err(till.get(f"/pos/v1/payments?business_date={today}&cursor=%%%")) == (
        400,
        "validation_error",
    )


def test_statement_json_and_csv(till: Till, world: World, session: Session) -> None:
    p = pay(till, world.code(session), 10_000, items=[{"sku": "TOWEL", "qty": 2}]).json
    till.post(
        f"/pos/v1/payments/{p['payment_id']}/refunds",
        {"amount_fen": 5_000, "items": [{"sku": "TOWEL", "qty": 1}]},
    )
    today = business_date().isoformat()
    s = till.get(f"/pos/v1/statements/{today}").json
    assert s["payments_count"] == 1
    assert s["closed"] is False
    assert (s["integrity_discount_fen"], s["points_redeemed"], s["points_settlement_fen"]) == (
        600,
        60,
        1600,
    )
    assert (s["refunds_count"], s["refunded_integrity_fen"], s["refunded_settlement_fen"]) == (
        1,
        300,
        800,
    )
    assert s["net_payable_fen"] == 600 + 1600 - 300 - 800
    csv = till.get(f"/pos/v1/statements/{today}?format=csv")
    assert csv.mimetype == "text/csv"
    assert "net_payable_fen,1100" in csv.get_data(as_text=True)
    assert err(till.get("/pos/v1/statements/2026-13-45")) == (400, "validation_error")
    assert err(till.get(f"/pos/v1/statements/{today}?format=xml")) == (400, "validation_error")


# ---------------------------------------------------------------- every error code


def test_validation_errors(till: Till, world: World, session: Session) -> None:
    code = world.code(session)
    for body in (
        {"amount_fen": 1},
        {"code": code, "amount_fen": -1},
        {"code": code, "amount_fen": "12"},
        {"code": code, "amount_fen": 1.5},
        {"code": code, "amount_fen": 1, "items": [{"sku": "TOWEL", "qty": 0}]},
        {"code": code, "amount_fen": 1, "items": "TOWEL"},
    ):
        r = pay(till, **body) if False else till.post("/pos/v1/payments", body)
        status, c = err(r)
        assert (status, c) == (400, "validation_error"), body
        assert r.json["error"]["details"]["fields"]


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"[]", b"null", b'{"code": ' + b"9" * 5000 + b"}", b"\xff\xfe", b'"x"'],
)
def test_garbage_never_500(till: Till, raw: bytes) -> None:
    for path in ("/pos/v1/scan", "/pos/v1/quote", "/pos/v1/payments", "/pos/v1/offline-batches"):
        r = till.post(path, raw=raw)
        assert 400 <= r.status_code < 500, (path, raw, r.status_code)
        assert r.json["error"]["code"]


def test_holder_codes(till: Till, world: World, session: Session) -> None:
    assert err(till.post("/pos/v1/scan", {"code": "eyJhbGciOi.x.y"})) == (422, "invalid_code")
    expired = sign_dynamic_code(session, world.household, now=utcnow() - timedelta(minutes=5)).code
    assert err(till.post("/pos/v1/scan", {"code": expired})) == (410, "code_expired")
    kid, private = keys.signing_key(session)
    now = int(utcnow().timestamp())
    ghost = _encode(
        {
            "v": 1,
            "k": "d",
            "sub": "nobody-at-all",
            "jti": "abcdefabcdef",
            "iat": now,
            "exp": now + 60,
        },
        kid,
        private,
    )
    assert err(till.post("/pos/v1/scan", {"code": ghost})) == (404, "holder_not_found")
    code = world.code(session)
    world.household.status = "frozen"
    session.commit()
    assert err(till.post("/pos/v1/scan", {"code": code})) == (403, "holder_suspended")


def test_payment_refusals(till: Till, world: World, session: Session) -> None:
    code = world.code(session)
    assert pay(till, code).status_code == 201
    assert err(pay(till, code)) == (409, "code_already_used")
    poor = world.code(session, world.poor_household)
    assert err(pay(till, poor, items=[{"sku": "TOWEL", "qty": 1}])) == (409, "insufficient_points")
    assert err(pay(till, world.code(session), items=[{"sku": "TOWEL", "qty": 11}])) == (
        409,
        "out_of_stock",
    )
    assert err(pay(till, world.code(session), items=[{"sku": "NOPE", "qty": 1}])) == (
        404,
        "not_found",
    )
    create_goods(
        session,
        world.partner,
        sku="RICE",
        name="大米",
        points_price=100,
        settlement_price_fen=5000,
        stock=5,
        min_level_rank=4,
    )
    session.commit()
    assert err(pay(till, world.code(session), items=[{"sku": "RICE", "qty": 1}])) == (
        403,
        "level_too_low",
    )
    world.partner.accepts_points = False
    session.commit()
    assert err(pay(till, world.code(session), items=[{"sku": "TOWEL", "qty": 1}])) == (
        403,
        "partner_not_eligible",
    )
    assert err(till.get("/pos/v1/payments/pay_nope")) == (404, "not_found")


def test_refund_exceeds(till: Till, world: World, session: Session) -> None:
    p = pay(till, world.code(session), 1_000, items=[{"sku": "TOWEL", "qty": 1}]).json
    url = f"/pos/v1/payments/{p['payment_id']}/refunds"
    assert err(till.post(url, {"amount_fen": 1_001})) == (409, "refund_exceeds_payment")
    assert err(till.post(url, {"items": [{"sku": "TOWEL", "qty": 2}]})) == (
        409,
        "refund_exceeds_payment",
    )
    assert till.post(url, {}).status_code == 201  # full refund of what is left
    assert err(till.post(url, {"amount_fen": 1})) == (409, "refund_exceeds_payment")
