"""Object access across townships, over EVERY staff API route with an identifier in its path.

Generated from the app's url_map, so a new route is covered (or fails here, asking for a
resolver) without anyone remembering to add it. For each route and method, a township admin
of the demo's second township asks for an object of the first township, and for an id that
does not exist: the two answers must be the same refusal (404 `not_found`, or the same
validation error a body-less call gets), never a 2xx, so another township's objects are
indistinguishable from missing ones. Partners are covered by the POS tests (another
partner's payment is `not_found`: tests/pos_adapter, tests/e2e/test_pos.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from mall.demo.builder import DEMO_PASSWORD, build

MISSING_INT = 987_654_321
MISSING_REF = "zzzzzzzzzzzzzzzz"

# param name -> SQL giving one id of that kind that belongs to township :t (None: not in
# the demo data; such a route is reported as skipped, by name).
RESOLVERS: dict[str, str | None] = {
    "ref": "SELECT ref FROM credit_subjects WHERE township_id = :t ORDER BY id LIMIT 1",
    "partner_id": "SELECT id FROM partners WHERE township_id = :t ORDER BY id LIMIT 1",
    "terminal_pk": "SELECT id FROM terminals WHERE township_id = :t ORDER BY id LIMIT 1",
    "region_id": "SELECT :t",
    "goods_id": "SELECT g.id FROM catalog_goods g JOIN partners p ON p.id = g.partner_id "
    "WHERE p.township_id = :t ORDER BY g.id LIMIT 1",
    "batch_id": "SELECT id FROM point_batches WHERE township_id = :t ORDER BY id LIMIT 1",
    "rule_id": "SELECT id FROM point_rules WHERE region_id = :t ORDER BY id LIMIT 1",
    "rating_id": "SELECT r.id FROM ratings r JOIN credit_subjects s ON s.id = r.subject_id "
    "WHERE s.township_id = :t ORDER BY r.id LIMIT 1",
    "benefit_id": "SELECT id FROM benefits WHERE township_id = :t ORDER BY id LIMIT 1",
    "statement_id": "SELECT id FROM settlement_statements WHERE township_id = :t LIMIT 1",
    "reconciliation_id": "SELECT id FROM settlement_reconciliations WHERE township_id = :t LIMIT 1",
    "appeal_id": None,
    "plan_id": None,
    "assessment_id": None,
    "app_id": None,
}
FIXED = {"business_date": "2026-01-05"}


def _staff_routes(app: Flask) -> list[tuple[str, str, list[str]]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/admin/") or not rule.arguments:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((method, rule.rule, sorted(rule.arguments)))
    return sorted(routes, key=lambda r: (r[1], r[0]))


def _fill(rule: str, values: dict[str, Any]) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: str(values[m.group(1)]), rule)


@pytest.fixture
def demo(session: Session) -> dict[str, Any]:
    manifest = build(session, households_per_village=2)
    session.flush()
    towns = session.execute(
        text("SELECT id FROM regions WHERE kind = 'township' ORDER BY id")
    ).scalars()
    t1, t2 = list(towns)[:2]
    return {"manifest": manifest, "t1": t1, "t2": t2}


def _login(client: FlaskClient, username: str) -> dict[str, str]:
    resp = client.post(
        "/api/v1/auth/admin/login", json={"username": username, "password": DEMO_PASSWORD}
    )
    assert resp.status_code == 200, resp.get_json()
    return {"Authorization": f"Bearer {resp.get_json()['access_token']}"}


def test_every_staff_route_hides_other_townships(
    app: Flask, session: Session, client: FlaskClient, demo: dict[str, Any]
) -> None:
    headers = _login(client, "town2_admin")
    routes = _staff_routes(app)
    assert len(routes) > 40
    unknown = sorted({a for _, _, args in routes for a in args} - RESOLVERS.keys() - FIXED.keys())
    assert not unknown, f"new path parameters need a resolver in RESOLVERS: {unknown}"

    resolved: dict[str, Any] = {}
    for name, sql in RESOLVERS.items():
        if sql is not None:
            resolved[name] = session.execute(text(sql), {"t": demo["t1"]}).scalar()
    checked: list[str] = []
    skipped: list[str] = []
    leaks: list[str] = []
    for method, rule, args in routes:
        if any(a not in FIXED and resolved.get(a) is None for a in args):
            skipped.append(f"{method} {rule}")
            continue
        foreign = {a: FIXED.get(a, resolved.get(a)) for a in args}
        missing = {a: FIXED.get(a, MISSING_REF if a == "ref" else MISSING_INT) for a in args}
        call: Callable[..., Any] = getattr(client, method.lower())
        kwargs: dict[str, Any] = {"headers": headers}
        if method in ("POST", "PATCH", "PUT"):
            kwargs["json"] = {}
        a = call(_fill(rule, foreign), **kwargs)
        b = call(_fill(rule, missing), **kwargs)
        checked.append(f"{method} {rule}")
        a_code = (a.get_json(silent=True) or {}).get("error", {}).get("code")
        b_code = (b.get_json(silent=True) or {}).get("error", {}).get("code")
        if a.status_code < 300 or (a.status_code, a_code) != (b.status_code, b_code):
            leaks.append(
                f"{method} {rule}: other township {a.status_code} {a_code}, "
                f"missing {b.status_code} {b_code}"
            )
    assert not leaks, "\n".join(leaks)
    assert len(checked) >= 30, (checked, skipped)
