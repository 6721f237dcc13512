"""Fixtures of the credit-code tests: a rated household and a frozen clock."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy.orm import Session

from mall.subjects.models import CreditSubject
from tests.factories import make_county, make_household

NOW = datetime(2026, 11, 21, 2, 0, 0, tzinfo=UTC)


@pytest.fixture
def household(session: Session) -> CreditSubject:
    county = make_county(session, townships=1, villages_per_township=1)
    subject = make_household(session, county.villages[0])
    subject.level_code = "AAA"
    subject.level_rank = 6
    subject.level_valid_until = date(2099, 12, 31)
    session.flush()
    return subject
