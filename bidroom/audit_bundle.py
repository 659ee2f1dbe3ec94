"""Audit bundles: everything needed to check the log offline, written and checked.

    <bundle>/manifest.json     {"format": "bidroom-audit-bundle", "version": 2, "origin",
                                "verifier_key", "size", "exported_at"}
    <bundle>/entries.jsonl     one line per entry, in index order: {"index": i,
                               "entry": "<canonical encoding, with its salt>", "leaf": "<hex>"}
    <bundle>/checkpoints.jsonl one line per checkpoint, by size:
                               {"size", "note", "timestamp": base64 DER or null}
    <bundle>/rotations.jsonl   one line per key rotation, in order: {"note": "<signed statement>"}
    <bundle>/tsa-roots.pem     the roots the timestamps must chain to (and tsa-chain.pem)
    <bundle>/events.jsonl      (version 3) the room events the entries record, as stored
                               (bidroom.audit_events), each checked against its entry

It is the audited export: every entry with its salt, which no public route gives out
(docs/audit.md "Who sees what"). ``verify`` reads it all once, with bounded memory (a Merkle
frontier, not the tree), recomputes every leaf from its entry and salt, and raises an AuditError
naming the first entry or checkpoint where anything is wrong. Version 1 bundles (exported before
salts) still verify; in either, once one entry is version 2 every later entry must be too.

What it is checked against comes from outside the bundle: the log's published verifier key
(``verifier_key``; the bundle's own manifest key only when the caller says to trust it) and the
TSA roots inside ``check_token``. Incomplete evidence fails: no checkpoint, a checkpoint without
its timestamp (when timestamps are checked), an entry no checkpoint covers, fewer entries than
the manifest's size.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bidroom import audit, audit_events
from ca import checkpoint, merkle
from ca.errors import AuditError, CryptoError

FORMAT = "bidroom-audit-bundle"
VERSION = 3  # 3: with events.jsonl
VERSIONS = (1, 2, 3)  # what verify reads
EVENTS_SINCE = 3  # the first version whose bundles carry (and must carry) the room events
Progress = Callable[[int], None]
TokenCheck = Callable[[bytes, bytes], None]  # (token, note bytes) -> raises if not good


@dataclass(frozen=True, slots=True)
class Report:
    entries: int
    checkpoints: int
    timestamps: int
    keys: tuple[str, ...] = ()  # the verifier keys the checkpoints were checked under, in order
    events: int | None = None  # room events checked against their entries (None: a bundle
    # older than version 3 carries none)


def manifest(folder: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise AuditError("the bundle has no readable manifest", code="audit_bundle") from exc
    if data.get("format") != FORMAT or data.get("version") not in VERSIONS:
        raise AuditError("not a version-1 to 3 bidroom audit bundle", code="audit_bundle")
    return data


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as source:
        for number, line in enumerate(source):
            try:
                yield number, json.loads(line)
            except ValueError as exc:
                raise AuditError(
                    f"{path.name} line {number + 1} is not JSON",
                    code="audit_bundle",
                    detail={"line": number + 1},
                ) from exc


def _checked_entry(position: int, line: dict[str, Any], salted: bool) -> tuple[bytes, bool]:
    """The leaf of the entry on this line and whether it is salted, after checking that it is
    entry ``position``, unaltered: its leaf is SHA-256(0x00 || its encoding, salt included).
    ``salted``: an earlier entry was version 2, so this one must be too (an unsalted entry
    after the change would have a guessable leaf)."""
    where = {"index": position}
    if line.get("index") != position:
        raise AuditError(
            f"entry {position} is missing, repeated or out of order",
            code="audit_entry_order",
            detail={**where, "found": line.get("index")},
        )
    encoding = str(line.get("entry", "")).encode()
    try:
        entry = audit.decode(encoding)
    except audit.EntryMalformed as exc:
        field = {} if exc.field is None else {"field": exc.field}
        raise AuditError(
            f"entry {position} is malformed: {exc}",
            code="audit_entry_malformed",
            detail={**where, **field},
        ) from exc
    if salted and entry.salt is None:
        raise AuditError(
            f"entry {position} has no salt (version 1) after salted entries (version 2)",
            code="audit_entry_unsalted",
            detail=where,
        )
    leaf = merkle.leaf_hash(encoding)
    if entry.index != position or leaf.hex() != line.get("leaf"):
        raise AuditError(
            f"entry {position} was altered: its leaf is not SHA-256(0x00 || the entry as "
            "written, salt included)",
            code="audit_entry_altered",
            detail=where,
        )
    return leaf, entry.salt is not None


def rotations(folder: Path) -> list[checkpoint.Rotation]:
    """The bundle's key rotations (none if it has no rotations.jsonl), each signed by both its
    keys."""
    path = folder / "rotations.jsonl"
    if not path.exists():
        return []
    found = []
    for number, line in _lines(path):
        try:
            found.append(checkpoint.parse_rotation(str(line.get("note", ""))))
        except AuditError as exc:
            raise AuditError(
                f"rotation on line {number + 1}: {exc.message}",
                code=exc.code,
                detail={"line": number + 1},
            ) from exc
    return found


def _checkpoints(folder: Path, keys: checkpoint.KeyChain) -> list[tuple[int, bytes, str, Any]]:
    found: dict[int, tuple[int, bytes, str, Any]] = {}
    for number, line in _lines(folder / "checkpoints.jsonl"):
        note = str(line.get("note", ""))
        try:
            claimed = checkpoint.unverified_checkpoint(note)
            cp = checkpoint.parse_and_verify(note, keys.key_for(claimed.size))
        except AuditError as exc:
            raise AuditError(
                f"checkpoint on line {number + 1}: {exc.message}",
                code=exc.code,
                detail={"line": number + 1},
            ) from exc
        earlier = found.get(cp.size)
        if earlier is not None and earlier[1] != cp.root:
            raise AuditError(
                f"two checkpoints of size {cp.size} with different roots",
                code="audit_fork",
                detail={"size": cp.size},
            )
        found[cp.size] = (cp.size, cp.root, note, line.get("timestamp"))
    if not found:
        raise AuditError(
            "the bundle has no checkpoint: nothing in it is signed, so nothing is proven",
            code="audit_no_checkpoint",
        )
    return [found[size] for size in sorted(found)]


def verify(
    folder: Path,
    check_token: TokenCheck | None = None,
    progress: Progress | None = None,
    *,
    verifier_key: str | None = None,
) -> Report:
    """Check a bundle offline; AuditError names the first entry or checkpoint that is wrong.

    ``verifier_key``: the log's published key (None: the manifest's own, which proves only that
    the bundle agrees with itself: the command line takes it only when told to). ``check_token``
    checks each checkpoint's timestamp (None: not checked, nor required)."""
    head = manifest(folder)
    keys = checkpoint.KeyChain(verifier_key or str(head.get("verifier_key", "")), rotations(folder))
    marks = _checkpoints(folder, keys)
    if check_token is not None:
        _require_timestamps(marks)
    frontier, verified_to, stamps, pending = merkle.Frontier(), 0, 0, list(marks)
    turns = [(r.size, r.root, n) for n, r in enumerate(keys.rotations, 1)]
    salted, count = False, 0
    for position, line in _lines(folder / "entries.jsonl"):
        if position >= marks[-1][0]:
            _uncovered(position, marks[-1][0])
        leaf, this_salted = _checked_entry(position, line, salted)
        salted = salted or this_salted
        frontier = frontier.append(leaf)
        count = position + 1
        if progress:
            progress(1)
        while pending and pending[0][0] == position + 1:
            stamps += _check_mark(pending.pop(0), frontier.root(), verified_to, check_token)
            verified_to = position + 1
        if turns and turns[0][0] == position + 1:
            turns = _check_turns(turns, position + 1, frontier.root())
    if pending:
        size = pending[0][0]
        raise AuditError(
            f"checkpoint {size} covers entries the bundle does not have",
            code="audit_entry_order",
            detail={"index": verified_to, "size": size},
        )
    if turns:
        raise AuditError(
            f"rotation {turns[0][2]} names a tree of {turns[0][0]} entries the bundle lacks",
            code="audit_rotation_root",
            detail={"rotation": turns[0][2], "size": turns[0][0]},
        )
    _check_size(head, count)
    used = tuple(dict.fromkeys(str(keys.key_for(size)) for size, *_ in marks))
    checked = _check_events(folder, head)
    return Report(marks[-1][0], len(marks), stamps, used, checked)


