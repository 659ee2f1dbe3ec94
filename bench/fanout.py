"""Fan-out benchmark: bidroom against a bare `websockets` broadcast server in alternating phases,
a reconnect storm, and a node's failover (docs/operations.md "Sizes measured here").

    .venv/bin/python bench/fanout.py --quick                       # smoke run, about 4 minutes
    .venv/bin/python bench/fanout.py                               # the full run (30-60 minutes)
    .venv/bin/python bench/fanout.py --sizes 100 --nodes 1 --no-failover
    .venv/bin/python bench/fanout.py --only failover

What one run does, for each topology asked (--nodes: 1 = one node on SQLite with the in-process
broker; 2 = two nodes on a throwaway PostgreSQL + Redis, clients split between them, the chair
on node 1) and each room size N (--sizes):

1. fan-out: N clients join a bare `websockets.broadcast()` server (a separate process that
   answers hello with a welcome and turns each `meeting.announce` into exactly the event frame
   bidroom would send) and N other clients join a bidroom meeting room. Both populations stay
   connected; the chair then announces at a fixed open-loop rate in alternating phases, bare,
   bidroom, bare, bidroom, ... (--rounds), so machine noise hits both alike. Each announcement
   carries the chair's send time; latency = receive time - send time (same machine). Reported:
   p50/p99 of each and the p99 ratio against the aim (2x on one node, 3x on two), the joins'
   time, and on two nodes the broker messages per join and per announcement (Redis
   `INFO commandstats`, cmdstat_publish calls before and after).
2. storm (N in --storm-sizes): every bidroom client aborts its TCP connection at the same
   instant and reconnects at once with hello since = its last seq while the chair keeps
   announcing. A client has caught up when it receives an announcement the chair sent after its
   new welcome (it is live again; its gap-freeness is checked apart). Reported: p50/p99/max per
   client, clients that never caught up within --storm-timeout.
3. failover (two nodes, fresh): --failover-clients clients, half on each node, the chair on
   node 1 announcing at --rate; after a few seconds node 2 gets kill -9. Its clients see the
   connection die, reconnect with the browser client's backoff (web/js/client.js: full jitter,
   0.5 s doubling) to the surviving node (as a load balancer would send them) and resume.
   Reported: per-client time from the kill until caught up (p50/p99/max against the aim p99 <=
   2 s), and the same from each client's first reconnection attempt (the server's share).

Integrity, everywhere: at the end of each room every client's event seqs are compared with the
room's log read from the store (what that participant may see, from its first snapshot on):
lost and duplicated events must be 0. The nodes' logs are scanned for MaxConnectionsError and
warnings. CPU in cores (CPU-seconds per second) of the servers and of the client processes is
printed per phase: a client process near 1.0 means the client, not the server, was the limit.
"waited for a CPU" is the largest share of the phase any of those processes' event loops spent
ready to run but not running (/proc/PID/schedstat): well above a few % means the machine was
short of CPU for the bench as a whole (other processes, or the bench's own parts on too few
cores), and the latencies measure that as much as bidroom.
/proc/loadavg is printed before and after each part (the machine may be shared).

A missed aim prints MISSED, lost or duplicated events FAILED; the exit status is 1 if any did.
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
import random
import re
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import nodes  # noqa: E402  (tests/nodes.py: the same node launcher the tests use)
from common import arguments, die_with_parent, pct, run_bounded, say  # noqa: E402  (bench/common.py)

SECRET = "bench-secret-" + "k" * 40
WATCHER = "supervisor"  # sees every event of the room
WATCH_EVERY = 50  # one supervisor in every 50 clients, as in a real opening
ANNOUNCED = "meeting.announced"
AIM_RATIO = {1: 2.0, 2: 3.0}  # p99 bidroom / bare, one node / two nodes (issue 13, section 6)
AIM_FAILOVER_P99 = 2.0  # seconds from the kill until a cut client is caught up (section 3)
BACKOFF_BASE, BACKOFF_CAP = 0.5, 30.0  # web/js/client.js: full jitter, doubling


# ---------------------------------------------------------------------------------------------
# client side (runs in worker processes)
# ---------------------------------------------------------------------------------------------


class Client:
    """One room connection: records every seq it gets and the announcements' latencies."""

    def __init__(
        self,
        target: tuple[int, list[str], str, str, str, str],
        compression: str | None,
        rotate: bool,
    ):
        self.idx, self.urls, self.token, self.subject, self.role, self.room = target
        self.compression, self.rotate = compression, rotate
        self.at = 0  # index of the url in use: a cut client moves on to the next (failover)
        self.ws: Any = None
        self.last = 0  # last seq had
        self.start: int | None = None  # seq of the first welcome: the log is checked after it
        self.seqs: list[int] = []  # every event seq received, in order, repeats included
        self.covered: list[tuple[int, int]] = []  # (after, upto]: skipped by a resume snapshot
        self.snapshots = 0  # resumes that got a snapshot instead of a replay
        self.frames: Counter[str] = Counter()  # frames received by type
        self.ann: dict[str, dict[int, float | None]] = {}  # phase -> i -> latency (None: snapshot)
        self.ann_dupes: Counter[str] = Counter()
        self.times: dict[str, list[float]] = {}  # phase -> receive times
        self.welcomes = 0
        self.open = False
        self.closes: Counter[str] = Counter()  # unexpected closes by code
        self.errors: Counter[str] = Counter()  # error frames / connect failures
        self.unexpected = 0
        self.attempt = 0  # reconnection attempts since the last welcome
        self.dropping = False
        self.done = False
        self.mark_at: float | None = None  # the storm's drop or the failover's kill
        self.cut_at: float | None = None  # when this client lost its connection after the mark
        self.retry_at: float | None = None  # its first reconnection attempt after that
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
            if self.mark_at is not None and self.cut_at is None:
                self.cut_at = time.time()
            if self.rotate:
                self.at = (self.at + 1) % len(self.urls)
            ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2**self.attempt)
            self.attempt += 1
            await asyncio.sleep(random.uniform(0, ceiling))

    async def _session(self) -> None:
        import websockets

        since = self.last
        if self.cut_at is not None and self.retry_at is None:
            self.retry_at = time.time()
        self.ws = ws = await websockets.connect(
            self.urls[self.at],
            max_size=None,
            open_timeout=30,
            ping_interval=None,
            close_timeout=2,
            compression=self.compression,
        )
        try:
            hello = {"type": "hello", "token": self.token, "room": self.room, "since": since}
            await ws.send(json.dumps(hello))
            async for raw in ws:
                now = time.time()
                frame = json.loads(raw)
                kind = frame.get("type")
                self.frames[str(kind)] += 1
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
        self.attempt = 0
        self.open = True
        if self.mark_at is not None and self.cut_at is not None and self.rewelcome_at is None:
            self.rewelcome_at = now
        seq = int(frame["seq"])
        if self.start is None:
            self.start = seq
        if frame.get("mode") != "replay":  # snapshot (bidroom) or live (bare server)
            if since > 0:
                self.snapshots += 1
                if seq > self.last:
                    self.covered.append((self.last, seq))
            self.last = max(self.last, seq)
        self.welcomed.set()

    def _snapshot(self, frame: dict[str, Any]) -> None:
        for note in frame.get("state", {}).get("announcements", []):
            with contextlib.suppress(ValueError, KeyError, TypeError):
                data = json.loads(note["text"])
                self.ann.setdefault(data["p"], {}).setdefault(int(data["i"]), None)

    def _event(self, frame: dict[str, Any], now: float) -> None:
        seq = int(frame["seq"])
        self.seqs.append(seq)
        if seq <= self.last:
            return  # a repeat (or out of order): the check against the store counts it
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
            self.caught_up_at is None
            and self.rewelcome_at is not None
            and sent >= self.rewelcome_at
        ):
            self.caught_up_at = now

    def mark(self, at: float) -> None:
        """From now on, a lost connection counts as cut, and its way back is timed."""
        self.mark_at, self.cut_at, self.retry_at = at, None, None
        self.rewelcome_at = self.caught_up_at = None

    def drop(self) -> None:
        """Storm: cut the TCP connection as a network failure would (no close frame)."""
        now = time.time()
        self.mark(now)
        self.cut_at = self.retry_at = now  # it reconnects at once
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
    groups: dict[str, list[Client]] = {}
    while True:
        command, *args = await _recv(pipe, 3600)
        if command == "exit":
            everyone = [c for group in groups.values() for c in group]
            await asyncio.gather(*(c.close() for c in everyone))
            pipe.send(("ok",))
            return
        if command == "cpu":
            pipe.send(("ok", time.process_time()))
            continue
        name, *args = args
        clients = groups.setdefault(name, [])
        if command == "connect":
            targets, limit, rotate = args
            fresh = [Client(t, compression, rotate) for t in targets]
            clients += fresh
            gate = asyncio.Semaphore(25)
            await asyncio.gather(*(_start(c, gate, limit) for c in fresh))
            pipe.send(("ok", sum(c.welcomes > 0 for c in fresh)))
        elif command == "status":
            pipe.send(("ok", _status(clients)))
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
        elif command == "mark":
            (at,) = args
            for client in clients:
                client.mark(at)
            pipe.send(("ok",))
        elif command == "report":
            phase, accepted = args
            pipe.send(("ok", _report(clients, phase, set(accepted))))
        elif command == "seqs":
            pipe.send(("ok", [_record(c) for c in clients]))
        elif command == "close":
            await asyncio.gather(*(c.close() for c in clients))
            del groups[name]
            pipe.send(("ok",))


