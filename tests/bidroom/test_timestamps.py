"""Trusted time in the app (bidroom.timestamps): the built-in TSA works on a worker thread while
the event loop keeps serving, and its key is encrypted at rest.

Off the loop, proven without timing: a ``Gate`` stands where the TSA must pass (its clock while
it answers; the roots a verifier trusts while it checks) and holds it there. The test then uses
the same loop (a request to the app over real HTTP, a database read) and only then lets the TSA
go. Had the TSA run on the loop's thread, the gate refuses at once and the test fails saying so;
the gate also records the threads, and none may be the loop's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import httpx2 as httpx
import pytest
from cryptography import x509
from nodes import SECRET, serving, solo
from starlette.applications import Starlette

from bidroom import audit, audit_api, timestamps
from bidroom.app import create_app
from bidroom.db import migrate
from bidroom.errors import ConfigError
from bidroom.settings import Settings, load_settings
from bidroom.store import create_engine
from ca import primitives as p
from ca import tsa
from ca.errors import KeyFileError

DATA = "开标记录 checkpoint 7".encode()
UNIT = 2.0  # seconds: the one scalable timeout of these tests
HOLD = 15 * UNIT  # the longest a gate holds the TSA before the test gives up


class Gate:
    """Where the TSA must pass: it records the thread and holds the TSA until released.

    On the event loop's own thread it does not hold (that would freeze the test): it records
    the fault, opens, and raises, so the request or stamp fails naming it."""

    def __init__(self, loop_thread: int):
        self.loop_thread = loop_thread
        self.entered, self.released = threading.Event(), threading.Event()
        self.passes: list[tuple[str, int]] = []

    def hold(self, what: str) -> None:
        self.passes.append((what, threading.get_ident()))
        self.entered.set()
        if threading.get_ident() == self.loop_thread:
            raise AssertionError(f"the TSA's {what} ran on the event loop's thread")
        if not self.released.wait(HOLD):
            raise AssertionError(f"the TSA's {what} was never let go")

    def clock(self) -> dt.datetime:
        """The TSA's clock: read once per answer, after the request is accepted."""
        self.hold("answer")
        return dt.datetime.now(dt.UTC)

    async def reached(self) -> None:
        """Until the TSA stands at the gate (waited for on a thread, not on the loop)."""
        assert await asyncio.to_thread(self.entered.wait, HOLD), "the TSA never came"

    def on_the_loop(self) -> list[str]:
        return [what for what, thread in self.passes if thread == self.loop_thread]


class GatedRoots(Sequence[x509.Certificate]):
    """The roots a verifier trusts: reading them is part of checking a token."""

    def __init__(self, gate: Gate, roots: Sequence[x509.Certificate]):
        self.gate, self.roots = gate, list(roots)

    @overload
    def __getitem__(self, index: int) -> x509.Certificate: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[x509.Certificate]: ...
    def __getitem__(self, index: Any) -> Any:
        return self.roots[index]

    def __len__(self) -> int:
        return len(self.roots)

    def __iter__(self) -> Iterator[x509.Certificate]:
        self.gate.hold("verification")
        return iter(self.roots)


def settings_in(folder: Path, **overrides: Any) -> Settings:
    return load_settings(
        database_url=f"sqlite+aiosqlite:///{folder / 'b.db'}",
        secret_key=SECRET,
        var_dir=folder / "var",
        **overrides,
    )


@dataclass
class Served:
    app: Starlette
    url: str
    root: x509.Certificate  # the built-in TSA's root (var/tsa/root.pem)

    def gated(self, gate: Gate) -> tsa.TimeStampAuthority:
        """The app's own TSA (its certificate and key) reading the gate as its clock."""
        own: tsa.TimeStampAuthority = self.app.state.tsa
        return tsa.TimeStampAuthority(own.cert, own.key, own.chain, clock=gate.clock)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """The whole app, its lifespan run, served by uvicorn in this test's loop on port 0. Its
    own integrator is slowed to once an hour: the tests integrate when they choose."""
    settings = settings_in(tmp_path, audit_seconds=3600.0)
    engine = create_engine(settings.database_url)
    await migrate(engine)
    await engine.dispose()
    app = create_app(settings)
    async with app.router.lifespan_context(app), serving(app) as url:
        root = x509.load_pem_x509_certificate((settings.tsa_folder / "root.pem").read_bytes())
        yield Served(app, url, root)


