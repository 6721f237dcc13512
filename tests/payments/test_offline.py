"""Offline batches: exactly once per local_id, floor limit, age, shortfall, revoked cards."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mall.clock import utcnow
from mall.codes.services import card_code, issue_card, report_lost, sign_dynamic_code
from mall.ledger.accounts import system_account
from mall.ledger.models import OFFLINE_SHORTFALL
from mall.payments.models import Payment
from mall.payments.services import available_balances
from tests.pos_adapter.conftest import Till, World


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
    records = [rec(f"F{i}", code_at(session, world.household), 10_000, 2_000) for i in range(3)]
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
