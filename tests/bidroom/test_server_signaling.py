"""Media signaling through a real `bidroom serve` on port 0, with real WebSocket clients:
offers, answers and candidates reach only whom the room lets see and hear each other."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import websockets
from client import Frame, RoomClient
from nodes import SECRET, Node, solo, write_room

from bidroom import tokens
from bidroom.protocol import Close

OPENING = "op-signal"
EVALUATION = "ev-signal"
SDP_LIMIT = 2048
SDP = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n"
)
LINE = "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host"
PARAMS = {
    "price": {"method": "benchmark", "full": "30", "e_high": "0.2", "e_low": "0.1"},
    "items": [{"id": "tech", "max": "70"}],
    "candidates": 1,
}


def token(subject: str, role: str) -> str:
    identity = tokens.Identity(subject, subject, (role,))
    return tokens.mint(identity, SECRET, datetime.now(UTC), timedelta(hours=1))


def create(node: Node, room: str, kind: str, config: dict[str, Any]) -> None:
    """A bare opening or evaluation room, as only the operator writes one (the directory makes
    meetings only), chaired by chair-1."""
    owned = {**config, "owner": {"organisation": None, "chairs": ["chair-1"]}}
    write_room(node.env["BIDROOM_DATABASE_URL"], room, kind, "信令", owned)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    tmp: Path = tmp_path_factory.mktemp("signal")
    node = solo(
        tmp,
        BIDROOM_MAX_SDP_BYTES=str(SDP_LIMIT),
        BIDROOM_HELLO_TIMEOUT_SECONDS="1",
        BIDROOM_SIGNALS_PER_SECOND="1000",
        BIDROOM_PRESENCE_GRACE_SECONDS="0",  # each socket's presence.joined is join()'s signal
    )
    create(node, OPENING, "opening", {})
    bid = {"bidder": "bidder-1", "name": "投标人1", "status": "decrypted"}
    create(node, EVALUATION, "evaluation", {"params": PARAMS, "bids": [bid]})
    yield node
    node.stop()


async def join(node: Node, subject: str, role: str, room: str = OPENING) -> RoomClient:
    """A client in the room once its presence is recorded (so the node knows it is there)."""
    client = await RoomClient.connect(node.ws_url, token(subject, role), room, name=subject)
    await client.welcome()
    await client.event("presence.joined", lambda f: f["data"]["subject"] == subject)
    return client


@pytest.fixture
async def chair(node: Node) -> AsyncIterator[RoomClient]:
    client = await join(node, "chair-1", "chair")
    yield client
    await client.close()


async def signal(client: RoomClient, kind: str, to: str, **fields: Any) -> None:
    await client.send({"type": "signal", "kind": kind, "to": to, "session": "s-1", **fields})


async def received(client: RoomClient, kind: str, start: int = 0) -> Frame:
    return await client.wait_for(lambda f: f["type"] == "signal" and f["kind"] == kind, start=start)


async def refused(client: RoomClient, ident: str) -> Frame:
    return await client.wait_for(lambda f: f["type"] == "error" and f["id"] == ident)


async def test_a_chair_and_a_bidder_negotiate_through_the_server(
    node: Node, chair: RoomClient
) -> None:
    bidder = await join(node, "bidder-1", "bidder")
    media = await bidder.wait_for(lambda f: f["type"] == "media")
    assert media["ice_servers"] == [] and media["peers"] == ["chair"]

    await signal(bidder, "offer", "chair-1", sdp=SDP)
    offer = await received(chair, "offer")
    assert offer["sdp"] == SDP and offer["session"] == "s-1"
    assert offer["from"]["subject"] == "bidder-1" and offer["from"]["role"] == "bidder"
    back = offer["from"]["connection"]
    await signal(chair, "answer", "bidder-1", sdp=SDP, connection=back)
    await signal(chair, "candidate", "bidder-1", candidate=LINE, sdpMid="0", sdpMLineIndex=0)
    await signal(bidder, "candidate", "chair-1", candidate=LINE, sdpMid="0", sdpMLineIndex=0)
    assert (await received(bidder, "answer"))["from"]["subject"] == "chair-1"
    candidate = await received(bidder, "candidate")
    assert candidate["candidate"] == LINE and candidate["sdpMLineIndex"] == 0
    assert (await received(chair, "candidate"))["candidate"] == LINE

    # Signals are not events: nothing of them is in the room's log.
    headers = {"authorization": f"Bearer {token('chair-1', 'chair')}"}
    log = httpx.get(f"{node.url}/api/rooms/{OPENING}/events", headers=headers).json()
    names = {e["name"] for e in log["events"]}
    assert names == {"presence.joined"}, names

    # The bidder leaves: the chair is told, in the session they shared.
    await bidder.close()
    bye = await received(chair, "bye")
    assert bye["from"]["subject"] == "bidder-1" and bye["session"] == "s-1"
    assert bye["reason"] == "left"


async def test_whom_the_room_hides_cannot_be_reached(node: Node, chair: RoomClient) -> None:
    one, two = await join(node, "bidder-2", "bidder"), await join(node, "bidder-3", "bidder")
    await signal(one, "offer", "bidder-3", sdp=SDP, id="to-bidder")
    await signal(one, "offer", "nobody", sdp=SDP, id="to-nobody")
    await signal(chair, "offer", "nobody", sdp=SDP, id="chair-to-nobody")
    # Another bidder, present or not, is the same refusal: who bids stays secret.
    assert (await refused(one, "to-bidder"))["code"] == "signal_not_allowed"
    assert (await refused(one, "to-nobody"))["code"] == "signal_not_allowed"
    assert (await refused(chair, "chair-to-nobody"))["code"] == "no_such_peer"
    assert not [f for f in two.frames if f["type"] == "signal"]
    await one.close()
    await two.close()


async def test_a_meeting_tells_no_bidder_who_else_is_there(node: Node) -> None:
    """In a meeting presence hides other bidders; media frames (who is present, peer joined)
    named them once. Now a bidder hears of the chair only, and the chair of everyone."""
    create(node, "meeting-media", "meeting", {"roles": ["chair", "bidder", "supervisor"]})
    one = await join(node, "bidder-m1", "bidder", "meeting-media")
    supervisor = await join(node, "supervisor-m", "supervisor", "meeting-media")
    chair = await join(node, "chair-1", "chair", "meeting-media")
    two = await join(node, "bidder-m2", "bidder", "meeting-media")
    joined = await chair.wait_for(
        lambda f: f["type"] == "peer" and f["peer"]["subject"] == "bidder-m2"
    )
    assert joined["event"] == "joined"
    media = await two.wait_for(lambda f: f["type"] == "media")
    assert [p["subject"] for p in media["present"]] == ["chair-1"]
    # The chair heard bidder-m2 join: whatever bidder-m1 would have heard of it was queued at
    # that moment, and bidder-m1's pong comes after it.
    await one.send({"type": "ping"})
    await one.wait_for(lambda f: f["type"] == "pong")
    for bidder, other in ((one, "bidder-m2"), (two, "bidder-m1")):
        told = [
            f for f in bidder.frames if other in json.dumps(f) or "supervisor-m" in json.dumps(f)
        ]
        assert told == [], f"{bidder} was told of {other} or the supervisor: {told}"
    for client in (one, two, supervisor, chair):
        await client.close()


async def test_a_bidder_never_reaches_an_expert(node: Node) -> None:
    expert = await join(node, "expert-1", "expert", EVALUATION)
    bidder = await join(node, "bidder-1", "bidder", EVALUATION)
    chair = await join(node, "chair-1", "chair", EVALUATION)
    assert not [f for f in bidder.frames if f["type"] == "media"]  # no one to signal
    await signal(bidder, "offer", "expert-1", sdp=SDP, id="b-e")
    assert (await refused(bidder, "b-e"))["code"] == "signal_not_allowed"
    # An expert who holds no seat is outside the committee: no signaling either way.
    await signal(expert, "offer", "chair-1", sdp=SDP, id="e-c")
    await signal(chair, "offer", "expert-1", sdp=SDP, id="c-e")
    assert (await refused(expert, "e-c"))["code"] == "signal_not_allowed"
    assert (await refused(chair, "c-e"))["code"] == "signal_not_allowed"
    assert not [f for f in expert.frames if f["type"] == "signal"]
    for client in (expert, bidder, chair):
        await client.close()


async def test_an_outsider_cannot_signal(node: Node) -> None:
    expert = await RoomClient.connect(node.ws_url, token("expert-9", "expert"), OPENING)
    assert (await expert.wait_closed())[0] == Close.FORBIDDEN
    async with websockets.connect(node.ws_url) as stranger:
        frame = {"type": "signal", "kind": "offer", "to": "chair-1", "session": "s", "sdp": SDP}
        await stranger.send(json.dumps(frame))
        answer = json.loads(await stranger.recv())
        assert answer["code"] == "not_joined"
        await stranger.wait_closed()
        assert stranger.close_code == Close.PROTOCOL_VIOLATION
    await expert.close()


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"sdp": SDP + "a=x:" + "y" * SDP_LIMIT + "\r\n"}, "sdp_too_large"),
        ({"sdp": "hello"}, "sdp_invalid"),
        ({"sdp": SDP + "a=\x00\x01\r\n"}, "sdp_invalid"),
        ({"sdp": "v=0\r\ns=-\r\n"}, "sdp_invalid"),
        ({}, "signal_invalid"),
    ],
)
async def test_a_malformed_or_oversized_sdp_is_refused_and_the_socket_lives(
    node: Node, chair: RoomClient, fields: dict[str, Any], code: str
) -> None:
    bidder = await join(node, "bidder-4", "bidder")
    await signal(bidder, "offer", "chair-1", id="bad", **fields)
    assert (await refused(bidder, "bad"))["code"] == code
    await signal(bidder, "offer", "chair-1", sdp=SDP)
    assert (await received(chair, "offer"))["from"]["subject"] == "bidder-4"
    await bidder.close()
