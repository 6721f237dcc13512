"""Index a household's ledger accounts by household.

Scans, payments and the farmer's balance find the two wallets by (township, subject); the
unique index on (township, kind, asset, subject) cannot serve that and PostgreSQL walked
every wallet of the kind in the township (about 190 µs per scan at 3,600 households,
growing with the township; docs/benchmarks.md).

Revision ID: 1100
Revises: 1000
"""

import sqlalchemy as sa
from alembic import op

revision = "1100"
down_revision = "1000"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_ledger_accounts_subject_id",
        "ledger_accounts",
        ["township_id", "subject_id"],
        postgresql_where=sa.text("subject_id IS NOT NULL"),
        sqlite_where=sa.text("subject_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_ledger_accounts_subject_id", table_name="ledger_accounts")
