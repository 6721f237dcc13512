"""A partner's name is unique in its township.

Cashiers, farmers and statements tell partners apart by name, and a repeated POST of the admin
API made a second partner of the same name. Existing duplicates keep the oldest partner's name;
each later one is renamed with its id appended (their ledgers, terminals and statements hang on
the id and are untouched), so an admin can tell them apart and merge or deactivate them.

Revision ID: 1200
Revises: 1100
"""

import sqlalchemy as sa
from alembic import op

revision = "1200"
down_revision = "1100"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE partners SET name = substr(name, 1, 80) || '（' || CAST(id AS VARCHAR(20))"
            " || '）' WHERE EXISTS (SELECT 1 FROM partners AS older"
            " WHERE older.township_id = partners.township_id AND older.name = partners.name"
            " AND older.id < partners.id)"
        )
    )
    # A unique index, not a constraint: SQLite adds it without rebuilding the table, which
    # every partner's terminals, goods and ledger accounts refer to.
    op.create_index(
        "uq_partners_township_id_name", "partners", ["township_id", "name"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_partners_township_id_name", table_name="partners")
