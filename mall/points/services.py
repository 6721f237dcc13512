"""Recording behaviour events and issuing points: a clerk (maker) records events one by one or
imports a file into a batch and submits it; a township admin (checker, never the maker)
approves or rejects it. Approval fixes each event's award under the rule's caps and posts one
ledger entry per household from the township points fund, in bulk.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from mall.audit import services as audit
from mall.clock import business_date, utcnow
from mall.db import lock_row
from mall.errors import Conflict, Forbidden, NotFound, ValidationFailed
from mall.ledger.accounts import system_account
from mall.ledger.bulk import Transfer, copy_rows, post_household_transfers
from mall.ledger.models import HOUSEHOLD_POINTS, POINTS_FUND
from mall.points import imports
from mall.points.models import EarningRule, PointBatch, PointEvent, PointImportError
from mall.points.rules import effective_rules
from mall.regions.models import Region
from mall.regions.services import serialize_on
from mall.subjects.models import CreditSubject
from mall.users import policy
from mall.users.models import User
from mall.users.scope import ensure_can_write, ensure_visible

_events: Table = PointEvent.__table__  # type: ignore[assignment]


def _today(today: date | None) -> date:
    return today or business_date()


def _audit(
    session: Session, actor: User, action: str, batch: PointBatch, note: str = "", **after: Any
) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        object_type="point_batch",
        object_id=batch.id,
        county_id=batch.county_id,
        township_id=batch.township_id,
        after={"status": batch.status, **after},
        note=note,
    )


def get_batch(session: Session, batch_id: int, viewer: User | None = None) -> PointBatch:
    batch = session.get(PointBatch, batch_id)
    if batch is None:
        raise NotFound()
    return ensure_visible(viewer, batch) if viewer is not None else batch


def _scope_region(session: Session, actor: User, region_id: int) -> Region:
    region = ensure_visible(actor, session.get(Region, region_id))
    if region.kind == "county":
        raise ValidationFailed(details={"fields": {"region_id": ["a township or village"]}})
    ensure_can_write(actor, village_id=region.id if region.kind == "village" else None)
    if actor.role == "village_clerk" and region.kind != "village":
        raise Forbidden()
    return region


def create_batch(
    session: Session,
    actor: User,
    region_id: int,
    *,
    source: str = "manual",
    filename: str | None = None,
) -> PointBatch:
    region = _scope_region(session, actor, region_id)
    batch = PointBatch(
        county_id=region.county_id,
        township_id=region.township_id,
        village_id=region.id if region.kind == "village" else None,
        source=source,
        filename=filename,
        status="draft",
        maker_id=actor.id,
        rows_total=0,
        rows_bad=0,
        events=0,
        households=0,
        points_issued=0,
        points_deducted=0,
    )
    session.add(batch)
    session.flush()
    return batch


def record_event(
    session: Session,
    actor: User,
    batch: PointBatch,
    *,
    subject: CreditSubject,
    rule_code: str,
    occurred_on: date,
    note: str = "",
    today: date | None = None,
) -> PointEvent:
    """Add one event to a draft batch (the clerk's single entry)."""
    ensure_visible(actor, batch)
    # Lock the batch and read it again: two entries at once (a double click, two tabs) each
    # counted `events` from the same old value and one count was lost, and an entry racing
    # the submit (or the approval) landed in a batch no longer a draft. Now the second waits,
    # then counts on from the first, or sees the batch submitted and is refused.
    lock_row(session, batch)
    if batch.status != "draft" or batch.source != "manual":
        raise Conflict("invalid_state", details={"status": batch.status})
    if batch.maker_id != actor.id:
        raise Forbidden()
    ensure_visible(actor, subject, "holder_not_found")
    ensure_can_write(actor, village_id=subject.village_id)
    if subject.township_id != batch.township_id or (
        batch.village_id is not None and subject.village_id != batch.village_id
    ):
        raise ValidationFailed(details={"fields": {"subject": ["outside the batch's region"]}})
    village = session.get(Region, subject.village_id)
    assert village is not None
    rule = effective_rules(session, village).get(rule_code)
    if rule is None:
        raise ValidationFailed(details={"fields": {"rule_code": ["no such active rule here"]}})
    day = _today(today)
    if occurred_on > day or occurred_on < day - timedelta(days=imports.MAX_AGE_DAYS):
        raise ValidationFailed(details={"fields": {"occurred_on": ["within the past year"]}})
    event = PointEvent(
        batch_id=batch.id,
        county_id=subject.county_id,
        township_id=subject.township_id,
        village_id=subject.village_id,
        subject_id=subject.id,
        rule_id=rule.id,
        points=rule.points,
        occurred_on=occurred_on,
        note=note.strip()[:200],
        status="pending",
    )
    session.add(event)
    batch.events += 1
    batch.rows_total += 1
    session.flush()
    return event


@dataclass
class ImportResult:
    batch: PointBatch
    errors: list[tuple[int, str]]
    applied: bool


def import_events(
    session: Session,
    actor: User,
    region_id: int,
    *,
    filename: str,
    content: bytes,
    apply_good_rows: bool = False,
    today: date | None = None,
) -> ImportResult:
    """Check every row of an xlsx/csv file. With any bad row the batch is kept as `invalid`
    (the report of rows and reasons, no events), unless `apply_good_rows`, which keeps the
    good rows in a draft batch (still to be submitted and approved)."""
    day = _today(today)
    region = _scope_region(session, actor, region_id)
    source = "xlsx" if filename.lower().endswith(".xlsx") else "csv"
    rows = imports.read_rows(filename, content)
    village_filter = region.id if region.kind == "village" else None
    households = _households(session, region)
    villages = (
        list(
            session.scalars(
                select(Region).where(Region.id.in_({h.village_id for h in households.values()}))
            )
        )
        if households
        else []
    )
    rules = {
        v.id: {
            code: imports.RuleRef(r.id, r.points) for code, r in effective_rules(session, v).items()
        }
        for v in villages
    }
    checked = imports.check_rows(
        rows, households=households, rules=rules, village_id=village_filter, today=day
    )
    batch = create_batch(session, actor, region_id, source=source, filename=filename[:255])
    batch.rows_total, batch.rows_bad = checked.total, len(checked.bad)
    if checked.bad:
        _store_errors(session, batch.id, checked.bad)
    applied = not checked.bad or apply_good_rows
    if applied and checked.good:
        _store_events(session, batch, checked.good)
        batch.events = len(checked.good)
    if not applied or not checked.good:
        batch.status = "invalid"
    session.flush()
    _audit(
        session,
        actor,
        "points.batch.import",
        batch,
        filename,
        rows=checked.total,
        bad=len(checked.bad),
        applied=applied,
    )
    return ImportResult(batch, checked.bad, applied and bool(checked.good))


def _households(session: Session, region: Region) -> dict[str, imports.Household]:
    col = CreditSubject.village_id if region.kind == "village" else CreditSubject.township_id
    rows = session.execute(
        select(
            CreditSubject.ref, CreditSubject.id, CreditSubject.village_id, CreditSubject.status
        ).where(col == region.id, CreditSubject.kind == "household")
    )
    return {r.ref: imports.Household(r.id, r.village_id, r.status) for r in rows}


def _store_errors(session: Session, batch_id: int, bad: list[tuple[int, str]]) -> None:
    session.execute(
        insert(PointImportError.__table__),  # type: ignore[arg-type]
        [{"batch_id": batch_id, "row_number": n, "reason": reason[:200]} for n, reason in bad],
    )


def _store_events(session: Session, batch: PointBatch, good: list[imports.GoodRow]) -> None:
    columns = [
        "batch_id",
        "county_id",
        "township_id",
        "village_id",
        "subject_id",
        "rule_id",
        "points",
        "occurred_on",
        "note",
        "row_number",
        "status",
    ]
    values = [
        [
            batch.id,
            batch.county_id,
            batch.township_id,
            g.village_id,
            g.subject_id,
            g.rule_id,
            g.points,
            g.occurred_on,
            g.note,
            g.row_number,
            "pending",
        ]
        for g in good
    ]
    if session.get_bind().dialect.name == "postgresql":
        copy_rows(session, "point_events", columns, iter(values))
    else:
        session.execute(insert(_events), [dict(zip(columns, v, strict=True)) for v in values])


def import_errors(
    session: Session, batch: PointBatch, *, after_row: int = 0, limit: int = 200
) -> list[PointImportError]:
    return list(
        session.scalars(
            select(PointImportError)
            .where(PointImportError.batch_id == batch.id, PointImportError.row_number > after_row)
            .order_by(PointImportError.row_number)
            .limit(limit)
        )
    )


def submit_batch(session: Session, actor: User, batch: PointBatch) -> PointBatch:
    ensure_visible(actor, batch)
    ensure_can_write(actor, village_id=batch.village_id)
    if batch.maker_id != actor.id:
        raise Forbidden()
    lock_row(session, batch)  # after an entry being recorded, see its count
    if batch.status != "draft" or batch.events == 0:
        raise Conflict("invalid_state", details={"status": batch.status, "events": batch.events})
    batch.status = "submitted"
    session.flush()
    _audit(session, actor, "points.batch.submit", batch, events=batch.events)
    return batch


def _lock_for_decision(session: Session, actor: User, batch_id: int) -> PointBatch:
    batch = session.scalar(select(PointBatch).where(PointBatch.id == batch_id).with_for_update())
    if batch is None:
        raise NotFound()
    ensure_visible(actor, batch)
    policy.ensure(policy.may_check_point_batches(actor))
    policy.ensure(policy.may_decide_point_batch(actor, batch), "own_batch")
    if batch.status != "submitted":
        raise Conflict("invalid_state", details={"status": batch.status})
    return batch


def reject_batch(session: Session, actor: User, batch_id: int, reason: str) -> PointBatch:
    if not reason.strip():
        raise ValidationFailed(details={"fields": {"reason": ["required"]}})
    batch = _lock_for_decision(session, actor, batch_id)
    batch.status, batch.checker_id, batch.decided_at = "rejected", actor.id, utcnow()
    batch.decision_note = reason[:500]
    session.execute(update(_events).where(_events.c.batch_id == batch.id).values(status="rejected"))
    session.flush()
    _audit(session, actor, "points.batch.reject", batch, reason)
    return batch


def approve_batch(
    session: Session, actor: User, batch_id: int, *, note: str = "", today: date | None = None
) -> PointBatch:
    """Approve a submitted batch: caps fix each event's award, then one ledger entry per
    household moves the net points from (or back to) the township points fund."""
    day = _today(today)
    batch = _lock_for_decision(session, actor, batch_id)
    _apply_caps(session, batch.id)
    session.execute(
        update(_events)
        .where(_events.c.batch_id == batch.id)
        .values(status="approved", awarded=func.coalesce(_events.c.awarded, _events.c.points))
    )
    net = session.execute(
        select(_events.c.subject_id, func.sum(_events.c.awarded).label("total"))
        .where(_events.c.batch_id == batch.id)
        .group_by(_events.c.subject_id)
    ).all()
    transfers = [
        Transfer(
            r.subject_id, int(r.total), str(batch.id), f"points-batch:{batch.id}:{r.subject_id}"
        )
        for r in net
    ]
    fund = system_account(session, batch.township_id, POINTS_FUND)
    result = post_household_transfers(
        session,
        township_id=batch.township_id,
        wallet_kind=HOUSEHOLD_POINTS,
        counter=fund,
        transfers=transfers,
        credit_kind="points_issued",
        debit_kind="points_deducted",
        actor=f"{actor.username} ({actor.role})",
        reason=note or f"积分批次 {batch.id}",
        source_type="point_batch",
        business_date=day,
    )
    batch.status, batch.checker_id, batch.decided_at = "approved", actor.id, utcnow()
    batch.decision_note = note[:500] or None
    batch.households = len(result.posted)
    batch.points_issued = sum(v for v in result.posted.values() if v > 0)
    batch.points_deducted = -sum(v for v in result.posted.values() if v < 0)
    session.flush()
    _audit(
        session,
        actor,
        "points.batch.approve",
        batch,
        note,
        households=batch.households,
        issued=batch.points_issued,
        deducted=batch.points_deducted,
    )
    return batch


def _week(d: date) -> tuple[str, int, int]:
    iso = d.isocalendar()
    return ("w", iso[0], iso[1])


def _windows(rule: EarningRule, d: date) -> list[tuple[tuple[Any, ...], int]]:
    out: list[tuple[tuple[Any, ...], int]] = []
    if rule.cap_week:
        out.append((_week(d), rule.cap_week))
    if rule.cap_month:
        out.append((("m", d.year, d.month), rule.cap_month))
    if rule.cap_year:
        out.append((("y", d.year), rule.cap_year))
    return out


def _apply_caps(session: Session, batch_id: int) -> None:
    """Award each positive event of a capped rule only what its week/month/year caps leave,
    counting the household's approved events and the earlier events of this batch."""
    rule_ids = session.scalars(
        select(_events.c.rule_id).where(_events.c.batch_id == batch_id).distinct()
    ).all()
    capped = {
        r.id: r
        for r in session.scalars(select(EarningRule).where(EarningRule.id.in_(rule_ids)))
        if r.points > 0 and (r.cap_week or r.cap_month or r.cap_year)
    }
    if not capped:
        return
    # What the caps leave is read from the approved events: two batches of one township
    # approved at once each read the other's events as still pending, and a household got
    # the cap once per batch (six batches: six times the monthly cap). Approvals of capped
    # rules in one township now run one at a time; a batch's households are all of its
    # township (record_event and the import check it). After the lock the reads below see
    # the batches approved meanwhile.
    batch = session.get(PointBatch, batch_id)
    assert batch is not None
    serialize_on(session, batch.township_id)
    events = session.execute(
        select(
            _events.c.id,
            _events.c.subject_id,
            _events.c.rule_id,
            _events.c.points,
            _events.c.occurred_on,
        )
        .where(_events.c.batch_id == batch_id, _events.c.rule_id.in_(list(capped)))
        .order_by(_events.c.occurred_on, _events.c.id)
    ).all()
    start = date(min(e.occurred_on for e in events).year, 1, 1) - timedelta(days=7)
    mine = (
        select(_events.c.subject_id.label("sid"))
        .where(_events.c.batch_id == batch_id, _events.c.rule_id.in_(list(capped)))
        .distinct()
        .subquery()
    )
    used: dict[tuple[int, int, tuple[Any, ...]], int] = defaultdict(int)
    prior = session.execute(
        select(_events.c.subject_id, _events.c.rule_id, _events.c.occurred_on, _events.c.awarded)
        .join(mine, mine.c.sid == _events.c.subject_id)
        .where(
            _events.c.status == "approved",
            _events.c.rule_id.in_(list(capped)),
            _events.c.occurred_on >= start,
        )
    )
    for p in prior:
        for key, _cap in _windows(capped[p.rule_id], p.occurred_on):
            used[(p.subject_id, p.rule_id, key)] += p.awarded or 0
    changed: list[dict[str, int]] = []
    for e in events:
        windows = _windows(capped[e.rule_id], e.occurred_on)
        room = min(cap - used[(e.subject_id, e.rule_id, key)] for key, cap in windows)
        awarded = max(0, min(e.points, room))
        for key, _cap in windows:
            used[(e.subject_id, e.rule_id, key)] += awarded
        if awarded != e.points:
            changed.append({"e_id": e.id, "e_awarded": awarded})
    if changed:
        session.execute(
            update(_events)
            .where(_events.c.id == bindparam("e_id"))
            .values(awarded=bindparam("e_awarded")),
            changed,
        )


def list_batches(
    session: Session,
    viewer: User,
    *,
    status: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[PointBatch]:
    from mall.users.scope import restrict

    stmt = restrict(
        select(PointBatch),
        viewer,
        county_col=PointBatch.county_id,
        township_col=PointBatch.township_id,
    )
    if status:
        stmt = stmt.where(PointBatch.status == status)
    if before_id is not None:
        stmt = stmt.where(PointBatch.id < before_id)
    return list(session.scalars(stmt.order_by(PointBatch.id.desc()).limit(limit)))


def batch_events(
    session: Session, batch: PointBatch, *, after_id: int | None = None, limit: int = 100
) -> list[PointEvent]:
    stmt = select(PointEvent).where(PointEvent.batch_id == batch.id)
    if after_id is not None:
        stmt = stmt.where(PointEvent.id > after_id)
    return list(session.scalars(stmt.order_by(PointEvent.id).limit(limit)))
