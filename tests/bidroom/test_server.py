"""A real `bidroom serve` on port 0 and real WebSocket clients: what a client meets on the wire."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import pytest
import websockets
from client import TIMEOUT, RoomClient
from nodes import SECRET, Node, bidroom, solo

from bidroom import protocol, tokens
from bidroom.protocol import Close

ROOM = "lot-1"
LIMIT = 4096


def token(
    subject: str, role: str, *, ttl: timedelta = timedelta(hours=1), key: str = SECRET
) -> str:
    identity = tokens.Identity(subject, subject, (role,))
    return tokens.mint(identity, key, datetime.now(UTC), ttl)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    tmp: Path = tmp_path_factory.mktemp("node")
    node = solo(
        tmp,
        BIDROOM_HEARTBEAT_SECONDS="0.5",
        BIDROOM_HELLO_TIMEOUT_SECONDS="1",
        BIDROOM_MAX_FRAME_BYTES=str(LIMIT),
        BIDROOM_REPLAY_LIMIT="16",
        BIDROOM_QUEUE_SIZE="80",
        BIDROOM_COMMANDS_PER_SECOND="2000",
        BIDROOM_PRESENCE_GRACE_SECONDS="0",  # a departure is the cut-off test's signal
    )
    body = {
        "id": ROOM,
        "kind": "meeting",
        "title": "开标会",
        "config": {"roles": ["chair", "bidder", "supervisor"]},
    }
    created = httpx.post(
        f"{node.url}/api/rooms",
        json=body,
        headers={"authorization": f"Bearer {token('chair-1', 'chair')}"},
    )
    assert created.status_code == 201, created.text
    yield node
    node.stop()


@pytest.fixture
async def chair(node: Node) -> AsyncIterator[RoomClient]:
    client = await RoomClient.connect(node.ws_url, token("chair-1", "chair"), ROOM, name="chair")
    await client.welcome()
    if (await client.command("meeting.open"))["type"] == "error":
        pass  # opened by an earlier test of this module: the room lives for the module
    yield client
    await client.close()


async def connect(node: Node, subject: str, role: str = "bidder", **kw: object) -> RoomClient:
    client = await RoomClient.connect(node.ws_url, token(subject, role), ROOM, name=subject, **kw)
    await client.welcome()
    return client


async def test_a_newcomer_gets_the_room_then_live_events(node: Node, chair: RoomClient) -> None:
    bidder = await connect(node, "bidder-1")
    snapshot = await bidder.wait_for(lambda f: f["type"] == "snapshot")
    assert snapshot["state"]["title"] == "开标会" and snapshot["state"]["phase"] == "open"
    await chair.command("meeting.announce", {"text": "请各投标人签到"})
    said = await bidder.event("meeting.announced")
    assert said["data"]["text"] == "请各投标人签到" and said["actor"]["subject"] == "chair-1"
    await bidder.close()


async def test_a_retry_after_reconnecting_gets_the_original_answer(
    node: Node, chair: RoomClient
) -> None:
    watcher = await connect(node, "sup-1", "supervisor")
    first = await chair.command("meeting.announce", {"text": "只说一次"}, id="once-1")
    await chair.close()
    again = await connect(node, "chair-1", "chair", since=chair.last_seq)
    retry = await again.command("meeting.announce", {"text": "只说一次"}, id="once-1")
    assert retry == first
    await watcher.command("meeting.message", {"text": "x"})  # any later frame
    texts = [f["data"]["text"] for f in watcher.events() if f["name"] == "meeting.announced"]
    assert texts.count("只说一次") == 1
    await again.close()
    await watcher.close()


async def test_resuming_replays_exactly_the_missed_events(node: Node, chair: RoomClient) -> None:
    bidder = await connect(node, "bidder-2")
    await chair.command("meeting.announce", {"text": "before"})
    await bidder.event("meeting.announced", lambda f: f["data"]["text"] == "before")
    since = bidder.last_seq
    await bidder.close()
    missed = [await chair.command("meeting.announce", {"text": f"missed {n}"}) for n in range(3)]
    back = await connect(node, "bidder-2", since=since)
    await back.event("meeting.announced", lambda f: f["data"]["text"] == "missed 2")
    replayed = [f for f in back.events() if f["name"] == "meeting.announced"]
    assert [f["seq"] for f in replayed] == [m["seqs"][0] for m in missed]
    assert (await back.welcome())["mode"] == "replay"
    await back.close()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{oops", "bad_json"),
        (json.dumps({"type": "dance"}), "unknown_type"),
        (json.dumps({"type": "command", "name": "x"}), "bad_message"),
        (json.dumps({"type": "command", "id": "u1", "name": "meeting.fly"}), "unknown_command"),
        (json.dumps({"type": "command", "id": "a1", "name": "meeting.announce"}), "invalid_args"),
        (json.dumps({"type": "ping", "pad": "x" * LIMIT}), "frame_too_large"),
    ],
)
async def test_bad_frames_get_their_error_and_the_connection_lives(
    node: Node, chair: RoomClient, frame: str, code: str
) -> None:
    bidder = await connect(node, "bidder-3")
    await bidder.send(frame)
    error = await bidder.wait_for(lambda f: f["type"] == "error")
    assert error["code"] == code
    await bidder.send({"type": "ping"})
    await bidder.wait_for(lambda f: f["type"] == "pong")
    await bidder.close()


async def test_a_frame_far_over_the_limit_closes_the_socket(node: Node, chair: RoomClient) -> None:
    bidder = await connect(node, "bidder-3")
    await bidder.send("x" * (8 * LIMIT))
    code, _ = await bidder.wait_closed()
    assert code == Close.MESSAGE_TOO_BIG
    await bidder.close()


async def test_wrong_role_and_wrong_phase_are_refused_with_what_is_allowed(
    node: Node, chair: RoomClient
) -> None:
    bidder = await connect(node, "bidder-4")
    wrong_role = await bidder.command("meeting.close")
    assert wrong_role["code"] == "not_allowed" and wrong_role["detail"]["roles"] == ["chair"]
    wrong_phase = await chair.command("meeting.open")
    assert wrong_phase["code"] == "wrong_phase"
    assert "meeting.announce" in wrong_phase["detail"]["allowed"]
    await bidder.close()


@pytest.mark.parametrize(
    ("bad_token", "code"),
    [
        (token("bidder-5", "bidder", ttl=timedelta(seconds=-1)), "token_expired"),
        (token("bidder-5", "bidder", key="forged-" + "y" * 40), "token_invalid"),
        ("not-a-token", "token_invalid"),
    ],
)
async def test_bad_tokens_are_refused_and_told_not_to_retry(
    node: Node, bad_token: str, code: str
) -> None:
    client = await RoomClient.connect(node.ws_url, bad_token, ROOM)
    assert (await client.wait_for(lambda f: f["type"] == "error"))["code"] == code
    closed, _ = await client.wait_closed()
    assert closed == Close.UNAUTHORIZED
    await client.close()


async def test_unknown_rooms_and_roles_outside_the_room_are_refused(node: Node) -> None:
    lost = await RoomClient.connect(node.ws_url, token("b", "bidder"), "no-such-room")
    assert (await lost.wait_closed())[0] == Close.ROOM_NOT_FOUND
    public = await RoomClient.connect(node.ws_url, token("p", "public"), ROOM)
    assert (await public.wait_closed())[0] == Close.FORBIDDEN
    await lost.close()
    await public.close()


async def test_a_socket_that_never_says_hello_is_closed(node: Node) -> None:
    async with websockets.connect(node.ws_url) as silent:
        await silent.wait_closed()
        assert silent.close_code == Close.PROTOCOL_VIOLATION


async def test_a_binary_first_frame_is_refused_as_not_a_hello(node: Node) -> None:
    async with websockets.connect(node.ws_url) as raw:
        await raw.send(b'{"type": "hello"}')
        error = json.loads(await raw.recv())
        assert error["type"] == "error" and error["code"] == "not_joined"
        await raw.wait_closed()
        assert raw.close_code == Close.PROTOCOL_VIOLATION


@pytest.mark.parametrize("tokens_field", [{}, {"token": ""}])
async def test_a_hello_without_a_token_is_told_to_sign_in(
    node: Node, tokens_field: dict[str, str]
) -> None:
    async with websockets.connect(node.ws_url) as raw:
        await raw.send(json.dumps({"type": "hello", "room": ROOM, **tokens_field}))
        error = json.loads(await raw.recv())
        assert error["code"] == "token_missing"
        await raw.wait_closed()
        assert raw.close_code == Close.UNAUTHORIZED


async def test_a_role_the_token_does_not_hold_is_refused(node: Node) -> None:
    client = await RoomClient.connect(node.ws_url, token("bidder-7", "bidder"), ROOM, role="chair")
    assert (await client.wait_for(lambda f: f["type"] == "error"))["code"] == "not_allowed"
    assert (await client.wait_closed())[0] == Close.FORBIDDEN
    await client.close()


async def test_a_client_slow_to_say_hello_is_kept_while_it_answers_pings(node: Node) -> None:
    """The silence timer starts at the welcome: a client that took most of the hello timeout
    (1 s; heartbeat 0.5 s) and answers every ping is not cut (it once was: 4009 at once)."""
    async with websockets.connect(node.ws_url) as slow:
        await asyncio.sleep(0.8)  # the scenario itself: a slow link before the hello
        hello = {"type": "hello", "token": token("bidder-8", "bidder"), "room": ROOM}
        await slow.send(json.dumps(hello))
        pings = 0
        while pings < 6:
            frame = json.loads(await asyncio.wait_for(slow.recv(), TIMEOUT))
            if frame["type"] == "ping":
                pings += 1
                await slow.send(json.dumps({"type": "pong"}))
        assert slow.close_code is None


async def test_a_client_that_stops_answering_is_closed_for_reconnect(node: Node) -> None:
    async with websockets.connect(node.ws_url) as mute:
        hello = {"type": "hello", "token": token("bidder-6", "bidder"), "room": ROOM}
        await mute.send(json.dumps(hello))
        with pytest.raises(websockets.ConnectionClosed):
            async for _ in mute:  # read, never answer a ping
                pass
        assert mute.close_code == Close.HEARTBEAT_TIMEOUT


async def test_a_removed_participant_is_closed_and_kept_out(node: Node, chair: RoomClient) -> None:
    bidder = await connect(node, "bidder-7")
    await chair.command("meeting.remove", {"subject": "bidder-7", "reason": "扰乱会场秩序"})
    assert (await bidder.wait_closed())[0] == Close.REMOVED
    again = await RoomClient.connect(node.ws_url, token("bidder-7", "bidder"), ROOM)
    assert (await again.wait_for(lambda f: f["type"] == "error"))["code"] == "removed"
    assert (await again.wait_closed())[0] == Close.REMOVED
    await again.close()
    await bidder.close()


def _tiny_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


async def test_a_client_that_stops_reading_is_cut_off_and_the_others_keep_pace(
    node: Node, chair: RoomClient
) -> None:
    reader = await connect(node, "sup-2", "supervisor")
    stalled = await websockets.connect(node.ws_url, sock=_tiny_socket(node.port), max_queue=1)
    await stalled.send(
        json.dumps({"type": "hello", "token": token("sup-3", "supervisor"), "room": ROOM})
    )
    await reader.event("presence.joined", lambda f: f["data"]["subject"] == "sup-3")
    stalled.transport.pause_reading()  # the client stops reading; its socket fills up
    text = "长" * 1200  # 3.6 KB, under the frame limit; the kernel buffers a few MB first
    left = reader.event("presence.left", lambda f: f["data"]["subject"] == "sup-3", timeout=60)
    waiting = asyncio.ensure_future(left)
    sent = 0
    while not waiting.done() and sent < 3000:
        sent += 1
        await chair.command("meeting.announce", {"text": text}, id=f"flood-{sent}")
    await waiting
    last = (await chair.command("meeting.announce", {"text": "after"}))["seqs"][0]
    await reader.until_seq(last)
    got = [
        f for f in reader.events() if f["name"] == "meeting.announced" and f["data"]["text"] == text
    ]
    assert len(got) == sent, "the reading client got every announcement"
    stalled.transport.resume_reading()

    async def drain() -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for _ in stalled:
                pass

    await asyncio.wait_for(drain(), 30)
    await stalled.close()
    await reader.close()
    assert stalled.close_code in (Close.TOO_SLOW, Close.HEARTBEAT_TIMEOUT, 1006)
    metrics = httpx.get(f"{node.url}/metrics").text
    drops = next(
        line for line in metrics.splitlines() if line.startswith("bidroom_queue_drops_total")
    )
    assert stalled.close_code != Close.TOO_SLOW or float(drops.split()[1]) >= 1


async def test_a_client_that_falls_behind_gets_every_frame_in_order_once_it_reads_again(
    tmp_path: Path,
) -> None:
    """Frames go straight onto a socket while it takes them and wait in the connection's
    backlog while it does not (bidroom.wire): a client whose socket backs up, well within the
    queue limit, still gets every event once, in order, with none overtaking another."""
    node = await asyncio.to_thread(
        solo,
        tmp_path,
        BIDROOM_QUEUE_SIZE="4096",
        BIDROOM_COMMANDS_PER_SECOND="2000",
    )
    try:
        body = {
            "id": ROOM,
            "kind": "meeting",
            "title": "开标会",
            "config": {"roles": ["chair", "supervisor"]},
        }
        headers = {"authorization": f"Bearer {token('chair-1', 'chair')}"}
        assert httpx.post(f"{node.url}/api/rooms", json=body, headers=headers).status_code == 201
        chair = await connect(node, "chair-1", "chair")
        await chair.command("meeting.open")
        slow = await connect(node, "sup-9", "supervisor", sock=_tiny_socket(node.port), max_queue=1)
        slow.socket.transport.pause_reading()  # type: ignore[attr-defined]
        text = "长" * 1990  # 6 KB a frame: 1000 of them overflow the kernel's buffers (4 MB)
        for i in range(1000):
            said = await chair.command("meeting.announce", {"text": f"{i} {text}"}, id=f"a-{i}")
            assert said["type"] == "ack", said
        last = (await chair.command("meeting.announce", {"text": "after"}))["seqs"][0]
        slow.socket.transport.resume_reading()  # type: ignore[attr-defined]
        await slow.until_seq(last, timeout=60)
        seqs = slow.seqs()
        assert seqs == list(range(seqs[0], last + 1)), "every event once, in order"
        said = [
            f["data"]["text"].split()[0] for f in slow.events() if f["name"] == "meeting.announced"
        ]
        assert said == [str(i) for i in range(1000)] + ["after"]
        await slow.close()
        await chair.close()
    finally:
        await asyncio.to_thread(node.stop)


async def test_a_node_shutting_down_tells_its_clients_to_reconnect(tmp_path: Path) -> None:
    env = {
        "BIDROOM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'b.db'}",
        "BIDROOM_SECRET_KEY": SECRET,
    }
    assert bidroom("migrate", env=env).returncode == 0
    node = await asyncio.to_thread(Node(env).start)
    body = {"id": ROOM, "kind": "meeting", "title": "开标会", "config": {"roles": ["chair"]}}
    headers = {"authorization": f"Bearer {token('chair-1', 'chair')}"}
    assert httpx.post(f"{node.url}/api/rooms", json=body, headers=headers).status_code == 201
    chair = await connect(node, "chair-1", "chair")
    await asyncio.to_thread(node.stop)
    code, _ = await chair.wait_closed()
    assert code == Close.SERVICE_RESTART and code in protocol.RECONNECT
    await chair.close()


async def test_the_welcome_tells_the_client_the_nodes_limits(node: Node) -> None:
    """A client learns the heartbeat (to know when a silent link is dead) and its budgets from
    the welcome, not from the defaults it was written against."""
    client = await connect(node, "bidder-9")
    limits = client.frames[0]["limits"]
    assert limits["heartbeat"] == 0.5 and limits["replay"] == 16
    assert limits["max_frame_bytes"] == LIMIT and limits["commands_per_second"] == 2000
    assert limits["signals_per_second"] > 0
    await client.close()
