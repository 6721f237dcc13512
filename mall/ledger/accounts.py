"""Get-or-create of ledger accounts: household wallets, partner payables, township accounts.

Creation is race-free without locks: `INSERT ... ON CONFLICT DO NOTHING` against the partial
unique indexes, then a read. Two requests opening the same wallet both get the one account.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Integer,
    Table,
    and_,
    bindparam,
    func,
    null,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import Session

from mall.clock import utcnow
from mall.db import insert_for
from mall.driver_sql import DriverStatement, EntityLoader
from mall.errors import ValidationFailed
from mall.ledger.models import (
    ASSETS,
    CNY,
    HOUSEHOLD_INTEGRITY,
    HOUSEHOLD_POINTS,
    INTEGRITY_FUND,
    OFFLINE_SHORTFALL,
    PARTNER_PAYABLE,
    POINTS,
    POINTS_FUND,
    SYSTEM_KINDS,
    VILLAGE_REWARD,
    Account,
    ChainHead,
)
from mall.ledger.posting import LockedAccount, LockedBooks
from mall.subjects.models import CreditSubject

_accounts: Table = Account.__table__  # type: ignore[assignment]
_heads: Table = ChainHead.__table__  # type: ignore[assignment]

# The asset of the system accounts that hold only one; the others exist once per asset.
_SYSTEM_ASSET = {POINTS_FUND: POINTS, INTEGRITY_FUND: CNY, OFFLINE_SHORTFALL: CNY}


@dataclass(frozen=True)
class Wallets:
    """A household's two wallets: credit points and integrity money (fen)."""

    points: Account
    integrity: Account


def _get_or_create(
    session: Session,
    values: dict[str, Any],
    conflict_columns: list[str],
    conflict_where: str,
    match: list[ColumnElement[bool]],
) -> Account:
    found = session.scalars(select(Account).where(*match)).one_or_none()
    if found is not None:
        return found
    ins = insert_for(session, _accounts)
    stmt = ins.values(
        posted_balance=0, held_balance=0, created_at=utcnow(), **values
    ).on_conflict_do_nothing(index_elements=conflict_columns, index_where=text(conflict_where))
    session.execute(stmt)
    return session.scalars(select(Account).where(*match)).one()


def _check_asset(asset: str) -> None:
    if asset not in ASSETS:
        raise ValidationFailed(details={"fields": {"asset": [f"one of {', '.join(ASSETS)}"]}})


def household_wallet(session: Session, subject: CreditSubject, kind: str) -> Account:
    if kind not in (HOUSEHOLD_POINTS, HOUSEHOLD_INTEGRITY):
        raise ValidationFailed(details={"fields": {"kind": ["a household wallet kind"]}})
    asset = POINTS if kind == HOUSEHOLD_POINTS else CNY
    return _get_or_create(
        session,
        {
            "township_id": subject.township_id,
            "kind": kind,
            "asset": asset,
            "subject_id": subject.id,
            "no_negative": True,
        },
        ["township_id", "kind", "asset", "subject_id"],
        "subject_id IS NOT NULL",
        [
            Account.township_id == subject.township_id,
            Account.kind == kind,
            Account.asset == asset,
            Account.subject_id == subject.id,
        ],
    )


# Every payment reads its accounts with it (on the driver: mall/driver_sql.py). With
# `partner_id` NULL (no partner) the second branch matches nothing: only the wallets.
_ACCOUNTS = EntityLoader(Account)


def _sale_accounts_where() -> Any:
    return and_(
        Account.township_id == bindparam("township_id"),
        or_(
            and_(
                Account.subject_id == bindparam("subject_id"),
                or_(Account.kind == HOUSEHOLD_POINTS, Account.kind == HOUSEHOLD_INTEGRITY),
            ),
            and_(Account.partner_id == bindparam("partner_id"), Account.kind == PARTNER_PAYABLE),
        ),
    )


def _sale_accounts_statement(*, lock: bool) -> DriverStatement:
    def build(_dialect: str) -> Any:
        stmt = select(*_ACCOUNTS.columns).where(_sale_accounts_where())
        # In id order, as every lock on accounts is taken (mall/ledger/posting.py).
        return stmt.order_by(Account.id).with_for_update() if lock else stmt

    return DriverStatement(build)


