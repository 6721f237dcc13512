"""`verify`: prove the ledger agrees with itself, or name the first place it does not.

Set-based SQL does the arithmetic (balances from postings, zero-sum per entry and asset,
balance after each posting, open holds), so a million postings cost one scan each; the hash
chain is streamed through a server-side cursor and re-hashed in Python, one township after
another in chain order. Each check stops at its first discrepancy; the report lists them
in a fixed order and `first` is the one to look at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from mall.ledger import hashing
from mall.ledger.models import GENESIS_HASH, Entry, Posting


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
    discrepancies: list[Discrepancy] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.discrepancies

    @property
    def first(self) -> Discrepancy | None:
        return self.discrepancies[0] if self.discrepancies else None


def _scope(alias: str, township_id: int | None) -> str:
    return f" AND {alias}.township_id = :township" if township_id is not None else ""


# Each query returns at most one row: (township_id, entry_id, account_id, detail values...).
_SET_CHECKS: list[tuple[str, str, str]] = [
    (
        "zero_sum",
        """SELECT p.township_id, p.entry_id, NULL AS account_id, p.asset, sum(p.amount) AS total
           FROM ledger_postings p WHERE 1=1 {p}
           GROUP BY p.township_id, p.entry_id, p.asset HAVING sum(p.amount) <> 0
           ORDER BY p.township_id, p.entry_id LIMIT 1""",
        "postings in {3} sum to {4}, not 0",
    ),
    (
        "too_few_postings",
        """SELECT e.township_id, e.id, NULL AS account_id, count(p.id) AS n
           FROM ledger_entries e LEFT JOIN ledger_postings p
             ON p.township_id = e.township_id AND p.entry_id = e.id
           WHERE 1=1 {e}
           GROUP BY e.township_id, e.id HAVING count(p.id) < 2
           ORDER BY e.township_id, e.id LIMIT 1""",
        "{3} posting(s); an entry has at least two",
    ),
    (
        "asset_mismatch",
        """SELECT township_id, entry_id, account_id, asset, account_asset FROM (
             SELECT p.township_id, p.entry_id, p.account_id, p.id, p.asset,
                    a.asset AS account_asset
             FROM ledger_postings p JOIN ledger_accounts a
               ON a.township_id = p.township_id AND a.id = p.account_id
             WHERE p.asset <> a.asset {p} {barrier}) x
           ORDER BY township_id, id LIMIT 1""",
        "posting in {3} on an account in {4}",
    ),
    (
        "balance_after",
        """SELECT township_id, entry_id, account_id, balance_after, running FROM (
             SELECT p.township_id, p.entry_id, p.account_id, p.id, p.balance_after,
                    sum(p.amount) OVER (PARTITION BY p.township_id, p.account_id
                                        ORDER BY p.id ROWS UNBOUNDED PRECEDING) AS running
             FROM ledger_postings p WHERE 1=1 {p}) x
           WHERE balance_after <> running ORDER BY township_id, id LIMIT 1""",
        "balance_after is {3}, the postings say {4}",
    ),
    (
        "posted_balance",
        """SELECT a.township_id, NULL AS entry_id, a.id, a.posted_balance,
                  coalesce(s.total, 0) AS total
           FROM ledger_accounts a LEFT JOIN (
             SELECT p.township_id, p.account_id, sum(p.amount) AS total
             FROM ledger_postings p WHERE 1=1 {p} GROUP BY p.township_id, p.account_id) s
             ON s.township_id = a.township_id AND s.account_id = a.id
           WHERE a.posted_balance <> coalesce(s.total, 0) {a}
           ORDER BY a.township_id, a.id LIMIT 1""",
        "cached balance {3}, the postings sum to {4}",
    ),
    (
        "held_balance",
        """SELECT a.township_id, NULL AS entry_id, a.id, a.held_balance,
                  coalesce(h.total, 0) AS total
           FROM ledger_accounts a LEFT JOIN (
             SELECT township_id, account_id, sum(amount) AS total FROM ledger_holds
             WHERE status = 'open' GROUP BY township_id, account_id) h
             ON h.township_id = a.township_id AND h.account_id = a.id
           WHERE a.held_balance <> coalesce(h.total, 0) {a}
           ORDER BY a.township_id, a.id LIMIT 1""",
        "cached held {3}, the open holds sum to {4}",
    ),
    (
        "negative_wallet",
        """SELECT a.township_id, NULL AS entry_id, a.id, a.posted_balance, a.held_balance
           FROM ledger_accounts a
           WHERE a.no_negative AND (a.posted_balance < 0 OR a.posted_balance < a.held_balance) {a}
           ORDER BY a.township_id, a.id LIMIT 1""",
        "posted {3}, held {4}: below zero",
    ),
]


def verify_ledger(conn: Connection, township_id: int | None = None) -> VerifyReport:
    """Check every invariant the ledger promises; `report.first` names the first failure."""
    params: dict[str, Any] = {"township": township_id} if township_id is not None else {}
    report = VerifyReport()
    chain_problem = _verify_chain(conn, township_id, params, report)
    if chain_problem is not None:
        report.discrepancies.append(chain_problem)
    for check, sql, detail in _SET_CHECKS:
        scoped = sql.format(
            p=_scope("p", township_id),
            e=_scope("e", township_id),
            a=_scope("a", township_id),
            # PostgreSQL would drive a nested loop from LIMIT 1; OFFSET 0 keeps the hash join.
            barrier="OFFSET 0" if conn.dialect.name == "postgresql" else "",
        )
        row = conn.execute(text(scoped), params).first()
        if row is not None:
            report.discrepancies.append(
                Discrepancy(
                    check=check,
                    township_id=row[0],
                    entry_id=row[1],
                    account_id=row[2],
                    detail=detail.format(*row),
                )
            )
    counts = conn.execute(
        text(
            # Only fixed fragments are interpolated; the township is a bound parameter.
            "SELECT (SELECT count(*) FROM ledger_postings p WHERE 1=1 {p}),"  # noqa: S608
            " (SELECT count(*) FROM ledger_accounts a WHERE 1=1 {a})".format(
                p=_scope("p", township_id), a=_scope("a", township_id)
            )
        ),
        params,
    ).one()
    report.postings, report.accounts = counts[0], counts[1]
    return report


_CHAIN_PG = """
SELECT e.township_id, e.id, e.chain_seq, e.kind, e.actor, e.reason, e.source_type, e.source_id,
       e.idempotency_key, e.request_hash, e.reverses_entry_id, e.hold_id, e.created_at,
       e.business_date, e.prev_hash, e.hash, coalesce(p.part, '')
