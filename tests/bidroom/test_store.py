"""The event store on SQLite and on PostgreSQL: ordered, gap-free, at most once."""

from __future__ import annotations

import asyncio
import gc
from datetime import UTC, datetime

import pytest
from conftest import ROOM

from bidroom.db import ensure_migrated, migrate
from bidroom.errors import NotMigrated, SeqConflict
from bidroom.room import Actor, Event
from bidroom.store import (
    CommandKey,
    DuplicateCommand,
    RoomRecord,
    Store,
    close_engine,
    create_engine,
)

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
CHAIR = Actor("chair-1", "王敏", "chair")


def events(first: int, count: int = 1) -> list[Event]:
    return [
        Event("meeting.announced", {"text": f"第{n}条"}, n, NOW, CHAIR)
        for n in range(first, first + count)
    ]


async def test_events_come_back_in_seq_order_with_their_actor_and_time(store: Store) -> None:
    await store.append(ROOM, events(1, 3), CommandKey("chair-1", "c1"), {"ok": True})
    got = await store.events(ROOM)
    assert [e.seq for e in got] == [1, 2, 3]
    assert got[0].actor == CHAIR and got[0].at == NOW
    assert got[2].data == {"text": "第3条"}
    assert [e.seq for e in await store.events(ROOM, after=1, upto=2)] == [2]
    assert await store.last_seqs([ROOM, "elsewhere"]) == {ROOM: 3}


async def test_a_second_writer_of_the_same_seq_conflicts_and_nothing_changes(store: Store) -> None:
    await store.append(ROOM, events(1), None, {"ok": True})
    with pytest.raises(SeqConflict):
        await store.append(
            ROOM, [*events(2), *events(1)], CommandKey("chair-1", "late"), {"ok": True}
        )
    assert [e.seq for e in await store.events(ROOM)] == [1]
    assert await store.outcome(ROOM, CommandKey("chair-1", "late")) is None, "rolled back whole"


async def test_concurrent_appends_of_one_seq_let_exactly_one_win(store: Store) -> None:
    results = await asyncio.gather(
        *(store.append(ROOM, events(1), None, {"ok": True}) for _ in range(5)),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, SeqConflict) for r in results if r is not None)


async def test_a_command_id_is_recorded_once_with_its_first_outcome(store: Store) -> None:
    key = CommandKey("chair-1", "c1")
    await store.append(ROOM, events(1), key, {"ok": True, "seqs": [1]})
    with pytest.raises(DuplicateCommand) as again:
        await store.append(ROOM, events(2), key, {"ok": True, "seqs": [2]})
    assert again.value.outcome == {"ok": True, "seqs": [1]}
    assert [e.seq for e in await store.events(ROOM)] == [1]
    other = CommandKey("bidder-1", "c1")
    await store.append(ROOM, [], other, {"ok": False, "code": "not_allowed"})
    assert await store.outcome(ROOM, other) == {"ok": False, "code": "not_allowed"}


async def test_nodes_report_alive_until_they_stop(store: Store) -> None:
    await store.heartbeat("n1", NOW)
    await store.heartbeat("n2", NOW.replace(minute=0, hour=1))
    assert await store.live_nodes(NOW.replace(minute=59, hour=1)) == ["n1"]


async def test_an_unmigrated_database_is_refused_with_what_to_run(tmp_path: object) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/empty.db")
    with pytest.raises(NotMigrated, match="run `bidroom migrate`"):
        await ensure_migrated(engine)
    await engine.dispose()


async def test_closing_the_engine_waits_for_a_transaction_still_in_flight(
    database_url: str,
) -> None:
    """A node shutting down under load closed its engine while a transaction was still out; the
    connection came back to the discarded pool and was left to the garbage collector (asyncpg's
    "unclosed connection" and the socket's ResourceWarning, errors here). Closing now waits for
    it, and the transaction commits."""
    engine = create_engine(database_url)
    await migrate(engine)
    store = Store(engine)
    await store.create_room(RoomRecord(ROOM, "meeting", "开标会", {}, NOW))
    inside, release = asyncio.Event(), asyncio.Event()

    async def in_flight() -> None:
        async with store.writer(ROOM) as writer:
            inside.set()
            await release.wait()
            await writer.append(events(1), None, {"ok": True})  # with its entries

    transaction = asyncio.create_task(in_flight())
    await inside.wait()
    closing = asyncio.create_task(close_engine(engine))
    await asyncio.sleep(0)  # closing has started and is waiting on the connection that is out
    assert not closing.done()
    release.set()
    await transaction
    await closing
    gc.collect()  # a connection left to the collector would warn here
    engine = create_engine(database_url)
    assert [e.seq for e in await Store(engine).events(ROOM)] == [1]
    await close_engine(engine)
