"""The ledger's bulk path: many household transfers against one township account.

Approving a batch for 100,000 households, granting integrity money to a township on the day
its ratings take effect, or expiring points at year end is one entry per household. The
ledger's `post_entries` writes those one at a time (a few round trips each); this module
writes the same rows in bulk: the same entries, postings, cached balances and hash chain
that `mall.ledger.posting._write` produces (the same hashing and lock functions), so
`flask verify` checks them like any other entry. On PostgreSQL the entries and postings go
in by COPY.

It keeps the ledger's lock order: the accounts in id order (household wallets and the
counter account together), then the township's chain head. Debits may be clamped to what is
available, never below zero, so a wallet flagged `no_negative` stays valid.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Table, bindparam, insert, literal, select, text, update
from sqlalchemy.orm import Session

from mall.clock import business_date as today_of
from mall.clock import utcnow
from mall.db import insert_for
from mall.ledger import hashing
from mall.ledger.models import CNY, HOUSEHOLD_POINTS, POINTS, Account, ChainHead, Entry, Posting
from mall.ledger.posting import expire_cached_accounts, insufficient, lock_chain_head
from mall.subjects.models import CreditSubject

_accounts: Table = Account.__table__  # type: ignore[assignment]
_entries: Table = Entry.__table__  # type: ignore[assignment]
_postings: Table = Posting.__table__  # type: ignore[assignment]
_heads: Table = ChainHead.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Transfer:
    subject_id: int
    amount: int  # > 0 credits the household wallet, < 0 debits it
    source_id: str
    idempotency_key: str


@dataclass(frozen=True)
class BulkResult:
    entries: int
    posted: dict[int, int]  # subject id -> amount actually posted (after clamping)
    total: int


def _chunks(ids: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def _chunk_size(session: Session) -> int:
    return 5000 if session.get_bind().dialect.name == "postgresql" else 500


def ensure_wallets(
    session: Session, township_id: int, kind: str, subject_ids: Sequence[int]
) -> dict[int, int]:
    """Open the missing wallets of `kind` for these households in one statement per chunk;
    return subject id -> account id."""
    asset = POINTS if kind == HOUSEHOLD_POINTS else CNY
    size = _chunk_size(session)
    ids = sorted(set(subject_ids))
    now = utcnow()
    for chunk in _chunks(ids, size):
        ins = insert_for(session, _accounts)
        source = select(
            CreditSubject.township_id,
            CreditSubject.id,
            literal(asset, _accounts.c.asset.type),
            literal(kind, _accounts.c.kind.type),
            literal(True, _accounts.c.no_negative.type),
            literal(0, _accounts.c.posted_balance.type),
            literal(0, _accounts.c.held_balance.type),
            literal(now, _accounts.c.created_at.type),
        ).where(CreditSubject.township_id == township_id, CreditSubject.id.in_(chunk))
        stmt = ins.from_select(
            [
                "township_id",
                "subject_id",
                "asset",
                "kind",
                "no_negative",
                "posted_balance",
                "held_balance",
                "created_at",
            ],
            source,
        ).on_conflict_do_nothing(
            index_elements=["township_id", "kind", "asset", "subject_id"],
            index_where=text("subject_id IS NOT NULL"),
        )
        session.execute(stmt)
    found: dict[int, int] = {}
    for chunk in _chunks(ids, size):
        rows = session.execute(
            select(_accounts.c.subject_id, _accounts.c.id).where(
                _accounts.c.township_id == township_id,
                _accounts.c.kind == kind,
                _accounts.c.asset == asset,
                _accounts.c.subject_id.in_(chunk),
            )
        )
        found.update({r.subject_id: r.id for r in rows})
    return found


def _lock(session: Session, township_id: int, account_ids: list[int]) -> dict[int, tuple[int, int]]:
    """Lock every account in ascending id order (chunks in order keep the global order)."""
    state: dict[int, tuple[int, int]] = {}
    for chunk in _chunks(sorted(set(account_ids)), _chunk_size(session)):
        rows = session.execute(
            select(_accounts.c.id, _accounts.c.posted_balance, _accounts.c.held_balance)
            .where(_accounts.c.township_id == township_id, _accounts.c.id.in_(chunk))
            .order_by(_accounts.c.id)
            .with_for_update()
        )
        state.update({r.id: (r.posted_balance, r.held_balance) for r in rows})
    return state


def post_household_transfers(
    session: Session,
    *,
    township_id: int,
    wallet_kind: str,
    counter: Account,
    transfers: Sequence[Transfer],
    credit_kind: str,
    debit_kind: str,
    actor: str,
    reason: str,
    source_type: str,
    business_date: date | None = None,
    clamp_debits: bool = True,
) -> BulkResult:
    """One entry per transfer between the household's wallet and `counter`. Debits larger
    than the wallet's available balance are clamped to it (or refused when not clamping);
    transfers that come to zero post nothing."""
    transfers = [t for t in transfers if t.amount != 0]
    if not transfers:
        return BulkResult(0, {}, 0)
    session.flush()
    wallets = ensure_wallets(session, township_id, wallet_kind, [t.subject_id for t in transfers])
    state = _lock(session, township_id, [*wallets.values(), counter.id])
    asset = counter.asset
    created_at = utcnow()
    bdate = business_date or today_of(created_at)
    seq, prev_hash = lock_chain_head(session, township_id)
    counter_balance = state[counter.id][0]
    entry_rows: list[dict[str, Any]] = []
    posting_rows: list[tuple[int, int, int, int]] = []  # entry index, account, amount, after
    posted: dict[int, int] = {}
    for t in sorted(transfers, key=lambda x: wallets[x.subject_id]):
        account_id = wallets[t.subject_id]
        balance, held = state[account_id]
        amount = t.amount
        if amount < 0 and balance - held + amount < 0:
            if not clamp_debits:
                raise insufficient(asset, account_id, balance - held, -amount)
            amount = -(balance - held)
        if amount == 0:
            continue
        balance += amount
        counter_balance -= amount
        state[account_id] = (balance, held)
        kind = credit_kind if amount > 0 else debit_kind
        legs = [(account_id, amount), (counter.id, -amount)]
        req_hash = hashing.request_hash(
            kind=kind, legs=legs, source_type=source_type, source_id=t.source_id
        )
        seq += 1
        header = hashing.entry_header(
            township_id=township_id,
            chain_seq=seq,
            kind=kind,
            actor=actor,
            reason=reason,
            source_type=source_type,
            source_id=t.source_id,
            idempotency_key=t.idempotency_key,
            request_hash=req_hash,
            reverses_entry_id=None,
            hold_id=None,
            created_at=created_at,
            business_date=bdate,
        )
        postings = [
            (account_id, asset, amount, balance),
            (counter.id, asset, -amount, counter_balance),
        ]
        entry_hash = hashing.chain_hash(prev_hash, header, hashing.postings_part(postings))
        index = len(entry_rows)
        entry_rows.append(
            {
                "township_id": township_id,
                "chain_seq": seq,
                "kind": kind,
                "actor": actor,
                "reason": reason,
                "source_type": source_type,
                "source_id": t.source_id,
                "idempotency_key": t.idempotency_key,
                "request_hash": req_hash,
                "reverses_entry_id": None,
                "hold_id": None,
                "created_at": created_at,
                "business_date": bdate,
                "prev_hash": prev_hash,
                "hash": entry_hash,
            }
        )
        prev_hash = entry_hash
        posting_rows.append((index, account_id, amount, balance))
        posting_rows.append((index, counter.id, -amount, counter_balance))
        posted[t.subject_id] = amount
    if not entry_rows:
        return BulkResult(0, {}, 0)
    entry_ids = _insert_entries(session, entry_rows)
    _insert_postings(session, township_id, asset, entry_ids, posting_rows)
    _update_balances(
        session, township_id, counter.id, counter_balance, min(entry_ids), max(entry_ids)
    )
    session.execute(
        update(_heads)
        .where(_heads.c.township_id == township_id)
        .values(last_seq=seq, last_hash=prev_hash, last_entry_id=entry_ids[-1])
    )
    expire_cached_accounts(session, township_id, [*wallets.values(), counter.id])
    return BulkResult(len(entry_rows), posted, sum(posted.values()))


def _insert_entries(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    if session.get_bind().dialect.name != "postgresql":
        result = session.execute(
            insert(_entries).returning(_entries.c.id, sort_by_parameter_order=True), rows
        )
        return [r.id for r in result]
    ids = list(
        session.execute(
            text(
                "SELECT nextval(pg_get_serial_sequence('ledger_entries', 'id'))"
                " FROM generate_series(1, :n)"
            ),
            {"n": len(rows)},
        ).scalars()
    )
    ids.sort()
    columns = ["id", *rows[0].keys()]
    copy_rows(
        session,
        "ledger_entries",
        columns,
        ([i, *r.values()] for i, r in zip(ids, rows, strict=True)),
    )
    return ids


def _insert_postings(
    session: Session,
    township_id: int,
    asset: str,
    entry_ids: list[int],
    rows: list[tuple[int, int, int, int]],
) -> None:
    values = (
        {
            "township_id": township_id,
            "entry_id": entry_ids[index],
            "account_id": account_id,
            "asset": asset,
            "amount": amount,
            "balance_after": after,
        }
        for index, account_id, amount, after in rows
    )
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert(_postings), list(values))
        return
    columns = ["township_id", "entry_id", "account_id", "asset", "amount", "balance_after"]
    copy_rows(session, "ledger_postings", columns, (list(v.values()) for v in values))


def copy_rows(session: Session, table: str, columns: list[str], rows: Iterator[list[Any]]) -> None:
    """PostgreSQL COPY through the session's own connection and transaction; psycopg adapts
    each value (in C with psycopg[binary])."""
    dbapi: Any = session.connection().connection.dbapi_connection
    with (
        dbapi.cursor() as cur,
        cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def _update_balances(
    session: Session, township_id: int, counter_id: int, counter_balance: int, lo: int, hi: int
) -> None:
    """Household wallets take the balance after their (single) posting in this range."""
    session.execute(
        text(
            "UPDATE ledger_accounts SET posted_balance = p.balance_after"
            " FROM ledger_postings p"
            " WHERE p.township_id = :t AND p.entry_id BETWEEN :lo AND :hi"
            " AND p.account_id <> :counter"
            " AND ledger_accounts.township_id = p.township_id"
            " AND ledger_accounts.id = p.account_id"
        ),
        {"t": township_id, "lo": lo, "hi": hi, "counter": counter_id},
    )
    session.execute(
        update(_accounts)
        .where(_accounts.c.township_id == township_id, _accounts.c.id == bindparam("c_id"))
        .values(posted_balance=bindparam("c_balance")),
        {"c_id": counter_id, "c_balance": counter_balance},
    )
