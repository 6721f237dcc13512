"""Posting entries: the one write path for balances.

`post_entry` promises: the entry is balanced per asset, every account belongs to the entry's
township, no wallet flagged `no_negative` goes below zero (nor below its open holds), the
cached balances move in the same transaction as the postings, the entry is linked into the
township's hash chain, and a repeated idempotency key returns the original entry.

Locking (PostgreSQL), always in this order, so concurrent writers cannot deadlock:
1. the entry's accounts, `SELECT ... FOR UPDATE` ordered by id;
2. hold rows, if any (holds.py), after their accounts;
3. last, the township's chain head row, held only for the few statements that insert the
   entry and its postings and until commit.
A transaction that posts a second entry after the first must not touch accounts it has not
locked yet (that would take an account lock after the chain lock); `post_entries` posts
several entries with every account locked first. SQLite takes its one write lock at BEGIN
IMMEDIATE (mall/db.py), so there every transaction is serial anyway.

The hot path uses Core statements, not the unit of work: a spend is a handful of round trips.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from mall.clock import business_date as today
from mall.clock import utcnow
from mall.db import insert_for
from mall.driver_sql import run_on_driver
from mall.errors import Conflict, NotFound, ValidationFailed
from mall.ledger import hashing
from mall.ledger.models import GENESIS_HASH, POINTS, Account, ChainHead, Entry, Posting

ENTRY_KINDS = (
    "points_issued",  # fund -> household, by an approved issuance batch
    "points_deducted",  # household -> fund, a penalty from the negative list
    "points_redeemed",  # household -> partner payable (POINTS), goods from the catalog
    "points_refunded",  # partner payable -> household, goods returned
    "points_expired",  # household -> expired/forfeited
    "integrity_granted",  # fund -> household, the yearly allowance by star level
    "integrity_spent",  # household -> partner payable (CNY), the discount at the till
    "integrity_refunded",  # partner payable -> household, a refund's share of the discount
    "integrity_expired",  # household -> expired/forfeited at the end of the period
    "integrity_clawed_back",  # household -> fund, a rating revoked
    "hold_captured",  # a two-phase payment completed (holds.py)
    "settled",  # partner payable -> settled payouts, the township paid the partner
    "offline_shortfall",  # shortfall of an offline sale paid from the township's account
    "village_reward",  # township or county fund -> village collective, an assessment reward
    "reversal",  # the exact opposite of an earlier entry (reverse_entry)
)

_accounts: Table = Account.__table__  # type: ignore[assignment]
_entries: Table = Entry.__table__  # type: ignore[assignment]
_postings: Table = Posting.__table__  # type: ignore[assignment]
_heads: Table = ChainHead.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Leg:
    """One side of an entry: a signed amount on an account (+ credit to the holder's balance)."""

    account_id: int
    amount: int


def leg(account: Account, amount: int) -> Leg:
    return Leg(account.id, amount)


@dataclass(frozen=True)
class Source:
    """What the entry is for: a payment, an issuance batch, a rating, a settlement..."""

    type: str
    id: str


@dataclass(frozen=True)
class EntrySpec:
    township_id: int
    kind: str
    legs: Sequence[Leg]
    actor: str
    reason: str = ""
    source: Source | None = None
    idempotency_key: str | None = None
    business_date: date | None = None
    reverses_entry_id: int | None = None
    hold_id: int | None = None
    # Holds released by this entry (a capture): account id -> amount no longer held.
    release_held: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PostedEntry:
    township_id: int
    entry_id: int
    chain_seq: int
    hash: str
    replayed: bool
    # Each account's posted balance right after this entry.
    balances_after: dict[int, int]


@dataclass
class LockedAccount:
    """An account's state as read under its row lock (and kept current as entries post)."""

    asset: str
    no_negative: bool
    posted: int
    held: int


@dataclass
class LockedBooks:
    """Accounts of one township and its chain head, locked by this transaction in the
    ledger's order (accounts by id, then the head) and read under the lock: what
    `post_entries` would lock and read itself, taken by a caller that needed the balances
    first (a sale prices its discount on them; mall/ledger/accounts.py `sale_accounts`).
    Posting updates it, so further entries of the transaction may use it too."""

    township_id: int
    accounts: dict[int, LockedAccount]
    head: list[Any]  # [last chain_seq, last hash]

    def covers(self, township_id: int, account_ids: set[int]) -> bool:
        return township_id == self.township_id and account_ids <= self.accounts.keys()


def post_entry(
    session: Session,
    *,
    township_id: int,
    kind: str,
    legs: Sequence[Leg],
    actor: str,
    reason: str = "",
    source: Source | None = None,
    idempotency_key: str | None = None,
    business_date: date | None = None,
) -> PostedEntry:
    """Post one balanced entry (see the module docstring for what is promised)."""
    spec = EntrySpec(
        township_id=township_id,
        kind=kind,
        legs=legs,
        actor=actor,
        reason=reason,
        source=source,
        idempotency_key=idempotency_key,
        business_date=business_date,
    )
    return post_entries(session, [spec])[0]


def post_entries(
    session: Session, specs: Sequence[EntrySpec], *, locked_books: LockedBooks | None = None
) -> list[PostedEntry]:
    """Post several entries in one transaction, every account locked before any chain head.
    `locked_books`: what the caller has locked already (used where it covers an entry)."""
    for spec in specs:
        _validate(spec)
    session.flush()
    by_township: dict[int, set[int]] = {}
    for spec in specs:
        by_township.setdefault(spec.township_id, set()).update(leg.account_id for leg in spec.legs)
    if locked_books is not None and set(by_township) != {locked_books.township_id}:
        # Another township's accounts would be locked after this one's head: out of order.
        raise ValueError("locked_books serve entries of their own township only")
    locked: dict[int, dict[int, LockedAccount]] = {}
    heads: dict[int, list[Any]] = {}
    for township_id in sorted(by_township):
        if locked_books is not None and locked_books.covers(township_id, by_township[township_id]):
            locked[township_id], heads[township_id] = locked_books.accounts, locked_books.head
            continue
        locked[township_id], heads[township_id] = _lock_for_entry(
            session, township_id, by_township[township_id]
        )
    return [
        _write(session, spec, locked[spec.township_id], heads[spec.township_id]) for spec in specs
    ]


def _lock_for_entry(
    session: Session, township_id: int, account_ids: Iterable[int]
) -> tuple[dict[int, LockedAccount], list[Any]]:
    """Lock the accounts (by id), then the township's chain head: on PostgreSQL in one round
    trip, because every statement between the first lock and the commit is time during which
    a hot account is closed to everyone else."""
    if session.get_bind().dialect.name != "postgresql":
        accounts = lock_accounts(session, township_id, account_ids)
        return accounts, list(lock_chain_head(session, township_id))
    ids = sorted(set(account_ids))
    # UNION ALL runs its branches in order, so the accounts are locked before the chain head.
    params: dict[str, Any] = {"t": township_id}
    if len(ids) <= INLINE_ROWS:
        params.update({f"id{i}": account_id for i, account_id in enumerate(ids)})
        sql = _lock_for_entry_sql(len(ids))
    else:
        params["ids"] = ids
        sql = _lock_for_entry_sql(_ARRAYS)
    rows = _on_driver(session, sql, params).fetchall()
    found = {r[0]: LockedAccount(r[1], r[2], r[3], r[4]) for r in rows if r[0] is not None}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(details={"accounts": missing, "township_id": township_id})
    head = [r for r in rows if r[0] is None]
    if not head:  # the township's first entry
        return found, list(lock_chain_head(session, township_id))
    return found, [head[0][5], head[0][6]]


def _on_driver(session: Session, sql: str, params: dict[str, Any]) -> Any:
    """Run on the psycopg connection under the session, inside the session's transaction. The
    two statements of the hot path go straight to it (and psycopg prepares them): what
    SQLAlchemy adds per statement is time during which a hot account stays locked."""
    return run_on_driver(session.connection(), sql, params)


def _pyformat(sql: str) -> str:
    return re.sub(r"(?<!:):(\w+)", r"%(\1)s", sql)


# The statements below are written for a fixed number of accounts, one text per count (a
# handful: an entry has two to four legs), not with array parameters. PostgreSQL plans a
# prepared statement afresh on every execution while its generic plan looks costlier than the
# custom ones, and for an array of unknown length it always does (it guesses 10 to 100
# elements where there are 2): measured, that planning was a quarter of a payment's database
# time. With one placeholder per row the generic plan is estimated right and is kept.
# Entries with more rows than INLINE_ROWS (bulk issuance to a village in one entry, say) pass
# arrays instead: for them planning is nothing beside the work, and one placeholder per row
# would pass PostgreSQL's limit of 65,535 parameters per statement at about 9,000 legs.
INLINE_ROWS = 16
_ARRAYS = 0  # the row count that names the array form of a statement


@lru_cache(maxsize=64)
def _lock_for_entry_sql(count: int) -> str:
    if count == _ARRAYS:
        match = "id = ANY(CAST(:ids AS bigint[]))"
    else:
        match = "id IN ({})".format(", ".join(f"CAST(:id{i} AS bigint)" for i in range(count)))
    return _pyformat(_LOCK_FOR_ENTRY_SQL.format(match=match))


_LOCK_FOR_ENTRY_SQL = """
    SELECT a.id, a.asset, a.no_negative, a.posted_balance AS posted, a.held_balance AS held,
           NULL::bigint AS last_seq, NULL::varchar AS last_hash
    FROM (SELECT id, asset, no_negative, posted_balance, held_balance FROM ledger_accounts
          WHERE township_id = :t AND {match} ORDER BY id FOR UPDATE) a
    UNION ALL
    SELECT NULL, NULL, NULL, NULL, NULL, h.last_seq, h.last_hash
    FROM (SELECT last_seq, last_hash FROM ledger_chain_heads WHERE township_id = :t
          FOR UPDATE) h
"""


def _validate(spec: EntrySpec) -> None:
    problems: dict[str, list[str]] = {}
    if spec.kind not in ENTRY_KINDS:
        problems["kind"] = [f"unknown entry kind {spec.kind!r}"]
    if not spec.actor:
        problems["actor"] = ["required"]
    if len(spec.legs) < 2:
        problems["legs"] = ["an entry needs at least two postings"]
    elif len({leg.account_id for leg in spec.legs}) != len(spec.legs):
        problems["legs"] = ["an entry touches each account at most once"]
    elif any(type(leg.amount) is not int or leg.amount == 0 for leg in spec.legs):
        problems["legs"] = ["amounts are non-zero integers (points or fen)"]
    if spec.idempotency_key is not None and not 1 <= len(spec.idempotency_key) <= 100:
        problems["idempotency_key"] = ["1-100 characters"]
    if problems:
        raise ValidationFailed(details={"fields": problems})


def lock_accounts(
    session: Session, township_id: int, account_ids: Iterable[int]
) -> dict[int, LockedAccount]:
    """Lock the accounts in id order and return their current state (fresh from the row)."""
    ids = sorted(set(account_ids))
    rows = session.execute(
        select(
            _accounts.c.id,
            _accounts.c.asset,
            _accounts.c.no_negative,
            _accounts.c.posted_balance,
            _accounts.c.held_balance,
        )
        .where(_accounts.c.township_id == township_id, _accounts.c.id.in_(ids))
        .order_by(_accounts.c.id)
        .with_for_update()
    ).all()
    found = {
        r.id: LockedAccount(r.asset, r.no_negative, r.posted_balance, r.held_balance) for r in rows
    }
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(details={"accounts": missing, "township_id": township_id})
    return found


def insufficient(asset: str, account_id: int, available: int, required: int) -> Conflict:
    code = "insufficient_points" if asset == POINTS else "insufficient_funds"
    return Conflict(
        code, details={"account_id": account_id, "available": available, "required": required}
    )


def lock_chain_head(session: Session, township_id: int) -> tuple[int, str]:
    """Lock the township's chain head (creating it on first use); returns (seq, hash)."""
    stmt = (
        select(_heads.c.last_seq, _heads.c.last_hash)
        .where(_heads.c.township_id == township_id)
        .with_for_update()
    )
    row = session.execute(stmt).first()
    if row is None:
        ins = insert_for(session, _heads)
        session.execute(
            ins.values(
                township_id=township_id, last_seq=0, last_hash=GENESIS_HASH
            ).on_conflict_do_nothing(index_elements=["township_id"])
        )
        row = session.execute(stmt).one()
    return row.last_seq, row.last_hash


def _replay(session: Session, spec: EntrySpec, request_hash: str) -> PostedEntry | None:
    if spec.idempotency_key is None:
        return None
    found = session.execute(
        select(_entries.c.id, _entries.c.chain_seq, _entries.c.hash, _entries.c.request_hash).where(
            _entries.c.township_id == spec.township_id,
            _entries.c.idempotency_key == spec.idempotency_key,
        )
    ).first()
    if found is None:
        return None
    if found.request_hash != request_hash:
        raise Conflict("idempotency_conflict", details={"idempotency_key": spec.idempotency_key})
    return PostedEntry(
        township_id=spec.township_id,
        entry_id=found.id,
        chain_seq=found.chain_seq,
        hash=found.hash,
        replayed=True,
        balances_after=_balances_after(session, spec.township_id, found.id),
    )


def replayed_entry(session: Session, entry: Entry) -> PostedEntry:
    return PostedEntry(
        township_id=entry.township_id,
        entry_id=entry.id,
        chain_seq=entry.chain_seq,
        hash=entry.hash,
        replayed=True,
        balances_after=_balances_after(session, entry.township_id, entry.id),
    )


def _balances_after(session: Session, township_id: int, entry_id: int) -> dict[int, int]:
    rows = session.execute(
        select(_postings.c.account_id, _postings.c.balance_after).where(
            _postings.c.township_id == township_id, _postings.c.entry_id == entry_id
        )
    ).all()
    return {r.account_id: r.balance_after for r in rows}


def _write(
    session: Session, spec: EntrySpec, locked: dict[int, LockedAccount], head: list[Any]
) -> PostedEntry:
    t = spec.township_id
    source_type = spec.source.type if spec.source else None
    source_id = spec.source.id if spec.source else None
    req_hash = hashing.request_hash(
        kind=spec.kind,
        legs=((leg.account_id, leg.amount) for leg in spec.legs),
        source_type=source_type,
        source_id=source_id,
        reverses_entry_id=spec.reverses_entry_id,
        hold_id=spec.hold_id,
    )
    per_asset: dict[str, int] = {}
    new_state: dict[int, tuple[int, int]] = {}
    for one in spec.legs:
        acct = locked[one.account_id]
        per_asset[acct.asset] = per_asset.get(acct.asset, 0) + one.amount
        held = acct.held - spec.release_held.get(one.account_id, 0)
        new_state[one.account_id] = (acct.posted + one.amount, held)
    unbalanced = {asset: total for asset, total in per_asset.items() if total != 0}
    if unbalanced:
        raise ValidationFailed(details={"fields": {"legs": [f"unbalanced: {unbalanced}"]}})
    if spec.reverses_entry_id is not None:
        already = session.execute(
            select(_entries.c.id).where(
                _entries.c.township_id == t, _entries.c.reverses_entry_id == spec.reverses_entry_id
            )
        ).first()
        if already is not None:
            replay = _replay(session, spec, req_hash)
            if replay is not None:
                return replay
            raise Conflict("invalid_state", details={"reason": "already_reversed"})

    for account_id, (posted, held) in new_state.items():
        acct = locked[account_id]
        if acct.no_negative and (posted < 0 or posted - held < 0):
            # A replay of a spend that emptied the wallet is not a new spend: answer it.
            replay = _replay(session, spec, req_hash)
            if replay is not None:
                return replay
            available = acct.posted - acct.held + spec.release_held.get(account_id, 0)
            raise insufficient(acct.asset, account_id, available, acct.posted - posted)
    created_at = utcnow()
    bdate = spec.business_date or today(created_at)
    seq, prev_hash = head[0] + 1, head[1]
    postings = [
        (one.account_id, locked[one.account_id].asset, one.amount, new_state[one.account_id][0])
        for one in sorted(spec.legs, key=lambda x: x.account_id)
    ]
    header = hashing.entry_header(
        township_id=t,
        chain_seq=seq,
        kind=spec.kind,
        actor=spec.actor,
        reason=spec.reason,
        source_type=source_type,
        source_id=source_id,
        idempotency_key=spec.idempotency_key,
        request_hash=req_hash,
        reverses_entry_id=spec.reverses_entry_id,
        hold_id=spec.hold_id,
        created_at=created_at,
        business_date=bdate,
    )
    entry_hash = hashing.chain_hash(prev_hash, header, hashing.postings_part(postings))
    entry = {
        "township_id": t,
        "chain_seq": seq,
        "kind": spec.kind,
        "actor": spec.actor,
        "reason": spec.reason,
        "source_type": source_type,
        "source_id": source_id,
        "idempotency_key": spec.idempotency_key,
        "request_hash": req_hash,
        "reverses_entry_id": spec.reverses_entry_id,
        "hold_id": spec.hold_id,
        "created_at": created_at,
        "business_date": bdate,
        "prev_hash": prev_hash,
        "hash": entry_hash,
    }
    if session.get_bind().dialect.name == "postgresql":
        entry_id = _insert_pg(session, entry, postings, new_state)
    else:
        entry_id = _insert_portable(session, entry, postings, new_state)
    if entry_id is None:  # the key was used meanwhile (we hold the lock now): a replay
        replay = _replay(session, spec, req_hash)
        assert replay is not None
        return replay
    head[0], head[1] = seq, entry_hash  # the next entry of this transaction chains on
    for account_id, (posted, held) in new_state.items():
        state = locked[account_id]
        state.posted, state.held = posted, held
    expire_cached_accounts(session, t, new_state)
    return PostedEntry(
        township_id=t,
        entry_id=entry_id,
        chain_seq=seq,
        hash=entry_hash,
        replayed=False,
        balances_after={account_id: posted for account_id, (posted, _) in new_state.items()},
    )


def _insert_portable(
    session: Session,
    entry: dict[str, Any],
    postings: list[tuple[int, str, int, int]],
    new_state: dict[int, tuple[int, int]],
) -> int | None:
    """Statement by statement (SQLite: one writer at a time anyway)."""
    t = entry["township_id"]
    if entry["idempotency_key"] is not None:
        taken = session.execute(
            select(_entries.c.id).where(
                _entries.c.township_id == t,
                _entries.c.idempotency_key == entry["idempotency_key"],
            )
        ).first()
        if taken is not None:
            return None
    entry_id: int = session.execute(
        insert(_entries).values(**entry).returning(_entries.c.id)
    ).scalar_one()
    session.execute(
        insert(_postings),
        [
            {
                "township_id": t,
                "entry_id": entry_id,
                "account_id": account_id,
                "asset": asset,
                "amount": amount,
                "balance_after": after,
            }
            for account_id, asset, amount, after in postings
        ],
    )
    session.execute(
        update(_accounts)
        .where(_accounts.c.township_id == t, _accounts.c.id == bindparam("b_id"))
        .values(posted_balance=bindparam("b_posted"), held_balance=bindparam("b_held")),
        [
            {"b_id": account_id, "b_posted": posted, "b_held": held}
            for account_id, (posted, held) in new_state.items()
        ],
    )
    session.execute(
        update(_heads)
        .where(_heads.c.township_id == t)
        .values(last_seq=entry["chain_seq"], last_hash=entry["hash"], last_entry_id=entry_id)
    )
    return entry_id


def _insert_pg(
    session: Session,
    entry: dict[str, Any],
    postings: list[tuple[int, str, int, int]],
    new_state: dict[int, tuple[int, int]],
) -> int | None:
    """Entry, postings, balances and chain head in one round trip (data-modifying CTEs, one
    statement text per number of postings: see `_lock_for_entry_sql`). With an idempotency
    key the entry is inserted only if the key is still free: this statement starts after the
    locks were granted, so it sees any commit made meanwhile."""
    params: dict[str, Any] = dict(entry)
    if len(postings) <= INLINE_ROWS:  # as many postings as legs, at least as many as accounts
        for i, (account_id, asset, amount, after) in enumerate(postings):
            params.update(
                {f"pa{i}": account_id, f"ps{i}": asset, f"pm{i}": amount, f"pb{i}": after}
            )
        for i, (account_id, (posted, held)) in enumerate(new_state.items()):
            params.update({f"ua{i}": account_id, f"up{i}": posted, f"uh{i}": held})
        shape = (len(postings), len(new_state))
    else:
        params.update(
            pa=[p[0] for p in postings],
            ps=[p[1] for p in postings],
            pm=[p[2] for p in postings],
            pb=[p[3] for p in postings],
            ua=list(new_state),
            up=[posted for posted, _ in new_state.values()],
            uh=[held for _, held in new_state.values()],
        )
        shape = (_ARRAYS, _ARRAYS)
    sql = _write_sql(*shape, entry["idempotency_key"] is not None)
    row = _on_driver(session, sql, params).fetchone()
    return None if row is None else int(row[0])


@lru_cache(maxsize=64)
def _write_sql(postings: int, accounts: int, keyed: bool) -> str:
    """The write for so many postings and accounts, or (both `_ARRAYS`) for arrays of rows."""
    if postings == _ARRAYS:
        posting_rows = (
            "unnest(CAST(:pa AS bigint[]), CAST(:ps AS varchar[]), CAST(:pm AS bigint[]),"
            " CAST(:pb AS bigint[]))"
        )
        account_rows = "unnest(CAST(:ua AS bigint[]), CAST(:up AS bigint[]), CAST(:uh AS bigint[]))"
    else:
        posting_rows = "(VALUES {})".format(
            ", ".join(
                f"(CAST(:pa{i} AS bigint), CAST(:ps{i} AS varchar), CAST(:pm{i} AS bigint),"
                f" CAST(:pb{i} AS bigint))"
                for i in range(postings)
            )
        )
        account_rows = "(VALUES {})".format(
            ", ".join(
                f"(CAST(:ua{i} AS bigint), CAST(:up{i} AS bigint), CAST(:uh{i} AS bigint))"
                for i in range(accounts)
            )
        )
    key_free = (
        "WHERE NOT EXISTS (SELECT 1 FROM ledger_entries"
        " WHERE township_id = CAST(:township_id AS integer)"
        " AND idempotency_key = CAST(:idempotency_key AS varchar))"
        if keyed
        else ""
    )
    return _pyformat(
        _WRITE_SQL.format(key_free=key_free, posting_rows=posting_rows, account_rows=account_rows)
    )


_WRITE_SQL = """
WITH e AS (
  INSERT INTO ledger_entries (township_id, chain_seq, kind, actor, reason, source_type,
    source_id, idempotency_key, request_hash, reverses_entry_id, hold_id, created_at,
    business_date, prev_hash, hash)
  SELECT CAST(:township_id AS integer), CAST(:chain_seq AS bigint), CAST(:kind AS varchar),
    CAST(:actor AS varchar), CAST(:reason AS varchar), CAST(:source_type AS varchar),
    CAST(:source_id AS varchar), CAST(:idempotency_key AS varchar),
    CAST(:request_hash AS varchar), CAST(:reverses_entry_id AS bigint),
    CAST(:hold_id AS bigint), CAST(:created_at AS timestamptz), CAST(:business_date AS date),
    CAST(:prev_hash AS varchar), CAST(:hash AS varchar) {key_free}
  RETURNING id
), p AS (
  INSERT INTO ledger_postings (township_id, entry_id, account_id, asset, amount, balance_after)
  SELECT CAST(:township_id AS integer), e.id, v.a, v.s, v.m, v.b
  FROM e, {posting_rows} AS v(a, s, m, b)
), acc AS (
  UPDATE ledger_accounts SET posted_balance = v.posted, held_balance = v.held
  FROM e, {account_rows} AS v(id, posted, held)
  WHERE ledger_accounts.township_id = CAST(:township_id AS integer) AND ledger_accounts.id = v.id
), h AS (
  UPDATE ledger_chain_heads SET last_seq = CAST(:chain_seq AS bigint),
    last_hash = CAST(:hash AS varchar), last_entry_id = e.id
  FROM e WHERE ledger_chain_heads.township_id = CAST(:township_id AS integer)
)
SELECT id FROM e
"""


def expire_cached_accounts(session: Session, township_id: int, account_ids: Iterable[int]) -> None:
    """Core updates bypass the identity map: make loaded Account objects re-read balances."""
    for account_id in account_ids:
        obj = session.identity_map.get(identity_key(Account, (township_id, account_id)))
        if obj is not None:
            session.expire(obj, ["posted_balance", "held_balance"])


def reverse_entry(
    session: Session,
    *,
    township_id: int,
    entry_id: int,
    actor: str,
    reason: str,
    idempotency_key: str | None = None,
    business_date: date | None = None,
) -> PostedEntry:
    """Post the exact opposite of an entry, linked to it. An entry is reversed at most once
    (also a unique key in the database); a reversal is not itself reversed: post anew."""
    original = session.get(Entry, (township_id, entry_id))
    if original is None:
        raise NotFound(details={"entry_id": entry_id})
    if original.reverses_entry_id is not None:
        raise Conflict("invalid_state", details={"reason": "reversal_cannot_be_reversed"})
    rows = session.execute(
        select(_postings.c.account_id, _postings.c.amount).where(
            _postings.c.township_id == township_id, _postings.c.entry_id == entry_id
        )
    ).all()
    legs = [Leg(r.account_id, -r.amount) for r in rows]
    spec = EntrySpec(
        township_id=township_id,
        kind="reversal",
        legs=legs,
        actor=actor,
        reason=reason,
        source=Source(original.source_type, original.source_id)
        if original.source_type is not None and original.source_id is not None
        else None,
        idempotency_key=idempotency_key,
        business_date=business_date,
        reverses_entry_id=entry_id,
    )
    return post_entries(session, [spec])[0]