def loop_thread() -> int:
    return threading.get_ident()  # called from a coroutine: the loop's thread


# the TSA off the event loop ----------------------------------------------------------------


async def test_post_tsa_answers_on_a_worker_thread_while_the_loop_serves(served: Served) -> None:
    gate = Gate(loop_thread())
    served.app.state.tsa = served.gated(gate)
    async with httpx.AsyncClient(base_url=served.url, timeout=HOLD) as http:
        asking = asyncio.create_task(
            http.post("/tsa", content=tsa.request(DATA), headers={"content-type": tsa.QUERY_TYPE})
        )
        await gate.reached()
        health, ready = await http.get("/healthz"), await http.get("/readyz")  # meanwhile
        gate.released.set()
        answer = await asking
    assert gate.on_the_loop() == []
    assert (health.status_code, ready.status_code) == (200, 200)
    assert answer.status_code == 200 and answer.headers["content-type"] == tsa.REPLY_TYPE
    info = tsa.verify_token(tsa.token_of(answer.content), DATA, [served.root])
    assert info.tsa == served.app.state.tsa.cert.subject.rfc4514_string()


async def test_the_integrator_time_stamps_on_a_worker_thread(served: Served) -> None:
    """The real integrator (audit_api.open_log, as the app opens it) over the app's database,
    its checkpoint stamped by the built-in TSA through a LocalStamper."""
    gate = Gate(loop_thread())
    state = served.app.state
    stamper = tsa.LocalStamper(served.gated(gate), GatedRoots(gate, [served.root]))
    log = audit_api.open_log(state.store.engine, state.settings, stamper)
    at = dt.datetime.now(dt.UTC)
    await state.store.record([audit.Entry(at, "cert:chair", "room.opened", "lot-1", None, {})])
    integrating = asyncio.create_task(log.integrate())
    await gate.reached()
    before = await log.latest()  # the loop reads the database meanwhile
    async with httpx.AsyncClient(base_url=served.url, timeout=HOLD) as http:
        health = await http.get("/healthz")
    gate.released.set()
    signed = await integrating
    assert gate.on_the_loop() == []
    assert {what for what, _ in gate.passes} == {"answer", "verification"}
    assert before is None and health.status_code == 200
    assert signed is not None and signed.size == 1 and signed.timestamp is not None
    tsa.verify_token(signed.timestamp, signed.note.encode(), [served.root])


async def test_the_external_client_verifies_on_a_worker_thread(served: Served) -> None:
    """The app's POST /tsa as the external TSA of a TsaClient that trusts its root."""
    gate = Gate(loop_thread())
    client = tsa.TsaClient([f"{served.url}/tsa"], GatedRoots(gate, [served.root]), HOLD)
    stamping = asyncio.create_task(client.stamp(DATA))
    await gate.reached()
    async with httpx.AsyncClient(base_url=served.url, timeout=HOLD) as http:
        health = await http.get("/healthz")
    gate.released.set()
    stamp = await stamping
    assert gate.on_the_loop() == [] and health.status_code == 200
    assert tsa.verify_token(stamp.token, DATA, [served.root]) == stamp.info


async def test_stamps_made_on_several_threads_at_once_all_verify(served: Served) -> None:
    """The app's TSA answering on four threads at once: every token whole, over its own data,
    with its own serial (the TSA shares no half-parsed asn1crypto object between threads)."""
    with ThreadPoolExecutor(4) as threads:
        stamper = tsa.LocalStamper(served.app.state.tsa, [served.root], threads)
        stamps = await asyncio.gather(*(stamper.stamp(DATA + bytes([i])) for i in range(24)))
    for i, stamp in enumerate(stamps):
        assert tsa.verify_token(stamp.token, DATA + bytes([i]), [served.root]) == stamp.info
    assert len({stamp.info.serial for stamp in stamps}) == len(stamps)


# the key at rest ---------------------------------------------------------------------------


