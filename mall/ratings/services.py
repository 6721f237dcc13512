"""The rating lifecycle: draft -> notice -> (appeal -> re-review -> notice) -> effective ->
expired; downgrade and revocation at any time; re-rating (credit repair). Every step writes a
history row, and every staff action an audit entry, in the caller's transaction.

Dates: every function takes `today` (a business date, Asia/Shanghai) so tests and the job can
move time; it defaults to the current business date.

The household's current grade is cached on the subject (level_code, level_rank,
level_valid_until); only this module writes those columns. Money moves in integrity.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.audit import services as audit
from mall.clock import business_date, utcnow
from mall.db import add_unique, lock_row
from mall.errors import Conflict, NotFound, ValidationFailed
from mall.ratings import calculator, integrity
from mall.ratings.calculator import Reviewer, ReviewItem
from mall.ratings.models import OPEN_STATUSES, Rating, RatingAppeal, RatingHistory
from mall.ratings.schemes import Level, Scheme, get_scheme, period_for, scheme_for_kind
from mall.regions.models import Region
from mall.regions.services import effective_settings
from mall.subjects.models import CreditSubject
from mall.subjects.services import set_status
from mall.users.models import User
from mall.users.scope import ensure_can_write, ensure_visible

SYSTEM = "system"


def _today(today: date | None) -> date:
    return today or business_date()


def actor_label(actor: User | None) -> str:
    return f"{actor.username} ({actor.role})" if actor else SYSTEM


def village_of(session: Session, subject: CreditSubject) -> Region:
    village = session.get(Region, subject.village_id)
    assert village is not None  # a foreign key
    return village


# Kinds rated through this lifecycle; credit villages have their own (mall.villages).
RATED_KINDS = ("household", "business", "collective")


# Every scan and payment reads the holder's scheme; it changes a few times a year. Each
# process keeps what it read for a short while (an edit shows within SCHEME_CACHE_SECONDS).
SCHEME_CACHE_SECONDS = 30.0
_scheme_cache: dict[tuple[int, str], tuple[float, Scheme]] = {}


def scheme_of(session: Session, subject: CreditSubject) -> Scheme:
    """The scheme of the subject's kind in its village (households: the region's setting)."""
    key = (subject.village_id, subject.kind)
    cache = has_app_context() and not current_app.config.get("TESTING")
    ttl = SCHEME_CACHE_SECONDS if cache else 0.0
    cached = _scheme_cache.get(key)
    now = time.monotonic()
    if cached is not None and now - cached[0] < ttl:
        return cached[1]
    scheme = scheme_for_kind(session, village_of(session, subject), subject.kind)
    _scheme_cache[key] = (now, scheme)
    return scheme


# --- reads for the till and the apps -----------------------------------------------------


def current_level(
    session: Session, subject: CreditSubject, today: date | None = None
) -> Level | None:
    """The household's effective level today, or None (not rated, expired, frozen, revoked)."""
    if subject.level_code is None or subject.status != "active":
        return None
    if subject.level_valid_until is not None and subject.level_valid_until < _today(today):
        return None
    return scheme_of(session, subject).level(subject.level_code)


def discount_rate_bp(session: Session, subject: CreditSubject, today: date | None = None) -> int:
    """The share of a sale paid from integrity money, in basis points, for the household's
    current level under its region's scheme; 0 when it has no effective level."""
    level = current_level(session, subject, today)
    return level.discount_bp if level else 0


def level_info(
    session: Session, subject: CreditSubject, today: date | None = None
) -> dict[str, Any] | None:
    """{code, label, label_en, rank, credit_household} of the current level, or None."""
    level = current_level(session, subject, today)
    if level is None:
        return None
    return {
        "code": level.code,
        "label": level.label_zh,
        "label_en": level.label_en,
        "rank": level.rank,
        "credit_household": level.credit_household,
    }


# --- drafting ------------------------------------------------------------------------------


