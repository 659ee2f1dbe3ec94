"""What the audit log records, as pure functions: entries and their canonical encoding.

An entry says when, who, what, where, and the hashes of the objects concerned — never their
content (a bid, a message's text or a key share stays out of the log; its SHA-256 goes in).
Its canonical encoding is what the Merkle tree's leaf hashes (RFC 6962 leaf: SHA-256(0x00 ||
encoding)), so anyone holding an entry can recompute its leaf and check its inclusion.

    encoding = canonical JSON of {"v": 2, "index", "time", "actor", "action", "room", "seq",
                                  "objects": {name: hex SHA-256}, "salt": 64 hex digits}

with "time" in UTC as ISO 8601 with microseconds and "Z" (2026-11-28T02:00:00.000000Z),
"room" and "seq" null where there is none. The salt (32 random bytes, given when the entry is
recorded) makes the leaf a commitment: the leaves are public (an inclusion proof's first hash
is a neighbour's leaf), the entries are not, and without its salt no entry can be guessed from
its leaf — not even one whose every other field is known (who signed in, and when). Entries
integrated before salts (version 1) have no "salt" and keep their encoding. docs/audit.md is
the specification.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bidroom.room import Actor, Event

VERSION = 2  # the version of every entry recorded now; 1 is read and checked, never written
SALT_BYTES = 32
SALT = re.compile(r"[0-9a-f]{64}")  # SALT_BYTES, lowercase hex


@dataclass(frozen=True, slots=True)
class Entry:
    """One fact of the record. ``index`` is assigned when the log integrates it."""

    at: datetime
    actor: str
    action: str
    room: str | None = None
    seq: int | None = None
    objects: Mapping[str, str] = field(default_factory=dict)
    index: int | None = None
    salt: str | None = None  # hex; None only for a version-1 entry (integrated before salts)


def canonical(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(value: Mapping[str, Any] | bytes) -> str:
    """Hex SHA-256 of bytes, or of a JSON value's canonical encoding."""
    data = value if isinstance(value, bytes) else canonical(value)
    return hashlib.sha256(data).hexdigest()


