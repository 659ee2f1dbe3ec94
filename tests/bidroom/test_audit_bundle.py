"""Export the log and check it offline; every kind of tampering is named where it happens."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import ROOM

from bidroom import audit, audit_bundle, builtin_tsa
from bidroom.audit_log import AuditLog
from bidroom.hub import Hub
from bidroom.room import Actor, Command
from bidroom.store import Store
from ca import checkpoint, merkle, tsa
from ca import primitives as p
from ca.errors import AuditError

CHAIR = Actor("cert:ab12", "王敏", "chair")
ORIGIN = "bidroom.test/audit"


@pytest.fixture
def database_url(tmp_path: Path) -> str:  # SQLite is enough here: the store is tested elsewhere
    return f"sqlite+aiosqlite:///{tmp_path / 'bidroom.db'}"


@pytest.fixture
async def bundle(store: Store, hub: Hub, tmp_path: Path) -> Path:
    log = AuditLog(
        store.engine, ORIGIN, p.ed25519_from_seed(b"\x01" * 32), lambda: datetime.now(UTC)
    )
    await hub.execute(ROOM, Command("meeting.open"), CHAIR)
    for round_ in range(3):
        for n in range(4):
            await hub.execute(ROOM, Command("meeting.announce", {"text": f"{round_}.{n}"}), CHAIR)
        await log.integrate()
    folder = tmp_path / "bundle"
    assert await audit_bundle.export(log, folder, "2026-11-28T03:00:00Z") == 13
    return folder


def rewrite(path: Path, change: Callable[[list[str]], list[str]]) -> None:
    path.write_text("".join(change(path.read_text().splitlines(keepends=True))))


def code(folder: Path) -> tuple[str, dict]:
    with pytest.raises(AuditError) as caught:
        audit_bundle.verify(folder)
    return caught.value.code, dict(caught.value.detail)


def test_an_intact_bundle_verifies(bundle: Path) -> None:
    report = audit_bundle.verify(bundle)
    assert (report.entries, report.checkpoints) == (13, 3)


def test_a_changed_byte_in_an_entry_is_named(bundle: Path) -> None:
    rewrite(
        bundle / "entries.jsonl",
        lambda ls: [
            ls[i].replace("room.meeting.announced", "room.meeting.announceD") if i == 5 else ls[i]
            for i in range(len(ls))
        ],
    )
    assert code(bundle) == ("audit_entry_altered", {"index": 5})


def test_an_entry_rewritten_with_its_leaf_is_caught_by_the_checkpoint(bundle: Path) -> None:
    def forge(lines: list[str]) -> list[str]:
        line = json.loads(lines[6])
        entry = audit.decode(line["entry"].encode())
        forged = replace(entry, actor="cert:forger")
        encoding = audit.encode(forged)
        line.update(entry=encoding.decode(), leaf=merkle.leaf_hash(encoding).hex())
        return [*lines[:6], json.dumps(line, ensure_ascii=False) + "\n", *lines[7:]]

    rewrite(bundle / "entries.jsonl", forge)
    assert code(bundle) == ("audit_checkpoint_root", {"index": 5, "size": 9})


def _entry_line(
    lines: list[str], index: int, change: Callable[[audit.Entry], audit.Entry], *, keep_leaf: bool
) -> list[str]:
    line = json.loads(lines[index])
    encoding = audit.encode(change(audit.decode(line["entry"].encode())))
    line["entry"] = encoding.decode()
    if not keep_leaf:
        line["leaf"] = merkle.leaf_hash(encoding).hex()
    return [*lines[:index], json.dumps(line, ensure_ascii=False) + "\n", *lines[index + 1 :]]


def other_salt(entry: audit.Entry) -> audit.Entry:
    assert entry.salt is not None
    return replace(entry, salt=("0" if entry.salt[0] != "0" else "1") + entry.salt[1:])


def test_a_changed_salt_is_named(bundle: Path) -> None:
    rewrite(bundle / "entries.jsonl", lambda ls: _entry_line(ls, 5, other_salt, keep_leaf=True))
    with pytest.raises(AuditError) as caught:
        audit_bundle.verify(bundle)
    assert (caught.value.code, dict(caught.value.detail)) == ("audit_entry_altered", {"index": 5})
    assert "entry 5 was altered" in caught.value.message and "salt" in caught.value.message


def test_a_changed_salt_with_its_leaf_is_caught_by_the_checkpoint(bundle: Path) -> None:
    rewrite(bundle / "entries.jsonl", lambda ls: _entry_line(ls, 5, other_salt, keep_leaf=False))
    assert code(bundle) == ("audit_checkpoint_root", {"index": 5, "size": 9})


def test_an_entry_stripped_of_its_salt_after_salted_ones_is_named(bundle: Path) -> None:
    """A version-1 (guessable) entry after version-2 ones: even with its leaf recomputed, the
    verifier names it before the checkpoint does."""
    unsalted = lambda e: replace(e, salt=None)  # noqa: E731
    rewrite(bundle / "entries.jsonl", lambda ls: _entry_line(ls, 7, unsalted, keep_leaf=False))
    assert code(bundle) == ("audit_entry_unsalted", {"index": 7})


@pytest.mark.parametrize(
    ("change", "index"),
    [
        (lambda ls: ls[:3] + ls[4:], 3),  # dropped
        (lambda ls: [*ls[:3], ls[4], ls[3], *ls[5:]], 3),  # swapped
        (lambda ls: [*ls[:3], ls[3], *ls[3:]], 4),  # repeated
    ],
)
def test_dropped_swapped_and_repeated_entries_are_named(
    bundle: Path, change: Callable[[list[str]], list[str]], index: int
) -> None:
    rewrite(bundle / "entries.jsonl", change)
    found, detail = code(bundle)
    assert (found, detail["index"]) == ("audit_entry_order", index)


def test_a_forged_checkpoint_is_caught(bundle: Path) -> None:
    forger = p.ed25519_from_seed(b"\x02" * 32)
    note = checkpoint.sign_note(
        checkpoint.format_checkpoint(ORIGIN, 13, b"\x00" * 32), ORIGIN, forger
    )
    rewrite(
        bundle / "checkpoints.jsonl",
        lambda ls: [*ls[:-1], json.dumps({"size": 13, "note": note, "timestamp": None}) + "\n"],
    )
    assert code(bundle)[0] in ("audit_note_signature", "audit_note_unknown_key")


def test_two_checkpoints_of_one_size_with_different_roots_are_a_fork(bundle: Path) -> None:
    key = p.ed25519_from_seed(b"\x01" * 32)
    other = checkpoint.sign_note(
        checkpoint.format_checkpoint(ORIGIN, 13, b"\x11" * 32), ORIGIN, key
    )
    rewrite(
        bundle / "checkpoints.jsonl",
        lambda ls: [*ls, json.dumps({"size": 13, "note": other, "timestamp": None}) + "\n"],
    )
    assert code(bundle)[0] == "audit_fork"


@pytest.fixture
def tsa_world(tmp_path: Path) -> dict:
    """Two built-in TSAs: ours (its root is trusted) and a stranger's."""
    now = datetime.now(UTC)
    ours, our_root = builtin_tsa.builtin(tmp_path / "ours", now, b"ours")
    theirs, _ = builtin_tsa.builtin(tmp_path / "theirs", now, b"theirs")
    return {"ours": tsa.LocalStamper(ours, [our_root]), "theirs": theirs, "root": our_root}


