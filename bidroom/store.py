"""The event store: rooms, their event logs and command outcomes, on SQLite or PostgreSQL.

One async engine (SQLAlchemy 2) chosen by URL. Appends are one transaction each: the command's
outcome row and its events commit together or not at all. A second writer appending the same
(room, seq) gets :class:`SeqConflict`; a command id seen before gets :class:`DuplicateCommand`
with the outcome first recorded. Driver exceptions never leave this module untranslated.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import func, insert, or_, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bidroom import integrity
from bidroom.audit import SALT_BYTES, Entry, room_event
from bidroom.errors import RoomTampered, SeqConflict, StoreError
from bidroom.room import Actor, Event
from bidroom.tables import (
    AuditEntryRow,
    CommandRow,
    EventRow,
    HolderRoleRow,
    LoginNonceRow,
    NodeRow,
    RoomRow,
)

ROOM = RoomRow.__table__  # type: ignore[attr-defined]
EVENT = EventRow.__table__  # type: ignore[attr-defined]
COMMAND = CommandRow.__table__  # type: ignore[attr-defined]
NODE = NodeRow.__table__  # type: ignore[attr-defined]
HOLDER = HolderRoleRow.__table__  # type: ignore[attr-defined]
AUDIT = AuditEntryRow.__table__  # type: ignore[attr-defined]
NONCE = LoginNonceRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class CommandKey:
    subject: str
    command_id: str


class DuplicateCommand(StoreError):
    """This (room, subject, command id) was recorded before; ``outcome`` is what it got then."""

    code = "duplicate_command"

    def __init__(self, key: CommandKey, outcome: Mapping[str, Any]):
        super().__init__("command seen before", detail={"outcome": dict(outcome)})
        self.key = key
        self.outcome = dict(outcome)


@dataclass(frozen=True, slots=True)
class RoomRecord:
    id: str
    kind: str
    title: str
    config: Mapping[str, Any]
    created_at: datetime


def utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def create_engine(url: str) -> AsyncEngine:
    """An async engine for the URL; SQLite gets WAL and a busy timeout so readers never block."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    engine = create_async_engine(url, connect_args={"timeout": 30})

    @sa_event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


CLOSE_GRACE_SECONDS = 15.0  # how long closing waits for the connections still out


async def close_engine(engine: AsyncEngine, grace: float = CLOSE_GRACE_SECONDS) -> None:
    """Dispose of ``engine`` once every connection it lent is back (waiting at most ``grace``).

    A connection returned to a pool after ``dispose()`` is never closed: it goes back into the
    discarded pool and its socket is left to the garbage collector (asyncpg's "unclosed
    connection" and the transport's ResourceWarning). On a busy node shutting down, a command's
    transaction, a departing client's presence or a clock's read are still finishing when the
    app closes its engine; they are waited for."""
    pool = engine.pool
    lent: Any = getattr(pool, "checkedout", None)  # pools that lend nothing have no count
    if lent is not None and lent():
        returned = asyncio.Event()

        def checkin(*_: Any) -> None:
            returned.set()

        sa_event.listen(pool, "checkin", checkin)
        try:
            async with asyncio.timeout(grace):
                while lent():
                    returned.clear()
                    await returned.wait()  # the count drops just after the event: check again
        except TimeoutError:
            pass
        finally:
            sa_event.remove(pool, "checkin", checkin)
    await engine.dispose()


def _event_from(row: Any) -> Event:
    actor = Actor.from_json(row.actor) if row.actor else None
    return Event(row.name, row.data, seq=row.seq, at=utc(row.at), actor=actor)


def _room_from(row: Any) -> RoomRecord:
    return RoomRecord(row.id, row.kind, row.title, row.config, utc(row.created_at))


