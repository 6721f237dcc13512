"""Real threads on real PostgreSQL: an account turned off by two admins at once (or one
double click) is turned off once, with one audit entry."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mall.audit.models import AuditEntry
from mall.extensions import db
from mall.staff.services import deactivate_user
from mall.users.models import User
from tests.factories import make_county, make_user
from tests.threads import count, run_threads

pytestmark = pytest.mark.postgres_only

THREADS = 6


def test_an_account_turned_off_six_times_at_once_is_audited_once(committed: Flask) -> None:
    session = db.session()
    c = make_county(session)
    admin_id = make_user(session, "township_admin", c.townships[0]).id
    clerk_id = make_user(session, "village_clerk", c.villages[0]).id
    session.commit()
    turned_off: list[bool] = []

    def deactivate(s: Session) -> None:
        admin, clerk = s.get(User, admin_id), s.get(User, clerk_id)
        assert admin is not None
        assert clerk is not None
        turned_off.append(deactivate_user(s, admin, clerk))

    assert run_threads(THREADS, deactivate) == ["ok"] * THREADS  # again: nothing to do
    assert sorted(turned_off) == [False] * (THREADS - 1) + [True]
    assert count(select(func.count()).where(AuditEntry.action == "user.deactivate")) == 1
