"""Throwaway Redis and PostgreSQL servers for the tests, started from the installed binaries.

Rules of this file:
- Every server listens on 127.0.0.1 only, on a free port chosen here, never on 6379 or 5432 (a
  system server may run there; the tests must not touch it).
- A missing binary is a `RuntimeError` naming the Debian package to install: tests never skip
  for want of a service.
- Startup waits at most `STARTUP_TIMEOUT` seconds and reports the server's log when it fails.
- Every process is stopped at interpreter exit, and dies with the test process even when that
  one is killed (parent-death signal), so a failed or timed-out test leaves no server behind.
- PostgreSQL refuses to run as root: as root, its files live in a private directory owned by the
  `postgres` system user (pytest's temporary directories are not reachable by that user).
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

STARTUP_TIMEOUT = 120.0  # a bound, not an aim: a busy machine starts slowly
STOP_TIMEOUT = 30.0
POSTGRES_USER = "bidroom"
POSTGRES_DATABASE = "bidroom"
_POLL_INTERVAL = 0.05
_LOG_TAIL = 4000
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
T = TypeVar("T")


@dataclass(frozen=True)
class RunAs:
    """The system user a server process runs as (PostgreSQL, when the tests run as root)."""

    name: str
    uid: int
    gid: int


class RunningService:
    """One server process started for the tests; it can be stopped, killed and restarted.

    `restart()` starts the same command again, so the server comes back on the same port and
    `url` stays valid: this is how a test restarts Redis in the middle of a room.
    """

    def __init__(
        self,
        name: str,
        url: str,
        command: Sequence[str],
        *,
        log_path: Path,
        is_ready: Callable[[], bool],
        stop_signal: signal.Signals = signal.SIGTERM,
        run_as: RunAs | None = None,
        private_dir: Path | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.log_path = log_path
        self._command = list(command)
        self._is_ready = is_ready
        self._stop_signal = stop_signal
        self._run_as = run_as
        self._private_dir = private_dir
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<RunningService {self.name} {self.url} running={self.running}>"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server and wait until it answers; raise with its log if it does not."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running at {self.url}")
        self._process = _spawn(self._command, self.log_path, self._run_as)
        _LIVE.add(self)
        self._wait_until_ready()

    def stop(self) -> None:
        """Shut the server down cleanly (SIGKILL if it takes longer than STOP_TIMEOUT)."""
        self._end(self._stop_signal)

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash would."""
        self._end(signal.SIGKILL)

    def restart(self) -> None:
        """Stop the server, then start it again on the same port."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server for good and remove the private files it owns, if any."""
        self.stop()
        _LIVE.discard(self)
        if self._private_dir is not None:
            shutil.rmtree(self._private_dir, ignore_errors=True)
            self._private_dir = None

    def read_log(self) -> str:
        """The end of the server's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log at {self.log_path}: {exc})"
        return text[-_LOG_TAIL:]

    def _end(self, sig: signal.Signals) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._process = None

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                self._process = None
                raise RuntimeError(self._failure(f"exited with status {code} while starting"))
            if self._is_ready():
                return
            time.sleep(_POLL_INTERVAL)
        self.kill()
        raise RuntimeError(self._failure(f"did not answer within {STARTUP_TIMEOUT:.0f} s"))

    def _failure(self, what: str) -> str:
        command = " ".join(self._command)
        return f"{self.name} {what}\ncommand: {command}\nlog {self.log_path}:\n{self.read_log()}"


class PostgresService(RunningService):
    """A throwaway PostgreSQL server; `create_database` hands out fresh empty databases."""

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (named at random unless given) and return its URL."""
        return create_database(self.url, name)


# -- Redis -----------------------------------------------------------------------------------


