"""The card revocation list that offline terminals keep, and what each terminal last fetched.

A revoked card gets the next version of the list (`integrity_cards.revocation_version`, one
row in `card_revocation_list` holding the current version); a terminal's signed fetch of the
list records the version it was given and when (`terminals.revocation_list_version`,
`terminals.revocation_list_synced_at`). Cards revoked before this migration are numbered in
the order they were revoked.

Revision ID: 1400
Revises: 1300
"""

import sqlalchemy as sa
from alembic import op

revision = "1400"
down_revision = "1300"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "integrity_cards", sa.Column("revocation_version", sa.BigInteger(), nullable=True)
    )
    op.execute(
        "UPDATE integrity_cards SET revocation_version = (SELECT r.n FROM (SELECT id,"
        " ROW_NUMBER() OVER (ORDER BY revoked_at, id) AS n FROM integrity_cards"
        " WHERE status = 'revoked') AS r WHERE r.id = integrity_cards.id)"
        " WHERE status = 'revoked'"
    )
    op.create_index(
        "uq_integrity_cards_revocation_version",
        "integrity_cards",
        ["revocation_version"],
        unique=True,
    )
    op.create_table(
        "card_revocation_list",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_card_revocation_list_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_revocation_list")),
    )
    op.execute(
        "INSERT INTO card_revocation_list (id, version, updated_at) SELECT 1,"
        " (SELECT COUNT(*) FROM integrity_cards WHERE status = 'revoked'), CURRENT_TIMESTAMP"
    )
    op.add_column("terminals", sa.Column("revocation_list_version", sa.BigInteger(), nullable=True))
    op.add_column(
        "terminals",
        sa.Column("revocation_list_synced_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+), not a batch rebuild, which would trip
    # the foreign keys that point at these tables (as in 1000).
    op.execute("ALTER TABLE terminals DROP COLUMN revocation_list_synced_at")
    op.execute("ALTER TABLE terminals DROP COLUMN revocation_list_version")
    op.drop_table("card_revocation_list")
    op.drop_index("uq_integrity_cards_revocation_version", table_name="integrity_cards")
    op.execute("ALTER TABLE integrity_cards DROP COLUMN revocation_version")
