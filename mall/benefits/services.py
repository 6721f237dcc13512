"""The benefit list: matching by partner and level, recording uses under per-household
limits, and the staff operations (region-scoped, audited). Services take a Session and only
flush; the caller commits.

Matching rule, in one place (`_scope_covers`, `_partner_matches`): a benefit's scope (its
county, or one township of it) must contain both the partner and the household; the partner
must be the benefit's named partner or of its category; the household's effective level rank
(rated, rating still valid, household active) must reach `min_level_rank`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import BindParameter, Date, Select, and_, bindparam, case, func, or_, select
from sqlalchemy.orm import Session

from mall.audit import services as audit
from mall.benefits.models import BENEFIT_KINDS, FUNDERS, Benefit, BenefitUse
from mall.cache import HotCache, detached_copy
from mall.clock import business_date, utcnow
from mall.codes.services import check_code_pin, verify_code
from mall.db import lock_row
from mall.errors import Conflict, Forbidden, NotFound, ValidationFailed
from mall.models_common import check_bill_fen
from mall.partners.models import PARTNER_CATEGORIES, Partner
from mall.regions.models import Region
from mall.subjects.models import CreditSubject
from mall.users import policy
from mall.users.models import User
from mall.users.scope import COUNTY_ROLES

EDITABLE_FIELDS = (
    "min_level_rank",
    "kind",
    "percent_bp",
    "cap_fen",
    "fixed_fen",
    "title_zh",
    "title_en",
    "description",
    "description_en",
    "limit_per_day",
    "limit_per_month",
    "limit_per_year",
    "one_at_a_time",
    "valid_from",
    "valid_until",
    "funded_by",
    "active",
)


def _bad(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(details={"fields": {field: [message]}})


# ---------------------------------------------------------------- matching


def effective_rank(subject: CreditSubject, today: date) -> int | None:
    """The household's level rank today: None when unrated, expired, frozen or revoked."""
    if subject.status != "active" or subject.level_rank is None or subject.level_code is None:
        return None
    if subject.level_valid_until is not None and subject.level_valid_until < today:
        return None
    return subject.level_rank


def _valid_on(today: date | BindParameter[date]) -> Any:
    return and_(
        Benefit.active.is_(True),
        Benefit.valid_from <= today,
        or_(Benefit.valid_until.is_(None), Benefit.valid_until >= today),
    )


def _scope_covers(benefit: Benefit, *, county_id: int, township_id: int) -> bool:
    return benefit.county_id == county_id and (
        benefit.township_id is None or benefit.township_id == township_id
    )


def _partner_matches(benefit: Benefit, partner: Partner) -> bool:
    if benefit.partner_id is not None:
        return benefit.partner_id == partner.id
    return benefit.partner_category == partner.category and _scope_covers(
        benefit, county_id=partner.county_id, township_id=partner.township_id
    )


def _is_current(benefit: Benefit, today: date) -> bool:
    return (
        benefit.active
        and benefit.valid_from <= today
        and (benefit.valid_until is None or benefit.valid_until >= today)
    )


# Built once: the current benefits of the partner's county that name this partner, or its
# category within a scope holding the partner.
_AT_PARTNER = (
    select(Benefit)
    .where(
        _valid_on(bindparam("today", type_=Date)),
        Benefit.county_id == bindparam("county_id"),
        or_(
            Benefit.partner_id == bindparam("partner_id"),
            and_(
                Benefit.partner_category == bindparam("category"),
                or_(
                    Benefit.township_id.is_(None),
                    Benefit.township_id == bindparam("township_id"),
                ),
            ),
        ),
    )
    .order_by(Benefit.min_level_rank.desc(), Benefit.id)
)
# What each partner offers today, for reads (a scan): kept up to HOT_CACHE_SECONDS per worker.
_offers = HotCache("benefit_offers", (Benefit, Partner))


def _current_at_partner(session: Session, partner: Partner, today: date) -> tuple[Benefit, ...]:
    """The current benefits that apply at this partner, at any level: detached read-only copies
    (shared by the requests of this worker; never change or attach them)."""

    def load() -> tuple[Benefit, ...]:
        found = session.scalars(
            _AT_PARTNER,
            {
                "today": today,
                "county_id": partner.county_id,
                "partner_id": partner.id,
                "category": partner.category,
                "township_id": partner.township_id,
            },
        )
        return tuple(detached_copy(b) for b in found)

    key = (partner.id, partner.category, partner.county_id, partner.township_id, today)
    return _offers.get_or_load(key, load)


