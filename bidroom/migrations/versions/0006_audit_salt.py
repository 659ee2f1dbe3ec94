"""each audit entry's salt: the leaf commits to the entry, so a public proof reveals nothing;
an index by actor, so a subject finds its own entries (GET /api/audit/mine)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

Entries integrated before it keep no salt: they are version-1 entries and verify as before. A
pending entry recorded before it gets its salt from the integrator (bidroom.audit_log).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("audit_entry", sa.Column("salt", sa.String(length=64), nullable=True))
    op.create_index("ix_audit_entry_actor_idx", "audit_entry", ["actor", "idx"])


def downgrade() -> None:
    op.drop_index("ix_audit_entry_actor_idx", table_name="audit_entry")
    op.drop_column("audit_entry", "salt")
