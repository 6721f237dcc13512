"""The ledger's bulk path (mall/ledger/bulk.py): the same rows post_entry would write, on
both backends (COPY on PostgreSQL), wallets opened on the way, debits clamped or refused."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mall.errors import Conflict
from mall.ledger import balance, verify_ledger
from mall.ledger.bulk import Transfer, ensure_wallets, post_household_transfers
from mall.ledger.models import HOUSEHOLD_POINTS, Account, Entry, Posting
from mall.regions.models import Region
from tests.factories import make_household
from tests.ledger.conftest import Books, check_deferred_constraints


def _post(
    session: Session, books: Books, transfers: list[Transfer], *, clamp: bool = True
) -> dict[int, int]:
    result = post_household_transfers(
        session,
        township_id=books.township_id,
        wallet_kind=HOUSEHOLD_POINTS,
        counter=books.points_fund,
        transfers=transfers,
        credit_kind="points_issued",
        debit_kind="points_expired",
        actor="user:clerk",
        reason="批量",
        source_type="test_batch",
        clamp_debits=clamp,
    )
    return result.posted


def _wallet(session: Session, books: Books, subject_id: int) -> Account:
    found = session.scalar(
        select(Account).where(Account.subject_id == subject_id, Account.kind == HOUSEHOLD_POINTS)
    )
    assert found is not None
    return found


def test_bulk_transfers_open_wallets_post_one_entry_each_and_verify(
    session: Session, books: Books
) -> None:
    village = session.get_one(Region, books.household.village_id)
    others = [make_household(session, village) for _ in range(3)]
    ids = [books.household.id, *(h.id for h in others)]
    posted = _post(
        session,
        books,
        [Transfer(sid, 10 * (i + 1), f"b1:{sid}", f"b1:{sid}") for i, sid in enumerate(ids)],
    )
    assert posted == {sid: 10 * (i + 1) for i, sid in enumerate(ids)}
    for i, sid in enumerate(ids):
        assert balance(session, books.township_id, _wallet(session, books, sid).id).posted == (
            10 * (i + 1)
        )
    assert balance(session, books.township_id, books.points_fund.id).posted == -100
    entries = session.scalars(select(Entry).where(Entry.source_type == "test_batch")).all()
    assert len(entries) == 4
    assert {e.kind for e in entries} == {"points_issued"}
    postings = session.scalar(
        select(func.count())
        .select_from(Posting)
        .where(Posting.entry_id.in_([e.id for e in entries]))
    )
    assert postings == 8
    check_deferred_constraints(session)
    assert verify_ledger(session.connection(), books.township_id).ok


def test_debits_are_clamped_to_the_wallet_or_refused(session: Session, books: Books) -> None:
    sid = books.household.id
    _post(session, books, [Transfer(sid, 30, "in", "in")])
    assert _post(session, books, [Transfer(sid, -50, "out", "out")]) == {sid: -30}
    assert balance(session, books.township_id, books.points.id).posted == 0
    assert _post(session, books, [Transfer(sid, -5, "none", "none")]) == {}  # nothing left
    _post(session, books, [Transfer(sid, 7, "in2", "in2")])
    with pytest.raises(Conflict) as exc:
        _post(session, books, [Transfer(sid, -8, "over", "over")], clamp=False)
    assert exc.value.code == "insufficient_points"
    check_deferred_constraints(session)
    assert verify_ledger(session.connection(), books.township_id).ok


def test_bulk_entries_continue_the_chain_that_single_entries_write(
    session: Session, books: Books
) -> None:
    books.issue_points(session, 5)  # one entry through post_entry
    _post(session, books, [Transfer(books.household.id, 3, "bulk", "bulk")])
    books.issue_points(session, 2)  # and one after the bulk rows
    assert balance(session, books.township_id, books.points.id).posted == 10
    check_deferred_constraints(session)
    report = verify_ledger(session.connection(), books.township_id)
    assert report.ok, report.first


def test_ensure_wallets_opens_each_wallet_once(session: Session, books: Books) -> None:
    sid = books.household.id
    first = ensure_wallets(session, books.township_id, HOUSEHOLD_POINTS, [sid, sid])
    again = ensure_wallets(session, books.township_id, HOUSEHOLD_POINTS, [sid])
    assert first == again == {sid: books.points.id}
