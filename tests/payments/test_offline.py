"""Offline batches: exactly once per local_id, floor limits, age, shortfall, the discount rate,
revoked cards and what the till knew of them."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from mall.clock import as_aware, business_date, utcnow
from mall.codes.services import card_code, issue_card, report_lost, sign_dynamic_code
from mall.config import Config
from mall.ledger.accounts import system_account
from mall.ledger.models import OFFLINE_SHORTFALL
from mall.partners.models import Terminal
from mall.payments.models import Payment
from mall.payments.services import available_balances
from tests.pos_adapter.conftest import Till, World, rate


def rec(local_id: str, code: str, amount: int, granted: int, minutes_ago: int = 5) -> dict:  # type: ignore[type-arg]
    return {
        "local_id": local_id,
        "code": code,
        "captured_at": (utcnow() - timedelta(minutes=minutes_ago)).isoformat(),
        "amount_fen": amount,
        "integrity_discount_fen": granted,
    }


def code_at(session: Session, subject: object, minutes_ago: int = 5) -> str:
    at = utcnow() - timedelta(minutes=minutes_ago)
    return sign_dynamic_code(session, subject, now=at).code  # type: ignore[arg-type]


def _count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Payment)) or 0)


def test_batch_uploaded_twice_applies_once(till: Till, world: World, session: Session) -> None:
    c1, c2 = code_at(session, world.household), code_at(session, world.household)
    batch = {"batch_id": "b1", "records": [rec("L1", c1, 10_000, 600), rec("L2", c2, 5_000, 300)]}
    first = till.post("/pos/v1/offline-batches", batch)
    assert first.status_code == 200, first.json
    assert [r["status"] for r in first.json["results"]] == ["applied", "applied"]
    # the same records again, in another batch with another key
    second = till.post("/pos/v1/offline-batches", {**batch, "batch_id": "b2"})
    assert second.json["results"] == first.json["results"]
    assert _count(session) == 2
    assert available_balances(session, world.household)[0] == 120_000 - 900


def test_rejections(till: Till, world: World, session: Session) -> None:
    code = code_at(session, world.household)
    old = rec("OLD", code_at(session, world.household, 73 * 60), 1_000, 60, minutes_ago=73 * 60)
    over = rec("OVER", code_at(session, world.household), 100_000, 5_001)
    forged = rec("FORGED", code[:-4] + ("AAAA" if not code.endswith("AAAA") else "BBBB"), 1_000, 60)
    expired = rec("EXP", code, 1_000, 60, minutes_ago=-0)
    expired["captured_at"] = (utcnow() + timedelta(minutes=3)).isoformat()
    r = till.post(
        "/pos/v1/offline-batches", {"batch_id": "b", "records": [old, over, forged, expired]}
    )
    got = {x["local_id"]: (x["status"], x.get("code")) for x in r.json["results"]}
    assert got["OLD"] == ("rejected", "record_too_old")
    assert got["OVER"] == ("rejected", "over_floor_limit")
    assert got["FORGED"] == ("rejected", "invalid_code")
    assert got["EXP"][0] == "rejected"
    assert _count(session) == 0


def test_floor_limit_per_household_per_day(till: Till, world: World, session: Session) -> None:
    # 2,000 of discount is within the household's 6% of a 40,000 sale (this test granted it on
    # 10,000 until the rate was enforced: 20%, more than any level gives).
    records = [rec(f"F{i}", code_at(session, world.household), 40_000, 2_000) for i in range(3)]
    r = till.post("/pos/v1/offline-batches", {"batch_id": "f", "records": records}).json
    assert [x["status"] for x in r["results"]] == ["applied", "applied", "rejected"]
    assert r["results"][2]["code"] == "over_floor_limit"


def test_shortfall_paid_from_township_and_flagged(
    till: Till, world: World, session: Session
) -> None:
    code = code_at(session, world.poor_household)  # holds 100 fen
    r = till.post(
        "/pos/v1/offline-batches", {"batch_id": "s", "records": [rec("S1", code, 5_000, 500)]}
    )
    res = r.json["results"][0]
    assert (res["status"], res["integrity_discount_fen"], res["shortfall_fen"]) == (
        "applied_short",
        100,
        400,
    )
    p = till.get(f"/pos/v1/payments/{res['payment_id']}").json
    assert p["needs_review"] is True
    assert p["offline_shortfall_fen"] == 400
    fund = system_account(session, world.poor_household.township_id, OFFLINE_SHORTFALL)
    session.refresh(fund)
    assert fund.posted_balance == -400


def test_card_revoked_after_sale_still_applies(till: Till, world: World, session: Session) -> None:
    card = issue_card(session, world.household, now=utcnow() - timedelta(hours=2))
    code = card_code(session, card)
    sale = rec("C1", code, 1_000, 60, minutes_ago=30)
    report_lost(session, world.household)
    session.commit()
    early = rec("C0", code, 1_000, 60, minutes_ago=0)
    early["captured_at"] = (utcnow() + timedelta(seconds=5)).isoformat()
    r = till.post("/pos/v1/offline-batches", {"batch_id": "c", "records": [sale, early]}).json
    assert r["results"][0]["status"] == "applied"
    assert (r["results"][1]["status"], r["results"][1]["code"]) == ("rejected", "invalid_code")


# ---------------------------------------------------------------- the discount rate (break 5)


def _fund_balance(session: Session, township_id: int) -> int:
    fund = system_account(session, township_id, OFFLINE_SHORTFALL)
    session.refresh(fund)
    return fund.posted_balance


def test_discount_over_the_rate_is_applied_at_the_rate(
    till: Till, world: World, session: Session
) -> None:
    """100% off where the household's level gives 6%: the wallet pays the 6% (300), the
    partner is paid that, the township pays nothing and the excess is nobody's but the
    partner's own (`overgrant_fen`)."""
    code = code_at(session, world.household)
    online = till.post("/pos/v1/quote", {"code": world.code(session), "amount_fen": 5_000}).json
    assert online["integrity_discount_fen"] == 300
    r = till.post(
        "/pos/v1/offline-batches", {"batch_id": "r", "records": [rec("R1", code, 5_000, 5_000)]}
    )
    res = r.json["results"][0]
    assert res["status"] == "applied_short"
    assert res["reason"] == "over_discount_rate"
    assert (res["integrity_discount_fen"], res["shortfall_fen"], res["overgrant_fen"]) == (
        300,
        0,
        4_700,
    )
    assert res["discount_rate_bp"] == online["discount_rate_bp"] == 600
    assert available_balances(session, world.household)[0] == 120_000 - 300
    assert _fund_balance(session, world.household.township_id) == 0
    p = till.get(f"/pos/v1/payments/{res['payment_id']}").json
    assert (p["integrity_discount_fen"], p["offline_shortfall_fen"], p["cash_due_fen"]) == (
        300,
        0,
        0,  # what the customer paid at the till: nothing
    )
    assert p["needs_review"] is True
    day = p["business_date"]
    statement = till.get(f"/pos/v1/statements/{day}").json
    assert statement["net_payable_fen"] == 300


