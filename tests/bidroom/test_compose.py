"""An opening room on the hub: the meeting part and the opening part, routed by name."""

from __future__ import annotations

from datetime import UTC, datetime

from bidroom import opening
from bidroom.broker import LocalBroker
from bidroom.hub import Hub
from bidroom.meeting import Meeting
from bidroom.metrics import Metrics
from bidroom.room import SYSTEM, Actor, Command
from bidroom.store import RoomRecord, Store

CHAIR = Actor("chair", "王敏", "chair")
BIDDERS = [Actor(f"uscc:b{n}", f"投标人{n}", "bidder") for n in range(1, 4)]


async def test_an_opening_room_routes_meeting_and_opening_commands(store: Store) -> None:
    await store.create_room(
        RoomRecord("open-1", "opening", "开标会", {"lot": "LOT-1"}, datetime.now(UTC))
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
