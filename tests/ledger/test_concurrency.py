"""Real threads on real PostgreSQL: no double spend, no negative wallet, no deadlock."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.errors import Conflict
from mall.extensions import db
from mall.ledger import Leg, balance, capture_hold, place_hold, post_entry, verify_ledger, void_hold
from mall.ledger.models import Entry
from tests.ledger.conftest import Books, make_books

pytestmark = pytest.mark.postgres_only

THREADS = 60


def books_committed() -> Books:
    session = db.session()
    books = make_books(session)
    session.commit()
    return books


def run_threads(n: int, work: Callable[[int, Session], str]) -> list[str]:
    """Start `n` workers together, each in its own session; returns their outcomes."""
    barrier = threading.Barrier(n)

    def one(i: int) -> str:
        with Session(db.engine) as session:
            barrier.wait()
            return work(i, session)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


def verify_all() -> None:
    with db.engine.connect() as conn:
        report = verify_ledger(conn)
    assert report.ok, report.first


def test_sixty_threads_spending_from_one_wallet(committed: Flask) -> None:
    books = books_committed()
    books.issue_points(db.session(), 300)
    db.session.commit()

    def spend(i: int, session: Session) -> str:
        try:
            post_entry(
                session,
                township_id=books.township_id,
                kind="points_redeemed",
                legs=[Leg(books.points.id, -10), Leg(books.payable_points.id, 10)],
                actor=f"terminal:T{i}",
                idempotency_key=f"spend-{i}",
            )
            session.commit()
            return "ok"
        except Conflict as exc:
            session.rollback()
            return exc.code

    outcomes = run_threads(THREADS, spend)
    assert outcomes.count("ok") == 30  # exactly what 300 points afford at 10 each
    assert outcomes.count("insufficient_points") == THREADS - 30
    with Session(db.engine) as s:
        assert balance(s, books.township_id, books.points.id).posted == 0
        assert balance(s, books.township_id, books.payable_points.id).posted == 300
    verify_all()


def test_transfers_in_opposite_orders_do_not_deadlock(committed: Flask) -> None:
    books = books_committed()
    second = make_books_in(books)
    session = db.session()
    books.issue_points(session, 1_000)
    session.commit()
    a, b, p = books.points.id, second, books.payable_points.id

    def shuffle(i: int, session: Session) -> str:
        rnd = random.Random(i)
        for _ in range(20):
            legs = (
                [Leg(a, -3), Leg(b, 2), Leg(p, 1)] if i % 2 else [Leg(p, 1), Leg(b, 2), Leg(a, -3)]
            )
            if rnd.random() < 0.5:  # and the other way round, legs listed in yet another order
                legs = [Leg(x.account_id, -x.amount) for x in reversed(legs)]
            try:
                post_entry(
                    session,
                    township_id=books.township_id,
                    kind="points_redeemed",
                    legs=legs,
                    actor=f"t{i}",
                )
                session.commit()
            except Conflict:
                session.rollback()  # a wallet ran dry: refused, never negative
        return "done"

    assert run_threads(50, shuffle) == ["done"] * 50
    with Session(db.engine) as s:
        total = sum(balance(s, books.township_id, x).posted for x in (a, b, p))
        assert total == 2_000  # 1,000 issued to each household; entries only move points
        for x in (a, b):
            assert balance(s, books.township_id, x).posted >= 0
    verify_all()


def make_books_in(books: Books) -> int:
    """A second household wallet in the same township, with points to spend."""
    from mall.ledger import household_wallets
    from mall.regions.models import Region
    from tests.factories import make_household

    session = db.session()
    village = session.scalars(select(Region).where(Region.parent_id == books.township_id)).first()
    assert village is not None
    wallet = household_wallets(session, make_household(session, village)).points
    post_entry(
        session,
        township_id=books.township_id,
        kind="points_issued",
        legs=[Leg(books.points_fund.id, -1_000), Leg(wallet.id, 1_000)],
        actor="clerk",
    )
    session.commit()
    return wallet.id


def test_the_same_idempotency_key_from_twenty_threads_posts_once(committed: Flask) -> None:
    books = books_committed()
    books.issue_points(db.session(), 100)
    db.session.commit()

    def spend(i: int, session: Session) -> str:
        posted = post_entry(
            session,
            township_id=books.township_id,
            kind="points_redeemed",
            legs=[Leg(books.points.id, -60), Leg(books.payable_points.id, 60)],
            actor=f"t{i}",
            idempotency_key="the-one",
        )
        session.commit()
        return str(posted.entry_id)

    outcomes = run_threads(20, spend)
    assert len(set(outcomes)) == 1
    with Session(db.engine) as s:
        assert balance(s, books.township_id, books.points.id).posted == 40
        assert s.scalar(select(Entry.id).where(Entry.idempotency_key == "the-one")) == int(
            outcomes[0]
        )


def test_capture_and_void_race_and_exactly_one_wins(committed: Flask) -> None:
    books = books_committed()
    session = db.session()
    books.grant_integrity(session, 10_000)
    holds = [
        place_hold(
            session,
            account=books.integrity,
            counter_account=books.payable_cny,
            amount=100,
            actor="t",
        ).id
        for _ in range(10)
    ]
    session.commit()

    def resolve(i: int, session: Session) -> str:
        hold_id = holds[i // 4]
        try:
            if i % 2:
                capture_hold(session, township_id=books.township_id, hold_id=hold_id, actor="t")
            else:
                void_hold(session, township_id=books.township_id, hold_id=hold_id, actor="t")
            session.commit()
            return "captured" if i % 2 else "voided"
        except Conflict as exc:
            session.rollback()
            return exc.code

    outcomes = run_threads(40, resolve)
    resolved = [o for o in outcomes if o in ("captured", "voided")]
    assert len(resolved) == 10  # each of the ten holds resolved once
    assert outcomes.count("invalid_state") == 30
    captured = outcomes.count("captured")
    with Session(db.engine) as s:
        b = balance(s, books.township_id, books.integrity.id)
        assert (b.posted, b.held) == (10_000 - 100 * captured, 0)
    verify_all()
