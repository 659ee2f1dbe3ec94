"""Trusted time in the app (bidroom.timestamps, bidroom.builtin_tsa): the built-in TSA and the
checks of tokens work in the node's worker process while the event loop keeps serving, a worker
that dies is replaced, and the TSA's key is encrypted at rest.

Off the loop, proven without timing: the test stops the worker process (SIGSTOP), asks for a
time-stamp, and meanwhile uses the same loop (a request to the app over real HTTP, a database
read). Had the TSA run on the loop's thread, nothing would answer; had it run on a thread of the
test's process, the stamp would come although the worker is stopped. Only after SIGCONT does
the stamp come, and it verifies.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from cryptography import x509
from nodes import SECRET, serving, solo
from starlette.applications import Starlette

from bidroom import audit, audit_api, builtin_tsa, timestamps
from bidroom.app import create_app
from bidroom.db import migrate
from bidroom.errors import ConfigError
from bidroom.settings import Settings, load_settings
from bidroom.store import create_engine
from bidroom.worker import Worker
from ca import primitives as p
from ca import tsa
from ca.errors import KeyFileError

DATA = "开标记录 checkpoint 7".encode()
UNIT = 2.0  # seconds: the one scalable timeout of these tests
HOLD = 15 * UNIT  # the longest a test waits for the TSA once it lets it go


async def worker_pid(worker: Executor) -> int:
    """The worker process's id (started by this, if it was not running): never the test's."""
    pid = await asyncio.get_running_loop().run_in_executor(worker, os.getpid)
    assert pid != os.getpid(), "the worker runs in the test's own process"
    return pid


@contextlib.contextmanager
def stopped(pid: int) -> Iterator[None]:
    """The process frozen (SIGSTOP) until the block ends, then let go (SIGCONT)."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def still_waiting(task: asyncio.Task[Any]) -> bool:
    """Whether ``task`` is still unfinished after a fair chance to finish."""
    done, _ = await asyncio.wait({task}, timeout=UNIT / 4)
    return not done


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
    settings: Settings


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
        yield Served(app, url, root, settings)


# the TSA off the event loop ----------------------------------------------------------------


async def test_post_tsa_answers_from_the_worker_process_while_the_loop_serves(
    served: Served,
) -> None:
    pid = await worker_pid(served.app.state.time_worker)
    async with httpx.AsyncClient(base_url=served.url, timeout=HOLD) as http:
        with stopped(pid):
            asking = asyncio.create_task(
                http.post(
                    "/tsa", content=tsa.request(DATA), headers={"content-type": tsa.QUERY_TYPE}
                )
            )
            health, ready = await http.get("/healthz"), await http.get("/readyz")  # meanwhile
            assert await still_waiting(asking), "the TSA answered without its worker process"
        answer = await asking
    assert (health.status_code, ready.status_code) == (200, 200)
    assert answer.status_code == 200 and answer.headers["content-type"] == tsa.REPLY_TYPE
    info = tsa.verify_token(tsa.token_of(answer.content), DATA, [served.root])
    assert info.tsa == served.app.state.tsa.cert.subject.rfc4514_string()


async def test_the_integrator_time_stamps_in_the_worker_process(served: Served) -> None:
    """The real integrator (audit_api.open_log, as the app opens it) over the app's database,
    its checkpoint stamped by the app's own timestamper."""
    state = served.app.state
    log = audit_api.open_log(state.store.engine, state.settings, state.timestamper)
    at = dt.datetime.now(dt.UTC)
    await state.store.record([audit.Entry(at, "cert:chair", "room.opened", "lot-1", None, {})])
    with stopped(await worker_pid(state.time_worker)):
        integrating = asyncio.create_task(log.integrate())
        before = await log.latest()  # the loop reads the database meanwhile
        async with httpx.AsyncClient(base_url=served.url, timeout=HOLD) as http:
            health = await http.get("/healthz")
        assert await still_waiting(integrating), "the checkpoint was stamped without the worker"
    signed = await asyncio.wait_for(integrating, HOLD)
    assert before is None and health.status_code == 200
    assert signed is not None and signed.size == 1 and signed.timestamp is not None
    tsa.verify_token(signed.timestamp, signed.note.encode(), [served.root])


