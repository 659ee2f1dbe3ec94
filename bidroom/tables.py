"""The database tables (SQLModel). Never returned to a client as they are: see bidroom.api.

A room's event log is the source of truth: ``room_event`` has one row per event, keyed by
(room, seq), so two writers can never both append seq N to one room. ``room_command`` remembers
each client command's outcome, keyed by (room, subject, client id), so a retried command is
answered with its original outcome instead of being applied twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Integer, LargeBinary, Text
from sqlmodel import Field, SQLModel


def _when(**kwargs: Any) -> Any:
    return Field(sa_column=Column(DateTime(timezone=True), nullable=False, **kwargs))


class RoomRow(SQLModel, table=True):
    __tablename__ = "room"

    id: str = Field(primary_key=True, max_length=100)
    kind: str = Field(max_length=40)
    title: str = Field(max_length=300)
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _when()


class EventRow(SQLModel, table=True):
    __tablename__ = "room_event"

    room_id: str = Field(primary_key=True, foreign_key="room.id", max_length=100)
    seq: int = Field(primary_key=True)
    name: str = Field(max_length=100)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    actor: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    at: datetime = _when()
    command_id: str | None = Field(default=None, max_length=100)


class CommandRow(SQLModel, table=True):
    __tablename__ = "room_command"

    room_id: str = Field(primary_key=True, foreign_key="room.id", max_length=100)
    subject: str = Field(primary_key=True, max_length=200)
    command_id: str = Field(primary_key=True, max_length=100)
    outcome: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    at: datetime = _when()


class NodeRow(SQLModel, table=True):
    __tablename__ = "node"

    id: str = Field(primary_key=True, max_length=64)
    started_at: datetime = _when()
    seen_at: datetime = _when()


class HolderRoleRow(SQLModel, table=True):
    """The platform's registry: which roles a certificate holder has (never the certificate's
    say). ``holder`` is ``uscc:<code>`` for an organisation or ``cert:<sha256>`` for one
    certificate."""

    __tablename__ = "holder_role"

    holder: str = Field(primary_key=True, max_length=100)
    name: str = Field(max_length=300)
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    granted_at: datetime = _when()
    # the O of the certificate the holder last signed in with (the custody policy counts an
    # assigned chair's organisation as an insider); None until they first sign in
    organisation: str | None = Field(default=None, max_length=300)


class LoginNonceRow(SQLModel, table=True):
    """Login challenges already answered: a second answer to one challenge is a replay."""

    __tablename__ = "login_nonce"

    nonce: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = _when()


class AuditEntryRow(SQLModel, table=True):
    """The audit log. A row is appended, pending, with its salt, in the transaction of what it
    records; the integrator later gives it its ``idx`` (its place in the Merkle tree) and its
    leaf hash."""

    __tablename__ = "audit_entry"

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    idx: int | None = Field(default=None, sa_column=Column(BigInteger, unique=True, nullable=True))
    at: datetime = _when()
    actor: str = Field(max_length=200)
    action: str = Field(max_length=100)
    room_id: str | None = Field(default=None, max_length=100)
    seq: int | None = Field(default=None)
    objects: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    leaf: bytes | None = Field(default=None, sa_column=Column(LargeBinary(32), nullable=True))
    # 32 random bytes in hex, committed in the leaf (a version-2 entry); null only in entries
    # integrated before migration 0006 (version 1).
    salt: str | None = Field(default=None, max_length=64)


class CheckpointRow(SQLModel, table=True):
    """A signed checkpoint (C2SP tlog-checkpoint) of the log, with its RFC 3161 timestamp."""

    __tablename__ = "audit_checkpoint"

    size: int = Field(sa_column=Column(BigInteger, primary_key=True))
    root: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    note: str = Field(sa_column=Column(Text, nullable=False))
    timestamp: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    at: datetime = _when()


class RotationRow(SQLModel, table=True):
    """A change of the log's key: a statement signed by the old key and the new one."""

    __tablename__ = "audit_rotation"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    note: str = Field(sa_column=Column(Text, nullable=False))
    at: datetime = _when()


# tenders, lots and bids (docs/opening.md) --------------------------------------------------


class TenderRow(SQLModel, table=True):
    """A tender as staff wrote it (``spec``: the TenderSpec's JSON); frozen once published."""

    __tablename__ = "tender"

    id: str = Field(primary_key=True, max_length=40)
    number: str = Field(max_length=100)
    title: str = Field(max_length=300)
    status: str = Field(max_length=20)  # draft | published
    spec: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_by: str = Field(max_length=200)
    # its owners (bidroom.owners): {"organisation": str | null, "chairs": [subject]}
    owner: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = _when()
    updated_at: datetime = _when()
    published_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class LotRow(SQLModel, table=True):
    """A published lot: its frozen spec, its opening room, the public half of its opening key
    and the commitments to the custodians' shares (never a share, never the private key)."""

    __tablename__ = "lot"

    id: str = Field(primary_key=True, max_length=100)
    tender_id: str = Field(foreign_key="tender.id", max_length=40, index=True)
    number: str = Field(max_length=20)
    title: str = Field(max_length=300)
    room_id: str = Field(max_length=100)
    deadline: datetime = _when()
    spec: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    opening_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    key_fingerprint: str = Field(max_length=64)
    commitments: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    custodians: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    # the chair's signature of the lot's public parts (ca.lot_key); none until signed, and
    # no bid is taken until then
    key_signature: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True)
    )
    status: str = Field(max_length=20)  # published
    created_at: datetime = _when()


class LotShareRow(SQLModel, table=True):
    """One custodian's share file (ca.shares format v1), encrypted to their certificate."""

    __tablename__ = "lot_share"

    lot_id: str = Field(primary_key=True, foreign_key="lot.id", max_length=100)
    subject: str = Field(primary_key=True, max_length=200)
    idx: int
    file: str = Field(sa_column=Column(Text, nullable=False))


class RegistrationRow(SQLModel, table=True):
    """A bidder registered for a lot (报名): only they may upload."""

    __tablename__ = "registration"

    lot_id: str = Field(primary_key=True, foreign_key="lot.id", max_length=100)
    subject: str = Field(primary_key=True, max_length=200)
    name: str = Field(max_length=300)
    organisation: str | None = Field(default=None, max_length=300)
    at: datetime = _when()


class BidRow(SQLModel, table=True):
    """One accepted version of a bidder's sealed bid; at most one per (lot, bidder) is current."""

    __tablename__ = "bid"

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    lot_id: str = Field(foreign_key="lot.id", max_length=100)
    bidder: str = Field(max_length=200)
    name: str = Field(max_length=300)
    organisation: str | None = Field(default=None, max_length=300)
    version: int
    envelope_sha256: str = Field(max_length=64)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    received_at: datetime = _when()
    tsa_token: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    uploader_address: str | None = Field(default=None, max_length=100)
    status: str = Field(max_length=20)  # current | replaced | withdrawn
    receipt: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class UploadRow(SQLModel, table=True):
    """A tus upload in progress or finished; its bytes are in var/uploads/<id> until checked."""

    __tablename__ = "upload"

    id: str = Field(primary_key=True, max_length=40)
    lot_id: str = Field(foreign_key="lot.id", max_length=100)
    owner: str = Field(max_length=200, index=True)
    length: int = Field(sa_column=Column(BigInteger, nullable=False))
    offset: int = Field(sa_column=Column(BigInteger, nullable=False))
    status: str = Field(max_length=20)  # uploading | accepted | refused
    outcome: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = _when()