@dataclass
class ScoreInput:
    """What a review produces: civility items and reviewers, and the other components."""

    items: list[ReviewItem] = field(default_factory=list)
    reviewers: list[Reviewer] = field(default_factory=list)
    visit_score: float | None = None
    points_score: float | None = None
    score: float | None = None  # a final score given outright (upstream), skips the calculator


def compute_score(
    session: Session, village: Region, data: ScoreInput
) -> tuple[float, dict[str, Any]]:
    if data.score is not None:
        if not 0 <= data.score <= 100:
            raise ValidationFailed(details={"fields": {"score": ["0 to 100"]}})
        return round(data.score, 2), {"given": data.score}
    settings = effective_settings(session, village)
    review = calculator.civility_review(data.items, data.reviewers)
    components: dict[str, float] = {"civility": review.score}
    if data.visit_score is not None:
        components["visit"] = data.visit_score
    if data.points_score is not None:
        components["points"] = data.points_score
    weights = settings.get("rating_score_weights") or calculator.DEFAULT_WEIGHTS
    score = calculator.rating_score(components, weights)
    detail = {
        "civility": review.as_dict(),
        "items": [vars(i) for i in data.items],
        "components": components,
        "weights": weights,
    }
    return score, detail


def _history(
    session: Session,
    rating: Rating,
    action: str,
    from_status: str | None,
    actor: str,
    today: date,
    note: str = "",
) -> None:
    session.add(
        RatingHistory(
            rating_id=rating.id,
            subject_id=rating.subject_id,
            action=action,
            from_status=from_status,
            to_status=rating.status,
            level_code=rating.level_code,
            actor=actor,
            note=note[:500],
            on_date=today,
        )
    )


def _audit(
    session: Session, actor: User | None, action: str, rating: Rating, note: str = "", **after: Any
) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        object_type="rating",
        object_id=rating.id,
        county_id=rating.county_id,
        township_id=rating.township_id,
        after={"status": rating.status, "level": rating.level_code, **after},
        note=note,
    )


def _open_rating(session: Session, subject_id: int) -> Rating | None:
    return session.scalar(
        select(Rating).where(Rating.subject_id == subject_id, Rating.status.in_(OPEN_STATUSES))
    )


def effective_rating(session: Session, subject_id: int, *, lock: bool = False) -> Rating | None:
    """The household's effective rating. With `lock`, its row is locked until the end of the
    transaction (see `_lock_effective`)."""
    if lock:
        return _lock_effective(session, [subject_id]).get(subject_id)
    return session.scalar(
        select(Rating).where(Rating.subject_id == subject_id, Rating.status == "effective")
    )


def _lock_effective(session: Session, subject_ids: list[int]) -> dict[int, Rating]:
    """The households' effective ratings, locked (in id order) until the end of the
    transaction, by household.

    Read again after the lock until what is locked is what was there: a downgrade, a
    revocation or an activation of the same household that committed while this waited
    ended the rating it waited on and made a new one, which that statement's snapshot could
    not see. Taken as current, the old rating would be ended twice, or the new one missed
    (a second effective rating: a unique-index 500, failing a whole activation job)."""
    found = (
        select(Rating)
        .where(Rating.subject_id.in_(subject_ids), Rating.status == "effective")
        .order_by(Rating.id)
    )
    for _ in range(5):
        there = set(session.scalars(found.with_only_columns(Rating.id)))
        locked = session.scalars(
            found.with_for_update().execution_options(populate_existing=True)
        ).all()
        if {r.id for r in locked} == there:
            return {r.subject_id: r for r in locked}
    raise Conflict("invalid_state", details={"reason": "the rating is being changed; retry"})


def _locked(session: Session, rating: Rating, *allowed: str) -> None:
    """Lock the rating's row and read it again, then check its status: a second step on the
    same rating at the same moment (two staff, a double click) waits here, then sees the
    first one's status and is refused with invalid_state instead of writing over it."""
    lock_row(session, rating)
    if rating.status not in allowed:
        raise Conflict("invalid_state", details={"status": rating.status})


