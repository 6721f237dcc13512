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
    conn = op.get_bind()
    later = conn.execute(
        sa.text(
            "SELECT p.id, p.township_id, p.name FROM partners AS p WHERE EXISTS"
            " (SELECT 1 FROM partners AS older WHERE older.township_id = p.township_id"
            " AND older.name = p.name AND older.id < p.id) ORDER BY p.id"
        )
    ).all()
    for partner_id, township_id, name in later:
        # Checked against the names as they are now, renames included: "超市（7）" may be
        # a real partner's name already.
        tries = 0
        while True:
            suffix = f"（{partner_id}）" if tries == 0 else f"（{partner_id}-{tries}）"
            candidate = name[: 100 - len(suffix)] + suffix
            taken = conn.execute(
                sa.text("SELECT 1 FROM partners WHERE township_id = :t AND name = :n"),
                {"t": township_id, "n": candidate},
            ).first()
            if taken is None:
                break
            tries += 1
        conn.execute(
            sa.text("UPDATE partners SET name = :n WHERE id = :id"),
            {"n": candidate, "id": partner_id},
        )
    # A unique index, not a constraint: SQLite adds it without rebuilding the table, which
    # every partner's terminals, goods and ledger accounts refer to.
    op.create_index(
        "uq_partners_township_id_name", "partners", ["township_id", "name"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_partners_township_id_name", table_name="partners")