def _sale_books_statement(_dialect: str) -> Any:
    """The sale's accounts locked in id order and then the township's chain head, in one
    round trip (UNION ALL runs its branches in order): the rows `post_entries` would lock
    next, so a sale that posts locks them once. Account rows first, the head row last.

    The head is locked only when every account the sale may post to exists: both wallets,
    and the partner's payable in each asset the sale may spend (`need_cny`, `need_points`).
    A missing one is opened after this read, and opening it waits for any other transaction
    that is opening the same one; that transaction (an offline batch opening the partner's
    first payable, a bulk grant opening wallets) goes on to lock the head next. Holding the
    head here would deadlock with it, so without its accounts the sale locks the head later,
    through `post_entries`, after the accounts as everywhere else."""
    accounts = (
        select(*_ACCOUNTS.columns)
        .where(_sale_accounts_where())
        .order_by(Account.id)
        .with_for_update()
        .subquery()
    )
    # The sale's accounts, less the payables of assets it does not spend.
    needed = and_(
        _sale_accounts_where(),
        or_(
            Account.kind != PARTNER_PAYABLE,
            and_(Account.asset == CNY, bindparam("need_cny", type_=Boolean)),
            and_(Account.asset == POINTS, bindparam("need_points", type_=Boolean)),
        ),
    )
    present = select(func.count()).select_from(Account).where(needed).scalar_subquery()
    head = (
        select(_heads.c.last_seq, _heads.c.last_hash)
        .where(
            _heads.c.township_id == bindparam("township_id"),
            present == bindparam("needed", type_=Integer),
        )
        .with_for_update()
        .subquery()
    )
    no_head = [null().cast(_heads.c.last_seq.type), null().cast(_heads.c.last_hash.type)]
    no_account = [null().cast(column.type) for column in _ACCOUNTS.columns]
    return union_all(
        select(*accounts.c, *no_head),
        select(*no_account, head.c.last_seq, head.c.last_hash),
    )


_SALE_ACCOUNTS = _sale_accounts_statement(lock=False)
_SALE_ACCOUNTS_LOCKED = _sale_accounts_statement(lock=True)
_SALE_BOOKS = DriverStatement(_sale_books_statement)
_HEAD_AT = len(_ACCOUNTS.columns)


@dataclass(frozen=True)
class SaleAccounts:
    """The accounts of a sale: the household's wallets and the partner's payables in the
    household's township (those that exist; `payable()` opens a missing one), and, for a
    sale that posts, the same accounts and the chain head as locked for `post_entries`."""

    wallets: Wallets
    township_id: int
    partner_id: int
    payables: dict[str, Account]
    books: LockedBooks | None = None

    def payable(self, session: Session, asset: str) -> Account:
        found = self.payables.get(asset)
        return found or partner_payable(session, self.township_id, self.partner_id, asset)


def _read_sale_accounts(
    session: Session,
    subject: CreditSubject,
    partner_id: int | None,
    *,
    lock: bool = False,
    with_head: bool = False,
    spends: Collection[str] = (),
) -> tuple[Wallets, dict[str, Account], LockedBooks | None]:
    wallets: dict[str, Account] = {}
    payables: dict[str, Account] = {}
    params: dict[str, Any] = {
        "township_id": subject.township_id,
        "subject_id": subject.id,
        "partner_id": partner_id,
    }
    if with_head:  # the accounts that must exist for the head to be locked in this read
        need_cny, need_points = CNY in spends, POINTS in spends
        params.update(need_cny=need_cny, need_points=need_points, needed=2 + need_cny + need_points)
    stmt = _SALE_BOOKS if with_head else _SALE_ACCOUNTS_LOCKED if lock else _SALE_ACCOUNTS
    locked: dict[int, LockedAccount] = {}
    head: list[Any] | None = None
    for row in stmt.rows(session, params):
        if with_head and row[0] is None:  # the chain head's row
            head = [row[_HEAD_AT], row[_HEAD_AT + 1]]
            continue
        # Read under the lock: the row's balances replace any the session had loaded.
        account: Account = _ACCOUNTS.attach(session, row, populate_existing=lock)
        if with_head:  # what post_entries will post on
            locked[account.id] = LockedAccount(
                account.asset, account.no_negative, account.posted_balance, account.held_balance
            )
        if account.kind == PARTNER_PAYABLE:
            payables[account.asset] = account
        else:
            wallets[account.kind] = account
    books = None
    # No head row before the township's first entry (post_entries makes it), nor while an
    # account of the sale is still to be opened (see _sale_books_statement).
    if head is not None:
        books = LockedBooks(subject.township_id, locked, head)
    return (
        Wallets(
            points=wallets.get(HOUSEHOLD_POINTS)
            or household_wallet(session, subject, HOUSEHOLD_POINTS),
            integrity=wallets.get(HOUSEHOLD_INTEGRITY)
            or household_wallet(session, subject, HOUSEHOLD_INTEGRITY),
        ),
        payables,
        books,
    )


