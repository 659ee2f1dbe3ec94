"""What is stored is what was recorded (issue 15, section 2): a room's events edited, deleted,
added or reordered in the database, or an entry removed, and the room is refused with the event
named, the alarm raised in the log and the metrics; an untouched room is served as before."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from client import RoomClient
from conftest import ROOM, make_hub
from nodes import SECRET, logged_lines, solo
from sqlalchemy import delete, insert, select, update

from bidroom import audit, protocol, tokens
from bidroom.audit_log import AuditLog
from bidroom.errors import RoomTampered
from bidroom.hub import Hub
from bidroom.protocol import Close
from bidroom.room import Actor, Command, Event
from bidroom.store import AUDIT, EVENT, Store, create_engine
from ca import primitives as p

CHAIR = Actor("cert:ab12", "王敏", "chair")
SCORE = "专家甲 第3项 技术方案 15分"
RAISED = "专家甲 第3项 技术方案 20分"


def token(subject: str, role: str) -> str:
    identity = tokens.Identity(subject, subject, (role,))
    return tokens.mint(identity, SECRET, datetime.now(UTC), timedelta(hours=1))


async def change(url: str, *statements: Any) -> None:
    """What only someone with the database can do: statements run straight on it."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(statement)
    finally:
        await engine.dispose()


def where(room: str, seq: int) -> Any:
    return (EVENT.c.room_id == room) & (EVENT.c.seq == seq)


async def meeting(node_url: str, ws_url: str, room: str, texts: list[str]) -> list[int]:
    """A meeting room made over HTTP, opened and told ``texts`` over the WebSocket; their seqs."""
    created = httpx.post(
        f"{node_url}/api/rooms",
        json={"id": room, "kind": "meeting", "title": "评标会", "config": {}},
        headers={"authorization": f"Bearer {token('chair-1', 'chair')}"},
    )
    assert created.status_code == 201, created.text
    chair = await RoomClient.connect(ws_url, token("chair-1", "chair"), room, name="chair")
    await chair.welcome()
    assert (await chair.command("meeting.open"))["type"] == "ack"
    seqs = []
    for text in texts:
        said = await chair.command("meeting.announce", {"text": text})
        assert said["type"] == "ack", said
        seqs += said["seqs"]
    await chair.close()
    return seqs


async def test_a_score_edited_in_the_stopped_servers_database_is_refused_and_named(
    database_url: str, tmp_path: Path
) -> None:
    """The attack as reported: the server stopped, a 15 made 20 in its database, the server
    started. The room is refused at hello (room_tampered, then 4011) and over HTTP (409), the
    event and its entry named; the log says so once, the metrics count it; another room of the
    same database, untouched, is served as before."""
    node = solo(tmp_path, BIDROOM_DATABASE_URL=database_url)
    try:
        [scored] = await meeting(node.url, node.ws_url, "eval-1", [SCORE])
        await meeting(node.url, node.ws_url, "eval-2", ["第二个会议"])
    finally:
        node.stop()
    await change(
        database_url, update(EVENT).where(where("eval-1", scored)).values(data={"text": RAISED})
    )
    node.start()
    try:
        expert = await RoomClient.connect(node.ws_url, token("sup-1", "supervisor"), "eval-1")
        refused = await expert.wait_for(lambda f: f["type"] == "error")
        assert refused["code"] == "room_tampered", refused
        detail = refused["detail"]
        assert (detail["room"], detail["seq"], detail["problem"], detail["fields"]) == (
            "eval-1",
            scored,
            "event_altered",
            ["data"],
        )
        assert f"room eval-1 event {scored} does not match its entry (data)" in refused["message"]
        assert (await expert.wait_closed())[0] == Close.ROOM_TAMPERED
        assert RAISED not in json.dumps(expert.frames, ensure_ascii=False)

        history = httpx.get(
            f"{node.url}/api/rooms/eval-1/events",
            headers={"authorization": f"Bearer {token('sup-1', 'supervisor')}"},
        )
        assert history.status_code == 409, history.text
        assert history.json()["code"] == "room_tampered"
        assert history.json()["detail"]["seq"] == scored

        other = await RoomClient.connect(node.ws_url, token("sup-1", "supervisor"), "eval-2")
        await other.welcome()
        snapshot = await other.wait_for(lambda f: f["type"] == "snapshot")
        assert "第二个会议" in json.dumps(snapshot, ensure_ascii=False)  # served as before
        await other.close()

        metrics = httpx.get(f"{node.url}/metrics").text
        assert "bidroom_rooms_tampered 1.0" in metrics
        assert "bidroom_room_tampered_refusals_total 2.0" in metrics
        # A loaded room edited behind the running node: the next read of it from the database
        # (here its history) refuses it, and the room's connections are told and closed.
        watcher = await RoomClient.connect(node.ws_url, token("sup-1", "supervisor"), "eval-2")
        await watcher.wait_for(lambda f: f["type"] == "snapshot")
        await change(
            database_url, update(EVENT).where(where("eval-2", 1)).values(data={"forged": True})
        )
        history = httpx.get(
            f"{node.url}/api/rooms/eval-2/events",
            headers={"authorization": f"Bearer {token('sup-1', 'supervisor')}"},
        )
        assert history.status_code == 409, history.text
        assert history.json()["detail"]["seq"] == 1
        told = await watcher.wait_for(lambda f: f["type"] == "error")
        assert told["code"] == "room_tampered" and told["detail"]["room"] == "eval-2"
        assert (await watcher.wait_closed())[0] == Close.ROOM_TAMPERED
        assert "bidroom_rooms_tampered 2.0" in httpx.get(f"{node.url}/metrics").text
        # the eval-2 alarm is read after every line before it: eval-1's was logged once
        await logged_lines(node, '"room": "eval-2"')
        alarms = [json.loads(line) for line in node.log if '"alarm": "room_tampered"' in line]
        assert len(alarms) == 2, "logged once a mismatch, counted at every refusal"
        assert alarms[0]["level"] == "ERROR"
        assert (alarms[0]["room"], alarms[0]["seq"], alarms[0]["problem"]) == (
            "eval-1",
            scored,
            "event_altered",
        )
        assert (alarms[1]["room"], alarms[1]["seq"]) == ("eval-2", 1)
    finally:
        node.stop()


