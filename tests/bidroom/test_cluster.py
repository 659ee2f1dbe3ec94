"""Two real nodes, one room: `bidroom serve` twice over one PostgreSQL and one Redis.

Every test here runs two `python -m bidroom serve` processes (node-a, node-b) over a fresh
database and the session's throwaway Redis, and drives them with real WebSocket clients
(tests/client.py). Nothing is mocked and nothing waits by sleeping: a test waits for the frames it
expects, each wait bounded by the client's timeout (``BIDROOM_TEST_TIMEOUT``). The few loops that
poll (an HTTP probe, a node's log) are bounded too.

What is checked, in each scenario, is the hub's promise to a client: the events it may see, in
seq order, each exactly once, with no gap, whichever node it is attached to and whatever happens
to the other node or to Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest
import websockets
from client import TIMEOUT, Frame, RoomClient
from nodes import SECRET, Node, bidroom
from redis import asyncio as aioredis
from services import RunningService

from bidroom import tokens

pytestmark = pytest.mark.services

ROOM = "lot-1"
ROOM_BODY = {
    "id": ROOM,
    "kind": "meeting",
    "title": "开标会",
    "config": {"roles": ["chair", "bidder", "supervisor"]},
}
CHAIR = "chair-1"
END = "散会"

# Expire a dead node's presence within seconds, and resync often.
FAST = {"BIDROOM_NODE_TTL_SECONDS": "3", "BIDROOM_RESYNC_SECONDS": "0.5"}
# No periodic resync during a test: after a Redis outage, only the broker's reconnect resync
# (and gap detection on the next message) can bring a node up to date.
NO_PERIODIC_RESYNC = {"BIDROOM_NODE_TTL_SECONDS": "600", "BIDROOM_RESYNC_SECONDS": "300"}

Event = tuple[int, str, dict[str, Any]]


# -- nodes -----------------------------------------------------------------------------------


@pytest.fixture
def node_env() -> dict[str, str]:
    """Extra environment for both nodes; a test overrides it by parametrizing `node_env`."""
    return dict(FAST)


@pytest.fixture
async def nodes(
    postgres_url: str, redis_server: RunningService, node_env: dict[str, str]
) -> AsyncIterator[tuple[Node, Node]]:
    """node-a and node-b, started over a migrated fresh database, with the room created."""
    # redis_server, not redis_url: a test may restart it, and the nodes must use that one.
    base = {
        "BIDROOM_DATABASE_URL": postgres_url,
        "BIDROOM_REDIS_URL": redis_server.url,
        "BIDROOM_SECRET_KEY": SECRET,
        "BIDROOM_COMMANDS_PER_SECOND": "1000",
    }
    migrated = await asyncio.to_thread(bidroom, "migrate", env=base)
    assert migrated.returncode == 0, migrated.stderr
    a = Node({**base, **node_env, "BIDROOM_NODE_ID": "node-a"})
    b = Node({**base, **node_env, "BIDROOM_NODE_ID": "node-b"})
    try:
        await asyncio.gather(asyncio.to_thread(a.start), asyncio.to_thread(b.start))
        async with httpx.AsyncClient(timeout=10) as http:
            created = await http.post(
                a.url + "/api/rooms",
                json=ROOM_BODY,
                headers={"Authorization": f"Bearer {token(CHAIR, 'chair')}"},
            )
        assert created.status_code == 201, created.text
        yield a, b
    finally:
        if not redis_server.running:  # a failed Redis test must not leave the session without it
            await asyncio.to_thread(redis_server.restart)
        await asyncio.gather(asyncio.to_thread(a.stop), asyncio.to_thread(b.stop))


async def send(client: RoomClient, name: str, args: Frame, command_id: str) -> Frame:
    """A command and its answer. Writers on both nodes take turns on the room's lock, so a busy
    room never answers `unavailable` to the quieter node."""
    mark = len(client.frames)
    await client.send({"type": "command", "id": command_id, "name": name, "args": args})
    reply = await client.wait_for(
        lambda f: f["type"] in ("ack", "error") and f.get("id") == command_id, start=mark
    )
    assert reply.get("code") != "unavailable", reply
    return reply


def token(subject: str, role: str) -> str:
    identity = tokens.Identity(subject, subject, (role,))
    return tokens.mint(identity, SECRET, datetime.now(UTC), timedelta(hours=1))


def node_id(node: Node) -> str:
    return str(node.env["BIDROOM_NODE_ID"])


async def join(node: Node, subject: str, role: str, since: int = 0) -> RoomClient:
    """A client attached to the room on `node`, once its own presence.joined has reached it."""
    client = await RoomClient.connect(
        node.ws_url, token(subject, role), ROOM, since=since, name=f"{subject}@{node_id(node)}"
    )
    welcome = await client.welcome()
    assert welcome["node"] == node_id(node)
    if since:
        assert welcome["mode"] == "replay", welcome
    await client.event(
        "presence.joined",
        lambda f: f["data"]["subject"] == subject and f["data"]["node"] == node_id(node),
    )
    return client


async def close_all(clients: Iterable[RoomClient]) -> None:
    for client in clients:
        with contextlib.suppress(Exception):
            await client.close()


# -- what clients saw ------------------------------------------------------------------------


def timeline(*clients: RoomClient) -> list[Event]:
    """The events a client saw, across its reconnections (the clients in connection order)."""
    return [(f["seq"], f["name"], f["data"]) for c in clients for f in c.events()]


def start_seq(client: RoomClient) -> int:
    """The seq a newcomer's snapshot stands at: it is owed every event after it."""
    snapshot = next(f for f in client.frames if f["type"] == "snapshot")
    return int(snapshot["seq"])