def test_over_rate_and_short_wallet_the_township_pays_only_the_genuine_shortfall(
    till: Till, world: World, session: Session
) -> None:
    """Rated 10%, holding 100 fen: 5,000 granted on a 5,000 sale is worth 500 at the rate;
    the wallet gives 100, the township the other 400, and the 4,500 over the rate nobody."""
    code = code_at(session, world.poor_household)
    r = till.post(
        "/pos/v1/offline-batches", {"batch_id": "p", "records": [rec("P1", code, 5_000, 5_000)]}
    )
    res = r.json["results"][0]
    assert (res["status"], res["reason"]) == ("applied_short", "over_discount_rate")
    assert (res["integrity_discount_fen"], res["shortfall_fen"], res["overgrant_fen"]) == (
        100,
        400,
        4_500,
    )
    assert _fund_balance(session, world.poor_household.township_id) == -400


def test_unrated_household_gets_no_offline_discount(
    till: Till, world: World, session: Session
) -> None:
    rate(world.household, None)
    session.commit()
    code = code_at(session, world.household)
    r = till.post(
        "/pos/v1/offline-batches", {"batch_id": "u", "records": [rec("U1", code, 5_000, 300)]}
    )
    res = r.json["results"][0]
    assert (res["status"], res["integrity_discount_fen"], res["shortfall_fen"]) == (
        "applied_short",
        0,
        0,
    )
    assert res["overgrant_fen"] == 300
    assert available_balances(session, world.household)[0] == 120_000


