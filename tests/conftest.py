"""Test harness: a database built by the migrations, each test in a rolled-back transaction.

`TEST_DATABASE_URL` picks the backend: unset or `sqlite` for a SQLite file, or a PostgreSQL
URL, in which case a fresh database is created on that server for this run and dropped after.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from mall.config import Config
from mall.extensions import db
from mall.web.app import create_app
from tests.auth.client import fresh_client

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def _backend_url() -> str:
    return os.environ.get("TEST_DATABASE_URL", "sqlite")


def is_postgres() -> bool:
    return _backend_url().startswith("postgres")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if is_postgres():
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: set TEST_DATABASE_URL")
    for item in items:
        if "postgres_only" in item.keywords:
            item.add_marker(skip)


def create_scratch_database(tmp_dir: str, label: str = "t") -> tuple[str, object]:
    """A new empty database on the configured backend, and a function that drops it."""
    base = _backend_url()
    if not base.startswith("postgres"):
        path = os.path.join(tmp_dir, f"{label}-{uuid.uuid4().hex[:8]}.db")
        return f"sqlite:///{path}", lambda: None
    name = f"mall_{label}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin_url = make_url(base).set(drivername="postgresql+psycopg")
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return admin_url.set(database=name).render_as_string(hide_password=False), drop


def make_test_app(database_url: str, **overrides: object) -> Flask:
    config = Config({"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"})
    # Rate limits off unless a test turns them on (tests/test_ratelimits.py).
    return create_app(config, TESTING=True, **{"RATELIMIT_ENABLED": False, **overrides})


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, drop = create_scratch_database(str(tmp_path_factory.mktemp("db")), "test")
    yield url
    drop()  # type: ignore[operator]


@pytest.fixture(scope="session")
def app(database_url: str) -> Iterator[Flask]:
    app = make_test_app(database_url)
    with app.app_context():
        upgrade(revision="heads")
    yield app
    db.session.remove()
    app.extensions["mall_db_engine"].dispose()  # before the database is dropped


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """The request-scoped session, bound to a connection whose transaction is rolled back.

    Code under test commits as usual; with `create_savepoint` those commits only release
    savepoints inside the outer transaction, which the fixture throws away at the end.
    """
    connection = db.engine.connect()
    outer = connection.begin()
    db.session.remove()
    db.session.configure(bind=connection, join_transaction_mode="create_savepoint")
    ctx = app.app_context()
    ctx.push()
    try:
        yield db.session()
    finally:
        db.session.remove()
        ctx.pop()
        outer.rollback()
        connection.close()
        db.session.configure(bind=None, join_transaction_mode="conditional_savepoint")


@pytest.fixture
def client(app: Flask, session: Session) -> FlaskClient:
    """A client whose every request starts with an empty `g`, as in production."""
    return fresh_client(app)


@pytest.fixture
def committed(app: Flask) -> Iterator[Flask]:
    """For tests that need real commits seen by other connections (threads): the tables
    are emptied afterwards. PostgreSQL's TRUNCATE skips the append-only row triggers."""
    with app.app_context():
        yield app
        db.session.remove()
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            else:
                pytest.fail("committed fixture is for PostgreSQL tests (mark postgres_only)")


# The real-gunicorn fixture, shared by the end-to-end, fuzz and browser tests.
from tests.live import LiveServer, live_server, scratch_live_server  # noqa: E402, F401
