"""`verify`: prove the ledger agrees with itself, or name the first place it does not.

One streaming pass, township after township, over three cursors read in index order (no sort):
accounts by id, entries by chain position, postings by entry. Entries are written under the
chain lock, so entry ids grow with the chain and the postings stream merges with the entries
stream. On the way it re-hashes the chain, checks every entry (two postings or more, zero sum
per asset, posting asset = account asset), keeps a running balance per account to check each
`balance_after`, and at the end of the township compares the cached balances. Open holds and
the no-negative rule are two small SQL aggregates. On PostgreSQL the cursors are server-side
(psycopg named cursors), so memory stays flat at any size.

Each check reports its first discrepancy; `report.first` is the first in check order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from mall.ledger import hashing
from mall.ledger.models import GENESIS_HASH, Account, Entry, Posting

CHECK_ORDER = (
    "chain",
    "too_few_postings",
    "zero_sum",
    "asset_mismatch",
    "balance_after",
    "posted_balance",
    "held_balance",
    "negative_wallet",
)


@dataclass(frozen=True)
class Discrepancy:
    check: str
    township_id: int
    detail: str
    entry_id: int | None = None
    account_id: int | None = None

    def __str__(self) -> str:
        where = f"township {self.township_id}"
        if self.entry_id is not None:
            where += f", entry {self.entry_id}"
        if self.account_id is not None:
            where += f", account {self.account_id}"
        return f"{self.check}: {where}: {self.detail}"


@dataclass
class VerifyReport:
    entries: int = 0
    postings: int = 0
    accounts: int = 0
    found: dict[str, Discrepancy] = field(default_factory=dict)

    def add(self, problem: Discrepancy) -> None:
        self.found.setdefault(problem.check, problem)

    @property
    def discrepancies(self) -> list[Discrepancy]:
        return [self.found[c] for c in CHECK_ORDER if c in self.found]

    @property
    def ok(self) -> bool:
        return not self.found

    @property
    def first(self) -> Discrepancy | None:
        found = self.discrepancies
        return found[0] if found else None


def verify_ledger(conn: Connection, township_id: int | None = None) -> VerifyReport:
    """Check every invariant the ledger promises, for one township or all of them."""
    report = VerifyReport()
    _Pass(conn, township_id, report).run()
    params: dict[str, Any] = {"t": township_id}
    scope = " AND a.township_id = :t" if township_id is not None else ""
    # Only the fixed scope fragment is concatenated into these statements; values are bound.
    row = conn.execute(
        text(
            "SELECT a.township_id, a.id, a.held_balance, coalesce(h.total, 0)"  # noqa: S608
            " FROM ledger_accounts a LEFT JOIN (SELECT township_id, account_id,"
            " sum(amount) AS total FROM ledger_holds"
            " WHERE status = 'open' GROUP BY township_id, account_id) h"
            " ON h.township_id = a.township_id AND h.account_id = a.id"
            " WHERE a.held_balance <> coalesce(h.total, 0)" + scope + " ORDER BY 1, 2 LIMIT 1"
        ),
        params,
    ).first()
    if row is not None:
        report.add(
            Discrepancy(
                "held_balance",
                row[0],
                f"cached held {row[2]}, the open holds sum to {row[3]}",
                account_id=row[1],
            )
        )
    row = conn.execute(
        text(
            "SELECT a.township_id, a.id, a.posted_balance, a.held_balance"  # noqa: S608
            " FROM ledger_accounts a"
            " WHERE a.no_negative AND (a.posted_balance < 0 OR a.posted_balance < a.held_balance)"
            + scope
            + " ORDER BY 1, 2 LIMIT 1"
        ),
        params,
    ).first()
    if row is not None:
        report.add(
            Discrepancy(
                "negative_wallet",
                row[0],
                f"posted {row[2]}, held {row[3]}: below zero",
                account_id=row[1],
            )
        )
    return report


class _Pass:
    """The streaming pass. Rows are plain tuples in the column order of the queries below."""

    def __init__(self, conn: Connection, township_id: int | None, report: VerifyReport) -> None:
        self.conn = conn
        self.township_id = township_id
        self.report = report
        self.heads: dict[int, tuple[int, str]] = {}
        # Per township: account id -> [asset, cached posted, running sum]
        self.accounts: dict[int, list[Any]] = {}

    def run(self) -> None:
        scope = " AND township_id = :t" if self.township_id is not None else ""
        self.heads = {
            r[0]: (r[1], r[2])
            for r in self.conn.execute(
                text(
                    "SELECT township_id, last_seq, last_hash"  # noqa: S608 (fixed fragments)
                    " FROM ledger_chain_heads WHERE 1=1" + scope
                ),
                {"t": self.township_id},
            )
        }
        with self._streams() as (accounts, entries, postings):
            self._merge(accounts, entries, postings)

    def _streams(self) -> Any:
        if self.conn.dialect.name == "postgresql":
            return _PgStreams(self.conn, self.township_id)
        return _PortableStreams(self.conn, self.township_id)

    def _merge(  # noqa: C901 (to split by step, issue 20)
        self,
        accounts: Iterator[tuple[Any, ...]],
        entries: Iterator[tuple[Any, ...]],
        postings: Iterator[tuple[Any, ...]],
    ) -> None:
        report = self.report
        add = report.add
        pending_account = next(accounts, None)
        pending = next(postings, None)
        town: int | None = None
        seq, prev = 0, GENESIS_HASH
        book = self.accounts
        for e in entries:
            t, entry_id, chain_seq = e[0], e[1], e[2]
            if t != town:
                if town is not None:
                    self._close_township(town, seq, prev)
                # Townships with accounts but no entries come first in the accounts stream.
                while pending_account is not None and pending_account[0] < t:
                    self._load_accounts(pending_account[0], pending_account, accounts)
                    pending_account = self._after_load
                    self._close_township(self._loaded, 0, GENESIS_HASH)
                book.clear()
                if pending_account is not None and pending_account[0] == t:
                    self._load_accounts(t, pending_account, accounts)
                    pending_account = self._after_load
                town, seq, prev = t, 0, GENESIS_HASH
            mine: list[tuple[int, str, int, int]] = []
            while pending is not None and pending[0] == t and pending[1] == entry_id:
                mine.append((pending[2], pending[3], pending[4], pending[5]))
                pending = next(postings, None)
            if pending is not None and (pending[0], pending[1]) < (t, entry_id):
                add(
                    Discrepancy(
                        "chain",
                        pending[0],
                        "postings out of chain order (an entry was moved, deleted or inserted)",
                        entry_id=pending[1],
                    )
                )
                while pending is not None and (pending[0], pending[1]) < (t, entry_id):
                    pending = next(postings, None)
            report.entries += 1
            report.postings += len(mine)
            seq += 1
            if chain_seq != seq:
                add(
                    Discrepancy(
                        "chain",
                        t,
                        f"sequence {chain_seq} where {seq} was due"
                        " (an entry was deleted or inserted)",
                        entry_id=entry_id,
                    )
                )
                seq = chain_seq
            if e[14] != prev:
                add(
                    Discrepancy("chain", t, "prev_hash does not match the previous entry", entry_id)
                )
            header = hashing.header_from_parts(e[0], chain_seq, *e[3:14])
            if hashing.chain_hash(e[14], header, hashing.postings_part(mine)) != e[15]:
                add(Discrepancy("chain", t, "hash does not match the entry's content", entry_id))
            prev = e[15]
            self._check_postings(t, entry_id, mine)
        if town is not None:
            self._close_township(town, seq, prev)
        while pending_account is not None:
            self._load_accounts(pending_account[0], pending_account, accounts)
            pending_account = self._after_load
            self._close_township(self._loaded, 0, GENESIS_HASH)
        if pending is not None:
            add(
                Discrepancy(
                    "chain",
                    pending[0],
                    "postings of an entry that is not in the chain",
                    entry_id=pending[1],
                )
            )
        for t, (last_seq, _) in sorted(self.heads.items()):
            if last_seq != 0:
                add(Discrepancy("chain", t, f"chain head says entry {last_seq}, none remain"))

    _after_load: tuple[Any, ...] | None = None
    _loaded: int = 0

    def _load_accounts(
        self, t: int, first: tuple[Any, ...], accounts: Iterator[tuple[Any, ...]]
    ) -> None:
        self.accounts.clear()
        row: tuple[Any, ...] | None = first
        while row is not None and row[0] == t:
            self.accounts[row[1]] = [row[2], row[3], 0]
            self.report.accounts += 1
            row = next(accounts, None)
        self._after_load, self._loaded = row, t

    def _check_postings(self, t: int, entry_id: int, mine: list[tuple[int, str, int, int]]) -> None:
        add = self.report.add
        if len(mine) < 2:
            add(
                Discrepancy(
                    "too_few_postings",
                    t,
                    f"{len(mine)} posting(s); an entry has at least two",
                    entry_id,
                )
            )
        sums: dict[str, int] = {}
        for account_id, asset, amount, after in mine:
            sums[asset] = sums.get(asset, 0) + amount
            state = self.accounts.get(account_id)
            if state is None:
                add(
                    Discrepancy(
                        "asset_mismatch", t, "posting on an unknown account", entry_id, account_id
                    )
                )
                continue
            if state[0] != asset:
                add(
                    Discrepancy(
                        "asset_mismatch",
                        t,
                        f"posting in {asset} on an account in {state[0]}",
                        entry_id,
                        account_id,
                    )
                )
            state[2] += amount
            if after != state[2]:
                add(
                    Discrepancy(
                        "balance_after",
                        t,
                        f"balance_after is {after}, the postings say {state[2]}",
                        entry_id,
                        account_id,
                    )
                )
        for asset, total in sums.items():
            if total != 0:
                add(
                    Discrepancy(
                        "zero_sum", t, f"postings in {asset} sum to {total}, not 0", entry_id
                    )
                )

    def _close_township(self, t: int, seq: int, last_hash: str) -> None:
        head = self.heads.pop(t, (0, GENESIS_HASH))
        if head != (seq, last_hash):
            self.report.add(
                Discrepancy("chain", t, f"chain head says entry {head[0]}, the chain ends at {seq}")
            )
        for account_id in sorted(self.accounts):
            _asset, cached, running = self.accounts[account_id]
            if cached != running:
                self.report.add(
                    Discrepancy(
                        "posted_balance",
                        t,
                        f"cached balance {cached}, the postings sum to {running}",
                        account_id=account_id,
                    )
                )
                break


_ACCOUNT_COLUMNS = "township_id, id, asset, posted_balance"
_ENTRY_COLUMNS = (
    "township_id, id, chain_seq, kind, actor, reason, source_type, source_id, idempotency_key,"
    " request_hash, reverses_entry_id, hold_id, created_at, business_date, prev_hash, hash"
)
# PostgreSQL converts the time and date exactly as hashing.entry_header does (numeric epoch).
_ENTRY_COLUMNS_PG = _ENTRY_COLUMNS.replace(
    "created_at, business_date",
    "CAST(extract(epoch FROM created_at) * 1000000 AS bigint),"
    " to_char(business_date, 'YYYY-MM-DD')",
)
_POSTING_COLUMNS = "township_id, entry_id, account_id, asset, amount, balance_after"


class _PgStreams:
    """Three psycopg server-side cursors in the caller's transaction (one snapshot)."""

    def __init__(self, conn: Connection, township_id: int | None) -> None:
        self.dbapi: Any = conn.connection.driver_connection
        self.scope = "WHERE township_id = %(t)s" if township_id is not None else ""
        self.params = {"t": township_id}
        self.cursors: list[Any] = []

    def _open(self, name: str, columns: str, table: str, order: str) -> Iterator[tuple[Any, ...]]:
        cur = self.dbapi.cursor(name=name)
        cur.itersize = 20_000
        # Fixed names from this module only; the township is bound.
        sql = f"SELECT {columns} FROM {table} {self.scope} ORDER BY township_id, {order}"  # noqa: S608
        cur.execute(sql, self.params)
        self.cursors.append(cur)
        return _batches(cur)

    def __enter__(self) -> tuple[Iterator[tuple[Any, ...]], ...]:
        # A cursor is planned for its first rows by default; we read every row.
        self.dbapi.execute("SET LOCAL cursor_tuple_fraction = 1.0")
        return (
            self._open("ledger_verify_accounts", _ACCOUNT_COLUMNS, "ledger_accounts", "id"),
            self._open("ledger_verify_entries", _ENTRY_COLUMNS_PG, "ledger_entries", "chain_seq"),
            self._open("ledger_verify_postings", _POSTING_COLUMNS, "ledger_postings", "entry_id"),
        )

    def __exit__(self, *exc: object) -> None:
        for cur in self.cursors:
            cur.close()