def _require_timestamps(marks: list[tuple[int, bytes, str, Any]]) -> None:
    """Every checkpoint has its timestamp: without one, nothing says when it existed."""
    for size, _, _, token in marks:
        if not token:
            raise AuditError(
                f"checkpoint {size} has no timestamp: nothing proves when it was signed",
                code="audit_timestamp",
                detail={"size": size},
            )


def _uncovered(index: int, covered: int) -> None:
    raise AuditError(
        f"entry {index} is in no checkpoint (the last covers entries 0..{covered - 1}): "
        "nothing signed vouches for it",
        code="audit_entry_uncovered",
        detail={"index": index, "size": covered},
    )


def _check_turns(
    turns: list[tuple[int, bytes, int]], size: int, root: bytes
) -> list[tuple[int, bytes, int]]:
    """Each rotation names the tree its old key signed last: its root must be the tree's."""
    while turns and turns[0][0] == size:
        _, expected, number = turns.pop(0)
        if expected != root:
            raise AuditError(
                f"rotation {number} names a tree of {size} entries that is not this log's",
                code="audit_rotation_root",
                detail={"rotation": number, "size": size},
            )
    return turns


def _check_size(head: dict[str, Any], count: int) -> None:
    """The bundle holds as many entries as its manifest says it does."""
    claimed = head.get("size")
    if claimed != count:
        raise AuditError(
            f"the manifest says the bundle holds {claimed} entries; it holds {count}",
            code="audit_bundle_short",
            detail={"size": claimed, "entries": count},
        )