def draft_rating(
    session: Session,
    actor: User | None,
    subject: CreditSubject,
    data: ScoreInput,
    *,
    origin: str = "review",
    period_start: date | None = None,
    today: date | None = None,
) -> Rating:
    """Score a household and draft its rating (level from the scheme's thresholds)."""
    day = _today(today)
    if actor is not None:
        ensure_visible(actor, subject, "holder_not_found")
        ensure_can_write(actor, village_id=subject.village_id)
    if subject.kind not in RATED_KINDS:
        raise ValidationFailed(details={"fields": {"subject": [f"one of {RATED_KINDS}"]}})
    if _open_rating(session, subject.id) is not None:
        raise Conflict("invalid_state", details={"reason": "a rating is already under way"})
    village = village_of(session, subject)
    settings = effective_settings(session, village)
    scheme = scheme_of(session, subject)
    score, detail = compute_score(session, village, data)
    level = scheme.level_for_score(score)
    kind = settings.get("rating_period") or "year"
    start, end = period_for(kind, period_start or day)
    rating = Rating(
        subject_id=subject.id,
        county_id=subject.county_id,
        township_id=subject.township_id,
        village_id=subject.village_id,
        scheme_code=scheme.code,
        level_code=level.code if level else None,
        level_rank=level.rank if level else None,
        score_centi=round(score * 100),
        score_detail=detail,
        origin=origin,
        status="draft",
        period_kind=kind,
        period_start=start,
        period_end=end,
        granted_fen=0,
        created_by=actor_label(actor),
    )
    # Two drafts of one household at once both pass the check above; the unique index
    # of open ratings refuses the second, answered as the check would (not a 500).
    add_unique(
        session,
        rating,
        Conflict("invalid_state", details={"reason": "a rating is already under way"}),
    )
    _history(session, rating, "drafted", None, actor_label(actor), day)
    if actor is not None:
        _audit(session, actor, f"rating.{origin}", rating, score=score)
    return rating


def get_rating(session: Session, rating_id: int, viewer: User | None = None) -> Rating:
    rating = session.get(Rating, rating_id)
    if rating is None:
        raise NotFound()
    return ensure_visible(viewer, rating) if viewer is not None else rating


def _notice_dates(settings: dict[str, Any], day: date) -> tuple[date, date]:
    notice_days = int(settings.get("notice_days", 7))
    appeal_days = int(settings.get("appeal_days", 10))
    notice_until = day + timedelta(days=max(notice_days, 1) - 1)
    return notice_until, notice_until + timedelta(days=appeal_days)


def post_notice(
    session: Session, actor: User | None, rating: Rating, today: date | None = None
) -> Rating:
    """Post a draft for public notice in its village (公示): `notice_days` days from today."""
    day = _today(today)
    if actor is not None:
        ensure_visible(actor, rating)
        ensure_can_write(actor, village_id=rating.village_id)
    _locked(session, rating, "draft")
    settings = effective_settings(session, session.get(Region, rating.village_id))  # type: ignore[arg-type]
    rating.notice_from = day
    rating.notice_until, rating.appeal_until = _notice_dates(settings, day)
    rating.status = "notice"
    session.flush()
    _history(session, rating, "posted", "draft", actor_label(actor), day)
    if actor is not None:
        _audit(
            session, actor, "rating.notice", rating, notice_until=rating.notice_until.isoformat()
        )
    return rating


def withdraw(
    session: Session, actor: User, rating: Rating, reason: str, today: date | None = None
) -> Rating:
    """Withdraw a draft or a rating under notice (a mistake), with a reason."""
    ensure_visible(actor, rating)
    ensure_can_write(actor, village_id=rating.village_id)
    _locked(session, rating, "draft", "notice")
    _require_reason(reason)
    before = rating.status
    rating.status, rating.ended_on, rating.end_reason = "withdrawn", _today(today), reason
    session.flush()
    _history(session, rating, "withdrawn", before, actor_label(actor), _today(today), reason)
    _audit(session, actor, "rating.withdraw", rating, reason)
    return rating