def _batches(cur: Any) -> Iterator[tuple[Any, ...]]:
    """Rows in batches: a server-side cursor's per-row `__next__` costs more than the check."""
    while rows := cur.fetchmany(20_000):
        yield from rows


class _PortableStreams:
    """SQLite and friends: typed SQLAlchemy selects (SQLite stores dates as text)."""

    def __init__(self, conn: Connection, township_id: int | None) -> None:
        self.conn = conn
        self.township_id = township_id
        self.results: list[Any] = []

    def _open(self, table: Any, columns: list[str], order: str) -> Iterator[tuple[Any, ...]]:
        c = table.__table__.c
        stmt = select(*[c[name] for name in columns]).order_by(c.township_id, c[order])
        if self.township_id is not None:
            stmt = stmt.where(c.township_id == self.township_id)
        result = self.conn.execute(stmt.execution_options(stream_results=True, yield_per=5000))
        self.results.append(result)
        return (tuple(r) for r in result)

    def __enter__(self) -> tuple[Iterator[tuple[Any, ...]], ...]:
        def names(columns: str) -> list[str]:
            return [c.strip() for c in columns.split(",")]

        entries = (
            (*r[:12], hashing.epoch_micros(r[12]), r[13].isoformat(), *r[14:])
            for r in self._open(Entry, names(_ENTRY_COLUMNS), "chain_seq")
        )
        return (
            self._open(Account, names(_ACCOUNT_COLUMNS), "id"),
            entries,
            self._open(Posting, names(_POSTING_COLUMNS), "entry_id"),
        )

    def __exit__(self, *exc: object) -> None:
        for result in self.results:
            result.close()
