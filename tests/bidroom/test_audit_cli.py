"""`bidroom audit` as an auditor uses it: integrate, export, verify offline, receipts."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from nodes import SECRET, bidroom
from sqlalchemy import delete, insert, update

from bidroom import audit, cli
from bidroom.broker import LocalBroker
from bidroom.hub import Hub
from bidroom.meeting import Meeting
from bidroom.metrics import Metrics
from bidroom.room import Actor, Command
from bidroom.store import EVENT, RoomRecord, Store, create_engine

CHAIR = Actor("cert:ab12", "王敏", "chair")


def record_some_events(url: str) -> None:
    async def run() -> None:
        engine = create_engine(url)
        store = Store(engine)
        await store.create_room(RoomRecord("lot-1", "meeting", "开标会", {}, datetime.now(UTC)))
        hub = Hub(store, LocalBroker(), {"meeting": Meeting()}, node="n1", metrics=Metrics())
        await hub.execute("lot-1", Command("meeting.open"), CHAIR)
        for n in range(5):
            await hub.execute("lot-1", Command("meeting.announce", {"text": f"#{n}"}), CHAIR)
        await engine.dispose()

    asyncio.run(run())


def in_process(capsys: pytest.CaptureFixture[str], *argv: str) -> subprocess.CompletedProcess[str]:
    """``bidroom ARGV`` through the CLI's main() in this process (the settings from the
    environment), as a subprocess's result."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level  # main() logs as the server does
    try:
        code = cli.main(list(argv))
    finally:
        root.handlers[:], root.level = handlers, level
    out = capsys.readouterr()
    return subprocess.CompletedProcess(list(argv), code, out.out, out.err)


