"""Opening benchmark: from "window closed" to the sheet on every screen, against raw decryption.

    .venv/bin/python bench/opening.py --quick            # 5 bids of 2 MiB, smoke run, < 60 s
    .venv/bin/python bench/opening.py                    # 50 bids of 20 MiB (1 GiB sealed)
    .venv/bin/python bench/opening.py --bids 20 --size-mib 100 --dir /var/tmp

Everything is real, in one run:

1. A throwaway trust store (root and issuing CA, CRLs) with one USCC-bearing certificate per
   person: N bidders, the chair, a supervisor, three key custodians; a SQLite database migrated
   and every person granted their role in the registry; one `python -m bidroom serve` node
   (tests/nodes.py) with BIDROOM_MIN_BID_DAYS=0 and BIDROOM_CLOCK_SECONDS=0.2.
2. Calibration: the chair publishes a throwaway tender; one bid is sealed and uploaded to it.
   Its time sets the real tender's deadline (or --deadline-seconds does).
3. The chair publishes the real one-lot tender over HTTP (custodians 2-of-3, window 30 min).
   Every bidder seals a ZIP bid (bid.json first, distinct price, then --size-mib of random
   document) with ca.envelope.seal and uploads it by tus (4 MiB PATCHes, --parallel at a time).
4. One WebSocket per screen (the chair, a supervisor, every bidder); the bidders sign in; at
   the deadline the clock fixes the bids. Each bidder's hand-over (the data key unwrapped with
   its certificate key, sealed to the room, signed) is prepared, as each browser would, before
   the window starts; then the chair starts the window and every bidder posts it at once
   (POST /api/openings/{room}/decrypt). When the last bid is decrypted the clock closes the
   window; the chair posts /sheet as soon as its screen shows `opening.window_closed`.
5. Measured: t_closed = `opening.window_closed` arriving at the chair's screen; the sheet's time
   = the last `opening.sheet_published` arrival over all screens - t_closed (and the p50 of the
   arrivals); the POST /sheet round trip (the server's part: decrypt every bid two at a time,
   read its form, publish the rows). Peak server memory: VmHWM of the serve process (reset
   through /proc/<pid>/clear_refs just before the window, so it is the opening's own peak, if
   the kernel allows), VmRSS before the window, VmHWM over the whole run.
6. Baseline, same run, same envelopes, same page cache, the server idle: raw decryption with the
   data keys (ca.envelope.open_with_data_key to a temp file, deleted), sequentially and with two
   threads (the shell decrypts two at a time); and merely reading the bytes (cat > /dev/null).
   Dirty pages are flushed (sync) before the window and before the baseline.

Traffic stays on 127.0.0.1; the envelopes and the node's blob store are on disk under --dir
(default: the system temp dir; about 2.1 x bids x size is needed). The node dies with this
process (parent-death signal) and the whole run is bounded by --timeout (SIGALRM).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import httpx2 as httpx  # noqa: E402
import nodes  # noqa: E402  (tests/nodes.py: the same node launcher the tests use)
from client import Frame, RoomClient  # noqa: E402  (tests/client.py: the WebSocket test client)
from common import arguments, die_with_parent, pct, run_bounded, say  # noqa: E402  (bench/common.py)
from tendering import (  # noqa: E402  (tests/tendering.py: the tests' tendering world)
    KEY,
    TUS,
    Person,
    World,
    bid_form,
    grant_roles,
    make_world,
    seal_to,
    tender_body,
)

from bidroom.opening import MIN_BIDS  # noqa: E402
from ca import envelope, handoff  # noqa: E402
from ca import primitives as p  # noqa: E402

MiB = 1 << 20
CLOSED = "opening.window_closed"
SHEET = "opening.sheet_published"
CHAIR, SUPERVISOR = "王主任", "监督员"
CUSTODIANS = ("代理机构", "公证处", "平台运营")
PATCH = 4 * MiB


# ---------------------------------------------------------------------------------------------
# the world: a CA, its people, the registry (tests/tendering.make_world and grant_roles)
# ---------------------------------------------------------------------------------------------


def bidder_name(i: int) -> str:
    return f"投标人{i + 1:02d}"


def cast(bids: int) -> list[tuple[str, str]]:
    """Everyone who gets a certificate, as (name, role): nobody's is revoked."""
    people = [(CHAIR, "chair"), (SUPERVISOR, "supervisor")]
    people += [(name, "custodian") for name in CUSTODIANS]
    return people + [(bidder_name(i), "bidder") for i in range(bids)]


