"""`bidroom audit verify` and `check-receipt` check against what the platform published, never
against what they are handed; the log goes on under one key, or a rotation both keys sign.

Each case runs the real command line (bidroom.cli.main, in this process: the commands read
their BIDROOM_* settings from the environment) or a real node (`bidroom serve` on port 0)."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from nodes import SECRET, bidroom, solo

from bidroom import audit, builtin_tsa
from bidroom.broker import LocalBroker
from bidroom.cli import main
from bidroom.hub import Hub
from bidroom.meeting import Meeting
from bidroom.metrics import Metrics
from bidroom.room import Actor, Command
from bidroom.store import RoomRecord, Store, create_engine
from ca import checkpoint, merkle, tsa
from ca import primitives as p

CHAIR = Actor("cert:ab12", "王敏", "chair")
PASSPHRASE = "the audit key's own passphrase, not the secret key"


class Platform:
    """One platform's database, var folder and audit key, and its operator's command line."""

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
        self.folder, self.monkeypatch, self.capsys = folder, monkeypatch, capsys
        self.env = {
            "BIDROOM_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'b.db'}",
            "BIDROOM_SECRET_KEY": SECRET,
            "BIDROOM_VAR_DIR": str(folder / "var"),
            "BIDROOM_AUDIT_KEY_FILE": str(folder / "audit-key.pem"),
            "BIDROOM_AUDIT_KEY_PASSPHRASE": PASSPHRASE,
            "BIDROOM_AUDIT_WITNESS": str(folder / "witness" / "latest.note"),
        }
        self.rooms = 0
        self.changed: list[str] = []

    def run(self, *args: str, **env: str | None) -> tuple[int, str, str]:
        """``bidroom ARGS`` with the platform's settings (``env`` changes some; None unsets):
        (exit code, stdout, stderr)."""
        for name in set(self.changed) - set(self.env):
            self.monkeypatch.delenv(name, raising=False)  # a change lasts one command
        self.changed = list(env)
        for name, value in {**self.env, **env}.items():
            if value is None:
                self.monkeypatch.delenv(name, raising=False)
            else:
                self.monkeypatch.setenv(name, value)
        self.capsys.readouterr()
        code = main(list(args))
        out, err = self.capsys.readouterr()
        return code, out, err

    def ok(self, *args: str, **env: str | None) -> str:
        code, out, err = self.run(*args, **env)
        assert code == 0, err
        return out

    def refused(self, expected: str, *args: str, **env: str | None) -> str:
        """The command fails with one line ending in ``(expected)``; that line."""
        code, out, err = self.run(*args, **env)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, (code, out, err)
        assert lines[0].startswith("bidroom: ") and lines[0].endswith(f"({expected})"), err
        return lines[0]

    def record(self, events: int = 3) -> None:
        """A meeting room and ``events`` announcements, recorded as a node records them."""
        self.rooms += 1
        room = f"lot-{self.rooms}"

        async def run() -> None:
            engine = create_engine(self.env["BIDROOM_DATABASE_URL"])
            store = Store(engine)
            await store.create_room(RoomRecord(room, "meeting", "开标会", {}, datetime.now(UTC)))
            hub = Hub(store, LocalBroker(), {"meeting": Meeting()}, node="n1", metrics=Metrics())
            await hub.execute(room, Command("meeting.open"), CHAIR)
            for n in range(events - 1):
                await hub.execute(room, Command("meeting.announce", {"text": f"#{n}"}), CHAIR)
            await engine.dispose()

        asyncio.run(run())

    @property
    def roots(self) -> Path:
        return self.folder / "var" / "tsa" / "root.pem"

    def key(self) -> str:
        return self.ok("audit", "key", "show").strip()

    def published(self) -> tuple[str, ...]:
        return ("--verifier-key", self.key(), "--tsa-roots", str(self.roots))

    def export(self, name: str = "bundle") -> Path:
        folder = self.folder / name
        self.ok("audit", "export", str(folder))
        return folder


@pytest.fixture
def platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> Platform:
    """Two checkpoints: of 3 entries, then of 6."""
    made = Platform(tmp_path, monkeypatch, capsys)
    made.ok("migrate")
    made.record()
    assert "checkpoint 3 signed" in made.ok("audit", "integrate")
    made.record()
    assert "checkpoint 6 signed" in made.ok("audit", "integrate")
    return made


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_lines(path: Path, lines: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))


# verify takes the published key and roots -------------------------------------------------


def test_verify_needs_the_published_key_and_roots_or_says_it_trusts_the_bundle(
    platform: Platform,
) -> None:
    bundle = platform.export()
    refused = platform.refused("audit_key_required", "audit", "verify", str(bundle))
    assert "--verifier-key" in refused and "--trust-bundle-keys" in refused
    key = ("--verifier-key", platform.key())
    assert "--tsa-roots" in platform.refused(
        "audit_tsa_roots_required", "audit", "verify", str(bundle), *key
    )
    out = platform.ok("audit", "verify", str(bundle), *platform.published())
    assert out.strip() == "verified: 6 entries, 2 checkpoints, 2 timestamps, 6 room events"

    trusting = platform.ok("audit", "verify", str(bundle), "--trust-bundle-keys")
    assert trusting.startswith("verified: 6 entries, 2 checkpoints, 2 timestamps, 6 room events\n")
    assert "WARNING: the verifier key and the TSA roots came from the bundle itself" in trusting
    half = platform.ok("audit", "verify", str(bundle), *key, "--trust-bundle-keys")
    assert "WARNING: the TSA roots came from the bundle itself" in half


def forge_end_to_end(bundle: Path, forger: p.Ed25519PrivateKey, stamper: tsa.LocalStamper) -> str:
    """Alter entry 1 (and the room event it records), recompute every leaf and every
    checkpoint, sign them with ``forger``, time-stamp them with ``stamper`` and write its root
    and the forger's key into the bundle: a bundle that agrees with itself in every way. The
    forger's verifier key."""
    head = json.loads((bundle / "manifest.json").read_text())
    origin = head["origin"]
    entries = lines_of(bundle / "entries.jsonl")
    forged = audit.decode(entries[1]["entry"].encode())
    events = lines_of(bundle / "events.jsonl")  # the event the entry records, made to agree
    [line] = [e for e in events if e["index"] == 1]
    line["event"]["actor"]["subject"] = "cert:forger"
    write_lines(bundle / "events.jsonl", events)
    objects = {**forged.objects, "actor": audit.actor_digest(line["event"]["actor"])}
    encoding = audit.encode(replace(forged, actor="cert:forger", objects=objects))
    entries[1].update(entry=encoding.decode(), leaf=merkle.leaf_hash(encoding).hex())
    write_lines(bundle / "entries.jsonl", entries)
    leaves = [bytes.fromhex(e["leaf"]) for e in entries]
    marks = []
    for mark in lines_of(bundle / "checkpoints.jsonl"):
        size = mark["size"]
        text = checkpoint.format_checkpoint(origin, size, merkle.root(leaves[:size]))
        note = checkpoint.sign_note(text, origin, forger)
        token = asyncio.run(stamper.stamp(note.encode())).token
        marks.append({"size": size, "note": note, "timestamp": base64.b64encode(token).decode()})
    write_lines(bundle / "checkpoints.jsonl", marks)
    key = str(checkpoint.verifier_key(origin, forger))
    (bundle / "manifest.json").write_text(json.dumps({**head, "verifier_key": key}))
    (bundle / "tsa-roots.pem").write_bytes(p.certificate_pem(stamper.trust[0]))
    (bundle / "tsa-chain.pem").unlink(missing_ok=True)
    return key


