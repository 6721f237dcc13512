"""Benefits at the till: listed by scan, granted through /pos/v1/benefit-uses with limits."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from mall.benefits.services import create_benefit
from mall.partners.models import Partner
from tests.factories import make_user
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
