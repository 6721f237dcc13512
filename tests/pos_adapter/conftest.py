"""Fixtures of the POS tests: a partner with a terminal, a rated household with money and
points, and a test client that signs requests like a terminal."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from mall.catalog.models import Goods
from mall.catalog.services import create_goods
from mall.codes.services import sign_dynamic_code
from mall.ledger.accounts import household_wallets, system_account
from mall.ledger.models import INTEGRITY_FUND, POINTS, POINTS_FUND
from mall.ledger.posting import Leg, post_entry
from mall.partners.models import Partner, Terminal
from mall.partners.services import create_terminal
from mall.subjects.models import CreditSubject
from pos_adapter.auth import sign
from tests.factories import make_county, make_household, make_partner


def fund_household(
    session: Session, subject: CreditSubject, *, integrity_fen: int = 0, points: int = 0
) -> None:
    wallets = household_wallets(session, subject)
    t = subject.township_id
    if integrity_fen:
        fund = system_account(session, t, INTEGRITY_FUND)
        post_entry(
            session,
            township_id=t,
            kind="integrity_granted",
            legs=[Leg(fund.id, -integrity_fen), Leg(wallets.integrity.id, integrity_fen)],
            actor="test",
        )
    if points:
        fund = system_account(session, t, POINTS_FUND, POINTS)
        post_entry(
            session,
            township_id=t,
            kind="points_issued",
            legs=[Leg(fund.id, -points), Leg(wallets.points.id, points)],
            actor="test",
        )


def rate(subject: CreditSubject, rank: int | None) -> None:
    subject.level_code = str(rank) if rank else None
    subject.level_rank = rank
    subject.level_valid_until = date(2099, 12, 31) if rank else None


@dataclass
class Till:
    """A Flask test client that signs every request as `terminal`."""

    client: FlaskClient
    terminal: Terminal
    secret: str
    clock_offset: int = 0
    sent: list[dict[str, str]] = field(default_factory=list)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = None,
        idempotent: bool | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Any:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        ts = str(int(time.time()) + self.clock_offset)
        nonce = secrets.token_urlsafe(16)
        h = {
            "X-Terminal-Id": self.terminal.terminal_id,
            "X-Timestamp": ts,
            "X-Nonce": nonce,
            "X-Signature": sign(self.secret, method, path, ts, nonce, data),
            "Content-Type": "application/json",
        }
        if idempotent if idempotent is not None else method == "POST" and _needs_key(path):
            h["Idempotency-Key"] = key or secrets.token_hex(8)
        h.update(headers or {})
        self.sent.append(h)
        return self.client.open(path, method=method, data=data, headers=h)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, body, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)


def _needs_key(path: str) -> bool:
    return not path.startswith(("/pos/v1/scan", "/pos/v1/quote"))


@dataclass
class World:
    partner: Partner
    other_partner: Partner
    terminal: Terminal
    household: CreditSubject
    poor_household: CreditSubject
    goods: Goods

    def code(self, session: Session, subject: CreditSubject | None = None) -> str:
        return sign_dynamic_code(session, subject or self.household).code


@pytest.fixture
def world(session: Session) -> World:
    county = make_county(session, townships=2, villages_per_township=1)
    partner = make_partner(session, county.townships[0])
    other = make_partner(session, county.townships[0])
    terminal, _secret = create_terminal(session, partner)
    household = make_household(session, county.villages[0])
    rate(household, 3)  # 6%
    poor = make_household(session, county.villages[0])
    rate(poor, 5)
    session.flush()
    fund_household(session, household, integrity_fen=120_000, points=1_000)
    fund_household(session, poor, integrity_fen=100)
    goods = create_goods(
        session,
        partner,
        sku="TOWEL",
        name="毛巾",
        points_price=30,
        settlement_price_fen=800,
        stock=10,
    )
    session.commit()
    world = World(partner, other, terminal, household, poor, goods)
    world.terminal_secret = _secret  # type: ignore[attr-defined]
    return world


@pytest.fixture
def till(app: Flask, client: FlaskClient, world: World) -> Till:
    return Till(client, world.terminal, world.terminal_secret)  # type: ignore[attr-defined]


@pytest.fixture
def other_till(app: Flask, client: FlaskClient, session: Session, world: World) -> Till:
    terminal, secret = create_terminal(session, world.other_partner)
    session.commit()
    return Till(client, terminal, secret)