def applicable_benefits(
    session: Session, *, partner: Partner, subject: CreditSubject, today: date | None = None
) -> list[Benefit]:
    """The benefits this household may be granted at this partner today (what the till shows
    after a scan), most valuable level first. Empty for an unrated or suspended household.
    Read-only copies, possibly up to HOT_CACHE_SECONDS old (mall/cache.py)."""
    today = today or business_date()
    rank = effective_rank(subject, today)
    if rank is None or not partner.active:
        return []
    if subject.county_id != partner.county_id:
        return []
    return [
        b
        for b in _current_at_partner(session, partner, today)
        if b.min_level_rank <= rank
        and _scope_covers(b, county_id=subject.county_id, township_id=subject.township_id)
    ]


@dataclass(frozen=True)
class HouseholdBenefit:
    """A benefit the household may use, with the partners where it applies."""

    benefit: Benefit
    partners: list[Partner]


def household_benefits(
    session: Session, subject: CreditSubject, today: date | None = None
) -> list[HouseholdBenefit]:
    """The benefit list for the household's level: every current benefit whose scope covers
    the household, with the active partners (of its township and county) where it applies.
    Unrated or suspended households get none."""
    today = today or business_date()
    rank = effective_rank(subject, today)
    if rank is None:
        return []
    benefits = list(
        session.scalars(
            select(Benefit)
            .where(
                _valid_on(today),
                Benefit.county_id == subject.county_id,
                or_(Benefit.township_id.is_(None), Benefit.township_id == subject.township_id),
                Benefit.min_level_rank <= rank,
            )
            .order_by(Benefit.partner_category, Benefit.min_level_rank.desc(), Benefit.id)
        )
    )
    if not benefits:
        return []
    partners = list(
        session.scalars(
            select(Partner)
            .where(Partner.county_id == subject.county_id, Partner.active.is_(True))
            .order_by(
                # the household's own township first
                case((Partner.township_id == subject.township_id, 0), else_=1),
                Partner.name,
            )
        )
    )
    return [HouseholdBenefit(b, [p for p in partners if _partner_matches(b, p)]) for b in benefits]


# ---------------------------------------------------------------- uses


def _check_amount(amount_fen: int | None) -> None:
    if amount_fen is not None:
        check_bill_fen(amount_fen)


def discount_for(benefit: Benefit, amount_fen: int | None) -> int:
    """What the benefit is worth in fen on a bill of `amount_fen`, from the benefit's own
    terms: the till reports the bill, never the value.

    percent: floor(amount * bp / 10000), at most the cap; fixed: the fixed sum, at most the
    amount; free item: the bill, at most the cap (the most the item is worth; a line written
    before items carried a cap counts 0 until an admin sets one), 0 when no bill is given;
    waivers and priority service: 0."""
    if benefit.kind == "percent_discount":
        if amount_fen is None:
            raise _bad("amount_fen", "required for a percent discount")
        value = amount_fen * (benefit.percent_bp or 0) // 10000
        return min(value, benefit.cap_fen) if benefit.cap_fen is not None else value
    if benefit.kind == "fixed_discount":
        fixed = benefit.fixed_fen or 0
        return fixed if amount_fen is None else min(fixed, amount_fen)
    if benefit.kind == "free_item":
        return min(amount_fen or 0, benefit.cap_fen or 0)
    return 0


def _period_starts(today: date) -> dict[str, date]:
    return {"day": today, "month": today.replace(day=1), "year": today.replace(month=1, day=1)}


def usage_counts(
    session: Session, benefit: Benefit, subject_id: int, today: date
) -> dict[str, int]:
    """Uses of `benefit` by the household in the current day, month and year, and open."""
    starts = _period_starts(today)
    row = session.execute(
        select(
            *(
                func.coalesce(
                    func.sum(case((BenefitUse.business_date >= start, 1), else_=0)), 0
                ).label(period)
                for period, start in starts.items()
            )
        ).where(
            BenefitUse.benefit_id == benefit.id,
            BenefitUse.subject_id == subject_id,
            BenefitUse.business_date >= starts["year"],
        )
    ).one()
    counts = {period: int(getattr(row, period)) for period in starts}
    # Open uses may date from an earlier year: counted apart, over all time.
    counts["open"] = int(
        session.scalar(
            select(func.count(BenefitUse.id)).where(
                BenefitUse.benefit_id == benefit.id,
                BenefitUse.subject_id == subject_id,
                BenefitUse.closed_at.is_(None),
            )
        )
        or 0
    )
    return counts


def _has_limits(benefit: Benefit) -> bool:
    return benefit.one_at_a_time or any(
        (benefit.limit_per_day, benefit.limit_per_month, benefit.limit_per_year)
    )