def test_an_auditor_exports_verifies_and_checks_a_receipt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The auditor's path through real subprocesses (migrate, integrate, export, verify, a
    bidder's check-receipt with no settings at all); the refusals after it through main() in
    this process, which is the same code without a process start each."""
    env = {
        "BIDROOM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'b.db'}",
        "BIDROOM_SECRET_KEY": SECRET,
        "BIDROOM_VAR_DIR": str(tmp_path / "var"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    def here(*argv: str) -> subprocess.CompletedProcess[str]:
        return in_process(capsys, *argv)

    assert bidroom("migrate", env=env).returncode == 0
    record_some_events(env["BIDROOM_DATABASE_URL"])
    done = bidroom("audit", "integrate", env=env)
    assert done.returncode == 0 and "checkpoint 6 signed" in done.stdout, done.stderr
    bundle = tmp_path / "bundle"
    assert bidroom("audit", "export", str(bundle), env=env).returncode == 0
    key = here("audit", "key", "show").stdout.strip()  # what the platform publishes
    roots = tmp_path / "var" / "tsa" / "root.pem"
    published = ("--verifier-key", key, "--tsa-roots", str(roots))
    verified = bidroom("audit", "verify", str(bundle), *published, env=env)
    assert verified.stdout.strip() == (
        "verified: 6 entries, 1 checkpoints, 1 timestamps, 6 room events"
    )

    receipt = tmp_path / "receipt.json"
    assert here("audit", "receipt", "3", "-o", str(receipt)).returncode == 0
    proven = bidroom(
        "audit",
        "check-receipt",
        str(receipt),
        "--verifier-key",
        key,
        "--tsa-roots",
        str(roots),
        env={},
    )
    assert proven.returncode == 0, proven.stderr
    assert "entry 3 (room.meeting.announced) is in the log of size 6, timestamped" in proven.stdout

    forged = json.loads(receipt.read_text())
    forged["entry"] = forged["entry"].replace("cert:ab12", "cert:cd34")
    receipt.write_text(json.dumps(forged))
    refused = here("audit", "check-receipt", str(receipt), *published)
    assert refused.returncode == 2 and refused.stderr.strip().endswith("(audit_entry_altered)")

    lines = (bundle / "entries.jsonl").read_text().splitlines(keepends=True)
    exported = [audit.decode(json.loads(line)["entry"].encode()) for line in lines]
    assert all(e.salt for e in exported), "the audited export carries every entry's salt"
    salted = json.loads(lines[4])
    salt = exported[4].salt
    assert salt is not None
    salted["entry"] = salted["entry"].replace(salt, salt[::-1])
    (bundle / "entries.jsonl").write_text(
        "".join([*lines[:4], json.dumps(salted) + "\n", *lines[5:]])
    )
    resalted = here("audit", "verify", str(bundle), *published)
    assert resalted.returncode == 2, resalted.stdout
    assert "entry 4 was altered" in resalted.stderr, resalted.stderr
    assert resalted.stderr.strip().endswith("(audit_entry_altered)")

    (bundle / "entries.jsonl").write_text("".join(lines[:2] + lines[3:]))
    broken = here("audit", "verify", str(bundle), *published)
    assert broken.returncode == 2 and "(audit_entry_order)" in broken.stderr


def run_on(url: str, statement: Any) -> None:
    """A statement straight on the database, as only its operator could."""

    async def run() -> None:
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.execute(statement)
        await engine.dispose()

    asyncio.run(run())


def test_verify_names_the_first_event_that_does_not_match_its_entry(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A score edited in the database after it was recorded (15 made 20): the export carries
    the events as stored and verify names the event, its room and its entry, in one line; an
    event deleted, or the bundle's events file edited or removed, fail too. The CLI's main()
    in this process (its other commands run as subprocesses above)."""
    url = database_url  # SQLite and PostgreSQL
    env = {"BIDROOM_DATABASE_URL": url, "BIDROOM_SECRET_KEY": SECRET}
    env["BIDROOM_VAR_DIR"] = str(tmp_path / "var")
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    def bidroom(*argv: str) -> subprocess.CompletedProcess[str]:
        return in_process(capsys, *argv)

    assert bidroom("migrate").returncode == 0
    record_some_events(url)
    assert bidroom("audit", "integrate").returncode == 0
    key = bidroom("audit", "key", "show").stdout.strip()  # what the platform publishes
    published = ("--verifier-key", key, "--tsa-roots", str(tmp_path / "var" / "tsa" / "root.pem"))
    at = EVENT.c.room_id == "lot-1"
    run_on(url, update(EVENT).where(at, EVENT.c.seq == 4).values(data={"text": "#2 20分"}))
    edited = tmp_path / "edited"
    assert bidroom("audit", "export", str(edited)).returncode == 0
    refused = bidroom("audit", "verify", str(edited), *published)
    assert refused.returncode == 2, refused.stdout
    assert refused.stderr.strip().splitlines()[-1] == (
        "bidroom: room lot-1 event 4 does not match its entry (data); entry 3 (audit_event_altered)"
    )

    run_on(url, update(EVENT).where(at, EVENT.c.seq == 4).values(data={"text": "#2"}))
    restored = tmp_path / "restored"
    assert bidroom("audit", "export", str(restored)).returncode == 0
    verified = bidroom("audit", "verify", str(restored), *published)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.strip().endswith(", 6 room events")

    lines = (restored / "events.jsonl").read_text().splitlines(keepends=True)
    forged = json.loads(lines[5])
    forged["event"]["data"]["text"] = "#4 20分"
    (restored / "events.jsonl").write_text("".join([*lines[:5], json.dumps(forged) + "\n"]))
    rewritten = bidroom("audit", "verify", str(restored), *published)
    assert rewritten.returncode == 2
    assert "room lot-1 event 6 does not match its entry (data); entry 5" in rewritten.stderr
    (restored / "events.jsonl").unlink()
    bare = bidroom("audit", "verify", str(restored), *published)
    assert bare.returncode == 2 and bare.stderr.strip().endswith("(audit_events_missing)")

    [sixth] = asyncio.run(_events_after(url, 5))
    added = {"room_id": "lot-1", "seq": 7, "name": sixth.name, "data": {"text": "#5"}}
    run_on(url, insert(EVENT).values(**added, actor=CHAIR.to_json(), at=sixth.at))
    extra = tmp_path / "extra"
    assert bidroom("audit", "export", str(extra)).returncode == 0
    unrecorded = bidroom("audit", "verify", str(extra), *published)
    assert unrecorded.returncode == 2
    assert unrecorded.stderr.strip().splitlines()[-1] == (
        "bidroom: room lot-1 event 7 has no entry in the audit log; no entry "
        "(audit_event_unrecorded)"
    )

    run_on(url, delete(EVENT).where(at, EVENT.c.seq >= 7))
    run_on(url, delete(EVENT).where(at, EVENT.c.seq == 2))
    deleted = tmp_path / "deleted"
    assert bidroom("audit", "export", str(deleted)).returncode == 0
    gone = bidroom("audit", "verify", str(deleted), *published)
    assert gone.returncode == 2
    assert gone.stderr.strip().splitlines()[-1] == (
        "bidroom: room lot-1 event 2 is missing (its entry is there); entry 1 (audit_event_missing)"
    )


async def _events_after(url: str, seq: int) -> list[Any]:
    engine = create_engine(url)
    try:
        return await Store(engine).events("lot-1", after=seq)
    finally:
        await engine.dispose()
