"""The credit-village workflow (seed 002, 大化坪镇方案 "信用村评定程序"):

    apply (village) → town pre-review (township admin) → county re-review (county admin)
    → public notice of `credit_village_notice_days` days → official decision (a county admin
    other than the re-reviewer) → plaque; valid one year; renewal; rejection with reasons at
    every stage.

Each service checks the actor's role and region, refuses a step from the wrong status with
`invalid_state`, records the reviewer and time on the application, appends an event row and
writes an audit entry, all in the caller's transaction (it only flushes). `now` is injectable
so tests can move the clock; dates are business dates of `now`.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.audit import services as audit
from mall.clock import business_date, utcnow
from mall.db import lock_row
from mall.entities.services import ensure_village_subjects, village_subject_of
from mall.errors import Conflict, NotFound, ValidationFailed
from mall.ratings.schemes import scheme_for_kind
from mall.regions.models import Region
from mall.regions.services import effective_settings, serialize_on
from mall.users import policy
from mall.users.models import User
from mall.users.scope import ensure_can_write, ensure_visible, restrict
from mall.villages.models import (
    OPEN_APPLICATION_STATUSES,
    CreditVillageApplication,
    CreditVillageEvent,
)

RENEWAL_WINDOW_DAYS = 90  # a credit village may apply for renewal this long before expiry


def _label(actor: User) -> str:
    return f"{actor.username} ({actor.role})"


def _reason(text: str, field: str = "reason") -> str:
    text = (text or "").strip()
    if not text:
        raise ValidationFailed(details={"fields": {field: ["required"]}})
    return text[:1000]


# The status each step starts from; who may take it is `policy.may_take_village_step`.
STEP_FROM: dict[str, str] = {
    "town_review": "applied",
    "county_review": "town_passed",
    "notice": "county_passed",
    "decide": "notice",
}


def next_step(app: CreditVillageApplication) -> str | None:
    """The step the application waits for, if any (its stage forms show this one)."""
    return next((stage for stage, status in STEP_FROM.items() if status == app.status), None)


def _locked_state(session: Session, app: CreditVillageApplication, *allowed: str) -> None:
    """Lock the application's row and read it again, then check its status: a second review
    or decision of the same application at the same moment waits here, then sees the first
    one's status and is refused with invalid_state instead of writing over it."""
    lock_row(session, app)
    if app.status not in allowed:
        raise Conflict("invalid_state", details={"status": app.status, "expected": list(allowed)})


def _event(
    session: Session,
    actor: User | None,
    app: CreditVillageApplication,
    action: str,
    before: str | None,
    at: datetime,
    note: str = "",
) -> None:
    session.add(
        CreditVillageEvent(
            application_id=app.id,
            action=action,
            from_status=before,
            to_status=app.status,
            actor_id=actor.id if actor else None,
            actor_label=_label(actor) if actor else "system",
            note=note[:1000],
            at=at,
        )
    )
    session.flush()
    if actor is not None:
        audit.record(
            session,
            actor=actor,
            action=f"credit_village.{action}",
            object_type="credit_village_application",
            object_id=app.id,
            county_id=app.county_id,
            township_id=app.township_id,
            before={"status": before} if before else None,
            after={"status": app.status, "grade": app.grade_awarded or app.grade_applied},
            note=note,
        )


def _grade(session: Session, village: Region, grade: str) -> str:
    scheme = scheme_for_kind(session, village, "village")
    if scheme.level(grade) is None:
        raise ValidationFailed(details={"fields": {"grade": [lv.code for lv in scheme.levels]}})
    return grade


def get_application(
    session: Session, app_id: int, viewer: User | None = None
) -> CreditVillageApplication:
    app = session.get(CreditVillageApplication, app_id)
    if app is None:
        raise NotFound()
    if viewer is not None:
        ensure_visible(viewer, app)
        if viewer.role == "village_clerk" and viewer.village_id != app.village_id:
            raise NotFound()
    return app


def current_award(
    session: Session, village_id: int, today: date | None = None
) -> CreditVillageApplication | None:
    """The village's credit-village title in force today, if any."""
    day = today or business_date()
    return session.scalar(
        select(CreditVillageApplication)
        .where(
            CreditVillageApplication.village_id == village_id,
            CreditVillageApplication.status == "awarded",
            CreditVillageApplication.valid_from <= day,
            CreditVillageApplication.valid_until >= day,
        )
        .order_by(CreditVillageApplication.id.desc())
        .limit(1)
    )


