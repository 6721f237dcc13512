"""Core statements for the hottest paths, executed at the driver's speed on PostgreSQL.

Every statement SQLAlchemy executes costs 100-200 µs of CPU in its execution machinery
(compiled-cache lookup, parameter processing, result metadata, ORM loading); psycopg alone
costs about 50 µs. A payment runs about ten statements and a till's CPU is what limits how
many payments a server takes, so for the few statements of the POS hot path the difference
is a large share of the request (docs/benchmarks.md).

A `DriverStatement` is an ordinary Core statement, built per dialect by a function, compiled
once. On PostgreSQL, when neither a parameter nor a result column needs a SQLAlchemy type
processor there (checked at compile time, not assumed), it is sent on the psycopg connection
of the session's own transaction and answers plain tuples. Anywhere else (SQLite, whose
datetimes are processed; a statement with an expanding IN) it runs through SQLAlchemy and
answers the same tuples. Either way it is inside the session's transaction: same locks, same
commit, and a driver error arrives as SQLAlchemy's would (`run_on_driver`). What it gives up
is SQLAlchemy's per-statement events and the ORM's loading: its rows are values, which
`EntityLoader` turns into instances and `MappedInsert` writes from one, where the hot path
needs them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Boolean, Connection, Table, bindparam, insert, inspect
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapper, Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable


@dataclass(frozen=True)
class _Compiled:
    statement: Executable
    compiled: SQLCompiler | None  # None: executed through SQLAlchemy
    sql: str
    # Known once, not asked of the cursor: psycopg builds its `description` anew each time.
    returns_rows: bool


class DriverStatement:
    """One Core statement (see the module docstring); `build(dialect_name)` makes it."""

    def __init__(self, build: Callable[[str], Executable]) -> None:
        self._build = build
        self._by_dialect: dict[str, _Compiled] = {}

    def rows(self, session: Session, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The rows the statement answers (none for DML without RETURNING)."""
        conn = _connection(session)
        prepared = self._prepared(conn.dialect)
        if prepared.compiled is None:
            result = conn.execute(prepared.statement, dict(params))
            return [tuple(row) for row in result] if result.returns_rows else []
        params = prepared.compiled.construct_params(params)
        cursor = run_on_driver(conn, prepared.sql, params)
        return cursor.fetchall() if prepared.returns_rows else []

    def first(self, session: Session, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        found = self.rows(session, params)
        return found[0] if found else None

    def rowcount(self, session: Session, params: Mapping[str, Any]) -> int:
        """Rows changed by an UPDATE or DELETE."""
        conn = _connection(session)
        prepared = self._prepared(conn.dialect)
        if prepared.compiled is None:
            result = conn.execute(prepared.statement, dict(params))
            return int(result.rowcount)
        cursor = run_on_driver(conn, prepared.sql, prepared.compiled.construct_params(params))
        return int(cursor.rowcount)

    def runs_on_driver(self, dialect: Dialect) -> bool:
        """Whether this statement bypasses SQLAlchemy's execution on `dialect` (for tests)."""
        return self._prepared(dialect).compiled is not None

    def _prepared(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            statement = self._build(dialect.name)
            compiled = cast(ClauseElement, statement).compile(dialect=dialect)
            plain = (
                dialect.name == "postgresql"
                and isinstance(compiled, SQLCompiler)
                and _needs_no_processing(compiled, dialect)
            )
            driver = cast(SQLCompiler, compiled) if plain else None
            returns_rows = bool(getattr(compiled, "_result_columns", True))
            found = _Compiled(statement, driver, compiled.string, returns_rows)
            self._by_dialect[dialect.name] = found
        return found


class MappedInsert:
    """The INSERT of one new ORM instance's row as a DriverStatement, after which the instance
    joins the session as persistent and clean, as if loaded: the unit of work (a flush costs
    more than the statement) is skipped. Column attributes left unset take their column's
    scalar default, or NULL (a computed default must be set first); the primary key comes
    back by RETURNING. Objects the instance refers to through relationships are cascaded into
    the session as usual (new ones are then inserted by the next flush)."""

    def __init__(self, model: type) -> None:
        mapper: Mapper[Any] = inspect(model)
        self._mapper = mapper
        table = mapper.local_table
        assert isinstance(table, Table)
        assert len(mapper.primary_key) == 1
        self._pk = mapper.get_property_by_column(mapper.primary_key[0]).key
        self._columns = [
            (attr.key, attr.columns[0]) for attr in mapper.column_attrs if attr.key != self._pk
        ]
        self._statement = DriverStatement(
            lambda _dialect: (
                insert(table)
                .values(
                    {
                        column.name: bindparam(f"b_{key}", type_=column.type)
                        for key, column in self._columns
                    }
                )
                .returning(mapper.primary_key[0])
            )
        )

    def new(self, **values: Any) -> Any:
        """A transient instance with these column values, made without the ORM's attribute
        events: a mapped constructor with thirty arguments costs more than the INSERT's own
        Python. For `insert`; relationships are set after it (its `loaded`, or as usual)."""
        instance = self._mapper.class_manager.new_instance()
        instance.__dict__.update(values)
        return instance

    def insert(
        self, session: Session, instance: Any, *, loaded: Mapping[str, Any] | None = None
    ) -> None:
        """INSERT the instance's row; it joins the session as persistent and clean.
        `loaded`: relationships whose value is known without a query (a new payment's
        refunds: none), set as if loaded."""
        state = instance.__dict__
        values = {}
        for key, column in self._columns:
            if key not in state:
                default = column.default
                if default is not None and not default.is_scalar:
                    raise ValueError(f"{key}: its default is computed; set it explicitly")
                setattr(instance, key, default.arg if default is not None else None)
            values[f"b_{key}"] = state[key]
        row = self._statement.first(session, values)
        assert row is not None
        setattr(instance, self._pk, row[0])
        make_transient_to_detached(instance)
        session.add(instance)
        for key, value in (loaded or {}).items():
            set_committed_value(instance, key, value)


class EntityLoader:
    """Instances of one model from rows a DriverStatement read: `columns` first in its
    SELECT, then `attach` makes each row's leading values a persistent, clean instance, as
    an ORM query would (an instance already in the session's identity map is the answer,
    as the ORM's is; relationships load lazily as usual)."""

    def __init__(self, model: type) -> None:
        mapper: Mapper[Any] = inspect(model)
        self._mapper = mapper
        self._keys = [attr.key for attr in mapper.column_attrs]
        self.columns: list[Any] = [attr.columns[0] for attr in mapper.column_attrs]
        self._pk_at = [self.columns.index(column) for column in mapper.primary_key]

    def attach(
        self, session: Session, row: Sequence[Any], at: int = 0, *, populate_existing: bool = False
    ) -> Any:
        """The instance of the row's values from position `at` on, in the session.
        `populate_existing`: an instance the session holds already takes the row's values
        (the ORM option of that name; for rows read under a lock)."""
        pk = tuple(row[at + i] for i in self._pk_at)
        found = session.identity_map.get(self._mapper.identity_key_from_primary_key(pk))
        if found is not None:
            if populate_existing:
                for key, value in zip(self._keys, row[at : at + len(self._keys)], strict=True):
                    set_committed_value(found, key, value)
            return found
        instance = self.detached(row, at)
        session.add(instance)
        return instance

    def detached(self, row: Sequence[Any], at: int = 0) -> Any:
        """The instance, in no session (see mall.cache for keeping such copies)."""
        instance = self._mapper.class_manager.new_instance()
        # What the ORM's own loader does: column values straight into the instance's dict.
        instance.__dict__.update(zip(self._keys, row[at : at + len(self._keys)], strict=True))
        make_transient_to_detached(instance)
        return instance


def _needs_no_processing(compiled: SQLCompiler, dialect: Dialect) -> bool:
    if "POSTCOMPILE" in compiled.string:  # an expanding IN: rendered per call by SQLAlchemy
        return False
    if any(_processed(b.type, dialect) for b in compiled.binds.values()):
        return False
    result_columns = getattr(compiled, "_result_columns", None)
    if result_columns is None:  # a SQLAlchemy without it: take the safe path
        return False
    return not any(col[3]._cached_result_processor(dialect, None) for col in result_columns)


def _processed(type_: Any, dialect: Dialect) -> bool:
    # Boolean's processor on a native-boolean backend only checks that the value is a bool
    # (callers pass bools) and returns it unchanged.
    if isinstance(type_, Boolean) and dialect.supports_native_boolean:
        return False
    return type_._cached_bind_processor(dialect) is not None


def _connection(session: Session) -> Connection:
    # As the ORM does before it queries: pending changes first (nearly free when none).
    if session.autoflush:
        session.flush()
    return session.connection()


def run_on_driver(conn: Connection, sql: str, params: Mapping[str, Any]) -> Any:
    """Execute on the psycopg connection under `conn` (inside its transaction) and return the
    cursor, its rows not yet fetched. A driver error is handled as SQLAlchemy handles its
    own: wrapped in sqlalchemy.exc (so the app's handlers answer it, e.g. 503 when the
    database is gone) and, for a lost connection, the connection and the pool invalidated, so
    the request's end does not try to roll back on a dead socket."""
    driver: Any = conn.connection.driver_connection
    try:
        return driver.execute(sql, params)
    except Exception as exc:
        if not isinstance(exc, conn.dialect.loaded_dbapi.Error):
            raise
        conn._handle_dbapi_exception(exc, sql, params, None, None)  # always raises
