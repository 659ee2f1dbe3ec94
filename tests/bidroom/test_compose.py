"""An opening room on the hub: the meeting part and the opening part, routed by name."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bidroom import opening
from bidroom.broker import LocalBroker
from bidroom.hub import Hub
from bidroom.meeting import Meeting
from bidroom.metrics import Metrics
from bidroom.room import SYSTEM, Actor, Command
from bidroom.store import RoomRecord, Store

CHAIR = Actor("chair", "王敏", "chair")
OWNED = {"owner": {"organisation": None, "chairs": ["chair"]}}  # who chairs it (bidroom.owners)
BIDDERS = [Actor(f"uscc:b{n}", f"投标人{n}", "bidder") for n in range(1, 4)]


async def test_an_opening_room_routes_meeting_and_opening_commands(store: Store) -> None:
    await store.create_room(
        RoomRecord("open-1", "opening", "开标会", {"lot": "LOT-1", **OWNED}, datetime.now(UTC))
    )
    hub = Hub(
        store,
        LocalBroker(),
        {"meeting": Meeting(), "opening": opening.room_type()},
        node="n1",
        metrics=Metrics(),
    )
    assert (await hub.execute("open-1", Command("meeting.open"), CHAIR))["ok"]
    for bidder in BIDDERS:
        assert (await hub.execute("open-1", Command("opening.sign_in"), bidder))["ok"]
    bids = [{"bidder": b.subject, "name": b.name, "envelope": "0" * 64} for b in BIDDERS]
    assert (await hub.execute("open-1", Command("opening.fix_bids", {"bids": bids}), SYSTEM))["ok"]
    assert (await hub.execute("open-1", Command("opening.start_window"), CHAIR))["ok"]
    refused = await hub.execute("open-1", Command("meeting.close"), BIDDERS[0])
    assert refused["code"] == "not_allowed"
    unknown = await hub.execute("open-1", Command("auction.bid"), BIDDERS[0])
    assert unknown["code"] == "unknown_command"
    live = await hub.room("open-1")
    view = live.kind.snapshot(live.state, BIDDERS[0])
    assert view["kind"] == "opening"
    assert view["meeting"]["phase"] == "open" and view["opening"]["phase"] == "decrypting"
    assert view["opening"]["count"] == 3
    assert "opening.report_failure" in view["allowed"] and "meeting.message" in view["allowed"]
    assert "opening.decrypted" not in view["allowed"], "decryption goes through the HTTP shell"
    assert view["opening"]["actions"] == ["opening.decrypted"]
    replayed = Hub(
        store,
        LocalBroker(),
        {"opening": opening.room_type()},  # type: ignore[dict-item]
        node="n2",
        metrics=Metrics(),
    )
    assert (await replayed.room("open-1")).state == live.state, "the log alone rebuilds it"


class Page:
    """A subscriber that keeps its frames, as a page would."""

    def __init__(self, ident: str, actor: Actor):
        self.id, self.actor, self.frames = ident, actor, []

    def push(self, frame: str) -> None:
        self.frames.append(json.loads(frame))

    def close(self, code: object, reason: str) -> None:
        pass

    def last_snapshot(self) -> dict:
        return next(f for f in reversed(self.frames) if f["type"] == "snapshot")


async def test_a_bidder_resuming_across_the_bids_fixed_gets_the_fresh_snapshot(
    store: Store,
) -> None:
    """Offline while the bids were fixed, a bidder resumed with a replay that could not show the
    others' sign-ins (hidden from it when they happened), so its page showed "—" instead of
    已签到 until a reload. It gets a snapshot, as connected pages did at that moment."""
    await store.create_room(
        RoomRecord("open-2", "opening", "开标会", {"lot": "LOT-2"}, datetime.now(UTC))
    )
    hub = Hub(store, LocalBroker(), {"opening": opening.room_type()}, node="n1", metrics=Metrics())
    one, two = BIDDERS[0], BIDDERS[1]
    await hub.execute("open-2", Command("meeting.open"), CHAIR)
    connected = Page("n1/one", one)
    await hub.attach("open-2", connected, 0)
    away = Page("n1/two", two)
    await hub.attach("open-2", away, 0)
    await hub.detach("open-2", away)  # the link drops
    since = (await hub.room("open-2")).seq
    for bidder in (one, two):
        assert (await hub.execute("open-2", Command("opening.sign_in"), bidder))["ok"]
    bids = [{"bidder": b.subject, "name": b.name, "envelope": "0" * 64} for b in (one, two)]
    fixed = await hub.execute("open-2", Command("opening.fix_bids", {"bids": bids}), SYSTEM)
    assert fixed["ok"]
    back = Page("n1/two-again", two)
    await hub.attach("open-2", back, since)
    welcome = back.frames[0]
    assert welcome["type"] == "welcome" and welcome["mode"] == "snapshot"
    resumed = back.last_snapshot()["state"]["opening"]
    fresh = connected.last_snapshot()["state"]["opening"]
    assert resumed["signed_in"] == fresh["signed_in"] == sorted(b.subject for b in (one, two))
    # Resuming where nothing widens is still a replay.
    again = Page("n1/one-again", one)
    await hub.attach("open-2", again, (await hub.room("open-2")).seq)
    assert again.frames[0]["mode"] == "replay"
