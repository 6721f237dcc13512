"""Every role × every write action: the policy, the service, the staff API and the admin page
give the same answer (issue 20, item 2).

For each action the table names the roles allowed. Each (action, role) case asserts the
`policy.may_*` answer, then takes the action through the service, the staff JSON API (where
the action has an endpoint) and the admin page, each on a fresh object: an allowed role
succeeds and an audit entry is written; a refused one gets 403 (`Forbidden` from the service)
and no audit entry. Four-eyes refusals keep their own codes (`own_batch`, `same_person`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from mall.audit.models import AuditEntry
from mall.entities.services import ensure_village_subjects
from mall.errors import Forbidden, NotFound
from mall.points import rules as rule_services
from mall.points import services as points
from mall.points.models import EarningRule, PointBatch
from mall.regions import services as regions
from mall.staff import services as users
from mall.users import policy
from mall.users.models import User
from mall.villages import assessment, workflow
from mall.villages.models import OPEN_APPLICATION_STATUSES, CreditVillageApplication
from tests.admin.pages_helpers import World, build_world, login_as, post
from tests.factories import make_user
from tests.helpers import staff_headers

ROLES = ("county_admin", "township_admin", "village_clerk", "auditor", "cashier")
ADMINS = frozenset({"county_admin", "township_admin"})
COUNTY = frozenset({"county_admin"})
TOWNSHIP = frozenset({"township_admin"})

INDICATORS = [
    {
        "code": "party",
        "name": "党建",
        "weight": 40,
        "items": [{"code": "a", "max": 10}, {"code": "b", "max": 10}],
    },
    {"code": "credit", "name": "信用环境", "weight": 60, "items": [{"code": "c", "max": 50}]},
]
LOW_MARKS = {"party": {"a": "1", "b": "1"}, "credit": {"c": "1"}}  # no band: a reward of 0
_serial = itertools.count(1)


def _unique(prefix: str) -> str:
    return f"{prefix}{next(_serial)}"


def _actor(w: World, role: str) -> User:
    return {
        "county_admin": w.county_admin,
        "township_admin": w.town_admin,
        "village_clerk": w.clerk,
        "auditor": w.auditor,
        "cashier": w.cashier,
    }[role]


def _audits(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEntry)) or 0


# ---------------------------------------------------------------- fresh objects


def _town_rule(session: Session, w: World) -> EarningRule:
    return rule_services.create_rule(
        session, None, w.town, code=_unique("town"), name="邻里互助", points=2
    )


def _county_rule(session: Session, w: World) -> EarningRule:
    return rule_services.create_rule(
        session, None, w.c.county, code=_unique("county"), name="孝老爱亲", points=3
    )


def _submitted_batch(session: Session, w: World) -> PointBatch:
    batch = points.create_batch(session, w.clerk, w.c.villages[0].id)
    points.record_event(
        session,
        w.clerk,
        batch,
        subject=w.households[0],
        rule_code="volunteer",
        occurred_on=batch.created_at.date(),
    )
    return points.submit_batch(session, w.clerk, batch)


def _application(session: Session, w: World, upto: str) -> CreditVillageApplication:
    """A fresh application of village 0 waiting for step `upto`; an earlier one is closed
    first (one open application per village). The county review is by a second county admin,
    so the world's county admin may decide."""
    village = w.c.villages[0]
    for old in session.scalars(
        select(CreditVillageApplication).where(
            CreditVillageApplication.village_id == village.id,
            CreditVillageApplication.status.in_(OPEN_APPLICATION_STATUSES),
        )
    ):
        old.status = "rejected"
    session.flush()
    app = workflow.apply(session, w.clerk, village, "AA", "申报材料")
    if upto == "town_review":
        return app
    workflow.town_review(session, w.town_admin, app, approve=True, opinion="同意")
    if upto == "county_review":
        return app
    reviewer = make_user(session, "county_admin", w.c.county)
    workflow.county_review(session, reviewer, app, approve=True, opinion="复审合格")
    if upto == "notice":
        return app
    workflow.post_notice(session, reviewer, app)
    return app


