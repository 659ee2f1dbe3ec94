"""Tenders, lots, key shares, registrations, bids and uploads in the database (SQLite or
PostgreSQL). Each method is one transaction; driver errors come out as StoreError.

Publication writes the lots, the share files, the ``lot.key_split`` audit entry and the opening
rooms in one transaction, so a lot is never published without its room or its commitments. A
new bid version marks the previous current one ``replaced`` in the transaction that inserts it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bidroom import owners
from bidroom.audit import Entry
from bidroom.errors import Conflict, NotFound, StoreError
from bidroom.store import ROOM, RoomRecord, _Translated, record_audit, utc
from bidroom.tables import BidRow, LotRow, LotShareRow, RegistrationRow, TenderRow, UploadRow

TENDER = TenderRow.__table__  # type: ignore[attr-defined]
LOT = LotRow.__table__  # type: ignore[attr-defined]
SHARE = LotShareRow.__table__  # type: ignore[attr-defined]
REGISTRATION = RegistrationRow.__table__  # type: ignore[attr-defined]
BID = BidRow.__table__  # type: ignore[attr-defined]
UPLOAD = UploadRow.__table__  # type: ignore[attr-defined]
UNFINISHED = ("uploading", "completing")


@dataclass(frozen=True, slots=True)
class TenderRecord:
    id: str
    number: str
    title: str
    status: str  # draft | published
    spec: Mapping[str, Any]
    created_by: str
    created_at: datetime
    published_at: datetime | None
    # its owners (bidroom.owners); None for a tender made before owners existed: then only
    # the chair who created it
    owner: Mapping[str, Any] | None = None

    @property
    def owners(self) -> Mapping[str, Any]:
        return self.owner if self.owner is not None else owners.owner(None, [self.created_by])


@dataclass(frozen=True, slots=True)
class LotRecord:
    """A published lot, as the opening shell reads it."""

    id: str
    tender_id: str
    number: str
    title: str
    room: str
    deadline: datetime
    spec: Mapping[str, Any]
    opening_key: bytes  # SubjectPublicKeyInfo, DER
    key_fingerprint: str
    commitments: list[dict[str, Any]]
    custodians: list[dict[str, Any]]  # tenders.KeySplit.custodians
    # {"certificate", "chain", "signature", "signer", "signed_at"}: ca.lot_key, or None
    key_signature: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Publication:
    """Everything publishing one lot writes (share files are (subject, index, file))."""

    lot: LotRecord
    files: Sequence[tuple[str, int, bytes]]
    room: RoomRecord


@dataclass(frozen=True, slots=True)
class BidRecord:
    lot_id: str
    bidder: str
    name: str
    organisation: str | None
    version: int
    envelope_sha256: str
    size: int
    received_at: datetime
    status: str  # current | replaced | withdrawn
    receipt: Mapping[str, Any] = field(default_factory=dict)
    tsa_token: bytes = b""
    uploader_address: str | None = None

    def public(self) -> dict[str, Any]:
        """The ``Bid`` of docs/opening.md, as its bidder sees it."""
        return {
            "version": self.version,
            "envelope_sha256": self.envelope_sha256,
            "size": self.size,
            "received_at": self.received_at.isoformat(),
            "status": self.status,
            "receipt": dict(self.receipt),
        }


@dataclass(frozen=True, slots=True)
class UploadRecord:
    id: str
    lot_id: str
    owner: str
    length: int
    offset: int
    status: str  # uploading | completing | accepted | refused | failed
    outcome: Mapping[str, Any] | None
    created_at: datetime


def _tender(row: Any) -> TenderRecord:
    published = utc(row.published_at) if row.published_at is not None else None
    return TenderRecord(
        row.id,
        row.number,
        row.title,
        row.status,
        row.spec,
        row.created_by,
        utc(row.created_at),
        published,
        row.owner,
    )


def _lot(row: Any) -> LotRecord:
    return LotRecord(
        row.id,
        row.tender_id,
        row.number,
        row.title,
        row.room_id,
        utc(row.deadline),
        row.spec,
        bytes(row.opening_key),
        row.key_fingerprint,
        list(row.commitments),
        list(row.custodians),
        row.key_signature,
    )


def _bid(row: Any) -> BidRecord:
    return BidRecord(
        row.lot_id,
        row.bidder,
        row.name,
        row.organisation,
        row.version,
        row.envelope_sha256,
        row.size,
        utc(row.received_at),
        row.status,
        row.receipt,
        bytes(row.tsa_token),
        row.uploader_address,
    )


def _upload(row: Any) -> UploadRecord:
    return UploadRecord(
        row.id,
        row.lot_id,
        row.owner,
        row.length,
        row.offset,
        row.status,
        row.outcome,
        utc(row.created_at),
    )


class TenderStore:
    """The database seam of tenders and bids."""

    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    def _connect(self) -> Any:
        return _Translated(self.engine.connect())

    def _begin(self) -> Any:
        return _Translated(self.engine.begin())

    # tenders ---------------------------------------------------------------------------------

    async def create_tender(self, tender: TenderRecord, now: datetime) -> None:
        values = {
            "id": tender.id,
            "number": tender.number,
            "title": tender.title,
            "status": "draft",
            "spec": dict(tender.spec),
            "created_by": tender.created_by,
            "owner": None if tender.owner is None else dict(tender.owner),
            "created_at": now,
            "updated_at": now,
            "published_at": None,
        }
        async with self._begin() as conn:
            await conn.execute(insert(TENDER).values(**values))

    async def update_tender(
        self, tender_id: str, number: str, title: str, spec: Mapping[str, Any], now: datetime
    ) -> None:
        """Replace a draft's spec; Conflict(tender_frozen) once published."""
        async with self._begin() as conn:
            done = await conn.execute(
                update(TENDER)
                .where(TENDER.c.id == tender_id, TENDER.c.status == "draft")
                .values(number=number, title=title, spec=dict(spec), updated_at=now)
            )
            if done.rowcount == 0:
                await self._frozen_or_missing(conn, tender_id)

    async def assign_chairs(
        self, tender_id: str, chairs: Sequence[str], entry: Entry, now: datetime
    ) -> None:
        """Set a draft's assigned chairs (its organisation stays) and log it; Conflict once
        published."""
        tender = await self.tender(tender_id)
        if tender is None:
            raise NotFound(f"no tender {tender_id}", code="tender_not_found")
        owner = owners.owner(tender.owners.get("organisation"), chairs)
        async with self._begin() as conn:
            done = await conn.execute(
                update(TENDER)
                .where(TENDER.c.id == tender_id, TENDER.c.status == "draft")
                .values(owner=owner, updated_at=now)
            )
            if done.rowcount == 0:
                await self._frozen_or_missing(conn, tender_id)
            await record_audit(conn, [entry])

    async def _frozen_or_missing(self, conn: AsyncConnection, tender_id: str) -> None:
        found = (await conn.execute(select(TENDER.c.id).where(TENDER.c.id == tender_id))).first()
        if found is None:
            raise NotFound(f"no tender {tender_id}", code="tender_not_found")
        raise Conflict(
            "the tender is published: its spec is frozen",
            code="tender_frozen",
            detail={"tender": tender_id},
        )

    async def tender(self, tender_id: str) -> TenderRecord | None:
        async with self._connect() as conn:
            row = (await conn.execute(select(TENDER).where(TENDER.c.id == tender_id))).first()
        return None if row is None else _tender(row)

    async def tenders(self, published_only: bool) -> list[TenderRecord]:
        query = select(TENDER).order_by(TENDER.c.created_at)
        if published_only:
            query = query.where(TENDER.c.status == "published")
        async with self._connect() as conn:
            return [_tender(row) for row in (await conn.execute(query)).all()]

    async def publish(
        self,
        tender_id: str,
        lots: Sequence[Publication],
        entries: Sequence[Entry],
        now: datetime,
    ) -> None:
        """Freeze the tender and write its lots, share files, rooms and audit entries at once."""
        async with self._begin() as conn:
            done = await conn.execute(
                update(TENDER)
                .where(TENDER.c.id == tender_id, TENDER.c.status == "draft")
                .values(status="published", published_at=now, updated_at=now)
            )
            if done.rowcount == 0:
                await self._frozen_or_missing(conn, tender_id)
            for made in lots:
                await _insert_lot(conn, made, now)
            await record_audit(conn, entries)

    async def lots_of(self, tender_id: str) -> list[LotRecord]:
        query = select(LOT).where(LOT.c.tender_id == tender_id).order_by(LOT.c.number)
        async with self._connect() as conn:
            return [_lot(row) for row in (await conn.execute(query)).all()]

    async def lot(self, lot_id: str) -> LotRecord | None:
        async with self._connect() as conn:
            row = (await conn.execute(select(LOT).where(LOT.c.id == lot_id))).first()
        return None if row is None else _lot(row)

    async def published_lots(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[LotRecord]:
        """Published lots by deadline; only those with a deadline in [since, until] if given."""
        query = select(LOT)
        if since is not None:
            query = query.where(LOT.c.deadline >= since)
        if until is not None:
            query = query.where(LOT.c.deadline <= until)
        async with self._connect() as conn:
            rows = (await conn.execute(query.order_by(LOT.c.deadline, LOT.c.id))).all()
        return [_lot(row) for row in rows]

    async def sign_key(
        self,
        lot_id: str,
        signature: Mapping[str, Any],
        entry: Entry,
        replacing: Any = None,
    ) -> bool:
        """Keep an owner's signature of the lot's key statement and log it; False (nothing
        written) if the lot is signed already, unless ``replacing`` is the signature it holds
        (one whose certificate has lapsed: the caller checked)."""
        async with self._begin() as conn:
            if replacing is None:
                done = await conn.execute(
                    update(LOT)
                    .where(LOT.c.id == lot_id, LOT.c.key_signature.is_(None))
                    .values(key_signature=dict(signature))
                )
                if done.rowcount == 0:
                    return False
            else:
                held = (
                    await conn.execute(
                        select(LOT.c.key_signature).where(LOT.c.id == lot_id).with_for_update()
                    )
                ).scalar()
                if held != replacing:
                    return False
                await conn.execute(
                    update(LOT).where(LOT.c.id == lot_id).values(key_signature=dict(signature))
                )  # the held value was no signature, or one whose certificate lapsed
            await record_audit(conn, [entry])
        return True

    async def share_file(self, lot_id: str, subject: str) -> bytes | None:
        """The share file of ``subject`` for ``lot_id`` (encrypted to their certificate)."""
        query = select(SHARE.c.file).where(SHARE.c.lot_id == lot_id, SHARE.c.subject == subject)
        async with self._connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else row.file.encode()

    # registrations ---------------------------------------------------------------------------

    async def register(
        self, lot_id: str, subject: str, name: str, organisation: str | None, now: datetime
    ) -> bool:
        """Register a bidder for a lot; False if they were registered already."""
        values = {
            "lot_id": lot_id,
            "subject": subject,
            "name": name,
            "organisation": organisation,
            "at": now,
        }
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(REGISTRATION).values(**values))
        except IntegrityError:
            return False
        except SQLAlchemyError as exc:
            raise StoreError(f"database error: {type(exc).__name__}") from exc
        return True

    async def is_registered(self, lot_id: str, subject: str) -> bool:
        query = select(REGISTRATION.c.subject).where(
            REGISTRATION.c.lot_id == lot_id, REGISTRATION.c.subject == subject
        )
        async with self._connect() as conn:
            return (await conn.execute(query)).first() is not None

    # bids ------------------------------------------------------------------------------------

    async def record_bid(self, bid: BidRecord) -> BidRecord:
        """Record a new accepted version (numbered here); the previous current one is replaced."""
        mine = (BID.c.lot_id == bid.lot_id, BID.c.bidder == bid.bidder)
        async with self._begin() as conn:
            last = (await conn.execute(select(func.max(BID.c.version)).where(*mine))).scalar()
            await conn.execute(
                update(BID).where(*mine, BID.c.status == "current").values(status="replaced")
            )
            version = int(last or 0) + 1
            values = {
                "lot_id": bid.lot_id,
                "bidder": bid.bidder,
                "name": bid.name,
                "organisation": bid.organisation,
                "version": version,
                "envelope_sha256": bid.envelope_sha256,
                "size": bid.size,
                "received_at": bid.received_at,
                "tsa_token": bid.tsa_token,
                "uploader_address": bid.uploader_address,
                "status": "current",
                "receipt": dict(bid.receipt),
            }
            await conn.execute(insert(BID).values(**values))
        return BidRecord(**{**_fields(bid), "version": version, "status": "current"})

    async def bids_of(self, lot_id: str, bidder: str) -> list[BidRecord]:
        """A bidder's versions, newest first."""
        query = (
            select(BID)
            .where(BID.c.lot_id == lot_id, BID.c.bidder == bidder)
            .order_by(BID.c.version.desc())
        )
        async with self._connect() as conn:
            return [_bid(row) for row in (await conn.execute(query)).all()]

    async def current_bid(self, lot_id: str, bidder: str) -> BidRecord | None:
        query = select(BID).where(
            BID.c.lot_id == lot_id, BID.c.bidder == bidder, BID.c.status == "current"
        )
        async with self._connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _bid(row)

    async def current_bids(self, lot_id: str) -> list[BidRecord]:
        """The bids that count (one per bidder), for fixing them at the deadline."""
        query = (
            select(BID)
            .where(BID.c.lot_id == lot_id, BID.c.status == "current")
            .order_by(BID.c.received_at, BID.c.bidder)
        )
        async with self._connect() as conn:
            return [_bid(row) for row in (await conn.execute(query)).all()]

    async def withdraw(
        self, lot_id: str, bidder: str, envelope_sha256: str, version: int, entry: Entry
    ) -> BidRecord:
        """Mark the current bid withdrawn (it must be the envelope and version named) and log
        it."""
        async with self._begin() as conn:
            done = await conn.execute(
                update(BID)
                .where(
                    BID.c.lot_id == lot_id,
                    BID.c.bidder == bidder,
                    BID.c.status == "current",
                    BID.c.envelope_sha256 == envelope_sha256,
                    BID.c.version == version,
                )
                .values(status="withdrawn")
                .returning(*BID.c)
            )
            row = done.first()
            if row is None:
                raise NotFound(
                    "you have no current bid with that envelope on this lot",
                    code="bid_not_found",
                    detail={"lot": lot_id, "envelope": envelope_sha256},
                )
            await record_audit(conn, [entry])
        return _bid(row)

    # uploads ---------------------------------------------------------------------------------

    async def create_upload(self, upload: UploadRecord, limit: int) -> bool:
        """Insert a new upload unless its owner has ``limit`` unfinished ones (``uploading``
        or ``completing``) on its lot already; False then.

        The count and the insert are one statement; on PostgreSQL the owner's registration row
        is locked first, so two nodes creating at once take turns instead of both counting
        below the limit (SQLite has one writer at a time anyway)."""
        owner = (UPLOAD.c.lot_id == upload.lot_id, UPLOAD.c.owner == upload.owner)
        unfinished = (
            select(func.count())
            .select_from(UPLOAD)
            .where(*owner, UPLOAD.c.status.in_(UNFINISHED))
            .scalar_subquery()
        )
        values = {
            "id": upload.id,
            "lot_id": upload.lot_id,
            "owner": upload.owner,
            "length": upload.length,
            "offset": 0,
            "status": "uploading",
            "created_at": upload.created_at,
        }
        row = select(*(literal(v, UPLOAD.c[k].type).label(k) for k, v in values.items()))
        async with self._begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(
                    select(REGISTRATION.c.subject)
                    .where(
                        REGISTRATION.c.lot_id == upload.lot_id,
                        REGISTRATION.c.subject == upload.owner,
                    )
                    .with_for_update()
                )
            done = await conn.execute(
                insert(UPLOAD).from_select(list(values), row.where(unfinished < limit))
            )
        return bool(done.rowcount)

    async def upload(self, upload_id: str) -> UploadRecord | None:
        async with self._connect() as conn:
            row = (await conn.execute(select(UPLOAD).where(UPLOAD.c.id == upload_id))).first()
        return None if row is None else _upload(row)

    async def advance(self, upload_id: str, before: int, after: int, *, last: bool = False) -> bool:
        """Move an ``uploading`` upload's offset from ``before`` to ``after``; False if it had
        moved (or is no longer ``uploading``). With ``last`` (the last byte is in) it becomes
        ``completing`` in the same conditional update: of two requests that both bring an
        upload to its length (two nodes, a retry), exactly one gets True and completes it."""
        values: dict[str, Any] = {"offset": after}
        if last:
            values["status"] = "completing"
        async with self._begin() as conn:
            done = await conn.execute(
                update(UPLOAD)
                .where(
                    UPLOAD.c.id == upload_id,
                    UPLOAD.c.offset == before,
                    UPLOAD.c.status == "uploading",
                )
                .values(**values)
            )
        return bool(done.rowcount)

    async def finish_upload(self, upload_id: str, status: str, outcome: Mapping[str, Any]) -> None:
        """The outcome of a ``completing`` upload: accepted, refused or failed."""
        async with self._begin() as conn:
            await conn.execute(
                update(UPLOAD)
                .where(UPLOAD.c.id == upload_id)
                .values(status=status, outcome=dict(outcome))
            )

    async def retry_upload(self, upload_id: str) -> bool:
        """A ``completing`` upload whose completion failed unexpectedly goes back to
        ``uploading`` (at its full length: an empty PATCH completes it again)."""
        async with self._begin() as conn:
            done = await conn.execute(
                update(UPLOAD)
                .where(UPLOAD.c.id == upload_id, UPLOAD.c.status == "completing")
                .values(status="uploading", offset=UPLOAD.c.length)
            )
        return bool(done.rowcount)

    async def delete_upload(self, upload_id: str) -> bool:
        """Forget an ``uploading`` upload; False if it is completing, finished or gone."""
        async with self._begin() as conn:
            done = await conn.execute(
                UPLOAD.delete().where(UPLOAD.c.id == upload_id, UPLOAD.c.status == "uploading")
            )
        return bool(done.rowcount)

    async def sweep_uploads(self, lot_id: str) -> list[str]:
        """Delete every ``uploading`` upload of a lot (its deadline has passed); their ids, so
        that the caller removes their files. A ``completing`` one is left to finish."""
        async with self._begin() as conn:
            done = await conn.execute(
                UPLOAD.delete()
                .where(UPLOAD.c.lot_id == lot_id, UPLOAD.c.status == "uploading")
                .returning(UPLOAD.c.id)
            )
            return [row.id for row in done.all()]


def _fields(bid: BidRecord) -> dict[str, Any]:
    return {name: getattr(bid, name) for name in BidRecord.__slots__}


async def _insert_lot(conn: AsyncConnection, made: Publication, now: datetime) -> None:
    lot = made.lot
    await conn.execute(
        insert(ROOM).values(
            id=made.room.id,
            kind=made.room.kind,
            title=made.room.title,
            config=dict(made.room.config),
            created_at=made.room.created_at,
        )
    )
    await conn.execute(
        insert(LOT).values(
            id=lot.id,
            tender_id=lot.tender_id,
            number=lot.number,
            title=lot.title,
            room_id=lot.room,
            deadline=lot.deadline,
            spec=dict(lot.spec),
            opening_key=lot.opening_key,
            key_fingerprint=lot.key_fingerprint,
            commitments=lot.commitments,
            custodians=lot.custodians,
            status="published",
            created_at=now,
        )
    )
    rows = [
        {"lot_id": lot.id, "subject": subject, "idx": index, "file": file.decode()}
        for subject, index, file in made.files
    ]
    await conn.execute(insert(SHARE), rows)