async def test_checkpoint_timestamps_are_checked_and_named(
    store: Store, hub: Hub, tmp_path: Path, tsa_world: dict
) -> None:
    stamper = tsa_world["ours"]

    async def stamp(note: bytes) -> bytes:
        return (await stamper.stamp(note)).token

    log = AuditLog(
        store.engine,
        ORIGIN,
        p.ed25519_from_seed(b"\x01" * 32),
        lambda: datetime.now(UTC),
        timestamper=stamp,
    )
    await hub.execute(ROOM, Command("meeting.open"), CHAIR)
    await log.integrate()
    folder = tmp_path / "stamped"
    await audit_bundle.export(log, folder, "now")

    def check(token: bytes, note: bytes) -> None:
        tsa.verify_token(token, note, [tsa_world["root"]])

    assert audit_bundle.verify(folder, check).timestamps == 1
    line = json.loads((folder / "checkpoints.jsonl").read_text())
    other = tsa.token_of(tsa_world["ours"].tsa.respond(tsa.request(b"other data")))
    stranger = tsa.token_of(tsa_world["theirs"].respond(tsa.request(line["note"].encode())))
    for token, expected in ((other, "tsa_imprint_mismatch"), (stranger, "tsa_untrusted")):
        line["timestamp"] = base64.b64encode(token).decode()
        (folder / "checkpoints.jsonl").write_text(json.dumps(line) + "\n")
        with pytest.raises(AuditError) as caught:
            audit_bundle.verify(folder, check)
        assert caught.value.code == expected


def test_a_bundle_exported_before_salts_still_verifies(tmp_path: Path) -> None:
    """A version-1 bundle of version-1 entries, written as the exporter wrote it then."""
    key = p.ed25519_from_seed(b"\x01" * 32)
    at = datetime(2026, 11, 20, 1, 2, 3, 456789, tzinfo=UTC)
    encodings = [
        audit.encode(audit.Entry(at, "uscc:91330903MA2B7H1X6Q", "auth.login", None, None, {}, n))
        for n in range(5)
    ]
    assert all(b'"v":1' in e and b"salt" not in e for e in encodings)
    leaves = [merkle.leaf_hash(e) for e in encodings]
    note = checkpoint.sign_note(
        checkpoint.format_checkpoint(ORIGIN, 5, merkle.root(leaves)), ORIGIN, key
    )
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "entries.jsonl").write_text(
        "".join(
            json.dumps({"index": n, "entry": e.decode(), "leaf": leaves[n].hex()}) + "\n"
            for n, e in enumerate(encodings)
        )
    )
    (folder / "checkpoints.jsonl").write_text(
        json.dumps({"size": 5, "note": note, "timestamp": None}) + "\n"
    )
    manifest = {
        "format": "bidroom-audit-bundle",
        "version": 1,
        "origin": ORIGIN,
        "verifier_key": str(checkpoint.verifier_key(ORIGIN, key)),
        "size": 5,
        "exported_at": "2026-11-21T00:00:00Z",
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    report = audit_bundle.verify(folder)
    assert (report.entries, report.checkpoints) == (5, 1)
