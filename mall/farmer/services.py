"""Reads and actions of the household's own account, shared by the API and the pages.

Every function takes the authenticated `subject`; nothing here looks a household up from
request data. Services take the Session and only flush; the view commits.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask_babel import get_locale
from sqlalchemy import case, select
from sqlalchemy.orm import Session

from mall.benefits import services as benefits
from mall.clock import as_aware, business_date
from mall.codes import services as codes
from mall.errors import NotFound, ValidationFailed
from mall.farmer.labels import (
    APPEAL_STATUS_LABELS,
    BENEFIT_KIND_LABELS,
    CATEGORY_LABELS,
    KIND_LABELS,
    STAR_LABELS,
    history_kind,
)
from mall.ledger.models import (
    HOUSEHOLD_INTEGRITY,
    HOUSEHOLD_POINTS,
    PARTNER_PAYABLE,
    Account,
    Entry,
    Posting,
)
from mall.partners.models import Partner
from mall.ratings.labels import rating_status_label
from mall.ratings.models import Rating, RatingAppeal
from mall.ratings.services import appeal_window_open, file_appeal
from mall.regions.models import Region
from mall.subjects.models import CreditSubject


def _english() -> bool:
    return str(get_locale() or "zh_CN").startswith("en")


def _pick(zh: str, en: str | None) -> str:
    return en if _english() and en else zh


# ---------------------------------------------------------------- level


@dataclass(frozen=True)
class LevelName:
    code: str
    rank: int
    label_zh: str
    label_en: str


def _scheme_levels(session: Session, subject: CreditSubject) -> list[LevelName] | None:
    """The levels of the household's scheme, from mall.ratings when it is installed."""
    try:
        from mall.ratings.services import scheme_of
    except ImportError:  # pragma: no cover - before the ratings module lands
        return None
    scheme = scheme_of(session, subject)
    return [LevelName(lv.code, lv.rank, lv.label_zh, lv.label_en) for lv in scheme.levels]


def _fallback_name(code: str, rank: int) -> LevelName:
    star = STAR_LABELS.get(rank) if code == str(rank) else None
    if star is not None:
        return LevelName(code, rank, str(star), f"{rank} star" + ("s" if rank > 1 else ""))
    return LevelName(code, rank, code, code)


class Levels:
    """Names of levels in the household's scheme (loaded once per call site)."""

    def __init__(self, session: Session, subject: CreditSubject) -> None:
        self._levels = _scheme_levels(session, subject)

    def by_rank(self, rank: int) -> str:
        for lv in self._levels or ():
            if lv.rank == rank:
                return _pick(lv.label_zh, lv.label_en)
        return _pick(*_star_pair(rank))

    def named(self, code: str, rank: int) -> dict[str, Any]:
        """`{code, label, rank}` of a level, named as the household's scheme names it."""
        name = next(
            (lv for lv in self._levels or () if lv.code == code),
            _fallback_name(code, rank),
        )
        return {"code": code, "label": _pick(name.label_zh, name.label_en), "rank": rank}

    def current(self, subject: CreditSubject, today: date) -> dict[str, Any] | None:
        rank = benefits.effective_rank(subject, today)
        if rank is None or subject.level_code is None:
            return None
        return self.named(subject.level_code, rank)


def _star_pair(rank: int) -> tuple[str, str]:
    name = _fallback_name(str(rank), rank)
    return name.label_zh, name.label_en


# ---------------------------------------------------------------- me


def wallet(session: Session, subject: CreditSubject) -> dict[str, int]:
    """Available balances (posted minus open holds). A read creates no wallet."""
    rows = session.scalars(
        select(Account).where(
            Account.township_id == subject.township_id,
            Account.subject_id == subject.id,
            Account.kind.in_((HOUSEHOLD_POINTS, HOUSEHOLD_INTEGRITY)),
        )
    )
    out = {"integrity_fen": 0, "points": 0}
    for account in rows:
        key = "points" if account.kind == HOUSEHOLD_POINTS else "integrity_fen"
        out[key] = account.posted_balance - account.held_balance
    return out


def me(session: Session, subject: CreditSubject, today: date | None = None) -> dict[str, Any]:
    today = today or business_date()
    regions = {
        r.id: r
        for r in session.scalars(
            select(Region).where(Region.id.in_((subject.village_id, subject.township_id)))
        )
    }
    village, township = regions.get(subject.village_id), regions.get(subject.township_id)
    level = Levels(session, subject).current(subject, today)
    card = codes.active_card(session, subject)
    return {
        "ref": subject.ref,
        "name": subject.name_masked,
        "village": village.name if village else "",
        "township": township.name if township else "",
        "level": level,
        "valid_until": subject.level_valid_until if level else None,
        "status": subject.status,
        "wallet": wallet(session, subject),
        "members": [{"name": m.name_masked, "relation": m.relation} for m in subject.members],
        "card": (
            {
                "serial": codes.format_serial(card.serial),
                "status": card.status,
                "issued_at": as_aware(card.issued_at),
            }
            if card
            else None
        ),
    }


