"""Races on PostgreSQL: real commits, one thread (and one Session) per request."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mall.catalog.models import Goods
from mall.catalog.services import create_goods
from mall.clock import as_aware
from mall.errors import DomainError
from mall.extensions import db
from mall.ledger.accounts import household_wallet, partner_payable
from mall.ledger.models import HOUSEHOLD_POINTS, POINTS
from mall.partners.models import Partner
from mall.payments.services import ItemRequest
from mall.regions.services import update_settings
from mall.reservations import services
from mall.reservations.models import Reservation
from mall.subjects.models import CreditSubject
from tests.factories import make_household
from tests.pos_adapter.conftest import fund_household
from tests.reservations.conftest import make_shop

pytestmark = pytest.mark.postgres_only


def _setup(app: Flask) -> Any:
    # Restore the default join mode the `session` fixture may have left changed (see
    # tests/pos_adapter/test_concurrency.py).
    db.session.remove()
    db.session.configure(bind=None, join_transaction_mode="conditional_savepoint")
    return make_shop(db.session())


def _parallel(app: Flask, jobs: list[Callable[[Session], Any]]) -> list[str]:
    """Run each job in its own thread and Session; each commits or rolls back."""

    def one(job: Callable[[Session], Any]) -> str:
        with app.app_context(), Session(db.engine, expire_on_commit=False) as s:
            try:
                job(s)
                s.commit()
                return "ok"
            except DomainError as exc:
                s.rollback()
                return exc.code

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(one, jobs))


def _reserve(subject_id: int, partner_id: int, sku: str, qty: int = 1) -> Callable[[Session], Any]:
    def job(s: Session) -> Any:
        subject = s.get(CreditSubject, subject_id)
        assert subject is not None
        return services.reserve(s, subject, partner_id, [ItemRequest(sku, qty)])

    return job


def _more_households(s: Session, shop: Any, count: int) -> list[CreditSubject]:
    """Households rated like the shop's, with 100 points each (flushed, not committed)."""
    households = []
    for n in range(count):
        h = make_household(s, shop.county.villages[0], name=f"张{n}")
        h.level_code, h.level_rank, h.level_valid_until = "3", 3, shop.household.level_valid_until
        households.append(h)
    s.flush()
    for h in households:
        fund_household(s, h, points=100)
    return households


def test_the_last_item_reserved_by_twelve_households_at_once(committed: Flask) -> None:
    shop = _setup(committed)
    s = db.session()
    households = [shop.household, *_more_households(s, shop, 11)]
    s.commit()
    results = _parallel(committed, [_reserve(h.id, shop.partner.id, "SOAP") for h in households])
    assert Counter(results) == {"ok": 1, "out_of_stock": 11}, results
    s.expire_all()
    assert s.get(Goods, shop.soap.id).stock == 0  # type: ignore[union-attr]
    assert s.scalar(select(func.count()).select_from(Reservation)) == 1
    held = sum(household_wallet(s, h, HOUSEHOLD_POINTS).held_balance for h in households)
    assert held == 10


def test_one_household_racing_its_own_limit(committed: Flask) -> None:
    shop = _setup(committed)
    results = _parallel(
        committed, [_reserve(shop.household.id, shop.partner.id, "TOWEL") for _ in range(8)]
    )
    assert Counter(results) == {"ok": 3, "reservation_limit_reached": 5}, results
    s = db.session()
    s.expire_all()
    assert s.get(Goods, shop.towel.id).stock == 7  # type: ignore[union-attr]
    assert household_wallet(s, shop.household, HOUSEHOLD_POINTS).held_balance == 90


def test_two_expiry_runners_release_each_reservation_once(committed: Flask) -> None:
    shop = _setup(committed)
    s = db.session()
    update_settings(s, shop.county.townships[0], {"reservation_max_open": 20})
    s.commit()
    for _ in range(6):
        services.reserve(s, shop.household, shop.partner.id, [ItemRequest("TOWEL", 1)])
    s.commit()
    deadline = max(as_aware(r.expires_at) for r in s.scalars(select(Reservation)))
    later = deadline + timedelta(seconds=1)
    counts: list[int] = []

    def runner(session: Session) -> None:
        counts.append(services.expire_reservations(session, now=later, limit=4))

    assert _parallel(committed, [runner, runner, runner]) == ["ok"] * 3
    assert services.expire_reservations(s, now=later) == 6 - sum(counts)
    s.commit()
    s.expire_all()
    assert {r.status for r in s.scalars(select(Reservation))} == {"expired"}
    wallet = household_wallet(s, shop.household, HOUSEHOLD_POINTS)
    assert (wallet.posted_balance, wallet.held_balance) == (1000, 0)
    assert s.get(Goods, shop.towel.id).stock == 10  # type: ignore[union-attr]


def test_pickup_racing_cancel_one_wins(committed: Flask) -> None:
    shop = _setup(committed)
    s = db.session()
    r = services.reserve(s, shop.household, shop.partner.id, [ItemRequest("TOWEL", 2)])
    s.commit()
    code, public_id = r.pickup_code, r.public_id

    def pick(session: Session) -> None:
        partner = session.get(Partner, shop.partner.id)
        assert partner is not None
        services.pickup(session, partner, code, actor="terminal:T")

    def cancel(session: Session) -> None:
        subject = session.get(CreditSubject, shop.household.id)
        assert subject is not None
        services.cancel(session, subject, public_id)

    results = _parallel(committed, [pick, cancel, pick, cancel])
    assert Counter(results)["ok"] == 1, results
    assert set(results) <= {"ok", "invalid_state"}
    s.expire_all()
    wallet = household_wallet(s, shop.household, HOUSEHOLD_POINTS)
    status = s.scalar(select(Reservation.status))
    if status == "picked_up":
        assert (wallet.posted_balance, wallet.held_balance) == (940, 0)
        assert s.get(Goods, shop.towel.id).stock == 8  # type: ignore[union-attr]
    else:
        assert (wallet.posted_balance, wallet.held_balance) == (1000, 0)
        assert s.get(Goods, shop.towel.id).stock == 10  # type: ignore[union-attr]


def test_households_drawing_the_same_pickup_code_at_once(
    committed: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four households reserve at one partner at once and all draw the same first code: each
    checks it while no other has inserted it, so all pass `_unused_code`; the partial unique
    index lets one INSERT through and the others, once it commits, retry with fresh codes."""
    shop = _setup(committed)
    s = db.session()
    households = [shop.household, *_more_households(s, shop, 3)]
    for n in range(len(households)):  # goods of their own: no stock row lock to queue on
        create_goods(
            s,
            shop.partner,
            sku=f"EGG{n}",
            name="鸡蛋",
            points_price=10,
            settlement_price_fen=300,
            stock=1,
        )
    partner_payable(s, shop.household.township_id, shop.partner.id, POINTS)  # exists already
    s.commit()
    everyone_drew = threading.Barrier(len(households), timeout=10)
    first_draw = threading.local()
    new_pickup_code = services.new_pickup_code

    def same_code_first() -> str:
        if getattr(first_draw, "done", False):
            return new_pickup_code()
        first_draw.done = True
        everyone_drew.wait()  # every household holds only its own rows' locks here
        return "12345678"

    monkeypatch.setattr(services, "new_pickup_code", same_code_first)
    jobs = [_reserve(h.id, shop.partner.id, f"EGG{n}") for n, h in enumerate(households)]
    assert _parallel(committed, jobs) == ["ok"] * len(households)
    s.expire_all()
    codes = s.scalars(select(Reservation.pickup_code)).all()
    assert len(codes) == len(set(codes)) == len(households)
    assert "12345678" in codes
