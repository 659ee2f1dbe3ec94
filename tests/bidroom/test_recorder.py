"""Media through a real `bidroom serve` on port 0, with real aiortc peers on loopback: two
participants see each other through the server's signaling, and the server's recorder records
two venues (one camera at 60 fps with jitter, one that drops and rejoins) into files that play,
whose SHA-256 the room's record and the audit log hold."""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import httpx2 as httpx
import pytest
from client import RoomClient
from media_peers import CYCLE, MediaPeer, Pattern, loopback, luma, tone, until
from nodes import SECRET, Node, solo, write_room

from bidroom import tokens

ROOM = "ev-media"
PARAMS = {
    "price": {"method": "benchmark", "full": "30", "e_high": "0.2", "e_low": "0.1"},
    "items": [{"id": "tech", "max": "70"}],
    "candidates": 1,
}
MEDIA_TIMEOUT = 30.0


def token(subject: str, role: str, venue: str | None = None) -> str:
    identity = tokens.Identity(subject, subject, (role,), venue)
    return tokens.mint(identity, SECRET, datetime.now(UTC), timedelta(hours=1))


def headers(subject: str, role: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token(subject, role)}"}


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("recordings")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, recordings: Path) -> Iterator[Node]:
    tmp: Path = tmp_path_factory.mktemp("media")
    node = solo(
        tmp,
        BIDROOM_MEDIA_ADDRESSES='["127.0.0.1"]',
        BIDROOM_RECORDINGS_DIR=str(recordings),
        BIDROOM_SIGNALS_PER_SECOND="1000",
        BIDROOM_MEDIA_MAX_WIDTH="320",
        BIDROOM_MEDIA_MAX_HEIGHT="240",
        BIDROOM_MEDIA_MAX_FPS="10",
    )
    config = {
        "params": PARAMS,
        "bids": [{"bidder": "bidder-1", "name": "投标人1"}],
        "owner": {"organisation": None, "chairs": ["chair-1"]},
    }
    write_room(node.env["BIDROOM_DATABASE_URL"], ROOM, "evaluation", "远程异地评标", config)
    yield node
    node.stop()


@pytest.fixture(autouse=True)
def on_loopback() -> Iterator[None]:
    with loopback():
        yield


async def join(node: Node, subject: str, role: str, venue: str) -> tuple[RoomClient, MediaPeer]:
    client = await RoomClient.connect(node.ws_url, token(subject, role, venue), ROOM, name=subject)
    await client.welcome()
    await client.wait_for(lambda f: f["type"] == "media")
    return client, MediaPeer(client, subject)


@pytest.fixture
async def chair(node: Node) -> AsyncIterator[tuple[RoomClient, MediaPeer]]:
    client, peer = await join(node, "chair-1", "chair", "舟山")
    yield client, peer
    await peer.close()
    await client.close()


def post(node: Node, path: str, who: tuple[str, str] = ("chair-1", "chair")) -> httpx.Response:
    url = f"{node.url}/api/evaluations/{ROOM}/recording/{path}"
    return httpx.post(url, json={}, headers=headers(*who), timeout=60)


def numbered(path: Path) -> list[tuple[float, float]]:
    """Each decoded picture's time in the file, and its grey (which of Pattern's frames)."""
    with av.open(str(path)) as container:
        return [(float(f.time or 0), luma(f)) for f in container.decode(video=0)]


def played(path: Path) -> tuple[int, float]:
    """The video frames a player decodes from ``path``, and the time of the last one."""
    with av.open(str(path)) as container:
        times = [frame.time for frame in container.decode(video=0)]
    return len(times), max(t for t in times if t is not None)


async def test_two_participants_see_each_other_through_the_server(
    node: Node, chair: tuple[RoomClient, MediaPeer]
) -> None:
    client, chair_peer = chair
    other, supervisor = await join(node, "supervisor-1", "supervisor", "普陀")
    try:
        # The newcomer learns who is there and offers; the one there hears it came.
        media = other.frames[[f["type"] for f in other.frames].index("media")]
        assert [p["subject"] for p in media["present"]] == ["chair-1"]
        assert media["receive_only"] == ["recorder"]
        joined = await client.wait_for(lambda f: f["type"] == "peer")
        assert joined["peer"]["subject"] == "supervisor-1" and joined["event"] == "joined"

        chair_peer.sending = [Pattern(15), tone()]  # the chair answers with its own camera
        session = await supervisor.offer("chair-1", [Pattern(15), tone()])
        await until(lambda: chair_peer.received.get("video", 0) >= 10, MEDIA_TIMEOUT)
        await until(lambda: supervisor.received.get("video", 0) >= 10, MEDIA_TIMEOUT)
        assert chair_peer.received.get("audio", 0) > 0 and supervisor.received.get("audio", 0) > 0
        assert supervisor.state(session) == "connected"
    finally:
        await supervisor.close()
        await other.close()


