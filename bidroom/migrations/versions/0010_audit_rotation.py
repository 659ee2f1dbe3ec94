"""the audit log's key rotations: each a statement signed by the old key and the new one

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08

A node signs a checkpoint only if the latest one stored is its own key's, or a stored rotation
hands the log on from the key that signed it to this node's (bidroom.audit_log, docs/audit.md
"The log's key").
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_rotation",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_rotation")
