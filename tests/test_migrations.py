"""The migrations build the schema from empty, match the models, and are reversible."""

from __future__ import annotations

import os
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
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


def test_partner_names_made_unique_keep_the_oldest_and_rename_the_rest(tmp_path: Path) -> None:
    """Migration 1200 on a database that already has two partners of one name in a township."""
    url, drop = create_scratch_database(str(tmp_path), "mig1200")
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    engine = create_engine(url)
    try:
        run_flask(env, "db", "upgrade", "1100")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO regions (id, kind, code, name, parent_id, county_id, settings)"
                    " VALUES (1, 'county', 'C', '水城县', NULL, NULL, '{}'),"
                    " (2, 'township', 'T1', '龙场镇', 1, 1, '{}'),"
                    " (3, 'township', 'T2', '新寨镇', 1, 1, '{}')"
                )
            )
            for pid, town, name in (
                (5, 2, "信用超市"),
                (7, 2, "信用超市"),
                (8, 2, "信用超市（7）"),  # the name a plain rename of 7 would take
                (9, 3, "信用超市"),
            ):
                conn.execute(
                    text(
                        "INSERT INTO partners (id, county_id, township_id, name, category,"
                        " address, contact_name, contact_phone_masked, accepts_integrity,"
                        " accepts_points, settlement, active, created_at) VALUES (:id, 1,"
                        " :town, :name, 'supermarket', '', '', '', true, true, '{}', true,"
                        " CURRENT_TIMESTAMP)"
                    ),
                    {"id": pid, "town": town, "name": name},
                )
        run_flask(env, "db", "upgrade", "heads")
        with engine.connect() as conn:
            names = dict(conn.execute(text("SELECT id, name FROM partners")).all())
        assert names == {5: "信用超市", 7: "信用超市（7-1）", 8: "信用超市（7）", 9: "信用超市"}
    finally:
        engine.dispose()
        drop()  # type: ignore[operator]