FROM ledger_entries e
LEFT JOIN (
  SELECT township_id, entry_id,
         string_agg(account_id || ':' || asset || ':' || amount || ':' || balance_after || ';',
                    '' ORDER BY account_id, asset COLLATE "C", amount, balance_after) AS part
  FROM ledger_postings WHERE 1=1 {p} GROUP BY township_id, entry_id
) p ON p.township_id = e.township_id AND p.entry_id = e.id
WHERE 1=1 {e}
ORDER BY e.township_id, e.chain_seq
"""


def _verify_chain_pg(
    conn: Connection,
    township_id: int | None,
    heads: dict[int, tuple[int, str]],
    report: VerifyReport,
) -> Discrepancy | None:
    """One row per entry: PostgreSQL concatenates each entry's postings exactly as
    `hashing.postings_part` does, and a server-side cursor streams them to hashlib."""
    dbapi: Any = conn.connection.driver_connection
    sql = _CHAIN_PG.format(
        p="AND township_id = %(township)s" if township_id is not None else "",
        e="AND e.township_id = %(township)s" if township_id is not None else "",
    )
    town: int | None = None
    seq, prev = 0, GENESIS_HASH
    # A cursor is planned for its first rows by default; we read every row.
    dbapi.execute("SET LOCAL cursor_tuple_fraction = 1.0")
    with dbapi.cursor(name="ledger_verify_chain") as cur:
        cur.itersize = 20_000
        cur.execute(sql, {"township": township_id})
        for row in cur:
            t, entry_id, chain_seq = row[0], row[1], row[2]
            if t != town:
                if town is not None:
                    problem = _check_head(town, heads, seq, prev)
                    if problem is not None:
                        return problem
                town, seq, prev = t, 0, GENESIS_HASH
            report.entries += 1
            seq += 1
            if chain_seq != seq:
                return Discrepancy(
                    "chain", t, f"sequence {chain_seq} where {seq} was due"
                    " (an entry was deleted or inserted)", entry_id=entry_id
                )  # fmt: skip
            if row[14] != prev:
                return Discrepancy(
                    "chain", t, "prev_hash does not match the previous entry", entry_id=entry_id
                )
            header = hashing.entry_header(
                township_id=t,
                chain_seq=chain_seq,
                kind=row[3],
                actor=row[4],
                reason=row[5],
                source_type=row[6],
                source_id=row[7],
                idempotency_key=row[8],
                request_hash=row[9],
                reverses_entry_id=row[10],
                hold_id=row[11],
                created_at=row[12],
                business_date=row[13],
            )
            if hashing.chain_hash(prev, header, row[16].encode()) != row[15]:
                return Discrepancy(
                    "chain", t, "hash does not match the entry's content", entry_id=entry_id
                )
            prev = row[15]
    if town is not None:
        problem = _check_head(town, heads, seq, prev)
        if problem is not None:
            return problem
    for t, (last_seq, _) in sorted(heads.items()):
        if last_seq != 0:
            return Discrepancy("chain", t, f"chain head says entry {last_seq}, no entries remain")
    return None


def _check_head(
    town: int, heads: dict[int, tuple[int, str]], seq: int, last_hash: str
) -> Discrepancy | None:
    head = heads.pop(town, (0, GENESIS_HASH))
    if head != (seq, last_hash):
        return Discrepancy(
            "chain", town, f"chain head says entry {head[0]}, the chain ends at {seq}"
        )
    return None


def _verify_chain(
    conn: Connection, township_id: int | None, params: dict[str, Any], report: VerifyReport
) -> Discrepancy | None:
    heads = {
        r[0]: (r[1], r[2])
        for r in conn.execute(
            text(
                "SELECT h.township_id, h.last_seq, h.last_hash FROM ledger_chain_heads h"  # noqa: S608
                " WHERE 1=1" + _scope("h", township_id)
            ),
            params,
        )
    }
    if conn.dialect.name == "postgresql":
        return _verify_chain_pg(conn, township_id, heads, report)
    e, p = Entry.__table__.c, Posting.__table__.c
    stmt = (
        select(
            e.township_id,
            e.id,
            e.chain_seq,
            e.kind,
            e.actor,
            e.reason,
            e.source_type,
            e.source_id,
            e.idempotency_key,
            e.request_hash,
            e.reverses_entry_id,
            e.hold_id,
            e.created_at,
            e.business_date,
            e.prev_hash,
            e.hash,
            p.account_id,
            p.asset,
            p.amount,
            p.balance_after,
        )
        .select_from(
            Entry.__table__.outerjoin(
                Posting.__table__, (p.township_id == e.township_id) & (p.entry_id == e.id)
            )
        )
        .order_by(e.township_id, e.chain_seq, p.id)
    )
    if township_id is not None:
        stmt = stmt.where(e.township_id == township_id)
    # Typed columns (SQLite hands back text for dates otherwise); streamed in chunks.
    result = conn.execute(stmt.execution_options(stream_results=True, yield_per=5000))
    town: int | None = None
    expected_seq, prev = 0, GENESIS_HASH
    current: Any = None
    postings: list[tuple[int, str, int, int]] = []

    def close_entry() -> Discrepancy | None:
        nonlocal expected_seq, prev
        e: Any = current
        report.entries += 1
        expected_seq += 1
        if e.chain_seq != expected_seq:
            return Discrepancy(
                "chain",
                e.township_id,
                f"sequence {e.chain_seq} where {expected_seq} was due"
                " (an entry was deleted or inserted)",
                entry_id=e.id,
            )
        if e.prev_hash != prev:
            return Discrepancy(
                "chain", e.township_id, "prev_hash does not match the previous entry", entry_id=e.id
            )
        header = hashing.entry_header(
            township_id=e.township_id,
            chain_seq=e.chain_seq,
            kind=e.kind,
            actor=e.actor,
            reason=e.reason,
            source_type=e.source_type,
            source_id=e.source_id,
            idempotency_key=e.idempotency_key,
            request_hash=e.request_hash,
            reverses_entry_id=e.reverses_entry_id,
            hold_id=e.hold_id,
            created_at=e.created_at,
            business_date=e.business_date,
        )
        recomputed = hashing.chain_hash(prev, header, hashing.postings_part(postings))
        if recomputed != e.hash:
            return Discrepancy(
                "chain", e.township_id, "hash does not match the entry's content", entry_id=e.id
            )
        prev = e.hash
        return None

    def close_township() -> Discrepancy | None:
        assert town is not None
        last_seq, last_hash = heads.pop(town, (0, GENESIS_HASH))
        if (last_seq, last_hash) != (expected_seq, prev):
            return Discrepancy(
                "chain", town, f"chain head says entry {last_seq}, the chain ends at {expected_seq}"
            )
        return None

    try:
        for row in result:
            if (
                current is not None
                and row.id == current.id
                and row.township_id == current.township_id
            ):
                postings.append((row.account_id, row.asset, row.amount, row.balance_after))
                continue
            if current is not None:
                problem = close_entry()
                if problem is not None:
                    return problem
            if row.township_id != town:
                if town is not None:
                    problem = close_township()
                    if problem is not None:
                        return problem
                town, expected_seq, prev = row.township_id, 0, GENESIS_HASH
            current = row
            postings = []
            if row.account_id is not None:
                postings.append((row.account_id, row.asset, row.amount, row.balance_after))
        if current is not None:
            problem = close_entry() or close_township()
            if problem is not None:
                return problem
    finally:
        result.close()
    for t, (last_seq, _) in sorted(heads.items()):
        if last_seq != 0:
            return Discrepancy("chain", t, f"chain head says entry {last_seq}, no entries remain")
    return None