# Each way of tampering, on both databases, through the store and the hub a node runs. ------


async def recorded_room(store: Store) -> Hub:
    """ROOM with six events (opened, five announcements), recorded as a node records them."""
    hub = make_hub(store, "n1")
    await hub.execute(ROOM, Command("meeting.open"), CHAIR)
    for n in range(5):
        await hub.execute(ROOM, Command("meeting.announce", {"text": f"第{n}项 15分"}), CHAIR)
    return hub


async def row(store: Store, seq: int) -> dict[str, Any]:
    async with store.engine.connect() as conn:
        found = (await conn.execute(select(EVENT).where(where(ROOM, seq)))).one()
    return dict(found._mapping)


def swapped(first: dict[str, Any], second: dict[str, Any]) -> list[Any]:
    return [
        update(EVENT).where(where(ROOM, first["seq"])).values(data=second["data"]),
        update(EVENT).where(where(ROOM, second["seq"])).values(data=first["data"]),
    ]


async def refusal(store: Store) -> dict[str, Any]:
    """How a fresh node (nothing loaded) meets ROOM: the refusal's detail."""
    hub = make_hub(store, "fresh")
    with pytest.raises(RoomTampered) as caught:
        await hub.room(ROOM)
    assert hub.metrics.rooms_tampered._value.get() == 1
    assert ROOM not in hub.rooms
    return dict(caught.value.detail)