def start_redis(tmpdir: Path | str) -> RunningService:
    """Start `redis-server` on a free 127.0.0.1 port, without persistence, in `tmpdir`."""
    binary = _require_binary("redis-server", package="redis-server")
    workdir = Path(tmpdir)
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [
        binary,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(workdir),
        "--daemonize", "no",
    ]  # fmt: skip
    service = RunningService(
        "redis-server",
        f"redis://127.0.0.1:{port}/0",
        command,
        log_path=workdir / "redis.log",
        is_ready=lambda: _redis_pings(port),
    )
    service.start()
    return service


def _redis_pings(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


# -- PostgreSQL ------------------------------------------------------------------------------


def start_postgres(tmpdir: Path | str) -> PostgresService:
    """Create a cluster with `initdb`, run `postgres` on a free 127.0.0.1 port, and create the
    `bidroom` database. `url` is an SQLAlchemy async URL for that database (trust auth)."""
    bindir = find_postgres_bindir()
    run_as = _postgres_run_as()
    base, private_dir = _postgres_base_dir(Path(tmpdir), run_as)
    datadir, sockets = base / "data", base / "sockets"
    sockets.mkdir()
    if run_as is not None:
        os.chown(sockets, run_as.uid, run_as.gid)
    log_path = base / "postgres.log"
    _initdb(bindir / "initdb", datadir, log_path, run_as)
    port = free_port()
    command = [
        str(bindir / "postgres"),
        "-D", str(datadir),
        "-p", str(port),
        "-k", str(sockets),
        "-c", "listen_addresses=127.0.0.1",
        "-c", "fsync=off",
        "-c", "synchronous_commit=off",
        "-c", "full_page_writes=off",
        "-c", "max_connections=200",
    ]  # fmt: skip
    server_url = f"postgresql+asyncpg://{POSTGRES_USER}@127.0.0.1:{port}/postgres"
    service = PostgresService(
        "postgres",
        with_database(server_url, POSTGRES_DATABASE),
        command,
        log_path=log_path,
        is_ready=lambda: _postgres_answers(server_url),
        stop_signal=signal.SIGINT,  # "fast" shutdown: disconnect clients, exit at once
        run_as=run_as,
        private_dir=private_dir,
    )
    service.start()
    create_database(server_url, POSTGRES_DATABASE)
    return service


def find_postgres_bindir() -> Path:
    """The directory holding `initdb` and `postgres`: the one `initdb` on PATH comes from,
    else the highest version under /usr/lib/postgresql/*/bin."""
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path is not None:
        candidates.append(Path(os.path.realpath(on_path)).parent)
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += [Path(p) for p in sorted(versions, key=_version_key, reverse=True)]
    for bindir in candidates:
        if all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "postgres")):
            return bindir
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, postgres) not found on PATH nor under "
        "/usr/lib/postgresql/*/bin: install them with `apt-get install -y postgresql`"
    )


def _version_key(bindir: str) -> tuple[int, ...]:
    version = Path(bindir).parent.name
    return tuple(int(part) for part in re.findall(r"\d+", version))


def _postgres_run_as() -> RunAs | None:
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError(
            "PostgreSQL refuses to run as root and there is no `postgres` system user to run it "
            "as: install the Debian package `postgresql` (it creates that user) or run the "
            "tests as a non-root user"
        ) from None
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _postgres_base_dir(tmpdir: Path, run_as: RunAs | None) -> tuple[Path, Path | None]:
    """Where the cluster lives, and the private directory to remove afterwards (as root)."""
    if run_as is None:
        base = tmpdir / "postgres"
        base.mkdir(parents=True)
        return base, None
    # As root, pytest's temporary directories are root-only (0700): the postgres user could
    # not reach a data directory inside them.
    base = Path(tempfile.mkdtemp(prefix="bidroom-test-postgres-"))
    os.chown(base, run_as.uid, run_as.gid)
    return base, base