def household_wallets(session: Session, subject: CreditSubject) -> Wallets:
    """Both wallets, in one read when they exist (as they do for every funded household)."""
    return _read_sale_accounts(session, subject, None)[0]


def sale_accounts(
    session: Session,
    subject: CreditSubject,
    partner_id: int,
    *,
    posting: bool = False,
    spends: Collection[str] = (CNY, POINTS),
) -> SaleAccounts:
    """The household's wallets and the partner's payables for a sale, in one read that locks
    them (FOR UPDATE, in id order): the sale is priced on balances nobody else can move
    before it posts. A wallet opened here (a household never funded) holds nothing yet.
    `posting`: the sale posts entries in this transaction; on PostgreSQL the same read then
    locks the township's chain head too (`SaleAccounts.books`, for `post_entries`), when the
    wallets and the payables of the assets it `spends` all exist (see _sale_books_statement).
    `spends` may name more than the sale will spend, never less."""
    with_head = posting and session.get_bind().dialect.name == "postgresql"
    wallets, payables, books = _read_sale_accounts(
        session, subject, partner_id, lock=True, with_head=with_head, spends=spends
    )
    return SaleAccounts(wallets, subject.township_id, partner_id, payables, books)


def partner_payable(session: Session, township_id: int, partner_id: int, asset: str) -> Account:
    """What the township owes a partner, in points redeemed or in integrity money (fen).

    A partner serving households of several townships has a payable in each: every entry
    stays inside one tenant, and each township fund settles its own households' spending."""
    _check_asset(asset)
    return _get_or_create(
        session,
        {
            "township_id": township_id,
            "kind": PARTNER_PAYABLE,
            "asset": asset,
            "partner_id": partner_id,
            "no_negative": False,
        },
        ["township_id", "kind", "asset", "partner_id"],
        "partner_id IS NOT NULL",
        [
            Account.township_id == township_id,
            Account.kind == PARTNER_PAYABLE,
            Account.asset == asset,
            Account.partner_id == partner_id,
        ],
    )


def system_account(
    session: Session, township_id: int, kind: str, asset: str | None = None
) -> Account:
    """A township's own account: points fund, integrity-money fund, settled payouts,
    expired/forfeited, offline shortfall. These may go negative: a fund's balance is minus
    what it has issued."""
    if kind not in SYSTEM_KINDS:
        raise ValidationFailed(details={"fields": {"kind": ["a township account kind"]}})
    fixed = _SYSTEM_ASSET.get(kind)
    asset = asset or fixed
    if asset is None or (fixed is not None and asset != fixed):
        raise ValidationFailed(details={"fields": {"asset": [f"{kind} needs a valid asset"]}})
    _check_asset(asset)
    return _get_or_create(
        session,
        {"township_id": township_id, "kind": kind, "asset": asset, "no_negative": False},
        ["township_id", "kind", "asset"],
        "subject_id IS NULL AND partner_id IS NULL",
        [
            Account.township_id == township_id,
            Account.kind == kind,
            Account.asset == asset,
            Account.subject_id.is_(None),
            Account.partner_id.is_(None),
        ],
    )


def village_reward_account(
    session: Session, township_id: int, collective: CreditSubject | None = None
) -> Account:
    """A village collective's reward account (CNY, never negative), or with no collective
    the township's account for rewards the county funds (may go negative)."""
    if collective is None:
        return _get_or_create(
            session,
            {
                "township_id": township_id,
                "kind": VILLAGE_REWARD,
                "asset": CNY,
                "no_negative": False,
            },
            ["township_id", "kind", "asset"],
            "subject_id IS NULL AND partner_id IS NULL",
            [
                Account.township_id == township_id,
                Account.kind == VILLAGE_REWARD,
                Account.asset == CNY,
                Account.subject_id.is_(None),
                Account.partner_id.is_(None),
            ],
        )
    if collective.kind != "collective" or collective.township_id != township_id:
        raise ValidationFailed(details={"fields": {"collective": ["a collective of the township"]}})
    return _get_or_create(
        session,
        {
            "township_id": township_id,
            "kind": VILLAGE_REWARD,
            "asset": CNY,
            "subject_id": collective.id,
            "no_negative": True,
        },
        ["township_id", "kind", "asset", "subject_id"],
        "subject_id IS NOT NULL",
        [
            Account.township_id == township_id,
            Account.kind == VILLAGE_REWARD,
            Account.asset == CNY,
            Account.subject_id == collective.id,
        ],
    )