# ---------------------------------------------------------------------------------------------
# bids: a ZIP (bid.json first, then a random document), sealed to the lot's opening key
# ---------------------------------------------------------------------------------------------


def price_of(i: int) -> str:
    return f"{3_000_000 + i * 1234.5:.2f}"


@dataclass
class Bid:
    person: Person
    price: str
    path: Path
    digest: str = ""
    size: int = 0
    data_key: bytes = b""
    body: dict[str, Any] = field(default_factory=dict)  # the prepared hand-over


def make_bid(folder: Path, person: Person, lot: dict[str, Any], price: str, size: int) -> Bid:
    """Write the plaintext ZIP, seal it to a file next to it, delete the plaintext."""
    plain = folder / f"{person.subject[5:]}.zip"
    with zipfile.ZipFile(plain, "w", zipfile.ZIP_STORED) as archive:
        form = json.dumps(bid_form(lot["id"], price), ensure_ascii=False)
        archive.writestr("bid.json", form)
        with archive.open("技术标.bin", "w", force_zip64=size >= (1 << 31)) as doc:
            left = size
            while left:
                n = min(MiB, left)
                doc.write(os.urandom(n))
                left -= n
    sealed = folder / f"{person.subject[5:]}-{lot['id'][-8:]}.env"
    digest = hashlib.sha256()
    with plain.open("rb") as src, sealed.open("wb") as dst:
        seal_to(person, lot, src, dst)
    plain.unlink()
    with sealed.open("rb") as again:
        while chunk := again.read(MiB):
            digest.update(chunk)
    return Bid(person, price, sealed, digest.hexdigest(), sealed.stat().st_size)


# ---------------------------------------------------------------------------------------------
# HTTP: tenders, tus uploads
# ---------------------------------------------------------------------------------------------


def check(answer: httpx.Response, *expected: int) -> httpx.Response:
    if answer.status_code not in expected:
        raise RuntimeError(
            f"{answer.request.method} {answer.request.url.path}: HTTP {answer.status_code} "
            f"{answer.text[:400]}"
        )
    return answer


async def publish(
    http: httpx.AsyncClient, world: World, number: str, deadline: datetime, limit: int
) -> dict[str, Any]:
    """The chair creates and publishes a one-lot tender; the published lot."""
    chair = world.people[CHAIR]
    body = {
        **tender_body(
            world, CUSTODIANS, deadline=deadline.isoformat(), max_bid_bytes=limit, window_minutes=30
        ),
        "number": number,
        "title": "六横岛环卫一体化服务项目（基准测试）",
    }
    made = check(await http.post("/api/tenders", json=body, headers=chair.headers()), 201)
    tender = made.json()["tender"]
    done = await http.post(f"/api/tenders/{tender['id']}/publish", headers=chair.headers())
    published: dict[str, Any] = check(done, 200).json()["tender"]["lots"][0]
    return published


RETRIES: list[str] = []  # completions retried: an audit integration that failed (see below)


