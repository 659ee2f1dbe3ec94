"""The Redis broker against a real Redis: a burst of publishes all reach the other node."""

from __future__ import annotations

import asyncio

import pytest

from bidroom.broker import RedisBroker

pytestmark = pytest.mark.services


async def test_a_burst_beyond_the_connection_pool_loses_no_message(redis_url: str) -> None:
    """A reconnect storm publishes hundreds of messages at once; past the pool's size they wait
    for a connection instead of failing (redis-py's default pool raised MaxConnectionsError past
    100, and those frames were lost)."""
    sender, listener = RedisBroker(redis_url), RedisBroker(redis_url)
    heard: list[str] = []
    all_heard = asyncio.Event()
    burst = 400

    async def deliver(room: str, payload: str) -> None:
        heard.append(payload)
        if len(heard) == burst:
            all_heard.set()

    async def nothing() -> None:
        return None

    await listener.start(deliver, nothing)
    await sender.start(lambda room, payload: nothing(), nothing)
    try:
        await asyncio.gather(*(sender.publish("burst", f"n\n{i}") for i in range(burst)))
        await asyncio.wait_for(all_heard.wait(), 60)
        assert sorted(heard) == sorted(f"n\n{i}" for i in range(burst))
    finally:
        await sender.stop()
        await listener.stop()
