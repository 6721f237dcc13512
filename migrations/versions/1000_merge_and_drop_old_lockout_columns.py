"""Merge the capability branches into one head; drop the old lockout columns.

Logins are throttled in `login_throttles` (0300) for farmers and staff alike; the per-row
counters on households and users were never used and could only disagree with it. Plain
ALTER TABLE ... DROP COLUMN (SQLite 3.35+) rather than a batch rebuild, which would trip the
foreign keys that point at these tables.

Revision ID: 1000
Revises: 0300, 0600, 0800, 0900
"""

from alembic import op

revision = "1000"
down_revision = ("0300", "0600", "0800", "0900")
branch_labels = None
depends_on = None

DROPPED = {
    "credit_subjects": [
        ("login_failed_count", "INTEGER NOT NULL DEFAULT 0"),
        ("login_first_failed_at", "TIMESTAMP WITH TIME ZONE"),
        ("login_locked_until", "TIMESTAMP WITH TIME ZONE"),
    ],
    "users": [
        ("failed_logins", "INTEGER NOT NULL DEFAULT 0"),
        ("first_failed_at", "TIMESTAMP WITH TIME ZONE"),
        ("locked_until", "TIMESTAMP WITH TIME ZONE"),
    ],
}


def upgrade() -> None:
    for table, columns in DROPPED.items():
        for name, _ in columns:
            op.execute(f"ALTER TABLE {table} DROP COLUMN {name}")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, columns in DROPPED.items():
        for name, ddl in columns:
            if sqlite:
                ddl = ddl.replace("TIMESTAMP WITH TIME ZONE", "DATETIME")
            op.execute(f"ALTER TABLE {table} ADD COLUMN {name} {ddl}")
