"""Who may freeze, unfreeze or revoke a household: the same answer on every channel.

The staff API refused a village clerk but the admin page let the clerk change a household's
status, because only the API asked about the role (issue 19, break 2). The rule now lives in
`mall.users.policy` and `subjects.change_status` enforces it, whatever calls it.
"""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mall.audit.models import AuditEntry
from mall.errors import Forbidden
from mall.subjects import services as subjects
from mall.users import policy
from tests.admin.pages_helpers import World, build_world, login_as, post, text
from tests.helpers import staff_headers

ROLE_ALLOWED = {
    "county_admin": True,
    "township_admin": True,
    "village_clerk": False,
    "auditor": False,
    "cashier": False,
}


@pytest.fixture
def w(session: Session) -> World:
    return build_world(session)


def _actor(w: World, role: str):  # type: ignore[no-untyped-def]
    return {
        "county_admin": w.county_admin,
        "township_admin": w.town_admin,
        "village_clerk": w.clerk,
        "auditor": w.auditor,
        "cashier": w.cashier,
    }[role]


def _audits(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEntry)) or 0


@pytest.mark.parametrize("role", sorted(ROLE_ALLOWED))
def test_the_policy_and_the_service_agree(w: World, session: Session, role: str) -> None:
    actor, household = _actor(w, role), w.households[0]
    assert policy.may_change_household_status(actor, household) is ROLE_ALLOWED[role]
    if ROLE_ALLOWED[role]:
        subjects.change_status(session, actor, household, "frozen", "会议决定")
        assert household.status == "frozen"
    else:
        with pytest.raises(Forbidden):
            subjects.change_status(session, actor, household, "frozen", "会议决定")
        assert household.status == "active"


@pytest.mark.parametrize("role", ["village_clerk", "township_admin"])
def test_the_page_and_the_api_agree(
    client: FlaskClient, w: World, session: Session, role: str
) -> None:
    actor, household = _actor(w, role), w.households[0]
    allowed = ROLE_ALLOWED[role]
    before = _audits(session)

    api = client.post(
        f"/api/v1/admin/households/{household.ref}/status",
        json={"status": "frozen", "reason": "会议决定"},
        headers=staff_headers(actor),
    )
    assert api.status_code == (200 if allowed else 403), api.get_json()

    login_as(client, actor)
    detail = text(client.get(f"/admin/households/{household.ref}"))
    assert ("冻结 / 撤销 / 恢复" in detail) is allowed
    form = client.get(f"/admin/households/{household.ref}/status")
    assert form.status_code == (200 if allowed else 403)
    page = post(
        client,
        f"/admin/households/{household.ref}/status",
        {"status": "active" if allowed else "frozen", "reason": "会议决定", "confirm": "y"},
    )
    assert page.status_code == (302 if allowed else 403), text(page)[:500]
    session.refresh(household)
    assert household.status == "active"  # frozen then restored by the admin, untouched by a clerk
    assert _audits(session) == before + (2 if allowed else 0)