def test_rate_is_the_one_of_the_sales_day(till: Till, world: World, session: Session) -> None:
    """A level valid on the day of the sale but expired by the upload still gives its rate."""
    at = utcnow() - timedelta(hours=30)
    world.household.level_valid_until = business_date(at)
    session.commit()
    code = sign_dynamic_code(session, world.household, now=at).code
    record = {**rec("D1", code, 10_000, 600), "captured_at": at.isoformat()}
    res = till.post("/pos/v1/offline-batches", {"batch_id": "d", "records": [record]}).json
    assert res["results"][0]["status"] == "applied"
    assert res["results"][0]["integrity_discount_fen"] == 600


def test_over_rate_claims_do_not_use_up_the_floor(
    till: Till, world: World, session: Session
) -> None:
    """What counts against the floor limit is what was honoured, not what a till claimed:
    one till's over-grant does not block another's honest sales to the household."""
    greedy = rec("G1", code_at(session, world.household), 5_000, 5_000)  # honoured: 300
    honest = rec("H1", code_at(session, world.household), 70_000, 4_200)  # 6% of 70,000
    r = till.post("/pos/v1/offline-batches", {"batch_id": "g", "records": [greedy, honest]}).json
    assert [x["status"] for x in r["results"]] == ["applied_short", "applied"]


# ---------------------------------------------------------------- card codes offline (break 4)


def _card(session: Session, world: World, hours_ago: int = 100) -> tuple[str, str]:
    card = issue_card(session, world.household, now=utcnow() - timedelta(hours=hours_ago))
    session.commit()
    return card_code(session, card), card.serial


def _set_contact(
    session: Session,
    till: Till,
    *,
    seen: datetime | None,
    synced: datetime | None = None,
    version: int | None = None,
) -> None:
    session.execute(
        update(Terminal)
        .where(Terminal.id == till.terminal.id)
        .values(
            last_seen_at=seen, revocation_list_synced_at=synced, revocation_list_version=version
        )
    )
    session.commit()


def _upload(till: Till, *records: dict) -> list[dict]:  # type: ignore[type-arg]
    r = till.post("/pos/v1/offline-batches", {"batch_id": secrets.token_hex(4), "records": records})
    assert r.status_code == 200, r.json
    return r.json["results"]  # type: ignore[no-any-return]


def _at(local_id: str, code: str, at: datetime, granted: int = 60, **extra: object) -> dict:  # type: ignore[type-arg]
    return {
        "local_id": local_id,
        "code": code,
        "captured_at": at.isoformat(),
        "amount_fen": 1_000,
        "integrity_discount_fen": granted,
        **extra,
    }


def test_the_revocation_list_is_signed_versioned_and_recorded(
    till: Till, world: World, session: Session, client: FlaskClient
) -> None:
    _code, serial = _card(session, world)
    before = till.get("/pos/v1/card-revocations").json
    assert serial not in [c["serial"] for c in before["cards"]]
    report_lost(session, world.household)
    session.commit()
    after = till.get(f"/pos/v1/card-revocations?since_version={before['version']}").json
    assert [c["serial"] for c in after["cards"]] == [serial]
    assert after["version"] == before["version"] + 1 == after["cards"][0]["version"]
    assert after["more"] is False
    session.refresh(till.terminal)
    assert till.terminal.revocation_list_version == after["version"]
    assert till.terminal.revocation_list_synced_at is not None
    # unsigned: refused
    assert client.get("/pos/v1/card-revocations").status_code == 401
    # a replaced card joins the list too, at the next version
    replaced = issue_card(session, world.household)
    issue_card(session, world.household)
    session.commit()
    again = till.get(f"/pos/v1/card-revocations?since_version={after['version']}").json
    assert again["version"] == after["version"] + 1
    assert [c["serial"] for c in again["cards"]] == [replaced.serial]
    # pages
    first = till.get("/pos/v1/card-revocations?since_version=0&limit=1").json
    assert first["more"] is (again["version"] > 1)
    assert first["version"] == first["cards"][0]["version"]