async def _start(client: Client, gate: asyncio.Semaphore, limit: float) -> None:
    """Connect (at most 25 handshakes at a time per worker) and wait for the welcome."""
    async with gate:
        client.task = asyncio.create_task(client.run())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(client.welcomed.wait(), limit)


def _status(clients: list[Client]) -> dict[str, int]:
    return {
        "open": sum(c.open for c in clients),
        "min_last": min((c.last for c in clients), default=0),
        "unexpected": sum(c.unexpected for c in clients),
        "cut": sum(c.cut_at is not None for c in clients),
        "caught_up": sum(c.caught_up_at is not None for c in clients),
        "rewelcomed": sum(c.rewelcome_at is not None for c in clients),
    }


def _record(c: Client) -> dict[str, Any]:
    return {
        "subject": c.subject,
        "role": c.role,
        "start": c.start,
        "seqs": c.seqs,
        "covered": c.covered,
        "snapshots": c.snapshots,
        "frames": dict(c.frames),
    }


def _report(clients: list[Client], phase: str, accepted: set[int]) -> dict[str, Any]:
    """What ``clients`` had of ``phase``; missing: the accepted announcements each lacks."""
    latencies: list[float] = []
    times: list[float] = []
    missing: list[int] = []
    for c in clients:
        got = c.ann.get(phase, {})
        missing.append(len(accepted - got.keys()))
        latencies += [v for v in got.values() if v is not None]
        times += c.times.get(phase, [])
    closes: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for c in clients:
        closes.update(c.closes)
        errors.update(c.errors)
    return {
        "latencies": latencies,
        "last": max(times, default=0.0),
        "missing": missing,
        "ann_dupes": sum(c.ann_dupes[phase] for c in clients),
        "unexpected": sum(c.unexpected for c in clients),
        "closes": dict(closes),
        "errors": dict(errors),
        "marks": [
            (c.mark_at, c.cut_at, c.retry_at, c.rewelcome_at, c.caught_up_at) for c in clients
        ],
    }


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
# ---------------------------------------------------------------------------------------------
# coordinator: servers, chair, client processes
# ---------------------------------------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid: int | None) -> float:
    """CPU-seconds a process has used (user + system), 0 once it is gone."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def waited(pid: int | None) -> float:
    """Seconds the process's main thread (its event loop) was ready to run and waited for a
    CPU (/proc/PID/schedstat): on a shared machine, time lost to the other processes."""
    if pid is None:
        return 0.0
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Node(nodes.Node):
    """tests/nodes.Node (`python -m bidroom serve` on port 0), plus what the bench reports."""

    last_cpu = 0.0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def cpu(self) -> float:
        if self.process is not None and self.process.poll() is None:
            self.last_cpu = cpu_of(self.pid)
        return self.last_cpu

    def metrics(self) -> dict[str, int]:
        keep = (
            "bidroom_queue_drops",
            "bidroom_gap_fills",
            "bidroom_events_appended",
            "bidroom_events_delivered",
            "bidroom_broker_errors",
            "bidroom_commands",
        )
        values: dict[str, int] = {}
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(self.url + "/metrics", timeout=5) as answer,
        ):
            for line in answer.read().decode().splitlines():
                match = re.match(r"^(bidroom_\w+?)(_total)?(\{[^}]*\})? ([0-9.e+-]+)$", line)
                if match and match.group(1) in keep:
                    values[match.group(1) + (match.group(3) or "")] = int(float(match.group(4)))
        return values

    def warnings(self) -> Counter[str]:
        found: Counter[str] = Counter()
        for line in list(self.log):
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and entry.get("level") in ("WARNING", "ERROR"):
                    found[str(entry.get("message"))[:70]] += 1
        return found

    def count(self, text: str) -> int:
        return sum(text in line for line in list(self.log))


def mint(subject: str, role: str) -> str:
    from bidroom import tokens

    identity = tokens.Identity(subject, subject, (role,))
    return tokens.mint(identity, SECRET, datetime.now(UTC), timedelta(hours=4))


class Publishes:
    """Redis's count of PUBLISH commands (INFO commandstats): the broker's messages."""

    def __init__(self, url: str | None):
        import redis

        self.redis = redis.Redis.from_url(url) if url else None

    def count(self) -> int | None:
        if self.redis is None:
            return None
        stats = self.redis.info("commandstats")
        return int(stats.get("cmdstat_publish", {}).get("calls", 0))

    def close(self) -> None:
        if self.redis is not None:
            self.redis.close()


class Chair:
    """The chair's own connection: sends announcements open-loop, collects acks. When the
    server closes it (a heartbeat timeout under load, say), it resumes with since = its last
    seq and sends its unanswered commands again with their ids, as web/js/client.js does: the
    server applies a command id once."""

    def __init__(self, url: str, room: str, compression: str | None):
        self.url, self.room, self.compression = url, room, compression
        self.acks: dict[str, list[int]] = {}
        self.rejected: Counter[str] = Counter()
        self.last = 0
        self.changed = asyncio.Event()
        self.ws: Any = None
        self.reader: asyncio.Task[None] | None = None
        self.sent = 0
        self.joined: set[str] = set()
        self.welcomed = False
        self.unanswered: dict[str, str] = {}  # command id -> its frame, until answered
        self.cut: Counter[str] = Counter()  # server-initiated closes, by code
        self.stopping = False

    async def connect(self) -> None:
        import websockets

        self.welcomed = False
        self.ws = await websockets.connect(
            self.url,
            max_size=None,
            open_timeout=30,
            ping_interval=None,
            compression=self.compression,
        )
        token = mint("chair", "chair")
        hello = {"type": "hello", "token": token, "room": self.room, "since": self.last}
        await self.ws.send(json.dumps(hello))
        self.reader = asyncio.create_task(self._read())
        deadline = time.monotonic() + 60
        while not self.welcomed:
            if time.monotonic() > deadline or self.reader.done():
                raise RuntimeError(f"the chair got no welcome from {self.url}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), 0.5)
        for frame in list(self.unanswered.values()):
            await self.ws.send(frame)

    async def _read(self) -> None:
        import websockets

        try:
            async for raw in self.ws:
                if self._frame(json.loads(raw)) == "ping":
                    await self.ws.send('{"type":"pong"}')
                self.changed.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            if not self.stopping:
                self.cut[str(self.ws.close_code)] += 1
            self.changed.set()

    def _frame(self, frame: dict[str, Any]) -> Any:
        """Take in one frame; its type."""
        kind = frame.get("type")
        if kind == "welcome":
            self.welcomed = True
            if frame.get("mode") != "replay":
                self.last = max(self.last, int(frame["seq"]))
        elif kind == "snapshot":
            for p in frame["state"].get("participants", []):
                if p.get("role") != "chair":
                    self.joined.add(p["subject"])
        elif kind == "event":
            self.last = max(self.last, int(frame["seq"]))
            if frame["name"] == "presence.joined" and frame["data"]["role"] != "chair":
                self.joined.add(frame["data"]["subject"])
        elif kind == "ack":
            self.acks[frame["id"]] = frame["seqs"]
            self.unanswered.pop(frame["id"], None)
        elif kind == "error":
            self.rejected[str(frame.get("code"))] += 1
            self.acks[str(frame.get("id"))] = []
            self.unanswered.pop(str(frame.get("id")), None)
        return kind

    async def _resume_if_cut(self) -> None:
        if self.reader is not None and self.reader.done() and not self.stopping:
            await self.connect()

    async def until(self, predicate: Any, within: float) -> bool:
        deadline = time.monotonic() + within
        while not predicate():
            await self._resume_if_cut()
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 0.5))
        return True

    async def send(self, cid: str, frame: dict[str, Any]) -> None:
        import websockets

        text = json.dumps(frame)
        self.unanswered[cid] = text
        await self._resume_if_cut()
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.ws.send(text)  # if cut meanwhile: sent again on resuming

    async def command(self, name: str, args: dict[str, Any] | None = None) -> list[int]:
        self.sent += 1
        cid = f"c{self.sent}"
        await self.send(cid, {"type": "command", "id": cid, "name": name, "args": args or {}})
        await self.until(lambda: cid in self.acks, 60)
        return self.acks.get(cid, [])

    async def announce(
        self, phase: str, rate: float, seconds: float | None, stop: asyncio.Event | None = None
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
            text = json.dumps({"p": phase, "i": k, "t": time.time()})
            command = {"type": "command", "id": cid, "name": "meeting.announce"}
            await self.send(cid, {**command, "args": {"text": text}})
            ids.append(cid)
            k += 1
        return ids

    async def barrier(self, tag: str) -> int:
        """One more announcement; its seq (0 if refused)."""
        text = json.dumps({"p": tag, "i": 0, "t": time.time()})
        seqs = await self.command("meeting.announce", {"text": text})
        return seqs[0] if seqs else 0

    async def close(self) -> None:
        self.stopping = True
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 3)
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(BaseException):
                await self.reader


class Workers:
    """Client processes; every client belongs to a named group ("bare", "room")."""

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

    async def status(self, group: str) -> dict[str, int]:
        total: Counter[str] = Counter()
        mins = []
        for s in await self.call(("status", group), 60):
            mins.append(s.pop("min_last"))
            total.update(s)
        return {**total, "min_last": min(mins)}

    async def cpu(self) -> list[float]:
        return [float(x) for x in await self.call(("cpu",), 60)]

    async def connect(
        self, group: str, targets: list[tuple[Any, ...]], within: float, rotate: bool = False
    ) -> int:
        """Spread ``targets`` over the processes; how many got a welcome within ``within``."""
        parts = len(self.pipes)
        messages = [("connect", group, targets[i::parts], within, rotate) for i in range(parts)]
        return sum(await self.call(messages, within + len(targets) + 60))

    async def records(self, group: str) -> list[dict[str, Any]]:
        return [r for part in await self.call(("seqs", group), 120) for r in part]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.call(("exit",), 30)
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()


def population(n: int, room: str, urls: list[list[str]]) -> list[tuple[Any, ...]]:
    """N participants of ``room``: bidders, one supervisor in 50; client i uses urls[i % k]."""
    out = []
    for i in range(n):
        role = WATCHER if i % WATCH_EVERY == 0 else "bidder"
        subject = f"{room}-{role}-{i}"
        out.append((i, urls[i % len(urls)], mint(subject, role), subject, role, room))
    return out


# ---------------------------------------------------------------------------------------------
# the parts of a run
# ---------------------------------------------------------------------------------------------


@dataclass
class Topology:
    """The servers one part of the run talks to."""

    nodes: list[Node]
    db_url: str
    publishes: Publishes
    label: str
    bare_url: str = ""
    bare_pid: int | None = None

    def servers(self) -> dict[str, int | None]:
        found = {"bare": self.bare_pid} if self.bare_pid else {}
        return {**found, **{node.name: node.pid for node in self.nodes}}

    def published(self) -> int | None:
        return self.publishes.count()


def start_topology(count: int, tmp: Path, services: list[Any], prefix: str) -> Topology:
    """``count`` migrated nodes: one on SQLite (in-process broker), or several on a fresh
    PostgreSQL + Redis. Call from the main thread: a child's parent-death signal fires when
    the thread that forked it ends."""
    base = {
        "BIDROOM_SECRET_KEY": SECRET,
        "BIDROOM_COMMANDS_PER_SECOND": "1000",
        "BIDROOM_VAR_DIR": str(tmp),
        "BIDROOM_LOG_LEVEL": "INFO",
    }
    redis_url = None
    if count == 1:
        base["BIDROOM_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp / 'b.db'}"
        label = "1 node, SQLite, in-process broker"
    else:
        from services import start_postgres, start_redis

        redis = start_redis(tmp / "redis")
        services.append(redis)
        postgres = start_postgres(tmp / "pg")
        services.append(postgres)
        base["BIDROOM_DATABASE_URL"] = postgres.url
        base["BIDROOM_REDIS_URL"] = redis_url = redis.url
        label = f"{count} nodes, PostgreSQL + Redis"
    migrated = nodes.bidroom("migrate", env=base)
    if migrated.returncode != 0:
        raise RuntimeError(f"migrate failed: {migrated.stderr}")
    started = []
    for i in range(count):
        env = {**base, "BIDROOM_NODE_ID": f"{prefix}-{i + 1}"}
        node = Node(env, f"node {i + 1}", die_with_parent)
        started.append(node)
        node.start()
    return Topology(started, base["BIDROOM_DATABASE_URL"], Publishes(redis_url), label)


def create_room(node: Node, room: str) -> None:
    """POST /api/rooms with a chair token: a meeting room."""
    config = {"roles": ["chair", "bidder", WATCHER]}
    body = json.dumps({"id": room, "kind": "meeting", "title": room, "config": config})
    request = urllib.request.Request(
        node.url + "/api/rooms",
        data=body.encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {mint('chair', 'chair')}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        if answer.status != 201:
            raise RuntimeError(f"room not created: HTTP {answer.status}")


async def open_room(node: Node, room: str, compression: str | None) -> Chair:
    create_room(node, room)
    chair = Chair(node.ws_url, room, compression)
    await chair.connect()
    if not await chair.command("meeting.open"):
        raise RuntimeError(f"meeting.open refused: {dict(chair.rejected)}")
    return chair


async def settle(workers: Workers, chair: Chair, group: str, n: int, within: float) -> bool:
    """Until the chair has seen every client join and every client holds a barrier
    announcement (a bidder sees only its own presence and the chair's)."""
    deadline = time.monotonic() + within
    if not await chair.until(lambda: len(chair.joined) >= n, within):
        return False
    seq = await chair.barrier("settled")
    while seq and time.monotonic() < deadline:
        status = await workers.status(group)
        if status["min_last"] >= seq and status["open"] == n:
            return True
        await asyncio.sleep(0.2)
    return False


def summarise(reports: list[dict[str, Any]], expected: int) -> dict[str, Any]:
    """``expected``: the announcements accepted, each due to every client."""
    latencies = [x for r in reports for x in r["latencies"]]
    missing = [c for r in reports for c in r["missing"]]
    closes: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for r in reports:
        closes.update(r["closes"])
        errors.update(r["errors"])
    return {
        "latencies": latencies,
        "p50": pct(latencies, 50) * 1000,
        "p99": pct(latencies, 99) * 1000,
        "max": max(latencies, default=float("nan")) * 1000,
        "delivered": expected * len(missing) - sum(missing),
        "expected": expected * len(missing),
        "lost": sum(missing),
        "ann_dupes": sum(r["ann_dupes"] for r in reports),
        "unexpected": sum(r["unexpected"] for r in reports),
        "closes": dict(closes),
        "errors": dict(errors),
        "marks": [m for r in reports for m in r["marks"]],
    }


async def phase(
    workers: Workers, chair: Chair, group: str, name: str, args: argparse.Namespace
) -> dict[str, Any]:
    """The chair announces for ``args.seconds``; what ``group``'s clients received."""
    ids = await chair.announce(name, args.rate, args.seconds)
    return await collect(workers, chair, group, name, ids, args)


async def collect(
    workers: Workers,
    chair: Chair,
    group: str,
    name: str,
    ids: list[str],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Once the chair's announcements ``ids`` are answered (60 s at most) and the clients had
    --drain seconds to receive them: what ``group`` received of those the room accepted."""
    await chair.until(lambda: all(i in chair.acks for i in ids), 60)
    accepted = [k for k, cid in enumerate(ids) if chair.acks.get(cid)]
    unanswered = sum(cid not in chair.acks for cid in ids)
    wait = ("wait", group, name, len(accepted), args.drain)
    await workers.call(wait, args.drain + 60)
    result = summarise(await workers.call(("report", group, name, accepted), 120), len(accepted))
    refused = len(ids) - len(accepted) - unanswered
    result.update(sent=len(ids), accepted=len(accepted), unanswered=unanswered, refused=refused)
    result["told"] = (
        f"{len(ids)} sent, {len(accepted)} accepted, {refused} refused "
        f"{dict(chair.rejected)}, {unanswered} unanswered within 60 s"
        + (f"; the chair was cut and resumed: close codes {dict(chair.cut)}" if chair.cut else "")
    )
    return result


async def finish(
    workers: Workers, chair: Chair, top: Topology, room: str, args: argparse.Namespace
) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
    """A last announcement every client must get; then each client's seqs against the log
    up to it. If the room does not accept it within 60 s, the check runs up to the log's
    head after --drain seconds: whatever a client has not received by then counts as lost."""
    end = await chair.barrier("end")
    note = f"seqs up to {end}"
    if end:
        await workers.call(("wait", "room", "end", 1, args.drain), args.drain + 60)
    else:
        await asyncio.sleep(args.drain)
        end = await head_of(top.db_url, room)
        note = (
            f"the end barrier was not accepted within 60 s: seqs up to the log's head {end}, "
            f"{args.drain:g} s later; what a client had not received by then counts as lost"
        )
    records = await workers.records("room")
    return records, await against_store(top.db_url, room, end, records), note


async def head_of(db_url: str, room: str) -> int:
    from bidroom.store import Store, create_engine

    engine = create_engine(db_url)
    try:
        return (await Store(engine).last_seqs([room])).get(room, 0)
    finally:
        await engine.dispose()


class Meter:
    """CPU (in cores) of the servers and of the client processes over one stretch of time,
    and the share of it their event loops spent waiting for a CPU."""

    def __init__(self, servers: dict[str, int | None], workers: Workers):
        self.servers, self.workers = servers, workers
        self.pids = [*servers.values(), *(p.pid for p in workers.procs)]
        self.t0 = 0.0
        self.start: dict[str, float] = {}
        self.start_workers: list[float] = []
        self.start_waits: list[float] = []

    async def begin(self) -> Meter:
        self.t0 = time.monotonic()
        self.start = {name: cpu_of(pid) for name, pid in self.servers.items()}
        self.start_waits = [waited(pid) for pid in self.pids]
        self.start_workers = await self.workers.cpu()
        return self

    async def read(self) -> dict[str, Any]:
        wall = max(1e-9, time.monotonic() - self.t0)
        ends = {name: cpu_of(pid) for name, pid in self.servers.items()}
        servers = {n: max(0.0, ends[n] - self.start[n]) / wall for n in self.servers}
        waits = [waited(pid) for pid in self.pids]
        after = await self.workers.cpu()
        workers = [(b - a) / wall for a, b in zip(self.start_workers, after, strict=True)]
        share = [max(0.0, b - a) / wall for a, b in zip(self.start_waits, waits, strict=True)]
        spent = {n: max(0.0, ends[n] - self.start[n]) for n in self.servers}  # CPU-seconds
        return {
            "servers": servers,
            "spent": spent,
            "workers": workers,
            "waited": max(share, default=0.0),
        }


def per_frame(spent: dict[str, float], results: dict[str, list[dict[str, Any]]]) -> str:
    """CPU-microseconds the phase's server(s) spent per frame delivered, bare and bidroom
    (whole phases: the chair's commands, heartbeats and the like are counted in)."""
    us = {k: spent[k] * 1e6 / max(1, sum(r["delivered"] for r in results[k])) for k in spent}
    ratio = us["bidroom"] / us["bare"] if us["bare"] else float("nan")
    return f"bare {us['bare']:.1f} us, bidroom {us['bidroom']:.1f} us ({ratio:.2f}x)"


def cores(reading: dict[str, Any]) -> str:
    servers = ", ".join(f"{name} {value:.2f}" for name, value in reading["servers"].items())
    workers = " + ".join(f"{w:.2f}" for w in reading["workers"])
    busy = max(reading["workers"], default=0.0)
    flag = " (a client process near 1 core: the client may be the limit)" if busy > 0.85 else ""
    return f"{servers}; clients {workers}{flag}; waited for a CPU {reading['waited']:.0%}"


async def against_store(
    db_url: str, room: str, upto: int, records: list[dict[str, Any]]
) -> dict[str, Any]:
    """Each client's seqs against the room's log up to ``upto``: the events that participant
    may see after the snapshot it started from, each once. A seq covered by a resume snapshot
    (welcome mode snapshot) counts as had; it is reported apart."""
    from bidroom.meeting import Meeting
    from bidroom.room import Actor
    from bidroom.store import Store, create_engine

    engine = create_engine(db_url)
    try:
        store = Store(engine)
        record = await store.room(room)
        events = await store.events(room, upto=upto)
    finally:
        await engine.dispose()
    assert record is not None
    kind = Meeting()
    state = kind.initial({**record.config, "title": record.title})
    folded = []
    for event in events:
        state = kind.apply(state, event)  # the hub decides visibility on the state after it
        folded.append((event, state))
    totals: Counter[str] = Counter()
    for r in records:
        if r["start"] is None:
            totals["never welcomed"] += 1
            continue
        actor = Actor(r["subject"], r["subject"], r["role"])
        expected = {e.seq for e, s in folded if e.seq > r["start"] and kind.visible(s, e, actor)}
        got = [seq for seq in r["seqs"] if seq <= upto]
        seen = set(got)
        skipped = {seq for a, b in r["covered"] for seq in range(a + 1, b + 1)}
        lost = len(expected - seen - skipped)
        dupes = len(got) - len(seen)
        top, disorder, had = 0, 0, set()
        for seq in got:  # a seq first seen after a higher one arrived out of order
            disorder += seq not in had and seq < top
            had.add(seq)
            top = max(top, seq)
        totals["lost"] += lost
        totals["duplicated"] += dupes
        totals["out of order"] += disorder
        totals["not visible to them"] += len(seen - expected)
        totals["covered by a resume snapshot"] += len(expected & skipped - seen)
        totals["clients with losses"] += lost > 0
        totals["clients with duplicates"] += dupes > 0
        totals["resume snapshots"] += r["snapshots"]
    totals["clients"] = len(records)
    totals["events in the log"] = len(events)
    return dict(totals)


def integrity(check: dict[str, Any]) -> tuple[bool, str]:
    bad = ("lost", "duplicated", "out of order", "not visible to them", "never welcomed")
    ok = not any(check.get(k) for k in bad)
    figures = ", ".join(f"{k} {v}" for k, v in check.items())
    return ok, f"{figures}: {'OK' if ok else 'FAILED'}"


def frames_per_client(records: list[dict[str, Any]]) -> str:
    total: Counter[str] = Counter()
    for r in records:
        total.update(r["frames"])
    n = max(1, len(records))
    return ", ".join(f"{kind} {count / n:.1f}" for kind, count in total.most_common())


def per(count: int | None, of: int) -> str:
    if count is None:
        return "- (no broker process: in-process)"
    return f"{count / max(1, of):.1f} ({count} PUBLISH for {of})"


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"p50 {pct(values, 50):.2f} s, p99 {pct(values, 99):.2f} s, max {max(values):.2f} s"


def node_lines(nodes_: list[Node]) -> list[str]:
    lines = []
    for node in nodes_:
        alive = node.process is not None and node.process.poll() is None
        metrics = node.metrics() if alive else "(killed)"
        lines.append(f"  {node.name}: metrics {metrics}")
        lines.append(
            f"  {node.name}: MaxConnectionsError in log {node.count('MaxConnectionsError')}; "
            f"warnings {dict(node.warnings().most_common(5))}"
        )
    return lines


def workers_for(n: int, args: argparse.Namespace) -> int:
    return args.workers or max(2, min(4, math.ceil(n / 125)))


async def fan_out(
    args: argparse.Namespace, top: Topology, n: int, compression: str | None
) -> tuple[list[str], bool]:
    """N bare and N bidroom clients connected; alternating phases; the storm; the check."""
    room = f"fan-{n}"
    count = len(top.nodes)
    lines = [
        "",
        f"== fan-out, N={n}, {top.label}: {args.rounds} rounds of {args.seconds:g} s at "
        f"{args.rate:g} announcements/s, bare and bidroom alternating; load {loadavg()}",
    ]
    say(f"fan-out N={n} on {top.label}")
    workers = Workers(workers_for(n, args), compression)
    bare_chair = Chair(top.bare_url, "bare", compression)
    chair: Chair | None = None
    ok = True
    try:
        await bare_chair.connect()
        chair = await open_room(top.nodes[0], room, compression)
        t = time.monotonic()
        bare_in = await workers.connect("bare", population(n, "bare", [[top.bare_url]]), 120)
        bare_s = time.monotonic() - t
        before = top.published()
        meter = await Meter(top.servers(), workers).begin()
        t = time.monotonic()
        urls = [[node.ws_url] for node in top.nodes]
        joined = await workers.connect("room", population(n, room, urls), args.connect_timeout)
        join_s = time.monotonic() - t
        settled = await settle(workers, chair, "room", n, args.connect_timeout)
        settle_s = time.monotonic() - t
        joins_cpu = await meter.read()
        after = top.published()
        lines += [
            f"  joins: bare {bare_in}/{n} welcomed in {bare_s:.1f} s; bidroom {joined}/{n} "
            f"welcomed in {join_s:.1f} s, every join seen and a barrier delivered after "
            f"{settle_s:.1f} s" + ("" if settled else " (NOT settled)"),
            f"  broker messages per join: {per(None if before is None else after - before, n)}"
            f"; CPU during the joins: {cores(joins_cpu)}",
            "",
            f"  {'round':7}{'phase':9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
            f"{'delivered':>15}{'lost/dup':>10}  CPU (cores)",
        ]
        results: dict[str, list[dict[str, Any]]] = {"bare": [], "bidroom": []}
        server_cpu = {"bare": 0.0, "bidroom": 0.0}  # CPU-seconds of the phase's own server(s)
        announce_publishes = (0, 0)
        for r in range(1, args.rounds + 1):
            for label, who, group in (("bare", bare_chair, "bare"), ("bidroom", chair, "room")):
                meter = await Meter(top.servers(), workers).begin()
                before = top.published()
                result = await phase(workers, who, group, f"{label}-{r}", args)
                reading = await meter.read()
                if label == "bidroom" and before is not None:
                    spent = (top.published() or 0) - before
                    announce_publishes = (
                        announce_publishes[0] + spent,
                        announce_publishes[1] + result["sent"],
                    )
                results[label].append(result)
                server_cpu[label] += sum(
                    v for k, v in reading["spent"].items() if (k == "bare") == (label == "bare")
                )
                if result["accepted"] < result["sent"]:
                    lines.append(f"  {r:<7}{label:9}announcements: {result['told']}")
                delivered = f"{result['delivered']}/{result['expected']}"
                lines.append(
                    f"  {r:<7}{label:9}{result['p50']:>9.2f}{result['p99']:>9.2f}"
                    f"{result['max']:>9.2f}{delivered:>15}"
                    f"{result['lost']:>5}/{result['ann_dupes']:<4}  {cores(reading)}"
                )
        pooled = {k: [x for r in v for x in r["latencies"]] for k, v in results.items()}
        p50 = {k: pct(v, 50) * 1000 for k, v in pooled.items()}
        p99 = {k: pct(v, 99) * 1000 for k, v in pooled.items()}
        ratio = p99["bidroom"] / p99["bare"] if p99["bare"] else float("nan")
        aim = AIM_RATIO[count]
        verdict = "OK" if ratio <= aim else "MISSED"
        per_round = [
            b["p99"] / a["p99"] for a, b in zip(results["bare"], results["bidroom"], strict=True)
        ]
        lost = sum(r["lost"] + r["ann_dupes"] for v in results.values() for r in v)
        ok &= lost == 0 and verdict == "OK"
        lines += [
            f"  all rounds: p50 bare {p50['bare']:.2f} ms, bidroom {p50['bidroom']:.2f} ms "
            f"({p50['bidroom'] / p50['bare']:.2f}x); p99 bare {p99['bare']:.2f} ms, bidroom "
            f"{p99['bidroom']:.2f} ms ({ratio:.2f}x; per round "
            + ", ".join(f"{x:.2f}x" for x in per_round)
            + f"): aim p99 within {aim:g}x of bare: {verdict}",
            "  server CPU per delivered frame: " + per_frame(server_cpu, results),
            "  broker messages per announcement: "
            + (per(*announce_publishes) if count > 1 else "- (in-process broker)"),
        ]
        if n in args.storm_sizes and args.storm:
            storm_lines, storm_ok = await storm(args, top, workers, chair, n)
            lines += storm_lines
            ok &= storm_ok
        records, check, note = await finish(workers, chair, top, room, args)
        good, text = integrity(check)
        ok &= good
        lines += [
            f"  bidroom frames per client (mean): {frames_per_client(records)}",
            f"  integrity against the store ({note}): {text}",
        ]
        lines += node_lines(top.nodes)
        lines.append(f"  load after: {loadavg()}")
    finally:
        await bare_chair.close()
        if chair is not None:
            await chair.close()
        await workers.close()
    return lines, ok


async def storm(
    args: argparse.Namespace, top: Topology, workers: Workers, chair: Chair, n: int
) -> tuple[list[str], bool]:
    """Every bidroom client drops at once and resumes while the chair keeps announcing."""
    say(f"storm N={n}")
    stop = asyncio.Event()
    sender = asyncio.create_task(chair.announce("storm", args.rate, None, stop))
    await asyncio.sleep(1.0)
    meter = await Meter(top.servers(), workers).begin()
    before = top.published()
    t_drop = time.time() + 0.2
    await workers.call(("storm", "room", t_drop), 60)
    deadline = time.monotonic() + args.storm_timeout
    while time.monotonic() < deadline:
        if (await workers.status("room"))["caught_up"] >= n:
            break
        await asyncio.sleep(0.1)
    reading = await meter.read()
    after = top.published()
    await asyncio.sleep(1.0)  # a little more live traffic after the last client is back
    stop.set()
    ids = await sender
    result = await collect(workers, chair, "room", "storm", ids, args)
    marks = result["marks"]
    caught = [m[4] - t_drop for m in marks if m[4] is not None]
    welcomed = [m[3] - t_drop for m in marks if m[3] is not None]
    never = n - len(caught)
    ok = never == 0 and result["lost"] == 0 and result["ann_dupes"] == 0
    publishes = None if before is None or after is None else after - before
    return [
        f"  storm: all {n} bidroom clients abort their TCP connection at once and resume with "
        f"since = last seq, the chair announcing at {args.rate:g}/s",
        f"    caught up (per client, from the drop): {spread(caught)}; never within "
        f"{args.storm_timeout:g} s: {never}" + (" FAILED" if never else ""),
        f"    welcome again (from the drop): {spread(welcomed)} ({len(welcomed)}/{n})",
        f"    announcements lost / duplicated: {result['lost']} / {result['ann_dupes']} "
        f"({result['told']}); latency p50 {result['p50']:.2f} ms, p99 {result['p99']:.2f} ms",
        f"    broker messages per rejoin: {per(publishes, n)}",
        f"    server-initiated closes since the start: {result['closes']}; errors "
        f"{result['errors']}",
        f"    CPU until every client caught up: {cores(reading)}",
    ], ok


async def failover(args: argparse.Namespace, compression: str | None) -> tuple[list[str], bool]:
    """Two fresh nodes, clients half on each, node 2 killed while the chair announces."""
    n = args.failover_clients
    say(f"failover with {n} clients")
    lines = [
        "",
        f"== failover: {n} clients in one room over 2 nodes (PostgreSQL + Redis), the chair on "
        f"node 1 announcing at {args.rate:g}/s, then kill -9 of node 2; load {loadavg()}",
    ]
    services: list[Any] = []
    top: Topology | None = None
    workers: Workers | None = None
    chair: Chair | None = None
    ok = True
    with tempfile.TemporaryDirectory(prefix="bidroom-bench-") as tmp:
        try:
            top = start_topology(2, Path(tmp), services, "failover")
            one, two = top.nodes
            chair = await open_room(one, "failover", compression)
            workers = Workers(2, compression)
            # a load balancer's view: each client's node first, the other when it is gone
            urls = [[one.ws_url, two.ws_url], [two.ws_url, one.ws_url]]
            people = population(n, "failover", urls)
            # supervisors on both nodes: client i is on node 1 + (i + i // WATCH_EVERY) % 2
            people = [(*p[:1], urls[(p[0] + p[0] // WATCH_EVERY) % 2], *p[2:]) for p in people]
            on_two = sum(p[1][0] == two.ws_url for p in people)
            before = top.published()
            t = time.monotonic()
            joined = await workers.connect("room", people, args.connect_timeout, rotate=True)
            settled = await settle(workers, chair, "room", n, args.connect_timeout)
            join_s = time.monotonic() - t
            after = top.published()
            per_join = per(None if before is None else after - before, n)
            stop = asyncio.Event()
            sender = asyncio.create_task(chair.announce("failover", args.rate, None, stop))
            await asyncio.sleep(1.0)
            first, sent = top.published(), chair.sent
            await asyncio.sleep(2.0)
            per_announce = per((top.published() or 0) - (first or 0), chair.sent - sent)
            meter = await Meter(top.servers(), workers).begin()
            t_kill = time.time() + 0.2
            await workers.call(("mark", "room", t_kill), 30)
            await asyncio.sleep(max(0.0, t_kill - time.time()))
            before = top.published()
            await asyncio.to_thread(two.kill)
            deadline = time.monotonic() + args.failover_timeout
            while time.monotonic() < deadline:
                status = await workers.status("room")
                if status["cut"] >= on_two and status["caught_up"] >= status["cut"]:
                    break
                await asyncio.sleep(0.1)
            reading = await meter.read()
            after = top.published()
            await asyncio.sleep(1.0)
            stop.set()
            ids = await sender
            result = await collect(workers, chair, "room", "failover", ids, args)
            records, check, note = await finish(workers, chair, top, "failover", args)
            good, text = integrity(check)
            cut = [m for m in result["marks"] if m[1] is not None]
            from_kill = [m[4] - t_kill for m in cut if m[4] is not None]
            from_retry = [m[4] - m[2] for m in cut if m[4] is not None and m[2] is not None]
            welcomed = [m[3] - t_kill for m in cut if m[3] is not None]
            never = len(cut) - len(from_kill)
            p99 = pct(from_kill, 99) if from_kill and not never else float("inf")
            verdict = "OK" if p99 <= AIM_FAILOVER_P99 else "MISSED"
            ok = good and never == 0 and result["lost"] == 0 and result["ann_dupes"] == 0
            ok &= verdict == "OK"
            recovery = None if before is None or after is None else after - before
            lines += [
                f"  joins: {joined}/{n} welcomed, every join seen after {join_s:.1f} s"
                + ("" if settled else " (NOT settled)")
                + f"; broker messages per join {per_join}; per announcement {per_announce}",
                f"  cut clients (on node 2): {len(cut)} of {on_two}; caught up within "
                f"{args.failover_timeout:g} s: {len(from_kill)}; never: {never}",
                f"  caught up, from the kill: {spread(from_kill)}: aim p99 <= "
                f"{AIM_FAILOVER_P99:g} s: {verdict}",
                f"  caught up, from each client's first reconnection attempt: {spread(from_retry)}",
                f"  welcome again, from the kill: {spread(welcomed)}",
                f"  announcements lost / duplicated: {result['lost']} / {result['ann_dupes']} "
                f"({result['told']})",
                f"  integrity against the store ({note}): {text}",
                f"  broker PUBLISH from the kill until every cut client caught up: "
                f"{recovery} (for {len(cut)} rejoins and the announcements meanwhile)",
                f"  bidroom frames per client (mean): {frames_per_client(records)}",
                f"  CPU from the kill until caught up: {cores(reading)}",
                f"  client closes: {result['closes']}; client errors {result['errors']}",
            ]
            lines += node_lines(top.nodes)
            lines.append(f"  load after: {loadavg()}")
        finally:
            if chair is not None:
                await chair.close()
            if workers is not None:
                await workers.close()
            await stop_topology(top, services)
    return lines, ok


async def stop_topology(top: Topology | None, services: list[Any]) -> None:
    if top is not None:
        for node in top.nodes:
            await asyncio.to_thread(node.stop)
        top.publishes.close()
    for service in reversed(services):
        with contextlib.suppress(Exception):
            service.close()


def start_bare(compression: str | None) -> tuple[Any, Any, str]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=bare_main, args=(child, compression), daemon=True)
    server.start()
    if not parent.poll(30):
        raise RuntimeError("bare server did not start")
    return server, parent, f"ws://127.0.0.1:{parent.recv()}/"


def emit(lines: list[str]) -> None:
    print("\n".join(lines), flush=True)


async def main_async(args: argparse.Namespace) -> int:
    compression = None if args.compression == "off" else "deflate"
    started = datetime.now(UTC)
    emit(
        [
            f"bench/fanout.py {' '.join(sys.argv[1:])}",
            f"started {started:%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores; load {loadavg()}",
            f"client compression {compression or 'off'} (both servers decline it); a client "
            f"reconnects after an unexpected close with full jitter, {BACKOFF_BASE:g} s doubling",
        ]
    )
    ok = True
    if args.fanout:
        server, pipe, bare_url = start_bare(compression)
        try:
            for count in args.nodes:
                services: list[Any] = []
                top: Topology | None = None
                with tempfile.TemporaryDirectory(prefix="bidroom-bench-") as tmp:
                    try:
                        say(f"starting {count} node(s)")
                        top = start_topology(count, Path(tmp), services, "fan")
                        top.bare_url, top.bare_pid = bare_url, server.pid
                        for n in args.sizes:
                            lines, good = await fan_out(args, top, n, compression)
                            emit(lines)
                            ok &= good
                    finally:
                        await stop_topology(top, services)
        finally:
            pipe.send("stop")
            server.join(5)
            if server.is_alive():
                server.kill()
    if args.failover:
        lines, good = await failover(args, compression)
        emit(lines)
        ok &= good
    minutes = (datetime.now(UTC) - started).total_seconds() / 60
    outcome = "every aim met, no loss" if ok else "some aim MISSED or check FAILED (above)"
    emit(["", f"done in {minutes:.1f} min; load {loadavg()}; {outcome}"])
    return 0 if ok else 1


def numbers(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = arguments(__doc__, quick="N = 20, 60; storm at 60; failover with 40", timeout=5400.0)
    p.add_argument("--sizes", type=numbers, default=[100, 500, 1000], help="room sizes N")
    p.add_argument("--nodes", type=numbers, default=[1, 2], help="topologies: 1, 2 or 1,2")
    p.add_argument("--rounds", type=int, default=3, help="bare/bidroom phase pairs per N")
    p.add_argument("--seconds", type=float, default=10.0, help="length of one phase")
    p.add_argument("--rate", type=float, default=20.0, help="chair announcements per second")
    p.add_argument("--storm-sizes", type=numbers, default=[500, 1000])
    p.add_argument("--no-storm", dest="storm", action="store_false")
    p.add_argument("--no-fanout", dest="fanout", action="store_false")
    p.add_argument("--no-failover", dest="failover", action="store_false")
    p.add_argument("--only", choices=("fanout", "failover"), help="run one part")
    p.add_argument("--failover-clients", type=int, default=200)
    p.add_argument("--workers", type=int, default=0, help="client processes (default: by N)")
    p.add_argument(
        "--compression",
        choices=("deflate", "off"),
        default="deflate",
        help="permessage-deflate offered by clients (browsers do; default)",
    )
    p.add_argument("--drain", type=float, default=15.0, help="max wait for stragglers")
    p.add_argument("--storm-timeout", type=float, default=60.0)
    p.add_argument("--failover-timeout", type=float, default=60.0)
    p.add_argument("--connect-timeout", type=float, default=600.0)
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.storm_sizes, args.failover_clients = [20, 60], [60], 40
        args.rounds, args.seconds, args.drain = 2, 2.0, 5.0
        args.storm_timeout = args.failover_timeout = 20.0
        args.connect_timeout, args.timeout = 60.0, 600.0
    if args.only:
        args.fanout, args.failover = args.only == "fanout", args.only == "failover"
    if not set(args.nodes) <= {1, 2}:
        p.error("--nodes takes 1, 2 or 1,2")
    return args


if __name__ == "__main__":
    sys.exit(run_bounded(main_async, parse()))
