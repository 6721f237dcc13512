"""Two-phase holds: place, capture in full or for less, void, expire; each resolves once."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from mall.clock import utcnow
from mall.errors import Conflict, ValidationFailed
from mall.ledger import (
    Leg,
    Source,
    balance,
    capture_hold,
    expire_holds,
    place_hold,
    post_entry,
    verify_ledger,
    void_hold,
)
from mall.ledger.models import Entry, Hold
from tests.ledger.conftest import Books, check_deferred_constraints


def hold(session: Session, books: Books, amount: int, **kw: object) -> Hold:
    return place_hold(
        session,
        account=books.integrity,
        counter_account=books.payable_cny,
        amount=amount,
        actor="terminal:T",
        reason="预授权",
        source=Source("payment", "auth-1"),
        **kw,  # type: ignore[arg-type]
    )


def bal(session: Session, books: Books) -> tuple[int, int, int]:
    b = balance(session, books.township_id, books.integrity.id)
    return b.posted, b.held, b.available


def test_an_open_hold_counts_against_the_available_balance(session: Session, books: Books) -> None:
    books.grant_integrity(session, 1_000)
    h = hold(session, books, 600)
    assert h.status == "open"
    assert bal(session, books) == (1_000, 600, 400)
    with pytest.raises(Conflict) as err:
        hold(session, books, 401)
    assert err.value.code == "insufficient_funds"
    with pytest.raises(Conflict):  # a plain spend sees the hold too
        post_entry(
            session,
            township_id=books.township_id,
            kind="integrity_spent",
            legs=[Leg(books.integrity.id, -401), Leg(books.payable_cny.id, 401)],
            actor="terminal:T",
        )


def test_capture_for_less_posts_that_and_releases_the_rest(session: Session, books: Books) -> None:
    books.grant_integrity(session, 1_000)
    h = hold(session, books, 600)
    posted = capture_hold(
        session,
        township_id=books.township_id,
        hold_id=h.id,
        amount=450,
        actor="terminal:T",
        kind="integrity_spent",
    )
    assert bal(session, books) == (550, 0, 550)
    assert balance(session, books.township_id, books.payable_cny.id).posted == 450
    assert h.status == "captured"
    assert h.captured_amount == 450
    entry = session.get(Entry, (books.township_id, posted.entry_id))
    assert entry is not None
    assert entry.hold_id == h.id
    assert entry.kind == "integrity_spent"
    assert entry.source_id == "auth-1"
    assert verify_ledger(session.connection(), books.township_id).ok
    check_deferred_constraints(session)


def test_capture_in_full_by_default(session: Session, books: Books) -> None:
    books.grant_integrity(session, 1_000)
    h = hold(session, books, 1_000)
    capture_hold(session, township_id=books.township_id, hold_id=h.id, actor="terminal:T")
    assert bal(session, books) == (0, 0, 0)


def test_void_releases_everything_and_posts_nothing(session: Session, books: Books) -> None:
    books.grant_integrity(session, 1_000)
    h = hold(session, books, 300)
    entries_before = session.scalar(select(Entry.id).order_by(Entry.id.desc()).limit(1))
    void_hold(session, township_id=books.township_id, hold_id=h.id, actor="terminal:T")
    assert h.status == "voided"
    assert bal(session, books) == (1_000, 0, 1_000)
    assert session.scalar(select(Entry.id).order_by(Entry.id.desc()).limit(1)) == entries_before


def test_a_hold_resolves_exactly_once(session: Session, books: Books) -> None:
    books.grant_integrity(session, 1_000)
    h = hold(session, books, 300)
    capture_hold(session, township_id=books.township_id, hold_id=h.id, actor="t", amount=100)
    for attempt in (
        lambda: void_hold(session, township_id=books.township_id, hold_id=h.id, actor="t"),
        lambda: capture_hold(session, township_id=books.township_id, hold_id=h.id, actor="t"),
    ):
        with pytest.raises(Conflict) as err:
            attempt()
        assert err.value.code == "invalid_state"
    assert bal(session, books) == (900, 0, 900)


def test_a_repeated_capture_with_its_key_returns_the_same_entry(
    session: Session, books: Books
) -> None:
    books.grant_integrity(session, 1_000)
    h = hold(session, books, 300)
    first = capture_hold(
        session, township_id=books.township_id, hold_id=h.id, actor="t", idempotency_key="cap-1"
    )
    again = capture_hold(
        session, township_id=books.township_id, hold_id=h.id, actor="t", idempotency_key="cap-1"
    )
    assert again.replayed
    assert again.entry_id == first.entry_id
    assert bal(session, books) == (700, 0, 700)


def test_placing_with_the_same_key_is_idempotent(session: Session, books: Books) -> None:
    books.grant_integrity(session, 1_000)
    first = hold(session, books, 300, idempotency_key="auth-1")
    assert hold(session, books, 300, idempotency_key="auth-1").id == first.id
    with pytest.raises(Conflict) as err:
        hold(session, books, 301, idempotency_key="auth-1")
    assert err.value.code == "idempotency_conflict"
    assert bal(session, books) == (1_000, 300, 700)


def test_expiry_after_the_deadline(session: Session, books: Books) -> None:
    books.grant_integrity(session, 1_000)
    soon = utcnow() + timedelta(minutes=5)
    h1 = hold(session, books, 100, expires_at=soon)
    h2 = hold(session, books, 200, expires_at=soon + timedelta(hours=1))
    assert expire_holds(session, township_id=books.township_id) == 0
    assert expire_holds(session, township_id=books.township_id, now=soon) == 1
    assert (h1.status, h2.status) == ("expired", "open")
    assert bal(session, books) == (1_000, 200, 800)
    later = soon + timedelta(hours=2)
    assert expire_holds(session, township_id=books.township_id, now=later) == 1
    assert bal(session, books) == (1_000, 0, 1_000)
    assert verify_ledger(session.connection(), books.township_id).ok


def test_a_hold_past_its_deadline_cannot_be_captured(session: Session, books: Books) -> None:
    books.grant_integrity(session, 1_000)
    h = hold(session, books, 100, expires_at=utcnow() + timedelta(milliseconds=20))
    time.sleep(0.05)  # the deadline passes before the expiry job has run
    with pytest.raises(Conflict) as err:
        capture_hold(session, township_id=books.township_id, hold_id=h.id, actor="t")
    assert err.value.details["status"] == "expired"


def test_bad_holds_are_refused(session: Session, books: Books) -> None:
    books.grant_integrity(session, 1_000)
    with pytest.raises(ValidationFailed):
        hold(session, books, 0)
    with pytest.raises(ValidationFailed):  # points cannot be held for a payable in fen
        place_hold(
            session,
            account=books.integrity,
            counter_account=books.payable_points,
            amount=1,
            actor="t",
        )
    h = hold(session, books, 100)
    with pytest.raises(ValidationFailed):
        capture_hold(session, township_id=books.township_id, hold_id=h.id, actor="t", amount=101)


def test_the_database_refuses_reopening_a_resolved_hold(session: Session, books: Books) -> None:
    books.grant_integrity(session, 1_000)
    h = hold(session, books, 100)
    void_hold(session, township_id=books.township_id, hold_id=h.id, actor="t")
    with pytest.raises(DBAPIError), session.begin_nested():
        session.execute(
            text(
                "UPDATE ledger_holds SET status = 'open', resolved_at = NULL, resolved_by = NULL"
                " WHERE township_id = :t AND id = :id"
            ),
            {"t": books.township_id, "id": h.id},
        )
    with pytest.raises(DBAPIError), session.begin_nested():
        session.execute(
            text("DELETE FROM ledger_holds WHERE township_id = :t AND id = :id"),
            {"t": books.township_id, "id": h.id},
        )
