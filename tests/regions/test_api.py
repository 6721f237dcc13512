"""Regions and inherited settings: scoping and audit."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.audit.models import AuditEntry
from mall.regions.services import effective_settings, update_settings
from tests.factories import make_county, make_user
from tests.helpers import staff_headers


def test_settings_inherit_downward(session: Session) -> None:
    c = make_county(session)
    update_settings(session, c.county, {"point_value_fen": 30, "notice_days": 5})
    update_settings(session, c.townships[0], {"notice_days": 9})
    eff = effective_settings(session, c.villages[0])
    assert eff["point_value_fen"] == 30
    assert eff["notice_days"] == 9
    assert effective_settings(session, c.villages[2])["notice_days"] == 5


def test_township_admin_lists_only_own_regions(client: FlaskClient, session: Session) -> None:
    c = make_county(session)
    admin = make_user(session, "township_admin", c.townships[0])
    ids = {
        r["id"]
        for r in client.get("/api/v1/admin/regions", headers=staff_headers(admin)).json["items"]
    }
    assert ids == {c.townships[0].id, c.villages[0].id, c.villages[1].id}


def test_settings_scope_and_audit(client: FlaskClient, session: Session) -> None:
    c = make_county(session)
    admin = make_user(session, "township_admin", c.townships[0])
    h = staff_headers(admin)
    other = client.patch(
        f"/api/v1/admin/regions/{c.townships[1].id}/settings",
        headers=h,
        json={"settings": {"notice_days": 3}},
    )
    assert other.status_code == 404
    assert (
        client.get(f"/api/v1/admin/regions/{c.villages[2].id}/settings", headers=h).status_code
        == 404
    )
    county = client.patch(
        f"/api/v1/admin/regions/{c.county.id}/settings",
        headers=h,
        json={"settings": {"notice_days": 3}},
    )
    assert county.status_code == 404
    ok = client.patch(
        f"/api/v1/admin/regions/{c.townships[0].id}/settings",
        headers=h,
        json={"settings": {"notice_days": 8}},
    )
    assert ok.status_code == 200
    assert ok.json["effective"]["notice_days"] == 8
    bad = client.patch(
        f"/api/v1/admin/regions/{c.townships[0].id}/settings",
        headers=h,
        json={"settings": {"no_such_setting": 1}},
    )
    assert bad.status_code == 400
    entry = session.scalars(select(AuditEntry)).one()
    assert entry.after == {"notice_days": 8}
