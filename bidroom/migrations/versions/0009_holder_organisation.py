"""the organisation a registry holder last signed in with (the custody policy's insiders)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("holder_role", sa.Column("organisation", sa.String(length=300), nullable=True))


def downgrade() -> None:
    op.drop_column("holder_role", "organisation")