async def test_the_recorder_records_two_venues_and_the_record_holds_the_hashes(
    node: Node, chair: tuple[RoomClient, MediaPeer], recordings: Path
) -> None:
    client, chair_peer = chair
    other, supervisor = await join(node, "supervisor-1", "supervisor", "普陀")
    fast = Pattern(60, jitter=0.012)
    try:
        started = post(node, "start")
        assert started.status_code == 200, started.text
        assert started.json()["status"] == "on"
        assert post(node, "start").json()["code"] == "recording_on"
        # Both hear the recorder came, and offer it what they send.
        for c in (client, other):
            await c.wait_for(lambda f: f["type"] == "peer" and f["peer"]["role"] == "recorder")
        await chair_peer.offer("recorder", [fast, tone()])
        first = await supervisor.offer("recorder", [Pattern(15), tone()])
        await until(lambda: fast.sent >= 120, MEDIA_TIMEOUT)

        # The supervisor leaves (its socket closes: the server says bye for it) and comes back.
        await supervisor.close()
        await other.close()
        other, supervisor = await join(node, "supervisor-1", "supervisor", "普陀")
        media = other.frames[[f["type"] for f in other.frames].index("media")]
        assert "recorder" in [p["subject"] for p in media["present"]]
        camera = Pattern(15)
        second = await supervisor.offer("recorder", [camera, tone()])
        assert second != first
        await until(lambda: supervisor.state(second) == "connected", MEDIA_TIMEOUT)
        connected = camera.sent
        await until(lambda: camera.sent >= connected + 30, MEDIA_TIMEOUT)  # two seconds of it
        # A page reloaded while its old socket lingers offers in a new session without a bye:
        # the new session replaces the old one, a third segment.
        third = await supervisor.offer("recorder", [Pattern(15), tone()])
        await until(lambda: supervisor.state(third) == "connected", MEDIA_TIMEOUT)
        sent_before = fast.sent
        await until(lambda: fast.sent >= sent_before + 90, MEDIA_TIMEOUT)

        stopped = post(node, "stop")
        assert stopped.status_code == 200, "\n".join(node.log[-30:])
        record = stopped.json()
        assert record["status"] == "off"
    finally:
        await supervisor.close()
        await other.close()

    files = {(f["subject"], f["segment"]): f for f in record["files"]}
    segments = [("chair-1", 1), ("supervisor-1", 1), ("supervisor-1", 2), ("supervisor-1", 3)]
    assert sorted(files) == segments
    folder = recordings / ROOM / f"run-{record['runs']}"
    sums = (folder / "SHA256SUMS").read_text().splitlines()
    assert sorted(sums) == sorted(f"{f['sha256']}  {f['name']}" for f in files.values())
    for entry in files.values():
        path = folder / entry["name"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        frames, _ = played(path)
        assert frames == entry["video_frames"] and frames > 10, entry
        assert entry["audio_frames"] > 0
    # 60 fps with jitter plays at 60 fps: each picture at the time its frame was due, whatever
    # arrived late or was lost on the way (not aiortc's assumed 30 fps).
    pictures = numbered(folder / files[("chair-1", 1)]["name"])[30:]  # past the ramp-up
    assert len(pictures) > 60
    steps = sorted(b - a for (_, a), (_, b) in itertools.pairwise(pictures) if b > a)
    grey = steps[len(steps) // 2]  # one frame's step of grey, as the codecs left it
    cycle = CYCLE / 60  # the greys repeat every 25 frames: a longer loss is seen modulo that
    for (t0, g0), (t1, g1) in itertools.pairwise(pictures):
        due = (round((g1 - g0) / grey) % CYCLE) / 60  # frames apart, at 60 a second
        off = ((t1 - t0) - due) % cycle
        assert due > 0 and min(off, cycle - off) < 0.0025, (t0, g0, t1, g1, grey)
    # Three segments for the venue that dropped and came back: nothing overwritten, all play.
    assert len({f["name"] for f in files.values()}) == 4

    # The room's record holds the files; the audit log names each hash.
    log = httpx.get(f"{node.url}/api/rooms/{ROOM}/events", headers=headers("chair-1", "chair"))
    stop_event = next(e for e in log.json()["events"] if e["name"] == "recording.stopped")
    assert {f["sha256"] for f in stop_event["data"]["files"]} == {
        f["sha256"] for f in files.values()
    }
    assert stop_event["actor"]["role"] == "recorder"
    entries = audit_entries(node, "room.recording.stopped")
    assert entries, "the stop is in the audit log"
    objects = entries[-1]["objects"]
    assert {v for k, v in objects.items() if k.startswith("file:")} == {
        f["sha256"] for f in files.values()
    }


def audit_entries(node: Node, action: str) -> list[dict[str, Any]]:
    """The audit log's entries for ``action``, once a checkpoint covers them (the integrator
    numbers entries in batches)."""
    watcher = headers("supervisor-1", "supervisor")
    for _ in range(300):
        checkpoint = httpx.get(f"{node.url}/api/audit/checkpoint")
        size = checkpoint.json().get("size", 0) if checkpoint.status_code == 200 else 0
        if size:
            page = httpx.get(
                f"{node.url}/api/audit/entries", params={"start": 0, "end": size}, headers=watcher
            )
            found = [json.loads(e["entry"]) for e in page.json()]
            found = [e for e in found if e["action"] == action]
            if found:
                return found
        time.sleep(0.1)
    return []


async def test_a_viewer_sees_a_venue_through_the_server_within_its_caps(
    node: Node, chair: tuple[RoomClient, MediaPeer]
) -> None:
    client, chair_peer = chair
    other, supervisor = await join(node, "supervisor-1", "supervisor", "普陀")
    camera = Pattern(30, size=(640, 480))
    try:
        assert post(node, "start").status_code == 200
        await client.wait_for(lambda f: f["type"] == "peer" and f["peer"]["role"] == "recorder")
        # Nobody publishes yet: there is no feed to view.
        await supervisor.offer("recorder", [], feed="chair-1")
        await until(lambda: bool(supervisor.errors), MEDIA_TIMEOUT)
        assert supervisor.errors[0]["code"] == "no_such_feed"

        await chair_peer.offer("recorder", [camera, tone()])
        await until(lambda: camera.sent >= 15, MEDIA_TIMEOUT)
        await supervisor.offer("recorder", [], feed="chair-1")
        await until(lambda: supervisor.received.get("video", 0) >= 20, MEDIA_TIMEOUT)
        sent, got = camera.sent, supervisor.received["video"]
        await until(lambda: camera.sent >= sent + 60, MEDIA_TIMEOUT)  # two seconds at 30 fps
        rate = (supervisor.received["video"] - got) / ((camera.sent - sent) / 30)
        # 640x480 at 30 fps reaches the viewer as 320x240 at no more than the capped 10 (fewer
        # on a loaded machine: only the cap is asserted).
        assert supervisor.sizes == {(320, 240)}
        assert rate <= 11, rate
        assert supervisor.received.get("audio", 0) > 0
    finally:
        assert post(node, "stop").status_code == 200
        await supervisor.close()
        await other.close()


def test_only_the_chair_starts_or_stops_a_recording(node: Node) -> None:
    refused = post(node, "start", ("supervisor-1", "supervisor"))
    assert refused.status_code == 403 and refused.json()["code"] == "not_allowed"
    off = post(node, "stop")
    assert off.status_code == 409 and off.json()["code"] == "recording_off"
    status = httpx.get(
        f"{node.url}/api/evaluations/{ROOM}/recording", headers=headers("bidder-1", "bidder")
    )
    assert status.status_code == 403


BAD_SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"


async def test_the_recorder_refuses_what_it_cannot_answer_and_goes_on(
    node: Node, chair: tuple[RoomClient, MediaPeer]
) -> None:
    client, chair_peer = chair
    assert post(node, "start").status_code == 200
    try:
        await client.wait_for(lambda f: f["type"] == "peer" and f["peer"]["role"] == "recorder")
        # An offer aiortc cannot use (no ICE, no DTLS fingerprint): refused, the recorder lives.
        bad = {"type": "signal", "kind": "offer", "to": "recorder", "session": "x-1"}
        await client.send({**bad, "sdp": BAD_SDP})
        refusal = await client.wait_for(lambda f: f["type"] == "error")
        assert refusal["code"] == "media_failed"
        camera = Pattern(15)
        session = await chair_peer.offer("recorder", [camera, tone()])
        await until(lambda: chair_peer.state(session) == "connected", MEDIA_TIMEOUT)

        # A bidder (there for a clarification) cannot reach the recorder at all.
        bidder = await RoomClient.connect(
            node.ws_url, token("bidder-1", "bidder"), ROOM, name="bidder"
        )
        await bidder.welcome()
        await bidder.send({**bad, "sdp": BAD_SDP, "id": "b1"})
        refused = await bidder.wait_for(lambda f: f["type"] == "error" and f.get("id") == "b1")
        assert refused["code"] == "signal_not_allowed"
        await bidder.close()
    finally:
        assert post(node, "stop").status_code == 200


async def test_no_socket_may_take_the_recorders_name(node: Node) -> None:
    impostor = await RoomClient.connect(node.ws_url, token("recorder", "chair"), ROOM)
    code, _ = await impostor.wait_closed()
    assert code == 4003