def _check_limits(session: Session, benefit: Benefit, subject: CreditSubject, today: date) -> None:
    """Count the household's uses against the benefit's limits. The caller holds the
    household's row lock, so two tills granting the same benefit at once count each other."""
    counts = usage_counts(session, benefit, subject.id, today)
    if benefit.one_at_a_time and counts["open"] > 0:
        raise Conflict("benefit_limit_reached", details={"period": "one_at_a_time", "limit": 1})
    for period, limit in (
        ("day", benefit.limit_per_day),
        ("month", benefit.limit_per_month),
        ("year", benefit.limit_per_year),
    ):
        if limit is not None and counts[period] >= limit:
            raise Conflict(
                "benefit_limit_reached",
                details={"period": period, "limit": limit, "used": counts[period]},
            )


def record_benefit_use(
    session: Session,
    *,
    benefit_id: int,
    partner: Partner,
    subject: CreditSubject,
    amount_fen: int | None = None,
    terminal_id: int | None = None,
    actor: str,
    today: date | None = None,
) -> BenefitUse:
    """Record that `partner` granted the benefit to the household. Locks the household's
    row until the transaction ends and judges it as read under that lock.

    `amount_fen` is the bill the till reports (0 to MAX_BILL_FEN); what the use is worth
    (`discount_fen`) is computed from the benefit's terms (`discount_for`). The caller has
    established that the household is present (`grant_benefit`: a dynamic code, or a card
    and its PIN). `terminal_id` is the terminal's row id (terminals.id), None for a staff
    page; `actor` a label such as "terminal:T1A2..." or "cashier:12". Raises not_found (404)
    for an unknown benefit or one of another county, holder_suspended, partner_not_eligible,
    benefit_not_applicable (inactive, outside its dates, household outside its scope),
    level_too_low (403), validation_error (400) and benefit_limit_reached (409)."""
    _check_amount(amount_fen)
    today = today or business_date()
    # The household's row first, locked until commit and read again: its status and level
    # are judged as they are now, not as the caller loaded them, and a suspension or a
    # re-rating committing at the same moment either waits for this use or is seen by it;
    # it also serialises the household's uses for the limits (SQLite: writers are serial).
    lock_row(session, subject)
    benefit = session.get(Benefit, benefit_id)
    if benefit is None or benefit.county_id != partner.county_id:
        raise NotFound(details={"benefit_id": benefit_id})
    if subject.status != "active":
        raise Forbidden("holder_suspended")
    if not _partner_matches(benefit, partner) or not partner.active:
        raise Forbidden("partner_not_eligible")
    if not _is_current(benefit, today) or not _scope_covers(
        benefit, county_id=subject.county_id, township_id=subject.township_id
    ):
        raise Forbidden("benefit_not_applicable")
    rank = effective_rank(subject, today)
    if rank is None or rank < benefit.min_level_rank:
        raise Forbidden(
            "level_too_low", details={"min_level_rank": benefit.min_level_rank, "rank": rank}
        )
    discount = discount_for(benefit, amount_fen)
    if _has_limits(benefit):
        _check_limits(session, benefit, subject, today)
    now = utcnow()
    use = BenefitUse(
        benefit_id=benefit.id,
        subject_id=subject.id,
        partner_id=partner.id,
        terminal_id=terminal_id,
        county_id=partner.county_id,
        township_id=partner.township_id,
        business_date=today,
        amount_fen=amount_fen,
        discount_fen=discount,
        funded_by=benefit.funded_by,
        actor=actor[:100],
        created_at=now,
        closed_at=None if benefit.one_at_a_time else now,
    )
    session.add(use)
    session.flush()
    return use


def grant_benefit(
    session: Session,
    *,
    code: object,
    pin: str | None,
    benefit_id: int,
    partner: Partner,
    amount_fen: int | None = None,
    terminal_id: int | None = None,
    actor: str,
    today: date | None = None,
) -> tuple[BenefitUse, CreditSubject]:
    """A till grants a benefit to the holder of a scanned code: the code is verified, a card
    code needs the household PIN exactly as a payment does (`check_code_pin`: pin_required,
    pin_invalid, pin_locked, the failures counted and kept), then the use is recorded
    (`record_benefit_use`). A dynamic code is not spent: the same code may pay the bill.
    Returns the use and the household."""
    _check_amount(amount_fen)
    verified = verify_code(session, code)
    check_code_pin(session, verified, pin)
    use = record_benefit_use(
        session,
        benefit_id=benefit_id,
        partner=partner,
        subject=verified.subject,
        amount_fen=amount_fen,
        terminal_id=terminal_id,
        actor=actor,
        today=today,
    )
    return use, verified.subject


