"""Reports by county, township, village, partner and month, from the ledger.

Every figure is a sum of ledger postings, classified by the entry's kind (a reversal counts
as the kind it reverses, with the opposite sign, so a voided sale nets to zero):

- points: issued, deducted, redeemed (net of refunds and voids), expired, other; and the
  outstanding balance of household points wallets at each month's end;
- integrity money (fen): granted, spent (net), expired, clawed back, other; and the
  outstanding balance at month end: the fund's liability to households;
- partners: points redeemed and integrity money spent there, offline shortfalls, what was
  settled, and the payables still owed at month end.

The month's-end balances come from the cached account balances less the movements booked
after the month: one index range scan of recent entries instead of all history.

All queries run on indexed columns: entries by (township_id, business_date), postings by
(township_id, entry_id), accounts by primary key or (township_id, kind, ...), benefit uses by
(partner_id, business_date), households by (township_id, id). bench/settlement_bench.py
prints their plans.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, func, literal, select
from sqlalchemy.orm import Session, aliased

from mall.benefits.models import BenefitUse
from mall.clock import business_date
from mall.ledger.models import (
    HOUSEHOLD_INTEGRITY,
    HOUSEHOLD_POINTS,
    PARTNER_PAYABLE,
    Account,
    Entry,
    Posting,
)
from mall.partners.models import Partner
from mall.regions.models import Region
from mall.reports.scope import Scope, scope_partner_ids
from mall.subjects.models import CreditSubject

HOUSEHOLD_GROUPS = ("county", "township", "village")
BENEFIT_GROUPS = ("county", "township", "village", "partner")

POINT_MEASURES = (
    "points_issued",
    "points_deducted",
    "points_redeemed",
    "points_expired",
    "points_other",
    "points_outstanding",
)
INTEGRITY_MEASURES = (
    "integrity_granted_fen",
    "integrity_spent_fen",
    "integrity_expired_fen",
    "integrity_clawed_back_fen",
    "integrity_other_fen",
    "integrity_outstanding_fen",
)
HOUSEHOLD_MEASURES = POINT_MEASURES + INTEGRITY_MEASURES
PARTNER_MEASURES = (
    "points_redeemed",
    "integrity_spent_fen",
    "offline_shortfall_fen",
    "points_settled",
    "fen_settled",
    "payable_points_outstanding",
    "payable_fen_outstanding",
)

# (account kind, effective entry kind) -> (measure, sign): the measure is sign * sum(amount).
_HOUSEHOLD_CLASS: dict[tuple[str, str], tuple[str, int]] = {
    (HOUSEHOLD_POINTS, "points_issued"): ("points_issued", 1),
    (HOUSEHOLD_POINTS, "points_deducted"): ("points_deducted", -1),
    (HOUSEHOLD_POINTS, "points_redeemed"): ("points_redeemed", -1),
    (HOUSEHOLD_POINTS, "points_refunded"): ("points_redeemed", -1),
    (HOUSEHOLD_POINTS, "hold_captured"): ("points_redeemed", -1),
    (HOUSEHOLD_POINTS, "points_expired"): ("points_expired", -1),
    (HOUSEHOLD_INTEGRITY, "integrity_granted"): ("integrity_granted_fen", 1),
    (HOUSEHOLD_INTEGRITY, "integrity_spent"): ("integrity_spent_fen", -1),
    (HOUSEHOLD_INTEGRITY, "integrity_refunded"): ("integrity_spent_fen", -1),
    (HOUSEHOLD_INTEGRITY, "hold_captured"): ("integrity_spent_fen", -1),
    (HOUSEHOLD_INTEGRITY, "integrity_expired"): ("integrity_expired_fen", -1),
    (HOUSEHOLD_INTEGRITY, "integrity_clawed_back"): ("integrity_clawed_back_fen", -1),
}
_HOUSEHOLD_OTHER = {HOUSEHOLD_POINTS: "points_other", HOUSEHOLD_INTEGRITY: "integrity_other_fen"}
_OUTSTANDING = {
    HOUSEHOLD_POINTS: "points_outstanding",
    HOUSEHOLD_INTEGRITY: "integrity_outstanding_fen",
}

# Partner payables: (asset, effective kind) -> measure (sign +1: credits to the payable).
_PARTNER_CLASS: dict[tuple[str, str], tuple[str, int]] = {
    ("POINTS", "points_redeemed"): ("points_redeemed", 1),
    ("POINTS", "points_refunded"): ("points_redeemed", 1),
    ("POINTS", "hold_captured"): ("points_redeemed", 1),
    ("CNY", "integrity_spent"): ("integrity_spent_fen", 1),
    ("CNY", "integrity_refunded"): ("integrity_spent_fen", 1),
    ("CNY", "hold_captured"): ("integrity_spent_fen", 1),
    ("CNY", "offline_shortfall"): ("offline_shortfall_fen", 1),
    ("POINTS", "settled"): ("points_settled", -1),
    ("CNY", "settled"): ("fen_settled", -1),
}
_PAYABLE_OUTSTANDING = {"POINTS": "payable_points_outstanding", "CNY": "payable_fen_outstanding"}


@dataclass
class ReportRow:
    group_id: int
    group_name: str
    month: str | None
    values: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "group_id": self.group_id,
            "group_name": self.group_name,
            "month": self.month,
            **self.values,
        }


def months_between(first: date, last: date) -> list[str]:
    out, y, m = [], first.year, first.month
    while (y, m) <= (last.year, last.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def month_bounds(first_month: str, last_month: str) -> tuple[date, date]:
    """'YYYY-MM'..'YYYY-MM' -> the first and last day of the range."""
    y1, m1 = (int(x) for x in first_month.split("-"))
    y2, m2 = (int(x) for x in last_month.split("-"))
    start = date(y1, m1, 1)
    after = date(y2 + 1, 1, 1) if m2 == 12 else date(y2, m2 + 1, 1)
    return start, after - timedelta(days=1)


def _month(session: Session, column: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(column, "YYYY-MM")
    return func.strftime("%Y-%m", column)


def _names(session: Session, ids: set[int], model: Any) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.execute(select(model.id, model.name).where(model.id.in_(ids))).all())


def _owner_predicate(account_kinds: tuple[str, ...]) -> Any:
    """Implied by the kinds, but stated so PostgreSQL may use the partial unique indexes on
    accounts (township_id, kind, asset, subject_id | partner_id)."""
    if PARTNER_PAYABLE in account_kinds:
        return Account.partner_id.is_not(None)
    return Account.subject_id.is_not(None)


def _period_entries(scope: Scope, first: date | None, last: date | None) -> Any:
    """The entries of the scope's townships in [first, last] with their effective kind, as
    a materialised CTE over the (township_id, business_date) index; a reversal's original
    kind is looked up by primary key, and only for reversals."""
    original = aliased(Entry)
    original_kind = (
        select(original.kind)
        .where(original.township_id == Entry.township_id, original.id == Entry.reverses_entry_id)
        .scalar_subquery()
    )
    period = select(
        Entry.township_id,
        Entry.id,
        Entry.business_date,
        case((Entry.reverses_entry_id.is_(None), Entry.kind), else_=original_kind).label("kind"),
    ).where(Entry.township_id.in_(scope.township_ids))
    if first is not None:
        period = period.where(Entry.business_date >= first)
    if last is not None:
        period = period.where(Entry.business_date <= last)
    return period.cte("period_entries").prefix_with("MATERIALIZED")


def _id_range(e: Any) -> Any:
    """Postings whose entry id lies between the period's lowest and highest entry id (taken
    from the materialised period itself). Entry ids grow with time, so this range lets the
    postings be read through their (township_id, entry_id) index instead of in full; it is
    only a filter, the exact join on the entry id follows."""
    return Posting.entry_id.between(
        select(func.min(e.c.id)).scalar_subquery(), select(func.max(e.c.id)).scalar_subquery()
    )


def _movements(
    session: Session,
    scope: Scope,
    group_by: str,
    account_kinds: tuple[str, ...],
    first: date | None,
    last: date | None,
    by_month: bool,
) -> Select[Any]:
    """Sum of postings on accounts of `account_kinds` by group, (month,) effective entry
    kind, account kind and asset, for entries of the scope's townships in [first, last]
    (selected first: `_period_entries`)."""
    e = _period_entries(scope, first, last)
    if group_by == "village":
        group: Any = CreditSubject.village_id
    elif group_by == "partner":
        group = Account.partner_id
    else:
        group = e.c.township_id
    month = _month(session, e.c.business_date) if by_month else literal("")
    stmt: Select[Any] = (
        select(group, month, e.c.kind, Account.kind, Account.asset, func.sum(Posting.amount))
        .select_from(e)
        .join(Posting, and_(Posting.township_id == e.c.township_id, Posting.entry_id == e.c.id))
        .join(
            Account,
            and_(Account.township_id == Posting.township_id, Account.id == Posting.account_id),
        )
        .where(
            Posting.township_id.in_(scope.township_ids),
            _id_range(e),
            Account.kind.in_(account_kinds),
            _owner_predicate(account_kinds),
        )
        .group_by(group, month, e.c.kind, Account.kind, Account.asset)
    )
    if group_by == "village" or scope.village_id is not None:
        stmt = stmt.join(CreditSubject, CreditSubject.id == Account.subject_id)
    if scope.village_id is not None:
        stmt = stmt.where(CreditSubject.village_id == scope.village_id)
    return stmt


def _movement_rows(
    session: Session,
    scope: Scope,
    group_by: str,
    account_kinds: tuple[str, ...],
    first: date | None,
    last: date | None,
    by_month: bool,
) -> list[tuple[Any, str, str, str, str, int]]:
    """(group, month, effective kind, account kind, asset, sum) rows of `_movements`.

    Partner payables are few accounts with long histories: with a join on the accounts
    table PostgreSQL estimates a handful of postings per account and picks a nested loop
    over each payable's whole history. So their ids are read first and the postings are
    filtered by that list (which the column statistics estimate well), grouped by account,
    and mapped to partner and asset here."""
    if PARTNER_PAYABLE not in account_kinds:
        stmt = _movements(session, scope, group_by, account_kinds, first, last, by_month)
        return [tuple(r) for r in session.execute(stmt).all()]
    payables = {
        r.id: r
        for r in session.execute(
            select(Account.id, Account.partner_id, Account.kind, Account.asset).where(
                Account.township_id.in_(scope.township_ids),
                Account.kind == PARTNER_PAYABLE,
                Account.partner_id.is_not(None),
            )
        )
    }
    if not payables:
        return []
    e = _period_entries(scope, first, last)
    month = _month(session, e.c.business_date) if by_month else literal("")
    stmt = (
        select(month, e.c.kind, Posting.account_id, func.sum(Posting.amount))
        .select_from(e)
        .join(Posting, and_(Posting.township_id == e.c.township_id, Posting.entry_id == e.c.id))
        .where(
            Posting.township_id.in_(scope.township_ids),
            _id_range(e),
            Posting.account_id.in_(sorted(payables)),
        )
        .group_by(month, e.c.kind, Posting.account_id)
    )
    out = []
    for m, kind, account_id, amount in session.execute(stmt).all():
        account = payables[account_id]
        out.append((account.partner_id, m, kind, account.kind, account.asset, int(amount)))
    return out


def _balances(
    session: Session, scope: Scope, group_by: str, account_kinds: tuple[str, ...]
) -> Select[Any]:
    """Current balances of the accounts by group, account kind and asset."""
    if group_by == "village":
        group: Any = CreditSubject.village_id
    elif group_by == "partner":
        group = Account.partner_id
    else:
        group = Account.township_id
    stmt: Select[Any] = (
        select(group, Account.kind, Account.asset, func.sum(Account.posted_balance))
        .where(
            Account.township_id.in_(scope.township_ids),
            Account.kind.in_(account_kinds),
            _owner_predicate(account_kinds),
        )
        .group_by(group, Account.kind, Account.asset)
    )
    if group_by == "village" or scope.village_id is not None:
        stmt = stmt.join(CreditSubject, CreditSubject.id == Account.subject_id)
    if scope.village_id is not None:
        stmt = stmt.where(CreditSubject.village_id == scope.village_id)
    return stmt


def _group_key(group_by: str, scope: Scope, raw: Any) -> int:
    return scope.county_id if group_by == "county" else int(raw)


def _report(  # noqa: C901 (to split by step, issue 20)
    session: Session,
    scope: Scope,
    group_by: str,
    first: date,
    last: date,
    account_kinds: tuple[str, ...],
    classify: dict[tuple[str, str], tuple[str, int]],
    outstanding: dict[str, str],
    measures: tuple[str, ...],
    class_key: str,
) -> dict[tuple[int, str], dict[str, int]]:
    months = months_between(first, last)
    table: dict[tuple[int, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(measures, 0))
    if not scope.township_ids:
        return {}
    # net[group][month][balance key] = movement within the month, for the running balance
    net: dict[int, dict[str, dict[str, int]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(int))
    )
    rows = _movement_rows(session, scope, group_by, account_kinds, first, last, True)
    for raw_group, month, kind, account_kind, asset, amount in rows:
        if raw_group is None:
            continue
        key = _group_key(group_by, scope, raw_group)
        balance_key = account_kind if class_key == "account" else asset
        measure, sign = classify.get((balance_key, kind), (None, 1))
        if measure is None:
            other = _HOUSEHOLD_OTHER.get(balance_key)
            if other is None:  # a partner payable movement of no reported kind
                net[key][month][balance_key] += int(amount)
                continue
            measure = other
        table[(key, month)][measure] += sign * int(amount)
        net[key][month][balance_key] += int(amount)
    current: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for raw_group, account_kind, asset, total in session.execute(
        _balances(session, scope, group_by, account_kinds)
    ).all():
        if raw_group is None:
            continue
        key = _group_key(group_by, scope, raw_group)
        current[key][account_kind if class_key == "account" else asset] += int(total)
    after = last + timedelta(days=1)
    for raw_group, _m, _kind, account_kind, asset, amount in _movement_rows(
        session, scope, group_by, account_kinds, after, None, False
    ):
        if raw_group is None:
            continue
        key = _group_key(group_by, scope, raw_group)
        current[key][account_kind if class_key == "account" else asset] -= int(amount)
    for key in set(current) | set(net):
        balance = dict(current[key])  # at the end of the last month
        for month in reversed(months):
            cell = table[(key, month)]
            for balance_key, measure in outstanding.items():
                cell[measure] = balance.get(balance_key, 0)
                balance[balance_key] = balance.get(balance_key, 0) - net[key][month][balance_key]
    return dict(table)


def _rows(
    session: Session, group_by: str, scope: Scope, table: dict[tuple[int, str], dict[str, int]]
) -> list[ReportRow]:
    ids = {key for key, _ in table}
    model: Any = Partner if group_by == "partner" else Region
    names = _names(session, ids, model)
    return [
        ReportRow(key, names.get(key, str(key)), month, values)
        for (key, month), values in sorted(table.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]


def household_report(
    session: Session, scope: Scope, group_by: str, first: date, last: date
) -> list[ReportRow]:
    """Points and integrity money by county, township or village and month."""
    table = _report(
        session,
        scope,
        group_by,
        first,
        last,
        (HOUSEHOLD_POINTS, HOUSEHOLD_INTEGRITY),
        _HOUSEHOLD_CLASS,
        _OUTSTANDING,
        HOUSEHOLD_MEASURES,
        "account",
    )
    return _rows(session, group_by, scope, table)


def partner_report(session: Session, scope: Scope, first: date, last: date) -> list[ReportRow]:
    """Per partner and month: what was redeemed and spent there, shortfalls, settled, and
    the payables outstanding at month end (owed by the scope's township funds)."""
    table = _report(
        session,
        scope,
        "partner",
        first,
        last,
        (PARTNER_PAYABLE,),
        _PARTNER_CLASS,
        _PAYABLE_OUTSTANDING,
        PARTNER_MEASURES,
        "asset",
    )
    return _rows(session, "partner", scope, table)


def benefit_use_report(
    session: Session, scope: Scope, group_by: str, first: date, last: date
) -> list[dict[str, Any]]:
    """Benefit uses by group, month and partner category: count and money value (fen)."""
    partner_ids = scope_partner_ids(session, scope)
    if not partner_ids:
        return []
    if group_by == "village":
        group: Any = CreditSubject.village_id
    elif group_by == "partner":
        group = BenefitUse.partner_id
    else:
        group = BenefitUse.township_id
    month = _month(session, BenefitUse.business_date)
    stmt = (
        select(
            group,
            month,
            Partner.category,
            func.count(BenefitUse.id),
            func.coalesce(func.sum(BenefitUse.discount_fen), 0),
        )
        .join(Partner, Partner.id == BenefitUse.partner_id)
        .where(
            BenefitUse.partner_id.in_(partner_ids),
            BenefitUse.business_date >= first,
            BenefitUse.business_date <= last,
        )
        .group_by(group, month, Partner.category)
    )
    if group_by == "village" or scope.village_id is not None:
        stmt = stmt.join(CreditSubject, CreditSubject.id == BenefitUse.subject_id)
    if scope.village_id is not None:
        stmt = stmt.where(CreditSubject.village_id == scope.village_id)
    totals: dict[tuple[int, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for raw_group, m, category, count, value in session.execute(stmt).all():
        key = _group_key(group_by, scope, raw_group)
        totals[(key, m, category)][0] += int(count)
        totals[(key, m, category)][1] += int(value)
    names = _names(session, {k for k, _, _ in totals}, Partner if group_by == "partner" else Region)
    return [
        {
            "group_id": k,
            "group_name": names.get(k, str(k)),
            "month": m,
            "category": c,
            "uses": v[0],
            "value_fen": v[1],
        }
        for (k, m, c), v in sorted(totals.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2]))
    ]


def households_by_level(
    session: Session, scope: Scope, group_by: str, on: date | None = None
) -> list[dict[str, Any]]:
    """Active households by group and current level (None: unrated or rating lapsed)."""
    if not scope.township_ids:
        return []
    on = on or business_date()
    group: Any = CreditSubject.village_id if group_by == "village" else CreditSubject.township_id
    valid = (CreditSubject.level_valid_until.is_(None)) | (CreditSubject.level_valid_until >= on)
    level = case((valid, CreditSubject.level_code), else_=None)
    stmt = (
        select(group, level, func.count(CreditSubject.id))
        .where(
            CreditSubject.township_id.in_(scope.township_ids),
            CreditSubject.kind == "household",
            CreditSubject.status == "active",
        )
        .group_by(group, level)
    )
    if scope.village_id is not None:
        stmt = stmt.where(CreditSubject.village_id == scope.village_id)
    totals: dict[tuple[int, str | None], int] = defaultdict(int)
    for raw_group, code, count in session.execute(stmt).all():
        totals[(_group_key(group_by, scope, raw_group), code)] += int(count)
    names = _names(session, {k for k, _ in totals}, Region)
    return [
        {"group_id": k, "group_name": names.get(k, str(k)), "level_code": code, "households": n}
        for (k, code), n in sorted(totals.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
    ]
