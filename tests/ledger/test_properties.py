"""Property: any sequence of spends, refunds, holds, voids, captures and expiries keeps every
balance equal to its postings (and to a simple model), and never negative."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mall.clock import utcnow
from mall.errors import Conflict
from mall.ledger import (
    Leg,
    balance,
    capture_hold,
    expire_holds,
    place_hold,
    post_entry,
    verify_ledger,
    void_hold,
)
from mall.ledger.models import Posting
from tests.ledger.conftest import make_books

amounts = st.integers(min_value=1, max_value=400)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("spend"), amounts),
        st.tuples(st.just("refund"), amounts),
        st.tuples(st.just("issue"), amounts),
        st.tuples(st.just("hold"), amounts),
        st.tuples(st.just("capture"), st.integers(0, 9), st.integers(1, 400)),
        st.tuples(st.just("void"), st.integers(0, 9)),
        st.tuples(st.just("expire"), st.integers(0, 9)),
    ),
    max_size=25,
)


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_balances_always_equal_postings_and_never_go_negative(
    session: Session, ops: list[tuple[object, ...]]
) -> None:
    books = make_books(session)
    t, wallet, payable = books.township_id, books.points, books.payable_points
    base = utcnow() + timedelta(days=1)
    posted = held = 0
    holds: list[tuple[int, int, str]] = []  # (id, amount, status) in the model

    def move(kind: str, amount: int) -> None:
        legs = {
            "spend": [Leg(wallet.id, -amount), Leg(payable.id, amount)],
            "refund": [Leg(payable.id, -amount), Leg(wallet.id, amount)],
            "issue": [Leg(books.points_fund.id, -amount), Leg(wallet.id, amount)],
        }[kind]
        kinds = {"spend": "points_redeemed", "refund": "points_refunded", "issue": "points_issued"}
        post_entry(session, township_id=t, kind=kinds[kind], legs=legs, actor="prop")

    for op in ops:
        name = op[0]
        try:
            if name in ("spend", "refund", "issue"):
                amount = int(op[1])  # type: ignore[call-overload]
                move(str(name), amount)
                posted += -amount if name == "spend" else amount
            elif name == "hold":
                amount = int(op[1])  # type: ignore[call-overload]
                h = place_hold(
                    session,
                    account=wallet,
                    counter_account=payable,
                    amount=amount,
                    actor="prop",
                    expires_at=base + timedelta(minutes=len(holds)),
                )
                holds.append((h.id, amount, "open"))
                held += amount
            elif holds:
                i = int(op[1]) % len(holds)  # type: ignore[call-overload]
                hold_id, amount, _ = holds[i]
                if name == "capture":
                    part = min(int(op[2]), amount)  # type: ignore[call-overload]
                    capture_hold(session, township_id=t, hold_id=hold_id, actor="p", amount=part)
                    posted -= part
                    held -= amount
                    holds[i] = (hold_id, amount, "captured")
                elif name == "void":
                    void_hold(session, township_id=t, hold_id=hold_id, actor="p")
                    held -= amount
                    holds[i] = (hold_id, amount, "voided")
                else:  # expire every hold whose deadline is at or before hold i's
                    expire_holds(session, township_id=t, now=base + timedelta(minutes=i))
                    for j, (hid, amt, st_) in enumerate(holds):
                        if j <= i and st_ == "open":
                            holds[j] = (hid, amt, "expired")
                            held -= amt
        except Conflict as exc:
            # Refusals are fine (and must change nothing); anything else is a failure.
            refused = exc.code
            assert refused in ("insufficient_points", "invalid_state")
        b = balance(session, t, wallet.id)
        assert (b.posted, b.held) == (posted, held)
        assert b.posted >= 0
        assert b.available >= 0

    total = session.scalar(
        select(func.coalesce(func.sum(Posting.amount), 0)).where(
            Posting.township_id == t, Posting.account_id == wallet.id
        )
    )
    assert total == posted
    assert verify_ledger(session.connection(), t).ok
