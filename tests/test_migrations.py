"""The migrations build the schema from empty, match the models, and are reversible."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy.orm import Session

from mall.db import Base
from mall.extensions import db
from tests.conftest import create_scratch_database, make_test_app


def test_models_match_migrations(app: Flask, session: Session) -> None:
    ctx = MigrationContext.configure(session.connection(), opts={"compare_type": True})
    diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], diff


def test_upgrade_downgrade_upgrade_on_a_fresh_database(tmp_path, app: Flask) -> None:  # type: ignore[no-untyped-def]
    url, drop = create_scratch_database(str(tmp_path), "mig")
    fresh = make_test_app(url)
    try:
        with fresh.app_context():
            upgrade(revision="heads")
            downgrade(revision="base")
            upgrade(revision="heads")
    finally:
        # The extension is shared: point it back at the suite's database.
        db.session.remove()
        db.engine.dispose()
        db.init_app(app)
        drop()  # type: ignore[operator]
