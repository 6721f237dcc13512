"""Fixtures of the ledger tests: one township's books with a household, a partner and funds."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from mall.ledger import (
    Leg,
    household_wallets,
    partner_payable,
    post_entry,
    system_account,
)
from mall.ledger.models import CNY, EXPIRED_FORFEITED, INTEGRITY_FUND, POINTS, POINTS_FUND, Account
from mall.partners.models import Partner
from mall.subjects.models import CreditSubject
from tests.factories import make_county, make_household, make_partner


@dataclass
class Books:
    township_id: int
    household: CreditSubject
    partner: Partner
    points: Account  # the household's points wallet
    integrity: Account  # the household's integrity-money wallet (fen)
    points_fund: Account
    integrity_fund: Account
    payable_points: Account  # what the township owes the partner for points redemptions
    payable_cny: Account  # ... and for integrity-money discounts (fen)
    expired_points: Account

    def issue_points(self, session: Session, amount: int) -> None:
        post_entry(
            session,
            township_id=self.township_id,
            kind="points_issued",
            legs=[Leg(self.points_fund.id, -amount), Leg(self.points.id, amount)],
            actor="user:clerk",
            reason="志愿服务",
        )

    def grant_integrity(self, session: Session, fen: int) -> None:
        post_entry(
            session,
            township_id=self.township_id,
            kind="integrity_granted",
            legs=[Leg(self.integrity_fund.id, -fen), Leg(self.integrity.id, fen)],
            actor="user:admin",
            reason="三星级诚信金",
        )


def make_books(session: Session) -> Books:
    county = make_county(session, townships=1, villages_per_township=1)
    town = county.townships[0]
    # The factories draw from SystemRandom, which Hypothesis's seeding of `random` leaves
    # alone (a counter here was imported twice under importlib and repeated its numbers).
    household = make_household(session, county.villages[0])
    partner = make_partner(session, town)
    wallets = household_wallets(session, household)
    return Books(
        township_id=town.id,
        household=household,
        partner=partner,
        points=wallets.points,
        integrity=wallets.integrity,
        points_fund=system_account(session, town.id, POINTS_FUND),
        integrity_fund=system_account(session, town.id, INTEGRITY_FUND),
        payable_points=partner_payable(session, town.id, partner.id, POINTS),
        payable_cny=partner_payable(session, town.id, partner.id, CNY),
        expired_points=system_account(session, town.id, EXPIRED_FORFEITED, POINTS),
    )


@pytest.fixture
def books(session: Session) -> Books:
    return make_books(session)


def check_deferred_constraints(session: Session) -> None:
    """Fire PostgreSQL's deferred balance triggers now: the test transaction never commits."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
        session.execute(text("SET CONSTRAINTS ALL DEFERRED"))
