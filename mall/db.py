"""The database extension: one engine per app, one scoped session per thread.

We use SQLAlchemy directly rather than Flask-SQLAlchemy because services take an explicit
`Session`, and tests bind that session to a connection inside a rolled-back transaction;
Flask-SQLAlchemy 3 ignores session-level binds, which makes that isolation style impossible.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _configure_sqlite(engine: Engine) -> None:
    """WAL, foreign keys, and writers serialised by BEGIN IMMEDIATE.

    pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; we take it over
    (the recipe from the SQLAlchemy SQLite dialect docs). BEGIN IMMEDIATE takes the write lock
    at the start, so two transactions can never both read a balance and then both write it.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


class Database:
    """Flask extension owning the engine and the request-scoped session."""

    def __init__(self) -> None:
        self.metadata = Base.metadata
        self._engine: Engine | None = None
        self.session: scoped_session[Session] = scoped_session(sessionmaker())

    def init_app(self, app: Flask) -> None:
        # The engine is lazy: create_app never connects (style: no database at start-up).
        self._engine = make_engine(app.config["DATABASE_URL"])
        self.session.configure(bind=self._engine, expire_on_commit=False)
        app.extensions["mall_db"] = self

        @app.teardown_appcontext
        def _remove_session(_exc: BaseException | None) -> None:
            self.session.remove()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("Database.init_app has not been called")
        return self._engine

    # Flask-Migrate's env.py asks for these.
    def get_engine(self) -> Engine:
        return self.engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name
