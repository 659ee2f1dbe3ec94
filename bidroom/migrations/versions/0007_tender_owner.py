"""a tender's owners: the organisation and the chairs who act on it (bidroom.owners)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tender", sa.Column("owner", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("tender", "owner")