def test_a_bundle_re_signed_end_to_end_with_a_new_key_fails_against_the_published_one(
    platform: Platform, tmp_path: Path
) -> None:
    bundle = platform.export()
    authority, root = builtin_tsa.builtin(tmp_path / "forger-tsa", datetime.now(UTC), b"forger")
    forger = p.ed25519_from_seed(b"\x66" * 32)
    forge_end_to_end(bundle, forger, tsa.LocalStamper(authority, [root]))

    trusting = platform.ok("audit", "verify", str(bundle), "--trust-bundle-keys")
    assert "WARNING" in trusting, "the forgery agrees with itself: only the warning tells"
    refused = platform.refused(
        "audit_note_unknown_key", "audit", "verify", str(bundle), *platform.published()
    )
    assert "checkpoint on line 1" in refused
    # the genuine key given, the bundle's own (forged) roots trusted: still the key that fails
    platform.refused(
        "audit_note_unknown_key",
        "audit",
        "verify",
        str(bundle),
        "--verifier-key",
        platform.key(),
        "--trust-bundle-keys",
    )


# incomplete evidence fails ----------------------------------------------------------------


def _no_timestamp(bundle: Path) -> None:
    marks = lines_of(bundle / "checkpoints.jsonl")
    marks[1]["timestamp"] = None
    write_lines(bundle / "checkpoints.jsonl", marks)


