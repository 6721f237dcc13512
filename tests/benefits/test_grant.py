"""A till grants a benefit on a scanned code (`grant_benefit`): a card code needs the household
PIN under the same rule and count as a payment; a dynamic code needs none and stays unspent;
the value is the benefit's own, whatever bill the till reports. And the list's free items
carry the cap that value needs (staff API)."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mall.benefits import services
from mall.benefits.models import BenefitUse
from mall.codes import policy
from mall.codes.models import UsedDynamicCode
from mall.codes.services import PinRejected, card_code, issue_card, sign_dynamic_code
from mall.errors import ValidationFailed
from tests.benefits.conftest import TODAY, World, add_benefit
from tests.factories import PIN, make_user
from tests.helpers import staff_headers

WRONG = "000000"


def grant(session: Session, w: World, code: str, benefit_id: int, **kw: Any) -> BenefitUse:
    args: dict[str, Any] = {
        "code": code,
        "pin": None,
        "benefit_id": benefit_id,
        "partner": w.hospital,
        "amount_fen": None,
        "actor": "test",
        "today": TODAY,
    }
    args.update(kw)
    use, subject = services.grant_benefit(session, **args)
    assert subject.id == w.household.id
    return use


def card(session: Session, w: World) -> str:
    return card_code(session, issue_card(session, w.household))


def uses(session: Session) -> int:
    return int(session.scalar(select(func.count(BenefitUse.id))) or 0)


def test_a_card_code_needs_the_pin(session: Session, world: World) -> None:
    benefit = add_benefit(session, world.county, kind="free_item", cap_fen=30000)
    code = card(session, world)
    with pytest.raises(PinRejected) as exc:
        grant(session, world, code, benefit.id, amount_fen=100_000_000)
    assert (exc.value.status, exc.value.code) == (403, "pin_required")
    assert uses(session) == 0
    recorded = grant(session, world, code, benefit.id, pin=PIN, amount_fen=100_000_000)
    assert (recorded.amount_fen, recorded.discount_fen) == (100_000_000, 30000)


def test_wrong_pins_are_counted_and_lock_as_for_a_payment(session: Session, world: World) -> None:
    benefit = add_benefit(session, world.county)
    code = card(session, world)
    refusals = []
    for _ in range(policy.PIN_MAX_FAILURES):
        with pytest.raises(PinRejected) as exc:
            grant(session, world, code, benefit.id, pin=WRONG)
        refusals.append((exc.value.code, exc.value.keeps_changes))
        if exc.value.code == "pin_invalid":
            assert world.household.pin_failed_count == len(refusals)
    assert refusals == [("pin_invalid", True)] * 4 + [("pin_locked", True)]
    assert world.household.pin_locked_until is not None
    with pytest.raises(PinRejected) as exc:
        grant(session, world, code, benefit.id, pin=PIN)  # locked: even the right PIN
    assert exc.value.code == "pin_locked"
    assert uses(session) == 0


def test_the_right_pin_resets_the_count(session: Session, world: World) -> None:
    benefit = add_benefit(session, world.county)
    code = card(session, world)
    with pytest.raises(PinRejected):
        grant(session, world, code, benefit.id, pin=WRONG)
    assert world.household.pin_failed_count == 1
    grant(session, world, code, benefit.id, pin=PIN)
    assert world.household.pin_failed_count == 0


def test_a_dynamic_code_needs_no_pin_and_is_not_spent(session: Session, world: World) -> None:
    benefit = add_benefit(session, world.county, kind="fixed_discount", fixed_fen=500)
    code = sign_dynamic_code(session, world.household).code
    first = grant(session, world, code, benefit.id, amount_fen=2_000)
    again = grant(session, world, code, benefit.id, pin=WRONG)  # a PIN is not looked at
    assert (first.discount_fen, again.discount_fen) == (500, 500)
    assert world.household.pin_failed_count == 0
    # The same code may still pay the bill: a benefit use spends nothing.
    assert session.scalar(select(func.count()).select_from(UsedDynamicCode)) == 0


def test_an_absurd_bill_is_refused_before_the_pin_is_tried(session: Session, world: World) -> None:
    benefit = add_benefit(session, world.county, kind="free_item", cap_fen=30000)
    code = card(session, world)
    with pytest.raises(ValidationFailed) as exc:
        grant(session, world, code, benefit.id, pin=WRONG, amount_fen=100_000_001)
    assert "amount_fen" in exc.value.details["fields"]
    assert world.household.pin_failed_count == 0


# ---------------------------------------------------------------- the free item's cap (staff)

URL = "/api/v1/admin/benefits"
CHECK_UP = {
    "kind": "free_item",
    "partner_category": "hospital",
    "title_zh": "免费健康体检一次",
    "limit_per_year": 1,
    "funded_by": "township_fund",
}


def test_a_free_item_needs_its_cap(client: FlaskClient, session: Session, world: World) -> None:
    h = staff_headers(make_user(session, "county_admin", world.county.county))
    refused = client.post(URL, json=CHECK_UP, headers=h)
    assert refused.status_code == 400
    assert "cap_fen" in refused.json["error"]["details"]["fields"]
    made = client.post(URL, json={**CHECK_UP, "cap_fen": 30000}, headers=h)
    assert made.status_code == 201, made.json
    assert made.json["cap_fen"] == 30000
    bid = made.json["id"]
    edited = client.patch(f"{URL}/{bid}", json={"cap_fen": 25000}, headers=h)
    assert (edited.status_code, edited.json["cap_fen"]) == (200, 25000)
    dropped = client.patch(f"{URL}/{bid}", json={"cap_fen": None}, headers=h)
    assert dropped.status_code == 400
    # another kind keeps no cap it does not use
    fixed = client.patch(
        f"{URL}/{bid}", json={"kind": "fixed_discount", "fixed_fen": 100}, headers=h
    )
    assert (fixed.status_code, fixed.json["cap_fen"]) == (200, None)


def test_a_free_item_from_before_the_cap_counts_nothing_and_can_be_taken_off(
    client: FlaskClient, session: Session, world: World
) -> None:
    legacy = add_benefit(session, world.county, kind="free_item")  # as the old code stored it
    code = sign_dynamic_code(session, world.household).code
    assert grant(session, world, code, legacy.id, amount_fen=100_000_000).discount_fen == 0
    h = staff_headers(make_user(session, "county_admin", world.county.county))
    off = client.post(f"{URL}/{legacy.id}/deactivate", headers=h)
    assert (off.status_code, off.json["active"]) == (200, False)
    kept_on = client.patch(f"{URL}/{legacy.id}", json={"active": True}, headers=h)
    assert kept_on.status_code == 400  # back on the list only with a cap
