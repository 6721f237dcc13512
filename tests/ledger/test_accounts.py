"""mall.ledger.accounts: a sale's accounts, and the locks a sale that posts takes once."""

from __future__ import annotations

import threading

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from mall.extensions import db
from mall.ledger import Leg, post_entries, verify_ledger
from mall.ledger.accounts import partner_payable, sale_accounts
from mall.ledger.models import CNY
from mall.ledger.posting import EntrySpec, LockedBooks, lock_chain_head
from mall.regions.models import Region
from mall.subjects.models import CreditSubject
from tests.conftest import is_postgres
from tests.factories import make_county, make_household, make_partner
from tests.ledger.conftest import Books, check_deferred_constraints
from tests.pos_adapter.conftest import fund_household


def _spend(books: Books, wallet: int, payable: int, amount: int) -> EntrySpec:
    return EntrySpec(
        township_id=books.township_id,
        kind="integrity_spent",
        legs=[Leg(wallet, -amount), Leg(payable, amount)],
        actor="terminal:T",
    )


def test_a_sale_that_posts_locks_its_accounts_and_the_chain_head_in_one_read(
    session: Session, books: Books
) -> None:
    books.grant_integrity(session, 1_000)
    accounts = sale_accounts(session, books.household, books.partner.id, posting=True)
    assert accounts.wallets.integrity.posted_balance == 1_000
    if not is_postgres():  # SQLite: one writer at a time; post_entries locks nothing
        assert accounts.books is None
        return
    assert accounts.books is not None
    assert accounts.books.head[0] == 1  # the grant's entry
    locked = accounts.books.accounts
    assert locked.keys() == {
        books.points.id,
        books.integrity.id,
        books.payable_points.id,
        books.payable_cny.id,
    }
    assert locked[books.integrity.id].posted == 1_000
    # Posting on them uses (and advances) what was read under the lock.
    specs = [_spend(books, books.integrity.id, books.payable_cny.id, n) for n in (60, 40)]
    posted = post_entries(session, specs, locked_books=accounts.books)
    assert [p.chain_seq for p in posted] == [2, 3]
    assert posted[1].balances_after[books.integrity.id] == 900
    assert accounts.books.head[0] == 3
    assert locked[books.integrity.id].posted == 900
    check_deferred_constraints(session)
    assert verify_ledger(session.connection(), books.township_id).ok


def test_books_of_one_township_refuse_entries_of_another(session: Session, books: Books) -> None:
    books.grant_integrity(session, 1_000)
    accounts = sale_accounts(session, books.household, books.partner.id, posting=True)
    other = LockedBooks(books.township_id + 1, {}, [0, ""])
    spec = _spend(books, books.integrity.id, books.payable_cny.id, 10)
    with pytest.raises(ValueError, match="own township"):
        post_entries(session, [spec], locked_books=other)
    if accounts.books is not None:
        assert post_entries(session, [spec], locked_books=accounts.books)[0].chain_seq == 2


def test_books_that_do_not_cover_an_entry_are_not_used(session: Session, books: Books) -> None:
    """A payable opened after the read (a partner's first sale in the township) is not in
    the books: post_entries locks for itself, and the chain still links."""
    books.grant_integrity(session, 1_000)
    newcomer = make_partner(session, session.get_one(Region, books.township_id))
    accounts = sale_accounts(session, books.household, newcomer.id, posting=True)
    assert not accounts.payables
    assert accounts.books is None  # the head is not held while a payable is to be opened
    payable = accounts.payable(session, "CNY")
    spec = _spend(books, books.integrity.id, payable.id, 100)
    (posted,) = post_entries(session, [spec], locked_books=accounts.books)
    assert posted.chain_seq == 2
    assert posted.balances_after == {books.integrity.id: 900, payable.id: 100}
    check_deferred_constraints(session)
    assert verify_ledger(session.connection(), books.township_id).ok


def test_the_head_is_locked_when_the_payables_the_sale_spends_exist(
    session: Session, books: Books
) -> None:
    """A partner that only ever took integrity money has no points payable: a sale spending
    integrity money alone still locks everything in one read; one that may spend points,
    whose payable is still to be opened, does not hold the head."""
    books.grant_integrity(session, 1_000)
    clinic = make_partner(session, session.get_one(Region, books.township_id), category="hospital")
    partner_payable(session, books.township_id, clinic.id, CNY)
    integrity_only = sale_accounts(session, books.household, clinic.id, posting=True, spends=[CNY])
    either = sale_accounts(session, books.household, clinic.id, posting=True)
    assert either.books is None
    assert (integrity_only.books is not None) == is_postgres()  # SQLite locks nothing


def test_a_sale_that_does_not_post_leaves_the_chain_head_alone(
    session: Session, books: Books
) -> None:
    accounts = sale_accounts(session, books.household, books.partner.id)
    assert accounts.books is None


@pytest.mark.postgres_only
def test_a_sale_opening_a_payable_does_not_deadlock_with_a_writer_opening_it(
    committed: Flask,
) -> None:
    """A partner's first sale in a township, twice at once: an offline batch opens the
    payable and then wants the chain head, while a till's sale has read its accounts and then
    opens the same payable. Had the till's read locked the head, each would wait for the
    other (PostgreSQL's deadlock detector kills one)."""
    s = db.session()
    county = make_county(s)
    household = make_household(s, county.villages[0])
    fund_household(s, household, integrity_fen=1_000)
    partner = make_partner(s, county.townships[0])
    s.commit()
    ids = (household.id, partner.id, county.townships[0].id)
    read_done, payable_opened = threading.Event(), threading.Event()
    outcome: dict[str, str] = {}

    def till() -> None:
        with Session(db.engine) as ss:
            try:
                accounts = sale_accounts(
                    ss, ss.get_one(CreditSubject, ids[0]), ids[1], posting=True
                )
                read_done.set()
                payable_opened.wait(5)
                accounts.payable(ss, CNY)  # waits for the batch's uncommitted insert
                ss.commit()
                outcome["till"] = "ok"
            except Exception as exc:
                outcome["till"] = type(exc).__name__

    def batch() -> None:
        with Session(db.engine) as ss:
            try:
                read_done.wait(5)
                partner_payable(ss, ids[2], ids[1], CNY)
                payable_opened.set()
                lock_chain_head(ss, ids[2])
                ss.commit()
                outcome["batch"] = "ok"
            except Exception as exc:
                outcome["batch"] = type(exc).__name__

    threads = [threading.Thread(target=till), threading.Thread(target=batch)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert outcome == {"till": "ok", "batch": "ok"}