def key_file(settings: Settings) -> Path:
    return settings.tsa_folder / timestamps.KEY_FILE


async def test_a_new_tsa_key_is_private_and_encrypted_and_the_tsa_stamps(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    authority, stamper = timestamps.open_timestamping(settings)
    path = key_file(settings)
    assert path.stat().st_mode & 0o777 == 0o600
    pem = path.read_bytes()
    assert b"PRIVATE KEY" in pem and not pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    with pytest.raises(KeyFileError):
        p.load_private_key(pem)  # without the password: refused
    with pytest.raises(KeyFileError):
        p.load_private_key(pem, b"not the password")
    key = p.load_private_key(pem, timestamps.key_password(settings))
    assert authority is not None and p.public_der(key.public_key()) == p.public_der(
        authority.cert.public_key()  # type: ignore[arg-type]
    )
    stamp = await stamper.stamp(DATA)
    root = x509.load_pem_x509_certificate((settings.tsa_folder / "root.pem").read_bytes())
    assert tsa.verify_token(stamp.token, DATA, [root]) == stamp.info


def plaintext_tsa(settings: Settings) -> bytes:
    """A TSA folder as an older bidroom left it: the key unencrypted (mode 0600)."""
    authority, _ = timestamps.open_timestamping(settings)
    assert authority is not None
    path = key_file(settings)
    path.unlink()
    plain = p.dump_private_key(authority.key)
    path.write_bytes(plain)
    path.chmod(0o600)
    return plain


async def test_a_plaintext_key_left_by_an_older_version_loads_and_is_encrypted(
    tmp_path: Path,
) -> None:
    settings = settings_in(tmp_path)
    plain = plaintext_tsa(settings)
    authority, stamper = timestamps.open_timestamping(settings)
    pem = key_file(settings).read_bytes()
    assert pem != plain and key_file(settings).stat().st_mode & 0o777 == 0o600
    with pytest.raises(KeyFileError):
        p.load_private_key(pem)
    assert p.load_private_key(pem, timestamps.key_password(settings)).private_numbers() == (
        p.load_private_key(plain).private_numbers()  # type: ignore[union-attr]
    )
    assert (await stamper.stamp(DATA)).info.tsa == authority.cert.subject.rfc4514_string()  # type: ignore[union-attr]
    assert [f.name for f in settings.tsa_folder.iterdir() if f.name.startswith(".")] == []


async def test_a_deployed_node_with_a_plaintext_key_starts_and_stamps(tmp_path: Path) -> None:
    """`bidroom serve` on a var folder from before the key was encrypted."""
    var = tmp_path / "var"
    plaintext_tsa(settings_in(tmp_path))
    node = solo(tmp_path, BIDROOM_VAR_DIR=str(var))
    try:
        root = x509.load_pem_x509_certificate((var / "tsa" / "root.pem").read_bytes())
        stamp = await tsa.TsaClient([f"{node.url}/tsa"], [root], UNIT * 5).stamp(DATA)
    finally:
        node.stop()
    assert tsa.verify_token(stamp.token, DATA, [root]) == stamp.info
    with pytest.raises(KeyFileError):
        p.load_private_key((var / "tsa" / timestamps.KEY_FILE).read_bytes())


def test_another_secret_key_cannot_open_the_tsa_and_says_what_to_do(tmp_path: Path) -> None:
    timestamps.open_timestamping(settings_in(tmp_path))
    rotated = settings_in(tmp_path).model_copy(
        update={"secret_key": load_settings(secret_key="another-secret-" + "y" * 40).secret_key}
    )
    with pytest.raises(ConfigError) as refused:
        timestamps.open_timestamping(rotated)
    assert "BIDROOM_SECRET_KEY" in refused.value.message
    assert "root.pem verifies the old tokens" in refused.value.message


def test_without_a_secret_key_the_builtin_tsa_is_refused(tmp_path: Path) -> None:
    bare = settings_in(tmp_path).model_copy(update={"secret_key": None})
    with pytest.raises(ConfigError) as refused:
        timestamps.open_timestamping(bare)
    assert "BIDROOM_SECRET_KEY" in refused.value.message
    assert not (tmp_path / "var" / "tsa").exists()