class Store:
    """The database seam. Every method is one short transaction."""

    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    async def ping(self) -> None:
        async with self._connect() as conn:
            await conn.execute(text("SELECT 1"))

    # rooms -----------------------------------------------------------------------------------

    async def create_room(self, room: RoomRecord) -> None:
        values = {
            "id": room.id,
            "kind": room.kind,
            "title": room.title,
            "config": dict(room.config),
            "created_at": room.created_at,
        }
        async with self._begin() as conn:
            await conn.execute(insert(ROOM).values(**values))

    async def room(self, room_id: str) -> RoomRecord | None:
        async with self._connect() as conn:
            row = (await conn.execute(select(ROOM).where(ROOM.c.id == room_id))).first()
        return None if row is None else _room_from(row)

    async def rooms(
        self, kind: str | None = None, since: datetime | None = None
    ) -> list[RoomRecord]:
        """The rooms, oldest first; only of ``kind`` and created since ``since``, if given."""
        query = select(ROOM).order_by(ROOM.c.created_at)
        if kind is not None:
            query = query.where(ROOM.c.kind == kind)
        if since is not None:
            query = query.where(ROOM.c.created_at >= since)
        async with self._connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_room_from(row) for row in rows]

    # events ----------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def writer(self, room_id: str) -> AsyncIterator[RoomWriter]:
        """One write transaction on a room.

        On PostgreSQL it first takes the room's row lock, so writers on every node take turns
        (first come, first served) instead of racing for the next seq and starving the slower
        node. SQLite has one writer at a time anyway. The unique (room, seq) key stays the last
        line of defence: a second writer of a seq gets SeqConflict and nothing is written.
        """
        try:
            async with self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    await conn.execute(
                        select(ROOM.c.id).where(ROOM.c.id == room_id).with_for_update()
                    )
                yield RoomWriter(conn, room_id)
        except _SeenBefore as seen:
            first = await self.outcome(room_id, seen.key)
            raise DuplicateCommand(seen.key, first or {}) from None
        except IntegrityError as exc:
            raise SeqConflict(f"room {room_id} moved on", detail={"room": room_id}) from exc
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"could not write to room {room_id}: {type(exc).__name__}") from exc

    async def append(
        self,
        room_id: str,
        events: Sequence[Event],
        key: CommandKey | None,
        outcome: Mapping[str, Any],
    ) -> None:
        """Append events (already numbered) and the command's outcome in one transaction."""
        async with self.writer(room_id) as writer:
            await writer.append(events, key, outcome)

    async def _outcome(
        self, conn: AsyncConnection, room_id: str, key: CommandKey
    ) -> dict[str, Any] | None:
        query = select(COMMAND.c.outcome).where(
            COMMAND.c.room_id == room_id,
            COMMAND.c.subject == key.subject,
            COMMAND.c.command_id == key.command_id,
        )
        row = (await conn.execute(query)).first()
        return None if row is None else dict(row.outcome)

    async def outcome(self, room_id: str, key: CommandKey) -> dict[str, Any] | None:
        async with self._connect() as conn:
            return await self._outcome(conn, room_id, key)

    async def events(
        self, room_id: str, after: int = 0, upto: int | None = None, *, checked: bool = True
    ) -> list[Event]:
        """The room's events after seq ``after`` (up to ``upto``), in seq order, each checked
        against its audit entry (bidroom.integrity): RoomTampered if they do not match.
        ``checked=False`` only for measuring what the check costs (bench/integrity.py)."""
        async with self._connect() as conn:
            if not checked:
                return await _event_rows(conn, room_id, after, upto)
            return await checked_events(conn, room_id, after, upto)

    async def recorded(self, room_id: str, after: int, upto: int) -> list[integrity.Recorded]:
        """The audit entries of the room's events after ``after`` up to ``upto``."""
        async with self._connect() as conn:
            return await _recorded(conn, room_id, after, upto)

    async def last_seqs(self, room_ids: Iterable[str]) -> dict[str, int]:
        ids = list(room_ids)
        if not ids:
            return {}
        query = (
            select(EVENT.c.room_id, func.max(EVENT.c.seq))
            .where(EVENT.c.room_id.in_(ids))
            .group_by(EVENT.c.room_id)
        )
        async with self._connect() as conn:
            rows = (await conn.execute(query)).all()
        return {room_id: int(seq) for room_id, seq in rows}

    # nodes -----------------------------------------------------------------------------------

    async def heartbeat(self, node: str, now: datetime) -> None:
        async with self._begin() as conn:
            done = await conn.execute(update(NODE).where(NODE.c.id == node).values(seen_at=now))
            if done.rowcount == 0:
                await conn.execute(insert(NODE).values(id=node, started_at=now, seen_at=now))

    async def live_nodes(self, since: datetime) -> list[str]:
        """Nodes whose last heartbeat is at or after ``since``."""
        async with self._connect() as conn:
            rows = (await conn.execute(select(NODE.c.id).where(NODE.c.seen_at >= since))).all()
        return [row.id for row in rows]

    # the holder registry and login nonces ------------------------------------------------

    async def grant(self, holder: str, name: str, roles: Sequence[str], at: datetime) -> None:
        """Set a holder's roles (the platform's registry, not the certificate, says them); the
        organisation they last signed in with is kept."""
        async with self._begin() as conn:
            seen = (
                await conn.execute(select(HOLDER.c.organisation).where(HOLDER.c.holder == holder))
            ).scalar()
            await conn.execute(HOLDER.delete().where(HOLDER.c.holder == holder))
            await conn.execute(
                insert(HOLDER).values(
                    holder=holder,
                    name=name,
                    roles=sorted(set(roles)),
                    granted_at=at,
                    organisation=seen,
                )
            )

    async def signed_in(self, holder: str, organisation: str | None) -> None:
        """Remember the organisation (the certificate's O) ``holder`` signed in with."""
        async with self._begin() as conn:
            await conn.execute(
                update(HOLDER).where(HOLDER.c.holder == holder).values(organisation=organisation)
            )

    async def organisations_of(self, holders: Sequence[str]) -> dict[str, str | None]:
        """The organisation each of ``holders`` last signed in with (None: never signed in)."""
        query = select(HOLDER.c.holder, HOLDER.c.organisation).where(HOLDER.c.holder.in_(holders))
        async with self._connect() as conn:
            rows = (await conn.execute(query)).all()
        return {row.holder: row.organisation for row in rows}

    async def roles_of(self, holders: Sequence[str]) -> tuple[str, list[str]] | None:
        """The first of ``holders`` that the registry knows, with its roles."""
        async with self._connect() as conn:
            rows = (await conn.execute(select(HOLDER).where(HOLDER.c.holder.in_(holders)))).all()
        known = {row.holder: list(row.roles) for row in rows}
        return next(((h, known[h]) for h in holders if h in known), None)

    async def holders(self) -> list[tuple[str, str, list[str]]]:
        async with self._connect() as conn:
            rows = (await conn.execute(select(HOLDER).order_by(HOLDER.c.holder))).all()
        return [(row.holder, row.name, list(row.roles)) for row in rows]

    async def record(self, entries: Sequence[Entry]) -> list[int]:
        """Audit entries for what happened outside a room (a login, a bid received), in their
        own transaction; their row ids (the integrator gives them their index later)."""
        async with self._begin() as conn:
            return await record_audit(conn, entries)

    async def audit_of(
        self, rooms: Sequence[str], room_prefix: str, action_prefix: str, limit: int
    ) -> list[Entry]:
        """Audit entries of the rooms named or starting with ``room_prefix`` whose action
        starts with ``action_prefix``, oldest first, at most ``limit``."""
        query = (
            select(AUDIT)
            .where(
                or_(
                    AUDIT.c.room_id.in_(rooms),
                    AUDIT.c.room_id.startswith(room_prefix, autoescape=True),
                ),
                AUDIT.c.action.startswith(action_prefix, autoescape=True),
            )
            .order_by(AUDIT.c.id)
            .limit(limit)
        )
        async with self._connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            Entry(utc(row.at), row.actor, row.action, row.room_id, row.seq, row.objects, row.idx)
            for row in rows
        ]

    async def use_nonce(self, nonce: str, expires_at: datetime, now: datetime) -> bool:
        """Record a login challenge as answered; False if it was answered before (a replay)."""
        try:
            async with self.engine.begin() as conn:
                await conn.execute(NONCE.delete().where(NONCE.c.expires_at < now))
                await conn.execute(insert(NONCE).values(nonce=nonce, expires_at=expires_at))
        except IntegrityError:
            return False
        except SQLAlchemyError as exc:
            raise StoreError(f"database error: {type(exc).__name__}") from exc
        return True

    # plumbing --------------------------------------------------------------------------------

    def _connect(self) -> Any:
        return _Translated(self.engine.connect())

    def _begin(self) -> Any:
        return _Translated(self.engine.begin())