def close_benefit_use(session: Session, *, use_id: int, partner: Partner) -> BenefitUse:
    """End an open use of a one-at-a-time benefit (the book is back, the deposit case is
    closed) so the household may use it again. Closing a closed use changes nothing."""
    use = session.get(BenefitUse, use_id)
    if use is None or use.partner_id != partner.id:
        raise NotFound(details={"use_id": use_id})
    if use.closed_at is None:
        use.closed_at = utcnow()
        session.flush()
    return use


# ---------------------------------------------------------------- staff operations


def _visible(stmt: Select[Any], viewer: User) -> Select[Any]:
    """County roles see their county's list; township roles see county-wide benefits and
    their own township's."""
    stmt = stmt.where(Benefit.county_id == viewer.county_id)
    if viewer.role in COUNTY_ROLES:
        return stmt
    return stmt.where(or_(Benefit.township_id.is_(None), Benefit.township_id == viewer.township_id))


def _can_see(viewer: User, benefit: Benefit) -> bool:
    if benefit.county_id != viewer.county_id:
        return False
    return viewer.role in COUNTY_ROLES or benefit.township_id in (None, viewer.township_id)


def _ensure_can_edit(viewer: User, *, county_id: int, township_id: int | None) -> None:
    """County admins edit their county's list; township admins only their township's lines."""
    policy.ensure(policy.may_edit_benefit(viewer, county_id=county_id, township_id=township_id))


def get_benefit(session: Session, viewer: User, benefit_id: int) -> Benefit:
    benefit = session.get(Benefit, benefit_id)
    if benefit is None or not _can_see(viewer, benefit):
        raise NotFound()
    return benefit


def list_benefits(
    session: Session,
    viewer: User,
    *,
    active: bool | None = None,
    partner_id: int | None = None,
    category: str | None = None,
    township_id: int | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[Benefit]:
    """Newest first, keyset-paginated on id, within the viewer's region."""
    stmt = _visible(select(Benefit), viewer)
    if active is not None:
        stmt = stmt.where(Benefit.active.is_(active))
    if partner_id is not None:
        stmt = stmt.where(Benefit.partner_id == partner_id)
    if category is not None:
        stmt = stmt.where(Benefit.partner_category == category)
    if township_id is not None:
        stmt = stmt.where(Benefit.township_id == township_id)
    if after_id is not None:
        stmt = stmt.where(Benefit.id < after_id)
    return list(session.scalars(stmt.order_by(Benefit.id.desc()).limit(limit)))


def _check_terms(values: dict[str, Any]) -> None:
    """Cross-field rules (the database CHECKs say the same; these name the field)."""
    kind = values.get("kind")
    if kind not in BENEFIT_KINDS:
        raise _bad("kind", "one of " + ", ".join(BENEFIT_KINDS))
    if values.get("funded_by") not in FUNDERS:
        raise _bad("funded_by", "one of " + ", ".join(FUNDERS))
    if kind == "percent_discount" and not 1 <= (values.get("percent_bp") or 0) <= 10000:
        raise _bad("percent_bp", "1 to 10000 basis points for a percent discount")
    if kind == "fixed_discount" and not (values.get("fixed_fen") or 0) > 0:
        raise _bad("fixed_fen", "more than 0 for a fixed discount")
    # What a free item is worth comes from the list, never the till: a ceiling. (A line
    # written before this rule has none and counts 0; it may still be taken off the list.)
    if kind == "free_item" and values.get("active") and not (values.get("cap_fen") or 0) > 0:
        raise _bad("cap_fen", "the most the free item is worth, more than 0")
    if kind != "percent_discount":
        values["percent_bp"] = None
    if kind not in ("percent_discount", "free_item"):
        values["cap_fen"] = None
    if kind != "fixed_discount":
        values["fixed_fen"] = None
    if (values.get("min_level_rank") or 0) < 1:
        raise _bad("min_level_rank", "1 or more")
    until, since = values.get("valid_until"), values.get("valid_from")
    if until is not None and since is not None and until < since:
        raise _bad("valid_until", "on or after valid_from")
    if not (values.get("title_zh") or "").strip():
        raise _bad("title_zh", "required")


def snapshot(benefit: Benefit) -> dict[str, Any]:
    """The benefit's terms as plain values (for the audit log: nothing personal here)."""
    out: dict[str, Any] = {
        "county_id": benefit.county_id,
        "township_id": benefit.township_id,
        "partner_id": benefit.partner_id,
        "partner_category": benefit.partner_category,
    }
    for name in EDITABLE_FIELDS:
        value = getattr(benefit, name)
        out[name] = value.isoformat() if isinstance(value, date) else value
    return out


def _resolve_scope(
    session: Session, actor: User, data: dict[str, Any]
) -> tuple[int, int | None, int | None, str | None]:
    """(county_id, township_id, partner_id, partner_category) from the request."""
    partner_id, category = data.get("partner_id"), data.get("partner_category")
    if (partner_id is None) == (category is None):
        raise _bad("partner_id", "give exactly one of partner_id and partner_category")
    if partner_id is not None:
        partner = session.get(Partner, partner_id)
        if partner is None or partner.county_id != actor.county_id:
            raise _bad("partner_id", "unknown partner")
        return partner.county_id, partner.township_id, partner.id, None
    if category not in PARTNER_CATEGORIES:
        raise _bad("partner_category", "one of " + ", ".join(PARTNER_CATEGORIES))
    township_id = data.get("township_id")
    if township_id is None and actor.role != "county_admin":
        township_id = actor.township_id  # a township admin's lines are their township's
    if township_id is not None:
        town = session.get(Region, township_id)
        if town is None or town.kind != "township" or town.county_id != actor.county_id:
            raise _bad("township_id", "a township of your county")
    if actor.county_id is None:
        raise Forbidden()
    return actor.county_id, township_id, None, category


def create_benefit(session: Session, actor: User, data: dict[str, Any]) -> Benefit:
    county_id, township_id, partner_id, category = _resolve_scope(session, actor, data)
    _ensure_can_edit(actor, county_id=county_id, township_id=township_id)
    values: dict[str, Any] = {
        "min_level_rank": 1,
        "title_en": "",
        "description": "",
        "description_en": "",
        "one_at_a_time": False,
        "valid_from": business_date(),
        "funded_by": "partner",
        "active": True,
    }
    values.update({k: v for k, v in data.items() if k in EDITABLE_FIELDS and v is not None})
    _check_terms(values)
    benefit = Benefit(
        county_id=county_id,
        township_id=township_id,
        partner_id=partner_id,
        partner_category=category,
        **values,
    )
    session.add(benefit)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="benefit.create",
        object_type="benefit",
        object_id=benefit.id,
        county_id=county_id,
        township_id=township_id,
        after=snapshot(benefit),
    )
    return benefit


