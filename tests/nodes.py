"""Real bidroom nodes for tests: `python -m bidroom serve` in a subprocess on port 0."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import uvicorn
from services import die_with_parent
from starlette.applications import Starlette

SECRET = "test-secret-" + "x" * 40
# The node's other secrets, one a purpose (bidroom.settings.SECRETS): the tests and benchmarks
# mint tokens with SECRET (the session key) and never need these, which every node they start
# gets unless its environment says otherwise (conftest puts them in the tests' environment).
NODE_SECRETS = {
    "BIDROOM_ROOM_SECRET": "test-room-secret-" + "r" * 40,
    "BIDROOM_REPORT_SECRET": "test-report-secret-" + "p" * 40,
    "BIDROOM_TSA_SECRET": "test-tsa-secret-" + "t" * 40,
}
STARTUP = 120.0  # a bound, not an aim: a busy machine starts a node slowly


def bidroom(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a bidroom CLI command to completion."""
    return subprocess.run(
        [sys.executable, "-m", "bidroom", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write_room(database: str, room: str, kind: str, title: str, config: dict[str, Any]) -> None:
    """A room written straight into the node's database, as only the operator could: the room
    directory makes meetings only, an opening comes from publication and an evaluation from a
    published record. The tests of media and pages that need a bare session make theirs so."""
    from bidroom.store import RoomRecord, Store, create_engine

    async def write() -> None:
        engine = create_engine(database)
        try:
            record = RoomRecord(room, kind, title, config, datetime.now(UTC))
            await Store(engine).create_room(record)
        finally:
            await engine.dispose()

    # on a thread of its own: the caller may be inside a running loop (Playwright's, pytest's)
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, write()).result()


_STARTED: list[subprocess.Popen[str]] = []


@atexit.register
def _kill_left_over() -> None:
    """Nodes a failed fixture started and never stopped: killed when the tests end."""
    for process in _STARTED:
        if process.poll() is None:
            process.kill()


@dataclass
class Node:
    """One `bidroom serve` process; `.url` once it listens, `.kill()` to crash it."""

    env: dict[str, str]
    name: str = "node"
    preexec: Callable[[], None] | None = None  # e.g. die with the parent (the benchmark)
    process: subprocess.Popen[str] | None = None
    port: int = 0
    log: list[str] = field(default_factory=list)
    pump: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self) -> Node:
        env = {**NODE_SECRETS, **os.environ, "BIDROOM_HOST": "127.0.0.1", "BIDROOM_PORT": "0"}
        env.update(self.env)
        # Each node keeps its files (the built-in TSA's key, trust store) out of the checkout.
        env.setdefault("BIDROOM_VAR_DIR", tempfile.mkdtemp(prefix="bidroom-node-"))
        # A node dies with the test process, even a killed one (the parent-death signal, which
        # follows the thread that forks: so only from the main thread), and is killed at exit
        # if a failed fixture never stopped it.
        main = threading.current_thread() is threading.main_thread()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bidroom", "serve"],
            env=env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            preexec_fn=self.preexec or (die_with_parent if main else None),
        )
        _STARTED.append(self.process)
        listening = threading.Event()
        self.pump = threading.Thread(target=self._pump, args=(listening,), daemon=True)
        self.pump.start()
        if not listening.wait(STARTUP):
            self.kill()
            raise RuntimeError(f"{self.name} did not start:\n" + "\n".join(self.log[-30:]))
        self._wait_ready()
        return self

    def _pump(self, listening: threading.Event) -> None:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line.rstrip())
            if not listening.is_set() and '"listening"' in line:
                self.port = int(json.loads(line)["port"])
                listening.set()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} never became ready:\n" + "\n".join(self.log[-30:]))

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self._release()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._release()

    def _release(self) -> None:
        """Close the log pipe once its reader has seen the end (no ResourceWarning)."""
        if self.pump is not None:
            self.pump.join(10)
            if self.pump.is_alive():  # a process the node left behind holds the pipe open:
                return  # closing it under the reader would block until that process ends
        if self.process and self.process.stderr and not self.process.stderr.closed:
            self.process.stderr.close()


async def logged_lines(node: Node, marker: str, within: float = 20.0) -> list[str]:
    """The node's log lines holding ``marker``, once there is one: its stderr is read on a
    thread, so a line the node wrote before answering a request may be read after the answer."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        found = [line for line in list(node.log) if marker in line]
        if found:
            return found
        await asyncio.sleep(0.05)
    tail = "\n".join(node.log[-20:])
    raise AssertionError(f"{node.name} never logged {marker!r}:\n{tail}")


def solo(folder: Path, **env: str) -> Node:
    """One node on its own SQLite database in ``folder``, migrated and listening; ``env`` adds
    or overrides BIDROOM_* settings."""
    base = {
        "BIDROOM_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'b.db'}",
        "BIDROOM_SECRET_KEY": SECRET,
        "BIDROOM_NODE_ID": "solo",
    }
    settings = {**base, **env}
    migrated = bidroom("migrate", env=settings)
    assert migrated.returncode == 0, migrated.stderr
    return Node(settings).start()


@contextlib.asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """uvicorn in this loop on a socket bound beforehand (port 0): the URL is known at once."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    config = uvicorn.Config(
        app, lifespan="off", ws="none", log_level="warning", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()
