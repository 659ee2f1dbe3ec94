"""tenders, lots, key shares, registrations, bids and uploads

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "tender",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("number", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        _when("created_at"),
        _when("updated_at"),
        _when("published_at", nullable=True),
    )
    op.create_table(
        "lot",
        sa.Column("id", sa.String(length=100), primary_key=True),
        sa.Column("tender_id", sa.String(length=40), sa.ForeignKey("tender.id"), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("room_id", sa.String(length=100), nullable=False),
        _when("deadline"),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("opening_key", sa.LargeBinary(), nullable=False),
        sa.Column("key_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("commitments", sa.JSON(), nullable=False),
        sa.Column("custodians", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        _when("created_at"),
    )
    op.create_index("ix_lot_tender_id", "lot", ["tender_id"])
    op.create_table(
        "lot_share",
        sa.Column("lot_id", sa.String(length=100), sa.ForeignKey("lot.id"), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("file", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("lot_id", "subject"),
    )
    op.create_table(
        "registration",
        sa.Column("lot_id", sa.String(length=100), sa.ForeignKey("lot.id"), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("organisation", sa.String(length=300), nullable=True),
        _when("at"),
        sa.PrimaryKeyConstraint("lot_id", "subject"),
    )
    op.create_table(
        "bid",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("lot_id", sa.String(length=100), sa.ForeignKey("lot.id"), nullable=False),
        sa.Column("bidder", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("organisation", sa.String(length=300), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("envelope_sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        _when("received_at"),
        sa.Column("tsa_token", sa.LargeBinary(), nullable=False),
        sa.Column("uploader_address", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("receipt", sa.JSON(), nullable=False),
        sa.UniqueConstraint("lot_id", "bidder", "version", name="bid_version"),
    )
    # the last line of defence: one current bid per bidder and lot
    op.create_index(
        "bid_current",
        "bid",
        ["lot_id", "bidder"],
        unique=True,
        postgresql_where=sa.text("status = 'current'"),
        sqlite_where=sa.text("status = 'current'"),
    )
    op.create_table(
        "upload",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("lot_id", sa.String(length=100), sa.ForeignKey("lot.id"), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.JSON(), nullable=True),
        _when("created_at"),
    )
    op.create_index("ix_upload_owner", "upload", ["owner"])


def downgrade() -> None:
    op.drop_index("ix_upload_owner", table_name="upload")
    op.drop_table("upload")
    op.drop_index("bid_current", table_name="bid")
    op.drop_table("bid")
    op.drop_table("registration")
    op.drop_table("lot_share")
    op.drop_index("ix_lot_tender_id", table_name="lot")
    op.drop_table("lot")
    op.drop_table("tender")
