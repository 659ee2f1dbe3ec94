"""Fan-out between app nodes: the broker only carries events, the store keeps them.

    Broker (interface)
    ├── LocalBroker    in process: the embedded default, and every hub in one process
    └── RedisBroker    Redis pub/sub: several nodes serve one room

A payload is ``"<node>\\n<json>"``; a node drops its own echoes without parsing them. Nothing is
lost if the broker drops a message: a node that sees a gap in seq reads the missing events from
the store, and after every (re)connection to Redis it re-reads every room it serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bidroom.errors import BidroomError, BrokerError

log = logging.getLogger(__name__)

Deliver = Callable[[str, str], Awaitable[None]]
Resync = Callable[[], Awaitable[None]]
CHANNEL = "bidroom:room:"
RETRY_FIRST = 0.05
POOL_CONNECTIONS = 32  # publishes in flight at once; more wait their turn
POOL_WAIT_SECONDS = 5.0  # then a publish fails (BrokerError) and is republished later


class Broker(Protocol):
    async def start(self, deliver: Deliver, resync: Resync) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, room: str, payload: str) -> None: ...

    async def ping(self) -> None: ...


class LocalBroker:
    """Delivers to every hub started on it, in this process, each through its own queue.

    Delivery is asynchronous, as over Redis: a publisher never waits for a subscriber (two hubs
    publishing into each other while holding their room locks would otherwise deadlock).
    """

    def __init__(self) -> None:
        self._queues: list[asyncio.Queue[tuple[str, str]]] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, deliver: Deliver, resync: Resync) -> None:
        queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._queues.append(queue)
        self._tasks.append(asyncio.create_task(_pump(queue, deliver), name="local-broker"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._queues.clear()

    async def publish(self, room: str, payload: str) -> None:
        for queue in self._queues:
            queue.put_nowait((room, payload))

    async def flush(self) -> None:
        """Wait until every message published so far has been delivered."""
        for queue in list(self._queues):
            await queue.join()

    async def ping(self) -> None:
        return None


async def _pump(queue: asyncio.Queue[tuple[str, str]], deliver: Deliver) -> None:
    while True:
        room, payload = await queue.get()
        try:
            await deliver(room, payload)
        except Exception:
            log.exception("local delivery failed", extra={"room": room})
        finally:
            queue.task_done()


class RedisBroker:
    """Redis pub/sub on one channel pattern; reconnects with backoff and then asks for a resync."""

    def __init__(self, url: str, *, retry_max: float = 2.0):
        self._url = url
        # A burst of publishes (a reconnect storm's joins) waits for a pooled connection rather
        # than failing: the default pool raises MaxConnectionsError past 100 at once, and each
        # failure lost a direct frame or delayed events until a republish.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=POOL_CONNECTIONS,
            timeout=POOL_WAIT_SECONDS,
            socket_connect_timeout=2,
            socket_timeout=5,
        )
        self._redis = aioredis.Redis.from_pool(pool)
        self._retry_max = retry_max
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def start(self, deliver: Deliver, resync: Resync) -> None:
        self._task = asyncio.create_task(self._listen(deliver, resync), name="redis-broker")
        try:
            await asyncio.wait_for(self.connected.wait(), timeout=10)
        except TimeoutError as exc:
            await self.stop()
            raise BrokerError(f"cannot reach Redis at {_safe(self._url)}") from exc

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._redis.aclose()

    async def publish(self, room: str, payload: str) -> None:
        try:
            await self._redis.publish(CHANNEL + room, payload)
        except (RedisError, OSError) as exc:
            raise BrokerError(f"publish failed: {type(exc).__name__}") from exc

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            raise BrokerError(f"Redis unreachable: {type(exc).__name__}") from exc

    async def _listen(self, deliver: Deliver, resync: Resync) -> None:
        delay = RETRY_FIRST
        while True:
            try:
                await self._session(deliver, resync)
            except (RedisError, OSError) as exc:
                if self.connected.is_set():
                    log.warning("redis connection lost", extra={"error": type(exc).__name__})
                    delay = RETRY_FIRST
                self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max)

    async def _session(self, deliver: Deliver, resync: Resync) -> None:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.psubscribe(CHANNEL + "*")
            self.connected.set()
            log.info("redis subscribed", extra={"channel": CHANNEL + "*"})
            await _guarded(resync())
            while True:
                message = await pubsub.get_message(timeout=None)
                if message is not None and message["type"] == "pmessage":
                    room = message["channel"].decode()[len(CHANNEL) :]
                    await _guarded(deliver(room, message["data"].decode()))
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()


async def _guarded(work: Awaitable[None]) -> None:
    """Run a hub callback; a store outage must not kill the listener. The hub's periodic
    resync reads whatever this missed once the database is back."""
    try:
        await work
    except BidroomError as exc:
        log.warning("broker callback failed; resync will catch up", extra={"error": exc.message})


def _safe(url: str) -> str:
    """A Redis URL without its password, for messages."""
    _, sep, tail = url.rpartition("@")
    return f"{url.split('://', 1)[0]}://***@{tail}" if sep else url


def broker_for(redis_url: str | None) -> Broker:
    return RedisBroker(redis_url) if redis_url else LocalBroker()
