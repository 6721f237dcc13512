"""Idempotency-Key on the staff API: a retried write (a points event, a benefit, a partner)
answers what the first did instead of doing it twice.

Revision ID: 1300
Revises: 1200
"""

import sqlalchemy as sa
from alembic import op

revision = "1300"
down_revision = "1200"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_idempotency_keys",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_type", sa.String(length=100), nullable=True),
        sa.Column("response_sealed", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_staff_idempotency_keys_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_idempotency_keys")),
    )
    op.create_index(
        "ix_staff_idempotency_keys_created_at", "staff_idempotency_keys", ["created_at"]
    )
    op.create_index(
        "uq_staff_idempotency_keys_user_key",
        "staff_idempotency_keys",
        ["user_id", "key"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_staff_idempotency_keys_user_key", table_name="staff_idempotency_keys")
    op.drop_index("ix_staff_idempotency_keys_created_at", table_name="staff_idempotency_keys")
    op.drop_table("staff_idempotency_keys")