async def test_the_external_client_verifies_in_a_worker_process(served: Served) -> None:
    """The app's POST /tsa as the external TSA of a TsaClient that checks on a worker of its
    own: the answer comes, and its check waits for that worker."""
    checker = Worker()
    try:
        client = tsa.TsaClient([f"{served.url}/tsa"], [served.root], HOLD, executor=checker)
        with stopped(await worker_pid(checker)):
            stamping = asyncio.create_task(client.stamp(DATA))
            async with httpx.AsyncClient(base_url=served.url, timeout=HOLD) as http:
                health = await http.get("/healthz")
            assert await still_waiting(stamping), "the token was checked without the worker"
        stamp = await asyncio.wait_for(stamping, HOLD)
    finally:
        checker.shutdown()
    assert health.status_code == 200
    assert tsa.verify_token(stamp.token, DATA, [served.root]) == stamp.info


async def test_a_worker_process_killed_is_replaced_and_stamping_goes_on(served: Served) -> None:
    state = served.app.state
    first = await worker_pid(state.time_worker)
    os.kill(first, signal.SIGKILL)
    stamp = await asyncio.wait_for(state.timestamper.stamp(DATA), HOLD)
    assert tsa.verify_token(stamp.token, DATA, [served.root]) == stamp.info
    second = await worker_pid(state.time_worker)
    assert second != first
    os.kill(second, signal.SIGKILL)  # and POST /tsa too
    async with httpx.AsyncClient(base_url=served.url, timeout=HOLD) as http:
        answer = await http.post(
            "/tsa", content=tsa.request(DATA), headers={"content-type": tsa.QUERY_TYPE}
        )
    assert answer.status_code == 200
    tsa.verify_token(tsa.token_of(answer.content), DATA, [served.root])


# what anyone may ask of POST /tsa ------------------------------------------------------------

# A TimeStampReq asn1crypto cannot read (found by fuzzing): it used to make a 500 and a traceback.
MALFORMED = bytes.fromhex(
    "30440201013031300d0609608648016503040201050004202d711642b726b04401627ca9fbac32f5c8530fb"
    "1903cc4db02258717921a48810809008afb9d9819b60ed60101ff"
)


def ask(http: httpx.AsyncClient, query: bytes) -> Any:
    return http.post("/tsa", content=query, headers={"content-type": tsa.QUERY_TYPE})


async def test_a_flood_of_post_tsa_never_queues_ahead_of_the_platforms_stamps(
    served: Served,
) -> None:
    """Ten requests at once while the time worker is stopped: two wait in it, the other eight
    are answered 503 tsa_busy at once, without waiting (a flood cannot push a bid's receipt
    stamp behind it); once the worker goes on, the two are answered."""
    async with httpx.AsyncClient(base_url=served.url, timeout=HOLD) as http:
        with stopped(await worker_pid(served.app.state.time_worker)):
            asking = [asyncio.create_task(ask(http, tsa.request(DATA))) for _ in range(10)]
            refused: list[Any] = []
            while len(refused) < 8:
                done, _ = await asyncio.wait(
                    [t for t in asking if t not in refused],
                    timeout=HOLD,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                assert done, "requests waited for the stopped worker instead of being refused"
                refused += done
            waiting = [t for t in asking if t not in refused]
            assert len(waiting) == 2 and await still_waiting(waiting[0])
        answered = [await t for t in waiting]
    for task in refused:
        answer = task.result()
        assert (answer.status_code, answer.json()["code"]) == (503, "tsa_busy")
        assert answer.headers["retry-after"] == "1"
    assert [a.status_code for a in answered] == [200, 200]


async def test_the_platforms_stamps_never_wait_behind_the_documents(served: Served) -> None:
    """With the document worker stopped under a task (a report rendering, say), the platform's
    own time-stamps (a bid's receipt) are still made: trusted time has its own worker."""
    state = served.app.state
    loop = asyncio.get_running_loop()
    with stopped(await worker_pid(state.document_worker)):
        rendering = loop.run_in_executor(state.document_worker, os.getpid)
        stamp = await asyncio.wait_for(state.timestamper.stamp(DATA), HOLD)
        assert await still_waiting(asyncio.ensure_future(rendering))
    assert tsa.verify_token(stamp.token, DATA, [served.root]) == stamp.info


async def test_one_network_gets_sixty_answers_a_minute(served: Served) -> None:
    """Asked one after another: 60 at once, then one a second as the bucket refills, so the
    answers before the first 429 are at most 60 plus the seconds they took."""
    answered = 0
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=served.url, timeout=HOLD) as http:
        for _ in range(600):
            answer = await ask(http, tsa.request(DATA))
            if answer.status_code != 200:
                break
            answered += 1
    took = time.monotonic() - started
    assert (answer.status_code, answer.json()["code"]) == (429, "tsa_rate_limited")
    assert int(answer.headers["retry-after"]) >= 1
    assert 60 <= answered <= 60 + took + 1