def _check_events(folder: Path, head: dict[str, Any]) -> int | None:
    """Once the entries hold (above), the room events beside them, each against its entry
    (bidroom.audit_events): a second pass over the entries. Required from version 3 on; None
    (not checked) before."""
    if head.get("version", 0) < EVENTS_SINCE:
        return None
    if not (folder / audit_events.FILE).exists():
        raise AuditError(
            f"the bundle has no {audit_events.FILE}: its room events cannot be checked",
            code="audit_events_missing",
        )
    events = audit_events.EventsCheck(folder)
    for position, line in _lines(folder / "entries.jsonl"):
        events.entry(position, str(line.get("entry")))
    return events.finish()


def _check_mark(
    mark: tuple[int, bytes, str, Any], root: bytes, since: int, check_token: TokenCheck | None
) -> int:
    size, expected, note, token = mark
    if root != expected:
        raise AuditError(
            f"entries {since}..{size - 1} do not match checkpoint {size}",
            code="audit_checkpoint_root",
            detail={"index": since, "size": size},
        )
    if token is None or check_token is None:
        return 0
    try:
        check_token(base64.b64decode(token), note.encode())
    except (CryptoError, ValueError) as exc:
        code = getattr(exc, "code", "audit_timestamp")
        raise AuditError(
            f"the timestamp of checkpoint {size} does not hold: {exc}",
            code=code,
            detail={"size": size},
        ) from exc
    return 1


async def export(
    log: Any,
    folder: Path,
    now: str,
    progress: Progress | None = None,
    tsa_pems: dict[str, bytes] | None = None,
    page: int = 10_000,
) -> int:
    """Write the integrated log and its checkpoints into ``folder``; the number of entries."""
    folder.mkdir(parents=True, exist_ok=True)
    marks = await log.checkpoints()
    size = marks[-1].size if marks else 0
    with (folder / "entries.jsonl").open("w", encoding="utf-8") as out:
        for start in range(0, size, page):
            for index, encoding, leaf in await log.entries(start, min(size, start + page)):
                out.write(
                    json.dumps(
                        {"index": index, "entry": encoding.decode(), "leaf": leaf.hex()},
                        ensure_ascii=False,
                    )
                    + "\n"
                )
                if progress:
                    progress(1)
    with (folder / "checkpoints.jsonl").open("w", encoding="utf-8") as out:
        for mark in marks:
            stamp = base64.b64encode(mark.timestamp).decode() if mark.timestamp else None
            out.write(
                json.dumps(
                    {"size": mark.size, "note": mark.note, "timestamp": stamp}, ensure_ascii=False
                )
                + "\n"
            )
    await audit_events.export(log.engine, folder, size, page)
    with (folder / "rotations.jsonl").open("w", encoding="utf-8") as out:
        for rotation in await log.rotations():
            out.write(json.dumps({"note": rotation.note}, ensure_ascii=False) + "\n")
    for name, data in (tsa_pems or {}).items():
        (folder / name).write_bytes(data)
    signer = (await log.signer_of(marks[-1])) if marks else log.verifier
    if signer is None:
        raise AuditError(
            "the latest checkpoint is signed by none of this log's keys: export with the key "
            "the log goes on under",
            code="audit_key_continuity",
        )
    key = signer  # the key that signed the latest checkpoint
    head = {
        "format": FORMAT,
        "version": VERSION,
        "origin": key.name,
        "verifier_key": str(key),
        "size": size,
        "exported_at": now,
    }
    (folder / "manifest.json").write_text(json.dumps(head, ensure_ascii=False, indent=2))
    return size
