"""`bidroom bid upload` (a tus client) and `bidroom bid withdraw` against a real `bidroom serve`.

One node for the module: a trust store and people from tendering.make_world, every person
granted their role in the registry before the node starts, one published tender with a roomy
lot 1 and a tiny lot 2 (1 KiB), and session tokens minted with the node's secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from cryptography import x509
from netproxy import NetProxy
from nodes import SECRET, Node, bidroom
from tendering import Person, World, bid_archive, key_signature, lot_body, make_world, seal

from bidroom import receipts, tokens, tus_client
from bidroom.db import migrate
from bidroom.store import Store, create_engine
from ca import primitives as p

TUS = {"Tus-Resumable": "1.0.0"}
COMMAND = (sys.executable, "-m", "bidroom", "bid", "upload")
SMALL = 1024  # lot 2's max_bid_bytes: smaller than any sealed bid


@dataclass
class Platform:
    node: Node
    world: World
    db: Path
    var: Path
    lots: dict[str, dict[str, Any]]  # by lot number

    def token(self, name: str) -> str:
        who = self.world.people[name]
        bound = tokens.bound(who.cert)  # as certificate login binds it: they sign actions
        identity = tokens.Identity(who.subject, who.name, (who.role,), None, who.name, bound)
        return tokens.mint(identity, SECRET, datetime.now(UTC), timedelta(hours=2))

    def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(name)}"}

    def uploads(self, lot: str, owner: str) -> list[tuple[str, str]]:
        with sqlite3.connect(self.db) as db:
            rows = db.execute(
                "select id, status from upload where lot_id = ? and owner = ?", (lot, owner)
            ).fetchall()
        return [(str(i), str(s)) for i, s in rows]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    folder = tmp_path_factory.mktemp("upload")
    world = make_world(folder / "trust")
    db = folder / "b.db"
    url = f"sqlite+aiosqlite:///{db}"

    async def prepare() -> None:
        engine = create_engine(url)
        await migrate(engine)
        store = Store(engine)
        for person in world.people.values():
            await store.grant(person.subject, person.name, [person.role], datetime.now(UTC))
        await engine.dispose()

    asyncio.run(prepare())
    env = {
        "BIDROOM_DATABASE_URL": url,
        "BIDROOM_SECRET_KEY": SECRET,
        "BIDROOM_TRUST_DIR": str(world.trust),
        "BIDROOM_MIN_BID_DAYS": "0",
        "BIDROOM_VAR_DIR": str(folder / "var"),
    }
    node = Node(env).start()
    try:
        platform = Platform(node, world, db, folder / "var", {})
        platform.lots = _publish(platform)
        yield platform
    finally:
        node.stop()


def _publish(platform: Platform) -> dict[str, dict[str, Any]]:
    custodians = ("代理机构", "公证处", "平台运营")
    deadline = (datetime.now(UTC) + timedelta(minutes=30)).replace(microsecond=0).isoformat()
    body = {
        "number": "ZJ-ZS-2026-0418",
        "title": "六横岛环卫一体化服务项目",
        "lots": [
            lot_body(platform.world, custodians, deadline=deadline),
            lot_body(
                platform.world,
                custodians,
                number="2",
                title="第2标段",
                deadline=deadline,
                max_bid_bytes=SMALL,
            ),
        ],
    }
    chair = platform.headers("王敏")
    made = httpx.post(platform.node.url + "/api/tenders", json=body, headers=chair)
    assert made.status_code == 201, made.text
    tender = made.json()["tender"]["id"]
    done = httpx.post(f"{platform.node.url}/api/tenders/{tender}/publish", headers=chair)
    assert done.status_code == 200, done.text
    signed = {}
    for lot in done.json()["tender"]["lots"]:
        path = f"{platform.node.url}/api/lots/{lot['id']}/key-signature"
        body = key_signature(lot, platform.world.people["王敏"])
        answer = httpx.post(path, json=body, headers=chair)
        assert answer.status_code == 200, answer.text
        signed[lot["number"]] = answer.json()["lot"]
    return signed


def _envelope(folder: Path, who: Person, lot: dict[str, Any], name: str = "bid.env") -> Path:
    path = folder / name
    path.write_bytes(seal(who, lot, bid_archive(lot["id"], "3650000.00")))
    return path


def _upload(
    platform: Platform, *args: str, token: str | None = None, env: dict[str, str] | None = None
) -> Any:
    env = {**({"BIDROOM_TOKEN": token} if token else {}), **(env or {})}
    return bidroom("bid", "upload", *args, "--url", platform.node.url, env=env)


def test_a_sealed_bid_uploads_and_its_receipt_verifies(platform: Platform, tmp_path: Path) -> None:
    lot = platform.lots["1"]
    path = _envelope(tmp_path, platform.world.people["海洁"], lot)
    done = _upload(
        platform,
        str(path),
        "--lot",
        lot["id"],
        "--chunk-mib",
        "0.002",
        token=platform.token("海洁"),
    )
    assert done.returncode == 0, done.stderr
    receipt = json.loads((tmp_path / "bid.env.receipt.json").read_text())
    assert not (tmp_path / "bid.env.upload.json").exists(), "the state file goes once decided"
    assert receipt["received_at"] in done.stdout
    assert receipt["envelope_sha256"] in done.stdout
    assert receipt["envelope_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()

    mine = httpx.get(
        f"{platform.node.url}/api/lots/{lot['id']}/bids/mine", headers=platform.headers("海洁")
    ).json()["bids"][0]
    assert mine["status"] == "current" and mine["receipt"] == receipt
    assert mine["size"] == path.stat().st_size

    checkpoint = httpx.get(platform.node.url + "/api/audit/checkpoint").json()
    roots = x509.load_pem_x509_certificates((platform.var / "tsa" / "root.pem").read_bytes())
    proven = receipts.check(receipt["audit"], checkpoint["verifier_key"], roots)
    assert proven.entry.action == "bid.received"
    assert proven.entry.objects["envelope"] == receipt["envelope_sha256"]
    [(_, status)] = platform.uploads(lot["id"], platform.world.people["海洁"].subject)
    assert status == "accepted"


def test_an_interrupted_upload_resumes_from_the_servers_offset(
    platform: Platform, tmp_path: Path
) -> None:
    """The first run was cut off after 3000 bytes: the second resumes the same upload."""
    lot = platform.lots["1"]
    who = platform.world.people["蓝天"]
    path = _envelope(tmp_path, who, lot)
    data = path.read_bytes()
    base, headers = platform.node.url, {**platform.headers("蓝天"), **TUS}
    assert httpx.post(f"{base}/api/lots/{lot['id']}/registrations", headers=headers).is_success
    created = httpx.post(
        f"{base}/api/lots/{lot['id']}/uploads",
        headers={**headers, "Upload-Length": str(len(data))},
    )
    url = base + created.headers["location"]
    first = httpx.patch(
        url,
        content=data[:3000],
        headers={
            **headers,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert first.status_code == 204 and first.headers["upload-offset"] == "3000"
    state = {
        "url": url,
        "sha256": hashlib.sha256(data).hexdigest(),
        "lot": lot["id"],
        "length": len(data),
    }
    (tmp_path / "bid.env.upload.json").write_text(json.dumps(state))
    token_file = tmp_path / "token"
    token_file.write_text(platform.token("蓝天") + "\n")

    done = _upload(
        platform,
        str(path),
        "--lot",
        lot["id"],
        "--token-file",
        str(token_file),
        "--receipt",
        str(tmp_path / "r.json"),
    )
    assert done.returncode == 0, done.stderr
    assert f"resuming the upload at byte 3000 of {len(data)}" in done.stderr
    assert platform.uploads(lot["id"], who.subject) == [(url.rsplit("/", 1)[1], "accepted")]
    assert json.loads((tmp_path / "r.json").read_text())["envelope_sha256"] == state["sha256"]


def test_a_killed_upload_resumes_when_run_again(platform: Platform, tmp_path: Path) -> None:
    """A real interruption: the client is killed mid-upload; the next run goes on from there."""
    lot = platform.lots["1"]
    who = platform.world.people["蓝天"]
    plain = io.BytesIO()
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr(
            "bid.json", zipfile.ZipFile(io.BytesIO(bid_archive(lot["id"], "1.00"))).read("bid.json")
        )
        archive.writestr("图纸.bin", os.urandom(8 << 20))
    path = tmp_path / "big.env"
    path.write_bytes(seal(who, lot, plain.getvalue()))
    token = platform.token("蓝天")
    state = tmp_path / "big.env.upload.json"
    first = subprocess.Popen(
        [
            *COMMAND,
            str(path),
            "--lot",
            lot["id"],
            "--url",
            platform.node.url,
            "--chunk-mib",
            "0.016",
        ],
        env={**os.environ, "BIDROOM_TOKEN": token},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        offset = 0
        deadline = time.monotonic() + 60
        while offset == 0 and time.monotonic() < deadline and first.poll() is None:
            if state.exists():
                url = json.loads(state.read_text())["url"]
                head = httpx.head(url, headers={**platform.headers("蓝天"), **TUS})
                offset = int(head.headers.get("upload-offset", 0))
            time.sleep(0.005)
    finally:
        first.kill()
        first.wait(10)
    assert 0 < offset < path.stat().st_size, "killed mid-upload"
    done = _upload(platform, str(path), "--lot", lot["id"], token=token)
    assert done.returncode == 0, done.stderr
    assert "resuming the upload at byte" in done.stderr
    assert not state.exists()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    found = [u for u in platform.uploads(lot["id"], who.subject) if u[0] == url.rsplit("/", 1)[1]]
    assert found == [(url.rsplit("/", 1)[1], "accepted")]
    assert digest in done.stdout


class Flaky(httpx.BaseTransport):
    """A link that loses the answer to PATCH number ``lose`` (the server got the bytes) and
    delivers PATCH number ``replay`` twice (the second copy meets 409 offset_mismatch)."""

    def __init__(self, lose: int, replay: int) -> None:
        self.inner = httpx.HTTPTransport()
        self.lose, self.replay = lose, replay
        self.patches = 0
        self.seen: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request.method)
        if request.method != "PATCH":
            return self.inner.handle_request(request)
        self.patches += 1
        body = request.read()
        if self.patches == self.replay:
            copy = httpx.Request(request.method, request.url, headers=request.headers, content=body)
            first = self.inner.handle_request(copy)
            first.read()
            first.close()
        answer = self.inner.handle_request(
            httpx.Request(request.method, request.url, headers=request.headers, content=body)
        )
        if self.patches == self.lose:
            answer.read()
            answer.close()
            raise httpx.ReadError("connection reset by peer")
        return answer

    def close(self) -> None:
        self.inner.close()


def test_a_lost_answer_and_an_offset_mismatch_resync_with_head(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tus_client, "BACKOFF", (0.01, 0.01))
    lot = platform.lots["1"]
    path = _envelope(tmp_path, platform.world.people["绿源"], lot)
    link = Flaky(lose=2, replay=4)
    said: list[str] = []
    upload = tus_client.Upload(
        platform.node.url,
        lot["id"],
        path,
        platform.token("绿源"),
        chunk=1024,
        say=said.append,
        transport=link,
    )
    outcome = upload.run()
    assert outcome["status"] == "accepted"
    assert outcome["bid"]["size"] == path.stat().st_size
    assert [m for m in link.seen if m != "PATCH"] == [
        "OPTIONS",
        "POST",
        "POST",
        "HEAD",
        "HEAD",
        "GET",
    ]
    assert len(said) == 2 and "Upload-Offset is not the server's" in said[1]
    assert len(platform.uploads(lot["id"], platform.world.people["绿源"].subject)) == 1


def test_a_too_large_envelope_is_refused_before_anything_is_sent(
    platform: Platform, tmp_path: Path
) -> None:
    lot = platform.lots["2"]
    path = _envelope(tmp_path, platform.world.people["海洁"], lot)
    done = _upload(platform, str(path), "--lot", lot["id"], token=platform.token("海洁"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"bidroom: the envelope is {path.stat().st_size} bytes; this lot takes at most {SMALL} "
        "(upload_too_large)"
    ]
    assert platform.uploads(lot["id"], platform.world.people["海洁"].subject) == []
    assert not (tmp_path / "bid.env.upload.json").exists()


def test_a_tampered_envelope_gets_the_servers_code(platform: Platform, tmp_path: Path) -> None:
    lot = platform.lots["1"]
    path = _envelope(tmp_path, platform.world.people["绿源"], lot)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    done = _upload(platform, str(path), "--lot", lot["id"], token=platform.token("绿源"))
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("bidroom: ") and line.endswith(")")
    assert line.rsplit("(", 1)[1].startswith("envelope_"), line
    assert not (tmp_path / "bid.env.upload.json").exists()
    assert not (tmp_path / "bid.env.receipt.json").exists()


def test_no_token_is_one_line(platform: Platform, tmp_path: Path) -> None:
    path = tmp_path / "bid.env"
    path.write_bytes(b"x")
    done = bidroom("bid", "upload", str(path), "--lot", "x", "--url", platform.node.url, env={})
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "bidroom: give your session token in BIDROOM_TOKEN or --token-file FILE (token_missing)"
    )


def test_withdraw_signs_and_withdraws_the_current_bid(platform: Platform, tmp_path: Path) -> None:
    lot = platform.lots["1"]
    who = platform.world.people["海洁"]
    path = _envelope(tmp_path, who, lot, "again.env")
    token = platform.token("海洁")
    assert _upload(platform, str(path), "--lot", lot["id"], token=token).returncode == 0
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    key.write_bytes(p.dump_private_key(who.key))
    cert.write_bytes(p.certificate_pem(who.cert))
    args = ("bid", "withdraw", "--lot", lot["id"], "--url", platform.node.url, "--key", str(key))
    done = bidroom(*args, "--cert", str(cert), env={"BIDROOM_TOKEN": token})
    assert done.returncode == 0, done.stderr
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest in done.stdout and "withdrawn" in done.stdout
    mine = httpx.get(
        f"{platform.node.url}/api/lots/{lot['id']}/bids/mine", headers=platform.headers("海洁")
    ).json()["bids"]
    assert mine[0]["envelope_sha256"] == digest and mine[0]["status"] == "withdrawn"
    again = bidroom(*args, "--cert", str(cert), env={"BIDROOM_TOKEN": token})
    assert again.returncode == 2
    assert again.stderr.strip().endswith("(bid_not_found)")


# an island's link ------------------------------------------------------------------------------

LINK_UP, LINK_DOWN, LINK_LATENCY = 4e6, 8e6, 0.05  # the 2/8 Mbit/s, 150 ms, scaled up
OUTAGE = 12.0  # longer than the 7.5 s the client used to wait in all
BIG = 48 << 20  # a 50 MB bid: the plaintext's random drawings, under lot 1's 50 MiB


def _big_envelope(folder: Path, who: Person, lot: dict[str, Any]) -> Path:
    plain = io.BytesIO()
    with zipfile.ZipFile(plain, "w") as archive:
        form = zipfile.ZipFile(io.BytesIO(bid_archive(lot["id"], "3650000.00"))).read("bid.json")
        archive.writestr("bid.json", form)
        archive.writestr("图纸.bin", os.urandom(BIG))
    path = folder / "big.env"
    path.write_bytes(seal(who, lot, plain.getvalue()))
    return path


def test_a_50_mb_upload_over_an_island_link_survives_cuts_and_a_long_outage(
    platform: Platform, tmp_path: Path
) -> None:
    """`bid upload` through a slow link (tests/netproxy.py) that is cut mid-PATCH and then
    down for 12 s, longer than the client used to wait in all: it waits (backoff), resumes
    from the server's offset and the stored bid is byte-identical.

    "0 bytes re-sent beyond acknowledged offsets", measured on the link: every PATCH starts
    exactly at the highest Upload-Offset the server had acknowledged to the client (in a HEAD
    or PATCH answer that reached the client) when the PATCH arrived; a start below it would
    re-send acknowledged bytes, a start above it would skip bytes, and a client resuming from
    its own count instead of asking HEAD would start below the server after a cut. The bytes
    the client did send twice are the ones in flight at a cut and never acknowledged (the
    server keeps whatever reached it, so those are only what the link or its socket buffers
    lost); they are printed, not bounded, since the buffers' size is the kernel's.
    """
    lot = platform.lots["1"]
    who = platform.world.people["蓝天"]
    path = _big_envelope(tmp_path, who, lot)
    size = path.stat().st_size
    link = NetProxy(up=LINK_UP, down=LINK_DOWN, latency=LINK_LATENCY).start(platform.node.port)
    try:
        run = subprocess.Popen(
            [*COMMAND, str(path), "--lot", lot["id"], "--url", link.url, "--retry-for", "120"],
            env={**os.environ, "BIDROOM_TOKEN": platform.token("蓝天")},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            link.wait(lambda: link.patch_bytes() > size // 4, timeout=120)
            assert link.cut() >= 1, "a PATCH was going"
            link.wait(lambda: link.patch_bytes() > size // 2, timeout=120)
            link.outage(OUTAGE)
            out, err = run.communicate(timeout=300)
        finally:
            if run.poll() is None:
                run.kill()
                run.communicate(10)
    finally:
        link.close()
    assert run.returncode == 0, err
    assert "trying again in" in err
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest in out
    stored = httpx.get(
        f"{platform.node.url}/api/lots/{lot['id']}/bids/mine/envelope",
        headers=platform.headers("蓝天"),
        timeout=60,
    )
    assert stored.status_code == 200
    assert hashlib.sha256(stored.content).hexdigest() == digest

    patches = link.patches()
    assert link.refused >= 1, "the outage refused the client at least once"
    assert any(p.status is None and p.delivered for p in patches), "a PATCH was cut mid-way"
    starts = link.patch_starts()
    assert all(start == acked for start, acked in starts), starts
    assert link.resent_below_ack() == 0
    sent = sum(p.sent for p in patches)
    print(
        f"\n{size} bytes in {len(patches)} PATCHes over {link.connections} connections "
        f"({link.refused} refused, {link.cuts} cuts): {sent - size} bytes sent twice, all of "
        "them in flight and unacknowledged at a cut; 0 acknowledged bytes re-sent"
    )


def test_a_link_down_for_longer_than_retry_for_gives_up_in_one_line(
    platform: Platform, tmp_path: Path
) -> None:
    """Out of patience: one line saying where it stopped and that running again resumes."""
    lot = platform.lots["1"]
    path = _envelope(tmp_path, platform.world.people["绿源"], lot)
    link = NetProxy().start(platform.node.port)
    link.outage()
    try:
        done = bidroom(
            *("bid", "upload", str(path), "--lot", lot["id"], "--url", link.url),
            *("--retry-for", "2"),
            env={"BIDROOM_TOKEN": platform.token("绿源")},
        )
    finally:
        link.close()
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"bidroom: the upload stopped at byte 0 of {path.stat().st_size}: ")
    assert "no progress for 2 s" in last and last.endswith("(upload_interrupted)")
    assert "trying again in" in done.stderr
    assert link.refused >= 2


def test_a_bad_retry_budget_in_the_environment_is_one_line(
    platform: Platform, tmp_path: Path
) -> None:
    path = _envelope(tmp_path, platform.world.people["绿源"], platform.lots["1"])
    done = _upload(
        platform,
        str(path),
        "--lot",
        platform.lots["1"]["id"],
        token=platform.token("绿源"),
        env={tus_client.RETRY_ENV: "soon"},
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"bidroom: {tus_client.RETRY_ENV} is a number of seconds, not 'soon' (usage)"
    )
