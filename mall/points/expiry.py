"""Optional point expiry per region (setting `points_expiry`).

`"end_of_next_year"`: points earned in year Y expire at the end of Y+1. Spending uses the
oldest points first, so on a day in year Z what expires is whatever the wallet holds beyond
the points credited after the cutoff (31 December of Z-2). One run per township and cutoff
(a unique row), posted in bulk as `points_expired` entries to the township's expired account.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from mall.clock import utcnow
from mall.ledger.accounts import system_account
from mall.ledger.bulk import Transfer, post_household_transfers
from mall.ledger.models import EXPIRED_FORFEITED, HOUSEHOLD_POINTS, POINTS
from mall.points.models import PointExpiryRun
from mall.regions.models import Region
from mall.regions.services import effective_settings

POLICIES = (None, "end_of_next_year")


def cutoff_for(policy: str | None, today: date) -> date | None:
    if policy == "end_of_next_year":
        return date(today.year - 2, 12, 31)
    return None


_EXPIRING = text(
    """
    SELECT a.subject_id,
           a.posted_balance - a.held_balance
             - COALESCE((SELECT sum(p.amount) FROM ledger_postings p
                         JOIN ledger_entries e
                           ON e.township_id = p.township_id AND e.id = p.entry_id
                         WHERE p.township_id = a.township_id AND p.account_id = a.id
                           AND p.amount > 0 AND e.business_date > :cutoff), 0) AS expiring
    FROM ledger_accounts a
    WHERE a.township_id = :t AND a.kind = :kind AND a.asset = :asset
      AND a.posted_balance - a.held_balance > 0
    """
)


def expire_points(session: Session, today: date) -> int:
    """Expire points in every township whose policy says so and that has not run for this
    cutoff yet. Returns the number of households whose points expired."""
    total = 0
    for township in session.scalars(
        select(Region).where(Region.kind == "township").order_by(Region.id)
    ):
        cutoff = cutoff_for(effective_settings(session, township).get("points_expiry"), today)
        if cutoff is None:
            continue
        done = session.scalar(
            select(PointExpiryRun.id).where(
                PointExpiryRun.township_id == township.id, PointExpiryRun.cutoff == cutoff
            )
        )
        if done:
            continue
        run = PointExpiryRun(township_id=township.id, cutoff=cutoff, ran_at=utcnow())
        session.add(run)
        session.flush()  # the unique key: a concurrent run of the same cutoff fails here
        rows = session.execute(
            _EXPIRING,
            {"t": township.id, "cutoff": cutoff, "kind": HOUSEHOLD_POINTS, "asset": POINTS},
        ).all()
        transfers = [
            Transfer(
                r.subject_id,
                -int(r.expiring),
                f"{cutoff.isoformat()}",
                f"points-expiry:{cutoff.isoformat()}:{r.subject_id}",
            )
            for r in rows
            if r.expiring > 0
        ]
        result = post_household_transfers(
            session,
            township_id=township.id,
            wallet_kind=HOUSEHOLD_POINTS,
            counter=system_account(session, township.id, EXPIRED_FORFEITED, POINTS),
            transfers=transfers,
            credit_kind="points_refunded",  # never used: expiry only debits
            debit_kind="points_expired",
            actor="system",
            reason=f"{cutoff.year}年及以前的积分到期",
            source_type="points_expiry",
            business_date=today,
        )
        run.households, run.points = result.entries, -result.total
        total += result.entries
    session.flush()
    return total