# ---------------------------------------------------------------- history


def _encode_cursor(posting_id: int) -> str:
    return base64.urlsafe_b64encode(f"h{posting_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("h") or not raw[1:].isdigit() or len(raw) > 20:
            raise ValueError(cursor)
        return int(raw[1:])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed(details={"fields": {"cursor": ["invalid cursor"]}}) from None


def transactions(
    session: Session, subject: CreditSubject, *, cursor: str | None = None, limit: int = 20
) -> dict[str, Any]:
    """Both wallets' postings merged, newest first, keyset on the posting id (ids grow within
    the township, so one key orders both accounts), each with the balance after it and the
    partner (from the entry's partner-payable leg) or the reason."""
    accounts = {
        a.id: a
        for a in session.scalars(
            select(Account).where(
                Account.township_id == subject.township_id,
                Account.subject_id == subject.id,
                Account.kind.in_((HOUSEHOLD_POINTS, HOUSEHOLD_INTEGRITY)),
            )
        )
    }
    if not accounts:
        return {"items": [], "next_cursor": None}
    stmt = (
        select(
            Posting.id,
            Posting.entry_id,
            Posting.account_id,
            Posting.amount,
            Posting.balance_after,
            Entry.kind,
            Entry.created_at,
            Entry.business_date,
            Entry.reason,
        )
        .join(Entry, (Entry.township_id == Posting.township_id) & (Entry.id == Posting.entry_id))
        .where(
            Posting.township_id == subject.township_id,
            Posting.account_id.in_(list(accounts)),
        )
        .order_by(Posting.id.desc())
        .limit(limit + 1)
    )
    if cursor:
        stmt = stmt.where(Posting.id < _decode_cursor(cursor))
    rows = session.execute(stmt).all()[: limit + 1]
    page_rows = rows[:limit]
    partners = _entry_partners(session, subject.township_id, [r.entry_id for r in page_rows])
    items = []
    for r in page_rows:
        asset = "points" if accounts[r.account_id].kind == HOUSEHOLD_POINTS else "integrity_fen"
        kind = history_kind(r.kind, asset)
        partner = partners.get(r.entry_id)
        items.append(
            {
                "id": _encode_cursor(r.id),
                "at": as_aware(r.created_at),
                "business_date": r.business_date,
                "kind": kind,
                "kind_label": str(KIND_LABELS.get(kind, KIND_LABELS["other"])),
                "entry_kind": r.kind,
                "asset": asset,
                "amount": r.amount,
                "balance_after": r.balance_after,
                "partner": {"id": partner.id, "name": partner.name} if partner else None,
                "reason": r.reason or "",
            }
        )
    next_cursor = _encode_cursor(page_rows[-1].id) if len(rows) > limit else None
    return {"items": items, "next_cursor": next_cursor}


def _entry_partners(session: Session, township_id: int, entry_ids: list[int]) -> dict[int, Partner]:
    if not entry_ids:
        return {}
    rows = session.execute(
        select(Posting.entry_id, Partner)
        .join(
            Account,
            (Account.township_id == Posting.township_id) & (Account.id == Posting.account_id),
        )
        .join(Partner, Partner.id == Account.partner_id)
        .where(
            Posting.township_id == township_id,
            Posting.entry_id.in_(entry_ids),
            Account.kind == PARTNER_PAYABLE,
        )
    ).all()
    return {row.entry_id: row.Partner for row in rows}


# ---------------------------------------------------------------- partners, benefits, goods


def _township_names(session: Session, partners: list[Partner]) -> dict[int, str]:
    ids = {p.township_id for p in partners}
    if not ids:
        return {}
    return dict(session.execute(select(Region.id, Region.name).where(Region.id.in_(ids))).all())


def partner_view(partner: Partner, townships: dict[int, str]) -> dict[str, Any]:
    return {
        "id": partner.id,
        "name": partner.name,
        "category": partner.category,
        "category_label": str(CATEGORY_LABELS.get(partner.category, partner.category)),
        "address": partner.address,
        "township": townships.get(partner.township_id, ""),
        "accepts_integrity": partner.accepts_integrity,
        "accepts_points": partner.accepts_points,
    }


def partners(
    session: Session, subject: CreditSubject, *, category: str | None = None
) -> list[dict[str, Any]]:
    """Active partners of the household's county, its own township first."""
    stmt = select(Partner).where(Partner.county_id == subject.county_id, Partner.active.is_(True))
    if category:
        stmt = stmt.where(Partner.category == category)
    rows = list(
        session.scalars(
            stmt.order_by(
                case((Partner.township_id == subject.township_id, 0), else_=1),
                Partner.category,
                Partner.name,
            )
        )
    )
    townships = _township_names(session, rows)
    return [partner_view(p, townships) for p in rows]


def _limits(b: Any) -> dict[str, Any]:
    return {
        "per_day": b.limit_per_day,
        "per_month": b.limit_per_month,
        "per_year": b.limit_per_year,
        "one_at_a_time": b.one_at_a_time,
    }


def benefit_groups(
    session: Session, subject: CreditSubject, today: date | None = None
) -> dict[str, Any]:
    """The benefit list for the household's level, grouped by partner category."""
    today = today or business_date()
    levels = Levels(session, subject)
    lines = benefits.household_benefits(session, subject, today)
    townships = _township_names(session, [p for line in lines for p in line.partners])
    groups: dict[str, dict[str, Any]] = {}
    for line in lines:
        b = line.benefit
        category = b.partner_category or (line.partners[0].category if line.partners else "other")
        group = groups.setdefault(
            category,
            {
                "category": category,
                "category_label": str(CATEGORY_LABELS.get(category, category)),
                "benefits": [],
            },
        )
        group["benefits"].append(
            {
                "id": b.id,
                "title": _pick(b.title_zh, b.title_en),
                "description": _pick(b.description, b.description_en),
                "kind": b.kind,
                "kind_label": str(BENEFIT_KIND_LABELS.get(b.kind, b.kind)),
                "min_level": b.min_level_rank,
                "min_level_label": levels.by_rank(b.min_level_rank),
                "percent_bp": b.percent_bp,
                "cap_fen": b.cap_fen,
                "fixed_fen": b.fixed_fen,
                "limits": _limits(b),
                "valid_until": b.valid_until,
                "funded_by": b.funded_by,
                "partners": [partner_view(p, townships) for p in line.partners],
            }
        )
    return {"level": levels.current(subject, today), "groups": list(groups.values())}


def catalog(
    session: Session,
    subject: CreditSubject,
    *,
    partner_id: int | None = None,
    today: date | None = None,
) -> list[dict[str, Any]]:
    """Goods redeemable for points at the partners of the household's county (its own
    township first), each with where to redeem it and whether this household may."""
    try:
        from mall.catalog.models import Goods
    except ImportError:  # pragma: no cover - before the catalogue lands
        return []
    today = today or business_date()
    rank = benefits.effective_rank(subject, today)
    levels = Levels(session, subject)
    stmt = (
        select(Goods, Partner)
        .join(Partner, Partner.id == Goods.partner_id)
        .where(
            Partner.county_id == subject.county_id,
            Partner.active.is_(True),
            Partner.accepts_points.is_(True),
            Goods.active.is_(True),
        )
        .order_by(
            case((Partner.township_id == subject.township_id, 0), else_=1),
            Partner.name,
            Goods.points_price,
            Goods.sku,
        )
        .limit(500)
    )
    if partner_id is not None:
        stmt = stmt.where(Partner.id == partner_id)
    rows = session.execute(stmt).all()
    townships = _township_names(session, [p for _, p in rows])
    out = []
    for goods, partner in rows:
        min_rank = goods.min_level_rank
        out.append(
            {
                "id": goods.id,
                "sku": goods.sku,
                "name": goods.name,
                "points_price": goods.points_price,
                "stock": goods.stock,
                "min_level": min_rank,
                "min_level_label": levels.by_rank(min_rank) if min_rank else None,
                "eligible": rank is not None and (min_rank is None or rank >= min_rank),
                "partner": partner_view(partner, townships),
            }
        )
    return out


# ---------------------------------------------------------------- ratings and appeals

# Drafts are not yet public, withdrawn ratings were a mistake: the household sees neither.
HIDDEN_RATING_STATUSES = ("draft", "withdrawn")
MY_RATINGS_LIMIT = 5
GROUNDS_MAX_CHARS = 1000
# What is wrong with an appeal's grounds (the API's `details.fields.grounds`)
GROUNDS_REQUIRED = "required"
GROUNDS_TOO_LONG = f"at most {GROUNDS_MAX_CHARS} characters"
GROUNDS_BAD_CHARACTER = "invalid character"
_MAX_ID = 2**63 - 1  # BIGINT: a larger id names no rating (and PostgreSQL would refuse it)


def appeal_view(appeal: RatingAppeal) -> dict[str, Any]:
    return {
        "id": appeal.id,
        "status": appeal.status,
        "status_label": str(APPEAL_STATUS_LABELS.get(appeal.status, appeal.status)),
        "grounds": appeal.grounds,
        "filed_on": appeal.filed_on,
        "answer_due": appeal.answer_due,
        "answer": appeal.answer,
        "answered_at": as_aware(appeal.answered_at) if appeal.answered_at else None,
    }


def my_ratings(
    session: Session, subject: CreditSubject, today: date | None = None
) -> list[dict[str, Any]]:
    """The household's ratings from their public notice on, newest first (at most
    MY_RATINGS_LIMIT), each with its notice and appeal dates, its appeals and the village's
    answers, and whether the household may appeal it today. Two queries: the ratings, then
    their appeals."""
    today = today or business_date()
    ratings = list(
        session.scalars(
            select(Rating)
            .where(
                Rating.subject_id == subject.id,
                Rating.status.not_in(HIDDEN_RATING_STATUSES),
            )
            .order_by(Rating.id.desc())
            .limit(MY_RATINGS_LIMIT)
        )
    )
    if not ratings:
        return []
    appeals: dict[int, list[RatingAppeal]] = {}
    for appeal in session.scalars(
        select(RatingAppeal)
        .where(RatingAppeal.rating_id.in_([r.id for r in ratings]))
        .order_by(RatingAppeal.id)
    ):
        appeals.setdefault(appeal.rating_id, []).append(appeal)
    levels = Levels(session, subject)
    out = []
    for rating in ratings:
        its_appeals = appeals.get(rating.id, [])
        has_open = any(a.status == "open" for a in its_appeals)
        out.append(
            {
                "id": rating.id,
                "level": (
                    levels.named(rating.level_code, rating.level_rank)
                    if rating.level_code is not None and rating.level_rank is not None
                    else None
                ),
                "status": rating.status,
                "status_label": rating_status_label(rating.status),
                "origin": rating.origin,
                "notice_from": rating.notice_from,
                "notice_until": rating.notice_until,
                "appeal_until": rating.appeal_until,
                "effective_from": rating.effective_from,
                "appealable": appeal_window_open(rating, today) and not has_open,
                "appeals": [appeal_view(a) for a in its_appeals],
            }
        )
    return out


def file_my_appeal(
    session: Session,
    subject: CreditSubject,
    rating_id: int,
    grounds: str,
    today: date | None = None,
) -> dict[str, Any]:
    """The household appeals (复议) one of its own ratings. Another household's rating, or
    one it cannot see (a draft, a withdrawn one), is not_found, like a missing one; the
    window and a second open appeal are file_appeal's to refuse (invalid_state)."""
    text = (grounds or "").strip()
    problem = None
    if not text:
        problem = GROUNDS_REQUIRED
    elif len(text) > GROUNDS_MAX_CHARS:
        problem = GROUNDS_TOO_LONG
    elif "\x00" in text:  # PostgreSQL text cannot hold it: refused here, not by the database
        problem = GROUNDS_BAD_CHARACTER
    if problem is not None:
        raise ValidationFailed(details={"fields": {"grounds": [problem]}})
    if not 0 < rating_id <= _MAX_ID:
        raise NotFound()
    rating = session.scalar(
        select(Rating).where(
            Rating.id == rating_id,
            Rating.subject_id == subject.id,
            Rating.status.not_in(HIDDEN_RATING_STATUSES),
        )
    )
    if rating is None:
        raise NotFound()
    appeal = file_appeal(
        session, None, rating, text, today or business_date(), filed_by=f"household:{subject.ref}"
    )
    return appeal_view(appeal)


# ---------------------------------------------------------------- code, PIN, card


def fresh_code(session: Session, subject: CreditSubject) -> codes.IssuedCode:
    """A new dynamic code (the first call ever may create the signing key: commit after)."""
    return codes.sign_dynamic_code(session, subject)


def change_pin(session: Session, subject: CreditSubject, old_pin: str, new_pin: str) -> None:
    """Old PIN checked like a card payment's (5 wrong: locked 30 minutes); weak new PIN:
    pin_too_weak. A refusal that counted a failure must still be committed by the caller."""
    codes.change_pin(session, subject, old_pin, new_pin)


def report_card_lost(session: Session, subject: CreditSubject) -> dict[str, Any]:
    card = codes.report_lost(session, subject)
    return {
        "serial": codes.format_serial(card.serial),
        "status": card.status,
        "revoked_at": as_aware(card.revoked_at) if card.revoked_at else None,
    }