def apply(
    session: Session,
    actor: User,
    village: Region,
    grade: str,
    statement: str = "",
    *,
    now: datetime | None = None,
) -> CreditVillageApplication:
    """The village applies (自主申报), filed by its clerk or a township/county admin. A
    village holding a title in force may apply only within RENEWAL_WINDOW_DAYS of its end;
    the application is then a renewal."""
    at = now or utcnow()
    day = business_date(at)
    ensure_visible(actor, village)
    ensure_can_write(actor, village_id=village.id)
    if village.kind != "village":
        raise ValidationFailed(details={"fields": {"village_id": ["must be a village"]}})
    _grade(session, village, grade)
    serialize_on(session, village.id)  # a concurrent apply then finds this one under way
    if session.scalar(
        select(CreditVillageApplication.id).where(
            CreditVillageApplication.village_id == village.id,
            CreditVillageApplication.status.in_(OPEN_APPLICATION_STATUSES),
        )
    ):
        raise Conflict("invalid_state", details={"reason": "an application is under way"})
    in_force = session.scalar(
        select(CreditVillageApplication)
        .where(
            CreditVillageApplication.village_id == village.id,
            CreditVillageApplication.status == "awarded",
        )
        .order_by(CreditVillageApplication.id.desc())
        .limit(1)
    )
    if (
        in_force is not None
        and in_force.valid_until is not None
        and in_force.valid_until - day > timedelta(days=RENEWAL_WINDOW_DAYS)
    ):
        raise Conflict(
            "invalid_state",
            details={"reason": "renewal opens 90 days before the title ends"},
        )
    subject = village_subject_of(session, village.id)
    if subject is None:
        _, subject = ensure_village_subjects(session, village)
    app = CreditVillageApplication(
        subject_id=subject.id,
        county_id=village.county_id,
        township_id=village.township_id,
        village_id=village.id,
        status="applied",
        grade_applied=grade,
        statement=statement.strip()[:2000],
        renewal_of_id=in_force.id if in_force else None,
        applied_by=actor.id,
        applied_at=at,
    )
    session.add(app)
    session.flush()
    _event(session, actor, app, "renewal_applied" if in_force else "applied", None, at, statement)
    return app


def _reject(
    session: Session,
    actor: User,
    app: CreditVillageApplication,
    stage: str,
    reason: str,
    at: datetime,
) -> CreditVillageApplication:
    before = app.status
    app.status = "rejected"
    app.rejected_stage, app.rejected_reason = stage, reason
    app.rejected_by, app.rejected_at = actor.id, at
    session.flush()
    _event(session, actor, app, f"rejected_{stage}", before, at, reason)
    return app


def town_review(
    session: Session,
    actor: User,
    app: CreditVillageApplication,
    *,
    approve: bool,
    opinion: str,
    now: datetime | None = None,
) -> CreditVillageApplication:
    """Township pre-review (乡镇初审): the township admin signs an opinion."""
    at = now or utcnow()
    policy.ensure(policy.may_take_village_step(actor, app, "town_review"))
    ensure_visible(actor, app)
    _locked_state(session, app, "applied")
    opinion = _reason(opinion, "opinion")
    app.town_reviewer_id, app.town_reviewed_at, app.town_opinion = actor.id, at, opinion
    if not approve:
        return _reject(session, actor, app, "town", opinion, at)
    app.status = "town_passed"
    session.flush()
    _event(session, actor, app, "town_passed", "applied", at, opinion)
    return app


def county_review(
    session: Session,
    actor: User,
    app: CreditVillageApplication,
    *,
    approve: bool,
    opinion: str,
    grade: str | None = None,
    now: datetime | None = None,
) -> CreditVillageApplication:
    """County re-review (县级复审); the reviewer may propose a lower grade than applied for."""
    at = now or utcnow()
    policy.ensure(policy.may_take_village_step(actor, app, "county_review"))
    ensure_visible(actor, app)
    _locked_state(session, app, "town_passed")
    opinion = _reason(opinion, "opinion")
    app.county_reviewer_id, app.county_reviewed_at, app.county_opinion = actor.id, at, opinion
    if not approve:
        return _reject(session, actor, app, "county", opinion, at)
    village = session.get(Region, app.village_id)
    assert village is not None
    if grade is not None:
        scheme = scheme_for_kind(session, village, "village")
        wanted, applied = (
            scheme.level(_grade(session, village, grade)),
            scheme.level(app.grade_applied),
        )
        assert wanted is not None
        assert applied is not None
        if wanted.rank > applied.rank:
            raise ValidationFailed(
                details={"fields": {"grade": ["not above the grade applied for"]}}
            )
    app.grade_awarded = grade or app.grade_applied  # proposed; final at the decision
    app.status = "county_passed"
    session.flush()
    _event(session, actor, app, "county_passed", "town_passed", at, opinion)
    return app


