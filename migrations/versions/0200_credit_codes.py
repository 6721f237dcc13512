"""credit codes

Revision ID: 0200
Revises: 0001
Create Date: 2026-11-21 01:32:11.828618
"""

from alembic import op
import sqlalchemy as sa


revision = "0200"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "code_signing_keys",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kid", sa.String(length=16), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("private_key_sealed", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verify_until", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "verify_until IS NULL OR retired_at IS NOT NULL",
            name=op.f("ck_code_signing_keys_verify_until_needs_retired"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_code_signing_keys")),
        sa.UniqueConstraint("kid", name=op.f("uq_code_signing_keys_kid")),
    )
    op.create_table(
        "used_dynamic_codes",
        sa.Column("jti", sa.String(length=32), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_used_dynamic_codes")),
    )
    op.create_index(
        "ix_used_dynamic_codes_expires_at", "used_dynamic_codes", ["expires_at"], unique=False
    )
    op.create_table(
        "integrity_cards",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("serial", sa.String(length=16), nullable=False),
        sa.Column(
            "subject_id", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=False
        ),
        sa.Column("kid", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "(status = 'active' AND revoked_at IS NULL) OR (status = 'revoked' AND revoked_at IS NOT NULL)",
            name=op.f("ck_integrity_cards_revoked_at_by_status"),
        ),
        sa.CheckConstraint(
            "status IN ('active', 'revoked')", name=op.f("ck_integrity_cards_status")
        ),
        sa.ForeignKeyConstraint(
            ["kid"],
            ["code_signing_keys.kid"],
            name=op.f("fk_integrity_cards_kid_code_signing_keys"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["credit_subjects.id"],
            name=op.f("fk_integrity_cards_subject_id_credit_subjects"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integrity_cards")),
        sa.UniqueConstraint("serial", name=op.f("uq_integrity_cards_serial")),
    )
    op.create_index(
        "ix_integrity_cards_kid_status", "integrity_cards", ["kid", "status"], unique=False
    )
    op.create_index(
        "ix_integrity_cards_subject_id", "integrity_cards", ["subject_id"], unique=False
    )
    op.create_index(
        "uq_integrity_cards_active_subject",
        "integrity_cards",
        ["subject_id"],
        unique=True,
        postgresql_where=sa.text("status = 'active'"),
        sqlite_where=sa.text("status = 'active'"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_integrity_cards_active_subject",
        table_name="integrity_cards",
        postgresql_where=sa.text("status = 'active'"),
        sqlite_where=sa.text("status = 'active'"),
    )
    op.drop_index("ix_integrity_cards_subject_id", table_name="integrity_cards")
    op.drop_index("ix_integrity_cards_kid_status", table_name="integrity_cards")
    op.drop_table("integrity_cards")
    op.drop_index("ix_used_dynamic_codes_expires_at", table_name="used_dynamic_codes")
    op.drop_table("used_dynamic_codes")
    op.drop_table("code_signing_keys")