@pytest.mark.parametrize(
    ("tampering", "seq", "problem", "fields"),
    [
        ("edited", 4, "event_altered", ["data"]),
        ("renamed", 4, "event_altered", ["name"]),
        ("re-timed", 4, "event_altered", ["at"]),
        ("another actor", 4, "event_altered", ["actor"]),
        ("another role", 4, "event_altered", ["actor"]),
        ("deleted", 4, "event_missing", []),
        ("deleted last", 6, "event_missing", []),
        ("added", 7, "event_unrecorded", []),
        ("reordered", 3, "event_altered", ["data"]),
        ("entry removed", 5, "event_unrecorded", []),
        ("event and entry removed", 5, "event_missing", []),
        ("event and entry rewritten", 2, "entry_altered", []),
    ],
)
async def test_every_way_of_tampering_is_refused_naming_the_first_event(
    store: Store, tampering: str, seq: int, problem: str, fields: list[str]
) -> None:
    hub = await recorded_room(store)
    log = AuditLog(store.engine, "t", p.ed25519_from_seed(b"\x02" * 32), hub.clock)
    await log.integrate()  # entries 0..5 integrated: their leaves are bound
    fourth, third = await row(store, 4), await row(store, 3)
    entry = (AUDIT.c.room_id == ROOM) & (AUDIT.c.seq == seq)
    actor = dict(fourth["actor"])
    statements: dict[str, list[Any]] = {
        "edited": [update(EVENT).where(where(ROOM, 4)).values(data={"text": "第2项 20分"})],
        "renamed": [update(EVENT).where(where(ROOM, 4)).values(name="meeting.closed")],
        "re-timed": [
            update(EVENT).where(where(ROOM, 4)).values(at=fourth["at"] + timedelta(minutes=1))
        ],
        "another actor": [
            update(EVENT).where(where(ROOM, 4)).values(actor={**actor, "subject": "cert:cd34"})
        ],
        "another role": [
            update(EVENT).where(where(ROOM, 4)).values(actor={**actor, "role": "supervisor"})
        ],
        "deleted": [delete(EVENT).where(where(ROOM, 4))],
        "deleted last": [delete(EVENT).where(where(ROOM, 6))],
        "added": [insert(EVENT).values({**fourth, "seq": 7, "command_id": None})],
        "reordered": swapped(third, fourth),
        "entry removed": [delete(AUDIT).where(entry)],
        "event and entry removed": [
            delete(EVENT).where(where(ROOM, 5)),
            delete(AUDIT).where(entry),
        ],
        "event and entry rewritten": [
            update(EVENT).where(where(ROOM, 2)).values(data={"text": "第0项 20分"}),
            update(AUDIT)
            .where(entry)
            .values(
                objects={
                    "event": audit.digest({"text": "第0项 20分"}),
                    "actor": audit.actor_digest(actor),
                }
            ),
        ],
    }
    for statement in statements[tampering]:
        async with store.engine.begin() as conn:
            await conn.execute(statement)
    detail = await refusal(store)
    assert (detail["room"], detail["seq"], detail["problem"], detail["fields"]) == (
        ROOM,
        seq,
        problem,
        fields,
    )


async def test_events_the_log_does_not_vouch_for_are_not_taken_from_the_broker(
    store: Store,
) -> None:
    """Another node's events come over the broker (Redis); a forged copy there (a 15 made 20)
    is not applied: the node reads the store's, checked, instead. A true copy is applied as
    it comes, without a read of the events."""
    hub = await recorded_room(store)
    other = make_hub(store, "n2")
    live = await other.room(ROOM)
    await hub.execute(ROOM, Command("meeting.announce", {"text": "第5项 15分"}), CHAIR)
    [stored] = await store.events(ROOM, after=6)
    forged = Event(stored.name, {"text": "第5项 20分"}, seq=7, at=stored.at, actor=stored.actor)
    await other.deliver(ROOM, "n1\n" + protocol.dump({"events": [protocol.event_json(forged)]}))
    assert live.seq == 7 and live.recent[-1].data == {"text": "第5项 15分"}
    assert other.metrics.broker_events_refused._value.get() == 1
    assert other.metrics.gap_fills._value.get() == 1  # read from the store instead

    await hub.execute(ROOM, Command("meeting.announce", {"text": "第6项 15分"}), CHAIR)
    [true] = await store.events(ROOM, after=7)
    await other.deliver(ROOM, "n1\n" + protocol.dump({"events": [protocol.event_json(true)]}))
    assert live.seq == 8 and live.recent[-1].data == {"text": "第6项 15分"}
    assert other.metrics.broker_events_refused._value.get() == 1
    assert other.metrics.gap_fills._value.get() == 1


async def test_a_room_edited_while_loaded_is_closed_at_its_next_command(store: Store) -> None:
    """A room already in memory when its log is edited behind the node: the next read of the
    store that meets the edit (another node's events to catch up on) refuses and forgets it."""
    hub = await recorded_room(store)
    other = make_hub(store, "n2")
    await other.room(ROOM)
    await hub.execute(ROOM, Command("meeting.announce", {"text": "第5项 15分"}), CHAIR)
    async with store.engine.begin() as conn:
        await conn.execute(update(EVENT).where(where(ROOM, 7)).values(data={"text": "20分"}))
    with pytest.raises(RoomTampered) as caught:
        await other.execute(ROOM, Command("meeting.announce", {"text": "next"}), CHAIR)
    assert caught.value.detail["seq"] == 7
    assert ROOM not in other.rooms and other.metrics.rooms_tampered._value.get() == 1
