"""The database extension: one engine per app, one scoped session per thread.

We use SQLAlchemy directly rather than Flask-SQLAlchemy because services take an explicit
`Session`, and tests bind that session to a connection inside a rolled-back transaction;
Flask-SQLAlchemy 3 ignores session-level binds, which makes that isolation style impossible.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from flask import Flask, current_app, has_app_context
from sqlalchemy import MetaData, Table, create_engine, event, text
from sqlalchemy import types as sqltypes
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.sqlite import DATETIME as SQLITE_DATETIME
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
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


class _AwareSQLiteDateTime(SQLITE_DATETIME):
    """`DateTime(timezone=True)` on SQLite: stored as UTC text, read back as aware UTC.

    SQLite has no time zone type, and SQLAlchemy's SQLite DATETIME drops the offset on the
    way in and returns naive values on the way out. PostgreSQL returns aware values; with
    this both backends give the services (and the JSON, which must carry an offset) the same.
    """

    def bind_processor(self, dialect: Any) -> Any:
        inner = super().bind_processor(dialect)
        aware = self.timezone

        def process(value: Any) -> Any:
            if aware and isinstance(value, datetime) and value.tzinfo is not None:
                value = value.astimezone(UTC).replace(tzinfo=None)
            return inner(value) if inner else value

        return process

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        inner = super().result_processor(dialect, coltype)
        if not self.timezone:
            return inner

        def process(value: Any) -> Any:
            value = inner(value) if inner else value
            if isinstance(value, datetime) and value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            return value

        return process


def _configure_sqlite(engine: Engine) -> None:
    """WAL, foreign keys, and writers serialised by BEGIN IMMEDIATE.

    pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; we take it over
    (the recipe from the SQLAlchemy SQLite dialect docs). BEGIN IMMEDIATE takes the write lock
    at the start, so two transactions can never both read a balance and then both write it.
    """

    engine.dialect.colspecs = {**engine.dialect.colspecs, sqltypes.DateTime: _AwareSQLiteDateTime}

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
    # No ping before every checkout (a round trip on every request): a connection found dead
    # (PostgreSQL restarted) fails its request with 503 and SQLAlchemy then replaces every
    # pooled connection, so the service recovers by itself (tests/faults/test_pg_restart.py).
    # DATABASE_POOL_PRE_PING=1 where the network silently cuts idle connections.
    kwargs.setdefault("pool_pre_ping", False)
    kwargs.setdefault("pool_recycle", 3600)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


class _AppSession(Session):
    """A session that, unless bound explicitly, uses the engine of the current app.

    One process may hold several apps (tests, benchmarks, a fault-injection run); each keeps
    its own engine, and building a second app never rebinds the first one's sessions.
    """

    def get_bind(self, mapper: Any = None, **kwargs: Any) -> Any:
        if self.bind is not None or kwargs.get("bind") is not None:
            return super().get_bind(mapper, **kwargs)
        return _engine_of_current_app()


def _engine_of_current_app() -> Engine:
    if has_app_context():
        engine: Engine = current_app.extensions["mall_db_engine"]
        return engine
    if _first_engine is None:
        raise RuntimeError("no Flask app has been created with the database extension")
    return _first_engine


_first_engine: Engine | None = None


class Database:
    """Flask extension owning each app's engine and the request-scoped session."""

    def __init__(self) -> None:
        self.metadata = Base.metadata
        self.session: scoped_session[Session] = scoped_session(
            sessionmaker(class_=_AppSession, expire_on_commit=False)
        )

    def init_app(self, app: Flask) -> None:
        global _first_engine
        # The engine is lazy: create_app never connects (style: no database at start-up).
        engine = make_engine(
            app.config["DATABASE_URL"], pool_pre_ping=app.config["DATABASE_POOL_PRE_PING"]
        )
        app.extensions["mall_db"] = self
        app.extensions["mall_db_engine"] = engine
        if _first_engine is None:
            _first_engine = engine

        @app.teardown_appcontext
        def _remove_session(_exc: BaseException | None) -> None:
            self.session.remove()

    @property
    def engine(self) -> Engine:
        """The current app's engine; outside an app context (worker threads, scripts), the
        engine of the first app this process created."""
        return _engine_of_current_app()

    # Flask-Migrate's env.py asks for these.
    def get_engine(self) -> Engine:
        return self.engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


def insert_for(session: Session, table: Table) -> Any:
    """An INSERT for the session's backend, with its `on_conflict_do_nothing()` (PostgreSQL and
    SQLite spell ON CONFLICT the same way, but SQLAlchemy builds each in its own dialect)."""
    return insert_for_dialect(session.get_bind().dialect.name, table)


def insert_for_dialect(dialect: str, table: Table) -> Any:
    """`insert_for` by dialect name, for statements built once per dialect (mall.driver_sql)."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def commit_without_waiting_for_disk(session: Session) -> None:
    """Commit a record that other connections must see at once but whose durability may ride
    on the next durable commit: WAL is flushed in order, so any later ordinary commit makes it
    durable too, and a crash before that loses only a record no committed work depends on
    (a nonce, an idempotency claim whose work never committed). PostgreSQL only; elsewhere a
    plain commit."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    session.commit()


def lock_row(session: Session, instance: object) -> None:
    """Lock the instance's row until the transaction ends and read it again (SELECT ... FOR
    UPDATE; nothing on SQLite, whose write transactions are serial), so the checks that
    follow see what a concurrent transaction committed meanwhile. Changes not yet flushed
    are flushed first: a refresh alone would silently put the old values back."""
    session.flush()
    session.refresh(instance, with_for_update=True)


def add_unique(
    session: Session, instance: object, refusal: Exception, *, only: str | None = None
) -> None:
    """Add and flush a new row in a savepoint; should a unique key refuse it (the same key
    inserted by a concurrent request, after both passed the caller's own check), raise
    `refusal` (a DomainError: 409, not a 500) and leave the rest of the transaction usable.
    `only`: the name of the one unique constraint or index meant; any other refusal is
    raised as it is."""
    with unique_or(session, type(instance), refusal, only=only):
        session.add(instance)


@contextmanager
def unique_or(
    session: Session, model: type, refusal: Exception, *, only: str | None = None
) -> Iterator[None]:
    """Changes made in the block are flushed in a savepoint; should a unique key of `model`
    refuse them, they are rolled back (the savepoint's rollback expires the rows) and
    `refusal` raised, the rest of the transaction still usable. The savepoint opens before
    the block: begin_nested() flushes what was pending before it, outside the savepoint, so
    a change that may be refused must be made inside (a rename, say)."""
    try:
        with session.begin_nested():
            yield
            session.flush()
    except IntegrityError as exc:
        if only is not None and not _refused_by(exc, model, only):
            raise
        raise refusal from exc


def _refused_by(exc: IntegrityError, model: type, name: str) -> bool:
    diag = getattr(exc.orig, "diag", None)
    if diag is not None:  # PostgreSQL names the constraint or index
        return bool(diag.constraint_name == name)
    # SQLite names the columns: "UNIQUE constraint failed: table.a, table.b"
    table: Table = model.__table__  # type: ignore[attr-defined]
    keys: list[Any] = [*table.constraints, *table.indexes]
    key = next((k for k in keys if k.name == name), None)
    if key is None:
        return False
    return str(exc.orig).endswith(", ".join(f"{table.name}.{c.name}" for c in key.columns))
