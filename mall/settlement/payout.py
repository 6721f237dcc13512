"""Paying partners: the ledger moves the payables of a closed statement to settled payouts.

A statement's `by_township` holds the net movement of the partner's payables that day in
each ledger tenant. Marking it paid posts, per township and asset, one `settled` entry
(payable -> settled payouts) for that movement less what earlier paid versions of the same
day already settled, so reopening and paying again settles only the difference. The
idempotency key names the statement id and version: a retried payout never posts twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.audit import services as audit
from mall.clock import utcnow
from mall.daybook.models import SettlementStatement
from mall.db import lock_row
from mall.errors import Conflict, ValidationFailed
from mall.ledger.accounts import partner_payable, system_account
from mall.ledger.models import CNY, PARTNER_PAYABLE, POINTS, SETTLED_PAYOUTS, Account
from mall.ledger.posting import EntrySpec, Leg, Source, post_entries
from mall.partners.models import Partner
from mall.settlement.access import restrict_to_user
from mall.users.models import User

_ASSET_FIELD = {CNY: "integrity_fen", POINTS: "points"}


def _already_settled(
    session: Session, statement: SettlementStatement
) -> dict[tuple[int, str], int]:
    """What earlier paid versions of the same partner and day settled, per township/asset."""
    earlier = session.scalars(
        select(SettlementStatement).where(
            SettlementStatement.partner_id == statement.partner_id,
            SettlementStatement.business_date == statement.business_date,
            SettlementStatement.version < statement.version,
            SettlementStatement.paid_at.is_not(None),
        )
    ).all()
    # Each paid version settled up to its own figures, so the latest paid one is the total.
    if not earlier:
        return {}
    latest = max(earlier, key=lambda s: s.version)
    return {
        (int(row["township_id"]), asset): int(row[name])
        for row in latest.by_township
        for asset, name in _ASSET_FIELD.items()
    }


def mark_paid(
    session: Session,
    user: User,
    statement: SettlementStatement,
    *,
    reference: str,
    paid_on: date,
) -> SettlementStatement:
    """Record that the township paid the partner for a closed statement (audited)."""
    reference = (reference or "").strip()
    if not reference:
        raise ValidationFailed(details={"fields": {"reference": ["required"]}})
    lock_row(session, statement)
    if statement.paid_at is not None:
        if statement.paid_reference == reference and statement.paid_on == paid_on:
            return statement  # the same request again
        raise Conflict("invalid_state", details={"reason": "already_paid"})
    if statement.status != "closed":
        raise Conflict("invalid_state", details={"status": statement.status})
    settled = _already_settled(session, statement)
    actor = f"user:{user.id}"
    source = Source("settlement", str(statement.id))
    specs: list[EntrySpec] = []
    for row in statement.by_township:
        township_id = int(row["township_id"])
        for asset, name in _ASSET_FIELD.items():
            amount = int(row[name]) - settled.get((township_id, asset), 0)
            if amount == 0:
                continue
            payable = partner_payable(session, township_id, statement.partner_id, asset)
            payouts = system_account(session, township_id, SETTLED_PAYOUTS, asset)
            specs.append(
                EntrySpec(
                    township_id=township_id,
                    kind="settled",
                    legs=[Leg(payable.id, -amount), Leg(payouts.id, amount)],
                    actor=actor,
                    reason=f"结算付款 {statement.business_date.isoformat()} {reference}"[:500],
                    source=source,
                    idempotency_key=(
                        f"settle:{statement.id}:v{statement.version}:{township_id}:{asset}"
                    ),
                )
            )
    if specs:
        post_entries(session, specs)
    statement.paid_reference = reference[:100]
    statement.paid_on = paid_on
    statement.paid_at = utcnow()
    statement.paid_by = actor
    session.flush()
    audit.record(
        session,
        actor=user,
        action="settlement.pay",
        object_type="settlement_statement",
        object_id=statement.id,
        county_id=statement.county_id,
        township_id=statement.township_id,
        after={
            "reference": statement.paid_reference,
            "paid_on": paid_on.isoformat(),
            "net_payable_fen": statement.net_payable_fen,
            "entries": len(specs),
        },
    )
    return statement


@dataclass(frozen=True)
class Outstanding:
    partner_id: int
    partner_name: str
    integrity_fen: int  # CNY payable balance: integrity discounts and shortfalls not yet paid
    points: int  # POINTS payable balance: points redeemed not yet paid


def outstanding_payables(session: Session, user: User) -> list[Outstanding]:
    """What the townships owe each visible partner now, from the ledger's payable balances
    (summed over the townships whose households spent there)."""
    stmt = (
        select(Partner.id, Partner.name, Account.asset, Account.posted_balance)
        .join(Account, Account.partner_id == Partner.id)
        .where(Account.kind == PARTNER_PAYABLE)
        .order_by(Partner.id)
    )
    stmt = restrict_to_user(
        stmt,
        user,
        partner_col=Partner.id,
        county_col=Partner.county_id,
        township_col=Partner.township_id,
    )
    totals: dict[int, dict[str, int]] = {}
    names: dict[int, str] = {}
    for partner_id, name, asset, balance in session.execute(stmt):
        names[partner_id] = name
        per = totals.setdefault(partner_id, {CNY: 0, POINTS: 0})
        per[asset] += int(balance)
    return [Outstanding(pid, names[pid], per[CNY], per[POINTS]) for pid, per in totals.items()]
