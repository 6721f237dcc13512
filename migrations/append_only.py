"""DDL helpers for migrations: make a table append-only in the database itself."""

from __future__ import annotations

from alembic import op


def make_append_only(table: str) -> None:
    """Refuse UPDATE and DELETE on `table` (PostgreSQL and SQLite)."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            """
            CREATE OR REPLACE FUNCTION mall_refuse_change() RETURNS trigger AS $$
            BEGIN
              RAISE EXCEPTION 'table % is append-only', TG_TABLE_NAME
                USING ERRCODE = 'integrity_constraint_violation';
            END $$ LANGUAGE plpgsql;
            """
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION mall_refuse_change()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


def drop_append_only(table: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    else:
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