def notice_list(
    session: Session, viewer: User, village_id: int, today: date | None = None
) -> list[dict[str, Any]]:
    """The village's notice board: every rating under notice or appeal, by household, with
    the masked name, level, score and dates. Data for the screen and for printing."""
    village = ensure_visible(viewer, session.get(Region, village_id))
    schemes: dict[str, Scheme] = {}
    rows = session.execute(
        select(Rating, CreditSubject.ref, CreditSubject.name_masked)
        .join(CreditSubject, CreditSubject.id == Rating.subject_id)
        .where(Rating.village_id == village_id, Rating.status.in_(("notice", "appealed")))
        .order_by(Rating.id)
    ).all()
    out = []
    for rating, ref, name in rows:
        if rating.scheme_code not in schemes:
            schemes[rating.scheme_code] = get_scheme(session, village.county_id, rating.scheme_code)
        level = schemes[rating.scheme_code].level(rating.level_code)
        out.append(
            {
                "rating_id": rating.id,
                "household_ref": ref,
                "household_name": name,
                "level_code": rating.level_code,
                "level_label": level.label_zh if level else "未评级",
                "score": rating.score_centi / 100,
                "status": rating.status,
                "notice_from": rating.notice_from,
                "notice_until": rating.notice_until,
                "appeal_until": rating.appeal_until,
                "re_review": rating.re_reviewed,
            }
        )
    return out


# --- appeals -----------------------------------------------------------------------------


def appeal_window_open(rating: Rating, day: date) -> bool:
    """Whether an appeal (复议) against the rating may be filed on `day`: while it is under
    notice, or once effective up to its `appeal_until` (the notice's end plus `appeal_days`).
    A re-review result is final. Whether an appeal is already open is not checked here."""
    if rating.re_reviewed:
        return False
    if rating.status == "notice":
        return True
    return (
        rating.status == "effective"
        and rating.appeal_until is not None
        and day <= rating.appeal_until
    )


def file_appeal(
    session: Session,
    actor: User | None,
    rating: Rating,
    grounds: str,
    today: date | None = None,
    filed_by: str | None = None,
) -> RatingAppeal:
    """Record a household's appeal (复议) with its grounds: while under notice, or within
    `appeal_days` after the notice ended. A re-review result is final."""
    day = _today(today)
    if actor is not None:
        ensure_visible(actor, rating)
        ensure_can_write(actor, village_id=rating.village_id)
    if not grounds.strip():
        raise ValidationFailed(details={"fields": {"grounds": ["required"]}})
    # Lock and re-read the rating: a second appeal filed at the same moment waits, then
    # sees the first (the rating appealed, or an open appeal) instead of adding another.
    lock_row(session, rating)
    if not appeal_window_open(rating, day):
        raise Conflict("invalid_state", details={"reason": "appeal window closed"})
    if session.scalar(
        select(RatingAppeal.id).where(
            RatingAppeal.rating_id == rating.id, RatingAppeal.status == "open"
        )
    ):
        raise Conflict("invalid_state", details={"reason": "an appeal is already open"})
    settings = effective_settings(session, session.get(Region, rating.village_id))  # type: ignore[arg-type]
    appeal = RatingAppeal(
        rating_id=rating.id,
        subject_id=rating.subject_id,
        county_id=rating.county_id,
        township_id=rating.township_id,
        grounds=grounds.strip(),
        filed_on=day,
        answer_due=day + timedelta(days=int(settings.get("appeal_answer_days", 5))),
        status="open",
        filed_by=filed_by or actor_label(actor),
    )
    session.add(appeal)
    before = rating.status
    if rating.status == "notice":
        rating.status = "appealed"  # activation waits for the answer
    session.flush()
    _history(session, rating, "appealed", before, appeal.filed_by, day, grounds)
    if actor is not None:
        _audit(session, actor, "rating.appeal", rating, grounds, appeal_id=appeal.id)
    return appeal