def _uncovered(bundle: Path) -> None:
    """An entry after the last checkpoint, well formed and with its own leaf."""
    entries = lines_of(bundle / "entries.jsonl")
    extra = replace(audit.decode(entries[-1]["entry"].encode()), index=len(entries))
    encoding = audit.encode(extra)
    entries.append(
        {
            "index": len(entries),
            "entry": encoding.decode(),
            "leaf": merkle.leaf_hash(encoding).hex(),
        }
    )
    write_lines(bundle / "entries.jsonl", entries)


def _short(bundle: Path) -> None:
    """The last checkpoint and the entries only it covers removed: what is left agrees."""
    write_lines(bundle / "entries.jsonl", lines_of(bundle / "entries.jsonl")[:3])
    write_lines(bundle / "checkpoints.jsonl", lines_of(bundle / "checkpoints.jsonl")[:1])


@pytest.mark.parametrize(
    ("change", "code", "named"),
    [
        (_no_timestamp, "audit_timestamp", "checkpoint 6 has no timestamp"),
        (_uncovered, "audit_entry_uncovered", "entry 6 is in no checkpoint"),
        (
            lambda b: (b / "checkpoints.jsonl").write_text(""),
            "audit_no_checkpoint",
            "no checkpoint",
        ),
        (_short, "audit_bundle_short", "says the bundle holds 6 entries; it holds 3"),
    ],
    ids=["removed-timestamp", "uncovered-entry", "empty-checkpoints", "shorter-than-manifest"],
)
def test_incomplete_evidence_fails_naming_what_is_missing(
    platform: Platform, change: Callable[[Path], None], code: str, named: str
) -> None:
    bundle = platform.export()
    published = platform.published()
    change(bundle)
    assert named in platform.refused(code, "audit", "verify", str(bundle), *published)


def test_a_bundle_without_its_tsa_roots_fails_when_its_own_are_trusted(
    platform: Platform,
) -> None:
    bundle = platform.export()
    (bundle / "tsa-roots.pem").unlink()
    assert "tsa-roots.pem" in platform.refused(
        "audit_tsa_roots_missing", "audit", "verify", str(bundle), "--trust-bundle-keys"
    )


def test_a_receipt_is_checked_with_its_timestamp_against_given_roots(platform: Platform) -> None:
    receipt = platform.folder / "receipt.json"
    platform.ok("audit", "receipt", "4", "-o", str(receipt))
    published = platform.published()
    proven = platform.ok("audit", "check-receipt", str(receipt), *published)
    assert "entry 4 (room.meeting.announced) is in the log of size 6, timestamped" in proven
    key = published[:2]
    assert "--tsa-roots" in platform.refused(
        "audit_tsa_roots_required", "audit", "check-receipt", str(receipt), *key
    )
    made = json.loads(receipt.read_text())
    receipt.write_text(json.dumps({**made, "timestamp": None}))
    assert "no timestamp" in platform.refused(
        "audit_timestamp", "audit", "check-receipt", str(receipt), *published
    )


