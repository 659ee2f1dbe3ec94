"""bidroom.wire under a real uvicorn, configured as `bidroom serve` runs it, and real clients."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
import websockets
from client import TIMEOUT
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from bidroom import wire

TEXTS = ["短", "长" * 60, "x" * 300, "开标" * 40_000]  # 7-bit, 16-bit and 64-bit frame lengths


@contextlib.asynccontextmanager
async def _serve(deflate: bool, endpoint: object) -> AsyncIterator[str]:
    app = Starlette(
        routes=[WebSocketRoute("/ws", endpoint)],  # type: ignore[arg-type]
        middleware=[Middleware(wire.ServerSend)],
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    config = uvicorn.Config(
        app,
        lifespan="off",
        ws="websockets-sansio",  # as `bidroom serve` runs it
        ws_per_message_deflate=deflate,  # `bidroom serve`: off
        log_level="warning",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"ws://127.0.0.1:{sock.getsockname()[1]}/ws"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.mark.parametrize("deflate", [False, True])
async def test_frames_written_on_the_wire_arrive_as_sent(deflate: bool) -> None:
    """Under `bidroom serve`'s protocol and settings frames go straight to the socket, encoded
    once for several clients; with per-message compression (bytes differ per client) they
    must take the ASGI way."""
    frames = wire.Frames()
    found: list[bool] = []

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        direct = wire.Wire.of(websocket.scope, frames)
        found.append(direct is not None)
        for text in TEXTS:
            if direct is None or not direct.offer(text):
                await websocket.send_text(text)
        await websocket.receive()  # until the client closes

    async with _serve(deflate, endpoint) as url:
        clients = [
            await websockets.connect(url, max_size=None, compression="deflate") for _ in range(2)
        ]
        for client in clients:
            got = [await asyncio.wait_for(client.recv(), TIMEOUT) for _ in TEXTS]
            assert got == TEXTS
            await client.close()
    assert found == [not deflate] * 2