def test_backdated_record_of_a_lost_card_after_the_till_synced_is_rejected(
    till: Till, world: World, session: Session
) -> None:
    """The attack: the card is reported lost; a till that has synced since records a sale
    'captured' 30 s before the report. captured_at alone would let it through."""
    code, _serial = _card(session, world)
    lost = report_lost(session, world.household)
    session.commit()
    revoked_at = as_aware(lost.revoked_at)
    assert till.get("/pos/v1/card-revocations").status_code == 200
    [res] = _upload(till, _at("B1", code, revoked_at - timedelta(seconds=30), 40))
    assert (res["status"], res["code"]) == ("rejected", "invalid_code")
    assert res["details"]["reason"] == "card_revoked_before_sync"
    assert _count(session) == 0
    assert available_balances(session, world.household)[0] == 120_000


def test_any_contact_after_the_report_counts_as_a_sync(
    till: Till, world: World, session: Session
) -> None:
    """A till need not have fetched the list: any signed request after the report (here its
    catalogue) and the till could have known."""
    code, _serial = _card(session, world)
    revoked_at = as_aware(report_lost(session, world.household).revoked_at)
    session.commit()
    _set_contact(session, till, seen=None)
    assert till.get("/pos/v1/catalog").status_code == 200
    [res] = _upload(till, _at("A1", code, revoked_at - timedelta(seconds=30)))
    assert res["details"]["reason"] == "card_revoked_before_sync"


def test_contact_within_a_minute_before_the_report_may_have_been_after_it(
    till: Till, world: World, session: Session
) -> None:
    """last_seen_at is written once a minute: a terminal seen 30 s before the report may have
    been online after it, and is treated so."""
    code, _serial = _card(session, world)
    revoked_at = as_aware(report_lost(session, world.household).revoked_at)
    session.commit()
    _set_contact(session, till, seen=revoked_at - timedelta(seconds=30))
    [res] = _upload(till, _at("W1", code, revoked_at - timedelta(seconds=10)))
    assert res["details"]["reason"] == "card_revoked_before_sync"


def test_record_whose_own_list_names_the_card_is_rejected(
    till: Till, world: World, session: Session
) -> None:
    code, _serial = _card(session, world)
    lost = report_lost(session, world.household)
    session.commit()
    revoked_at = as_aware(lost.revoked_at)
    _set_contact(session, till, seen=None)  # the server never saw this till: only its word
    [res] = _upload(
        till,
        _at(
            "V1",
            code,
            revoked_at - timedelta(seconds=30),
            revocation_list_version=lost.revocation_version,
        ),
    )
    assert res["details"]["reason"] == "card_on_revocation_list"


def test_record_carrying_a_stale_list_version_is_rejected(
    till: Till, world: World, session: Session
) -> None:
    """The till was given the list naming the card, and its record claims the version
    before: what the server gave it decides, not what the record says."""
    code, _serial = _card(session, world)
    lost = report_lost(session, world.household, now=utcnow() - timedelta(hours=2))
    session.commit()
    version = lost.revocation_version
    assert version is not None
    revoked_at = as_aware(lost.revoked_at)
    # it fetched the list an hour after the report (and has had no contact since, it says)
    _set_contact(
        session,
        till,
        seen=revoked_at + timedelta(hours=1),
        synced=revoked_at + timedelta(hours=1),
        version=version,
    )
    [res] = _upload(
        till,
        _at("S1", code, revoked_at - timedelta(minutes=1), revocation_list_version=version - 1),
    )
    assert res["details"]["reason"] == "card_revoked_before_sync"


