"""Fan-out benchmark: bidroom against a bare `websockets` broadcast server, then a reconnect storm.

    .venv/bin/python bench/fanout.py --quick                 # smoke run, < 60 s
    .venv/bin/python bench/fanout.py --clients 100 --rate 20 --seconds 10
    .venv/bin/python bench/fanout.py --clients 100 --nodes 2 # PostgreSQL + Redis, two nodes

What it does, in one run:

1. bare: a minimal server written here with `websockets.broadcast()` (separate process) that
   answers hello with a welcome and turns each `meeting.announce` of the chair into exactly the
   event frame bidroom would send (built with bidroom.protocol.event_json), broadcast to all.
2. bidroom: one node on SQLite in a temp dir (or two nodes on a throwaway PostgreSQL + Redis,
   clients split across them, the chair on node 1), a meeting room created over the HTTP API.

In both, N clients live in a few worker processes (asyncio, N/workers connections each) and every
client waits for its welcome (and for the presence events of the others) before the run. The
chair sends `meeting.announce` at a fixed open-loop rate; the text carries the chair's send time
(time.time()) and every client computes latency = receive time - send time on the same machine.
Every client checks that the seqs it receives never repeat; one client in 50 is a supervisor,
who sees every event, and checks that its seqs have no gap (a bidder does not see other
bidders' presence, so its seqs skip by design: its losses are counted on the announcements).

3. storm (bidroom only): while the chair keeps announcing, every client aborts its TCP connection
   at the same instant and reconnects at once with hello since = the last seq it had. A client has
   caught up when it receives an announcement the chair sent after that client's new welcome
   (it is live again); the run reports the time until every client has, and the lost and
   duplicated announcements and seq gaps/duplicates (all must be 0).

Traffic stays on 127.0.0.1. Every child process dies with this one (parent-death signal), and the
whole run is bounded by --timeout (SIGALRM), so everything stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing as mp
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import nodes  # noqa: E402  (tests/nodes.py: the same node launcher the tests use)
from common import arguments, die_with_parent, pct, run_bounded, say  # noqa: E402  (bench/common.py)

SECRET = "bench-secret-" + "k" * 40
WATCHER = "supervisor"  # sees every event of the room, so its seqs must be gap-free
WATCH_EVERY = 50  # one supervisor in every 50 clients, as in a real opening
ROOM = "bench"
ANNOUNCED = "meeting.announced"


# ---------------------------------------------------------------------------------------------
# client side (runs in worker processes)
# ---------------------------------------------------------------------------------------------


class Client:
    """One room connection: checks seq continuity, records announcement latencies."""

    def __init__(self, idx: int, url: str, token: str, role: str, compression: str | None):
        self.idx, self.url, self.token, self.role = idx, url, token, role
        self.compression = compression
        self.ws: Any = None
        self.last = 0  # last seq had
        self.gaps = 0  # seqs skipped (without a snapshot covering them)
        self.dupes = 0  # seqs seen again or out of order
        self.skipped_by_snapshot = 0
        self.snapshots = 0
        self.ann: dict[str, dict[int, float | None]] = {}  # phase -> i -> latency (None: snapshot)
        self.ann_dupes: Counter[str] = Counter()
        self.times: dict[str, list[float]] = {}  # phase -> receive times
        self.welcomes = 0
        self.welcome_at = 0.0
        self.open = False
        self.closes: Counter[str] = Counter()  # unexpected closes by code
        self.errors: Counter[str] = Counter()  # error frames / connect failures
        self.unexpected = 0
        self.dropping = False
        self.done = False
        self.storm_at: float | None = None
        self.storm_gaps = 0
        self.rewelcome_at: float | None = None
        self.caught_up_at: float | None = None
        self.task: asyncio.Task[None] | None = None
        self.welcomed = asyncio.Event()

    async def run(self) -> None:
        import websockets

        while not self.done:
            try:
                await self._session()
            except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
                self.errors[f"connect:{type(exc).__name__}"] += 1
            except websockets.ConnectionClosed:
                pass
            self.open = False
            if self.done:
                return
            if self.dropping:  # our own storm abort: reconnect at once
                self.dropping = False
                continue
            self.unexpected += 1
            await asyncio.sleep(min(1.0, 0.05 * 2 ** min(self.unexpected, 5)))

    async def _session(self) -> None:
        import websockets

        since = self.last
        self.ws = ws = await websockets.connect(
            self.url,
            max_size=None,
            open_timeout=30,
            ping_interval=None,
            close_timeout=2,
            compression=self.compression,
        )
        try:
            hello = {"type": "hello", "token": self.token, "room": ROOM, "since": since}
            await ws.send(json.dumps(hello))
            async for raw in ws:
                now = time.time()
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "event":
                    self._event(frame, now)
                elif kind == "welcome":
                    self._welcome(frame, since, now)
                elif kind == "snapshot":
                    self._snapshot(frame)
                elif kind == "ping":
                    await ws.send('{"type":"pong"}')
                elif kind == "error":
                    self.errors[f"error:{frame.get('code')}"] += 1
        finally:
            if not self.dropping and not self.done:
                self.closes[str(ws.close_code)] += 1

    def _welcome(self, frame: dict[str, Any], since: int, now: float) -> None:
        self.welcomes += 1
        self.welcome_at = now
        self.open = True
        if self.storm_at is not None and self.rewelcome_at is None:
            self.rewelcome_at = now
        if frame.get("mode") == "snapshot" and since > 0:
            self.snapshots += 1  # a resume that could not replay (a newcomer always starts so)
        if frame.get("mode") != "replay":  # snapshot (bidroom) or live (bare server)
            seq = int(frame["seq"])
            if since > 0 and seq > self.last:
                self.skipped_by_snapshot += seq - self.last
            self.last = max(self.last, seq)
        self.welcomed.set()

    def _snapshot(self, frame: dict[str, Any]) -> None:
        for note in frame.get("state", {}).get("announcements", []):
            with contextlib.suppress(ValueError, KeyError, TypeError):
                data = json.loads(note["text"])
                self.ann.setdefault(data["p"], {}).setdefault(int(data["i"]), None)

    def _event(self, frame: dict[str, Any], now: float) -> None:
        seq = int(frame["seq"])
        if seq <= self.last:
            self.dupes += 1
            return
        if seq != self.last + 1 and self.role == "supervisor":
            # Only watchers see every seq: a bidder does not see other bidders' presence, so
            # its seqs skip by design; its losses are counted on the announcements instead.
            self.gaps += seq - self.last - 1
        self.last = seq
        if frame.get("name") != ANNOUNCED:
            return
        data = json.loads(frame["data"]["text"])
        phase, i, sent = data["p"], int(data["i"]), float(data["t"])
        seen = self.ann.setdefault(phase, {})
        if i in seen:
            self.ann_dupes[phase] += 1
            return
        seen[i] = now - sent
        self.times.setdefault(phase, []).append(now)
        if (
            self.storm_at is not None
            and self.caught_up_at is None
            and self.rewelcome_at is not None
            and sent >= self.rewelcome_at
        ):
            self.caught_up_at = now

    def drop(self) -> None:
        """Storm: cut the TCP connection as a network failure would (no close frame)."""
        self.storm_at = time.time()
        self.storm_gaps = self.gaps
        self.rewelcome_at = None
        self.caught_up_at = None
        if self.ws is not None and self.open:
            self.dropping = True
            self.open = False
            self.ws.transport.abort()

    async def close(self) -> None:
        self.done = True
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 2)
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task


def worker_main(pipe: Any, compression: str | None) -> None:
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_worker(pipe, compression))


async def _recv(pipe: Any, idle: float) -> Any:
    def get() -> Any:
        return pipe.recv() if pipe.poll(idle) else ("exit",)

    return await asyncio.to_thread(get)


async def _worker(pipe: Any, compression: str | None) -> None:
    clients: list[Client] = []
    while True:
        command, *args = await _recv(pipe, 900)
        if command == "exit":
            for client in clients:
                client.done = True
            await asyncio.gather(*(c.close() for c in clients))
            pipe.send(("ok",))
            return
        if command == "connect":
            targets, limit = args
            clients = [Client(i, url, tok, role, compression) for i, url, tok, role in targets]
            gate = asyncio.Semaphore(25)
            await asyncio.gather(*(_start(c, gate, limit) for c in clients))
            pipe.send(("ok", sum(c.welcomes > 0 for c in clients)))
        elif command == "status":
            pipe.send(
                (
                    "ok",
                    {
                        "open": sum(c.open for c in clients),
                        "min_last": min((c.last for c in clients), default=0),
                        "unexpected": sum(c.unexpected for c in clients),
                        "caught_up": sum(c.caught_up_at is not None for c in clients),
                        "rewelcomed": sum(c.rewelcome_at is not None for c in clients),
                    },
                )
            )
        elif command == "wait":  # until every client has `expected` announcements of `phase`
            phase, expected, timeout = args
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if all(len(c.ann.get(phase, {})) >= expected for c in clients):
                    break
                await asyncio.sleep(0.05)
            pipe.send(("ok",))
        elif command == "storm":
            (at,) = args
            await asyncio.sleep(max(0.0, at - time.time()))
            for client in clients:
                client.drop()
            pipe.send(("ok", time.time()))
        elif command == "report":
            (phase,) = args
            pipe.send(("ok", _report(clients, phase)))


async def _start(client: Client, gate: asyncio.Semaphore, limit: float) -> None:
    """Connect (at most 25 handshakes at a time per worker) and wait for the welcome."""
    async with gate:
        client.task = asyncio.create_task(client.run())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(client.welcomed.wait(), limit)


def _report(clients: list[Client], phase: str) -> dict[str, Any]:
    latencies: list[float] = []
    times: list[float] = []
    per_client_count: list[int] = []
    via_snapshot = 0
    for c in clients:
        got = c.ann.get(phase, {})
        per_client_count.append(len(got))
        for value in got.values():
            if value is None:
                via_snapshot += 1
            else:
                latencies.append(value)
        times += c.times.get(phase, [])
    closes: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for c in clients:
        closes.update(c.closes)
        errors.update(c.errors)
    return {
        "latencies": latencies,
        "first": min(times, default=0.0),
        "last": max(times, default=0.0),
        "counts": per_client_count,
        "via_snapshot": via_snapshot,
        "ann_dupes": sum(c.ann_dupes[phase] for c in clients),
        "gaps": sum(c.gaps for c in clients),
        "dupes": sum(c.dupes for c in clients),
        "skipped_by_snapshot": sum(c.skipped_by_snapshot for c in clients),
        "snapshots": sum(c.snapshots for c in clients),
        "unexpected": sum(c.unexpected for c in clients),
        "closes": dict(closes),
        "errors": dict(errors),
        "storm": [
            (c.storm_at, c.rewelcome_at, c.caught_up_at, c.gaps - c.storm_gaps) for c in clients
        ],
    }


# ---------------------------------------------------------------------------------------------
# the bare websockets broadcast server (runs in its own process)
# ---------------------------------------------------------------------------------------------


def bare_main(pipe: Any, compression: str | None) -> None:
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_bare(pipe, compression))


async def _bare(pipe: Any, compression: str | None) -> None:
    from websockets.asyncio.server import broadcast, serve

    from bidroom import protocol
    from bidroom.room import Actor, Event

    clients: set[Any] = set()
    state = {"seq": 0}
    chair = Actor("chair", "chair", "chair")

    async def handler(ws: Any) -> None:
        hello = json.loads(await ws.recv())
        welcome = {
            "type": "welcome",
            "version": 1,
            "room": hello.get("room"),
            "you": {},
            "seq": state["seq"],
            "mode": "live",
            "node": "bare",
            "limits": {},
        }
        await ws.send(json.dumps(welcome))
        clients.add(ws)
        try:
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("type") != "command" or frame.get("name") != "meeting.announce":
                    continue
                state["seq"] += 1
                event = Event(
                    ANNOUNCED,
                    {"text": frame["args"]["text"]},
                    seq=state["seq"],
                    at=datetime.now(UTC),
                    actor=chair,
                )
                broadcast(clients, protocol.dump(protocol.event_json(event)))
                await ws.send(protocol.dump(protocol.ack_frame(frame["id"], [state["seq"]])))
        finally:
            clients.discard(ws)

    # The server declines permessage-deflate, as bidroom's does (BIDROOM: ws_per_message_deflate
    # off): the baseline does the same work per frame, whatever the clients offer.
    async with serve(
        handler, "127.0.0.1", 0, compression=None, ping_interval=None, max_size=None
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        pipe.send(port)
        await asyncio.to_thread(lambda: pipe.poll(3600))  # until the parent says stop or dies


# ---------------------------------------------------------------------------------------------
# coordinator: nodes, chair, phases, table
# ---------------------------------------------------------------------------------------------


class Node(nodes.Node):
    """tests/nodes.Node (`python -m bidroom serve` on port 0), plus what the bench reports."""

    def metrics(self) -> dict[str, float]:
        values: dict[str, float] = {}
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(self.url + "/metrics", timeout=5) as answer,
        ):
            for line in answer.read().decode().splitlines():
                match = re.match(r"^(bidroom_\w+?)(_total)?(\{[^}]*\})? ([0-9.e+-]+)$", line)
                if match:
                    values[match.group(1) + (match.group(3) or "")] = float(match.group(4))
        return values

    def warnings(self) -> Counter[str]:
        found: Counter[str] = Counter()
        for line in self.log:
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and entry.get("level") in ("WARNING", "ERROR"):
                    found[str(entry.get("message"))[:80]] += 1
        return found


def mint(subject: str, role: str) -> str:
    from bidroom import tokens

    identity = tokens.Identity(subject, subject, (role,))
    return tokens.mint(identity, SECRET, datetime.now(UTC), timedelta(hours=2))


class Chair:
    """The chair's own connection: sends announcements open-loop, collects acks."""

    def __init__(self, url: str, compression: str | None):
        self.url, self.compression = url, compression
        self.acks: dict[str, list[int]] = {}
        self.rejected: Counter[str] = Counter()
        self.last = 0
        self.changed = asyncio.Event()
        self.ws: Any = None
        self.reader: asyncio.Task[None] | None = None
        self.sent = 0
        self.joined: set[str] = set()

    async def connect(self) -> None:
        import websockets

        self.ws = await websockets.connect(
            self.url,
            max_size=None,
            open_timeout=30,
            ping_interval=None,
            compression=self.compression,
        )
        hello = {"type": "hello", "token": mint("chair", "chair"), "room": ROOM, "since": 0}
        await self.ws.send(json.dumps(hello))
        self.reader = asyncio.create_task(self._read())
        await self.until(lambda: self.last >= 0 and self.welcomed, 30)

    welcomed = False

    async def _read(self) -> None:
        import websockets

        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.ws:
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "welcome":
                    self.welcomed = True
                    self.last = max(self.last, int(frame["seq"]))
                elif kind == "event":
                    self.last = max(self.last, int(frame["seq"]))
                    if frame["name"] == "presence.joined" and frame["data"]["role"] != "chair":
                        self.joined.add(frame["data"]["subject"])
                elif kind == "ack":
                    self.acks[frame["id"]] = frame["seqs"]
                elif kind == "error":
                    self.rejected[str(frame.get("code"))] += 1
                    self.acks[str(frame.get("id"))] = []
                elif kind == "ping":
                    await self.ws.send('{"type":"pong"}')
                self.changed.set()

    async def until(self, predicate: Any, within: float) -> bool:
        deadline = time.monotonic() + within
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 0.5))
        return True

    async def command(self, name: str, args: dict[str, Any] | None = None) -> list[int]:
        self.sent += 1
        cid = f"c{self.sent}"
        await self.ws.send(
            json.dumps({"type": "command", "id": cid, "name": name, "args": args or {}})
        )
        await self.until(lambda: cid in self.acks, 30)
        return self.acks.get(cid, [])

    async def announce(
        self,
        phase: str,
        rate: float,
        seconds: float | None,
        stop: asyncio.Event | None = None,
        pad: int = 0,
    ) -> list[str]:
        """Open loop: announcement k leaves at t0 + k/rate whatever the server does."""
        ids: list[str] = []
        t0 = time.time()
        k = 0
        while True:
            due = t0 + k / rate
            if seconds is not None and due >= t0 + seconds:
                break
            if stop is not None and stop.is_set():
                break
            await asyncio.sleep(max(0.0, due - time.time()))
            self.sent += 1
            cid = f"c{self.sent}"
            text = json.dumps(
                {"p": phase, "i": k, "t": time.time(), **({"x": "x" * pad} if pad else {})}
            )
            await self.ws.send(
                json.dumps(
                    {
                        "type": "command",
                        "id": cid,
                        "name": "meeting.announce",
                        "args": {"text": text},
                    }
                )
            )
            ids.append(cid)
            k += 1
        return ids

    async def acked(self, ids: list[str], within: float) -> int:
        await self.until(lambda: all(i in self.acks for i in ids), within)
        return sum(bool(self.acks.get(i)) for i in ids)

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 3)
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(BaseException):
                await self.reader