class RoomWriter:
    """Reads and writes of one room inside the transaction Store.writer opened."""

    def __init__(self, conn: AsyncConnection, room_id: str):
        self.conn = conn
        self.room_id = room_id

    async def events(self, after: int) -> list[Event]:
        """The room's events after ``after``, checked against their entries (as Store.events)."""
        return await checked_events(self.conn, self.room_id, after, None)

    async def remember(self, key: CommandKey, outcome: Mapping[str, Any]) -> None:
        """Record a command's outcome; a command id seen before raises DuplicateCommand."""
        values = {
            "room_id": self.room_id,
            "subject": key.subject,
            "command_id": key.command_id,
            "outcome": dict(outcome),
            "at": datetime.now(UTC),
        }
        try:
            await self.conn.execute(insert(COMMAND).values(**values))
        except IntegrityError as exc:
            raise _SeenBefore(key) from exc

    async def insert(
        self, events: Sequence[Event], causes: Mapping[int, str] | None = None
    ) -> None:
        """Append numbered events; ``causes`` maps a seq to the client command id behind it."""
        if events:
            causes = causes or {}
            rows = [_event_row(self.room_id, e, causes.get(e.seq)) for e in events]
            await self.conn.execute(insert(EVENT), rows)

    async def audit(self, entries: Sequence[Entry]) -> None:
        """Record entries in the audit log, in this transaction (the integrator numbers them)."""
        await record_audit(self.conn, entries)

    async def append(
        self, events: Sequence[Event], key: CommandKey | None, outcome: Mapping[str, Any]
    ) -> None:
        """Events with their audit entries (every stored event has one: bidroom.integrity)."""
        if key is not None:
            await self.remember(key, outcome)
        await self.insert(events, {e.seq: key.command_id for e in events} if key else None)
        await self.audit([room_event(self.room_id, e) for e in events])