def announcements(events: list[Event]) -> list[str]:
    return [data["text"] for _, name, data in events if name == "meeting.announced"]


def visible_to(subject: str, event: Event) -> bool:
    """The meeting's visibility for a bidder: presence of itself and the chair, its messages."""
    _, name, data = event
    if name.startswith("presence."):
        return data["subject"] in (subject, CHAIR)
    if name == "meeting.message_sent":
        return subject in (data["from"], data["to"])
    return True


def assert_in_order_once(events: list[Event]) -> None:
    seqs = [seq for seq, _, _ in events]
    assert seqs == sorted(set(seqs)), f"seqs out of order or repeated: {seqs}"


def assert_gap_free(events: list[Event], after: int, upto: int) -> None:
    seqs = [seq for seq, _, _ in events]
    assert seqs == list(range(after + 1, upto + 1)), (
        f"expected every seq in {after + 1}..{upto} once, got {seqs}"
    )


def between(events: list[Event], after: int, upto: int) -> list[Event]:
    return [e for e in events if after < e[0] <= upto]


def is_announcement(at_least: int) -> Callable[[Frame], bool]:
    """An announcement numbered `at_least` or later (the announcer numbers its texts)."""

    def match(frame: Frame) -> bool:
        if frame["type"] != "event" or frame["name"] != "meeting.announced":
            return False
        text = frame["data"]["text"]
        return text.startswith("公告-") and int(text.removeprefix("公告-")) >= at_least

    return match


async def saw_end(*clients: RoomClient) -> int:
    """Wait until each client has the closing announcement; its seq."""
    frames = await asyncio.gather(
        *(c.event("meeting.announced", lambda f: f["data"]["text"] == END) for c in clients)
    )
    seqs = {f["seq"] for f in frames}
    assert len(seqs) == 1, seqs
    return int(seqs.pop())


# -- the chair's announcements ---------------------------------------------------------------


