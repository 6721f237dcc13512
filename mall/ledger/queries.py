"""Reads: O(1) balances from the cached columns, and keyset-paginated account history."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.clock import as_aware
from mall.errors import NotFound, ValidationFailed
from mall.ledger.accounts import Wallets
from mall.ledger.models import Account, Entry, Posting


@dataclass(frozen=True)
class Balance:
    posted: int
    held: int

    @property
    def available(self) -> int:
        """What may be spent now: posted minus open holds."""
        return self.posted - self.held


def balance(session: Session, township_id: int, account_id: int) -> Balance:
    row = session.execute(
        select(Account.posted_balance, Account.held_balance).where(
            Account.township_id == township_id, Account.id == account_id
        )
    ).first()
    if row is None:
        raise NotFound(details={"account_id": account_id})
    return Balance(row.posted_balance, row.held_balance)


@dataclass(frozen=True)
class WalletBalances:
    points: Balance
    integrity_fen: Balance


def wallet_balances(session: Session, wallets: Wallets) -> WalletBalances:
    return WalletBalances(
        points=balance(session, wallets.points.township_id, wallets.points.id),
        integrity_fen=balance(session, wallets.integrity.township_id, wallets.integrity.id),
    )


@dataclass(frozen=True)
class HistoryItem:
    posting_id: int
    entry_id: int
    kind: str
    amount: int
    balance_after: int
    created_at: datetime
    business_date: date
    actor: str
    reason: str
    source_type: str | None
    source_id: str | None
    reverses_entry_id: int | None


@dataclass(frozen=True)
class HistoryPage:
    items: list[HistoryItem]
    next_cursor: str | None


def _encode_cursor(posting_id: int) -> str:
    return base64.urlsafe_b64encode(f"p{posting_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("p"):
            raise ValueError(cursor)
        return int(raw[1:])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed(details={"fields": {"cursor": ["invalid cursor"]}}) from None


def account_history(
    session: Session,
    township_id: int,
    account_id: int,
    *,
    limit: int = 20,
    cursor: str | None = None,
) -> HistoryPage:
    """Newest first, each posting with the account's balance after it. The cursor is opaque;
    pages are stable while new entries arrive (keyset on the posting id, never OFFSET)."""
    if not 1 <= limit <= 200:
        raise ValidationFailed(details={"fields": {"limit": ["1 to 200"]}})
    stmt = (
        select(
            Posting.id,
            Posting.entry_id,
            Posting.amount,
            Posting.balance_after,
            Entry.kind,
            Entry.created_at,
            Entry.business_date,
            Entry.actor,
            Entry.reason,
            Entry.source_type,
            Entry.source_id,
            Entry.reverses_entry_id,
        )
        .join(Entry, (Entry.township_id == Posting.township_id) & (Entry.id == Posting.entry_id))
        .where(Posting.township_id == township_id, Posting.account_id == account_id)
        .order_by(Posting.id.desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        stmt = stmt.where(Posting.id < _decode_cursor(cursor))
    rows = session.execute(stmt).all()
    items = [
        HistoryItem(
            posting_id=r.id,
            entry_id=r.entry_id,
            kind=r.kind,
            amount=r.amount,
            balance_after=r.balance_after,
            created_at=as_aware(r.created_at),
            business_date=r.business_date,
            actor=r.actor,
            reason=r.reason,
            source_type=r.source_type,
            source_id=r.source_id,
            reverses_entry_id=r.reverses_entry_id,
        )
        for r in rows[:limit]
    ]
    next_cursor = _encode_cursor(items[-1].posting_id) if len(rows) > limit else None
    return HistoryPage(items, next_cursor)
