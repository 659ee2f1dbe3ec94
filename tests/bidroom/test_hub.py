"""The hub in process, over a real store: ordering, at-most-once, conflicts, gaps, resume.

Two hubs over one store and one in-process broker are two nodes; the subscriber here is the
in-memory twin of a WebSocket connection (the real one is tested in test_server.py).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from conftest import ROOM, make_hub

from bidroom import opening
from bidroom.broker import LocalBroker
from bidroom.hub import Hub
from bidroom.metrics import Metrics
from bidroom.protocol import Close
from bidroom.room import SYSTEM, Actor, Command
from bidroom.store import RoomRecord, Store

CHAIR = Actor("chair-1", "王敏", "chair")
BIDDER = Actor("bidder-1", "李海", "bidder")


@dataclass
class Inbox:
    """A subscriber that keeps what it is sent."""

    id: str
    actor: Actor
    frames: list[dict] = field(default_factory=list)
    closed: tuple[Close, str] | None = None

    def push(self, frame: str) -> None:
        self.frames.append(json.loads(frame))

    def close(self, code: Close, reason: str) -> None:
        self.closed = (code, reason)

    def events(self, name: str | None = None) -> list[dict]:
        return [f for f in self.frames if f["type"] == "event" and name in (None, f["name"])]

    def seqs(self) -> list[int]:
        return [f["seq"] for f in self.events()]


async def join(hub: Hub, actor: Actor, since: int = 0, tag: str = "") -> Inbox:
    inbox = Inbox(f"{hub.node}/{actor.subject}{tag}", actor)
    await hub.attach(ROOM, inbox, since)
    return inbox


async def announce(hub: Hub, text: str, command_id: str | None = None) -> dict:
    return await hub.execute(ROOM, Command("meeting.announce", {"text": text}), CHAIR, command_id)


async def open_room(hub: Hub) -> None:
    assert (await hub.execute(ROOM, Command("meeting.open"), CHAIR))["ok"]


async def test_a_command_reaches_every_subscriber_in_order(hub: Hub) -> None:
    chair, bidder = await join(hub, CHAIR), await join(hub, BIDDER)
    await open_room(hub)
    outcome = await announce(hub, "开标会开始")
    assert outcome == {"ok": True, "seqs": [4]}
    assert chair.seqs() == [1, 2, 3, 4]
    assert bidder.seqs() == [2, 3, 4], "a newcomer starts from a snapshot at seq 1"
    assert bidder.frames[1]["type"] == "snapshot" and bidder.frames[1]["seq"] == 1
    assert bidder.events("meeting.announced")[0]["data"]["text"] == "开标会开始"


async def test_a_retried_command_is_applied_once_and_answered_as_before(
    store: Store, hub: Hub
) -> None:
    chair = await join(hub, CHAIR)
    await open_room(hub)
    first = await announce(hub, "一次", "cmd-1")
    other_node = make_hub(store, "n2")
    again = await announce(other_node, "一次", "cmd-1")
    assert again == first
    assert len(chair.events("meeting.announced")) == 1
    assert [e.name for e in await store.events(ROOM)].count("meeting.announced") == 1


async def test_a_retried_rejection_keeps_its_first_answer(hub: Hub) -> None:
    refused = await announce(hub, "太早", "early")
    assert refused["code"] == "wrong_phase"
    await open_room(hub)
    assert await announce(hub, "太早", "early") == refused


async def test_two_nodes_writing_at_once_lose_nothing_and_agree_on_order(store: Store) -> None:
    broker = LocalBroker()
    one, two = make_hub(store, "n1", broker), make_hub(store, "n2", broker)
    for hub in (one, two):
        await broker.start(hub.deliver, hub.resync)
    watch_one, watch_two = await join(one, BIDDER), await join(two, BIDDER, tag="b")
    await open_room(one)
    outcomes = await asyncio.gather(
        *(announce(one if n % 2 else two, f"#{n}", f"c{n}") for n in range(40))
    )
    assert all(o["ok"] for o in outcomes)
    await broker.flush()
    texts = {e.data["text"] for e in await store.events(ROOM) if e.name == "meeting.announced"}
    assert texts == {f"#{n}" for n in range(40)}
    after_joins = [f for f in watch_one.events() if f["seq"] > 2]
    assert [f for f in watch_two.events() if f["seq"] > 2] == after_joins
    assert [f["seq"] for f in after_joins] == list(range(3, 3 + len(after_joins)))
    assert len(after_joins) == 41


class DroppingBroker(LocalBroker):
    """Loses every message while ``dropping`` (as Redis pub/sub may during an outage)."""

    dropping = False

    async def publish(self, room: str, payload: str) -> None:
        if not self.dropping:
            await super().publish(room, payload)


async def test_a_node_that_misses_messages_fills_the_gap_from_the_store(store: Store) -> None:
    broker = DroppingBroker()
    one, two = make_hub(store, "n1", broker), make_hub(store, "n2", broker)
    for hub in (one, two):
        await broker.start(hub.deliver, hub.resync)
    far = await join(two, BIDDER)
    await open_room(one)
    broker.dropping = True
    await announce(one, "lost in transit")
    broker.dropping = False
    await announce(one, "arrives")
    await broker.flush()
    assert [f["data"].get("text") for f in far.events()][-2:] == ["lost in transit", "arrives"]
    assert far.seqs() == list(range(far.seqs()[0], far.seqs()[-1] + 1))
    assert two.metrics.gap_fills._value.get() == 1


async def test_resync_catches_up_when_no_later_event_reveals_the_gap(store: Store) -> None:
    broker = DroppingBroker()
    one, two = make_hub(store, "n1", broker), make_hub(store, "n2", broker)
    for hub in (one, two):
        await broker.start(hub.deliver, hub.resync)
    far = await join(two, BIDDER)
    broker.dropping = True
    await open_room(one)
    await broker.flush()
    assert far.events("meeting.opened") == []
    await two.resync()
    assert len(far.events("meeting.opened")) == 1


async def test_a_client_resuming_gets_exactly_what_it_missed(hub: Hub) -> None:
    await open_room(hub)
    for n in range(5):
        await announce(hub, f"#{n}")
    back = await join(hub, BIDDER, since=3)
    assert back.frames[0]["type"] == "welcome" and back.frames[0]["mode"] == "replay"
    assert back.seqs() == [4, 5, 6, 7]  # then its own presence.joined
    newcomer = await join(hub, CHAIR)
    assert [f["type"] for f in newcomer.frames[:2]] == ["welcome", "snapshot"]
    assert newcomer.frames[1]["seq"] == 7 and newcomer.seqs() == [8]


async def test_a_client_too_far_behind_gets_a_snapshot(hub: Hub) -> None:
    await open_room(hub)
    for n in range(60):
        await announce(hub, f"#{n}")
    back = await join(hub, BIDDER, since=2)
    welcome, snapshot = back.frames[:2]
    assert welcome["mode"] == "snapshot"
    assert snapshot["type"] == "snapshot" and snapshot["seq"] == 61
    assert len(snapshot["state"]["announcements"]) == 60
    assert back.seqs() == [62]


async def test_removing_a_participant_closes_their_connection(hub: Hub) -> None:
    await join(hub, CHAIR)
    bidder = await join(hub, BIDDER)
    await open_room(hub)
    removed = await hub.execute(
        ROOM, Command("meeting.remove", {"subject": "bidder-1", "reason": "扰乱秩序"}), CHAIR
    )
    assert removed["ok"]
    assert bidder.closed is not None and bidder.closed[0] == Close.REMOVED


async def test_presence_of_a_dead_node_expires(store: Store) -> None:
    one, two = make_hub(store, "n1"), make_hub(store, "n2")  # no broker between them: the
    await one.heartbeat(timedelta(seconds=30))  # sweep catches up from the store first
    await two.heartbeat(timedelta(seconds=30))
    chair = await join(one, CHAIR)
    await join(two, BIDDER)
    later = one.clock() + timedelta(seconds=60)
    one.clock = lambda: later
    await one.heartbeat(timedelta(seconds=30))  # n2 has been silent for 60 s
    [expired] = chair.events("presence.expired")
    assert expired["data"] == {"subject": "bidder-1", "connections": ["n2/bidder-1"]}


async def test_a_burst_of_commands_is_recorded_in_order_each_with_its_own_answer(
    store: Store, hub: Hub
) -> None:
    await open_room(hub)
    bidders = [Actor(f"bidder-{n}", f"投标人{n}", "bidder") for n in range(120)]
    inboxes = [Inbox(f"n1/b{n}", a) for n, a in enumerate(bidders)]
    await asyncio.gather(*(hub.attach(ROOM, inbox, 0) for inbox in inboxes))
    says = [Command("meeting.message", {"text": f"第{n}号", "to": None}) for n in range(120)]
    outcomes = await asyncio.gather(
        *(
            hub.execute(ROOM, say, a, f"m{n}")
            for n, (say, a) in enumerate(zip(says, bidders, strict=True))
        )
    )
    logged = {e.seq: e for e in await store.events(ROOM)}
    assert sorted(logged) == list(range(1, len(logged) + 1))
    for n, outcome in enumerate(outcomes):
        [seq] = outcome["seqs"]
        assert logged[seq].actor == bidders[n] and logged[seq].data["text"] == f"第{n}号"
    muted = await hub.execute(ROOM, Command("meeting.mute", {"subject": "bidder-7"}), CHAIR)
    late = [hub.execute(ROOM, says[7], bidders[7], "late"), announce(hub, "之后")]
    refused_late, after = await asyncio.gather(*late)
    assert muted["ok"] and refused_late["code"] == "muted" and after["ok"]


async def test_when_the_deadline_makes_the_opening_public_each_screen_gets_a_fresh_snapshot(
    store: Store,
) -> None:
    """Before the deadline a bidder is not told who else signed in; after it, a snapshot has
    every bid and who signed in (the events before it were never sent to this bidder)."""
    room = "opening-lot-1"
    config = {"lot": "lot-1", "title": "开标", "window_minutes": 30}
    await store.create_room(RoomRecord(room, "opening", "开标", config, datetime.now(UTC)))
    hub = Hub(store, LocalBroker(), {"opening": opening.room_type()}, node="n1", metrics=Metrics())
    await hub.broker.start(hub.deliver, hub.resync)
    others = Actor("uscc:B", "蓝天", "bidder")
    inbox = Inbox("n1/me", BIDDER)
    await hub.attach(room, inbox, 0)

    async def run(name: str, actor: Actor, **args: object) -> None:
        outcome = await hub.execute(room, Command(name, args), actor)
        assert outcome["ok"], outcome

    await run("opening.sign_in", BIDDER)
    await run("opening.sign_in", others)
    assert [e["data"]["bidder"] for e in inbox.events("opening.signed_in")] == [BIDDER.subject]
    bids = [{"bidder": a.subject, "name": a.name, "envelope": "0" * 64} for a in (BIDDER, others)]
    await run("opening.fix_bids", SYSTEM, bids=bids)
    last = inbox.frames[-1]
    assert last["type"] == "snapshot", "the deadline is followed by a fresh snapshot"
    view = last["state"]["opening"]
    assert [b["name"] for b in view["bids"]] == ["李海", "蓝天"]
    assert view["signed_in"] == sorted([BIDDER.subject, others.subject])
    assert last["seq"] == (await store.last_seqs([room]))[room]