def update_benefit(
    session: Session, actor: User, benefit: Benefit, changes: dict[str, Any]
) -> Benefit:
    """Change the terms (not the scope: a line for another place is a new line)."""
    if not _can_see(actor, benefit):
        raise NotFound()
    _ensure_can_edit(actor, county_id=benefit.county_id, township_id=benefit.township_id)
    before = snapshot(benefit)
    values = {name: getattr(benefit, name) for name in EDITABLE_FIELDS}
    values.update({k: v for k, v in changes.items() if k in EDITABLE_FIELDS})
    _check_terms(values)
    for name, value in values.items():
        setattr(benefit, name, value)
    benefit.updated_at = utcnow()
    session.flush()
    after = snapshot(benefit)
    audit.record(
        session,
        actor=actor,
        action="benefit.update",
        object_type="benefit",
        object_id=benefit.id,
        county_id=benefit.county_id,
        township_id=benefit.township_id,
        before={k: v for k, v in before.items() if after[k] != v},
        after={k: v for k, v in after.items() if before[k] != v},
    )
    return benefit


def deactivate_benefit(session: Session, actor: User, benefit: Benefit) -> Benefit:
    """Take the line off the list (uses stay recorded). Idempotent."""
    if not benefit.active:
        if not _can_see(actor, benefit):
            raise NotFound()
        return benefit
    return update_benefit(session, actor, benefit, {"active": False})


def list_uses(
    session: Session,
    viewer: User,
    *,
    benefit_id: int | None = None,
    partner_id: int | None = None,
    on: date | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[BenefitUse]:
    """Recorded uses within the viewer's region, newest first (keyset on id)."""
    stmt = select(BenefitUse).where(BenefitUse.county_id == viewer.county_id)
    if viewer.role not in COUNTY_ROLES:
        stmt = stmt.where(BenefitUse.township_id == viewer.township_id)
    if benefit_id is not None:
        stmt = stmt.where(BenefitUse.benefit_id == benefit_id)
    if partner_id is not None:
        stmt = stmt.where(BenefitUse.partner_id == partner_id)
    if on is not None:
        stmt = stmt.where(BenefitUse.business_date == on)
    if after_id is not None:
        stmt = stmt.where(BenefitUse.id < after_id)
    return list(session.scalars(stmt.order_by(BenefitUse.id.desc()).limit(limit)))
