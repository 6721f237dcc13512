"""The migrations build the schema from empty, match the models, and are reversible."""

from __future__ import annotations

import os
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.orm import Session

from mall.db import Base
from tests.conftest import create_scratch_database
from tests.live import run_flask


def test_models_match_migrations(session: Session) -> None:
    ctx = MigrationContext.configure(session.connection(), opts={"compare_type": True})
    diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], diff


def test_upgrade_downgrade_upgrade_on_a_fresh_database(tmp_path: Path) -> None:
    # In a child process: the app's database extension is process-wide, and this suite's
    # app stays bound to the suite's database.
    url, drop = create_scratch_database(str(tmp_path), "mig")
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    try:
        run_flask(env, "db", "upgrade", "heads")
        run_flask(env, "db", "downgrade", "base")
        run_flask(env, "db", "upgrade", "heads")
        run_flask(env, "db", "check")
    finally:
        drop()  # type: ignore[operator]
