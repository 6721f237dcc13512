from sqlalchemy.orm import Session

from tests.factories import make_county, make_household, make_partner, make_user


def test_factories_build_a_county(session: Session) -> None:
    c = make_county(session)
    h = make_household(session, c.villages[0])
    assert h.township_id == c.townships[0].id
    assert h.ref.startswith("h")
    p = make_partner(session, c.townships[1])
    assert make_user(session, "cashier", c.townships[1], partner=p).partner_id == p.id