class Workers:
    def __init__(self, count: int, compression: str | None):
        ctx = mp.get_context("spawn")
        self.pipes: list[Any] = []
        self.procs: list[Any] = []
        for _ in range(count):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child, compression), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)

    async def call(
        self, message: tuple[Any, ...] | list[tuple[Any, ...]], within: float
    ) -> list[Any]:
        messages = message if isinstance(message, list) else [message] * len(self.pipes)
        for pipe, m in zip(self.pipes, messages, strict=True):
            pipe.send(m)

        def get(pipe: Any) -> Any:
            if not pipe.poll(within):
                raise TimeoutError(f"worker did not answer {messages[0][0]} in {within:.0f} s")
            return pipe.recv()

        answers = await asyncio.gather(*(asyncio.to_thread(get, p) for p in self.pipes))
        return [a[1] if len(a) > 1 else None for a in answers]

    async def status(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        mins = []
        for s in await self.call(("status",), 30):
            mins.append(s.pop("min_last"))
            total.update(s)
        return {**total, "min_last": min(mins)}

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.call(("exit",), 20)
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()


def split(n: int, parts: int) -> list[range]:
    size = math.ceil(n / parts)
    return [range(i, min(n, i + size)) for i in range(0, n, size)]


async def settle(workers: Workers, chair: Chair, n: int, within: float) -> bool:
    """Until every client is open and the chair has seen each one join; then a barrier
    announcement that every client must hold (bidders see only their own presence)."""
    deadline = time.monotonic() + within
    if not await chair.until(lambda: len(chair.joined) >= n, within):
        return False
    text = json.dumps({"p": "barrier", "i": 0, "t": time.time()})
    barrier = await chair.command("meeting.announce", {"text": text})
    while barrier and time.monotonic() < deadline:
        status = await workers.status()
        if status["min_last"] >= barrier[0] and status["open"] == n:
            return True
        await asyncio.sleep(0.2)
    return False


def summarise(
    reports: list[dict[str, Any]], expected: int, first_send: float, rate: float
) -> dict[str, Any]:
    latencies = [x for r in reports for x in r["latencies"]]
    counts = [c for r in reports for c in r["counts"]]
    last = max((r["last"] for r in reports), default=0.0)
    delivered = sum(counts)
    # The chair sends K announcements 1/rate apart: K/rate is the shortest span they can take.
    span = max(1e-9, last - first_send + 1 / rate)
    closes: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for r in reports:
        closes.update(r["closes"])
        errors.update(r["errors"])
    return {
        "p50": pct(latencies, 50) * 1000,
        "p99": pct(latencies, 99) * 1000,
        "max": max(latencies, default=float("nan")) * 1000,
        "delivered": delivered,
        "expected": expected * len(counts),
        "per_s": delivered / span,
        "lost": sum(max(0, expected - c) for c in counts),
        "ann_dupes": sum(r["ann_dupes"] for r in reports),
        "gaps": sum(r["gaps"] for r in reports),
        "dupes": sum(r["dupes"] for r in reports),
        "via_snapshot": sum(r["via_snapshot"] for r in reports),
        "snapshots": sum(r["snapshots"] for r in reports),
        "skipped_by_snapshot": sum(r["skipped_by_snapshot"] for r in reports),
        "unexpected": sum(r["unexpected"] for r in reports),
        "closes": dict(closes),
        "errors": dict(errors),
        "storm": [s for r in reports for s in r["storm"]],
    }


async def run_phase(
    workers: Workers, chair: Chair, phase: str, args: argparse.Namespace
) -> dict[str, Any]:
    first_send = time.time()
    ids = await chair.announce(phase, args.rate, args.seconds, pad=args.pad)
    accepted = await chair.acked(ids, 30)
    await workers.call(("wait", phase, len(ids), args.drain), args.drain + 30)
    reports = await workers.call(("report", phase), 60)
    result = summarise(reports, len(ids), first_send, args.rate)
    result.update(sent=len(ids), accepted=accepted, rejected=dict(chair.rejected))
    return result


async def connect_all(workers: Workers, urls: list[str], n: int, role: str, within: float) -> int:
    roles = [WATCHER if i % WATCH_EVERY == 0 else role for i in range(n)]
    tokens = [mint(f"{roles[i]}-{i}", roles[i]) for i in range(n)]
    batches = split(n, len(workers.pipes))
    messages = [
        ("connect", [(i, urls[i % len(urls)], tokens[i], roles[i]) for i in batch], within)
        for batch in batches
    ]
    while len(messages) < len(workers.pipes):
        messages.append(("connect", [], within))
    return sum(await workers.call(messages, within + n + 60))


async def bare_run(args: argparse.Namespace, compression: str | None) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=bare_main, args=(child, compression), daemon=True)
    server.start()
    workers = Workers(args.workers, compression)
    chair: Chair | None = None
    try:
        if not parent.poll(30):
            raise RuntimeError("bare server did not start")
        url = f"ws://127.0.0.1:{parent.recv()}/"
        chair = Chair(url, compression)
        await chair.connect()
        t = time.monotonic()
        welcomed = await connect_all(workers, [url], args.clients, "bidder", args.connect_timeout)
        connect_s = time.monotonic() - t
        result = await run_phase(workers, chair, "bare", args)
        result.update(welcomed=welcomed, connect_s=connect_s)
        return result
    finally:
        if chair is not None:
            await chair.close()
        await workers.close()
        parent.send("stop")
        server.join(5)
        if server.is_alive():
            server.kill()


