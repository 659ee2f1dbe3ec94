"""the audit log: entries and signed checkpoints

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_entry",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("idx", sa.BigInteger(), nullable=True, unique=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("room_id", sa.String(length=100), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("objects", sa.JSON(), nullable=False),
        sa.Column("leaf", sa.LargeBinary(length=32), nullable=True),
    )
    op.create_index(
        "audit_entry_pending",
        "audit_entry",
        ["id"],
        postgresql_where=sa.text("idx IS NULL"),
        sqlite_where=sa.text("idx IS NULL"),
    )
    op.create_table(
        "audit_checkpoint",
        sa.Column("size", sa.BigInteger(), primary_key=True),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("timestamp", sa.LargeBinary(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_checkpoint")
    op.drop_index("audit_entry_pending", table_name="audit_entry")
    op.drop_table("audit_entry")
