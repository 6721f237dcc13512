"""Rules, events, imports, maker-checker approval, caps, bulk posting and expiry."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mall.errors import Conflict, Forbidden, ValidationFailed
from mall.ledger.models import Entry
from mall.ledger.verify import verify_ledger
from mall.points import services
from mall.points.expiry import expire_points
from mall.points.models import PointEvent
from mall.points.rules import create_rule, effective_rules
from mall.regions.services import update_settings
from tests.points.conftest import DAY, World, points_of, xlsx


def _verify(session: Session) -> None:
    session.flush()
    report = verify_ledger(session.connection())
    assert report.ok, report.first


def _manual(session: Session, world: World, entries: list[tuple[int, str, date]]) -> int:
    batch = services.create_batch(session, world.clerk, world.county.villages[0].id)
    for index, code, day in entries:
        services.record_event(
            session,
            world.clerk,
            batch,
            subject=world.households[index],
            rule_code=code,
            occurred_on=day,
            today=DAY,
        )
    services.submit_batch(session, world.clerk, batch)
    return batch.id


def test_rules_inherit_and_township_overrides(session: Session, world: World) -> None:
    town = world.county.townships[0]
    create_rule(
        session, None, town, code="public", name="公益活动(镇)", points=7, category="public_good"
    )
    create_rule(session, None, town, code="litter", name="停用", points=-1, active=False)
    rules = effective_rules(session, world.county.villages[0])
    assert {c: r.points for c, r in rules.items()} == {"volunteer": 10, "public": 7}
    assert effective_rules(session, world.county.villages[2])["public"].points == 5


def test_maker_checker_and_posting(session: Session, world: World) -> None:
    batch_id = _manual(
        session, world, [(0, "volunteer", DAY), (0, "public", DAY), (1, "litter", DAY)]
    )
    with pytest.raises(Forbidden):
        services.approve_batch(session, world.clerk, batch_id, today=DAY)  # a clerk never checks
    batch = services.approve_batch(session, world.town_admin, batch_id, today=DAY)
    assert (batch.status, batch.households, batch.points_issued) == ("approved", 1, 15)
    assert points_of(session, world.households[0]) == 15
    # The negative rule deducts only what the household has (never below zero).
    assert points_of(session, world.households[1]) == 0
    with pytest.raises(Conflict):
        services.approve_batch(session, world.other_admin, batch_id, today=DAY)  # once only
    _verify(session)


def test_nobody_approves_their_own_batch(session: Session, world: World) -> None:
    batch = services.create_batch(session, world.town_admin, world.county.villages[0].id)
    services.record_event(
        session,
        world.town_admin,
        batch,
        subject=world.households[0],
        rule_code="public",
        occurred_on=DAY,
        today=DAY,
    )
    services.submit_batch(session, world.town_admin, batch)
    with pytest.raises(Forbidden) as err:
        services.approve_batch(session, world.town_admin, batch.id, today=DAY)
    assert err.value.code == "own_batch"
    services.approve_batch(session, world.other_admin, batch.id, today=DAY)


def test_reject(session: Session, world: World) -> None:
    batch_id = _manual(session, world, [(0, "volunteer", DAY)])
    batch = services.reject_batch(session, world.town_admin, batch_id, "日期有误")
    assert batch.status == "rejected"
    assert points_of(session, world.households[0]) == 0


def test_monthly_cap(session: Session, world: World) -> None:
    days = [DAY - timedelta(days=i) for i in range(4)]  # four 10-point events in March, cap 30
    batch_id = _manual(session, world, [(0, "volunteer", d) for d in days])
    services.approve_batch(session, world.town_admin, batch_id, today=DAY)
    assert points_of(session, world.households[0]) == 30
    batch_id = _manual(session, world, [(0, "volunteer", DAY - timedelta(days=10))])
    services.approve_batch(session, world.town_admin, batch_id, today=DAY)
    assert points_of(session, world.households[0]) == 30  # the month is full
    awarded = session.scalars(select(PointEvent.awarded).order_by(PointEvent.id)).all()
    assert awarded == [0, 10, 10, 10, 0]  # earliest days first: the latest is capped


def test_record_event_checks(session: Session, world: World) -> None:
    batch = services.create_batch(session, world.clerk, world.county.villages[0].id)
    with pytest.raises(ValidationFailed):
        services.record_event(
            session,
            world.clerk,
            batch,
            subject=world.households[0],
            rule_code="nope",
            occurred_on=DAY,
            today=DAY,
        )
    with pytest.raises(ValidationFailed):
        services.record_event(
            session,
            world.clerk,
            batch,
            subject=world.households[0],
            rule_code="public",
            occurred_on=DAY + timedelta(days=1),
            today=DAY,
        )


def test_import_reports_every_bad_row_and_applies_nothing(session: Session, world: World) -> None:
    h = world.households
    content = xlsx(
        [
            [h[0].ref, "volunteer", "2026-03-01", "扫雪"],
            ["hnope", "volunteer", "2026-03-01", None],
            [h[1].ref, "bogus", "2026-03-01", None],
            [h[1].ref, "public", "2026/13/01", None],
            [h[2].ref, "public", date(2026, 3, 1), None],
            [h[2].ref, "public", date(2026, 3, 1), None],
        ]
    )
    result = services.import_events(
        session,
        world.clerk,
        world.county.villages[0].id,
        filename="events.xlsx",
        content=content,
        today=DAY,
    )
    assert [n for n, _ in result.errors] == [3, 4, 5, 7]
    assert "第6行" in result.errors[-1][1]
    assert result.batch.status == "invalid"
    assert session.scalar(select(func.count()).select_from(PointEvent)) == 0
    stored = services.import_errors(session, result.batch)
    assert [e.row_number for e in stored] == [3, 4, 5, 7]


def test_import_good_rows_on_request(session: Session, world: World) -> None:
    h = world.households
    content = xlsx(
        [[h[0].ref, "volunteer", "2026-03-01", None], ["hnope", "public", "2026-03-01", None]]
    )
    result = services.import_events(
        session,
        world.clerk,
        world.county.villages[0].id,
        filename="events.xlsx",
        content=content,
        apply_good_rows=True,
        today=DAY,
    )
    assert result.applied
    assert (result.batch.status, result.batch.events, result.batch.rows_bad) == ("draft", 1, 1)
    services.submit_batch(session, world.clerk, result.batch)
    services.approve_batch(session, world.town_admin, result.batch.id, today=DAY)
    assert points_of(session, h[0]) == 10


def test_import_csv_gbk(session: Session, world: World) -> None:
    h = world.households
    text = f"户编号,规则代码,日期\n{h[0].ref},public,2026-03-01\n{h[1].ref},public,2026-03-01\n"
    result = services.import_events(
        session,
        world.clerk,
        world.county.villages[0].id,
        filename="e.csv",
        content=text.encode("gbk"),
        today=DAY,
    )
    assert not result.errors
    assert result.batch.events == 2


def test_import_needs_the_columns(session: Session, world: World) -> None:
    with pytest.raises(ValidationFailed):
        services.import_events(
            session,
            world.clerk,
            world.county.villages[0].id,
            filename="e.csv",
            content=b"a,b\n1,2\n",
            today=DAY,
        )


def test_point_expiry_end_of_next_year(session: Session, world: World) -> None:
    update_settings(session, world.county.county, {"points_expiry": "end_of_next_year"})
    batch_id = _manual(session, world, [(0, "volunteer", DAY)])
    services.approve_batch(session, world.town_admin, batch_id, today=DAY)  # 10 in 2026
    assert expire_points(session, date(2027, 6, 1)) == 0  # cutoff 2025-12-31: nothing older
    later = services.create_batch(session, world.clerk, world.county.villages[0].id)
    services.record_event(
        session,
        world.clerk,
        later,
        subject=world.households[0],
        rule_code="public",
        occurred_on=date(2027, 6, 1),
        today=date(2027, 6, 1),
    )
    services.submit_batch(session, world.clerk, later)
    services.approve_batch(session, world.town_admin, later.id, today=date(2027, 6, 1))
    assert expire_points(session, date(2028, 1, 1)) == 1  # 2026's 10 points go
    assert points_of(session, world.households[0]) == 5
    assert expire_points(session, date(2028, 2, 1)) == 0  # once per cutoff
    assert session.scalars(select(Entry.kind).order_by(Entry.id.desc())).first() == "points_expired"
    _verify(session)