def _plan(session: Session, w: World) -> Any:
    ensure_village_subjects(session, w.c.villages[0])
    return assessment.create_plan(
        session, w.county_admin, period=_unique("P"), name="年度考评", indicators=INDICATORS
    )


def _scored(session: Session, w: World) -> Any:
    scorer = make_user(session, "township_admin", w.town)
    return assessment.score_village(session, scorer, _plan(session, w), w.c.villages[0], LOW_MARKS)


def _approved(session: Session, w: World) -> Any:
    a = _scored(session, w)
    checker = make_user(session, "township_admin", w.town)
    return assessment.approve(session, checker, a.id)


def _staff_member(session: Session, w: World) -> User:
    return make_user(session, "village_clerk", w.c.villages[0])


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Action:
    allowed: frozenset[str]
    setup: Callable[[Session, World], Any]
    may: Callable[[User, Any], bool]
    service: Callable[[Session, User, Any], Any]
    page: Callable[[FlaskClient, Any], TestResponse]
    api: Callable[[FlaskClient, User, Any], TestResponse] | None = None
    # Roles that do not see the object at all: region scope answers 404 before the policy.
    unseen_by: frozenset[str] = frozenset()


def _api_post(path: str, body: dict[str, Any] | None = None) -> Any:
    def call(client: FlaskClient, actor: User, thing: Any) -> TestResponse:
        return client.post(path.format(t=thing), json=body or {}, headers=staff_headers(actor))

    return call


def _page_post(path: str, body: dict[str, Any] | None = None) -> Any:
    def call(client: FlaskClient, thing: Any) -> TestResponse:
        return post(client, path.format(t=thing), body or {})

    return call


def _rule_form(rule: EarningRule) -> dict[str, Any]:
    return {
        "region_id": rule.region_id,
        "code": rule.code,
        "name": "改过的名称",
        "category": rule.category,
        "points": str(rule.points),
        "active": "y",
    }