def utc_text(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode(entry: Entry) -> bytes:
    """The entry's canonical bytes: version 2 with its salt, version 1 (legacy) without one.
    It must have its index."""
    if entry.index is None:
        raise ValueError("an entry is encoded once the log has given it an index")
    fields: dict[str, Any] = {
        "v": 1,
        "index": entry.index,
        "time": utc_text(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "room": entry.room,
        "seq": entry.seq,
        "objects": dict(entry.objects),
    }
    if entry.salt is not None:
        if not SALT.fullmatch(entry.salt):
            raise ValueError("a salt is 32 bytes in lowercase hex")
        fields.update(v=VERSION, salt=entry.salt)
    return canonical(fields)


class EntryMalformed(ValueError):
    """An encoding that is not a canonical version-1 or version-2 entry (docs/audit.md
    "Entries"). ``code`` is always ``audit_entry_malformed``; ``field`` names the field at
    fault in the documented order of checks, or is None (not canonical JSON; fields missing or
    extra)."""

    code = "audit_entry_malformed"

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
HEX_DIGEST = SALT  # 64 lowercase hex digits: an object's SHA-256, like a salt
SAFE_INT = (1 << 53) - 1  # what every JSON reader holds exactly (JavaScript's numbers)
FIELDS_V1 = frozenset({"v", "index", "time", "actor", "action", "room", "seq", "objects"})


def _count(value: Any) -> bool:
    """A whole number from 0 to 2^53 - 1; JSON's true and 1.0 are not (Python: True == 1)."""
    return type(value) is int and 0 <= value <= SAFE_INT


def decode(data: bytes) -> Entry:
    """The entry of a canonical version-1 or version-2 encoding; :class:`EntryMalformed` (a
    ValueError) if it is not one. Checked in docs/audit.md's order, every field by its type."""
    try:
        fields = json.loads(data.decode("utf-8"))
        canonical_ = isinstance(fields, dict) and canonical(fields) == data
    except ValueError as exc:  # invalid UTF-8, not JSON, a lone surrogate (not UTF-8 again)
        raise EntryMalformed("not a canonical entry") from exc
    if not canonical_:
        raise EntryMalformed("not a canonical entry")
    version = fields.get("v")
    if type(version) is not int or version not in (1, VERSION):
        raise EntryMalformed("not a version-1 or version-2 entry", "v")
    expected = FIELDS_V1 | {"salt"} if version == VERSION else FIELDS_V1
    if set(fields) != expected:
        missing, extra = sorted(expected - set(fields)), sorted(set(fields) - expected)
        raise EntryMalformed(
            f"a version-{version} entry has exactly the fields {sorted(expected)} "
            f"(missing {missing}, extra {extra})"
        )
    if not _count(fields["index"]):
        raise EntryMalformed("an entry's index is a whole number", "index")
    text = fields["time"]
    try:
        at = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except (TypeError, ValueError):
        at = None
    if not isinstance(text, str) or not TIME.fullmatch(text) or at is None:
        raise EntryMalformed("an entry's time is UTC as 2026-11-28T02:00:00.000000Z", "time")
    for name in ("actor", "action"):
        if not isinstance(fields[name], str) or fields[name] == "":
            raise EntryMalformed(f"an entry's {name} is a non-empty string", name)
    if fields["room"] is not None and not isinstance(fields["room"], str):
        raise EntryMalformed("an entry's room is a string or null", "room")
    if fields["seq"] is not None and not _count(fields["seq"]):
        raise EntryMalformed("an entry's seq is a whole number or null", "seq")
    objects = fields["objects"]
    if not isinstance(objects, dict) or not all(
        isinstance(v, str) and HEX_DIGEST.fullmatch(v) for v in objects.values()
    ):
        raise EntryMalformed("an entry's objects map names to lowercase hex SHA-256", "objects")
    salt = fields.get("salt")
    if version == VERSION and not (isinstance(salt, str) and SALT.fullmatch(salt)):
        raise EntryMalformed("a version-2 entry's salt is 32 bytes in lowercase hex", "salt")
    return Entry(
        at,
        fields["actor"],
        fields["action"],
        fields["room"],
        fields["seq"],
        dict(objects),
        fields["index"],
        salt,
    )


def actor_id(actor: Actor | None) -> str:
    """Who, as the log names them: the registry key (uscc:… or cert:<fingerprint>) or system."""
    return actor.subject if actor is not None else "system"


def actor_digest(actor: Mapping[str, Any]) -> str:
    """``objects.actor`` of a room event's entry: SHA-256 of the event's whole actor object
    (subject, name, role, venue, organisation), canonical JSON."""
    return digest(dict(actor))


def room_event(room: str, event: Event) -> Entry:
    """The entry recording a room event: its data is hashed, never copied, and so is its actor
    (``objects.actor``: the role and name it acted under, not only the subject). An event that
    lists files with their SHA-256 (a recording's) names each as an object, ``file:<name>``.
    bidroom.integrity checks stored events against these entries."""
    assert event.at is not None, "events are stamped before they are recorded"
    objects = {"event": digest(dict(event.data))}
    if event.actor is not None:
        objects["actor"] = actor_digest(event.actor.to_json())
    for file in event.data.get("files") or ():
        if isinstance(file, Mapping) and "sha256" in file and "name" in file:
            objects[f"file:{file['name']}"] = str(file["sha256"])
    return Entry(event.at, actor_id(event.actor), f"room.{event.name}", room, event.seq, objects)


BID_READ = "bid.read."  # + the part: the action of an entry recording a read of a bid's plaintext
BID_READ_PARTS = frozenset({"sheet", "commercial", "technical", "precheck"})


def bid_read(at: datetime, reader: Actor | None, room: str, envelope: str, part: str) -> Entry:
    """The entry recording that ``reader`` read ``part`` of the bid whose envelope has SHA-256
    ``envelope``, in ``room`` (the opening, for the sheet; an evaluation session otherwise).
    Written before the plaintext is read, so no read goes unrecorded."""
    assert part in BID_READ_PARTS, part
    return Entry(at, actor_id(reader), BID_READ + part, room, None, {"envelope": envelope})
