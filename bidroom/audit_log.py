"""The audit log's integrator and reader: numbering pending entries, the Merkle tree, checkpoints.

Sequencing is the transaction that records an event with its salt (bidroom.store.record_audit);
integration is this batched step: one integrator at a time across nodes (a PostgreSQL advisory
lock; SQLite has one writer anyway) takes the pending entries in order, gives each the next index
and its leaf hash (of the version-2 entry, salt included), extends the tree, and signs a C2SP
checkpoint — never one inconsistent with the last one signed — then has it timestamped (RFC
3161). docs/audit.md is the specification.

It runs on the event loop every few seconds, beside every room: what costs CPU runs on a worker
thread (numbering a backlog; the TSA, inside the timestamper), and catching the in-memory tree up
with a whole log yields to the loop every CATCH_UP_SLICE leaves. What stays inline is small: an
Ed25519 signature over the note and O(log n) hashes for the root and the consistency proof.

Key continuity (docs/audit.md "The log's key", "Restoring a backup"): a node signs only if the
latest stored checkpoint was signed by its own key and origin, or a stored rotation statement
hands the log on from the key that signed it to this node's; and never a tree that does not
extend the checkpoint its witness file holds (the latest it signed or checked at start: a
database restored from a backup would otherwise sign a checkpoint conflicting with one already
published). ``start`` checks both before a node serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bidroom import audit
from bidroom.store import AUDIT, utc
from bidroom.tables import CheckpointRow, RotationRow
from ca import checkpoint, merkle
from ca import primitives as p
from ca.errors import AuditError

log = logging.getLogger(__name__)

CHECKPOINT = CheckpointRow.__table__  # type: ignore[attr-defined]
ROTATION = RotationRow.__table__  # type: ignore[attr-defined]
LOCK_KEY = 0x6269_6472_6F6F_6D31  # "bidroom1": the integrator's advisory lock
CATCH_UP_SLICE = 1000  # leaves appended between two yields to the loop (~3 ms)
Timestamper = Callable[[bytes], Awaitable[bytes | None]]


@dataclass(frozen=True, slots=True)
class Signed:
    size: int
    root: bytes
    note: str
    timestamp: bytes | None
    at: datetime


def _entry(row: Any) -> audit.Entry:
    """An entry from its row in ``audit_entry`` (version 1 if integrated before salts)."""
    return audit.Entry(
        utc(row.at),
        row.actor,
        row.action,
        row.room_id,
        row.seq,
        dict(row.objects),
        row.idx,
        row.salt,
    )


def _numbering(pending: Sequence[Any], size: int) -> list[dict[str, Any]]:
    """The index, salt and leaf hash of each pending row, numbered on from ``size``."""
    return [_numbered(row, size + offset) for offset, row in enumerate(pending)]


def _numbered(row: Any, index: int) -> dict[str, Any]:
    """The index, salt and leaf hash the integrator gives a pending row. Every entry it
    integrates is a version-2 entry: a row recorded before migration 0006 gets its salt now."""
    salt = row.salt or secrets.token_hex(audit.SALT_BYTES)
    encoding = audit.encode(replace(_entry(row), index=index, salt=salt))
    return {
        "row_id": row.id,
        "row_idx": index,
        "row_salt": salt,
        "row_leaf": merkle.leaf_hash(encoding),
    }


class AuditLog:
    def __init__(
        self,
        engine: AsyncEngine,
        origin: str,
        key: p.Ed25519PrivateKey,
        clock: Callable[[], datetime],
        timestamper: Timestamper | None = None,
        witness: Path | None = None,
    ):
        self.engine = engine
        self.witness = witness
        self.origin = origin
        self.key = key
        self.clock = clock
        self.timestamper = timestamper
        self.verifier = checkpoint.verifier_key(origin, key)
        self.tree = merkle.Tree()
        # One integration at a time in this process (bids completing together each integrate),
        # and one extension of the in-memory tree at a time; other processes are kept apart by
        # the advisory lock (PostgreSQL) and the unique indexes (a loser retries next round).
        self._integrating = asyncio.Lock()
        self._extending = asyncio.Lock()

    # integration -------------------------------------------------------------------------

    async def integrate(self, limit: int = 10_000) -> Signed | None:
        """Number what is pending and sign a checkpoint of the new tree; None if nothing new."""
        async with self._integrating:
            try:
                await self._number(limit)
            except IntegrityError:
                log.info("audit numbering raced another process; it is retried next round")
            await self._catch_up()
            latest = await self.latest()
            if self.tree.size == 0 and latest is None:
                return None  # nothing recorded yet
            await self.check_continuity(latest)  # every round: a broken log is an alarm
            if latest is not None and latest.size == self.tree.size:
                return None  # nothing new since the last checkpoint
            return await self._sign(latest)

    async def _number(self, limit: int) -> None:
        async with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
            size = await self._size(conn)
            pending = (
                await conn.execute(
                    select(AUDIT).where(AUDIT.c.idx.is_(None)).order_by(AUDIT.c.id).limit(limit)
                )
            ).all()
            # A backlog of thousands (after a restart or a burst) is ~20 us an entry of
            # encoding and hashing: off the event loop.
            numbered = await asyncio.to_thread(_numbering, pending, size)
            if numbered:
                await conn.execute(
                    update(AUDIT)
                    .where(AUDIT.c.id == bindparam("row_id"))
                    .values(
                        idx=bindparam("row_idx"),
                        salt=bindparam("row_salt"),
                        leaf=bindparam("row_leaf"),
                    ),
                    numbered,
                )

    async def _size(self, conn: AsyncConnection) -> int:
        found = (await conn.execute(select(func.max(AUDIT.c.idx)))).scalar()
        return 0 if found is None else int(found) + 1

    async def _catch_up(self) -> None:
        """Extend the in-memory tree with the leaves integrated since it was last read."""
        async with self._extending, self.engine.connect() as conn:
            rows = await conn.execute(
                select(AUDIT.c.idx, AUDIT.c.leaf)
                .where(AUDIT.c.idx >= self.tree.size)
                .order_by(AUDIT.c.idx)
            )
            for count, (idx, leaf) in enumerate(rows, 1):
                if idx != self.tree.size:
                    raise AuditError(
                        f"the log has a hole at index {self.tree.size}",
                        code="audit_hole",
                        detail={"index": self.tree.size},
                    )
                self.tree.append(bytes(leaf))
                if count % CATCH_UP_SLICE == 0:
                    await asyncio.sleep(0)  # a whole log (after a start) lets the loop breathe

    async def _sign(self, latest: Signed | None) -> Signed | None:
        size, root = self.tree.size, self.tree.root()
        if latest is not None:
            old = checkpoint.Checkpoint(self.origin, latest.size, latest.root, ())
            new = checkpoint.Checkpoint(self.origin, size, root, ())
            checkpoint.check_consistent(old, new, self.tree.consistency_proof(latest.size, size))
        note = checkpoint.sign_note(
            checkpoint.format_checkpoint(self.origin, size, root), self.origin, self.key
        )
        stamp = await self.timestamper(note.encode()) if self.timestamper else None
        signed = Signed(size, root, note, stamp, self.clock())
        try:
            async with self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
                now_latest = (await conn.execute(select(func.max(CHECKPOINT.c.size)))).scalar()
                if now_latest != (None if latest is None else latest.size):
                    return None  # another node signed since: its checkpoint is checked next round
                await conn.execute(
                    CHECKPOINT.insert().values(
                        size=size, root=root, note=note, timestamp=stamp, at=signed.at
                    )
                )
        except IntegrityError:
            return None  # another node signed this size between the check and the insert
        self._witness_write(note)
        return signed

    # key continuity and the witness ------------------------------------------------------

    async def start(self) -> None:
        """What a node checks before it serves: the log goes on under its key and origin, and
        its database holds every checkpoint its witness saw (not a backup older than what was
        published). Raise AuditError audit_key_continuity, audit_rollback or audit_fork."""
        await self._catch_up()
        latest = await self.latest()
        await self.check_continuity(latest)
        if latest is not None and self._witness_read() is None:
            self._witness_write(latest.note)

    async def rotations(self) -> list[checkpoint.Rotation]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(ROTATION.c.note).order_by(ROTATION.c.id))).all()
        return [checkpoint.parse_rotation(row.note) for row in rows]

    async def chain(self) -> checkpoint.KeyChain:
        """The log's keys, this node's last: AuditError audit_key_continuity if it is not."""
        try:
            chain = checkpoint.KeyChain(self.verifier, await self.rotations())
        except AuditError as exc:
            raise self._discontinuity(f"this node's key is not the log's ({exc.message})") from exc
        if str(chain.keys[-1]) != str(self.verifier):
            raise self._discontinuity(
                f"the log's key was rotated from this node's to {chain.keys[-1]}"
            )
        return chain

    async def check_continuity(self, latest: Signed | None) -> None:
        """Raise AuditError unless the next checkpoint is this node's to sign: the latest one
        stored was signed by its key and origin (or by the key a stored rotation hands on
        from, at that very checkpoint), and it extends what the witness file holds."""
        chain = await self.chain()
        if latest is not None:
            signer = chain.signer(latest.note)
            if signer is None or str(signer) != str(chain.key_for(latest.size)):
                names = checkpoint.signature_names(latest.note)
                raise self._discontinuity(
                    f"the latest checkpoint ({latest.size} entries) is signed by "
                    f"{', '.join(names) or 'no key'}, not by this node's key {self.verifier} "
                    "(changed BIDROOM_AUDIT_KEY_FILE, BIDROOM_AUDIT_ORIGIN or BIDROOM_PUBLIC_URL, "
                    "or another node with another key): rotate with `bidroom audit key rotate`",
                    size=latest.size,
                )
        await self._check_witness(chain)

    def _discontinuity(self, why: str, **detail: Any) -> AuditError:
        return AuditError(
            f"this node refuses to sign the audit log: {why}",
            code="audit_key_continuity",
            detail={"verifier_key": str(self.verifier), **detail},
        )

    async def _check_witness(self, chain: checkpoint.KeyChain) -> None:
        note = self._witness_read()
        if note is None:
            return
        signer = chain.signer(note)
        if signer is None:
            raise self._discontinuity(f"its witness {self.witness} holds a note of another key")
        seen = checkpoint.parse_and_verify(note, signer)
        await self._catch_up()
        if seen.size > self.tree.size:
            raise AuditError(
                f"the database's log has {self.tree.size} entries, fewer than the {seen.size} of "
                f"a checkpoint already signed (witness {self.witness}): restored from a backup? "
                "Signing now would fork the published log (docs/audit.md 'Restoring a backup')",
                code="audit_rollback",
                detail={"size": self.tree.size, "witnessed": seen.size},
            )
        if self.tree.root(seen.size) != seen.root:
            raise AuditError(
                f"the database's first {seen.size} entries are not those of the checkpoint "
                f"already signed (witness {self.witness}): the log was rewritten or restored",
                code="audit_fork",
                detail={"witnessed": seen.size},
            )

    def _witness_read(self) -> str | None:
        if self.witness is None:
            return None
        try:
            return self.witness.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def _witness_write(self, note: str) -> None:
        """Keep ``note`` as the witness if it is larger than what it holds (atomically)."""
        if self.witness is None:
            return
        held = self._witness_read()
        if held is not None:
            try:
                if checkpoint.unverified_checkpoint(held).size >= self._size_of(note):
                    return
            except AuditError:
                pass
        self.witness.parent.mkdir(parents=True, exist_ok=True)
        draft = self.witness.with_name(f".{self.witness.name}.{os.getpid()}")
        draft.write_text(note, encoding="utf-8")
        os.replace(draft, self.witness)

    @staticmethod
    def _size_of(note: str) -> int:
        return checkpoint.unverified_checkpoint(note).size

    async def rotate(self, new_key: p.Ed25519PrivateKey, new_origin: str) -> checkpoint.Rotation:
        """Hand the log on to ``new_key`` (named ``new_origin``): a statement signed by this key
        and the new one, at the latest checkpoint, which must be this key's."""
        async with self._integrating:
            latest = await self.latest()
            if latest is None:
                raise AuditError(
                    "the log has no checkpoint yet: configure the new key, nothing to hand on",
                    code="audit_empty",
                )
            await self.check_continuity(latest)
            note = checkpoint.sign_rotation(
                (self.origin, self.key), (new_origin, new_key), latest.size, latest.root
            )
            rotation = checkpoint.parse_rotation(note)
            async with self.engine.begin() as conn:
                await conn.execute(
                    ROTATION.insert().values(size=latest.size, note=note, at=self.clock())
                )
            return rotation

    async def signer_of(self, signed: Signed) -> checkpoint.VerifierKey | None:
        """The key of the log's chain that signed ``signed`` (None: none of its keys)."""
        rotations = await self.rotations()
        keys = [self.verifier, *(k for r in rotations for k in (r.old, r.new))]
        for key in keys:
            with contextlib.suppress(AuditError):
                checkpoint.open_note(signed.note, key)
                return key
        return None

    # reading -----------------------------------------------------------------------------

    async def latest(self) -> Signed | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(CHECKPOINT).order_by(CHECKPOINT.c.size.desc()).limit(1))
            ).first()
        return (
            None
            if row is None
            else Signed(
                row.size,
                bytes(row.root),
                row.note,
                row.timestamp and bytes(row.timestamp),
                utc(row.at),
            )
        )

    async def checkpoints(self) -> list[Signed]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(CHECKPOINT).order_by(CHECKPOINT.c.size))).all()
        return [
            Signed(r.size, bytes(r.root), r.note, r.timestamp and bytes(r.timestamp), utc(r.at))
            for r in rows
        ]

    async def entries(self, start: int, end: int) -> list[tuple[int, bytes, bytes]]:
        """(index, canonical encoding, leaf hash) of integrated entries start..end-1; the
        encoding holds the entry's salt: it is for the entry's subject and the auditors."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(AUDIT)
                    .where(AUDIT.c.idx >= start, AUDIT.c.idx < end)
                    .order_by(AUDIT.c.idx)
                )
            ).all()
        return [(r.idx, audit.encode(_entry(r)), bytes(r.leaf)) for r in rows]

    async def entries_of(
        self, actor: str, start: int, limit: int
    ) -> list[tuple[int, bytes, bytes]]:
        """Like ``entries``: the integrated entries naming ``actor``, from index ``start`` on, at
        most ``limit`` (indexed by actor and index: 0006)."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(AUDIT)
                    .where(AUDIT.c.actor == actor, AUDIT.c.idx >= start)
                    .order_by(AUDIT.c.idx)
                    .limit(limit)
                )
            ).all()
        return [(r.idx, audit.encode(_entry(r)), bytes(r.leaf)) for r in rows]

    async def first_of(self, room: str, action: str) -> tuple[audit.Entry, bytes | None] | None:
        """The first entry of exactly ``room`` and ``action``, and its stored leaf hash (None
        until integrated)."""
        query = (
            select(AUDIT)
            .where(AUDIT.c.room_id == room, AUDIT.c.action == action)
            .order_by(AUDIT.c.id)
            .limit(1)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return _entry(row), None if row.leaf is None else bytes(row.leaf)

    async def index_of(self, row_id: int) -> int:
        """The index the integrator gave the entry recorded as row ``row_id``."""
        async with self.engine.connect() as conn:
            index = (await conn.execute(select(AUDIT.c.idx).where(AUDIT.c.id == row_id))).scalar()
        if index is None:
            raise AuditError(
                "the entry is not integrated yet", code="audit_not_yet", detail={"row": row_id}
            )
        return int(index)

    async def index_of_event(self, room: str, seq: int, actor: str | None = None) -> int:
        """The index of the entry that recorded event ``seq`` of ``room`` (indexed: 0005); with
        ``actor``, only if that entry is theirs: another's entry is answered as one not there
        (not yet integrated), so the answer tells nothing of how many events a room has."""
        query = select(AUDIT.c.idx).where(AUDIT.c.room_id == room, AUDIT.c.seq == seq)
        if actor is not None:
            query = query.where(AUDIT.c.actor == actor)
        async with self.engine.connect() as conn:
            index = (await conn.execute(query)).scalar()
        if index is None:
            raise AuditError(
                "the event is not integrated yet",
                code="audit_not_yet",
                detail={"room": room, "seq": seq},
            )
        return int(index)

    async def inclusion(self, index: int, size: int) -> list[bytes]:
        await self._catch_up()
        return self.tree.inclusion_proof(index, size)

    async def consistency(self, m: int, n: int) -> list[bytes]:
        await self._catch_up()
        return self.tree.consistency_proof(m, n)
