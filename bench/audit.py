"""The audit log's costs: durable appends beside plain inserts, proofs, and offline verification.

    .venv/bin/python bench/audit.py              # 20,000 appends; a 1,000,000-entry log
    .venv/bin/python bench/audit.py --quick      # 2,000 appends; a 100,000-entry log

1. Appends: the same rows inserted one transaction each into a plain table (the baseline) and
   through the log (``audit_entry``, with its unique index and pending-entry index), on SQLite
   in a temporary folder, in the same run; then how fast the integrator numbers and checkpoints
   them (entries/s).
2. Proofs: a Merkle tree of N leaf hashes is built; inclusion and consistency proofs are made
   and verified for random indices; mean microseconds each.
3. Offline verification: a bundle of N entries with a checkpoint every 100,000 is written and
   checked with bidroom.audit_bundle.verify (the code `bidroom audit verify` runs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import JSON, BigInteger, Column, DateTime, Integer, MetaData, String, Table, insert  # noqa: E402  # noqa: E402

from bidroom import audit, audit_bundle  # noqa: E402
from bidroom.audit_log import AuditLog  # noqa: E402
from bidroom.db import migrate  # noqa: E402
from bidroom.store import create_engine, record_audit  # noqa: E402
from ca import checkpoint, merkle  # noqa: E402
from ca import primitives as p  # noqa: E402

T0 = datetime(2026, 11, 28, tzinfo=UTC)
ORIGIN = "bench.bidroom/audit"
KEY = p.ed25519_from_seed(b"\x05" * 32)


def entry(i: int) -> audit.Entry:
    return audit.Entry(
        T0 + timedelta(microseconds=i),
        f"cert:{i % 997:064x}",
        "room.meeting.announced",
        "lot-1",
        i + 1,
        {"event": f"{i:064x}"},
    )


async def appends(count: int, folder: Path) -> dict[str, float]:
    engine = create_engine(f"sqlite+aiosqlite:///{folder / 'bench.db'}")
    await migrate(engine)
    plain = Table(
        "plain_entry",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("at", DateTime(timezone=True)),
        Column("actor", String(200)),
        Column("action", String(100)),
        Column("room_id", String(100)),
        Column("seq", BigInteger),
        Column("objects", JSON),
    )
    async with engine.begin() as conn:
        await conn.run_sync(plain.metadata.create_all)
    rows = [entry(i) for i in range(count)]
    plain_s = log_s = 0.0
    for part in range(4):  # alternate, so that neither side has the warm cache to itself
        block = rows[part::4]
        started = time.perf_counter()
        for e in block:
            async with engine.begin() as conn:
                row = {
                    "at": e.at,
                    "actor": e.actor,
                    "action": e.action,
                    "room_id": e.room,
                    "seq": e.seq,
                    "objects": dict(e.objects),
                }
                await conn.execute(insert(plain), [row])  # the same call record_audit makes
        plain_s += time.perf_counter() - started
        started = time.perf_counter()
        for e in block:
            async with engine.begin() as conn:
                await record_audit(conn, [e])
        log_s += time.perf_counter() - started
    log = AuditLog(engine, ORIGIN, KEY, lambda: datetime.now(UTC))
    started = time.perf_counter()
    while await log.integrate() is not None:
        pass
    integrate_s = time.perf_counter() - started
    await engine.dispose()
    return {"plain": count / plain_s, "log": count / log_s, "integrate": count / integrate_s}


def proofs(size: int, samples: int = 2000) -> dict[str, float]:
    leaves = [merkle.leaf_hash(i.to_bytes(8, "big")) for i in range(size)]
    started = time.perf_counter()
    tree = merkle.Tree.from_leaf_hashes(leaves)
    build_s = time.perf_counter() - started
    root = tree.root()
    picks = [random.randrange(size) for _ in range(samples)]
    started = time.perf_counter()
    made = [tree.inclusion_proof(i) for i in picks]
    make_us = (time.perf_counter() - started) / samples * 1e6
    started = time.perf_counter()
    for i, proof in zip(picks, made, strict=True):
        merkle.verify_inclusion(leaves[i], i, size, proof, root)
    verify_us = (time.perf_counter() - started) / samples * 1e6
    olds = [random.randrange(1, size) for _ in range(samples)]
    started = time.perf_counter()
    for m in olds:
        merkle.verify_consistency(m, size, tree.root(m), root, tree.consistency_proof(m))
    consistency_us = (time.perf_counter() - started) / samples * 1e6
    return {
        "build_s": build_s,
        "inclusion_make_us": make_us,
        "inclusion_verify_us": verify_us,
        "consistency_make_and_verify_us": consistency_us,
    }


def bundle(size: int, folder: Path, every: int = 100_000) -> Path:
    target = folder / "bundle"
    target.mkdir()
    frontier, marks = merkle.Frontier(), []
    with (target / "entries.jsonl").open("w") as out:
        for i in range(size):
            e = entry(i)
            encoding = audit.encode(replace(e, index=i, salt=random.randbytes(32).hex()))
            leaf = merkle.leaf_hash(encoding)
            frontier = frontier.append(leaf)
            out.write(
                json.dumps({"index": i, "entry": encoding.decode(), "leaf": leaf.hex()}) + "\n"
            )
            if (i + 1) % every == 0 or i + 1 == size:
                text = checkpoint.format_checkpoint(ORIGIN, i + 1, frontier.root())
                marks.append(
                    {
                        "size": i + 1,
                        "note": checkpoint.sign_note(text, ORIGIN, KEY),
                        "timestamp": None,
                    }
                )
    (target / "checkpoints.jsonl").write_text("".join(json.dumps(m) + "\n" for m in marks))
    head = {
        "format": audit_bundle.FORMAT,
        "version": audit_bundle.VERSION,
        "origin": ORIGIN,
        "verifier_key": str(checkpoint.verifier_key(ORIGIN, KEY)),
        "size": size,
    }
    (target / "manifest.json").write_text(json.dumps(head))
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    count, size = (2_000, 100_000) if args.quick else (20_000, 1_000_000)
    with tempfile.TemporaryDirectory(prefix="bidroom-audit-") as tmp:
        rates = asyncio.run(appends(count, Path(tmp)))
        print(f"\ndurable appends, one transaction each, SQLite ({count} rows):")
        print(f"  plain inserts            {rates['plain']:>10.0f} rows/s   1.00x")
        print(
            f"  through the audit log    {rates['log']:>10.0f} rows/s   "
            f"{rates['log'] / rates['plain']:.2f}x   (aim: at least 0.50x)"
        )
        print(f"  integration + checkpoint {rates['integrate']:>10.0f} entries/s")
        timing = proofs(size)
        print(f"\nproofs over a log of {size:,} entries:")
        print(f"  build the tree from leaf hashes       {timing['build_s']:.2f} s")
        print(
            f"  inclusion proof: make / verify        {timing['inclusion_make_us']:.1f} / "
            f"{timing['inclusion_verify_us']:.1f} µs   (aim: well under 1000 µs)"
        )
        print(
            f"  consistency proof: make and verify    "
            f"{timing['consistency_make_and_verify_us']:.1f} µs"
        )
        folder = bundle(size, Path(tmp))
        started = time.perf_counter()
        report = audit_bundle.verify(folder)
        took = time.perf_counter() - started
        print(
            f"\naudit verify over {report.entries:,} entries, {report.checkpoints} checkpoints: "
            f"{took:.1f} s ({report.entries / took:,.0f} entries/s)"
        )


if __name__ == "__main__":
    main()