def create_room(node: Node) -> None:
    """POST /api/rooms with a chair token: the meeting room the bench uses."""
    config = {"roles": ["chair", "bidder", WATCHER]}
    body = json.dumps({"id": ROOM, "kind": "meeting", "title": "bench", "config": config})
    request = urllib.request.Request(
        node.url + "/api/rooms",
        data=body.encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {mint('chair', 'chair')}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        if answer.status != 201:
            raise RuntimeError(f"room not created: HTTP {answer.status}")


async def bidroom_run(
    args: argparse.Namespace, compression: str | None, nodes: list[Node]
) -> dict[str, Any]:
    create_room(nodes[0])
    workers = Workers(args.workers, compression)
    chair = Chair(nodes[0].ws_url, compression)
    result: dict[str, Any] = {}
    try:
        await chair.connect()
        opened = await chair.command("meeting.open")
        if not opened:
            raise RuntimeError(f"meeting.open refused: {dict(chair.rejected)}")
        t = time.monotonic()
        urls = [node.ws_url for node in nodes]
        welcomed = await connect_all(workers, urls, args.clients, "bidder", args.connect_timeout)
        connect_s = time.monotonic() - t
        settled = await settle(workers, chair, args.clients, args.connect_timeout)
        settle_s = time.monotonic() - t
        result["run"] = await run_phase(workers, chair, "run", args)
        result["run"].update(
            welcomed=welcomed, connect_s=connect_s, settle_s=settle_s, settled=settled
        )
        if args.storm:
            result["storm"] = await storm(workers, chair, args)
    finally:
        await chair.close()
        await workers.close()
    return result


async def storm(workers: Workers, chair: Chair, args: argparse.Namespace) -> dict[str, Any]:
    stop = asyncio.Event()
    first_send = time.time()
    sender = asyncio.create_task(chair.announce("storm", args.rate, None, stop, pad=args.pad))
    await asyncio.sleep(1.0)
    t_drop = time.time() + 0.2
    await workers.call(("storm", t_drop), 30)
    deadline = time.monotonic() + args.storm_timeout
    all_caught = None
    while time.monotonic() < deadline:
        status = await workers.status()
        if status["caught_up"] >= args.clients:
            all_caught = time.time() - t_drop
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # a little more live traffic after the last client is back
    stop.set()
    ids = await sender
    accepted = await chair.acked(ids, 30)
    await workers.call(("wait", "storm", len(ids), args.drain), args.drain + 30)
    reports = await workers.call(("report", "storm"), 60)
    result = summarise(reports, len(ids), first_send, args.rate)
    rewelcome = [s[1] - t_drop for s in result["storm"] if s[1] is not None]
    caught = [s[2] - t_drop for s in result["storm"] if s[2] is not None]
    result.update(
        sent=len(ids),
        accepted=accepted,
        all_caught=all_caught,
        reconnected=len(rewelcome),
        caught=len(caught),
        rewelcome_p50=pct(rewelcome, 50),
        rewelcome_max=max(rewelcome, default=float("nan")),
        caught_p50=pct(caught, 50),
        caught_max=max(caught, default=float("nan")),
        storm_gaps=sum(s[3] for s in result["storm"]),
    )
    return result


def start_nodes(args: argparse.Namespace, tmp: Path, services: list[Any]) -> list[Node]:
    base = {
        "BIDROOM_SECRET_KEY": SECRET,
        "BIDROOM_COMMANDS_PER_SECOND": "1000",
        "BIDROOM_VAR_DIR": str(tmp),
        "BIDROOM_LOG_LEVEL": "INFO",
    }
    if args.queue_size:
        base["BIDROOM_QUEUE_SIZE"] = str(args.queue_size)
    if args.nodes == 1:
        base["BIDROOM_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp / 'b.db'}"
    else:
        from services import start_postgres, start_redis

        redis = start_redis(tmp / "redis")
        services.append(redis)
        postgres = start_postgres(tmp / "pg")
        services.append(postgres)
        base["BIDROOM_DATABASE_URL"] = postgres.url
        base["BIDROOM_REDIS_URL"] = redis.url
    migrated = subprocess.run(
        [sys.executable, "-m", "bidroom", "migrate"],
        cwd=ROOT,
        env={**os.environ, **base},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if migrated.returncode != 0:
        raise RuntimeError(f"migrate failed: {migrated.stderr}")
    nodes = []
    for i in range(args.nodes):
        node = Node({**base, "BIDROOM_NODE_ID": f"bench-{i + 1}"}, f"node {i + 1}", die_with_parent)
        nodes.append(node)
        node.start()
    return nodes


def fmt_ms(value: float) -> str:
    return "-" if value != value else f"{value:.2f}"


def table(
    args: argparse.Namespace,
    bare: dict[str, Any] | None,
    room: dict[str, Any],
    nodes: list[Node],
    compression: str | None,
    backend: str,
) -> str:
    run = room["run"]
    lines = [
        "",
        f"bidroom fan-out: {args.clients} clients in {args.workers} worker processes, "
        f"{args.rate:g} announcements/s for {args.seconds:g} s, {args.nodes} node(s) on "
        f"{backend}, compression={compression or 'off'}",
        f"  connect: bidroom {run['welcomed']}/{args.clients} welcomed in "
        f"{run['connect_s']:.1f} s, "
        f"all presence events delivered after {run['settle_s']:.1f} s"
        + ("" if run["settled"] else " (NOT settled)")
        + (
            f"; bare {bare['welcomed']}/{args.clients} in {bare['connect_s']:.1f} s" if bare else ""
        ),
        "",
        f"  {'':34}{'bidroom':>14}{'bare websockets':>18}{'bidroom/bare':>15}",
    ]

    def row(label: str, a: float, b: float | None, form: str = "{:.2f}") -> None:
        ratio = "-" if b in (None, 0) or a != a or b != b else f"{a / b:.2f}x"  # type: ignore[operator]
        right = "-" if b is None else form.format(b)
        lines.append(f"  {label:34}{form.format(a):>14}{right:>18}{ratio:>15}")

    row("delivery latency p50 (ms)", run["p50"], bare and bare["p50"])
    row("delivery latency p99 (ms)", run["p99"], bare and bare["p99"])
    row("delivery latency max (ms)", run["max"], bare and bare["max"])
    row("events delivered / s", run["per_s"], bare and bare["per_s"], "{:.0f}")
    lines.append(f"  {'(ideal: clients x rate)':34}{args.clients * args.rate:>14.0f}")
    a = f"{run['delivered']}/{run['expected']}"
    b = f"{bare['delivered']}/{bare['expected']}" if bare else "-"
    lines.append(f"  {'announcements delivered':34}{a:>14}{b:>18}")
    for label, key in (
        ("lost / duplicated announcements", ("lost", "ann_dupes")),
        ("seq gaps / seq duplicates", ("gaps", "dupes")),
    ):
        a = f"{run[key[0]]} / {run[key[1]]}"
        b = f"{bare[key[0]]} / {bare[key[1]]}" if bare else "-"
        lines.append(f"  {label:34}{a:>14}{b:>18}")
    if run["rejected"]:
        lines.append(f"  chair commands refused: {run['rejected']}")
    if run["unexpected"] or run["closes"]:
        lines.append(
            f"  server-initiated reconnects during connect+run: {run['unexpected']} "
            f"(close codes {run['closes']}, errors {run['errors']})"
        )
    storm_result = room.get("storm")
    if storm_result:
        s = storm_result
        every = s["caught"] == args.clients
        caught = f"{s['caught_max']:.2f} s" if every else f"NOT ALL ({s['caught']}/{args.clients})"
        lines += [
            "",
            f"  reconnect storm (bidroom): {args.clients} clients abort their TCP connection at "
            f"once and resume with since=last seq, chair announcing at {args.rate:g}/s",
            f"    time until every client caught up       {caught}"
            f"   (per client p50 {s['caught_p50']:.2f} s)",
            f"    time until every client had a welcome   {s['rewelcome_max']:.2f} s"
            f"   (p50 {s['rewelcome_p50']:.2f} s; {s['reconnected']}/{args.clients} reconnected)",
            f"    lost / duplicated announcements         {s['lost']} / {s['ann_dupes']}"
            f"   ({s['sent']} sent, {s['accepted']} accepted)",
            f"    seq gaps / seq duplicates               {s['gaps']} / {s['dupes']}",
            f"    resumed by snapshot (events skipped)    {s['snapshots']}"
            f" ({s['skipped_by_snapshot']})",
            f"    storm latency p50 / p99 (ms)            {fmt_ms(s['p50'])} / {fmt_ms(s['p99'])}",
            f"    extra server-initiated reconnects       {s['unexpected'] - run['unexpected']}"
            f"   (close codes since start {s['closes']}, errors {s['errors']})",
        ]
        verdict = s["lost"] == 0 and s["ann_dupes"] == 0 and s["gaps"] == 0 and s["dupes"] == 0
        note = ""
        if verdict and s["snapshots"]:
            note = f" (but {s['snapshots']} resumes fell back to a snapshot instead of a replay)"
        lines.append(f"    storm integrity: {'OK' if verdict else 'FAILED'}{note}")
    for node in nodes:
        m = node.metrics()
        keep = {
            k: int(v)
            for k, v in m.items()
            if k.split("{")[0]
            in (
                "bidroom_queue_drops",
                "bidroom_gap_fills",
                "bidroom_events_appended",
                "bidroom_events_delivered",
                "bidroom_broker_errors",
                "bidroom_commands",
            )
        }
        lines.append(f"  {node.name} metrics: {keep}")
        warned = node.warnings()
        if warned:
            lines.append(f"  {node.name} warnings: {dict(warned.most_common(6))}")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    compression = None if args.compression == "off" else "deflate"
    bare = None
    if not args.no_bare:
        say("bare websockets broadcast server ...")
        bare = await bare_run(args, compression)
    services: list[Any] = []
    nodes: list[Node] = []
    with tempfile.TemporaryDirectory(prefix="bidroom-bench-") as tmp:
        try:
            say(f"starting {args.nodes} bidroom node(s) ...")
            # In the main thread: a child's parent-death signal fires when the forking thread ends.
            nodes = start_nodes(args, Path(tmp), services)
            say("bidroom run ...")
            room = await bidroom_run(args, compression, nodes)
            backend = "SQLite" if args.nodes == 1 else "PostgreSQL + Redis"
            print(table(args, bare, room, nodes, compression, backend), flush=True)
            ok = "storm" not in room or (
                room["storm"]["lost"] == 0
                and room["storm"]["gaps"] == 0
                and room["storm"]["dupes"] == 0
                and room["storm"]["ann_dupes"] == 0
            )
            return 0 if ok else 1
        finally:
            for node in nodes:
                await asyncio.to_thread(node.stop)
            for service in reversed(services):
                with contextlib.suppress(Exception):
                    service.close()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = arguments(__doc__, quick="20 clients, 3 s", timeout=900.0)
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--rate", type=float, default=20.0, help="chair announcements per second")
    p.add_argument("--seconds", type=float, default=10.0, help="length of the measured run")
    p.add_argument("--nodes", type=int, choices=(1, 2), default=1)
    p.add_argument("--workers", type=int, default=0, help="client processes (default: by N)")
    p.add_argument("--no-storm", dest="storm", action="store_false")
    p.add_argument("--no-bare", action="store_true", help="skip the bare websockets baseline")
    p.add_argument(
        "--compression",
        choices=("deflate", "off"),
        default="deflate",
        help="permessage-deflate offered by clients (browsers do; default)",
    )
    p.add_argument(
        "--queue-size", type=int, default=0, help="BIDROOM_QUEUE_SIZE (default: server's)"
    )
    p.add_argument("--pad", type=int, default=0, help="extra bytes in each announcement text")
    p.add_argument("--drain", type=float, default=10.0, help="max wait for stragglers after a run")
    p.add_argument("--storm-timeout", type=float, default=60.0)
    p.add_argument("--connect-timeout", type=float, default=120.0)
    args = p.parse_args(argv)
    if args.quick:
        args.clients, args.seconds, args.drain = 20, 3.0, 5.0
        args.storm_timeout, args.connect_timeout, args.timeout = 15.0, 20.0, 50.0
    if args.workers <= 0:
        args.workers = max(2, min(4, math.ceil(args.clients / 125)))
    args.workers = max(1, min(args.workers, args.clients))
    return args


if __name__ == "__main__":
    sys.exit(run_bounded(main_async, parse()))
