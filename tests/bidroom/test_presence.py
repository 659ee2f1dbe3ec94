"""Presence on a real node: one bidder's join/leave storm writes a handful of presence events
and audit entries instead of two per socket, the room still shows them present and then absent,
and a subject's fifth simultaneous socket replaces its oldest, closed with 4029
(docs/protocol.md)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from client import RoomClient
from nodes import SECRET, Node, solo

from bidroom import tokens
from bidroom.protocol import Close

ROOM = "presence-room"
GRACE = 2.0  # BIDROOM_PRESENCE_GRACE_SECONDS of the node
CYCLES = 200
WAIT = 60.0  # a generous bound on what a busy machine takes


def token(subject: str, role: str) -> str:
    identity = tokens.Identity(subject, subject, (role,))
    return tokens.mint(identity, SECRET, datetime.now(UTC), timedelta(hours=1))


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    folder = tmp_path_factory.mktemp("presence")
    node = solo(
        folder,
        BIDROOM_PRESENCE_GRACE_SECONDS=str(GRACE),
        BIDROOM_CONNECTIONS_PER_SUBJECT="4",
        BIDROOM_COMMANDS_PER_SECOND="1000",
    )
    body = {"id": ROOM, "kind": "meeting", "title": "开标会", "config": {}}
    made = httpx.post(
        f"{node.url}/api/rooms",
        json=body,
        headers={"authorization": f"Bearer {token('chair-1', 'chair')}"},
        timeout=WAIT,
    )
    assert made.status_code == 201, made.text
    yield node
    node.stop()


async def join(node: Node, subject: str, role: str = "bidder") -> RoomClient:
    client = await RoomClient.connect(node.ws_url, token(subject, role), ROOM, name=subject)
    await client.welcome()
    return client


def presence_log(node: Node, subject: str) -> list[str]:
    """The room's presence events naming ``subject``, from the log over HTTP."""
    found: list[str] = []
    after = 0
    headers = {"authorization": f"Bearer {token('chair-1', 'chair')}"}
    while True:
        page = httpx.get(
            f"{node.url}/api/rooms/{ROOM}/events", params={"after": after}, headers=headers
        ).json()
        events: list[dict[str, Any]] = page["events"]
        if not events:
            return found
        found += [
            e["name"]
            for e in events
            if e["name"].startswith("presence.") and e["data"].get("subject") == subject
        ]
        after = events[-1]["seq"]


def audited(node: Node) -> int:
    """Audit entries of presence events in the room (the node's SQLite file, read only)."""
    path = Path(node.env["BIDROOM_DATABASE_URL"].removeprefix("sqlite+aiosqlite:///"))
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        query = (
            "SELECT count(*) FROM audit_entry WHERE room_id = ? AND action LIKE 'room.presence.%'"
        )
        (count,) = db.execute(query, (ROOM,)).fetchone()
    return int(count)


def settled(watcher: RoomClient, subject: str) -> bool:
    """``watcher`` has seen ``subject`` leave as often as join, and leave at least once."""
    names = [e["name"] for e in watcher.events() if e["data"].get("subject") == subject]
    left = names.count("presence.left")
    return left >= 1 and names.count("presence.joined") == left


def online(snapshot: dict[str, Any], subject: str) -> bool:
    people = {p["subject"]: p for p in snapshot["state"]["participants"]}
    return bool(people.get(subject, {}).get("online"))


async def test_a_join_leave_storm_writes_a_bounded_number_of_presence_events(node: Node) -> None:
    chair = await join(node, "chair-1", "chair")
    # the welcome comes first; the chair's own arrival is recorded just after it
    await chair.event("presence.joined", lambda f: f["data"]["subject"] == "chair-1")
    before = audited(node)
    start = time.monotonic()
    for _ in range(CYCLES):
        bidder = await join(node, "bidder-1")
        await bidder.close()
    elapsed = time.monotonic() - start
    # gone GRACE after the last socket closed, as the chair sees it
    await chair.wait_for(lambda _: settled(chair, "bidder-1"), timeout=WAIT + GRACE)
    # A departure is recorded only when no socket of the same actor came back within GRACE:
    # departures are at least GRACE apart, so a storm of any length writes at most this many.
    bound = 2 * (2 + int(elapsed // GRACE))
    events = presence_log(node, "bidder-1")
    assert events.count("presence.joined") == events.count("presence.left") >= 1
    assert len(events) <= min(bound, 40), (len(events), elapsed)
    assert audited(node) - before == len(events)  # one audit entry per presence event
    watcher = await join(node, "sup-1", "supervisor")
    assert not online(await watcher.wait_for(lambda f: f["type"] == "snapshot"), "bidder-1")
    back = await join(node, "bidder-1")
    await chair.event("presence.joined", lambda f: f["data"]["subject"] == "bidder-1")
    fresh = await join(node, "sup-2", "supervisor")
    assert online(await fresh.wait_for(lambda f: f["type"] == "snapshot"), "bidder-1")
    for client in (back, fresh, watcher, chair):
        await client.close()


async def test_a_subject_s_fifth_socket_replaces_the_oldest(node: Node) -> None:
    """A changed link leaves sockets the server cannot yet know are dead (they answer no ping
    until their heartbeat times out): a bidder reconnecting past the limit was refused with
    4029 and, as the page took 4029 as final, stayed out of the room. The newest wins now."""
    stale = [await join(node, "bidder-2") for _ in range(4)]
    fifth = await RoomClient.connect(node.ws_url, token("bidder-2", "bidder"), ROOM)
    assert (await fifth.welcome())["type"] == "welcome"
    assert (await stale[0].wait_closed())[0] == Close.CONNECTION_REPLACED  # the oldest
    sixth = await RoomClient.connect(node.ws_url, token("bidder-2", "bidder"), ROOM)
    await sixth.welcome()
    assert (await stale[1].wait_closed())[0] == Close.CONNECTION_REPLACED  # then the next
    other = await join(node, "bidder-3")  # another subject is not affected
    for client in stale[2:]:
        await client.send({"type": "ping"})
        await client.wait_for(lambda f: f["type"] == "pong")  # still served
    for client in (*stale, fifth, sixth, other):
        await client.close()