def answer_appeal(
    session: Session,
    actor: User,
    appeal: RatingAppeal,
    answer: str,
    new_score: ScoreInput | None = None,
    today: date | None = None,
) -> RatingAppeal:
    """The village's answer. With a new score whose level differs, the re-review result is a
    new rating posted for notice again (it supersedes the appealed one when it takes
    effect); otherwise the rating is upheld and, if it was under notice, posted again."""
    day = _today(today)
    rating = get_rating(session, appeal.rating_id, actor)
    ensure_can_write(actor, village_id=rating.village_id)
    # Every step on an appeal locks its rating first (file_appeal too): a second answer at
    # the same moment waits here, then reads the appeal answered and is refused, instead of
    # answering again (a second re-review rating was a unique-index 500).
    lock_row(session, rating)
    session.refresh(appeal)
    if appeal.status != "open":
        raise Conflict("invalid_state", details={"status": appeal.status})
    if not answer.strip():
        raise ValidationFailed(details={"fields": {"answer": ["required"]}})
    subject = session.get(CreditSubject, rating.subject_id)
    assert subject is not None
    village = village_of(session, subject)
    settings = effective_settings(session, village)
    appeal.answer, appeal.answered_by, appeal.answered_at = (
        answer.strip(),
        actor_label(actor),
        utcnow(),
    )
    changed = None
    if new_score is not None:
        score, detail = compute_score(session, village, new_score)
        level = scheme_of(session, subject).level_for_score(score)
        if (level.code if level else None) != rating.level_code:
            changed = (score, detail, level)
    if changed is None:
        appeal.status = "upheld"
        if rating.status == "appealed":
            rating.status = "notice"
            rating.re_reviewed = True
            rating.notice_from = day
            rating.notice_until, rating.appeal_until = _notice_dates(settings, day)
            session.flush()
            _history(session, rating, "re_posted", "appealed", actor_label(actor), day, answer)
        _audit(session, actor, "rating.appeal.upheld", rating, answer, appeal_id=appeal.id)
        session.flush()
        return appeal
    score, detail, level = changed
    before = rating.status
    if rating.status == "appealed":
        rating.status, rating.ended_on, rating.end_reason = "superseded", day, "re-review"
        session.flush()
        _history(session, rating, "superseded", before, actor_label(actor), day, answer)
    result = Rating(
        subject_id=rating.subject_id,
        county_id=rating.county_id,
        township_id=rating.township_id,
        village_id=rating.village_id,
        scheme_code=rating.scheme_code,
        level_code=level.code if level else None,
        level_rank=level.rank if level else None,
        score_centi=round(score * 100),
        score_detail={**detail, "appeal_id": appeal.id},
        origin="re_review",
        status="notice",
        period_kind=rating.period_kind,
        period_start=rating.period_start,
        period_end=rating.period_end,
        re_reviewed=True,
        supersedes_id=rating.id,
        granted_fen=0,
        notice_from=day,
        created_by=actor_label(actor),
    )
    result.notice_until, result.appeal_until = _notice_dates(settings, day)
    session.add(result)
    session.flush()
    appeal.status, appeal.result_rating_id = "changed", result.id
    _history(session, result, "re_reviewed", None, actor_label(actor), day, answer)
    _audit(session, actor, "rating.appeal.changed", result, answer, appeal_id=appeal.id)
    session.flush()
    return appeal


# --- taking effect and ending ---------------------------------------------------------------


def _set_subject_level(subject: CreditSubject, rating: Rating | None) -> None:
    if rating is None or rating.level_code is None:
        subject.level_code = subject.level_rank = subject.level_valid_until = None
    else:
        subject.level_code = rating.level_code
        subject.level_rank = rating.level_rank
        subject.level_valid_until = rating.period_end


