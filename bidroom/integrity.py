"""What is stored is what was recorded: a room's events checked against their audit entries.

Every room event is recorded, in the transaction that appends it, with an audit entry
(bidroom.audit.room_event) holding its action (``room.`` + name), seq, time, actor and the
SHA-256 of its data (``objects.event``) and of its whole actor object (``objects.actor``; not in
entries recorded before it was added). The entries are the log's; integrated ones are bound by
their leaves to signed checkpoints. So an event edited in the database (a score 15 made 20),
deleted, added or moved to another seq no longer matches its entry, and whoever reads the
events notices:

- :func:`event_problems` says which fields of one event its entry does not vouch for;
- :func:`first_mismatch` compares a run of events with the entries of the same seqs and says
  the first problem, or None (docs/audit.md "Room events against their entries" is the
  specification, in its order of checks).

The node (bidroom.store.checked_events: every read of a room's events is checked; the hub's
broker deliveries) and the offline verifier (bidroom.audit_events, a bundle's events.jsonl) use
the same :func:`event_problems`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bidroom import audit
from bidroom.room import Event
from ca import merkle

ROOM_ACTION = "room."  # the action of every room event's entry starts so

# The problems, in the order a reader checks them (docs/audit.md "Room events against their
# entries"). Each one names the seq at fault; ``index`` is the entry's (None: no entry).
MISSING = "event_missing"  # an entry (or a seq in the run) with no event: an event deleted
UNRECORDED = "event_unrecorded"  # an event with no entry: an event added, or its entry removed
REPEATED = "entry_repeated"  # two entries for one seq
ALTERED = "event_altered"  # the event does not match its entry: the fields say which
ENTRY_ALTERED = "entry_altered"  # an integrated entry whose leaf is not its hash any more


@dataclass(frozen=True, slots=True)
class Mismatch:
    """Where a room's stored events and its audit entries part: the first seq at fault."""

    room: str
    seq: int
    index: int | None
    problem: str
    fields: tuple[str, ...] = ()

    def describe(self) -> str:
        entry = "no entry" if self.index is None else f"entry {self.index}"
        what = {
            MISSING: "is missing (its entry is there)",
            UNRECORDED: "has no entry in the audit log",
            REPEATED: "has two entries in the audit log",
            ALTERED: f"does not match its entry ({', '.join(self.fields)})",
            ENTRY_ALTERED: "has an entry whose leaf is not its hash any more",
        }[self.problem]
        return f"room {self.room} event {self.seq} {what}; {entry}"

    def to_json(self) -> dict[str, Any]:
        return {
            "room": self.room,
            "seq": self.seq,
            "index": self.index,
            "problem": self.problem,
            "fields": list(self.fields),
        }


@dataclass(frozen=True, slots=True)
class Recorded:
    """A room event's audit entry as stored: the entry, and its leaf once integrated."""

    entry: audit.Entry
    leaf: bytes | None = None


def event_problems(
    entry: audit.Entry,
    name: str,
    data: Mapping[str, Any],
    at: str | datetime,
    actor: Mapping[str, Any] | None,
    actors: dict[tuple[Any, ...], str] | None = None,
) -> list[str]:
    """The fields of an event that its entry does not vouch for, in the documented order; []
    when it matches. ``at`` is the event's time, or its text in the entry's form (a bundle's);
    ``actors`` keeps actors' digests across calls (a room has few actors, many events)."""
    wrong: list[str] = []
    if entry.action != ROOM_ACTION + name:
        wrong.append("name")
    if (entry.at if isinstance(at, datetime) else audit.utc_text(entry.at)) != at:
        wrong.append("at")
    subject = "system" if actor is None else str(actor.get("subject"))
    if entry.actor != subject:
        wrong.append("actor")
    objects = dict(entry.objects)
    if objects.get("event") != audit.digest(dict(data)):
        wrong.append("data")
    if "actor" in objects and (actor is None or objects["actor"] != _actor(actor, actors)):
        wrong.append("actor")
    if len(objects) > 1 + ("actor" in objects) or data.get("files"):  # files named: a recording's
        files = {k: v for k, v in objects.items() if k.startswith("file:")}
        listed = {
            f"file:{f['name']}": str(f["sha256"])
            for f in data.get("files") or ()
            if isinstance(f, Mapping) and "sha256" in f and "name" in f
        }
        if files != listed:
            wrong.append("data")
    return list(dict.fromkeys(wrong))


def _actor(actor: Mapping[str, Any], known: dict[tuple[Any, ...], str] | None) -> str:
    if known is None:
        return audit.actor_digest(actor)
    key = tuple(sorted((str(k), repr(v)) for k, v in actor.items()))
    found = known.get(key)
    if found is None:
        found = known[key] = audit.actor_digest(actor)
    return found


def leaf_holds(recorded: Recorded) -> bool:
    """An integrated entry's stored leaf is still SHA-256(0x00 || its encoding)."""
    if recorded.leaf is None or recorded.entry.index is None:
        return True  # pending: no leaf yet
    return merkle.leaf_hash(audit.encode(recorded.entry)) == recorded.leaf


def first_mismatch(
    room: str, after: int, events: Sequence[Event], recorded: Iterable[Recorded]
) -> Mismatch | None:
    """The first seq after ``after`` where ``events`` (in seq order, as read) and the room
    event entries ``recorded`` of the same seqs disagree; None if every event has exactly one
    entry that vouches for it, and the seqs run on from ``after`` without a hole."""
    by_seq: dict[int, Recorded] = {}
    repeated: dict[int, Recorded] = {}
    for one in recorded:
        seq = one.entry.seq
        if seq is None:
            continue
        if seq in by_seq:
            repeated.setdefault(seq, one)
        else:
            by_seq[seq] = one
    expected = after + 1
    actors: dict[tuple[Any, ...], str] = {}
    for event in events:
        if event.seq is None:
            continue
        if event.seq > expected:  # a hole: event ``expected`` is gone
            return _missing(room, expected, by_seq)
        expected = event.seq + 1
        found = by_seq.pop(event.seq, None)
        if found is None:
            return Mismatch(room, event.seq, None, UNRECORDED)
        index = found.entry.index
        if event.seq in repeated:
            return Mismatch(room, event.seq, index, REPEATED)
        assert event.at is not None, "a stored event has its time"
        actor = event.actor.to_json() if event.actor is not None else None
        wrong = event_problems(found.entry, event.name, event.data, event.at, actor, actors)
        if wrong:
            return Mismatch(room, event.seq, index, ALTERED, tuple(wrong))
        if not leaf_holds(found):
            return Mismatch(room, event.seq, index, ENTRY_ALTERED)
    if by_seq:  # entries beyond the last event (or in a hole): their events are gone
        return _missing(room, min(by_seq), by_seq)
    return None


def _missing(room: str, seq: int, by_seq: Mapping[int, Recorded]) -> Mismatch:
    found = by_seq.get(seq)
    return Mismatch(room, seq, None if found is None else found.entry.index, MISSING)
