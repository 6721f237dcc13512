"""mall.ledger.accounts: a sale's accounts, and the locks a sale that posts takes once."""

from __future__ import annotations

from sqlalchemy.orm import Session

from mall.ledger import Leg, post_entries, verify_ledger
from mall.ledger.accounts import sale_accounts
from mall.ledger.posting import EntrySpec
from mall.regions.models import Region
from tests.conftest import is_postgres
from tests.factories import make_partner
from tests.ledger.conftest import Books, check_deferred_constraints


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


def test_books_that_do_not_cover_an_entry_are_not_used(session: Session, books: Books) -> None:
    """A payable opened after the read (a partner's first sale in the township) is not in
    the books: post_entries locks for itself, and the chain still links."""
    books.grant_integrity(session, 1_000)
    newcomer = make_partner(session, session.get_one(Region, books.township_id))
    accounts = sale_accounts(session, books.household, newcomer.id, posting=True)
    assert not accounts.payables
    payable = accounts.payable(session, "CNY")
    spec = _spend(books, books.integrity.id, payable.id, 100)
    (posted,) = post_entries(session, [spec], locked_books=accounts.books)
    assert posted.chain_seq == 2
    assert posted.balances_after == {books.integrity.id: 900, payable.id: 100}
    check_deferred_constraints(session)
    assert verify_ledger(session.connection(), books.township_id).ok


def test_a_sale_that_does_not_post_leaves_the_chain_head_alone(
    session: Session, books: Books
) -> None:
    accounts = sale_accounts(session, books.household, books.partner.id)
    assert accounts.books is None
