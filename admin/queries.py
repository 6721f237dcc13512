"""Reads for admin pages that no `mall` service offers yet: dashboard aggregates and a few
scoped lists. Reads only; every query is restricted to the viewer's region and aggregated in
SQL over indexed columns (one query per chart, no per-row lookups)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, or_, select
from sqlalchemy.orm import Session

from mall.benefits.models import Benefit, BenefitUse
from mall.ledger.models import HOUSEHOLD_INTEGRITY, HOUSEHOLD_POINTS, Account, Entry, Posting
from mall.partners.models import Partner, Terminal
from mall.payments.models import Payment
from mall.ratings.models import RatingAppeal
from mall.regions.models import Region
from mall.subjects.models import CreditSubject
from mall.users.models import User
from mall.users.scope import COUNTY_ROLES
from mall.users.scope import restrict as _restrict

POINTS_KINDS = ("points_issued", "points_redeemed", "points_expired", "points_deducted")
INTEGRITY_KINDS = (
    "integrity_granted",
    "integrity_spent",
    "integrity_expired",
    "integrity_clawed_back",
)


def restrict(stmt: Any, user: User, *, county_col: Any, township_col: Any) -> Any:
    """mall.users.scope.restrict for multi-column selects (its typing expects one entity)."""
    return _restrict(stmt, user, county_col=county_col, township_col=township_col)


# ---------------------------------------------------------------- regions in scope


def townships(session: Session, user: User) -> list[Region]:
    stmt = select(Region).where(Region.kind == "township", Region.county_id == user.county_id)
    if user.role not in COUNTY_ROLES:
        stmt = stmt.where(Region.id == user.township_id)
    return list(session.scalars(stmt.order_by(Region.code)))


def villages(session: Session, user: User) -> list[Region]:
    """The villages a user works in: a clerk's own, a township's, or the whole county's."""
    stmt = select(Region).where(Region.kind == "village", Region.county_id == user.county_id)
    if user.role == "village_clerk":
        stmt = stmt.where(Region.id == user.village_id)
    elif user.role not in COUNTY_ROLES:
        stmt = stmt.where(Region.township_id == user.township_id)
    return list(session.scalars(stmt.order_by(Region.code)))


def regions_for_settings(session: Session, user: User) -> list[Region]:
    """The county (county roles only) and the townships in scope."""
    stmt = select(Region).where(Region.county_id == user.county_id, Region.kind != "village")
    if user.role not in COUNTY_ROLES:
        stmt = stmt.where(Region.id == user.township_id)
    rows = list(session.scalars(stmt))
    return sorted(rows, key=lambda r: (r.kind != "county", r.code))


def region_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(select(Region.id, Region.name).where(Region.id.in_(ids)))
    return {r.id: r.name for r in rows}


def _township_ids(user: User) -> Select[Any]:
    stmt = select(Region.id).where(Region.kind == "township", Region.county_id == user.county_id)
    if user.role not in COUNTY_ROLES:
        stmt = stmt.where(Region.id == user.township_id)
    return stmt


# ---------------------------------------------------------------- dashboard


def _month(session: Session, col: Any) -> ColumnElement[str]:
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(col, "YYYY-MM")
    return func.strftime("%Y-%m", col)


def month_keys(today: date, months: int = 12) -> list[str]:
    """'YYYY-MM' of the last `months` months, oldest first, ending with today's month."""
    y, m = today.year, today.month
    out = []
    for _ in range(months):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return out[::-1]


def ledger_by_month(
    session: Session, user: User, kinds: Sequence[str], since: date
) -> dict[tuple[str, str], int]:
    """(entry kind, 'YYYY-MM') → amount moved, from the postings of the user's townships.
    An entry's postings sum to zero, so the amount moved is the sum of its credits."""
    month = _month(session, Entry.business_date)
    rows = session.execute(
        select(
            Entry.kind,
            month.label("month"),
            func.sum(case((Posting.amount > 0, Posting.amount), else_=0)).label("total"),
        )
        .join(
            Posting,
            (Posting.township_id == Entry.township_id) & (Posting.entry_id == Entry.id),
        )
        .where(
            Entry.township_id.in_(_township_ids(user)),
            Entry.business_date >= since,
            Entry.kind.in_(list(kinds)),
        )
        .group_by(Entry.kind, month)
    )
    return {(r.kind, r.month): int(r.total or 0) for r in rows}