@dataclass
class Announcer:
    """The chair announcing back to back (each command awaits its ack) while it streams.

    When its connection dies (its node was killed) it asks `reconnect` for a new one and sends
    the same command again with the same id: the store answers a retry with the first outcome,
    so an announcement is recorded once whether or not the dead node recorded it.
    """

    chair: RoomClient
    reconnect: Callable[[RoomClient], Awaitable[RoomClient]] | None = None
    sent: list[tuple[str, int]] = field(default_factory=list)
    retried: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _stream: asyncio.Task[None] | None = None

    async def run(self, limit: int) -> None:
        """Announce `limit` more times, or until halted."""
        for _ in range(limit):
            if self._stop.is_set():
                return
            n = self.count
            await self.announce(f"公告-{n:05d}", f"announce-{n}")

    def start(self) -> None:
        self._stop.clear()
        self._stream = asyncio.create_task(self.run(limit=5000))

    async def halt(self) -> int:
        """Stop the stream; the seq of its last announcement."""
        self._stop.set()
        if self._stream is not None:
            await self._stream
        return self.sent[-1][1]

    async def finish(self) -> int:
        """Stop the stream, then send the closing announcement; its seq."""
        await self.halt()
        return await self.announce(END, "announce-end")

    async def announce(self, text: str, command_id: str) -> int:
        while True:
            try:
                reply = await send(self.chair, "meeting.announce", {"text": text}, command_id)
                break
            except (ConnectionError, websockets.ConnectionClosed):
                if self.reconnect is None:
                    raise
                self.chair = await self.reconnect(self.chair)
                self.retried += 1
        assert reply["type"] == "ack", reply
        (seq,) = reply["seqs"]
        self.sent.append((text, int(seq)))
        return int(seq)

    def texts_after(self, seq: int) -> list[str]:
        """Every announcement recorded after `seq`, in seq order."""
        ordered = sorted(self.sent, key=lambda sent: sent[1])
        return [text for text, at in ordered if at > seq]

    @property
    def count(self) -> int:
        return len(self.sent)


# -- polling (bounded) -----------------------------------------------------------------------


async def readiness(node: Node, status: int, within: float = 20.0) -> dict[str, Any]:
    """Poll /readyz until it answers `status`; its body."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last: Any = None
    async with httpx.AsyncClient(timeout=5) as http:
        while loop.time() < deadline:
            try:
                answer = await http.get(node.url + "/readyz")
                last = (answer.status_code, answer.text)
                if answer.status_code == status:
                    body: dict[str, Any] = answer.json()
                    return body
            except httpx.HTTPError as exc:
                last = exc
            await asyncio.sleep(0.05)
    raise AssertionError(f"{node_id(node)} /readyz never answered {status}; last: {last}")


async def logged(node: Node, message: str, times: int, within: float = 20.0) -> None:
    """Poll the node's log until `message` appears `times` times."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if sum(f'"{message}"' in line for line in list(node.log)) >= times:
            return
        await asyncio.sleep(0.05)
    tail = "\n".join(node.log[-20:])
    raise AssertionError(f"{node_id(node)} never logged {message!r} {times}x:\n{tail}")


# -- 1. two nodes, one room ------------------------------------------------------------------


