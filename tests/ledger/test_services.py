"""Posting, balances, history, reversal and idempotency; the worked examples of docs/ledger.md."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from mall.errors import Conflict, NotFound, ValidationFailed
from mall.ledger import (
    Leg,
    Source,
    account_history,
    balance,
    household_wallets,
    partner_payable,
    post_entries,
    post_entry,
    reverse_entry,
    system_account,
    verify_ledger,
)
from mall.ledger.bulk import ensure_wallets
from mall.ledger.models import CNY, HOUSEHOLD_POINTS, POINTS, POINTS_FUND, Entry, Posting
from mall.ledger.posting import INLINE_ROWS, EntrySpec, PostedEntry
from mall.subjects.models import CreditSubject
from tests.factories import make_county, make_household
from tests.ledger.conftest import Books, check_deferred_constraints


def postings_of(session: Session, books: Books, entry_id: int) -> dict[int, int]:
    rows = session.execute(
        select(Posting.account_id, Posting.amount).where(
            Posting.township_id == books.township_id, Posting.entry_id == entry_id
        )
    ).all()
    return {r.account_id: r.amount for r in rows}


def three_star_discount_fen(amount_fen: int, rate_bp: int = 600) -> int:
    """The POS rule: floor(amount * rate / 10000); 3 stars = 6% = 600 basis points."""
    return amount_fen * rate_bp // 10000


class TestWorkedExamples:
    """The three examples of docs/ledger.md, posting by posting."""

    def test_three_star_household_buys_100_yuan_with_the_integrity_discount(
        self, session: Session, books: Books
    ) -> None:
        books.grant_integrity(session, 120_000)  # 3 stars: 1,200 yuan for the period
        discount = three_star_discount_fen(10_000)
        assert discount == 600  # 6 yuan off a 100-yuan sale; the household pays 94 yuan cash

        posted = post_entry(
            session,
            township_id=books.township_id,
            kind="integrity_spent",
            legs=[Leg(books.integrity.id, -discount), Leg(books.payable_cny.id, discount)],
            actor="terminal:T-0001",
            reason="诚信超市消费 100 元, 三星 6% 抵扣",
            source=Source("payment", "pay-1"),
            idempotency_key="pos-T-0001-1",
            business_date=date(2026, 11, 21),
        )

        assert postings_of(session, books, posted.entry_id) == {
            books.integrity.id: -600,
            books.payable_cny.id: +600,
        }
        assert posted.balances_after == {books.integrity.id: 119_400, books.payable_cny.id: 600}
        assert balance(session, books.township_id, books.integrity.id).available == 119_400
        assert balance(session, books.township_id, books.integrity_fund.id).posted == -120_000
        check_deferred_constraints(session)

    def test_redeems_a_towel_for_50_points(self, session: Session, books: Books) -> None:
        books.issue_points(session, 200)
        posted = post_entry(
            session,
            township_id=books.township_id,
            kind="points_redeemed",
            legs=[Leg(books.points.id, -50), Leg(books.payable_points.id, 50)],
            actor="terminal:T-0001",
            reason="毛巾 x1",
            source=Source("payment", "pay-2"),
        )
        assert postings_of(session, books, posted.entry_id) == {
            books.points.id: -50,
            books.payable_points.id: +50,
        }
        assert balance(session, books.township_id, books.points.id).posted == 150
        assert balance(session, books.township_id, books.payable_points.id).posted == 50

    def test_partial_refund_returns_the_proportional_discount(
        self, session: Session, books: Books
    ) -> None:
        books.grant_integrity(session, 120_000)
        post_entry(
            session,
            township_id=books.township_id,
            kind="integrity_spent",
            legs=[Leg(books.integrity.id, -600), Leg(books.payable_cny.id, 600)],
            actor="terminal:T-0001",
            source=Source("payment", "pay-3"),
        )
        # 40 of the 100 yuan come back: floor(600 * 4000 / 10000) = 240 fen of integrity money.
        refund = 600 * 4_000 // 10_000
        posted = post_entry(
            session,
            township_id=books.township_id,
            kind="integrity_refunded",
            legs=[Leg(books.payable_cny.id, -refund), Leg(books.integrity.id, refund)],
            actor="terminal:T-0001",
            reason="退货 40 元",
            source=Source("payment", "pay-3"),
        )
        assert postings_of(session, books, posted.entry_id) == {
            books.payable_cny.id: -240,
            books.integrity.id: +240,
        }
        assert balance(session, books.township_id, books.integrity.id).posted == 119_640
        assert balance(session, books.township_id, books.payable_cny.id).posted == 360
        assert verify_ledger(session.connection(), books.township_id).ok
        check_deferred_constraints(session)


class TestPosting:
    def test_a_wallet_cannot_go_negative(self, session: Session, books: Books) -> None:
        books.issue_points(session, 30)
        with pytest.raises(Conflict) as err:
            post_entry(
                session,
                township_id=books.township_id,
                kind="points_redeemed",
                legs=[Leg(books.points.id, -31), Leg(books.payable_points.id, 31)],
                actor="terminal:T",
            )
        assert err.value.code == "insufficient_points"
        assert err.value.details == {"account_id": books.points.id, "available": 30, "required": 31}

    def test_integrity_money_shortfall_is_insufficient_funds(
        self, session: Session, books: Books
    ) -> None:
        with pytest.raises(Conflict) as err:
            post_entry(
                session,
                township_id=books.township_id,
                kind="integrity_spent",
                legs=[Leg(books.integrity.id, -1), Leg(books.payable_cny.id, 1)],
                actor="terminal:T",
            )
        assert err.value.code == "insufficient_funds"

    def test_funds_may_go_negative(self, session: Session, books: Books) -> None:
        books.issue_points(session, 1_000)
        assert balance(session, books.township_id, books.points_fund.id).posted == -1_000

    @pytest.mark.parametrize(
        "amounts",
        [
            [(0, -5), (1, 4)],  # unbalanced
            [(0, -5)],  # one leg
            [(0, 0), (1, 0)],  # zero amounts
            [(0, -5), (0, 5)],  # the same account twice
        ],
    )
    def test_malformed_entries_are_refused(
        self, session: Session, books: Books, amounts: list[tuple[int, int]]
    ) -> None:
        books.issue_points(session, 100)
        accounts = [books.points.id, books.payable_points.id]
        with pytest.raises(ValidationFailed):
            post_entry(
                session,
                township_id=books.township_id,
                kind="points_redeemed",
                legs=[Leg(accounts[i], amount) for i, amount in amounts],
                actor="terminal:T",
            )

    def test_assets_balance_separately(self, session: Session, books: Books) -> None:
        books.issue_points(session, 100)
        with pytest.raises(ValidationFailed):
            post_entry(  # 10 points cannot pay for 10 fen
                session,
                township_id=books.township_id,
                kind="points_redeemed",
                legs=[Leg(books.points.id, -10), Leg(books.payable_cny.id, 10)],
                actor="terminal:T",
            )

    def test_unknown_kind_and_foreign_accounts_are_refused(
        self, session: Session, books: Books
    ) -> None:
        with pytest.raises(ValidationFailed):
            post_entry(
                session,
                township_id=books.township_id,
                kind="gift",
                legs=[Leg(books.points_fund.id, -1), Leg(books.points.id, 1)],
                actor="x",
            )
        other = make_county(session, townships=1, villages_per_township=1)
        stranger = household_wallets(session, make_household(session, other.villages[0]))
        with pytest.raises(NotFound):  # an entry never leaves its township
            post_entry(
                session,
                township_id=books.township_id,
                kind="points_issued",
                legs=[Leg(books.points_fund.id, -1), Leg(stranger.points.id, 1)],
                actor="x",
            )

    def test_one_entry_may_move_both_assets(self, session: Session, books: Books) -> None:
        books.issue_points(session, 100)
        books.grant_integrity(session, 1_000)
        posted = post_entry(  # a sale paid partly in points and partly with the discount
            session,
            township_id=books.township_id,
            kind="points_redeemed",
            legs=[
                Leg(books.points.id, -50),
                Leg(books.payable_points.id, 50),
                Leg(books.integrity.id, -300),
                Leg(books.payable_cny.id, 300),
            ],
            actor="terminal:T",
        )
        assert len(postings_of(session, books, posted.entry_id)) == 4
        check_deferred_constraints(session)

    def test_accounts_are_created_once(self, session: Session, books: Books) -> None:
        again = household_wallets(session, books.household)
        assert (again.points.id, again.integrity.id) == (books.points.id, books.integrity.id)
        assert system_account(session, books.township_id, POINTS_FUND).id == books.points_fund.id
        payable = partner_payable(session, books.township_id, books.partner.id, POINTS)
        assert payable.id == books.payable_points.id
        assert books.points.no_negative
        assert not books.points_fund.no_negative
        assert books.integrity.asset == CNY

    def test_loaded_account_objects_see_new_balances(self, session: Session, books: Books) -> None:
        books.issue_points(session, 70)
        assert books.points.posted_balance == 70
        assert books.points.available_balance == 70

    def test_entries_chain_per_township(self, session: Session, books: Books) -> None:
        books.issue_points(session, 1)
        books.issue_points(session, 2)
        entries = session.scalars(
            select(Entry).where(Entry.township_id == books.township_id).order_by(Entry.chain_seq)
        ).all()
        assert [e.chain_seq for e in entries] == [1, 2]
        assert entries[0].prev_hash == "0" * 64
        assert entries[1].prev_hash == entries[0].hash


class TestIdempotency:
    def spend(self, session: Session, books: Books, amount: int, key: str) -> int:
        return post_entry(
            session,
            township_id=books.township_id,
            kind="points_redeemed",
            legs=[Leg(books.points.id, -amount), Leg(books.payable_points.id, amount)],
            actor="terminal:T",
            idempotency_key=key,
        ).entry_id

    def test_same_key_same_content_returns_the_original(
        self, session: Session, books: Books
    ) -> None:
        books.issue_points(session, 50)
        first = self.spend(session, books, 50, "k-1")
        # The wallet is empty now, yet the replay succeeds: it is the same request, done once.
        again = post_entry(
            session,
            township_id=books.township_id,
            kind="points_redeemed",
            legs=[Leg(books.payable_points.id, 50), Leg(books.points.id, -50)],
            actor="terminal:T-other-cashier",
            idempotency_key="k-1",
        )
        assert again.replayed
        assert again.entry_id == first
        assert again.balances_after == {books.points.id: 0, books.payable_points.id: 50}
        assert balance(session, books.township_id, books.points.id).posted == 0

    def test_same_key_different_content_is_a_conflict(self, session: Session, books: Books) -> None:
        books.issue_points(session, 100)
        self.spend(session, books, 10, "k-2")
        with pytest.raises(Conflict) as err:
            self.spend(session, books, 11, "k-2")
        assert err.value.code == "idempotency_conflict"
        assert balance(session, books.township_id, books.points.id).posted == 90


class TestReversal:
    def test_a_reversal_restores_every_balance_and_links_the_original(
        self, session: Session, books: Books
    ) -> None:
        books.issue_points(session, 100)
        spent = post_entry(
            session,
            township_id=books.township_id,
            kind="points_redeemed",
            legs=[Leg(books.points.id, -40), Leg(books.payable_points.id, 40)],
            actor="terminal:T",
            source=Source("payment", "p-9"),
        )
        reversal = reverse_entry(
            session,
            township_id=books.township_id,
            entry_id=spent.entry_id,
            actor="user:admin",
            reason="收银员误操作",
        )
        assert postings_of(session, books, reversal.entry_id) == {
            books.points.id: 40,
            books.payable_points.id: -40,
        }
        entry = session.get(Entry, (books.township_id, reversal.entry_id))
        assert entry is not None
        assert entry.reverses_entry_id == spent.entry_id
        assert entry.kind == "reversal"
        assert entry.source_id == "p-9"
        assert balance(session, books.township_id, books.points.id).posted == 100
        assert balance(session, books.township_id, books.payable_points.id).posted == 0

    def test_an_entry_is_reversed_once(self, session: Session, books: Books) -> None:
        books.issue_points(session, 100)
        first = session.scalars(select(Entry.id).where(Entry.township_id == books.township_id))
        entry_id = first.one()
        rev = reverse_entry(
            session, township_id=books.township_id, entry_id=entry_id, actor="a", reason="r"
        )
        with pytest.raises(Conflict) as err:
            reverse_entry(
                session, township_id=books.township_id, entry_id=entry_id, actor="a", reason="r"
            )
        assert err.value.details == {"reason": "already_reversed"}
        with pytest.raises(Conflict):
            reverse_entry(
                session,
                township_id=books.township_id,
                entry_id=rev.entry_id,
                actor="a",
                reason="r",
            )

    def test_a_reversal_cannot_overdraw_a_wallet(self, session: Session, books: Books) -> None:
        books.issue_points(session, 100)
        issued = session.scalars(select(Entry.id).where(Entry.township_id == books.township_id))
        entry_id = issued.one()
        post_entry(
            session,
            township_id=books.township_id,
            kind="points_redeemed",
            legs=[Leg(books.points.id, -80), Leg(books.payable_points.id, 80)],
            actor="terminal:T",
        )
        with pytest.raises(Conflict) as err:
            reverse_entry(
                session, township_id=books.township_id, entry_id=entry_id, actor="a", reason="r"
            )
        assert err.value.code == "insufficient_points"


class TestHistory:
    def test_newest_first_with_balance_after_and_a_stable_cursor(
        self, session: Session, books: Books
    ) -> None:
        for amount in (10, 20, 30, 40, 50):
            books.issue_points(session, amount)
        page = account_history(session, books.township_id, books.points.id, limit=2)
        assert [(i.amount, i.balance_after) for i in page.items] == [(50, 150), (40, 100)]
        assert page.items[0].kind == "points_issued"
        assert page.items[0].reason == "志愿服务"
        books.issue_points(session, 1)  # a new entry does not shift the next page
        page = account_history(
            session, books.township_id, books.points.id, limit=2, cursor=page.next_cursor
        )
        assert [(i.amount, i.balance_after) for i in page.items] == [(30, 60), (20, 30)]
        page = account_history(
            session, books.township_id, books.points.id, limit=2, cursor=page.next_cursor
        )
        assert [(i.amount, i.balance_after) for i in page.items] == [(10, 10)]
        assert page.next_cursor is None

    def test_bad_cursor_and_limit(self, session: Session, books: Books) -> None:
        with pytest.raises(ValidationFailed):
            account_history(session, books.township_id, books.points.id, cursor="!!")
        with pytest.raises(ValidationFailed):
            account_history(session, books.township_id, books.points.id, limit=0)


def test_post_entries_posts_several_in_one_go(session: Session, books: Books) -> None:
    books.issue_points(session, 100)
    books.grant_integrity(session, 1_000)
    results = post_entries(
        session,
        [
            EntrySpec(
                township_id=books.township_id,
                kind="points_redeemed",
                legs=[Leg(books.points.id, -10), Leg(books.payable_points.id, 10)],
                actor="terminal:T",
            ),
            EntrySpec(
                township_id=books.township_id,
                kind="integrity_spent",
                legs=[Leg(books.integrity.id, -60), Leg(books.payable_cny.id, 60)],
                actor="terminal:T",
            ),
            EntrySpec(
                township_id=books.township_id,
                kind="points_redeemed",
                legs=[Leg(books.points.id, -5), Leg(books.payable_points.id, 5)],
                actor="terminal:T",
            ),
        ],
    )
    assert [r.chain_seq for r in results] == [3, 4, 5]
    assert results[2].balances_after[books.points.id] == 85
    assert verify_ledger(session.connection(), books.township_id).ok


def _bare_households(session: Session, books: Books, count: int) -> list[int]:
    """Households as rows only (the ledger needs their ids, not their people), in one insert."""
    known = books.household
    tag = f"bulk{known.id}-"
    session.execute(
        insert(CreditSubject),
        [
            {
                "ref": f"{tag}{i}",
                "county_id": known.county_id,
                "township_id": known.township_id,
                "village_id": known.village_id,
                "name_enc": "-",
                "name_masked": "张*",
                "name_bidx": f"{tag}{i}",
            }
            for i in range(count)
        ],
    )
    return list(session.scalars(select(CreditSubject.id).where(CreditSubject.ref.like(f"{tag}%"))))


@pytest.mark.parametrize(
    "wallets",
    [INLINE_ROWS - 1, INLINE_ROWS, 40, 10_000],
    ids=["inline", "inline-at-limit", "arrays", "arrays-past-the-parameter-limit"],
)
def test_an_entry_of_any_size_posts_and_verifies(
    session: Session, books: Books, wallets: int
) -> None:
    """Small entries bind a placeholder per row, larger ones arrays: 10,000 wallets credited
    in one entry are 70,000 values, past PostgreSQL's 65,535 parameters per statement."""
    subjects = _bare_households(session, books, wallets)
    accounts = ensure_wallets(session, books.township_id, HOUSEHOLD_POINTS, subjects)
    legs = [Leg(books.points_fund.id, -5 * wallets)]
    legs += [Leg(accounts[s], 5) for s in subjects]

    def issue() -> PostedEntry:
        return post_entry(
            session,
            township_id=books.township_id,
            kind="points_issued",
            legs=legs,
            actor="user:clerk",
            idempotency_key=f"size-{wallets}",
        )

    posted = issue()
    assert len(posted.balances_after) == wallets + 1
    assert balance(session, books.township_id, books.points_fund.id).posted == -5 * wallets
    assert {balance(session, books.township_id, accounts[s]).posted for s in subjects[:3]} == {5}
    assert issue().entry_id == posted.entry_id  # the replay of the same key
    check_deferred_constraints(session)
    assert verify_ledger(session.connection(), books.township_id).ok
