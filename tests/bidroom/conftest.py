"""Fixtures for bidroom's tests: a migrated store on each real database, and a hub over it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from tendering import T0, Clock, World, make_world, running_app

from bidroom.broker import LocalBroker
from bidroom.db import migrate
from bidroom.hub import Hub
from bidroom.meeting import Meeting
from bidroom.metrics import Metrics
from bidroom.store import RoomRecord, Store, close_engine, create_engine

ROOM = "lot-1"
CONFIG = {"title": "开标会", "roles": ["chair", "bidder", "supervisor"]}


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on the embedded default and on a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'bidroom.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    engine = create_engine(database_url)
    await migrate(engine)
    store = Store(engine)
    await store.create_room(RoomRecord(ROOM, "meeting", "开标会", CONFIG, datetime.now(UTC)))
    yield store
    await close_engine(engine)


def make_hub(store: Store, node: str, broker: LocalBroker | None = None) -> Hub:
    return Hub(
        store,
        broker or LocalBroker(),
        {"meeting": Meeting()},
        node=node,
        metrics=Metrics(),
        replay_limit=50,
    )


@pytest.fixture
async def hub(store: Store) -> Hub:
    hub = make_hub(store, "n1")
    await hub.broker.start(hub.deliver, hub.resync)
    return hub


# The tendering world (tests/tendering.py): a CA and its people, a pinned clock, the app. --------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("trust"))


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def client(tmp_path: Path, world: World, database_url: str, clock: Clock) -> Iterator[TestClient]:
    """The app over ``database_url`` with the world's people granted, on the pinned clock
    (a test module may define its own ``client``, as test_app.py does)."""
    yield from running_app(world, database_url, tmp_path, clock)