async def upload(http: httpx.AsyncClient, lot: dict[str, Any], bid: Bid) -> None:
    """Register, then tus: create, PATCH 4 MiB at a time; the last PATCH is the acceptance.

    The last PATCH can fail although the bytes are all in (bidroom.audit_log.AuditLog.integrate
    is not safe against a concurrent call: `audit_hole` 422 or an IntegrityError 500 when two
    bids complete at once). The upload then stays `uploading` at its full length; an empty
    PATCH at that offset completes it again. Each such retry is counted and reported.
    """
    who = bid.person.headers()
    check(await http.post(f"/api/lots/{lot['id']}/registrations", headers=who), 200, 201)
    created = await http.post(
        f"/api/lots/{lot['id']}/uploads",
        headers={**who, **TUS, "Upload-Length": str(bid.size)},
    )
    url = check(created, 201).headers["location"]
    patch = {**who, **TUS, "Content-Type": "application/offset+octet-stream"}
    offset = 0
    with bid.path.open("rb") as source:
        while offset < bid.size:
            source.seek(offset)
            chunk = source.read(PATCH)
            sent = await http.patch(
                url, content=chunk, headers={**patch, "Upload-Offset": str(offset)}
            )
            if offset + len(chunk) == bid.size and sent.status_code in (422, 500):
                sent = await complete_again(http, url, bid, patch, sent)
            offset = int(check(sent, 204).headers["upload-offset"])
    outcome = check(await http.get(url, headers=who), 200).json()
    if outcome["status"] != "accepted" or outcome["bid"]["envelope_sha256"] != bid.digest:
        raise RuntimeError(f"upload of {bid.person.name} not accepted: {outcome}")


async def complete_again(
    http: httpx.AsyncClient, url: str, bid: Bid, patch: dict[str, str], sent: httpx.Response
) -> httpx.Response:
    for _ in range(5):
        code = sent.json().get("code") if sent.status_code == 422 else f"HTTP {sent.status_code}"
        if code not in ("audit_hole", "HTTP 500"):
            return sent
        RETRIES.append(str(code))
        again = {**patch, "Upload-Offset": str(bid.size)}
        for attempt in range(3):  # a 500 may have closed the pooled connection
            try:
                sent = await http.patch(url, content=b"", headers=again)
                break
            except httpx.TransportError:
                if attempt == 2:
                    raise
        if sent.status_code == 204:
            return sent
    return sent


# ---------------------------------------------------------------------------------------------
# screens
# ---------------------------------------------------------------------------------------------


class Arrivals(list[Frame]):
    """The frames a RoomClient keeps, each stamped as it is kept (perf_counter, "_at")."""

    def append(self, frame: Frame) -> None:
        frame["_at"] = time.perf_counter()
        super().append(frame)


class Screen(RoomClient):
    """tests/client.RoomClient that stamps every frame with its arrival."""

    def __init__(self, socket: Any, name: str):
        super().__init__(socket, name)
        self.frames = Arrivals()  # the reader task has not run yet: no frame is missed

    def arrival(self, name: str) -> float | None:
        for frame in self.frames:
            if frame.get("type") == "event" and frame.get("name") == name:
                return float(frame["_at"])
        return None


async def connect_screens(url: str, room: str, people: list[Person], within: float) -> list[Screen]:
    gate = asyncio.Semaphore(10)

    async def one(person: Person) -> Screen:
        async with gate:
            screen = await Screen.connect(
                url, person.token(), room, name=person.name, open_timeout=within
            )
            await screen.wait_for(lambda f: f["type"] == "welcome", within)
            return screen

    return list(await asyncio.gather(*(one(x) for x in people)))


# ---------------------------------------------------------------------------------------------
# the server process
# ---------------------------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM of a process, in bytes."""
    found: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) * 1024
    return found


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux: 5 > /proc/<pid>/clear_refs)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def start_node(folder: Path, world: World, database_url: str, limit: int) -> nodes.Node:
    env = {
        "BIDROOM_DATABASE_URL": database_url,
        "BIDROOM_SECRET_KEY": KEY,
        "BIDROOM_TRUST_DIR": str(world.trust),
        "BIDROOM_VAR_DIR": str(folder / "var"),
        "BIDROOM_MIN_BID_DAYS": "0",
        "BIDROOM_CLOCK_SECONDS": "0.2",
        "BIDROOM_FIX_GRACE_SECONDS": "1",
        "BIDROOM_MAX_BID_BYTES": str(max(512 * MiB, limit)),
        "BIDROOM_LOG_LEVEL": "INFO",
    }
    (folder / "var").mkdir()
    # In the main thread: a child's parent-death signal fires when the forking thread ends.
    return nodes.Node(env, "node", die_with_parent).start()