@dataclass(frozen=True)
class PartnerSpending:
    partner_id: int
    name: str
    payments: int
    amount_fen: int
    integrity_fen: int
    points: int


def spending_by_partner(
    session: Session, user: User, since: date, limit: int = 10
) -> list[PartnerSpending]:
    rows = session.execute(
        restrict(
            select(
                Partner.id,
                Partner.name,
                func.count(Payment.id).label("n"),
                func.coalesce(func.sum(Payment.amount_fen), 0).label("amount"),
                func.coalesce(func.sum(Payment.integrity_discount_fen), 0).label("integrity"),
                func.coalesce(func.sum(Payment.points_cost), 0).label("points"),
            )
            .join(Payment, Payment.partner_id == Partner.id)
            .where(Payment.status == "completed", Payment.business_date >= since)
            .group_by(Partner.id, Partner.name),
            user,
            county_col=Partner.county_id,
            township_col=Partner.township_id,
        )
        .order_by(func.sum(Payment.amount_fen).desc())
        .limit(limit)
    )
    return [
        PartnerSpending(r.id, r.name, int(r.n), int(r.amount), int(r.integrity), int(r.points))
        for r in rows
    ]


def households_by_level(session: Session, user: User) -> list[tuple[int, str | None, int]]:
    """(village id, level code or None, active households) in the user's villages."""
    stmt = restrict(
        select(CreditSubject.village_id, CreditSubject.level_code, func.count())
        .where(CreditSubject.kind == "household", CreditSubject.status == "active")
        .group_by(CreditSubject.village_id, CreditSubject.level_code),
        user,
        county_col=CreditSubject.county_id,
        township_col=CreditSubject.township_id,
    )
    if user.role == "village_clerk":
        stmt = stmt.where(CreditSubject.village_id == user.village_id)
    return [(r[0], r[1], int(r[2])) for r in session.execute(stmt)]


def benefit_uses_by_category(
    session: Session, user: User, since: date
) -> list[tuple[str, int, int]]:
    """(partner category, uses, discount fen) of benefit uses since `since`."""
    stmt = restrict(
        select(
            Partner.category,
            func.count(BenefitUse.id),
            func.coalesce(func.sum(BenefitUse.discount_fen), 0),
        )
        .join(Partner, Partner.id == BenefitUse.partner_id)
        .where(BenefitUse.business_date >= since)
        .group_by(Partner.category),
        user,
        county_col=BenefitUse.county_id,
        township_col=BenefitUse.township_id,
    )
    return [(r[0], int(r[1]), int(r[2])) for r in session.execute(stmt)]


def household_counts(session: Session, user: User) -> dict[str, int]:
    stmt = restrict(
        select(CreditSubject.status, func.count())
        .where(CreditSubject.kind == "household")
        .group_by(CreditSubject.status),
        user,
        county_col=CreditSubject.county_id,
        township_col=CreditSubject.township_id,
    )
    if user.role == "village_clerk":
        stmt = stmt.where(CreditSubject.village_id == user.village_id)
    return {r[0]: int(r[1]) for r in session.execute(stmt)}


# ---------------------------------------------------------------- partners, terminals, staff


