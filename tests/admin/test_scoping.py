"""Region scoping on every object page (another township's objects answer 404), CSRF on every
POST, and auditors refused on every write."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mall.audit.models import AuditEntry
from mall.points.services import create_batch
from tests.admin.pages_helpers import World, build_world, login_as, post, text


@pytest.fixture
def w(session: Session) -> World:
    return build_world(session)


def test_another_townships_objects_are_404(client: FlaskClient, w: World, session: Session) -> None:
    batch = create_batch(session, w.town2_admin, w.c.townships[1].id)
    session.commit()
    login_as(client, w.town_admin)
    for path in [
        f"/admin/households/{w.household2.ref}",
        f"/admin/households/{w.household2.ref}/status",
        f"/admin/households/{w.household2.ref}/reveal",
        f"/admin/households/{w.household2.ref}/pin",
        f"/admin/households/{w.household2.ref}/card",
        f"/admin/partners/{w.partner2.id}",
        f"/admin/partners/{w.partner2.id}/edit",
        f"/admin/partners/{w.partner2.id}/cashiers/new",
        f"/admin/points/batches/{batch.id}",
        f"/admin/cards/{w.c.villages[2].id}.pdf",
        f"/admin/settlement?partner={w.partner2.id}",
        f"/admin/regions/{w.c.townships[1].id}/settings",
    ]:
        resp = client.get(path)
        assert resp.status_code == 404, (path, resp.status_code)
        assert "您访问的页面不存在" in text(resp)
    listing = text(client.get("/admin/partners"))
    assert w.partner.name in listing
    assert w.partner2.name not in listing
    found = text(client.get(f"/admin/households?q={w.household2.ref}"))
    assert f"/admin/households/{w.household2.ref}" not in found
    assert "没有符合条件的农户" in found


def test_clerk_sees_only_their_village(client: FlaskClient, w: World) -> None:
    login_as(client, w.clerk)
    other_village = w.households[2]  # same township, the other village
    assert client.get(f"/admin/households/{other_village.ref}").status_code == 404
    page = text(client.get("/admin/households"))
    assert w.households[0].ref in page
    assert other_village.ref not in page


def test_every_post_needs_the_csrf_token(app: Flask, client: FlaskClient, w: World) -> None:
    login_as(client, w.town_admin)
    h = w.households[0]
    app.config["WTF_CSRF_ENABLED"] = True
    for path in [
        "/admin/partners/new",
        f"/admin/partners/{w.partner.id}/terminals",
        f"/admin/households/{h.ref}/status",
        "/admin/points/batches",
        "/admin/benefits/new",
        "/admin/users/new",
        "/admin/logout",
    ]:
        resp = client.post(path, data={"name": "x", "reason": "x", "confirm": "y"})
        assert resp.status_code == 400, path
        assert "页面已过期" in text(resp)


def test_auditor_reads_but_cannot_write(client: FlaskClient, w: World, session: Session) -> None:
    login_as(client, w.auditor)
    h = w.households[0]
    detail = text(client.get(f"/admin/households/{h.ref}"))
    assert "冻结 / 撤销 / 恢复" not in detail
    assert "重置密码" not in detail
    assert "新增商户" not in text(client.get("/admin/partners"))
    before = session.scalar(select(func.count()).select_from(AuditEntry))
    for path, data in [
        ("/admin/partners/new", {"township_id": w.town.id, "name": "x", "category": "bank"}),
        (f"/admin/households/{h.ref}/status", {"status": "frozen", "reason": "x", "confirm": "y"}),
        (f"/admin/households/{h.ref}/pin", {"confirm": "y"}),
        (f"/admin/households/{h.ref}/reveal", {"field": "phone", "reason": "x"}),
        ("/admin/households/new", {"village_id": w.c.villages[0].id, "head_name": "x"}),
        ("/admin/points/batches", {"region_id": w.town.id}),
        ("/admin/benefits/new", {"title_zh": "x", "kind": "free_item", "min_level_rank": 1}),
        ("/admin/users/new", {"username": "abcdef", "password": "x" * 12}),
        (f"/admin/partners/{w.partner.id}/terminals", {"name": "x"}),
    ]:
        resp = post(client, path, data)
        assert resp.status_code == 403, (path, resp.status_code)
    assert session.scalar(select(func.count()).select_from(AuditEntry)) == before
