"""What checking a room's events against the audit log costs a node loading the room.

    .venv/bin/python bench/integrity.py            # a room of 50,000 events
    .venv/bin/python bench/integrity.py --quick    # 5,000 events

A meeting room's events (announcements of about 60 characters, each with its audit entry, as a
node records them; the entries integrated, so that every leaf is checked too) on SQLite in a
temporary folder. A load, as bidroom.hub.Hub._load does it: read the room's events and fold
them into its state; once without the check (``Store.events(checked=False)``, what a node did
before) and once with it (the default: the entries read too and compared, bidroom.integrity),
alternately, ROUNDS times each. Prints events/second for both (the best round of each) and
their ratio, measured in the same run on the same database.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import arguments, run_bounded, say  # noqa: E402

from bidroom import audit  # noqa: E402
from bidroom.audit_log import AuditLog  # noqa: E402
from bidroom.db import migrate  # noqa: E402
from bidroom.meeting import Meeting  # noqa: E402
from bidroom.room import Actor, Event, fold  # noqa: E402
from bidroom.store import RoomRecord, Store, close_engine, create_engine  # noqa: E402
from ca import primitives as p  # noqa: E402

T0 = datetime(2026, 11, 28, 1, 30, tzinfo=UTC)
ROOM = "lot-bench"
CHAIR = Actor("cert:" + "ab" * 32, "王敏", "chair", None, "某市公共资源交易中心")
ROUNDS = 5
BATCH = 1000


def events(first: int, count: int) -> list[Event]:
    return [
        Event(
            "meeting.announced",
            {"text": f"第{seq}项 技术方案评分 专家甲 15.00 分，专家乙 14.50 分，专家丙 15.50 分"},
            seq=seq,
            at=T0 + timedelta(milliseconds=seq),
            actor=CHAIR,
        )
        for seq in range(first, first + count)
    ]


async def record(store: Store, total: int) -> None:
    """The room's log as a node writes it: events and their entries, a batch a transaction."""
    opened = Event("meeting.opened", {}, seq=1, at=T0, actor=CHAIR)
    batches = [[opened]] + [
        events(s, min(BATCH, total + 1 - s)) for s in range(2, total + 1, BATCH)
    ]
    for batch in batches:
        async with store.writer(ROOM) as writer:
            await writer.insert(batch)
            await writer.audit([audit.room_event(ROOM, e) for e in batch])


async def load(store: Store, checked: bool) -> float:
    """Seconds to read the room's events and fold them, as a node loading it does."""
    kind = Meeting()
    started = time.perf_counter()
    stored = await store.events(ROOM, checked=checked)
    fold(kind, kind.initial({"title": "开标会"}), stored)
    return time.perf_counter() - started


async def main(args: argparse.Namespace) -> int:
    total = 5_000 if args.quick else args.events
    with tempfile.TemporaryDirectory(prefix="bidroom-integrity-") as folder:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}")
        try:
            await migrate(engine)
            store = Store(engine)
            await store.create_room(RoomRecord(ROOM, "meeting", "开标会", {}, T0))
            say(f"recording {total:,} events with their entries")
            await record(store, total)
            log = AuditLog(
                engine, "bench.bidroom/integrity", p.ed25519_from_seed(b"\x06" * 32), lambda: T0
            )
            while await log.integrate() is not None:
                pass
            plain, checked = [], []
            await load(store, True)  # warm the caches once
            for n in range(ROUNDS):
                plain.append(await load(store, False))
                checked.append(await load(store, True))
                say(f"round {n + 1}: {plain[-1]:.3f} s without, {checked[-1]:.3f} s with the check")
        finally:
            await close_engine(engine)
    count = total
    without, with_ = count / min(plain), count / min(checked)
    print(f"room load, {count:,} events (SQLite, best of {ROUNDS}):")
    print(f"  without the check: {without:,.0f} events/s")
    print(f"  with the check:    {with_:,.0f} events/s")
    print(f"  ratio with/without: {with_ / without:.2f}")
    return 0


if __name__ == "__main__":
    parser = arguments(__doc__, quick="5,000 events", timeout=900)
    parser.add_argument("--events", type=int, default=50_000, help="events in the room")
    sys.exit(run_bounded(main, parser.parse_args()))