def post_notice(
    session: Session, actor: User, app: CreditVillageApplication, *, now: datetime | None = None
) -> CreditVillageApplication:
    """Public notice (社会公示) from today for `credit_village_notice_days` days."""
    at = now or utcnow()
    day = business_date(at)
    policy.ensure(policy.may_take_village_step(actor, app, "notice"))
    ensure_visible(actor, app)
    _locked_state(session, app, "county_passed")
    village = session.get(Region, app.village_id)
    assert village is not None
    days = max(int(effective_settings(session, village).get("credit_village_notice_days", 7)), 1)
    app.notice_posted_by = actor.id
    app.notice_from, app.notice_until = day, day + timedelta(days=days - 1)
    app.status = "notice"
    session.flush()
    _event(session, actor, app, "notice_posted", "county_passed", at, f"until {app.notice_until}")
    return app


def _add_year(day: date) -> date:
    try:
        return day.replace(year=day.year + 1) - timedelta(days=1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


def decide(
    session: Session,
    actor: User,
    app: CreditVillageApplication,
    *,
    approve: bool,
    decision_no: str = "",
    reason: str = "",
    now: datetime | None = None,
) -> CreditVillageApplication:
    """The official decision (发文认定) after the notice has run its course, by a county admin
    other than the re-reviewer. Approval awards the title for one year (a renewal starts the
    day after the title it renews ends) and a plaque serial; refusal (an objection upheld
    during the notice) needs a reason. Refusing may happen during the notice."""
    at = now or utcnow()
    day = business_date(at)
    policy.ensure(policy.may_act_at_village_step(actor, "decide"))
    ensure_visible(actor, app)
    _locked_state(session, app, "notice")
    policy.ensure(
        policy.may_take_village_step(actor, app, "decide"),
        "same_person",
        {"reason": "the re-reviewer cannot decide"},
    )
    if not approve:
        return _reject(session, actor, app, "notice", _reason(reason), at)
    assert app.notice_until is not None
    if day <= app.notice_until:
        raise Conflict(
            "invalid_state",
            details={
                "reason": "the public notice has not ended",
                "notice_until": str(app.notice_until),
            },
        )
    decision_no = _reason(decision_no, "decision_no")[:64]
    previous = (
        session.get(CreditVillageApplication, app.renewal_of_id) if app.renewal_of_id else None
    )
    start = day
    if previous is not None and previous.status == "awarded" and previous.valid_until is not None:
        start = max(day, previous.valid_until + timedelta(days=1))
        previous.status, previous.ended_on = "superseded", day
        session.flush()
        _event(session, actor, previous, "superseded", "awarded", at, f"renewed by {app.id}")
    app.decided_by, app.decided_at, app.decision_no = actor.id, at, decision_no
    app.grade_awarded = app.grade_awarded or app.grade_applied
    app.valid_from, app.valid_until = start, _add_year(start)
    app.plaque_serial = f"XYC{day:%Y}{secrets.token_hex(5).upper()}"
    app.status = "awarded"
    session.flush()
    _event(session, actor, app, "awarded", "notice", at, decision_no)
    return app


def expire_due(session: Session, *, now: datetime | None = None) -> int:
    """End every awarded title whose year is over (the jobs command may call this)."""
    at = now or utcnow()
    day = business_date(at)
    due = list(
        session.scalars(
            select(CreditVillageApplication).where(
                CreditVillageApplication.status == "awarded",
                CreditVillageApplication.valid_until < day,
            )
        )
    )
    for app in due:
        app.status, app.ended_on = "expired", day
        session.flush()
        _event(session, None, app, "expired", "awarded", at)
    return len(due)


def list_applications(
    session: Session,
    viewer: User,
    *,
    status: str | None = None,
    village_id: int | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[CreditVillageApplication]:
    stmt = restrict(
        select(CreditVillageApplication),
        viewer,
        county_col=CreditVillageApplication.county_id,
        township_col=CreditVillageApplication.township_id,
    )
    if viewer.role == "village_clerk":
        stmt = stmt.where(CreditVillageApplication.village_id == viewer.village_id)
    if status:
        stmt = stmt.where(CreditVillageApplication.status == status)
    if village_id is not None:
        stmt = stmt.where(CreditVillageApplication.village_id == village_id)
    if after_id is not None:
        stmt = stmt.where(CreditVillageApplication.id < after_id)
    return list(session.scalars(stmt.order_by(CreditVillageApplication.id.desc()).limit(limit)))


def events(session: Session, app_id: int) -> list[CreditVillageEvent]:
    return list(
        session.scalars(
            select(CreditVillageEvent)
            .where(CreditVillageEvent.application_id == app_id)
            .order_by(CreditVillageEvent.id)
        )
    )
