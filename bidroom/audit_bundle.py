"""Audit bundles: everything needed to check the log offline, written and checked.

    <bundle>/manifest.json     {"format": "bidroom-audit-bundle", "version": 2, "origin",
                                "verifier_key", "size", "exported_at"}
    <bundle>/entries.jsonl     one line per entry, in index order: {"index": i,
                               "entry": "<canonical encoding, with its salt>", "leaf": "<hex>"}
    <bundle>/checkpoints.jsonl one line per checkpoint, by size:
                               {"size", "note", "timestamp": base64 DER or null}
    <bundle>/tsa-roots.pem     the roots the timestamps must chain to (and tsa-chain.pem)
    <bundle>/events.jsonl      (version 3) the room events the entries record, as stored
                               (bidroom.audit_events), each checked against its entry

It is the audited export: every entry with its salt, which no public route gives out
(docs/audit.md "Who sees what"). ``verify`` reads it all once, with bounded memory (a Merkle
frontier, not the tree), recomputes every leaf from its entry and salt, and raises an AuditError
naming the first entry or checkpoint where anything is wrong. Version 1 bundles (exported before
salts) still verify; in either, once one entry is version 2 every later entry must be too.
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


def _checkpoints(folder: Path, verifier: str, origin: str) -> list[tuple[int, bytes, str, Any]]:
    found: dict[int, tuple[int, bytes, str, Any]] = {}
    for number, line in _lines(folder / "checkpoints.jsonl"):
        note = str(line.get("note", ""))
        try:
            cp = checkpoint.parse_and_verify(note, verifier, origin=origin)
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
    return [found[size] for size in sorted(found)]


def verify(
    folder: Path, check_token: TokenCheck | None = None, progress: Progress | None = None
) -> Report:
    """Check a bundle offline; AuditError names the first entry or checkpoint that is wrong."""
    head = manifest(folder)
    marks = _checkpoints(folder, head["verifier_key"], head["origin"])
    frontier, verified_to, stamps, pending = merkle.Frontier(), 0, 0, list(marks)
    salted = False
    for position, line in _lines(folder / "entries.jsonl"):
        leaf, this_salted = _checked_entry(position, line, salted)
        salted = salted or this_salted
        frontier = frontier.append(leaf)
        if progress:
            progress(1)
        while pending and pending[0][0] == position + 1:
            stamps += _check_mark(pending.pop(0), frontier.root(), verified_to, check_token)
            verified_to = position + 1
    if pending:
        size = pending[0][0]
        raise AuditError(
            f"checkpoint {size} covers entries the bundle does not have",
            code="audit_entry_order",
            detail={"index": verified_to, "size": size},
        )
    checked = _check_events(folder, head)
    return Report(verified_to if not marks else marks[-1][0], len(marks), stamps, checked)


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
    for name, data in (tsa_pems or {}).items():
        (folder / name).write_bytes(data)
    head = {
        "format": FORMAT,
        "version": VERSION,
        "origin": log.origin,
        "verifier_key": str(log.verifier),
        "size": size,
        "exported_at": now,
    }
    (folder / "manifest.json").write_text(json.dumps(head, ensure_ascii=False, indent=2))
    return size