@pytest.mark.parametrize("index", ["-1", "abc", "1e3", "99999999999999999999999", "٣"])
def test_a_receipt_of_a_bad_index_is_a_one_line_error(platform: Platform, index: str) -> None:
    out = platform.folder / "r.json"
    platform.refused("invalid_args", "audit", "receipt", "-o", str(out), "--", index)
    assert not out.exists()


def test_a_receipt_of_an_entry_not_yet_signed_is_a_one_line_error(platform: Platform) -> None:
    platform.refused("audit_not_yet", "audit", "receipt", "-o", "r.json", "6")


# the audit key: its own, encrypted ----------------------------------------------------------


def test_the_audit_key_is_its_own_encrypted_and_needs_its_passphrase(
    platform: Platform, tmp_path: Path
) -> None:
    path = tmp_path / "audit-key.pem"
    assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert path.stat().st_mode & 0o077 == 0
    ours = platform.key()
    other = str(tmp_path / "other.pem")
    platform.refused("audit_key_missing", "audit", "key", "show", BIDROOM_AUDIT_KEY_FILE=other)
    made = platform.ok("audit", "key", "create", BIDROOM_AUDIT_KEY_FILE=other).strip()
    assert made == platform.ok("audit", "key", "show", BIDROOM_AUDIT_KEY_FILE=other).strip()
    assert made != ours, "the same BIDROOM_SECRET_KEY, another audit key: nothing derives it"
    platform.refused("audit_key_exists", "audit", "key", "create", BIDROOM_AUDIT_KEY_FILE=other)
    for passphrase, code in ((None, "audit_key_passphrase"), ("wrong", "audit_key_unreadable")):
        platform.refused(code, "audit", "key", "show", BIDROOM_AUDIT_KEY_PASSPHRASE=passphrase)
        platform.refused(code, "audit", "integrate", BIDROOM_AUDIT_KEY_PASSPHRASE=passphrase)
    # a log begun under the key derived from the secret key goes on under it (--legacy)
    old = p.ed25519_from_seed(
        p.hkdf_expand(p.hkdf_extract(b"", SECRET.encode()), b"bidroom audit log key v1", 32)
    )
    legacy = str(tmp_path / "legacy.pem")
    shown = platform.ok("audit", "key", "create", "--legacy", BIDROOM_AUDIT_KEY_FILE=legacy)
    assert shown.strip() == str(checkpoint.verifier_key("bidroom.local/audit", old))


# key continuity -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"BIDROOM_AUDIT_KEY_FILE": "another.pem"},
        {"BIDROOM_PUBLIC_URL": "https://elsewhere.example"},
        {"BIDROOM_AUDIT_ORIGIN": "elsewhere.example/audit"},
    ],
    ids=["another-key", "another-public-url", "another-origin"],
)
def test_a_node_refuses_to_sign_a_log_another_key_or_origin_signed(
    platform: Platform, change: dict[str, str]
) -> None:
    """Two nodes with different keys, or one reconfigured: the second refuses, the first goes
    on; the log is never signed under two keys."""
    if "BIDROOM_AUDIT_KEY_FILE" in change:
        change = {"BIDROOM_AUDIT_KEY_FILE": str(platform.folder / "another.pem")}
    platform.record()
    refused = platform.refused("audit_key_continuity", "audit", "integrate", **change)
    assert "the latest checkpoint (6 entries) is signed by bidroom.local/audit" in refused
    assert "bidroom audit key rotate" in refused
    assert "checkpoint 9 signed" in platform.ok("audit", "integrate")  # the configured node
    bundle = platform.export()
    assert "9 entries, 3 checkpoints" in platform.ok(
        "audit", "verify", str(bundle), *platform.published()
    )


def test_a_node_with_another_key_does_not_start(platform: Platform) -> None:
    """`bidroom serve` (a real process) says why in one line before it listens."""
    env = {**platform.env, "BIDROOM_AUDIT_KEY_FILE": str(platform.folder / "another.pem")}
    started = bidroom("serve", env={**env, "BIDROOM_PORT": "0", "BIDROOM_HOST": "127.0.0.1"})
    assert started.returncode == 2
    assert started.stderr.strip().splitlines()[-1].endswith("(audit_key_continuity)")
    assert "Traceback" not in started.stderr


