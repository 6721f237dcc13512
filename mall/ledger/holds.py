"""Two-phase holds: place, then capture (in full or for less), void, or expire after the deadline.

A hold reserves part of an account's balance: `held_balance` grows, `available` shrinks, the
posted balance is untouched until the capture posts an entry. A hold resolves exactly once:
every resolution is a conditional `UPDATE ... WHERE status = 'open'` taken under the account
lock; a database trigger refuses any other change, and a unique key lets at most one entry
capture a hold. Lock order is the ledger's: accounts (by id), then the hold row, then the chain.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from mall.clock import as_aware, utcnow
from mall.errors import Conflict, NotFound, ValidationFailed
from mall.ledger import hashing
from mall.ledger.models import Account, Entry, Hold
from mall.ledger.posting import (
    EntrySpec,
    Leg,
    PostedEntry,
    Source,
    expire_cached_accounts,
    insufficient,
    lock_accounts,
    post_entries,
    replayed_entry,
)

_accounts: Table = Account.__table__  # type: ignore[assignment]
_holds: Table = Hold.__table__  # type: ignore[assignment]

DEFAULT_HOLD_TTL = timedelta(minutes=30)


def place_hold(
    session: Session,
    *,
    account: Account,
    counter_account: Account,
    amount: int,
    actor: str,
    reason: str = "",
    source: Source | None = None,
    expires_at: datetime | None = None,
    idempotency_key: str | None = None,
) -> Hold:
    """Reserve `amount` of `account` for `counter_account`; refuses what is not available."""
    if type(amount) is not int or amount <= 0:
        raise ValidationFailed(details={"fields": {"amount": ["a positive integer"]}})
    if account.township_id != counter_account.township_id or account.id == counter_account.id:
        raise ValidationFailed(
            details={"fields": {"counter_account": ["another account, same township"]}}
        )
    if account.asset != counter_account.asset:
        raise ValidationFailed(details={"fields": {"counter_account": ["same asset"]}})
    now = utcnow()
    expires_at = expires_at or now + DEFAULT_HOLD_TTL
    if as_aware(expires_at) <= now:
        raise ValidationFailed(details={"fields": {"expires_at": ["in the future"]}})
    req_hash = hashing.hold_request_hash(
        account_id=account.id,
        counter_account_id=counter_account.id,
        amount=amount,
        source_type=source.type if source else None,
        source_id=source.id if source else None,
    )
    session.flush()
    t = account.township_id
    state = lock_accounts(session, t, [account.id])[account.id]
    if idempotency_key is not None:
        found = session.scalars(
            select(Hold).where(Hold.township_id == t, Hold.idempotency_key == idempotency_key)
        ).one_or_none()
        if found is not None:
            if found.request_hash != req_hash:
                raise Conflict("idempotency_conflict", details={"idempotency_key": idempotency_key})
            return found
    available = state.posted - state.held
    if state.no_negative and available < amount:
        raise insufficient(state.asset, account.id, available, amount)
    session.execute(
        update(_accounts)
        .where(_accounts.c.township_id == t, _accounts.c.id == account.id)
        .values(held_balance=_accounts.c.held_balance + amount)
    )
    state.held += amount
    expire_cached_accounts(session, t, [account.id])
    hold = Hold(
        township_id=t,
        account_id=account.id,
        counter_account_id=counter_account.id,
        asset=account.asset,
        amount=amount,
        status="open",
        expires_at=expires_at,
        actor=actor,
        reason=reason,
        source_type=source.type if source else None,
        source_id=source.id if source else None,
        idempotency_key=idempotency_key,
        request_hash=req_hash,
        created_at=now,
    )
    session.add(hold)
    session.flush()
    return hold


def _load(session: Session, township_id: int, hold_id: int) -> Hold:
    hold = session.scalars(
        select(Hold)
        .where(Hold.township_id == township_id, Hold.id == hold_id)
        .execution_options(populate_existing=True)
    ).one_or_none()
    if hold is None:
        raise NotFound(details={"hold_id": hold_id})
    return hold


def _resolve(session: Session, hold: Hold, status: str, actor: str, captured: int | None) -> None:
    """Flip the hold from open to `status` exactly once (the caller holds the account lock)."""
    now = utcnow()
    result = session.execute(
        update(_holds)
        .where(
            _holds.c.township_id == hold.township_id,
            _holds.c.id == hold.id,
            _holds.c.status == "open",
        )
        .values(status=status, captured_amount=captured, resolved_at=now, resolved_by=actor)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.expire(hold)
        raise Conflict("invalid_state", details={"hold_id": hold.id, "status": hold.status})
    # Mirror the row without marking the object dirty (a flush must never touch the hold).
    for name, value in (
        ("status", status),
        ("captured_amount", captured),
        ("resolved_at", now),
        ("resolved_by", actor),
    ):
        set_committed_value(hold, name, value)


def capture_hold(
    session: Session,
    *,
    township_id: int,
    hold_id: int,
    actor: str,
    amount: int | None = None,
    kind: str = "hold_captured",
    reason: str = "",
    idempotency_key: str | None = None,
    business_date: date | None = None,
) -> PostedEntry:
    """Post the held amount (or less) from the account to the counter account; the rest of
    the hold is released. A repeated capture with the same idempotency key returns the entry."""
    hold = _load(session, township_id, hold_id)
    if hold.status == "captured" and idempotency_key is not None:
        entry = session.scalars(
            select(Entry).where(Entry.township_id == township_id, Entry.hold_id == hold_id)
        ).one_or_none()
        if entry is not None and entry.idempotency_key == idempotency_key:
            return replayed_entry(session, entry)
    captured = hold.amount if amount is None else amount
    if type(captured) is not int or not 0 < captured <= hold.amount:
        raise ValidationFailed(details={"fields": {"amount": [f"1 to {hold.amount}"]}})
    lock_accounts(session, township_id, [hold.account_id, hold.counter_account_id])
    if hold.status == "open" and as_aware(hold.expires_at) <= utcnow():
        raise Conflict("invalid_state", details={"hold_id": hold.id, "status": "expired"})
    _resolve(session, hold, "captured", actor, captured)
    spec = _capture_spec(hold, captured, actor, kind, reason, idempotency_key, business_date)
    return post_entries(session, [spec])[0]


def _capture_spec(
    hold: Hold,
    captured: int,
    actor: str,
    kind: str,
    reason: str,
    idempotency_key: str | None,
    business_date: date | None,
) -> EntrySpec:
    return EntrySpec(
        township_id=hold.township_id,
        kind=kind,
        legs=[Leg(hold.account_id, -captured), Leg(hold.counter_account_id, captured)],
        actor=actor,
        reason=reason or hold.reason,
        source=Source(hold.source_type, hold.source_id)
        if hold.source_type is not None and hold.source_id is not None
        else None,
        idempotency_key=idempotency_key,
        business_date=business_date,
        hold_id=hold.id,
        release_held={hold.account_id: hold.amount},
    )


def _release(session: Session, hold: Hold, status: str, actor: str) -> Hold:
    lock_accounts(session, hold.township_id, [hold.account_id])
    amount, account_id = hold.amount, hold.account_id
    _resolve(session, hold, status, actor, None)
    session.execute(
        update(_accounts)
        .where(_accounts.c.township_id == hold.township_id, _accounts.c.id == account_id)
        .values(held_balance=_accounts.c.held_balance - amount)
    )
    expire_cached_accounts(session, hold.township_id, [account_id])
    return hold


def void_hold(session: Session, *, township_id: int, hold_id: int, actor: str) -> Hold:
    """Release the whole hold; nothing is posted."""
    return _release(session, _load(session, township_id, hold_id), "voided", actor)


def expire_holds(
    session: Session,
    *,
    now: datetime | None = None,
    township_id: int | None = None,
    limit: int = 500,
    actor: str = "system:hold-expiry",
) -> int:
    """Expire open holds whose deadline has passed; returns how many. Run by a job."""
    now = now or utcnow()
    stmt = select(Hold).where(Hold.status == "open", Hold.expires_at <= now)
    if township_id is not None:
        stmt = stmt.where(Hold.township_id == township_id)
    due = list(
        session.scalars(stmt.order_by(Hold.township_id, Hold.account_id, Hold.id).limit(limit))
    )
    # Lock every account first, in (township, id) order, like every other ledger writer.
    by_township: dict[int, set[int]] = {}
    for hold in due:
        by_township.setdefault(hold.township_id, set()).add(hold.account_id)
    for t in sorted(by_township):
        lock_accounts(session, t, by_township[t])
    expired = 0
    for hold in due:
        try:
            _release(session, hold, "expired", actor)
        except Conflict:
            continue  # captured or voided meanwhile: it resolved once, elsewhere
        expired += 1
    return expired
