"""Refunds: integrity money back in proportion, points and stock back per returned item.

For a payment of amount A with integrity discount D, a refund of r fen (of A) gives back
floor(D * r / A); the refund that brings the refunded total to A gives back whatever of D is
still out, so any sequence of partial refunds sums to exactly D. Items give back
`points_price * qty` points and their stock.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from mall.catalog.services import restore_stock
from mall.clock import business_date, utcnow
from mall.db import lock_row
from mall.errors import Conflict, ValidationFailed
from mall.ledger.accounts import household_wallets, partner_payable
from mall.ledger.models import CNY, POINTS
from mall.ledger.posting import EntrySpec, Leg, Source, post_entries
from mall.payments.models import Payment, Refund
from mall.payments.services import new_public_id, open_business_date
from mall.subjects.models import CreditSubject


@dataclass(frozen=True)
class RefundItem:
    sku: str
    qty: int


def integrity_share(payment: Payment, refund_amount_fen: int) -> int:
    """The integrity money a refund of `refund_amount_fen` gives back (see module docstring)."""
    if refund_amount_fen == 0 or payment.amount_fen == 0:
        return 0
    outstanding = payment.integrity_discount_fen - payment.refunded_integrity_fen
    if payment.refunded_amount_fen + refund_amount_fen >= payment.amount_fen:
        return outstanding
    share = payment.integrity_discount_fen * refund_amount_fen // payment.amount_fen
    return min(share, outstanding)


def may_refund(payment: Payment) -> bool:
    """Whether `refund_payment` would accept a refund of what is left of `payment`."""
    return payment.status == "completed" and (
        payment.amount_fen > payment.refunded_amount_fen
        or any(i.qty > i.refunded_qty for i in payment.items)
    )


def refund_payment(  # noqa: C901 (to split by step, issue 20)
    session: Session,
    payment: Payment,
    *,
    amount_fen: int | None,
    items: list[RefundItem] | None,
    actor: str,
) -> Refund:
    """Refund part or all of a completed payment; with neither `amount_fen` nor `items`,
    everything still unrefunded. More than was paid: refund_exceeds_payment (409)."""
    lock_row(session, payment)
    if payment.status != "completed":
        raise Conflict("invalid_state", details={"status": payment.status})
    remaining_amount = payment.amount_fen - payment.refunded_amount_fen
    by_sku = {item.sku: item for item in payment.items}
    if amount_fen is None and not items:
        amount_fen = remaining_amount
        items = [
            RefundItem(i.sku, i.qty - i.refunded_qty)
            for i in payment.items
            if i.qty > i.refunded_qty
        ]
    amount_fen = amount_fen or 0
    items = items or []
    if type(amount_fen) is not int or amount_fen < 0:
        raise ValidationFailed(details={"fields": {"amount_fen": ["a non-negative integer"]}})
    if amount_fen > remaining_amount:
        raise Conflict(
            "refund_exceeds_payment",
            details={"amount_fen": amount_fen, "refundable": remaining_amount},
        )
    wanted: dict[str, int] = {}
    for item in items:
        wanted[item.sku] = wanted.get(item.sku, 0) + item.qty
    for sku, qty in wanted.items():
        line = by_sku.get(sku)
        if line is None:
            raise ValidationFailed(details={"fields": {"items": [f"{sku} is not in the payment"]}})
        if qty > line.qty - line.refunded_qty:
            raise Conflict(
                "refund_exceeds_payment",
                details={"sku": sku, "qty": qty, "refundable": line.qty - line.refunded_qty},
            )
    if amount_fen == 0 and not wanted:
        raise Conflict("refund_exceeds_payment", details={"refundable": 0})

    integrity_back = integrity_share(payment, amount_fen)
    points_back = sum(by_sku[sku].points_price * qty for sku, qty in wanted.items())
    settlement_back = sum(by_sku[sku].settlement_price_fen * qty for sku, qty in wanted.items())
    now = utcnow()
    refund = Refund(
        public_id=new_public_id("rf_"),
        payment_id=payment.id,
        partner_id=payment.partner_id,
        amount_fen=amount_fen,
        integrity_fen=integrity_back,
        points=points_back,
        settlement_fen=settlement_back,
        items=[{"sku": sku, "qty": qty} for sku, qty in wanted.items()],
        business_date=open_business_date(session, payment.partner_id, business_date(now)),
        created_at=now,
    )
    payment.refunds.append(refund)
    session.flush()

    subject = session.get(CreditSubject, payment.subject_id)
    assert subject is not None
    wallets = household_wallets(session, subject)
    t = payment.township_id
    source = Source("refund", refund.public_id)
    specs = []
    if integrity_back:
        payable = partner_payable(session, t, payment.partner_id, CNY)
        specs.append(
            EntrySpec(
                township_id=t,
                kind="integrity_refunded",
                legs=[Leg(payable.id, -integrity_back), Leg(wallets.integrity.id, integrity_back)],
                actor=actor,
                reason="退款退回诚信金",
                source=source,
                idempotency_key=f"pay:{payment.public_id}:refund:{refund.id}:integrity",
                business_date=refund.business_date,
            )
        )
    if points_back:
        payable_pts = partner_payable(session, t, payment.partner_id, POINTS)
        specs.append(
            EntrySpec(
                township_id=t,
                kind="points_refunded",
                legs=[Leg(payable_pts.id, -points_back), Leg(wallets.points.id, points_back)],
                actor=actor,
                reason="退货退回积分",
                source=source,
                idempotency_key=f"pay:{payment.public_id}:refund:{refund.id}:points",
                business_date=refund.business_date,
            )
        )
    if specs:
        post_entries(session, specs)
    for sku, qty in wanted.items():
        line = by_sku[sku]
        line.refunded_qty += qty
        restore_stock(session, line.goods_id, qty)
    payment.refunded_amount_fen += amount_fen
    payment.refunded_integrity_fen += integrity_back
    payment.refunded_points += points_back
    payment.refunded_settlement_fen += settlement_back
    session.flush()
    return refund
