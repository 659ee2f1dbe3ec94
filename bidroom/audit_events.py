"""A bundle's room events: written beside the entries, and checked against them offline.

    <bundle>/events.jsonl   one line per room event entry of entries.jsonl, in index order:
                            {"index": i, "room", "seq", "event": {"name", "data", "at",
                             "actor"} or null (the database has no such event)}
                            then one line per stored event that has no entry at all:
                            {"index": null, "room", "seq", "event": {...}}

An entry records a room event by its action (``room.`` + name), seq, time, actor and the
SHA-256 of its data (and of its actor object); the event itself is in the database, which an
operator can edit. This file carries the events as stored, so that ``bidroom audit verify``
recomputes each one's digests and names the first event that does not match its entry
(bidroom.integrity.event_problems, the same check a node makes when it loads a room).
docs/audit.md "Room events" is the specification.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bidroom import audit, integrity
from bidroom.store import AUDIT, EVENT, utc
from ca.errors import AuditError

FILE = "events.jsonl"
CODES = {  # a node's problem (bidroom.integrity) -> the verifier's code
    integrity.MISSING: "audit_event_missing",
    integrity.UNRECORDED: "audit_event_unrecorded",
    integrity.REPEATED: "audit_event_missing",  # a seq twice: the run of seqs breaks
    integrity.ALTERED: "audit_event_altered",
}


def is_room_event(entry: audit.Entry) -> bool:
    """An entry that records a room event: it names a room and a seq."""
    return entry.room is not None and entry.seq is not None


def event_json(row: Any) -> dict[str, Any]:
    return {
        "name": row.name,
        "data": row.data,
        "at": audit.utc_text(utc(row.at)),
        "actor": row.actor,
    }


async def export(engine: AsyncEngine, folder: Path, size: int, page: int = 10_000) -> int:
    """Write ``events.jsonl`` for the entries 0..size-1; the number of lines written."""
    written = 0
    with (folder / FILE).open("w", encoding="utf-8") as out:
        async with engine.connect() as conn:
            for start in range(0, size, page):
                entries = (
                    await conn.execute(
                        select(AUDIT.c.idx, AUDIT.c.room_id, AUDIT.c.seq)
                        .where(
                            AUDIT.c.idx >= start,
                            AUDIT.c.idx < min(size, start + page),
                            AUDIT.c.room_id.is_not(None),
                            AUDIT.c.seq.is_not(None),
                        )
                        .order_by(AUDIT.c.idx)
                    )
                ).all()
                found = await _events(conn, entries)
                for index, room, seq in entries:
                    row = found.get((room, seq))
                    line = {
                        "index": index,
                        "room": room,
                        "seq": seq,
                        "event": None if row is None else event_json(row),
                    }
                    out.write(json.dumps(line, ensure_ascii=False) + "\n")
                    written += 1
            # events no entry records (added to the database, or their entry deleted)
            orphans = await conn.execute(
                select(EVENT)
                .outerjoin(
                    AUDIT, and_(AUDIT.c.room_id == EVENT.c.room_id, AUDIT.c.seq == EVENT.c.seq)
                )
                .where(AUDIT.c.id.is_(None))
                .order_by(EVENT.c.room_id, EVENT.c.seq)
            )
            for row in orphans:
                line = {"index": None, "room": row.room_id, "seq": row.seq}
                line["event"] = event_json(row)
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
                written += 1
    return written


async def _events(conn: Any, entries: Sequence[Any]) -> dict[tuple[str, int], Any]:
    """The stored events of these entries' (room, seq), one query a room of the page."""
    by_room: dict[str, list[int]] = {}
    for _, room, seq in entries:
        by_room.setdefault(room, []).append(seq)
    found: dict[tuple[str, int], Any] = {}
    for room, seqs in by_room.items():
        rows = await conn.execute(
            select(EVENT).where(
                EVENT.c.room_id == room, EVENT.c.seq >= min(seqs), EVENT.c.seq <= max(seqs)
            )
        )
        for row in rows:
            found[(room, row.seq)] = row
    return found


