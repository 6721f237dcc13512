"""Tamper evidence: `verify` catches what a superuser changes behind the application's back,
and the database itself refuses unbalanced entries, edits and deletions."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from mall.extensions import db
from mall.ledger import Leg, post_entry, verify_ledger
from mall.ledger.models import Entry, Posting
from tests.ledger.conftest import Books, check_deferred_constraints, make_books

LEDGER_TABLES = ("ledger_entries", "ledger_postings")


def lift_guards(session: Session) -> None:
    """What a superuser could do: switch the append-only triggers off (inside the test's
    transaction, so the rollback at the end puts them back)."""
    if session.get_bind().dialect.name == "postgresql":
        check_deferred_constraints(session)  # ALTER TABLE refuses pending trigger events
        for table in LEDGER_TABLES:
            session.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
    else:
        for table in LEDGER_TABLES:
            for verb in ("update", "delete"):
                session.execute(text(f"DROP TRIGGER {table}_no_{verb}"))


@pytest.fixture
def history(session: Session, books: Books) -> list[int]:
    """Five entries; yields their ids in chain order."""
    books.issue_points(session, 100)
    books.grant_integrity(session, 5_000)
    for amount in (10, 20, 30):
        post_entry(
            session,
            township_id=books.township_id,
            kind="points_redeemed",
            legs=[Leg(books.points.id, -amount), Leg(books.payable_points.id, amount)],
            actor="terminal:T",
        )
    ids = list(
        session.scalars(
            select(Entry.id).where(Entry.township_id == books.township_id).order_by(Entry.chain_seq)
        )
    )
    assert verify_ledger(session.connection(), books.township_id).ok
    return ids


def first_problem(session: Session, books: Books) -> str:
    report = verify_ledger(session.connection(), books.township_id)
    assert not report.ok
    return str(report.first)


def test_a_sound_ledger_verifies(session: Session, books: Books, history: list[int]) -> None:
    report = verify_ledger(session.connection(), books.township_id)
    assert report.ok
    assert report.entries == 5
    assert report.postings == 10


def test_an_altered_amount_is_named(session: Session, books: Books, history: list[int]) -> None:
    lift_guards(session)
    session.execute(
        text("UPDATE ledger_postings SET amount = amount - 5 WHERE entry_id = :e AND amount < 0"),
        {"e": history[3]},
    )
    problem = first_problem(session, books)
    assert problem.startswith("chain:")
    assert f"entry {history[3]}" in problem
    report = verify_ledger(session.connection(), books.township_id)
    checks = {d.check for d in report.discrepancies}
    assert {"chain", "zero_sum", "balance_after", "posted_balance"} <= checks


def test_an_altered_reason_breaks_the_chain(
    session: Session, books: Books, history: list[int]
) -> None:
    lift_guards(session)
    session.execute(
        text("UPDATE ledger_entries SET reason = '改过的' WHERE id = :e"), {"e": history[1]}
    )
    assert f"entry {history[1]}: hash does not match" in first_problem(session, books)


def test_a_deleted_entry_is_named(session: Session, books: Books, history: list[int]) -> None:
    lift_guards(session)
    victim = history[2]
    # Delete it so that every balance still adds up: only the chain can tell.
    rows = session.execute(
        select(Posting.account_id, Posting.amount).where(Posting.entry_id == victim)
    ).all()
    session.execute(text("DELETE FROM ledger_postings WHERE entry_id = :e"), {"e": victim})
    session.execute(text("DELETE FROM ledger_entries WHERE id = :e"), {"e": victim})
    for account_id, amount in rows:
        session.execute(
            text("UPDATE ledger_accounts SET posted_balance = posted_balance - :m WHERE id = :a"),
            {"m": amount, "a": account_id},
        )
    problem = first_problem(session, books)
    assert f"entry {history[3]}: sequence 4 where 3 was due" in problem


def test_an_inserted_entry_is_named(session: Session, books: Books, history: list[int]) -> None:
    last = session.get(Entry, (books.township_id, history[-1]))
    assert last is not None
    session.execute(
        text(
            "INSERT INTO ledger_entries (township_id, chain_seq, kind, actor, reason, request_hash,"
            " created_at, business_date, prev_hash, hash)"
            " VALUES (:t, 6, 'points_issued', 'nobody', '', 'x', :at, :d, :prev, :fake)"
        ),
        {
            "t": books.township_id,
            "at": last.created_at,
            "d": last.business_date,
            "prev": last.hash,
            "fake": "f" * 64,
        },
    )
    forged = session.scalar(select(Entry.id).where(Entry.hash == "f" * 64))
    for account_id, amount in ((books.points_fund.id, -1000), (books.points.id, 1000)):
        session.execute(
            text(
                "INSERT INTO ledger_postings (township_id, entry_id, account_id, asset, amount,"
                " balance_after) VALUES (:t, :e, :a, 'POINTS', :m, 0)"
            ),
            {"t": books.township_id, "e": forged, "a": account_id, "m": amount},
        )
    problem = first_problem(session, books)
    assert f"entry {forged}: hash does not match" in problem


def test_an_edited_cached_balance_is_named(
    session: Session, books: Books, history: list[int]
) -> None:
    session.execute(
        text("UPDATE ledger_accounts SET posted_balance = posted_balance + 1000 WHERE id = :a"),
        {"a": books.points.id},
    )
    assert first_problem(session, books) == (
        f"posted_balance: township {books.township_id}, account {books.points.id}:"
        " cached balance 1040, the postings sum to 40"
    )


def test_verify_is_scoped_per_township(session: Session, books: Books, history: list[int]) -> None:
    other = make_books(session)
    other.issue_points(session, 5)
    session.execute(
        text("UPDATE ledger_accounts SET posted_balance = 99 WHERE id = :a"), {"a": other.points.id}
    )
    assert verify_ledger(session.connection(), books.township_id).ok
    assert not verify_ledger(session.connection(), other.township_id).ok
    assert not verify_ledger(session.connection()).ok


class TestDatabaseGuards:
    def test_postings_and_entries_cannot_be_edited_or_deleted(
        self, session: Session, books: Books, history: list[int]
    ) -> None:
        for sql in (
            "UPDATE ledger_postings SET amount = 1 WHERE entry_id = :e",
            "DELETE FROM ledger_postings WHERE entry_id = :e",
            "UPDATE ledger_entries SET reason = 'x' WHERE id = :e",
            "DELETE FROM ledger_entries WHERE id = :e",
        ):
            with pytest.raises(DBAPIError), session.begin_nested():
                session.execute(text(sql), {"e": history[0]})

    def test_a_wallet_cannot_go_negative_even_by_raw_sql(
        self, session: Session, books: Books
    ) -> None:
        with pytest.raises(IntegrityError), session.begin_nested():
            session.execute(
                text("UPDATE ledger_accounts SET posted_balance = -1 WHERE id = :a"),
                {"a": books.points.id},
            )
        with pytest.raises(IntegrityError), session.begin_nested():
            session.execute(
                text("UPDATE ledger_accounts SET held_balance = 1 WHERE id = :a"),
                {"a": books.points.id},
            )

    @pytest.mark.postgres_only
    def test_postgres_refuses_an_unbalanced_entry(self, session: Session, books: Books) -> None:
        def raw_entry(seq: int, amounts: list[tuple[int, int]]) -> None:
            entry_id = session.execute(
                text(
                    "INSERT INTO ledger_entries (township_id, chain_seq, kind, actor, reason,"
                    " request_hash, created_at, business_date, prev_hash, hash)"
                    " VALUES (:t, :s, 'points_issued', 'raw', '', 'x', now(), current_date,"
                    " 'x', 'x') RETURNING id"
                ),
                {"t": books.township_id, "s": seq},
            ).scalar_one()
            for account_id, amount in amounts:
                session.execute(
                    text(
                        "INSERT INTO ledger_postings (township_id, entry_id, account_id, asset,"
                        " amount, balance_after) VALUES (:t, :e, :a, 'POINTS', :m, :m)"
                    ),
                    {"t": books.township_id, "e": entry_id, "a": account_id, "m": amount},
                )
            # The trigger is deferred to commit; the test's transaction never commits.
            session.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))

        with pytest.raises(IntegrityError, match="unbalanced"), session.begin_nested():
            raw_entry(100, [(books.points_fund.id, -10), (books.points.id, 9)])
        with pytest.raises(IntegrityError, match="at least two"), session.begin_nested():
            raw_entry(101, [(books.points_fund.id, -10)])
        with session.begin_nested():
            raw_entry(102, [(books.points_fund.id, -10), (books.points.id, 10)])


@pytest.mark.postgres_only
def test_the_verify_command(committed: Flask) -> None:
    session = db.session()
    books = make_books(session)
    books.issue_points(session, 100)
    session.commit()
    runner = committed.test_cli_runner()
    ok = runner.invoke(args=["verify"])
    assert ok.exit_code == 0, ok.output
    assert "ledger: OK" in ok.output
    with db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE ledger_postings DISABLE TRIGGER USER"))
        conn.execute(text("UPDATE ledger_postings SET amount = amount * 2"))
        conn.execute(text("ALTER TABLE ledger_postings ENABLE TRIGGER USER"))
    bad = runner.invoke(args=["verify"])
    assert bad.exit_code == 1
    assert "FIRST DISCREPANCY: chain" in bad.output
    assert (
        runner.invoke(args=["ledger", "verify", "--township", str(books.township_id)]).exit_code
        == 1
    )
