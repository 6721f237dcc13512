"""mall.staff.services: deactivation rules (who may turn whom off), audited once."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.audit.models import AuditEntry
from mall.errors import Forbidden, NotFound
from mall.staff.services import deactivate_user
from tests.factories import make_county, make_partner, make_user


def test_a_township_admin_turns_off_its_own_cashier_once(session: Session) -> None:
    c = make_county(session)
    admin = make_user(session, "township_admin", c.townships[0])
    cashier = make_user(
        session, "cashier", c.townships[0], partner=make_partner(session, c.townships[0])
    )
    assert deactivate_user(session, admin, cashier) is True
    assert cashier.active is False
    assert deactivate_user(session, admin, cashier) is False  # already off: no second entry
    entries = session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "user.deactivate", AuditEntry.object_id == str(cashier.id)
        )
    ).all()
    assert len(entries) == 1
    assert (entries[0].before, entries[0].after) == ({"active": True}, {"active": False})


def test_not_oneself_not_a_peer_not_another_township(session: Session) -> None:
    c = make_county(session)
    admin = make_user(session, "township_admin", c.townships[0])
    peer = make_user(session, "township_admin", c.townships[0])
    elsewhere = make_user(session, "village_clerk", c.villages[2])  # of the second township
    with pytest.raises(Forbidden):
        deactivate_user(session, admin, admin)
    with pytest.raises(Forbidden):
        deactivate_user(session, admin, peer)  # a township admin manages clerks and cashiers
    with pytest.raises(NotFound):
        deactivate_user(session, admin, elsewhere)  # not even told it exists
    county_admin = make_user(session, "county_admin", c.county)
    assert deactivate_user(session, county_admin, peer) is True
