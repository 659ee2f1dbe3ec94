"""`bidroom audit` as an auditor uses it: integrate, export, verify offline, receipts."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from nodes import SECRET, bidroom

from bidroom import audit
from bidroom.broker import LocalBroker
from bidroom.hub import Hub
from bidroom.meeting import Meeting
from bidroom.metrics import Metrics
from bidroom.room import Actor, Command
from bidroom.store import RoomRecord, Store, create_engine

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


def test_an_auditor_exports_verifies_and_checks_a_receipt(tmp_path: Path) -> None:
    env = {
        "BIDROOM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'b.db'}",
        "BIDROOM_SECRET_KEY": SECRET,
        "BIDROOM_VAR_DIR": str(tmp_path / "var"),
    }
    assert bidroom("migrate", env=env).returncode == 0
    record_some_events(env["BIDROOM_DATABASE_URL"])
    done = bidroom("audit", "integrate", env=env)
    assert done.returncode == 0 and "checkpoint 6 signed" in done.stdout, done.stderr
    bundle = tmp_path / "bundle"
    assert bidroom("audit", "export", str(bundle), env=env).returncode == 0
    key = bidroom("audit", "key", "show", env=env).stdout.strip()  # what the platform publishes
    roots = tmp_path / "var" / "tsa" / "root.pem"
    published = ("--verifier-key", key, "--tsa-roots", str(roots))
    verified = bidroom("audit", "verify", str(bundle), *published, env=env)
    assert verified.stdout.strip() == "verified: 6 entries, 1 checkpoints, 1 timestamps"

    receipt = tmp_path / "receipt.json"
    assert bidroom("audit", "receipt", "3", "-o", str(receipt), env=env).returncode == 0
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
    refused = bidroom("audit", "check-receipt", str(receipt), *published, env={})
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
    resalted = bidroom("audit", "verify", str(bundle), *published, env=env)
    assert resalted.returncode == 2, resalted.stdout
    assert "entry 4 was altered" in resalted.stderr, resalted.stderr
    assert resalted.stderr.strip().endswith("(audit_entry_altered)")

    (bundle / "entries.jsonl").write_text("".join(lines[:2] + lines[3:]))
    broken = bidroom("audit", "verify", str(bundle), *published, env=env)
    assert broken.returncode == 2 and "(audit_entry_order)" in broken.stderr