ACTIONS: dict[str, Action] = {
    "create_township_rule": Action(
        allowed=ADMINS,
        setup=lambda s, w: w.town,
        may=policy.may_create_point_rule,
        service=lambda s, a, t: rule_services.create_rule(
            s, a, t, code=_unique("svc"), name="邻里互助", points=2
        ),
        api=lambda c, a, t: c.post(
            "/api/v1/admin/points/rules",
            json={"region_id": t.id, "code": _unique("api"), "name": "邻里互助", "points": 2},
            headers=staff_headers(a),
        ),
        page=lambda c, t: post(
            c,
            "/admin/points/rules/new",
            {
                "region_id": t.id,
                "code": _unique("page"),
                "name": "邻里互助",
                "category": "other",
                "points": "2",
            },
        ),
    ),
    "edit_township_rule": Action(
        allowed=ADMINS,
        setup=_town_rule,
        may=policy.may_edit_point_rule,
        service=lambda s, a, t: rule_services.update_rule(s, a, t, {"name": "改过的名称"}),
        api=lambda c, a, t: c.patch(
            f"/api/v1/admin/points/rules/{t.id}", json={"name": "改"}, headers=staff_headers(a)
        ),
        page=lambda c, t: post(c, f"/admin/points/rules/{t.id}/edit", _rule_form(t)),
    ),
    "edit_county_rule": Action(
        allowed=COUNTY,
        unseen_by=frozenset({"township_admin", "village_clerk", "cashier"}),
        setup=_county_rule,
        may=policy.may_edit_point_rule,
        service=lambda s, a, t: rule_services.update_rule(s, a, t, {"name": "改过的名称"}),
        api=lambda c, a, t: c.patch(
            f"/api/v1/admin/points/rules/{t.id}", json={"name": "改"}, headers=staff_headers(a)
        ),
        page=lambda c, t: post(c, f"/admin/points/rules/{t.id}/edit", _rule_form(t)),
    ),
    "approve_point_batch": Action(
        allowed=ADMINS,
        setup=_submitted_batch,
        may=policy.may_decide_point_batch,
        service=lambda s, a, t: points.approve_batch(s, a, t.id),
        api=_api_post("/api/v1/admin/points/batches/{t.id}/approve", {"note": ""}),
        page=_page_post("/admin/points/batches/{t.id}/approve", {"confirm": "y"}),
    ),
    "town_review": Action(
        allowed=TOWNSHIP,
        setup=lambda s, w: _application(s, w, "town_review"),
        may=lambda a, t: policy.may_take_village_step(a, t, "town_review"),
        service=lambda s, a, t: workflow.town_review(s, a, t, approve=True, opinion="同意"),
        api=_api_post(
            "/api/v1/admin/credit-villages/{t.id}/town-review", {"approve": True, "opinion": "同意"}
        ),
        page=_page_post(
            "/admin/credit-villages/{t.id}/town_review", {"approve": "1", "opinion": "同意"}
        ),
    ),
    "county_review": Action(
        allowed=COUNTY,
        setup=lambda s, w: _application(s, w, "county_review"),
        may=lambda a, t: policy.may_take_village_step(a, t, "county_review"),
        service=lambda s, a, t: workflow.county_review(s, a, t, approve=True, opinion="合格"),
        api=_api_post(
            "/api/v1/admin/credit-villages/{t.id}/county-review",
            {"approve": True, "opinion": "合格"},
        ),
        page=_page_post(
            "/admin/credit-villages/{t.id}/county_review", {"approve": "1", "opinion": "合格"}
        ),
    ),
    "post_notice": Action(
        allowed=COUNTY,
        setup=lambda s, w: _application(s, w, "notice"),
        may=lambda a, t: policy.may_take_village_step(a, t, "notice"),
        service=lambda s, a, t: workflow.post_notice(s, a, t),
        api=_api_post("/api/v1/admin/credit-villages/{t.id}/notice"),
        page=_page_post("/admin/credit-villages/{t.id}/notice"),
    ),
    "decide_credit_village": Action(
        allowed=COUNTY,
        setup=lambda s, w: _application(s, w, "decide"),
        may=lambda a, t: policy.may_take_village_step(a, t, "decide"),
        service=lambda s, a, t: workflow.decide(s, a, t, approve=False, reason="异议成立"),
        api=_api_post(
            "/api/v1/admin/credit-villages/{t.id}/decision", {"approve": False, "reason": "异议"}
        ),
        page=_page_post(
            "/admin/credit-villages/{t.id}/decide", {"approve": "0", "opinion": "异议"}
        ),
    ),
    "create_assessment_plan": Action(
        allowed=COUNTY,
        setup=lambda s, w: None,
        may=lambda a, t: policy.may_create_assessment_plan(a),
        service=lambda s, a, t: assessment.create_plan(s, a, period=_unique("S"), name="考评"),
        api=lambda c, a, t: c.post(
            "/api/v1/admin/assessments/plans",
            json={"period": _unique("A"), "name": "考评"},
            headers=staff_headers(a),
        ),
        page=lambda c, t: post(
            c, "/admin/assessments/plans", {"period": _unique("G"), "name": "考评"}
        ),
    ),
    "score_village": Action(
        allowed=ADMINS,
        setup=_plan,
        may=lambda a, t: policy.may_score_village(a, _VILLAGE[t.id]),
        service=lambda s, a, t: assessment.score_village(s, a, t, _VILLAGE[t.id], LOW_MARKS),
        api=lambda c, a, t: c.post(
            f"/api/v1/admin/assessments/plans/{t.id}/scores",
            json={"village_id": _village0_id(t), "items": LOW_MARKS},
            headers=staff_headers(a),
        ),
        page=lambda c, t: post(
            c,
            f"/admin/assessments/{t.id}/scores",
            {"village_id": _village0_id(t), "party.a": "1", "party.b": "1", "credit.c": "1"},
        ),
    ),
    "approve_assessment": Action(
        allowed=ADMINS,
        setup=_scored,
        may=policy.may_review_assessment,
        service=lambda s, a, t: assessment.approve(s, a, t.id),
        api=_api_post("/api/v1/admin/assessments/scores/{t.id}/approve"),
        page=_page_post("/admin/assessments/scores/{t.id}/approve"),
    ),
    "pay_assessment": Action(
        allowed=ADMINS,
        setup=_approved,
        may=policy.may_pay_assessment,
        service=lambda s, a, t: assessment.pay(s, a, t.id),
        api=_api_post("/api/v1/admin/assessments/scores/{t.id}/pay"),
        page=_page_post("/admin/assessments/scores/{t.id}/pay"),
    ),
    "deactivate_user": Action(
        allowed=ADMINS,
        setup=_staff_member,
        may=policy.may_deactivate_user,
        service=lambda s, a, t: users.deactivate_user(s, a, t),
        page=_page_post("/admin/users/{t.id}/deactivate", {"confirm": "y"}),
    ),
    "edit_township_settings": Action(
        allowed=ADMINS,
        setup=lambda s, w: w.town,
        may=policy.may_edit_region_settings,
        service=lambda s, a, t: regions.change_settings(s, a, t, {"notice_days": 9}),
        api=lambda c, a, t: c.patch(
            f"/api/v1/admin/regions/{t.id}/settings",
            json={"settings": {"notice_days": 9}},
            headers=staff_headers(a),
        ),
        page=_page_post("/admin/regions/{t.id}/settings", {"notice_days": "9"}),
    ),
}