def list_partners(
    session: Session,
    user: User,
    *,
    category: str | None = None,
    township_id: int | None = None,
    q: str | None = None,
    active: bool | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[Partner]:
    stmt = restrict(
        select(Partner), user, county_col=Partner.county_id, township_col=Partner.township_id
    )
    if category:
        stmt = stmt.where(Partner.category == category)
    if township_id is not None:
        stmt = stmt.where(Partner.township_id == township_id)
    if q:
        stmt = stmt.where(Partner.name.contains(q, autoescape=True))
    if active is not None:
        stmt = stmt.where(Partner.active.is_(active))
    if after_id is not None:
        stmt = stmt.where(Partner.id < after_id)
    return list(session.scalars(stmt.order_by(Partner.id.desc()).limit(limit)))


def partner_terminals(session: Session, partner: Partner) -> list[Terminal]:
    return list(
        session.scalars(
            select(Terminal).where(Terminal.partner_id == partner.id).order_by(Terminal.id)
        )
    )


def partner_cashiers(session: Session, partner: Partner) -> list[User]:
    return list(
        session.scalars(select(User).where(User.partner_id == partner.id).order_by(User.id))
    )


def partner_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {
        r.id: r.name
        for r in session.execute(select(Partner.id, Partner.name).where(Partner.id.in_(ids)))
    }


def list_users(
    session: Session,
    user: User,
    *,
    role: str | None = None,
    q: str | None = None,
    active: bool | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[User]:
    stmt = restrict(select(User), user, county_col=User.county_id, township_col=User.township_id)
    if role:
        stmt = stmt.where(User.role == role)
    if q:
        stmt = stmt.where(
            or_(
                User.username.contains(q, autoescape=True),
                User.display_name.contains(q, autoescape=True),
            )
        )
    if active is not None:
        stmt = stmt.where(User.active.is_(active))
    if after_id is not None:
        stmt = stmt.where(User.id < after_id)
    return list(session.scalars(stmt.order_by(User.id.desc()).limit(limit)))


def benefit_partner_labels(session: Session, benefits: Sequence[Benefit]) -> dict[int, str]:
    return partner_names(session, {b.partner_id for b in benefits if b.partner_id})


# ---------------------------------------------------------------- households


def household_accounts(session: Session, subject: CreditSubject) -> dict[str, Account]:
    """The household's wallets that exist (a GET must not open accounts)."""
    rows = session.scalars(
        select(Account).where(
            Account.township_id == subject.township_id,
            Account.subject_id == subject.id,
            Account.kind.in_((HOUSEHOLD_POINTS, HOUSEHOLD_INTEGRITY)),
        )
    )
    return {a.kind: a for a in rows}


# ---------------------------------------------------------------- settlement


@dataclass(frozen=True)
class StatementDay:
    partner_id: int
    partner_name: str
    business_date: date
    payments: int
    amount_fen: int
    integrity_fen: int
    points: int
    points_settlement_fen: int


def statement_days(
    session: Session,
    user: User,
    *,
    partner_id: int | None = None,
    since: date | None = None,
    until: date | None = None,
    limit: int = 60,
) -> list[StatementDay]:
    """One row per partner and business day with completed payments, newest day first."""
    stmt = restrict(
        select(
            Partner.id,
            Partner.name,
            Payment.business_date,
            func.count(Payment.id).label("n"),
            func.coalesce(func.sum(Payment.amount_fen), 0).label("amount"),
            func.coalesce(func.sum(Payment.integrity_discount_fen), 0).label("integrity"),
            func.coalesce(func.sum(Payment.points_cost), 0).label("points"),
            func.coalesce(func.sum(Payment.points_settlement_fen), 0).label("settle"),
        )
        .join(Payment, Payment.partner_id == Partner.id)
        .where(Payment.status == "completed")
        .group_by(Partner.id, Partner.name, Payment.business_date),
        user,
        county_col=Partner.county_id,
        township_col=Partner.township_id,
    )
    if partner_id is not None:
        stmt = stmt.where(Partner.id == partner_id)
    if since is not None:
        stmt = stmt.where(Payment.business_date >= since)
    if until is not None:
        stmt = stmt.where(Payment.business_date <= until)
    rows = session.execute(stmt.order_by(Payment.business_date.desc(), Partner.id).limit(limit))
    return [
        StatementDay(
            r.id,
            r.name,
            r.business_date,
            int(r.n),
            int(r.amount),
            int(r.integrity),
            int(r.points),
            int(r.settle),
        )
        for r in rows
    ]


# ---------------------------------------------------------------- ratings


def list_appeals(
    session: Session,
    user: User,
    *,
    status: str | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[tuple[RatingAppeal, str, str, int]]:
    """Appeals in scope, newest first: (appeal, household ref, masked name, village id)."""
    stmt = restrict(
        select(
            RatingAppeal, CreditSubject.ref, CreditSubject.name_masked, CreditSubject.village_id
        ).join(CreditSubject, CreditSubject.id == RatingAppeal.subject_id),
        user,
        county_col=RatingAppeal.county_id,
        township_col=RatingAppeal.township_id,
    )
    if user.role == "village_clerk":
        stmt = stmt.where(CreditSubject.village_id == user.village_id)
    if status:
        stmt = stmt.where(RatingAppeal.status == status)
    if after_id is not None:
        stmt = stmt.where(RatingAppeal.id < after_id)
    rows = session.execute(stmt.order_by(RatingAppeal.id.desc()).limit(limit))
    return [(r[0], r[1], r[2], r[3]) for r in rows]