def test_a_rotation_hands_the_log_on_and_the_verifier_follows_it(platform: Platform) -> None:
    old_key = platform.key()
    new_file = platform.folder / "new-key.pem"
    new_key = platform.ok("audit", "key", "rotate", "--to", str(new_file)).strip()
    assert new_key != old_key
    platform.record()
    refused = platform.refused("audit_key_continuity", "audit", "integrate")
    assert "rotated from this node's" in refused  # the old key signs no more after handing on
    assert "checkpoint 9 signed" in platform.ok(
        "audit", "integrate", BIDROOM_AUDIT_KEY_FILE=str(new_file)
    )
    bundle = platform.folder / "rotated"
    platform.ok("audit", "export", str(bundle), BIDROOM_AUDIT_KEY_FILE=str(new_file))
    assert json.loads((bundle / "manifest.json").read_text())["verifier_key"] == new_key
    roots = ("--tsa-roots", str(platform.roots))
    for published in (old_key, new_key):  # a checker holding either key follows the rotation
        out = platform.ok("audit", "verify", str(bundle), "--verifier-key", published, *roots)
        assert out.startswith("verified: 9 entries, 3 checkpoints, 3 timestamps, ")
        assert f"under keys (rotated): {old_key} -> {new_key}" in out
    stranger = str(checkpoint.verifier_key("bidroom.local/audit", p.generate_ed25519_key()))
    platform.refused(
        "audit_note_unknown_key", "audit", "verify", str(bundle), "--verifier-key", stranger, *roots
    )
    # a statement the new key did not sign is no rotation
    rotation = lines_of(bundle / "rotations.jsonl")
    text, _, signatures = rotation[0]["note"].rpartition("\n\n")
    write_lines(bundle / "rotations.jsonl", [{"note": f"{text}\n\n{signatures.splitlines()[0]}\n"}])
    platform.refused(
        "audit_note_unknown_key", "audit", "verify", str(bundle), "--verifier-key", old_key, *roots
    )


def test_a_database_restored_from_a_backup_is_not_signed_on(platform: Platform) -> None:
    """The witness (kept apart from the database) holds the latest checkpoint signed: a
    database older than it is refused, by the integrator and at start."""
    database = platform.folder / "b.db"
    backup = platform.folder / "backup.db"
    shutil.copy(database, backup)  # at checkpoint 6
    platform.record()
    assert "checkpoint 9 signed" in platform.ok("audit", "integrate")
    shutil.copy(backup, database)  # restored: checkpoint 9 was published, the database is at 6
    refused = platform.refused("audit_rollback", "audit", "integrate")
    assert "the database's log has 6 entries, fewer than the 9 of a checkpoint" in refused
    platform.record(4)  # entries 6..9, not those checkpoint 9 published
    assert "first 9 entries are not those" in platform.refused("audit_fork", "audit", "integrate")
    started = bidroom("serve", env={**platform.env, "BIDROOM_PORT": "0"})
    assert started.returncode == 2 and "(audit_fork)" in started.stderr, started.stderr


