"""A household's session generation: a PIN change, an admin PIN reset, a lost card, a freeze or
revocation and a logout end every login of the household at once (mall/subjects/logins.py).

Every farmer access and refresh token and every /m/ page session carries the generation it was
issued under; one without it is refused, so after this upgrade every farmer logs in once more
(a login that survived an earlier PIN change cannot live on).

Revision ID: 1500
Revises: 1400
"""

import sqlalchemy as sa
from alembic import op

revision = "1500"
down_revision = "1400"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN with a constant default: no table rewrite on PostgreSQL 11+, and no
    # batch rebuild on SQLite (which would trip the foreign keys pointing at this table).
    op.add_column(
        "credit_subjects",
        sa.Column("session_gen", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    op.execute("ALTER TABLE credit_subjects DROP COLUMN session_gen")