def warnings_of(node: nodes.Node) -> dict[str, int]:
    seen: dict[str, int] = {}
    for line in node.log:
        with contextlib.suppress(ValueError, AttributeError):
            entry = json.loads(line)
            level = str(entry.get("levelname") or entry.get("level") or "")
            if level.upper() in ("WARNING", "ERROR", "CRITICAL"):
                key = f"{level.upper()}: {entry.get('message', '')}"[:80]
                seen[key] = seen.get(key, 0) + 1
    return seen


# ---------------------------------------------------------------------------------------------
# the baseline
# ---------------------------------------------------------------------------------------------


def decrypt_one(bid: Bid, scratch: Path) -> None:
    target = scratch / f"{bid.digest}.zip"
    with bid.path.open("rb") as source:
        envelope.open_with_data_key(source, target, bid.data_key)
    target.unlink()


def raw_decryption(bids: list[Bid], scratch: Path, threads: int) -> float:
    started = time.perf_counter()
    if threads == 1:
        for bid in bids:
            decrypt_one(bid, scratch)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda b: decrypt_one(b, scratch), bids))
    return time.perf_counter() - started


def read_bytes(paths: Iterable[Path]) -> float:
    started = time.perf_counter()
    subprocess.run(["cat", *map(str, paths)], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------


async def seal_all(folder: Path, lot: dict[str, Any], world: World, args: argparse.Namespace):
    """Every bidder seals a bid (two at a time: this machine's cores, the server idle)."""
    size = args.size_mib * MiB
    people = [world.people[bidder_name(i)] for i in range(args.bids)]
    gate = asyncio.Semaphore(2)

    async def one(i: int, person: Person) -> Bid:
        async with gate:
            return await asyncio.to_thread(make_bid, folder, person, lot, price_of(i), size)

    return list(await asyncio.gather(*(one(i, x) for i, x in enumerate(people))))


async def upload_all(http: httpx.AsyncClient, lot: dict[str, Any], bids: list[Bid], n: int):
    gate = asyncio.Semaphore(n)

    async def one(bid: Bid) -> None:
        async with gate:
            await upload(http, lot, bid)

    await asyncio.gather(*(one(b) for b in bids))


async def prepare_handover(http: httpx.AsyncClient, room: str, bids: list[Bid]) -> None:
    """What each bidder's browser does before posting: unwrap, seal to the room, sign."""
    point = check(await http.get(f"/api/openings/{room}/key"), 200).json()["public_key"]
    room_public = p.ec_from_point(base64.b64decode(point))
    for bid in bids:
        with bid.path.open("rb") as source:
            header = envelope.read_header(source)
        bid.data_key = envelope.unwrap_with(header, bid.person.key)
        sealed_key = handoff.seal_key(room_public, room, bid.digest, bid.data_key)
        fields = {"room": room, "envelope": bid.digest, "sealed_key": sealed_key}
        bid.body = {
            "envelope": bid.digest,
            "sealed_key": sealed_key,
            **bid.person.signed("opening.decrypt", fields),
        }


async def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    size = args.size_mib * MiB
    limit = size + size // 8 + 4 * MiB  # the envelope's framing, with room to spare
    say(f"trust store and {args.bids + 5} certificates ...")
    world = make_world(folder / "trust", cast(args.bids), revoked=())
    database_url = f"sqlite+aiosqlite:///{folder / 'bidroom.db'}"
    await grant_roles(database_url, world)
    say("starting the node ...")
    node = start_node(folder, world, database_url, limit)
    pid = node.process.pid if node.process else 0
    envelopes = folder / "envelopes"
    envelopes.mkdir()
    limits = httpx.Limits(max_connections=args.bids + 10, max_keepalive_connections=args.bids + 10)
    failed = True
    try:
        async with httpx.AsyncClient(
            base_url=node.url, timeout=args.request_timeout, limits=limits
        ) as http:
            # calibration: one bid sealed and uploaded to a throwaway tender
            far = datetime.now(UTC) + timedelta(days=1)
            probe = await publish(http, world, "BENCH-CALIBRATION", far, limit)
            t = time.perf_counter()
            first = await asyncio.to_thread(
                make_bid, envelopes, world.people[bidder_name(0)], probe, price_of(0), size
            )
            seal_one = time.perf_counter() - t
            t = time.perf_counter()
            await upload(http, probe, first)
            upload_one = time.perf_counter() - t
            first.path.unlink()
            budget = args.deadline_seconds or (
                args.bids * (seal_one / 2 + upload_one) * 1.3 + (8 if args.quick else 20)
            )
            out.update(seal_one=seal_one, upload_one=upload_one, budget=budget)

            deadline = (datetime.now(UTC) + timedelta(seconds=budget)).replace(microsecond=0)
            lot = await publish(http, world, "ZJ-ZS-2026-BENCH", deadline, limit)
            room = lot["room"]
            say(f"sealing {args.bids} bids of {args.size_mib} MiB (deadline in {budget:.0f} s) ...")
            t = time.perf_counter()
            bids = await seal_all(envelopes, lot, world, args)
            out["seal_s"] = time.perf_counter() - t
            say(f"uploading by tus, {args.parallel} at a time ...")
            t = time.perf_counter()
            await upload_all(http, lot, bids, args.parallel)
            out["upload_s"] = time.perf_counter() - t
            out["upload_bytes"] = sum(b.size for b in bids)
            upload_end = datetime.now(UTC)
            out["slack"] = (deadline - upload_end).total_seconds()
            if upload_end >= deadline:
                raise RuntimeError(
                    f"uploads ended {-out['slack']:.1f} s after the deadline: "
                    "raise --deadline-seconds"
                )
            out["mem_uploads"] = proc_status(pid)

            say("screens: the chair, a supervisor and every bidder ...")
            watchers = [world.people[CHAIR], world.people[SUPERVISOR]]
            screens = await connect_screens(
                node.ws_url, room, watchers + [b.person for b in bids], args.request_timeout
            )
            chair = screens[0]
            try:
                await asyncio.gather(
                    *(
                        s.command("opening.sign_in", timeout=args.request_timeout)
                        for s in screens[2:]
                    )
                )
                left = (deadline - datetime.now(UTC)).total_seconds()
                say(f"waiting for the deadline ({left:.0f} s) ...")
                wait = left + args.request_timeout
                fixed = await chair.event("opening.count_published", timeout=max(wait, 5))
                if fixed["data"]["count"] != args.bids:
                    raise RuntimeError(f"bids fixed: {fixed['data']['count']} of {args.bids}")
                if args.bids < MIN_BIDS:
                    await chair.command(
                        "opening.decide", {"decision": "continue", "reason": "基准测试"}
                    )
                await prepare_handover(http, room, bids)
                # The uploads' writes reach the disk first: at a real opening they are long done.
                await asyncio.to_thread(os.sync)
                out["mem_before"] = proc_status(pid)
                out["peak_reset"] = reset_peak(pid)

                say("the window ...")
                sheet_call: dict[str, float] = {}

                async def chair_posts_sheet() -> None:
                    await chair.event(CLOSED, timeout=args.timeout)
                    started = time.perf_counter()
                    answer = await http.post(
                        f"/api/openings/{room}/sheet", json={}, headers=watchers[0].headers()
                    )
                    sheet_call["s"] = time.perf_counter() - started
                    check(answer, 200)

                sheet_task = asyncio.create_task(chair_posts_sheet())
                t_start = time.perf_counter()
                ack = await chair.command("opening.start_window", timeout=args.request_timeout)
                if ack["type"] != "ack":
                    raise RuntimeError(f"start_window refused: {ack}")

                async def hand_over(bid: Bid) -> float:
                    started = time.perf_counter()
                    answer = await http.post(
                        f"/api/openings/{room}/decrypt", json=bid.body, headers=bid.person.headers()
                    )
                    check(answer, 200)
                    return time.perf_counter() - started

                handed = await asyncio.gather(*(hand_over(b) for b in bids))
                t_handed = time.perf_counter()
                await sheet_task
                await asyncio.gather(
                    *(s.event(SHEET, timeout=args.request_timeout) for s in screens)
                )
                out["mem_after"] = proc_status(pid)

                t_closed = chair.arrival(CLOSED)
                assert t_closed is not None
                sheets = [s.arrival(SHEET) or math.nan for s in screens]
                closed_all = [s.arrival(CLOSED) or math.nan for s in screens]
                out.update(
                    screens=len(screens),
                    handover_s=t_handed - t_start,
                    handover_p50=pct(handed, 50),
                    close_lag=t_closed - t_handed,
                    closed_spread=max(closed_all) - min(closed_all),
                    sheet_all=max(sheets) - t_closed,
                    sheet_p50=pct([x - t_closed for x in sheets], 50),
                    sheet_first=min(sheets) - t_closed,
                    sheet_post=sheet_call["s"],
                    start_to_sheet=max(sheets) - t_start,
                )
                rows = (await chair.event(SHEET))["data"]["rows"]
                prices = {r["name"]: r["fields"].get("price") for r in rows}
                statuses = {r["status"] for r in rows}
                expected = {b.person.name: b.price for b in bids}
                out["sheet_ok"] = prices == expected and statuses == {"decrypted"}
                out["sheet_rows"] = len(rows)
            finally:
                for screen in screens:
                    with contextlib.suppress(Exception):
                        await screen.close()

        say("baseline: raw decryption of the same envelopes ...")
        scratch = folder / "scratch"
        scratch.mkdir()
        paths = [b.path for b in bids]
        os.sync()
        out["cat_s"] = min(read_bytes(paths) for _ in range(2))
        out["raw_seq"] = raw_decryption(bids, scratch, 1)
        out["raw_two"] = raw_decryption(bids, scratch, 2)
        out["mem_end"] = proc_status(pid)
        out["warnings"] = warnings_of(node)
        failed = False
        return out
    finally:
        await asyncio.to_thread(node.stop)
        if failed:
            say("the node's last log lines:\n" + "\n".join(node.log[-15:]))


def mib(value: int | None) -> str:
    return "-" if value is None else f"{value / MiB:.0f} MiB"


def table(args: argparse.Namespace, r: dict[str, Any]) -> str:
    sealed_mib = r["upload_bytes"] / MiB
    opening = r["sheet_all"]

    def row(label: str, seconds: float, ratio: bool = True) -> str:
        x = f"{opening / seconds:.2f}x" if ratio and seconds > 0 else ""
        return f"  {label:50}{seconds:>10.3f}{x:>16}"

    lines = [
        "",
        f"bidroom opening: {args.bids} bids of {args.size_mib} MiB ({sealed_mib:.0f} MiB sealed), "
        f"{r['screens']} screens, one node on SQLite, clock 0.2 s, {os.cpu_count()} CPUs",
        f"  sealing: {r['seal_s']:.1f} s (2 threads); uploads by tus, {PATCH // MiB} MiB PATCHes, "
        f"{args.parallel} at a time: {sealed_mib:.0f} MiB in {r['upload_s']:.1f} s = "
        f"{sealed_mib / r['upload_s']:.1f} MiB/s (calibration bid: seal {r['seal_one']:.2f} s, "
        f"upload {r['upload_one']:.2f} s; deadline slack {r['slack']:.0f} s)",
        f"  hand-over: {args.bids} data keys posted at once, all answered "
        f"{r['handover_s']:.2f} s after the window started (p50 request {r['handover_p50']:.2f} s);"
        f" window_closed at the chair {r['close_lag']:.2f} s after the last answer",
        "",
        f"  {'':50}{'seconds':>10}{'opening/this':>16}",
        row("window closed -> sheet on every screen", opening),
        row(f"  p50 of the {r['screens']} sheet arrivals", r["sheet_p50"], False),
        row("  first sheet arrival", r["sheet_first"], False),
        row("  POST /sheet round trip (the server's part)", r["sheet_post"], False),
        row("raw decryption, 2 threads (the shell's limit)", r["raw_two"]),
        row("raw decryption, sequential", r["raw_seq"]),
        row("reading the bytes (cat > /dev/null)", r["cat_s"]),
        row("(window started -> sheet on every screen)", r["start_to_sheet"], False),
        "",
        f"  raw decryption: {sealed_mib / r['raw_two']:.0f} MiB/s with 2 threads, "
        f"{sealed_mib / r['raw_seq']:.0f} MiB/s sequential; the opening's sheet: "
        f"{sealed_mib / opening:.0f} MiB/s",
        f"  window_closed spread over the screens: {r['closed_spread'] * 1000:.0f} ms",
    ]
    before = r["mem_before"]
    after = r["mem_after"]
    peak_label = (
        "VmHWM since the reset before the window"
        if r["peak_reset"]
        else "VmHWM since start (reset refused)"
    )
    lines += [
        f"  server memory: VmRSS before the window {mib(before.get('VmRSS'))}; peak during the "
        f"opening {mib(after.get('VmHWM'))} ({peak_label}); peak during the uploads "
        f"{mib(r['mem_uploads'].get('VmHWM'))}; VmRSS at the end {mib(r['mem_end'].get('VmRSS'))}",
        f"  sheet: {r['sheet_rows']} rows, every bid decrypted, prices as sealed: "
        + ("OK" if r["sheet_ok"] else "FAILED"),
    ]
    if RETRIES:
        counted = {code: RETRIES.count(code) for code in sorted(set(RETRIES))}
        lines.append(
            f"  upload completions retried (concurrent audit integration failed): {counted}"
        )
    if r["warnings"]:
        lines.append(f"  server warnings: {r['warnings']}")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    base = Path(args.dir) if args.dir else None
    need = int(2.2 * args.bids * args.size_mib * MiB) + 256 * MiB
    free = shutil.disk_usage(base or tempfile.gettempdir()).free
    if free < need:
        say(f"not enough space: {free / MiB:.0f} MiB free, {need / MiB:.0f} MiB needed: --dir")
        return 2
    with tempfile.TemporaryDirectory(prefix="bidroom-opening-", dir=base) as tmp:
        result = await run(args, Path(tmp))
    print(table(args, result), flush=True)
    return 0 if result["sheet_ok"] else 1


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = arguments(__doc__, quick="5 bids of 2 MiB", timeout=1800.0)
    parser.add_argument("--bids", type=int, default=50)
    parser.add_argument("--size-mib", type=int, default=20, help="each bid's document")
    parser.add_argument("--parallel", type=int, default=4, help="uploads at a time")
    parser.add_argument(
        "--deadline-seconds", type=float, default=0.0, help="default: from a calibration bid"
    )
    parser.add_argument("--dir", help="where the envelopes and the node's files go")
    parser.add_argument("--request-timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    if args.quick:
        args.bids, args.size_mib = 5, 2
        args.request_timeout, args.timeout = 20.0, 55.0
    if args.bids < 1 or args.size_mib < 1:
        parser.error("--bids and --size-mib must be at least 1")
    return args


if __name__ == "__main__":
    sys.exit(run_bounded(main_async, parse()))
