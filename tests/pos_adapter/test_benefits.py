"""Benefits at the till: listed by scan, granted through /pos/v1/benefit-uses with limits."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mall.benefits.models import BenefitUse
from mall.benefits.services import create_benefit
from mall.codes.services import card_code, issue_card
from mall.partners.models import Partner
from mall.subjects.models import CreditSubject
from tests.factories import PIN, make_user
from tests.pos_adapter.conftest import Till, World


def _benefit(session: Session, partner: Partner, **terms: Any) -> int:
    from mall.regions.models import Region

    county = session.get(Region, partner.county_id)
    assert county is not None
    admin = make_user(session, "county_admin", county)
    benefit = create_benefit(
        session,
        admin,
        {
            "kind": "percent_discount",
            "title_zh": "体检八折",
            "percent_bp": 2000,
            "partner_id": partner.id,
            **terms,
        },
    )
    session.commit()
    return benefit.id


def test_scan_lists_and_use_records(till: Till, world: World, session: Session) -> None:
    bid = _benefit(session, world.partner, min_level_rank=2, limit_per_day=1)
    high = _benefit(session, world.partner, min_level_rank=5, title_zh="五星专享")
    other = _benefit(session, world.other_partner, min_level_rank=1)
    code = world.code(session)
    listed = till.post("/pos/v1/scan", {"code": code}).json["benefits"]
    assert [b["benefit_id"] for b in listed] == [bid]
    r = till.post("/pos/v1/benefit-uses", {"code": code, "benefit_id": bid, "amount_fen": 10_000})
    assert r.status_code == 201, r.json
    assert r.json["discount_fen"] == 2_000
    again = till.post("/pos/v1/benefit-uses", {"code": code, "benefit_id": bid, "amount_fen": 1})
    assert (again.status_code, again.json["error"]["code"]) == (409, "benefit_limit_reached")
    low = till.post("/pos/v1/benefit-uses", {"code": code, "benefit_id": high, "amount_fen": 1})
    assert (low.status_code, low.json["error"]["code"]) == (403, "level_too_low")
    wrong = till.post("/pos/v1/benefit-uses", {"code": code, "benefit_id": other, "amount_fen": 1})
    assert (wrong.status_code, wrong.json["error"]["code"]) == (403, "partner_not_eligible")


def test_benefit_not_applicable(till: Till, world: World, session: Session) -> None:
    bid = _benefit(session, world.partner, min_level_rank=1, active=False)
    r = till.post(
        "/pos/v1/benefit-uses", {"code": world.code(session), "benefit_id": bid, "amount_fen": 1}
    )
    assert (r.status_code, r.json["error"]["code"]) == (403, "benefit_not_applicable")


# ---------------------------------------------------------------- issue 19, break 3


def _card(session: Session, subject: CreditSubject) -> str:
    card = issue_card(session, subject)
    session.commit()
    return card_code(session, card)


def _use(till: Till, code: str, bid: int, amount: int | None = 10_000, **extra: Any) -> Any:
    return till.post(
        "/pos/v1/benefit-uses", {"code": code, "benefit_id": bid, "amount_fen": amount, **extra}
    )


def _err(r: Any) -> tuple[int, str]:
    return r.status_code, r.json["error"]["code"]


def _uses(session: Session) -> int:
    return int(session.scalar(select(func.count(BenefitUse.id))) or 0)


def test_a_card_code_needs_the_household_pin(till: Till, world: World, session: Session) -> None:
    """A photo of the card is not enough: pin_required, as for a payment."""
    bid = _benefit(session, world.partner, kind="free_item", percent_bp=None, cap_fen=30_000)
    code = _card(session, world.household)
    assert _err(_use(till, code, bid, 100_000_000)) == (403, "pin_required")
    assert _uses(session) == 0
    r = _use(till, code, bid, 100_000_000, pin=PIN)
    assert r.status_code == 201, r.json
    assert (r.json["amount_fen"], r.json["discount_fen"]) == (100_000_000, 30_000)
    assert r.json["holder_ref"] == world.household.ref


def test_wrong_pins_count_and_lock_with_the_payments(
    till: Till, world: World, session: Session
) -> None:
    """One count for the card, whatever the till does with it: wrong PINs on benefit uses and
    on payments add up, the fifth locks, and a locked card neither pays nor grants."""
    bid = _benefit(session, world.partner)
    code = _card(session, world.household)
    first = _use(till, code, bid, pin="000000")
    assert _err(first) == (403, "pin_invalid")
    assert first.json["error"]["details"]["attempts_left"] == 4
    session.expire_all()
    assert world.household.pin_failed_count == 1  # kept, though the use was refused
    pay = {"code": code, "amount_fen": 1_000, "pin": "000000"}
    assert _err(till.post("/pos/v1/payments", pay)) == (403, "pin_invalid")
    assert _err(_use(till, code, bid, pin="000000")) == (403, "pin_invalid")
    assert _err(till.post("/pos/v1/payments", pay)) == (403, "pin_invalid")
    assert _err(_use(till, code, bid, pin="000000")) == (403, "pin_locked")
    assert _err(_use(till, code, bid, pin=PIN)) == (403, "pin_locked")
    assert _err(till.post("/pos/v1/payments", {**pay, "pin": PIN})) == (403, "pin_locked")
    assert _uses(session) == 0


def test_a_dynamic_code_needs_no_pin_and_can_still_pay(
    till: Till, world: World, session: Session
) -> None:
    bid = _benefit(session, world.partner, percent_bp=1000, cap_fen=500)
    code = world.code(session)
    r = _use(till, code, bid, 3_000)
    assert r.status_code == 201, r.json
    assert r.json["discount_fen"] == 300
    paid = till.post("/pos/v1/payments", {"code": code, "amount_fen": 2_700})
    assert paid.status_code == 201, paid.json


@pytest.mark.parametrize(
    ("terms", "expected"),
    [
        ({"percent_bp": 2000, "cap_fen": 3_000}, 3_000),
        ({"kind": "fixed_discount", "percent_bp": None, "fixed_fen": 500}, 500),
        ({"kind": "free_item", "percent_bp": None, "cap_fen": 30_000}, 30_000),
        ({"kind": "priority_service", "percent_bp": None}, 0),
    ],
)
def test_the_value_is_the_benefits_not_the_tills(
    till: Till, world: World, session: Session, terms: dict[str, Any], expected: int
) -> None:
    """The till sends the bill; what the use is worth comes from the benefit's terms, and the
    report counts that."""
    bid = _benefit(session, world.partner, **terms)
    # A value the till might add is not a field of the request: ignored.
    r = _use(till, world.code(session), bid, 100_000_000, discount_fen=100_000_000)
    assert r.status_code == 201, r.json
    assert r.json["discount_fen"] == expected
    assert session.scalar(select(func.sum(BenefitUse.discount_fen))) == expected


@pytest.mark.parametrize("amount", [-1, 100_000_001, 10**15, "100", 1.5])
def test_an_absurd_bill_is_a_validation_error(
    till: Till, world: World, session: Session, amount: object
) -> None:
    bid = _benefit(session, world.partner, kind="free_item", percent_bp=None, cap_fen=30_000)
    r = _use(till, world.code(session), bid, amount)  # type: ignore[arg-type]
    assert _err(r) == (400, "validation_error")
    assert "amount_fen" in r.json["error"]["details"]["fields"]
    assert _uses(session) == 0