# The village of a plan's tests: the plan's county's first village (set by the fixture).
_VILLAGE: dict[int, Any] = {}


def _village0_id(plan: Any) -> int:
    return int(_VILLAGE[plan.id].id)


@pytest.fixture
def w(session: Session) -> World:
    return build_world(session)


def _fresh(session: Session, w: World, action: Action) -> Any:
    thing = action.setup(session, w)
    if thing is not None and hasattr(thing, "indicators"):
        _VILLAGE[thing.id] = w.c.villages[0]
    session.commit()
    return thing


CASES = [(name, role) for name in ACTIONS for role in ROLES]


@pytest.mark.parametrize(("name", "role"), CASES, ids=[f"{n}-{r}" for n, r in CASES])
def test_every_channel_gives_the_policy_answer(
    client: FlaskClient, w: World, session: Session, name: str, role: str
) -> None:
    action = ACTIONS[name]
    actor = _actor(w, role)
    allowed = role in action.allowed
    unseen = role in action.unseen_by
    refused_with = NotFound if unseen else Forbidden
    # Unseen: 404 where region scope is asked first, 403 where the channel's gate refuses the
    # role before the object is loaded.
    refusals = {403, 404} if unseen else {403}

    # The policy, and the service that enforces it.
    thing = _fresh(session, w, action)
    assert action.may(actor, thing) is allowed
    before = _audits(session)
    if allowed:
        action.service(session, actor, thing)
        assert _audits(session) > before
    else:
        with pytest.raises(refused_with) as refused:
            action.service(session, actor, thing)
        assert refused.value.code == ("not_found" if unseen else "forbidden")
        assert _audits(session) == before
    session.rollback()

    # The staff JSON API.
    if action.api is not None:
        thing = _fresh(session, w, action)
        before = _audits(session)
        resp = action.api(client, actor, thing)
        if allowed:
            assert resp.status_code in (200, 201), resp.get_json()
            assert _audits(session) > before
        else:
            assert resp.status_code in refusals, resp.get_json()
            assert resp.get_json()["error"]["code"] in ("forbidden", "not_found")
            assert _audits(session) == before

    # The admin page.
    thing = _fresh(session, w, action)
    before = _audits(session)
    login_as(client, actor)
    resp = action.page(client, thing)
    if allowed:
        assert resp.status_code == 302, resp.get_data(as_text=True)[:800]
        assert _audits(session) > before
    else:
        assert resp.status_code in refusals, resp.get_data(as_text=True)[:800]
        assert _audits(session) == before
