"""SQLite that cannot be written: a read-only file, and a full database.

Out of space is simulated with `PRAGMA max_page_count` (the database may not grow past its
current size: exactly the SQLITE_FULL a full disk gives), read-only with a `mode=ro` URI (as
root, file permissions would not stop a write). Either way the API answers 503
`service_unavailable` in the envelope, and nothing is half-written: every payment that was
answered 201 is there whole, none other is, and the ledger verifies.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import event, func, select

from mall.extensions import db
from mall.ledger.verify import verify_ledger
from mall.partners.services import create_terminal
from mall.payments.models import Payment
from tests.auth.client import fresh_client
from tests.conftest import is_postgres, make_test_app
from tests.factories import make_county, make_household, make_partner
from tests.pos_adapter.conftest import Till, fund_household, rate

pytestmark = pytest.mark.skipif(is_postgres(), reason="SQLite file faults")


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A migrated SQLite file with a funded, rated household and a terminal."""
    db.session.remove()
    path = tmp_path / "faults.db"
    app = make_test_app(f"sqlite:///{path}")
    with app.app_context():
        upgrade(revision="heads")
        session = db.session()
        county = make_county(session, townships=1, villages_per_township=1)
        partner = make_partner(session, county.townships[0])
        terminal, secret = create_terminal(session, partner)
        household = make_household(session, county.villages[0])
        rate(household, 3)
        session.flush()
        fund_household(session, household, integrity_fen=500_000)
        from mall.codes.services import sign_dynamic_code

        codes = [sign_dynamic_code(session, household).code for _ in range(40)]
        session.commit()
        world = {"path": path, "terminal_id": terminal.terminal_id, "secret": secret}
        world["codes"] = codes
        db.session.remove()
        db.engine.dispose()
    try:
        yield world
    finally:
        db.session.remove()


def _app(url: str) -> Flask:
    return make_test_app(url)


def _till(app: Flask, world: dict[str, Any]) -> Till:
    from mall.partners.models import Terminal

    terminal = db.session.scalars(
        select(Terminal).where(Terminal.terminal_id == world["terminal_id"])
    ).one()
    db.session.remove()
    return Till(fresh_client(app), terminal, world["secret"])


def _state(url: str) -> tuple[int, bool]:
    app = _app(url)
    with app.app_context(), db.engine.connect() as conn:
        count = conn.scalar(select(func.count()).select_from(Payment)) or 0
        ok = verify_ledger(conn).ok
        conn.rollback()
    with app.app_context():
        db.engine.dispose()
    return count, ok


def test_full_database_answers_503_and_keeps_whole_payments(sqlite_file: dict[str, Any]) -> None:
    url = f"sqlite:///{sqlite_file['path']}"
    app = _app(url)

    @event.listens_for(app.extensions["mall_db_engine"], "connect")
    def _no_growth(dbapi_connection: Any, _record: Any) -> None:
        cur = dbapi_connection.cursor()
        pages = cur.execute("PRAGMA page_count").fetchone()[0]
        cur.execute(f"PRAGMA max_page_count = {pages + 2}")
        cur.close()

    statuses: list[int] = []
    with app.app_context():
        till = _till(app, sqlite_file)
        for code in sqlite_file["codes"]:
            key = uuid.uuid4().hex
            resp = till.post("/pos/v1/payments", {"code": code, "amount_fen": 10_000}, key=key)
            statuses.append(resp.status_code)
            if resp.status_code != 201:
                body = resp.get_json()
                assert resp.status_code == 503, body
                assert body["error"]["code"] == "service_unavailable"
            db.session.remove()
        db.engine.dispose()
    assert 503 in statuses, "the database never filled up"
    count, ok = _state(url)
    assert count == statuses.count(201)
    assert ok


def test_read_only_database_answers_503_and_changes_nothing(sqlite_file: dict[str, Any]) -> None:
    before = _state(f"sqlite:///{sqlite_file['path']}")
    app = _app(f"sqlite:///file:{sqlite_file['path']}?mode=ro&uri=true")
    with app.app_context():
        till = _till(app, sqlite_file)
        code = sqlite_file["codes"][0]
        for path, body in (
            ("/pos/v1/scan", {"code": code}),
            ("/pos/v1/payments", {"code": code, "amount_fen": 10_000}),
        ):
            resp = till.post(path, body)
            assert resp.status_code == 503, resp.get_json()
            assert resp.get_json()["error"]["code"] == "service_unavailable"
            db.session.remove()
        client = fresh_client(app)
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code in (200, 503)
        assert client.get("/pos/v1/keys").status_code == 200  # reading still works
        db.session.remove()
        db.engine.dispose()
    assert _state(f"sqlite:///{sqlite_file['path']}") == before
