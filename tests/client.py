"""A real WebSocket client for the room protocol, as a test (or the benchmark) drives it.

It answers the server's pings, keeps every frame it receives, and lets a test wait for a frame
by predicate with one scalable timeout (``BIDROOM_TEST_TIMEOUT``), never by sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
from collections.abc import Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

TIMEOUT = float(os.environ.get("BIDROOM_TEST_TIMEOUT", "10"))
Frame = dict[str, Any]
_ids = itertools.count(1)


class RoomClient:
    def __init__(self, socket: ClientConnection, name: str):
        self.socket = socket
        self.name = name
        self.frames: list[Frame] = []
        self.changed = asyncio.Condition()
        self.closed: tuple[int | None, str] | None = None
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(
        cls,
        url: str,
        token: str,
        room: str,
        *,
        since: int = 0,
        role: str | None = None,
        name: str = "client",
        **kwargs: Any,
    ) -> RoomClient:
        socket = await websockets.connect(url, max_size=None, **kwargs)
        client = cls(socket, name)
        hello: Frame = {"type": "hello", "token": token, "room": room, "since": since}
        if role:
            hello["role"] = role
        await client.send(hello)
        return client

    async def send(self, frame: Frame | str) -> None:
        await self.socket.send(
            frame if isinstance(frame, str) else json.dumps(frame, ensure_ascii=False)
        )

    async def _read(self) -> None:
        try:
            async for raw in self.socket:
                frame = json.loads(raw)
                if frame.get("type") == "ping":
                    with contextlib.suppress(websockets.ConnectionClosed):
                        await self.send({"type": "pong"})
                async with self.changed:
                    self.frames.append(frame)
                    self.changed.notify_all()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed = (self.socket.close_code, self.socket.close_reason or "")
            async with self.changed:
                self.changed.notify_all()

    async def wait_for(
        self, predicate: Callable[[Frame], bool], timeout: float = TIMEOUT, start: int = 0
    ) -> Frame:
        """The first frame (from index ``start``) that matches; fails after ``timeout``."""

        async def scan() -> Frame:
            async with self.changed:
                while True:
                    for frame in self.frames[start:]:
                        if predicate(frame):
                            return frame
                    if self.closed is not None:
                        raise ConnectionError(f"{self.name} closed {self.closed} while waiting")
                    await self.changed.wait()

        return await asyncio.wait_for(scan(), timeout)

    async def wait_closed(self, timeout: float = TIMEOUT) -> tuple[int | None, str]:
        async def until() -> tuple[int | None, str]:
            async with self.changed:
                while self.closed is None:
                    await self.changed.wait()
                return self.closed

        return await asyncio.wait_for(until(), timeout)

    async def welcome(self) -> Frame:
        return await self.wait_for(lambda f: f["type"] == "welcome")

    async def command(
        self,
        name: str,
        args: Frame | None = None,
        *,
        id: str | None = None,
        timeout: float = TIMEOUT,
    ) -> Frame:
        """Send a command; the ack or error frame answering it."""
        command_id = id or f"{self.name}-{next(_ids)}"
        await self.send({"type": "command", "id": command_id, "name": name, "args": args or {}})
        return await self.reply(command_id, timeout)

    async def reply(self, command_id: str, timeout: float = TIMEOUT) -> Frame:
        return await self.wait_for(
            lambda f: f["type"] in ("ack", "error") and f.get("id") == command_id, timeout
        )

    async def event(
        self, name: str, where: Callable[[Frame], bool] = lambda f: True, timeout: float = TIMEOUT
    ) -> Frame:
        return await self.wait_for(
            lambda f: f["type"] == "event" and f["name"] == name and where(f), timeout
        )

    async def until_seq(self, seq: int, timeout: float = TIMEOUT) -> None:
        await self.wait_for(lambda f: f.get("seq", 0) >= seq and f["type"] != "welcome", timeout)

    def events(self) -> list[Frame]:
        return [f for f in self.frames if f["type"] == "event"]

    def seqs(self) -> list[int]:
        return [f["seq"] for f in self.events()]

    @property
    def last_seq(self) -> int:
        seqs = [f["seq"] for f in self.frames if f["type"] in ("event", "snapshot", "welcome")]
        return max(seqs, default=0)

    async def close(self) -> None:
        await self.socket.close()
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader
