"""an index on the audit log by room and seq: the opening's record finds its entries by them

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_audit_entry_room_seq", "audit_entry", ["room_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_audit_entry_room_seq", table_name="audit_entry")
