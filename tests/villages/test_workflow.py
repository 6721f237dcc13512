"""The credit-village workflow: every transition, refusals, notice, validity, renewal, plaque."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.audit.models import AuditEntry
from mall.errors import Conflict, Forbidden, NotFound, ValidationFailed
from mall.villages import plaque, workflow
from mall.villages.models import CreditVillageApplication
from tests.villages.conftest import NOW, World

DAY = timedelta(days=1)


def _to_notice(session: Session, w: World, grade: str = "AA") -> CreditVillageApplication:
    app = workflow.apply(session, w.clerk, w.c.villages[0], grade, "申报材料", now=NOW)
    workflow.town_review(session, w.town_admin, app, approve=True, opinion="同意", now=NOW)
    workflow.county_review(session, w.county_admin, app, approve=True, opinion="复审合格", now=NOW)
    workflow.post_notice(session, w.county_admin, app, now=NOW)
    return app


def _award(session: Session, w: World, grade: str = "AA") -> CreditVillageApplication:
    app = _to_notice(session, w, grade)
    workflow.decide(
        session,
        w.county_admin2,
        app,
        approve=True,
        decision_no="县信用办〔2026〕1号",
        now=NOW + 7 * DAY,
    )
    return app


def test_every_stage_to_award_records_reviewer_time_events_and_audit(
    session: Session, w: World
) -> None:
    app = _to_notice(session, w)
    assert app.status == "notice"
    assert (app.notice_from, app.notice_until) == (date(2026, 3, 2), date(2026, 3, 8))
    assert app.town_reviewer_id == w.town_admin.id
    assert app.town_reviewed_at is not None
    assert app.county_reviewer_id == w.county_admin.id
    assert app.county_opinion == "复审合格"
    workflow.decide(
        session,
        w.county_admin2,
        app,
        approve=True,
        decision_no="县信用办〔2026〕1号",
        now=NOW + 7 * DAY,
    )
    assert app.status == "awarded"
    assert app.grade_awarded == "AA"
    assert app.decided_by == w.county_admin2.id
    assert (app.valid_from, app.valid_until) == (date(2026, 3, 9), date(2027, 3, 8))
    assert app.plaque_serial
    actions = [e.action for e in workflow.events(session, app.id)]
    assert actions == ["applied", "town_passed", "county_passed", "notice_posted", "awarded"]
    audited = session.scalars(
        select(AuditEntry.action).where(AuditEntry.object_id == str(app.id))
    ).all()
    assert "credit_village.awarded" in audited
    assert len(audited) == 5
    assert workflow.current_award(session, app.village_id, date(2026, 6, 1)) is app


@pytest.fixture
def w(world: World) -> World:
    return world


@pytest.mark.parametrize("stage", ["town", "county", "notice"])
def test_rejection_at_each_stage_needs_and_keeps_a_reason(
    session: Session, w: World, stage: str
) -> None:
    app = workflow.apply(session, w.clerk, w.c.villages[0], "A", now=NOW)
    if stage == "town":
        with pytest.raises(ValidationFailed):
            workflow.town_review(session, w.town_admin, app, approve=False, opinion=" ", now=NOW)
        workflow.town_review(session, w.town_admin, app, approve=False, opinion="材料不全", now=NOW)
    else:
        workflow.town_review(session, w.town_admin, app, approve=True, opinion="同意", now=NOW)
        if stage == "county":
            workflow.county_review(
                session, w.county_admin, app, approve=False, opinion="信用户占比不足", now=NOW
            )
        else:
            workflow.county_review(
                session, w.county_admin, app, approve=True, opinion="合格", now=NOW
            )
            workflow.post_notice(session, w.county_admin, app, now=NOW)
            with pytest.raises(ValidationFailed):
                workflow.decide(session, w.county_admin2, app, approve=False, now=NOW + DAY)
            workflow.decide(
                session, w.county_admin2, app, approve=False, reason="公示期有异议", now=NOW + DAY
            )
    assert app.status == "rejected"
    assert app.rejected_stage == stage
    assert app.rejected_reason
    assert workflow.events(session, app.id)[-1].action == f"rejected_{stage}"
    # A rejected village may apply again.
    assert workflow.apply(session, w.clerk, w.c.villages[0], "A", now=NOW).status == "applied"


def test_illegal_transitions_are_refused_with_invalid_state(session: Session, w: World) -> None:
    app = workflow.apply(session, w.clerk, w.c.villages[0], "AAA", now=NOW)
    for step in (
        lambda: workflow.county_review(session, w.county_admin, app, approve=True, opinion="x"),
        lambda: workflow.post_notice(session, w.county_admin, app),
        lambda: workflow.decide(session, w.county_admin2, app, approve=True, decision_no="1"),
    ):
        with pytest.raises(Conflict) as exc:
            step()
        assert exc.value.code == "invalid_state"
    workflow.town_review(session, w.town_admin, app, approve=True, opinion="同意", now=NOW)
    with pytest.raises(Conflict):
        workflow.town_review(session, w.town_admin, app, approve=True, opinion="again", now=NOW)
    with pytest.raises(Conflict):  # one application under way per village
        workflow.apply(session, w.clerk, w.c.villages[0], "A", now=NOW)


def test_roles_are_enforced(session: Session, w: World) -> None:
    app = workflow.apply(session, w.town_admin, w.c.villages[0], "A", now=NOW)
    with pytest.raises(Forbidden):
        workflow.town_review(session, w.county_admin, app, approve=True, opinion="x")
    with pytest.raises(Forbidden):
        workflow.town_review(session, w.clerk, app, approve=True, opinion="x")
    with pytest.raises(NotFound):  # another township's admin does not see it
        workflow.town_review(session, w.other_town_admin, app, approve=True, opinion="x")
    workflow.town_review(session, w.town_admin, app, approve=True, opinion="同意", now=NOW)
    with pytest.raises(Forbidden):
        workflow.county_review(session, w.town_admin, app, approve=True, opinion="x")
    with pytest.raises(Forbidden):
        workflow.apply(session, w.auditor, w.c.villages[1], "A", now=NOW)


def test_decision_by_the_re_reviewer_is_refused(session: Session, w: World) -> None:
    app = _to_notice(session, w)
    with pytest.raises(Forbidden) as exc:
        workflow.decide(
            session, w.county_admin, app, approve=True, decision_no="1", now=NOW + 9 * DAY
        )
    assert exc.value.code == "same_person"
    assert app.status == "notice"


def test_notice_period_is_enforced_and_configurable(session: Session, w: World) -> None:
    app = _to_notice(session, w)
    with pytest.raises(Conflict) as exc:  # the 7th day is still notice
        workflow.decide(
            session, w.county_admin2, app, approve=True, decision_no="1", now=NOW + 6 * DAY
        )
    assert exc.value.code == "invalid_state"
    workflow.decide(session, w.county_admin2, app, approve=True, decision_no="1", now=NOW + 7 * DAY)
    assert app.status == "awarded"
    w.c.county.settings = {"credit_village_notice_days": 10}
    session.flush()
    app2 = workflow.apply(session, w.town_admin, w.c.villages[1], "A", now=NOW)
    workflow.town_review(session, w.town_admin, app2, approve=True, opinion="同意", now=NOW)
    workflow.county_review(session, w.county_admin, app2, approve=True, opinion="合格", now=NOW)
    workflow.post_notice(session, w.county_admin, app2, now=NOW)
    assert app2.notice_until == date(2026, 3, 11)


def test_county_may_lower_but_not_raise_the_grade(session: Session, w: World) -> None:
    app = workflow.apply(session, w.clerk, w.c.villages[0], "AA", now=NOW)
    workflow.town_review(session, w.town_admin, app, approve=True, opinion="同意", now=NOW)
    with pytest.raises(ValidationFailed):
        workflow.county_review(session, w.county_admin, app, approve=True, opinion="x", grade="AAA")
    workflow.county_review(session, w.county_admin, app, approve=True, opinion="x", grade="A")
    assert app.grade_awarded == "A"


def test_validity_expiry_and_renewal(session: Session, w: World) -> None:
    first = _award(session, w)
    with pytest.raises(Conflict):  # too early to renew
        workflow.apply(session, w.clerk, w.c.villages[0], "AAA", now=NOW + 30 * DAY)
    renew_at = NOW + 330 * DAY  # 2027-01-26, within 90 days of 2027-03-08
    renewal = workflow.apply(session, w.clerk, w.c.villages[0], "AAA", now=renew_at)
    assert renewal.renewal_of_id == first.id
    workflow.town_review(session, w.town_admin, renewal, approve=True, opinion="同意", now=renew_at)
    workflow.county_review(
        session, w.county_admin2, renewal, approve=True, opinion="合格", now=renew_at
    )
    workflow.post_notice(session, w.county_admin2, renewal, now=renew_at)
    workflow.decide(
        session, w.county_admin, renewal, approve=True, decision_no="2", now=renew_at + 8 * DAY
    )
    assert first.status == "superseded"
    # The renewal starts the day after the first title ends: no gap, no overlap.
    assert renewal.valid_from == date(2027, 3, 9)
    assert renewal.valid_until == date(2028, 3, 8)
    assert workflow.expire_due(session, now=NOW + 800 * DAY) == 1
    assert renewal.status == "expired"


def test_plaque_renders_a_print_resolution_png(session: Session, w: World) -> None:
    app = _award(session, w, "AAA")
    img = Image.open(io.BytesIO(plaque.plaque_png(session, app)))
    assert img.format == "PNG"
    assert img.size == (3508, 2480)
    assert round(img.info["dpi"][0]) == 300
    assert len(img.getcolors(maxcolors=1 << 20) or []) > 10  # text was drawn
    app2 = workflow.apply(session, w.town_admin, w.c.villages[1], "A", now=NOW)
    with pytest.raises(Conflict):
        plaque.plaque_png(session, app2)