class EventsCheck:
    """Checks ``events.jsonl`` alongside ``entries.jsonl``, streaming (memory: one seq per
    room). Call :meth:`entry` with each entry in index order, then :meth:`finish`."""

    def __init__(self, folder: Path):
        self.path = folder / FILE
        self.lines: Iterator[tuple[int, dict[str, Any]]] | None = None
        self.last: dict[str, int] = {}  # each room's last seq seen
        self.checked = 0

    def _next(self) -> tuple[int, dict[str, Any]] | None:
        if self.lines is None:
            self.lines = _lines(self.path)
        return next(self.lines, None)

    def entry(self, position: int, encoding: str) -> None:
        """Check entry ``position`` (already checked as an entry) against its event, if it
        records one."""
        entry = audit.decode(encoding.encode())
        if not is_room_event(entry):
            return
        room, seq = str(entry.room), int(entry.seq or 0)
        found = self._next()
        if found is None or found[1].get("index") != position:
            raise AuditError(
                f"{FILE} has no line for entry {position} (room {room} event {seq})",
                code="audit_events_order",
                detail={"index": position, "room": room, "seq": seq},
            )
        number, line = found
        if line.get("room") != room or line.get("seq") != seq:
            raise AuditError(
                f"{FILE} line {number + 1} is not room {room} event {seq} (entry {position})",
                code="audit_events_order",
                detail={"index": position, "room": room, "seq": seq},
            )
        expected = self.last.get(room, 0) + 1
        if seq != expected:
            problem = integrity.MISSING if seq > expected else integrity.REPEATED
            self._fail(integrity.Mismatch(room, min(seq, expected), position, problem))
        self.last[room] = seq
        event = line.get("event")
        if event is None:
            self._fail(integrity.Mismatch(room, seq, position, integrity.MISSING))
        wrong = integrity.event_problems(entry, *_fields(event, number))
        if wrong:
            self._fail(integrity.Mismatch(room, seq, position, integrity.ALTERED, tuple(wrong)))
        self.checked += 1

    def finish(self) -> int:
        """After the last entry: no line left but events no entry records (each an error);
        the number of events checked."""
        found = self._next()
        if found is not None:
            number, line = found
            room, seq = line.get("room"), line.get("seq")
            if line.get("index") is None and isinstance(room, str) and isinstance(seq, int):
                self._fail(integrity.Mismatch(room, seq, None, integrity.UNRECORDED))
            raise AuditError(
                f"{FILE} line {number + 1} is for no entry of the bundle",
                code="audit_events_order",
                detail={"line": number + 1},
            )
        return self.checked

    def _fail(self, mismatch: integrity.Mismatch) -> NoReturn:
        raise AuditError(
            mismatch.describe(), code=CODES[mismatch.problem], detail=mismatch.to_json()
        )


def _fields(event: Any, number: int) -> tuple[str, dict[str, Any], str, dict[str, Any] | None]:
    """An event line's name, data, time and actor, each of its type."""
    if (
        isinstance(event, dict)
        and isinstance(event.get("name"), str)
        and isinstance(event.get("data"), dict)
        and isinstance(event.get("at"), str)
        and (event.get("actor") is None or isinstance(event.get("actor"), dict))
    ):
        return event["name"], event["data"], event["at"], event.get("actor")
    raise AuditError(
        f"{FILE} line {number + 1}: an event has a name, data, at and actor",
        code="audit_events_malformed",
        detail={"line": number + 1},
    )


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as source:
        for number, line in enumerate(source):
            try:
                parsed = json.loads(line)
            except ValueError as exc:
                raise AuditError(
                    f"{FILE} line {number + 1} is not JSON",
                    code="audit_bundle",
                    detail={"line": number + 1},
                ) from exc
            if not isinstance(parsed, dict):
                raise AuditError(
                    f"{FILE} line {number + 1} is not a JSON object",
                    code="audit_bundle",
                    detail={"line": number + 1},
                )
            yield number, parsed
