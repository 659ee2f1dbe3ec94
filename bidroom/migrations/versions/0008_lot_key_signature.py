"""the chair's signature of a lot's public key statement (ca.lot_key)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("lot", sa.Column("key_signature", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("lot", "key_signature")
