"""The cheapest way to put a text frame on a client's socket: encoded once, written straight on.

A room's event goes to every connection that may see it. Through ASGI each copy costs a wake-up of
the connection's writer task, starlette's and uvicorn's send layers, a fresh UTF-8 encoding and a
fresh WebSocket frame (issue 13: 2.5-6x a bare ``websockets.broadcast`` server's CPU per frame).
When the server is uvicorn's ``websockets-sansio`` protocol (``bidroom serve`` runs it, with
per-message compression off), a server-to-client text frame is the same bytes for every client:
:class:`Frames` encodes it once, and :class:`Wire` writes those bytes to the socket's transport at
once, as ``websockets.broadcast`` does, while the transport takes them (not paused for a slow
reader, the connection open). Anything else goes the ordinary ASGI way; so does every frame under
any other server, compression, or once the WebSocket is closing.

:class:`ServerSend` is the middleware that lets the endpoint see the server's own ``send``
(starlette hands the endpoint a wrapped one).
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State

SERVER_SEND = "bidroom.server_send"  # the scope key ServerSend sets
USED = ("conn", "transport", "writable", "close_sent")  # what Wire reads of uvicorn's protocol


class ServerSend:
    """ASGI middleware: for WebSocket scopes, keep the server's ``send`` in the scope."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope[SERVER_SEND] = send
        await self.app(scope, receive, send)


def encode(text: str) -> bytes:
    """A server's (unmasked, uncompressed) WebSocket text frame carrying ``text``."""
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


class Frames:
    """The last text encoded, and its frame: the hub pushes one string object to all of an
    event's recipients in a row, so each event is encoded once, whatever their number."""

    def __init__(self) -> None:
        self._text = ""
        self._frame = encode("")

    def frame(self, text: str) -> bytes:
        if text is not self._text:
            self._frame = encode(text)
            self._text = text
        return self._frame


class Wire:
    """One accepted WebSocket's transport, written to without ASGI."""

    def __init__(self, protocol: WebSocketsSansIOProtocol, frames: Frames):
        self._protocol = protocol
        self._frames = frames

    @classmethod
    def of(cls, scope: Scope, frames: Frames) -> Wire | None:
        """The wire of an accepted WebSocket, or None where frames must go through ASGI."""
        protocol: Any = getattr(scope.get(SERVER_SEND), "__self__", None)
        if not isinstance(protocol, WebSocketsSansIOProtocol):
            return None  # another server
        if not all(hasattr(protocol, name) for name in USED):
            return None  # another uvicorn than the one locked: tests/bidroom/test_wire.py says
        if protocol.conn.extensions:
            return None  # per-message compression: the bytes differ per client
        return cls(protocol, frames)

    def open(self) -> bool:
        """Frames may still be written: no close sent or received, the transport up."""
        p = self._protocol
        return p.conn.state is State.OPEN and not p.close_sent and not p.transport.is_closing()

    def offer(self, text: str) -> bool:
        """Write ``text`` now if the transport takes more (not paused above its high-water
        mark) and the connection is open; whether it did. Once per recipient: kept inline."""
        p = self._protocol
        if not p.writable.is_set() or p.conn.state is not State.OPEN or p.close_sent:
            return False
        if p.transport.is_closing():
            return False
        p.transport.write(self._frames.frame(text))
        return True

    async def writable(self) -> None:
        """Until the transport takes more (or the connection is lost)."""
        await self._protocol.writable.wait()

    def write(self, text: str) -> None:
        self._protocol.transport.write(self._frames.frame(text))