async def test_a_request_the_parser_chokes_on_is_a_rejection_not_a_500(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=HOLD) as http:
        answer = await ask(http, MALFORMED)
    assert answer.status_code == 200 and answer.headers["content-type"] == tsa.REPLY_TYPE
    status = tsa.TimeStampResp.load(answer.content)["status"]
    assert status["status"].native == "rejection"
    assert set(status["fail_info"].native) == {"bad_data_format"}


def children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_a_node_killed_leaves_no_worker_process_behind(tmp_path: Path) -> None:
    """`bidroom serve` killed with -9 after it has time-stamped: its worker process (and the
    helper spawn starts with it) end too instead of living on as orphans."""
    node = solo(tmp_path)
    try:
        async with httpx.AsyncClient(base_url=node.url, timeout=HOLD) as http:
            answer = await http.post(
                "/tsa", content=tsa.request(DATA), headers={"content-type": tsa.QUERY_TYPE}
            )
        assert answer.status_code == 200
        assert node.process is not None
        spawned = children(node.process.pid)
        assert spawned, "the node started no worker process"
    finally:
        node.kill()
    for _ in range(int(HOLD / 0.1)):
        if not any(alive(pid) for pid in spawned):
            break
        await asyncio.sleep(0.1)
    assert [pid for pid in spawned if alive(pid)] == [], "the worker outlived its node"


async def test_stamps_asked_at_once_all_verify(served: Served) -> None:
    """Two dozen stamps at once through the worker: every token whole, over its own data,
    with its own serial."""
    stamper = served.app.state.timestamper
    stamps = await asyncio.gather(*(stamper.stamp(DATA + bytes([i])) for i in range(24)))
    for i, stamp in enumerate(stamps):
        assert tsa.verify_token(stamp.token, DATA + bytes([i]), [served.root]) == stamp.info
    assert len({stamp.info.serial for stamp in stamps}) == len(stamps)


async def test_the_tsa_answers_on_several_threads_at_once(served: Served) -> None:
    """A command's stamper (no worker process) on four threads at once: the TSA shares no
    half-parsed asn1crypto object between threads."""
    password = timestamps.key_password(served.settings)
    where = builtin_tsa.BuiltinTsa(str(served.settings.tsa_folder), password)
    with ThreadPoolExecutor(4) as threads:
        stamper = builtin_tsa.BuiltinStamper(where, served.app.state.tsa.cert, served.root, threads)
        stamps = await asyncio.gather(*(stamper.stamp(DATA + bytes([i])) for i in range(24)))
    for i, stamp in enumerate(stamps):
        assert tsa.verify_token(stamp.token, DATA + bytes([i]), [served.root]) == stamp.info
    assert len({stamp.info.serial for stamp in stamps}) == len(stamps)


# the key at rest ---------------------------------------------------------------------------


def key_file(settings: Settings) -> Path:
    return settings.tsa_folder / builtin_tsa.KEY_FILE


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
    authority, _ = builtin_tsa.builtin(
        settings.tsa_folder, dt.datetime.now(dt.UTC), timestamps.key_password(settings)
    )
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
        p.load_private_key((var / "tsa" / builtin_tsa.KEY_FILE).read_bytes())


def test_another_tsa_secret_cannot_open_the_tsa_and_says_what_to_do(tmp_path: Path) -> None:
    timestamps.open_timestamping(settings_in(tmp_path))
    # the session key is not the TSA's: a new one leaves the TSA as it was
    new_session_key = load_settings(secret_key="another-session-" + "z" * 40).secret_key
    timestamps.open_timestamping(
        settings_in(tmp_path).model_copy(update={"secret_key": new_session_key})
    )
    rotated = settings_in(tmp_path).model_copy(
        update={"tsa_secret": load_settings(tsa_secret="another-secret-" + "y" * 40).tsa_secret}
    )
    with pytest.raises(ConfigError) as refused:
        timestamps.open_timestamping(rotated)
    assert "BIDROOM_TSA_SECRET" in refused.value.message
    assert "root.pem verifies the old tokens" in refused.value.message


def test_without_a_tsa_secret_the_builtin_tsa_is_refused(tmp_path: Path) -> None:
    bare = settings_in(tmp_path).model_copy(update={"tsa_secret": None})
    with pytest.raises(ConfigError) as refused:
        timestamps.open_timestamping(bare)
    assert "BIDROOM_TSA_SECRET" in refused.value.message
    assert not (tmp_path / "var" / "tsa").exists()
