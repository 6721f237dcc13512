"""Audit log: filterable, scoped, append-only."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from mall.audit.services import record
from tests.factories import make_county, make_user
from tests.helpers import staff_headers


def test_filters_and_scope(client: FlaskClient, session: Session) -> None:
    c = make_county(session)
    a = make_user(session, "township_admin", c.townships[0])
    b = make_user(session, "township_admin", c.townships[1])
    auditor = make_user(session, "auditor", c.county)
    record(
        session,
        actor=a,
        action="household.create",
        object_type="household",
        object_id="h1",
        township_id=c.townships[0].id,
    )
    record(
        session,
        actor=b,
        action="household.create",
        object_type="household",
        object_id="h2",
        township_id=c.townships[1].id,
    )
    record(
        session,
        actor=a,
        action="region.settings",
        object_type="region",
        object_id="1",
        township_id=c.townships[0].id,
    )
    mine = client.get("/api/v1/admin/audit", headers=staff_headers(a)).json["items"]
    assert [e["object_id"] for e in mine] == ["1", "h1"]
    filtered = client.get(
        "/api/v1/admin/audit",
        headers=staff_headers(auditor),
        query_string={"action": "household.create"},
    ).json["items"]
    assert {e["object_id"] for e in filtered} == {"h1", "h2"}
    page1 = client.get(
        "/api/v1/admin/audit", headers=staff_headers(auditor), query_string={"limit": 2}
    ).json
    page2 = client.get(
        "/api/v1/admin/audit",
        headers=staff_headers(auditor),
        query_string={"limit": 2, "cursor": page1["next_cursor"]},
    ).json
    assert len(page1["items"]) == 2
    assert len(page2["items"]) == 1
    assert page2["next_cursor"] is None


def test_clerk_cannot_read_audit(client: FlaskClient, session: Session) -> None:
    c = make_county(session)
    clerk = make_user(session, "village_clerk", c.villages[0])
    assert client.get("/api/v1/admin/audit", headers=staff_headers(clerk)).status_code == 403


@pytest.mark.parametrize("sql", ["UPDATE audit_log SET note = 'x'", "DELETE FROM audit_log"])
def test_database_refuses_edits(session: Session, sql: str) -> None:
    c = make_county(session)
    a = make_user(session, "township_admin", c.townships[0])
    record(session, actor=a, action="x", object_type="y", object_id="z")
    with pytest.raises(DBAPIError), session.begin_nested():
        session.execute(text(sql))
