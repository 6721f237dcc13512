"""Partial refunds sum exactly to the original; items give back points and stock."""

from __future__ import annotations

import random

from sqlalchemy.orm import Session

from mall.payments.refunds import RefundItem, refund_payment
from mall.payments.services import ItemRequest, PayRequest, available_balances, create_payment
from tests.pos_adapter.conftest import World


def _pay(session: Session, world: World, amount: int, towels: int = 0):  # type: ignore[no-untyped-def]
    return create_payment(
        session,
        world.partner,
        PayRequest(
            code=world.code(session),
            amount_fen=amount,
            items=[ItemRequest("TOWEL", towels)] if towels else [],
        ),
        terminal_code="test",
    ).payment


def test_worked_example(session: Session, world: World) -> None:
    """A 3-star household buys 99.99 yuan: 6% is 599 fen (599.94 rounded down)."""
    p = _pay(session, world, 9_999, towels=3)
    assert p.integrity_discount_fen == 599
    r1 = refund_payment(session, p, amount_fen=3_333, items=[RefundItem("TOWEL", 1)], actor="t")
    assert (r1.integrity_fen, r1.points, r1.settlement_fen) == (199, 30, 800)  # floor(599/3)
    r2 = refund_payment(session, p, amount_fen=3_333, items=None, actor="t")
    assert r2.integrity_fen == 199
    r3 = refund_payment(session, p, amount_fen=None, items=None, actor="t")  # the rest
    assert (r3.amount_fen, r3.integrity_fen, r3.points) == (3_333, 201, 60)
    assert available_balances(session, world.household) == (120_000, 1_000)
    assert world.goods.stock == 10


def test_partial_refunds_sum_exactly(session: Session, world: World) -> None:
    rng = random.Random(6)
    before = available_balances(session, world.household)
    for _ in range(30):
        amount = rng.randint(1, 2_000_000)
        cuts = [rng.randint(1, 10_000) for _ in range(rng.randint(1, 6))]
        p = _pay(session, world, amount)
        total = sum(cuts)
        parts = [amount * c // total for c in cuts]
        parts[-1] += amount - sum(parts)
        back = sum(
            refund_payment(session, p, amount_fen=part, items=None, actor="t").integrity_fen
            for part in parts
            if part
        )
        assert back == p.integrity_discount_fen
        assert p.refunded_amount_fen == amount
        assert available_balances(session, world.household) == before