def activate_due(session: Session, today: date | None = None, *, limit: int = 20000) -> int:
    """Make effective every rating whose notice has ended without an open appeal; grant the
    integrity money (bulk, per township). Returns how many took effect."""
    day = _today(today)
    due = list(
        session.scalars(
            select(Rating)
            .where(Rating.status == "notice", Rating.notice_until < day)
            .order_by(Rating.township_id, Rating.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not due:
        return 0
    return activate(session, due, day)


def activate_rating(
    session: Session, actor: User, rating: Rating, today: date | None = None
) -> Rating:
    """An admin makes one rating effective now that its notice has ended without an appeal
    (the jobs command does the same for all of them). Scoped and audited."""
    day = _today(today)
    ensure_visible(actor, rating)
    ensure_can_write(actor, village_id=rating.village_id)
    lock_row(session, rating)
    if rating.status != "notice" or rating.notice_until is None or rating.notice_until >= day:
        raise Conflict(
            "invalid_state",
            details={"status": rating.status, "notice_until": str(rating.notice_until)},
        )
    activate(session, [rating], day, actor)
    _audit(session, actor, "rating.activate", rating, status=rating.status)
    return rating


def activate(session: Session, ratings: list[Rating], day: date, actor: User | None = None) -> int:
    subjects = {
        s.id: s
        for s in session.scalars(
            select(CreditSubject).where(CreditSubject.id.in_([r.subject_id for r in ratings]))
        )
    }
    previous = _lock_effective(session, list(subjects))
    label = actor_label(actor)
    changes: list[integrity.Change] = []
    taking_effect: list[Rating] = []
    for rating in ratings:
        if rating.period_end < day:
            rating.status, rating.ended_on, rating.end_reason = (
                "expired",
                day,
                "period over before notice ended",
            )
            _history(session, rating, "expired", "notice", label, day)
            continue
        prev = previous.get(rating.subject_id)
        if prev is not None:
            prev.status, prev.ended_on = "superseded", day
            prev.end_reason = f"superseded by rating {rating.id}"
            _history(session, prev, "superseded", "effective", label, day)
        taking_effect.append(rating)
    # The old ratings end before the new ones take effect: one effective rating per
    # household is checked row by row, and the flush orders rows by id, not by this rule (a
    # downgrade's rating is newer than the re-rating that replaces it).
    session.flush()
    for rating in taking_effect:
        subject = subjects[rating.subject_id]
        prev = previous.get(rating.subject_id)
        rating.status, rating.effective_from = "effective", day
        _set_subject_level(subject, rating)
        if subject.status == "frozen" and rating.origin == "re_rating":
            subject.status = "active"  # credit repair lifts the freeze of a revocation
        _history(session, rating, "effective", "notice", label, day)
        changes.append(integrity.Change(subject=subject, rating=rating, previous=prev))
    session.flush()
    integrity.apply_changes(session, changes, day, actor=label)
    return len(changes)


def expire_periods(session: Session, today: date | None = None, *, limit: int = 20000) -> int:
    """End every effective rating whose period is over; unused integrity money expires back to
    the township fund unless the region carries it over."""
    day = _today(today)
    due = list(
        session.scalars(
            select(Rating)
            .where(Rating.status == "effective", Rating.period_end < day)
            .order_by(Rating.township_id, Rating.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not due:
        return 0
    subjects = {
        s.id: s
        for s in session.scalars(
            select(CreditSubject).where(CreditSubject.id.in_([r.subject_id for r in due]))
        )
    }
    for rating in due:
        rating.status, rating.ended_on, rating.end_reason = "expired", day, "period ended"
        _set_subject_level(subjects[rating.subject_id], None)
        _history(session, rating, "expired", "effective", SYSTEM, day)
    session.flush()
    integrity.expire_unused(session, [subjects[r.subject_id] for r in due], due, day)
    return len(due)


def _require_reason(reason: str) -> None:
    if not reason or not reason.strip():
        raise ValidationFailed(details={"fields": {"reason": ["required"]}})


def downgrade(
    session: Session,
    actor: User,
    subject: CreditSubject,
    level_code: str,
    reason: str,
    today: date | None = None,
) -> Rating:
    """Lower the effective level at once (dishonesty), with a reason; the integrity money
    granted above the new level's amount is clawed back (as far as it is unspent)."""
    day = _today(today)
    ensure_visible(actor, subject, "holder_not_found")
    ensure_can_write(actor)
    _require_reason(reason)
    # Locked: a second downgrade (or a revocation) at the same moment waits, then finds the
    # rating ended and is refused (two downgrades both superseded it, and the second new
    # effective rating was a unique-index 500); after an activation it downgrades the new one.
    current = effective_rating(session, subject.id, lock=True)
    if current is None:
        raise Conflict("invalid_state", details={"reason": "no effective rating"})
    level = scheme_of(session, subject).level(level_code)
    if level is None or current.level_rank is None or level.rank >= current.level_rank:
        raise ValidationFailed(details={"fields": {"level_code": ["a lower level of the scheme"]}})
    current.status, current.ended_on, current.end_reason = "superseded", day, reason
    session.flush()
    _history(session, current, "superseded", "effective", actor_label(actor), day, reason)
    new = Rating(
        subject_id=subject.id,
        county_id=subject.county_id,
        township_id=subject.township_id,
        village_id=subject.village_id,
        scheme_code=current.scheme_code,
        level_code=level.code,
        level_rank=level.rank,
        score_centi=current.score_centi,
        score_detail={"downgraded_from": current.level_code, "reason": reason},
        origin="downgrade",
        status="effective",
        period_kind=current.period_kind,
        period_start=current.period_start,
        period_end=current.period_end,
        appeal_until=current.appeal_until,
        re_reviewed=True,
        effective_from=day,
        supersedes_id=current.id,
        granted_fen=current.granted_fen,
        created_by=actor_label(actor),
    )
    session.add(new)
    session.flush()
    _set_subject_level(subject, new)
    _history(session, new, "downgraded", None, actor_label(actor), day, reason)
    integrity.apply_changes(
        session,
        [integrity.Change(subject=subject, rating=new, previous=current)],
        day,
        actor=actor_label(actor),
    )
    _audit(session, actor, "rating.downgrade", new, reason, from_level=current.level_code)
    return new


def revoke(
    session: Session, actor: User, subject: CreditSubject, reason: str, today: date | None = None
) -> Rating:
    """Revoke the effective rating (dishonesty): the household loses its level, its spending
    is frozen (status frozen) and its integrity money balance is clawed back to the fund."""
    day = _today(today)
    ensure_visible(actor, subject, "holder_not_found")
    ensure_can_write(actor)
    _require_reason(reason)
    # Locked, as in downgrade: a second revocation at the same moment finds the rating
    # ended and is refused (two were both recorded, history and audit twice).
    current = effective_rating(session, subject.id, lock=True)
    if current is None:
        raise Conflict("invalid_state", details={"reason": "no effective rating"})
    current.status, current.ended_on, current.end_reason = "revoked", day, reason
    _set_subject_level(subject, None)
    set_status(session, subject, "frozen")  # which also ends the household's logins
    _history(session, current, "revoked", "effective", actor_label(actor), day, reason)
    integrity.claw_back(session, subject, current, day, actor_label(actor), reason)
    _audit(session, actor, "rating.revoke", current, reason)
    return current


def re_rate(
    session: Session,
    actor: User,
    subject: CreditSubject,
    data: ScoreInput,
    reason: str,
    today: date | None = None,
) -> Rating:
    """Credit repair (信用修复): a fresh rating through the usual notice; when it takes effect
    it replaces the current or revoked one and lifts a revocation's freeze."""
    _require_reason(reason)
    rating = draft_rating(session, actor, subject, data, origin="re_rating", today=today)
    rating.score_detail = {**rating.score_detail, "reason": reason}
    session.flush()
    return rating


def history(session: Session, subject_id: int) -> tuple[list[Rating], list[RatingHistory]]:
    ratings = list(
        session.scalars(select(Rating).where(Rating.subject_id == subject_id).order_by(Rating.id))
    )
    events = list(
        session.scalars(
            select(RatingHistory)
            .where(RatingHistory.subject_id == subject_id)
            .order_by(RatingHistory.id)
        )
    )
    return ratings, events
