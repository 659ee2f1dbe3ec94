"""Event-loop lag while a node time-stamps: how late a 1 ms ticker wakes, with and without the TSA.

    .venv/bin/python bench/loop.py              # 3 rounds of 20 s per phase
    .venv/bin/python bench/loop.py --quick      # 1 round of 5 s per phase
    .venv/bin/python bench/loop.py --seconds 60 --receipts 4

The whole app runs in this process (create_app and its lifespan: the built-in TSA, SQLite in a
temporary folder, the rooms' clock). A probe in the app's own event loop sleeps 1 ms again and
again and records how late each wake-up is: the time something else held the loop. Every room a
node serves waits exactly that long, so it is the fan-out latency's floor. Four phases, in the
same run, taken in turn --rounds times, each on a fresh app:

1. baseline: audit entries recorded at --entries per second (as rooms do), the integrator
   slowed to once an hour and no bid arriving: nothing time-stamps.
2. worker: the same entries; the integrator every 2 s (the default) numbers them and signs
   and time-stamps a checkpoint with the built-in TSA; and bid receipts at --receipts per
   second, each what bidroom.bids.receive does around its TSA: the envelope's digest stamped,
   the entry recorded, the log integrated (a second stamp), the receipt made. The TSA works
   in the app's worker process for trusted time (app.state.time_worker), as it serves.
3. thread: the same as worker, but the TSA works on one thread of the app's own process, as
   it did before it had a process (it holds the GIL against the loop).
4. on-loop: the same, but the TSA works on the event loop's thread, as it did before it had a
   thread (an executor that runs each call at once, on the caller's thread).

It prints, per phase, the ticker's lateness at p50, p99, p99.9 and its maximum (ms), the share
of wake-ups later than 5 ms, and the ratios to the baseline. On a machine busy with other
processes every figure grows (a thread preempted while it holds the GIL holds the loop too):
compare the phases of one run, not runs on different days.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import arguments, pct, run_bounded, say  # noqa: E402  (bench/common.py)

from bidroom import audit, receipts  # noqa: E402
from bidroom.app import create_app  # noqa: E402
from bidroom.db import migrate  # noqa: E402
from bidroom.settings import load_settings  # noqa: E402
from bidroom.store import create_engine  # noqa: E402
from ca import tsa  # noqa: E402

TICK = 0.001  # the probe's sleep
LATE = 0.005  # "a few milliseconds": a wake-up later than this is counted
SECRET = "bench-loop-secret-" + "x" * 32


class OnTheCaller(Executor):
    """Runs each call at once on the calling thread: the TSA as it was, on the event loop."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        done: Future[Any] = Future()
        try:
            done.set_result(fn(*args, **kwargs))
        except Exception as exc:
            done.set_exception(exc)
        return done


@contextlib.asynccontextmanager
async def running(folder: Path, name: str, audit_seconds: float) -> AsyncIterator[Any]:
    """The app's state, its lifespan run, on a database of its own (``name``) in ``folder``;
    every phase shares the built-in TSA made in the first."""
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{folder / f'{name}.db'}",
        secret_key=SECRET,
        room_secret=SECRET + "-room",  # each purpose its own secret (docs/operations.md)
        report_secret=SECRET + "-report",
        tsa_secret=SECRET + "-tsa",
        var_dir=folder / "var",
        audit_seconds=audit_seconds,
    )
    engine = create_engine(settings.database_url)
    await migrate(engine)
    await engine.dispose()
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app.state


async def probe(until: float) -> list[float]:
    """How late each 1 ms sleep wakes, in seconds, until ``until`` (perf_counter)."""
    lags = []
    while time.perf_counter() < until:
        started = time.perf_counter()
        await asyncio.sleep(TICK)
        lags.append(time.perf_counter() - started - TICK)
    return lags


async def entries(state: Any, rate: float, until: float) -> int:
    """Audit entries at ``rate`` per second, as rooms record them."""
    count = 0
    while time.perf_counter() < until:
        at = datetime.now(UTC)
        entry = audit.Entry(at, "cert:chair", "room.meeting.announced", "lot-1", None, {})
        await state.store.record([entry])
        count += 1
        await asyncio.sleep(1 / rate)
    return count


async def receipt(state: Any, number: int) -> None:
    """bidroom.bids.receive around its TSA: stamp, record, integrate, make the receipt."""
    digest = hashlib.sha256(b"envelope %d" % number).digest()
    stamp = await state.timestamper.stamp(tsa.Digest("sha256", digest))
    objects = {"envelope": digest.hex(), "timestamp": hashlib.sha256(stamp.token).hexdigest()}
    entry = audit.Entry(stamp.info.gen_time, "cert:bidder", "bid.received", "lot-1", None, objects)
    [row] = await state.store.record([entry])
    await state.audit.integrate()
    await receipts.make(state.audit, await state.audit.index_of(row))


