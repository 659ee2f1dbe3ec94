"""What the command line leaves on disk and where the demo listens: the SQLite database (and its
-wal/-shm) readable by its owner only whatever the umask, and a demo that hands out private keys
refusing a network address unless forced."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

from nodes import SECRET


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A bidroom command under umask 000 (nothing the process makes is private by accident)."""
    return subprocess.run(
        [sys.executable, "-m", "bidroom", *args],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("BIDROOM_")}, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=lambda: os.umask(0),
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_migrate_creates_the_database_and_its_folder_for_the_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "var" / "bidroom.db"
    env = {"BIDROOM_DATABASE_URL": f"sqlite+aiosqlite:///{database}", "BIDROOM_SECRET_KEY": SECRET}
    done = run("migrate", env=env)
    assert done.returncode == 0, done.stderr
    assert (mode(database.parent), mode(database)) == (0o700, 0o600)
    old = os.umask(0)
    try:  # SQLite gives the log's -wal and -shm the database file's mode
        with sqlite3.connect(database) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE probe (x)")
            assert mode(Path(f"{database}-wal")) == mode(Path(f"{database}-shm")) == 0o600
    finally:
        os.umask(old)


def test_migrate_makes_an_existing_world_readable_database_private(tmp_path: Path) -> None:
    database = tmp_path / "b.db"
    database.touch(mode=0o644)
    database.chmod(0o644)
    env = {"BIDROOM_DATABASE_URL": f"sqlite+aiosqlite:///{database}", "BIDROOM_SECRET_KEY": SECRET}
    assert run("migrate", env=env).returncode == 0
    assert mode(database) == 0o600


def test_the_demo_refuses_a_network_address_unless_forced(tmp_path: Path) -> None:
    var = tmp_path / "var"
    for host in ("0.0.0.0", "192.0.2.1", "::", "demo.example"):
        refused = run("demo", "--host", host, "--port", "0", "--var", str(var), env={})
        assert refused.returncode == 2
        [line] = refused.stderr.strip().splitlines()
        assert "private key" in line and "--i-know-this-serves-private-keys" in line, line
        assert not var.exists()  # refused before anything was made
    # forced: the warning, then the demo goes on (here to an address this host lacks)
    forced = run(
        "demo",
        *("--host", "192.0.2.1", "--port", "0", "--var", str(var)),
        "--i-know-this-serves-private-keys",
        env={},
    )
    assert "WARNING" in forced.stderr and "PRIVATE KEY" in forced.stderr
    assert "cannot listen on 192.0.2.1" in forced.stderr and forced.returncode == 2