def test_a_node_publishes_its_keys_and_roots_and_labels_each_checkpoint_with_its_signer(
    platform: Platform,
) -> None:
    """After a rotation the latest checkpoint is still the old key's: a node configured with
    the new key serves it labelled with the old key, never its own, until it signs on. What it
    publishes at the well-known addresses is what check-receipt takes."""
    old_key = platform.key()
    new_file = platform.folder / "new-key.pem"
    new_key = platform.ok("audit", "key", "rotate", "--to", str(new_file)).strip()
    node = solo(
        platform.folder,
        **{**platform.env, "BIDROOM_AUDIT_KEY_FILE": str(new_file), "BIDROOM_AUDIT_SECONDS": "0.2"},
    )
    try:
        latest = httpx.get(node.url + "/api/audit/checkpoint", timeout=10).json()
        assert (latest["size"], latest["verifier_key"]) == (6, old_key)
        assert checkpoint.parse_and_verify(latest["note"], old_key).size == 6
        published = httpx.get(node.url + "/.well-known/bidroom-audit.json", timeout=10).json()
        assert published["verifier_key"] == new_key
        [rotation] = published["rotations"]
        assert (rotation["old"], rotation["new"], rotation["size"]) == (old_key, new_key, 6)
        assert checkpoint.parse_rotation(rotation["note"]).new.name == "bidroom.local/audit"
        roots = httpx.get(node.url + "/.well-known/bidroom-tsa-roots.pem", timeout=10)
        assert roots.headers["content-type"] == "application/x-pem-file"
        assert roots.content == platform.roots.read_bytes()
        assert published["tsa_roots"] == [roots.text]

        platform.record()
        for _ in range(600):  # until the node has integrated them (bounded: about a minute)
            latest = httpx.get(node.url + "/api/audit/checkpoint", timeout=10).json()
            if latest["size"] == 9:
                break
            time.sleep(0.1)
        assert (latest["size"], latest["verifier_key"]) == (9, new_key)
    finally:
        node.stop()
    receipt, fetched = platform.folder / "receipt.json", platform.folder / "roots.pem"
    fetched.write_bytes(roots.content)
    platform.ok("audit", "receipt", "7", "-o", str(receipt), BIDROOM_AUDIT_KEY_FILE=str(new_file))
    proven = platform.ok(
        "audit",
        "check-receipt",
        str(receipt),
        "--verifier-key",
        published["verifier_key"],
        "--tsa-roots",
        str(fetched),
    )
    assert "entry 7 (room.meeting.announced) is in the log of size 9, timestamped" in proven


@pytest.mark.parametrize(
    "args",
    [
        ("token", "x", "--role", "chair", "--ttl", "-5"),
        ("token", "x", "--role", "chair", "--ttl", "99999999999999999999999"),
        ("demo", "--opening-in", "nan"),
        ("demo", "--opening-in", "1e300"),
        ("demo", "--port", "-1"),
        ("bid", "upload", "x.bid", "--lot", "t-1", "--url", "http://x", "--chunk-mib", "inf"),
        ("bid", "upload", "x.bid", "--lot", "t-1", "--url", "http://x", "--retry-for", "-1"),
    ],
    ids=["ttl-negative", "ttl-huge", "opening-nan", "opening-huge", "port", "chunk", "retry"],
)
def test_other_numbers_out_of_range_are_one_line_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, args: tuple[str, ...]
) -> None:
    platform = Platform(tmp_path, monkeypatch, capsys)
    platform.refused("invalid_args", *args, BIDROOM_TOKEN="t")
    assert not (tmp_path / "var").exists()


def test_a_node_whose_key_did_not_sign_the_latest_checkpoint_never_labels_it_with_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """Two nodes with different keys on one database: B starts on an empty log, A signs. B
    serves A's checkpoint labelled with no key of B's: it answers 409, not B's key."""
    platform = Platform(tmp_path, monkeypatch, capsys)
    platform.ok("migrate")
    platform.record()
    other = str(tmp_path / "node-b-key.pem")
    node = solo(
        tmp_path,
        **{**platform.env, "BIDROOM_AUDIT_KEY_FILE": other, "BIDROOM_AUDIT_SECONDS": "3600"},
    )
    try:
        assert httpx.get(node.url + "/api/audit/checkpoint", timeout=10).status_code == 404
        assert "checkpoint 3 signed" in platform.ok("audit", "integrate")  # node A, its key
        answer = httpx.get(node.url + "/api/audit/checkpoint", timeout=10)
        assert (answer.status_code, answer.json()["code"]) == (409, "audit_key_continuity")
        published = httpx.get(node.url + "/.well-known/bidroom-audit.json", timeout=10).json()
        assert published["verifier_key"] != platform.key()
    finally:
        node.stop()