async def bids(state: Any, rate: float, until: float) -> int:
    """Bid receipts arriving at ``rate`` per second (open loop: each in its own task)."""
    tasks: list[asyncio.Task[None]] = []
    while time.perf_counter() < until:
        tasks.append(asyncio.create_task(receipt(state, len(tasks))))
        await asyncio.sleep(1 / rate)
    await asyncio.gather(*tasks)
    return len(tasks)


async def phase(folder: Path, name: str, round_: int, args: argparse.Namespace) -> dict[str, Any]:
    stamping = name != "baseline"
    async with running(folder, f"{name}-{round_}", 2.0 if stamping else 3600.0) as state:
        if name == "thread":
            state.timestamper.worker = ThreadPoolExecutor(1, thread_name_prefix="tsa")
        elif name == "on-loop":
            state.timestamper.worker = OnTheCaller()
        # Settled before the clock starts: the TSA loaded (and the worker process started) by
        # one stamp, and the first checkpoint signed; neither is part of the run.
        await state.timestamper.stamp(b"warm-up")
        await state.audit.integrate()
        until = time.perf_counter() + args.seconds
        work = [entries(state, args.entries, until)]
        if stamping:
            work.append(bids(state, args.receipts, until))
        lags, *counts = await asyncio.gather(probe(until), *work)
        checkpoints = len(await state.audit.checkpoints())
        if isinstance(state.timestamper.worker, ThreadPoolExecutor):
            state.timestamper.worker.shutdown()
    return {"lags": lags, "entries": counts[0], "receipts": sum(counts[1:]), "cps": checkpoints}


def figures(lags: list[float]) -> dict[str, float]:
    return {
        "p50": pct(lags, 50) * 1000,
        "p99": pct(lags, 99) * 1000,
        "p999": pct(lags, 99.9) * 1000,
        "max": max(lags) * 1000,
        "late": 100 * sum(lag > LATE for lag in lags) / len(lags),
    }


def report(runs: dict[str, list[dict[str, Any]]]) -> None:
    shown = {}
    for name, parts in runs.items():
        lags = [lag for part in parts for lag in part["lags"]]
        shown[name] = figures(lags)
        receipts_made = sum(part["receipts"] for part in parts)
        checkpoints = sum(part["cps"] for part in parts)
        print(
            f"{name:9} wake-ups {len(lags):6}  entries {sum(p['entries'] for p in parts):5}"
            f"  receipts {receipts_made:4}  checkpoints {checkpoints:3}"
        )
    print(f"\n{'lag (ms)':9} {'p50':>7} {'p99':>7} {'p99.9':>7} {'max':>7} {'>5 ms':>7}")
    for name, f in shown.items():
        print(
            f"{name:9} {f['p50']:7.2f} {f['p99']:7.2f} {f['p999']:7.2f} {f['max']:7.1f}"
            f" {f['late']:6.2f}%"
        )
    base = shown["baseline"]
    print("\nratio to the baseline")
    for name in ("worker", "thread", "on-loop"):
        load = shown[name]
        print(
            f"{name:9} {load['p50'] / base['p50']:7.2f} {load['p99'] / base['p99']:7.2f}"
            f" {load['p999'] / base['p999']:7.2f} {load['max'] / base['max']:7.2f}"
        )


async def main(args: argparse.Namespace) -> int:
    runs: dict[str, list[dict[str, Any]]] = {
        "baseline": [],
        "worker": [],
        "thread": [],
        "on-loop": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as tmp:
        for round_ in range(args.rounds):
            for name in runs:
                say(f"round {round_ + 1}: {name}, {args.seconds:g} s")
                runs[name].append(await phase(Path(tmp), name, round_, args))
    report(runs)
    return 0


if __name__ == "__main__":
    parser = arguments(__doc__, quick="one round of 5 s per phase", timeout=900)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--entries", type=float, default=20.0, help="audit entries per second")
    parser.add_argument("--receipts", type=float, default=1.0, help="bid receipts per second")
    parser.add_argument("--rounds", type=int, default=3, help="times each phase is taken")
    parsed = parser.parse_args()
    if parsed.quick:
        parsed.seconds, parsed.rounds = 5.0, 1
    sys.exit(run_bounded(main, parsed))