def test_card_revoked_after_the_tills_last_sync_is_honoured(
    till: Till, world: World, session: Session
) -> None:
    """The honest case: the till synced, went offline, sold on the card, and the card was
    reported lost before the till came back and uploaded (first thing) its queue."""
    code, _serial = _card(session, world)
    synced = till.get("/pos/v1/card-revocations").json["version"]
    now = utcnow()
    _set_contact(
        session,
        till,
        seen=now - timedelta(hours=3),
        synced=now - timedelta(hours=3),
        version=synced,
    )
    lost = report_lost(session, world.household, now=now - timedelta(hours=1))
    session.commit()
    assert lost.revocation_version == synced + 1
    sale = _at("H1", code, now - timedelta(hours=2), revocation_list_version=synced)
    late = _at("H2", code, now - timedelta(minutes=30), revocation_list_version=synced)
    honoured, refused = _upload(till, sale, late)
    assert honoured["status"] == "applied", honoured
    assert (refused["status"], refused["details"]["reason"]) == ("rejected", "card_revoked")
    # The upload was a contact: the same sale uploaded again gets its stored answer, but a
    # new one dated before the report is now refused.
    assert _upload(till, sale) == [honoured]
    [after] = _upload(till, _at("H3", code, now - timedelta(hours=2)))
    assert after["details"]["reason"] == "card_revoked_before_sync"


def test_sale_dated_before_the_tills_last_contact_is_rejected(
    till: Till, world: World, session: Session
) -> None:
    """A till silent since before the report can date a sale back only to its last contact,
    not 72 hours: it was online then and would have uploaded an earlier sale."""
    code, _serial = _card(session, world)
    now = utcnow()
    _set_contact(session, till, seen=now - timedelta(hours=2))
    report_lost(session, world.household, now=now - timedelta(minutes=30))
    session.commit()
    old, recent = _upload(
        till,
        _at("E1", code, now - timedelta(hours=3)),
        _at("E2", code, now - timedelta(hours=1)),
    )
    assert (old["status"], old["details"]["reason"]) == (
        "rejected",
        "captured_before_last_contact",
    )
    assert recent["status"] == "applied"


def test_a_refused_upload_is_no_contact(till: Till, world: World, session: Session) -> None:
    """An upload records its contact with its results: one refused whole (or a 5xx) records
    nothing, so its retry is judged as the first try would have been."""
    _set_contact(session, till, seen=None)
    bad = till.post("/pos/v1/offline-batches", {"batch_id": "x", "records": []})
    assert bad.status_code == 400
    session.refresh(till.terminal)
    assert till.terminal.last_seen_at is None
    _upload(till, rec("C1", code_at(session, world.household), 1_000, 60))
    session.refresh(till.terminal)
    assert till.terminal.last_seen_at is not None


def test_card_codes_have_a_smaller_floor_offline(
    till: Till, world: World, session: Session
) -> None:
    """No PIN can be checked offline: card codes may take 2,000 fen a household a day (of
    the 5,000 floor); dynamic codes the rest."""
    code, _serial = _card(session, world)
    now = utcnow() - timedelta(minutes=5)
    first, second = _upload(
        till,
        _at("K1", code, now, 1_500, amount_fen=25_000),
        _at("K2", code, now, 600, amount_fen=10_000),
    )
    assert first["status"] == "applied"
    assert (second["status"], second["code"]) == ("rejected", "over_floor_limit")
    assert second["details"] == {"floor_limit_fen": 2_000, "code_kind": "card"}
    [dynamic] = _upload(till, rec("K3", code_at(session, world.household), 50_000, 3_000))
    assert dynamic["status"] == "applied"


def test_card_floor_comes_from_the_environment(
    app: Flask, till: Till, world: World, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Config({"OFFLINE_CARD_FLOOR_LIMIT_FEN": "0"}).OFFLINE_CARD_FLOOR_LIMIT_FEN == 0
    monkeypatch.setitem(app.config, "OFFLINE_CARD_FLOOR_LIMIT_FEN", 0)
    assert till.client.get("/pos/v1/keys").json["offline_policy"]["card_floor_limit_fen"] == 0
    code, _serial = _card(session, world)
    [res] = _upload(till, _at("Z1", code, utcnow() - timedelta(minutes=5), 60))
    assert (res["status"], res["code"]) == ("rejected", "over_floor_limit")