async def _event_rows(
    conn: AsyncConnection, room_id: str, after: int, upto: int | None
) -> list[Event]:
    query = select(EVENT).where(EVENT.c.room_id == room_id, EVENT.c.seq > after)
    if upto is not None:
        query = query.where(EVENT.c.seq <= upto)
    rows = (await conn.execute(query.order_by(EVENT.c.seq))).all()
    return [_event_from(row) for row in rows]


async def _recorded(
    conn: AsyncConnection, room_id: str, after: int, upto: int | None
) -> list[integrity.Recorded]:
    """The entries recording events of ``room_id`` (every entry of the room with a seq) after
    ``after``, up to ``upto`` (by the room-and-seq index, 0005)."""
    columns = (AUDIT.c.at, AUDIT.c.actor, AUDIT.c.action, AUDIT.c.seq, AUDIT.c.objects)
    query = select(*columns, AUDIT.c.idx, AUDIT.c.salt, AUDIT.c.leaf).where(
        AUDIT.c.room_id == room_id, AUDIT.c.seq.is_not(None), AUDIT.c.seq > after
    )
    if upto is not None:
        query = query.where(AUDIT.c.seq <= upto)
    rows = (await conn.execute(query.order_by(AUDIT.c.seq, AUDIT.c.id))).all()
    return [
        integrity.Recorded(
            Entry(utc(at), actor, action, room_id, seq, objects, idx, salt),
            None if leaf is None else bytes(leaf),
        )
        for at, actor, action, seq, objects, idx, salt, leaf in rows
    ]


async def checked_events(
    conn: AsyncConnection, room_id: str, after: int, upto: int | None
) -> list[Event]:
    """The room's events after ``after`` (up to ``upto``), checked against their entries.

    An event and its entry are committed together, so the events are read first, then the
    entries: an entry found beyond the last event read is either a later append (its event is
    there now: read again up to it) or a deleted event. No snapshot isolation is needed."""
    events = await _event_rows(conn, room_id, after, upto)
    if not events and after > 0:
        return events  # nothing new to catch up on (the common case before each commit)
    recorded = await _recorded(conn, room_id, after, upto)
    last = events[-1].seq if events else after
    beyond = max((r.entry.seq or 0 for r in recorded), default=after)
    if last is not None and beyond > last:
        events += await _event_rows(conn, room_id, last, beyond)
    mismatch = integrity.first_mismatch(room_id, after, events, recorded)
    if mismatch is not None:
        raise RoomTampered(
            f"{mismatch.describe()}: the room is not served (docs/audit.md)",
            detail=mismatch.to_json(),
        )
    return events


async def record_audit(conn: AsyncConnection, entries: Sequence[Entry]) -> list[int]:
    """Append pending audit entries in ``conn``'s transaction; their row ids. Each gets its
    salt here (32 random bytes, docs/audit.md), unless it came with one."""
    if not entries:
        return []
    rows = [
        {
            "at": e.at,
            "actor": e.actor,
            "action": e.action,
            "room_id": e.room,
            "seq": e.seq,
            "objects": dict(e.objects),
            "salt": e.salt or secrets.token_hex(SALT_BYTES),
        }
        for e in entries
    ]
    result = await conn.execute(
        insert(AUDIT).returning(AUDIT.c.id, sort_by_parameter_order=True), rows
    )
    return [int(row_id) for row_id in result.scalars()]


def _event_row(room_id: str, event: Event, command_id: str | None) -> dict[str, Any]:
    return {
        "room_id": room_id,
        "seq": event.seq,
        "name": event.name,
        "data": dict(event.data),
        "actor": event.actor.to_json() if event.actor else None,
        "at": event.at,
        "command_id": command_id,
    }


class _SeenBefore(Exception):
    def __init__(self, key: CommandKey):
        self.key = key


class _Translated:
    """An engine context manager whose driver errors come out as StoreError."""

    def __init__(self, inner: Any):
        self.inner = inner

    async def __aenter__(self) -> AsyncConnection:
        try:
            conn: AsyncConnection = await self.inner.__aenter__()
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"database unavailable: {type(exc).__name__}") from exc
        return conn

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        try:
            result: bool | None = await self.inner.__aexit__(*exc_info)
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"database error: {type(exc).__name__}") from exc
        if exc_info[1] is not None and isinstance(exc_info[1], SQLAlchemyError | OSError):
            raise StoreError(f"database error: {type(exc_info[1]).__name__}") from exc_info[1]
        return result