async def test_clients_on_both_nodes_see_the_same_events_in_the_same_order(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    clients: list[RoomClient] = []
    try:
        chair = await join(a, CHAIR, "chair")
        sup_a = await join(a, "sup-1", "supervisor")
        sup_b = await join(b, "sup-2", "supervisor")
        bidder_a = await join(a, "bidder-1", "bidder")
        bidder_b = await join(b, "bidder-2", "bidder")
        clients = [chair, sup_a, sup_b, bidder_a, bidder_b]
        assert (await chair.command("meeting.open"))["type"] == "ack"

        async def talk(bidder: RoomClient, subject: str) -> None:
            for n in range(15):
                text = f"{subject} 提问 {n}"
                reply = await send(bidder, "meeting.message", {"text": text}, f"{subject}-{n}")
                assert reply["type"] == "ack", reply

        announcer = Announcer(chair)
        # Both nodes append at once: node-b's commands race node-a's for the next seq.
        await asyncio.gather(
            announcer.run(limit=25), talk(bidder_a, "bidder-1"), talk(bidder_b, "bidder-2")
        )
        end = await announcer.announce(END, "announce-end")
        assert end == await saw_end(*clients)

        seen_a, seen_b = timeline(sup_a), timeline(sup_b)
        assert_gap_free(seen_a, start_seq(sup_a), end)
        assert_gap_free(seen_b, start_seq(sup_b), end)
        common = max(start_seq(sup_a), start_seq(sup_b))
        assert between(seen_a, common, end) == between(seen_b, common, end)
        assert len(between(seen_a, common, end)) >= 25 + 30 + 2

        for bidder, subject in ((bidder_a, "bidder-1"), (bidder_b, "bidder-2")):
            seen = timeline(bidder)
            assert_in_order_once(seen)
            owed = [e for e in between(seen_a, start_seq(bidder), end) if visible_to(subject, e)]
            assert seen == owed, f"{subject} saw other events than it may see"
            mine = [e for e in seen if e[1] == "meeting.message_sent"]
            assert [e[2]["text"] for e in mine] == [f"{subject} 提问 {n}" for n in range(15)]
            assert announcements(seen) == announcer.texts_after(start_seq(bidder))
        assert announcements(timeline(bidder_a)) == announcements(timeline(bidder_b))
    finally:
        await close_all(clients)


# -- 2. a node dies --------------------------------------------------------------------------


@pytest.mark.parametrize("chair_on", ["survivor", "victim"])
async def test_clients_of_a_killed_node_resume_on_the_other_without_loss_or_repeat(
    nodes: tuple[Node, Node], chair_on: str
) -> None:
    survivor, victim = nodes
    clients: list[RoomClient] = []
    try:
        chair = await join(survivor if chair_on == "survivor" else victim, CHAIR, "chair")
        watcher = await join(survivor, "sup-1", "supervisor")
        sup_old = await join(victim, "sup-2", "supervisor")
        bidder_old = await join(victim, "bidder-2", "bidder")
        clients = [chair, watcher, sup_old, bidder_old]
        assert (await chair.command("meeting.open"))["type"] == "ack"

        async def move(old: RoomClient) -> RoomClient:
            """The client's reconnect: to the surviving node, resuming after its last seq."""
            await old.wait_closed()
            subject = old.name.partition("@")[0]
            role = {"sup-2": "supervisor", "bidder-2": "bidder", CHAIR: "chair"}[subject]
            new = await join(survivor, subject, role, since=old.last_seq)
            clients.append(new)
            return new

        announcer = Announcer(chair, reconnect=move)
        announcer.start()
        try:
            await asyncio.gather(*(c.wait_for(is_announcement(10)) for c in clients))
            await asyncio.to_thread(victim.kill)
            sup_new, bidder_new = await asyncio.gather(move(sup_old), move(bidder_old))
            resumed_at = announcer.count
            # Live announcements reach the resumed clients; the dead node's presence expires.
            await asyncio.gather(
                sup_new.wait_for(is_announcement(resumed_at + 10)),
                bidder_new.wait_for(is_announcement(resumed_at + 10)),
                *(
                    watcher.event(
                        "presence.expired",
                        lambda f, s=subject: f["data"]["subject"] == s,
                        timeout=TIMEOUT + 10,
                    )
                    for subject in ("sup-2", "bidder-2")
                ),
            )
        finally:
            end = await announcer.finish()
        chair = announcer.chair
        assert end == await saw_end(chair, watcher, sup_new, bidder_new)
        if chair_on == "victim":
            assert announcer.retried >= 1

        everything = timeline(watcher)
        assert_gap_free(everything, start_seq(watcher), end)
        for name, event in (("sup-2", "presence.expired"), ("bidder-2", "presence.expired")):
            expired = [e for e in everything if e[1] == event and e[2]["subject"] == name]
            assert len(expired) == 1, expired
            assert expired[0][2]["connections"], expired
            assert all(c.startswith(f"{node_id(victim)}/") for c in expired[0][2]["connections"])

        # The supervisor saw every event once, across the crash: exactly what sup-1 saw.
        resumed = timeline(sup_old, sup_new)
        assert_gap_free(resumed, start_seq(sup_old), end)
        assert resumed == between(everything, start_seq(sup_old), end)

        # The bidder saw what it may see once, across the crash: every announcement once.
        seen = timeline(bidder_old, bidder_new)
        assert_in_order_once(seen)
        owed = [
            e for e in between(everything, start_seq(bidder_old), end) if visible_to("bidder-2", e)
        ]
        assert seen == owed
        assert announcements(seen) == announcer.texts_after(start_seq(bidder_old))
        texts = announcements(everything)
        assert len(texts) == len(set(texts)) == announcer.count
        assert len(bidder_old.events()) and len(bidder_new.events())

        # The room now knows the resumed clients only by their connections on the survivor.
        late = await join(survivor, "sup-3", "supervisor")
        clients.append(late)
        snapshot = next(f for f in late.frames if f["type"] == "snapshot")
        people = {p["subject"]: p for p in snapshot["state"]["participants"]}
        for subject in ("sup-2", "bidder-2"):
            assert people[subject]["online"], people[subject]
            assert all(
                c.startswith(f"{node_id(survivor)}/") for c in people[subject]["connections"]
            )
    finally:
        await close_all(clients)


# -- 3. Redis restarts -----------------------------------------------------------------------


@pytest.mark.parametrize("node_env", [NO_PERIODIC_RESYNC], ids=["no-periodic-resync"])
async def test_a_redis_restart_loses_no_event_and_the_nodes_recover(
    nodes: tuple[Node, Node], redis_server: RunningService
) -> None:
    a, b = nodes
    clients: list[RoomClient] = []
    try:
        chair = await join(a, CHAIR, "chair")
        sup_a = await join(a, "sup-1", "supervisor")
        sup_b = await join(b, "sup-2", "supervisor")
        bidder_b = await join(b, "bidder-2", "bidder")
        clients = [chair, sup_a, sup_b, bidder_b]
        assert (await chair.command("meeting.open"))["type"] == "ack"

        announcer = Announcer(chair)
        announcer.start()
        try:
            await asyncio.gather(*(c.wait_for(is_announcement(5)) for c in clients))
            await asyncio.to_thread(redis_server.kill)
            for node in (a, b):
                body = await readiness(node, 503)
                assert body["checks"]["database"] == "ok", body
                assert body["checks"]["broker"] != "ok", body
            # The room goes on while Redis is down: node-a records, node-b cannot hear of it.
            await sup_a.wait_for(is_announcement(announcer.count + 5))
            unheard = await announcer.halt()
            assert sup_b.last_seq < unheard and bidder_b.last_seq < unheard
            await asyncio.to_thread(redis_server.restart)
            for node in (a, b):
                await readiness(node, 200)
            # With nothing new published and no periodic resync, only node-b's resync after
            # resubscribing can bring it what it missed.
            await asyncio.gather(*(c.until_seq(unheard) for c in (sup_b, bidder_b)))
            await logged(b, "redis subscribed", 2)
            await logged(b, "redis connection lost", 1)
            # Live events flow through Redis again.
            announcer.start()
            resumed = announcer.count
            await asyncio.gather(*(c.wait_for(is_announcement(resumed + 5)) for c in clients))
        finally:
            end = await announcer.finish()
        assert end == await saw_end(*clients)

        # Both nodes keep working: node-b's commands reach node-a's clients and back.
        question = await bidder_b.command("meeting.message", {"text": "恢复后提问"})
        assert question["type"] == "ack", question
        (asked,) = question["seqs"]
        for client in (chair, sup_a, sup_b):
            await client.event("meeting.message_sent", lambda f: f["seq"] == asked)
        reply = await chair.command("meeting.message", {"text": "收到", "to": "bidder-2"})
        assert reply["type"] == "ack", reply
        (answered,) = reply["seqs"]
        await bidder_b.event("meeting.message_sent", lambda f: f["seq"] == answered)

        seen_a, seen_b = timeline(sup_a), timeline(sup_b)
        assert_gap_free(seen_a, start_seq(sup_a), answered)
        assert_gap_free(seen_b, start_seq(sup_b), answered)
        common = max(start_seq(sup_a), start_seq(sup_b))
        assert between(seen_a, common, answered) == between(seen_b, common, answered)
        for client in clients:
            seen = timeline(client)
            assert_in_order_once(seen)
            assert announcements(seen) == announcer.texts_after(start_seq(client))
        owed = [
            e for e in between(seen_a, start_seq(bidder_b), answered) if visible_to("bidder-2", e)
        ]
        assert timeline(bidder_b) == owed

        # A newcomer on node-b starts from a snapshot that has everything.
        late = await join(b, "sup-3", "supervisor")
        clients.append(late)
        assert start_seq(late) >= answered
    finally:
        await close_all(clients)


# -- 4. media signaling crosses nodes --------------------------------------------------------


async def test_a_signal_reaches_its_peer_on_the_other_node(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    clients: list[RoomClient] = []
    sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"
    try:
        chair = await join(a, CHAIR, "chair")
        bidder = await join(b, "bidder-1", "bidder")
        clients = [chair, bidder]
        await chair.event("presence.joined", lambda f: f["data"]["subject"] == "bidder-1")
        offer = {"type": "signal", "kind": "offer", "to": CHAIR, "session": "x", "sdp": sdp}
        await bidder.send(offer)
        got = await chair.wait_for(lambda f: f["type"] == "signal")
        assert got["sdp"] == sdp and got["from"]["connection"].startswith("node-b/")
        answer = {
            **offer,
            "kind": "answer",
            "to": "bidder-1",
            "connection": got["from"]["connection"],
        }
        await chair.send(answer)
        back = await bidder.wait_for(lambda f: f["type"] == "signal")
        assert back["kind"] == "answer" and back["from"]["connection"].startswith("node-a/")
        await bidder.close()  # leaving on node-b: node-a's chair is told
        bye = await chair.wait_for(lambda f: f["type"] == "signal" and f["kind"] == "bye")
        assert bye["from"]["subject"] == "bidder-1" and bye["session"] == "x"
    finally:
        await close_all(clients)


async def publishes(redis_url: str) -> int:
    """How many PUBLISH commands Redis has served (its own count, whoever sent them)."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return int(stats.get("cmdstat_publish", {}).get("calls", 0))


async def test_a_join_costs_a_constant_number_of_broker_messages(
    nodes: tuple[Node, Node], redis_server: RunningService
) -> None:
    """A chair joining a room of 24 bidders tells each of them (peer joined) in one broker
    message, not one per bidder (199 joins once made about 14,500 Redis messages); bidders on
    both nodes hear it."""
    a, b = nodes
    clients: list[RoomClient] = []
    try:
        for n in range(24):
            clients.append(await join(a if n % 2 else b, f"bidder-{n}", "bidder"))
        before = await publishes(redis_server.url)
        chair = await join(a, CHAIR, "chair")
        clients.append(chair)
        await asyncio.gather(
            *(
                c.wait_for(lambda f: f["type"] == "peer" and f["peer"]["subject"] == CHAIR)
                for c in clients[:-1]
            )
        )
        media = await chair.wait_for(lambda f: f["type"] == "media")
        assert len(media["present"]) == 24
        # The chair's presence.joined event and one direct frame for all 24 bidders.
        assert await publishes(redis_server.url) - before <= 3
    finally:
        await close_all(clients)
