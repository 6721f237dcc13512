"""The ledger's tables: accounts, entries, postings, holds and the per-township chain head.

Every table carries `township_id` (the tenant) and leads its primary and unique keys with it,
so PostgreSQL can be distributed with Citus by that column (docs/scaling.md). On SQLite, which
only autoincrements a lone INTEGER PRIMARY KEY, the migration makes `id` the primary key and
adds a unique (township_id, id) instead; the mapping below is the PostgreSQL truth.

Amounts are signed integers (points, or fen for CNY). An account's balance is the sum of its
postings; `posted_balance` and `held_balance` cache that sum and the open holds, updated in the
same transaction as the postings, so reads are O(1) and `verify` can prove they agree.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from mall.db import Base
from mall.models_common import BigId

POINTS = "POINTS"
CNY = "CNY"
ASSETS = (POINTS, CNY)

# The chart of accounts. Household wallets belong to a credit subject and may never go
# negative; partner payables belong to a partner; the rest are one per township and asset.
HOUSEHOLD_POINTS = "household_points"
HOUSEHOLD_INTEGRITY = "household_integrity"
POINTS_FUND = "points_fund"
INTEGRITY_FUND = "integrity_fund"
PARTNER_PAYABLE = "partner_payable"
SETTLED_PAYOUTS = "settled_payouts"
EXPIRED_FORFEITED = "expired_forfeited"
OFFLINE_SHORTFALL = "offline_shortfall"
# Village rewards (mall.villages, migration 0800), CNY only. Owned by a village collective
# (subject_id set, never negative): the collective's reward account. With no owner: the
# township's account for rewards the county funds (may go negative: minus what it has paid).
VILLAGE_REWARD = "village_reward"

HOUSEHOLD_KINDS = (HOUSEHOLD_POINTS, HOUSEHOLD_INTEGRITY)
SYSTEM_KINDS = (POINTS_FUND, INTEGRITY_FUND, SETTLED_PAYOUTS, EXPIRED_FORFEITED, OFFLINE_SHORTFALL)
ACCOUNT_KINDS = (*HOUSEHOLD_KINDS, PARTNER_PAYABLE, *SYSTEM_KINDS, VILLAGE_REWARD)

HOLD_STATUSES = ("open", "captured", "voided", "expired")

GENESIS_HASH = "0" * 64


def _sql_list(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class Account(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        PrimaryKeyConstraint("township_id", "id"),
        CheckConstraint(f"asset IN ({_sql_list(ASSETS)})", name="asset"),
        CheckConstraint(f"kind IN ({_sql_list(ACCOUNT_KINDS)})", name="kind"),
        CheckConstraint(
            f"(kind IN ({_sql_list(HOUSEHOLD_KINDS)})"
            " AND subject_id IS NOT NULL AND partner_id IS NULL AND no_negative)"
            f" OR (kind = '{PARTNER_PAYABLE}' AND partner_id IS NOT NULL AND subject_id IS NULL)"
            f" OR (kind IN ({_sql_list(SYSTEM_KINDS)})"
            " AND subject_id IS NULL AND partner_id IS NULL)"
            f" OR (kind = '{VILLAGE_REWARD}' AND partner_id IS NULL"
            " AND (subject_id IS NULL OR no_negative))",
            name="owner_by_kind",
        ),
        CheckConstraint("held_balance >= 0", name="held_not_negative"),
        # TigerBeetle's "debits must not exceed credits" flag, enforced by the database too.
        CheckConstraint(
            "NOT no_negative OR (posted_balance >= 0 AND posted_balance - held_balance >= 0)",
            name="no_negative",
        ),
        Index(
            "uq_ledger_accounts_subject",
            "township_id",
            "kind",
            "asset",
            "subject_id",
            unique=True,
            postgresql_where=text("subject_id IS NOT NULL"),
            sqlite_where=text("subject_id IS NOT NULL"),
        ),
        # A household's wallets by household (scans, payments, the farmer's balance): the
        # unique index above leads with kind and asset, so it cannot find them by subject.
        Index(
            "ix_ledger_accounts_subject_id",
            "township_id",
            "subject_id",
            postgresql_where=text("subject_id IS NOT NULL"),
            sqlite_where=text("subject_id IS NOT NULL"),
        ),
        Index(
            "uq_ledger_accounts_partner",
            "township_id",
            "kind",
            "asset",
            "partner_id",
            unique=True,
            postgresql_where=text("partner_id IS NOT NULL"),
            sqlite_where=text("partner_id IS NOT NULL"),
        ),
        Index(
            "uq_ledger_accounts_system",
            "township_id",
            "kind",
            "asset",
            unique=True,
            postgresql_where=text("subject_id IS NULL AND partner_id IS NULL"),
            sqlite_where=text("subject_id IS NULL AND partner_id IS NULL"),
        ),
    )

    township_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    id: Mapped[int] = mapped_column(BigId, autoincrement=True)
    asset: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("credit_subjects.id", ondelete="RESTRICT")
    )
    partner_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("partners.id", ondelete="RESTRICT")
    )
    no_negative: Mapped[bool] = mapped_column(Boolean, default=False)
    posted_balance: Mapped[int] = mapped_column(BigInteger, default=0)
    held_balance: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    @property
    def available_balance(self) -> int:
        return self.posted_balance - self.held_balance


class Hold(Base):
    """A two-phase reservation on `account_id` in favour of `counter_account_id`.

    Opens once and resolves exactly once (captured in full or for less, voided, or expired);
    a trigger refuses every other change. Holds move no money, so they are not entries: the
    capture posts an entry that names the hold, and a unique key allows only one such entry.
    """

    __tablename__ = "ledger_holds"
    __table_args__ = (
        PrimaryKeyConstraint("township_id", "id"),
        ForeignKeyConstraint(
            ["township_id", "account_id"],
            ["ledger_accounts.township_id", "ledger_accounts.id"],
            ondelete="RESTRICT",
            name="fk_ledger_holds_account",
        ),
        ForeignKeyConstraint(
            ["township_id", "counter_account_id"],
            ["ledger_accounts.township_id", "ledger_accounts.id"],
            ondelete="RESTRICT",
            name="fk_ledger_holds_counter_account",
        ),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(f"asset IN ({_sql_list(ASSETS)})", name="asset"),
        CheckConstraint(f"status IN ({_sql_list(HOLD_STATUSES)})", name="status"),
        CheckConstraint("account_id <> counter_account_id", name="distinct_accounts"),
        CheckConstraint(
            "(status = 'captured' AND captured_amount > 0 AND captured_amount <= amount)"
            " OR (status <> 'captured' AND captured_amount IS NULL)",
            name="captured_amount",
        ),
        CheckConstraint(
            "(status = 'open') = (resolved_at IS NULL)",
            name="resolved_at",
        ),
        UniqueConstraint("township_id", "idempotency_key"),
        Index(
            "ix_ledger_holds_open_expiry",
            "expires_at",
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
        Index("ix_ledger_holds_township_id_account_id", "township_id", "account_id"),
    )

    # No foreign key to regions: the composite keys to the accounts imply the township, and a
    # key check on the township's region row from every insert would make it a hot lock.
    township_id: Mapped[int] = mapped_column(Integer)
    id: Mapped[int] = mapped_column(BigId, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigId)
    counter_account_id: Mapped[int] = mapped_column(BigId)
    asset: Mapped[str] = mapped_column(String(8))
    amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="open")
    captured_amount: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(500), default="")
    source_type: Mapped[str | None] = mapped_column(String(32))
    source_id: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(String(100))


class Entry(Base):
    """One business event: two or more postings summing to zero per asset. Never changes."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        PrimaryKeyConstraint("township_id", "id"),
        ForeignKeyConstraint(
            ["township_id", "reverses_entry_id"],
            ["ledger_entries.township_id", "ledger_entries.id"],
            ondelete="RESTRICT",
        ),
        ForeignKeyConstraint(
            ["township_id", "hold_id"],
            ["ledger_holds.township_id", "ledger_holds.id"],
            ondelete="RESTRICT",
        ),
        UniqueConstraint("township_id", "chain_seq"),
        UniqueConstraint("township_id", "idempotency_key"),
        # An entry is reversed at most once; a hold is captured by at most one entry.
        UniqueConstraint("township_id", "reverses_entry_id"),
        UniqueConstraint("township_id", "hold_id"),
        CheckConstraint("chain_seq > 0", name="chain_seq_positive"),
        Index("ix_ledger_entries_source", "township_id", "source_type", "source_id"),
        Index("ix_ledger_entries_business_date", "township_id", "business_date"),
    )

    # No foreign key to regions: the composite keys to the accounts imply the township, and a
    # key check on the township's region row from every insert would make it a hot lock.
    township_id: Mapped[int] = mapped_column(Integer)
    id: Mapped[int] = mapped_column(BigId, autoincrement=True)
    chain_seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(500), default="")
    source_type: Mapped[str | None] = mapped_column(String(32))
    source_id: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    request_hash: Mapped[str] = mapped_column(String(64))
    reverses_entry_id: Mapped[int | None] = mapped_column(BigId)
    hold_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    business_date: Mapped[date] = mapped_column(Date)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Posting(Base):
    """One signed amount on one account; `balance_after` is that account's balance after it."""

    __tablename__ = "ledger_postings"
    __table_args__ = (
        PrimaryKeyConstraint("township_id", "id"),
        ForeignKeyConstraint(
            ["township_id", "entry_id"],
            ["ledger_entries.township_id", "ledger_entries.id"],
            ondelete="RESTRICT",
        ),
        ForeignKeyConstraint(
            ["township_id", "account_id"],
            ["ledger_accounts.township_id", "ledger_accounts.id"],
            ondelete="RESTRICT",
        ),
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        CheckConstraint(f"asset IN ({_sql_list(ASSETS)})", name="asset"),
        Index("ix_ledger_postings_entry", "township_id", "entry_id"),
        Index("ix_ledger_postings_account_history", "township_id", "account_id", "id"),
    )

    # No foreign key to regions: the composite keys to the accounts imply the township, and a
    # key check on the township's region row from every insert would make it a hot lock.
    township_id: Mapped[int] = mapped_column(Integer)
    id: Mapped[int] = mapped_column(BigId, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(BigId)
    account_id: Mapped[int] = mapped_column(BigId)
    asset: Mapped[str] = mapped_column(String(8))
    amount: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)


class ChainHead(Base):
    """The head of a township's hash chain; locked by every entry write in that township."""

    __tablename__ = "ledger_chain_heads"

    township_id: Mapped[int] = mapped_column(
        ForeignKey("regions.id", ondelete="RESTRICT"), primary_key=True, autoincrement=False
    )
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64), default=GENESIS_HASH)
    last_entry_id: Mapped[int | None] = mapped_column(BigId)