def _initdb(initdb: Path, datadir: Path, log_path: Path, run_as: RunAs | None) -> None:
    command = [
        str(initdb),
        "-D", str(datadir),
        "-U", POSTGRES_USER,
        "--auth=trust",
        "--encoding=UTF8",
        "--locale=C",
        "--no-sync",
    ]  # fmt: skip
    with log_path.open("ab") as log:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=120,
            check=False,
            **_user_kwargs(run_as, datadir.parent),
        )
    if result.returncode != 0:
        tail = log_path.read_text(errors="replace")[-_LOG_TAIL:]
        raise RuntimeError(f"initdb failed with status {result.returncode}:\n{tail}")


def _postgres_answers(server_url: str) -> bool:
    async def probe() -> bool:
        connection = await asyncpg.connect(asyncpg_dsn(server_url), timeout=2)
        try:
            return bool(await connection.fetchval("select 1") == 1)
        finally:
            await connection.close()

    try:
        return run_coroutine(probe)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):  # OSError has timeouts
        return False


# -- databases on any PostgreSQL server ------------------------------------------------------


def create_database(server_url: str, name: str | None = None) -> str:
    """Create an empty database on the server of `server_url`; return the URL naming it."""
    name = name or f"bidroom_test_{uuid.uuid4().hex[:12]}"
    quoted = _quote_identifier(name)

    async def create() -> None:
        connection = await asyncpg.connect(asyncpg_dsn(server_url), timeout=10)
        try:
            await connection.execute(f"CREATE DATABASE {quoted}")
        finally:
            await connection.close()

    run_coroutine(create)
    return with_database(server_url, name)


def drop_database(server_url: str, database_url: str) -> None:
    """Drop the database named by `database_url`, disconnecting whoever still uses it;
    `server_url` names another database of the same server to connect to meanwhile."""
    quoted = _quote_identifier(urlsplit(database_url).path.lstrip("/"))

    async def drop() -> None:
        connection = await asyncpg.connect(asyncpg_dsn(server_url), timeout=10)
        try:
            await connection.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
        finally:
            await connection.close()

    run_coroutine(drop)


def with_database(url: str, name: str) -> str:
    """`url` with its database replaced by `name`."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def asyncpg_dsn(url: str) -> str:
    """A libpq-style DSN for asyncpg from an SQLAlchemy URL (`postgresql+asyncpg://...`)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme=parts.scheme.split("+", 1)[0]))


def _quote_identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"database name {name!r} must match {_IDENTIFIER.pattern}")
    return f'"{name}"'


# -- processes, ports and the event loop -----------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_coroutine(function: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run `function()` to completion on a fresh event loop in a worker thread, so that this
    works from sync fixtures and from inside a running loop alike."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(function())).result()


def _require_binary(name: str, *, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(
            f"`{name}` not found on PATH: install it with `apt-get install -y {package}`"
        )
    return path


def _spawn(command: list[str], log_path: Path, run_as: RunAs | None) -> subprocess.Popen[bytes]:
    # The parent-death signal fires when the *thread* that forked exits: only the main thread
    # lives as long as the test process (a restart from asyncio.to_thread must not set it).
    in_main_thread = threading.current_thread() is threading.main_thread()
    # The child holds its own copy of the log descriptor, so ours can be closed at once.
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C aimed at pytest must not reach the server first
            preexec_fn=die_with_parent if in_main_thread else None,
            **_user_kwargs(run_as, log_path.parent),
        )


def _user_kwargs(run_as: RunAs | None, cwd: Path) -> dict[str, Any]:
    if run_as is None:
        return {"cwd": cwd}
    return {"cwd": cwd, "user": run_as.uid, "group": run_as.gid, "extra_groups": []}


def die_with_parent() -> None:
    """In the child: be killed when the test process dies, even by SIGKILL or os._exit (which
    pytest-timeout uses), when atexit handlers never run. Runs after the switch of user."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL))


_LIVE: set[RunningService] = set()


@atexit.register
def _stop_all() -> None:
    for service in list(_LIVE):
        service.close()
