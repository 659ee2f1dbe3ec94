"""A slow, cut-prone link for tests: an asyncio TCP proxy on 127.0.0.1 (port 0) in front of a
real server, as an island bidder's connection is (issue 13: 2 Mbit/s up, 8 down, 150 ms, every
connection cut every 30 s, 5-15 s outages).

    link = NetProxy(up=4e6, down=8e6, latency=0.05).start(upstream=node.port)
    link.url                 # give this to the client instead of the server's URL
    link.cut()               # drop every live connection now (both ends reset)
    link.outage(12)          # cut, and reset every new connection for 12 s (None: until restore())
    link.wait(lambda: link.patch_bytes() > 10 << 20, timeout=60)  # by what happened, not sleeping
    link.close()

Rules of this file:
- One thread runs the proxy's own event loop, so sync tests (Playwright's sync API keeps a loop
  of its own in the test's thread) and async tests use it alike; every public method is
  thread-safe and returns once the loop has done it.
- Rates are bytes per second per direction, shared by every connection (one link); latency is
  added to every chunk on its way; data in flight when a cut comes is lost, as on a real link.
- Counters: bytes delivered each way, connections served and refused, cuts.
- HTTP/1.1 is read as it passes (a tap, never altered): each request's method, path, headers and
  body bytes delivered to the server, and its answer's status and headers as delivered to the
  client. A WebSocket upgrade ends the reading of that connection. With the tap a test counts
  tus bytes: what the server took, and whether a PATCH re-sent bytes below an offset the server
  had already acknowledged to the client (``resent_below_ack``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

HOST = "127.0.0.1"
CHUNK = 16 << 10
QUEUED = 32  # chunks in flight per direction and connection (backpressure beyond)
HEAD_MAX = 64 << 10
T = TypeVar("T")


@dataclass
class Exchange:
    """One HTTP request that crossed the link, and its answer if that crossed too."""

    method: str
    path: str
    headers: dict[str, str]
    length: int  # the declared body length (-1: chunked)
    acked_before: int  # the highest Upload-Offset acknowledged on ``path`` when it arrived
    conn: _Conn
    body_start: int  # where its body starts in the connection's client-to-server stream
    status: int | None = None
    answer: dict[str, str] = field(default_factory=dict)

    @property
    def delivered(self) -> int:
        """Body bytes passed on to the server (the rest died in flight at a cut)."""
        return self._within(self.conn.up_delivered)

    @property
    def sent(self) -> int:
        """Body bytes the client sent into the link."""
        return self._within(self.conn.up_arrived)

    def _within(self, position: int) -> int:
        end = self.body_start + max(self.length, 0)
        return max(0, min(position, end) - self.body_start)

    @property
    def offset(self) -> int | None:
        text = self.headers.get("upload-offset", "")
        return int(text) if text.isdigit() else None


class _Bucket:
    """One direction's bandwidth, shared by every connection: bytes go out one after another."""

    def __init__(self, rate: float | None):
        self.rate = rate
        self.busy_until = 0.0

    async def take(self, size: int) -> None:
        """Wait until ``size`` bytes have gone through, after those queued before them."""
        if not self.rate:
            return
        now = time.monotonic()
        self.busy_until = max(self.busy_until, now) + size / self.rate
        await asyncio.sleep(self.busy_until - now)


class _Messages:
    """HTTP/1.1 message framing on one stream, fed as bytes pass: ``on_head(head_bytes)``
    returns the body length (-1 chunked, None: stop reading, the stream is a tunnel now)."""

    def __init__(self, on_head: Callable[[bytes], int | None]):
        self.on_head = on_head
        self.buffer = b""
        self.state = "head"  # head | body | chunk-size | chunk-data | chunk-end | trailer | off
        self.remaining = 0
        self.position = 0  # bytes of the stream seen before ``buffer``

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while self.buffer and self.state != "off":
            if not self._step():
                break
        if self.state == "off":
            self.buffer = b""

    def _step(self) -> bool:
        if self.state == "head":
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > HEAD_MAX:
                    self.state = "off"
                return False
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            self.position += end + 4
            length = self.on_head(head)
            if length is None:
                self.state = "off"
            elif length == -1:
                self.state = "chunk-size"
            elif length > 0:
                self.state, self.remaining = "body", length
            return True
        if self.state in ("body", "chunk-data"):
            take = min(self.remaining, len(self.buffer))
            self.buffer, self.remaining = self.buffer[take:], self.remaining - take
            self.position += take
            if not self.remaining:
                self.state = "head" if self.state == "body" else "chunk-end"
            return True
        line_end = self.buffer.find(b"\r\n")
        if line_end < 0:
            return False
        line, self.buffer = self.buffer[:line_end], self.buffer[line_end + 2 :]
        self.position += line_end + 2
        if self.state == "chunk-size":
            size = int(line.split(b";")[0].strip() or b"0", 16)
            self.state, self.remaining = ("chunk-data", size) if size else ("trailer", 0)
        elif self.state == "chunk-end":
            self.state = "chunk-size"
        elif self.state == "trailer" and not line:
            self.state = "head"
        return True


def _headers(head: bytes) -> tuple[str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers


def _body_length(headers: dict[str, str]) -> int:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return -1
    text = headers.get("content-length", "0")
    return int(text) if text.isdigit() else 0


class _Conn:
    """One client connection and its upstream twin, with the HTTP tap of both directions."""

    def __init__(self, proxy: NetProxy, client: asyncio.StreamWriter):
        self.proxy = proxy
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.up_delivered = 0
        self.up_arrived = 0
        self.waiting: list[Exchange] = []  # requests whose answers have not passed yet
        self.requests = _Messages(self._on_request)
        self.answers = _Messages(self._on_answer)

    def _on_request(self, head: bytes) -> int | None:
        line, headers = _headers(head)
        method, _, rest = line.partition(" ")
        path = rest.rsplit(" ", 1)[0].split("?")[0]
        length = _body_length(headers)
        acked = self.proxy.acked.get(path, 0)
        exchange = Exchange(method, path, headers, length, acked, self, self.requests.position)
        self.waiting.append(exchange)
        self.proxy.exchanges.append(exchange)
        return None if headers.get("upgrade") else length

    def _on_answer(self, head: bytes) -> int | None:
        line, headers = _headers(head)
        status = int(line.split(" ")[1])
        if status < 200 and status != 101:
            return 0  # an interim answer (100 Continue): the real one follows
        exchange = self.waiting.pop(0) if self.waiting else None
        if exchange is not None:
            exchange.status, exchange.answer = status, headers
            offset = headers.get("upload-offset", "")
            if status in (200, 204) and offset.isdigit():
                known = self.proxy.acked.get(exchange.path, 0)
                self.proxy.acked[exchange.path] = max(known, int(offset))
        if status == 101:
            return None
        if status in (204, 304) or (exchange is not None and exchange.method == "HEAD"):
            return 0
        framed = "content-length" in headers or "transfer-encoding" in headers
        return _body_length(headers) if framed else None  # else it ends with the connection

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                _reset(writer)
        for task in self.tasks:
            task.cancel()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a reset (SO_LINGER 0), as a cut link or a refusing firewall looks."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class NetProxy:
    """The link; see the module's docstring."""

    def __init__(self, *, up: float | None = None, down: float | None = None, latency: float = 0.0):
        self.up_rate, self.down_rate, self.latency = up, down, latency
        self.upstream = 0
        self.port = 0
        self.up_bytes = 0  # delivered to the server
        self.down_bytes = 0  # delivered to the client
        self.connections = 0
        self.refused = 0
        self.cuts = 0
        self.exchanges: list[Exchange] = []
        self.acked: dict[str, int] = {}  # path -> highest Upload-Offset delivered to the client
        self._live: set[_Conn] = set()
        self._serving: set[asyncio.Task[Any]] = set()
        self._down_until = 0.0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._changed = threading.Condition()
        self._up = _Bucket(up)
        self._down = _Bucket(down)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    # the test's side -------------------------------------------------------------------------

    def start(self, upstream: int = 0) -> NetProxy:
        """Listen (port 0); ``upstream`` may also be set later, before the first client."""
        self.upstream = upstream
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._serve, HOST, 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def close(self) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            self._down_until = math.inf
            self._cut()
            await asyncio.gather(*self._serving, return_exceptions=True)
            await self._server.wait_closed()

        with contextlib.suppress(RuntimeError):
            self._call(stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def cut(self) -> int:
        """Drop every live connection now; how many there were."""
        return self._call(self._async(self._cut))

    def outage(self, seconds: float | None = None) -> None:
        """Cut, and reset every new connection for ``seconds`` (None: until restore())."""
        until = math.inf if seconds is None else time.monotonic() + seconds

        def down() -> None:
            self._down_until = until
            self._cut()

        self._call(self._async(down))

    def restore(self) -> None:
        self._call(self._async(lambda: setattr(self, "_down_until", 0.0)))

    @property
    def is_down(self) -> bool:
        return time.monotonic() < self._down_until

    def wait(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Until ``predicate()`` holds (checked whenever bytes pass); AssertionError after
        ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the link never got there in {timeout} s")
                self._changed.wait(min(left, 0.5))

    # tus figures -------------------------------------------------------------------------------

    def patches(self, path_part: str = "/api/uploads/") -> list[Exchange]:
        return [e for e in self.exchanges if e.method == "PATCH" and path_part in e.path]

    def patch_bytes(self) -> int:
        """PATCH body bytes passed on to the server, over every upload."""
        return sum(e.delivered for e in self.patches())

    def patch_starts(self) -> list[tuple[int | None, int]]:
        """Each PATCH's Upload-Offset beside the highest offset the server had acknowledged
        to the client (HEAD or PATCH answers delivered) when the PATCH arrived at the link:
        a client that resumes from the server's offset, never from its own count, has the
        two equal every time."""
        return [(e.offset, e.acked_before) for e in self.patches()]

    def resent_below_ack(self) -> int:
        """PATCH body bytes sent again although the server had acknowledged them to the client
        (HEAD or PATCH Upload-Offset delivered before the PATCH arrived at the link)."""
        total = 0
        for e in self.patches():
            if e.offset is not None and e.offset < e.acked_before:
                total += min(e.acked_before - e.offset, max(e.length, 0))
        return total

    # the loop's side ----------------------------------------------------------------------------

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(30)

    @staticmethod
    async def _async(fn: Callable[[], T]) -> T:
        return fn()

    def _cut(self) -> int:
        live = list(self._live)
        for conn in live:
            conn.abort()
        self._live.clear()
        self.cuts += 1
        self._notify()
        return len(live)

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._serving.add(task)
        try:
            await self._relay(reader, writer)
        finally:
            self._serving.discard(task)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.is_down or not self.upstream:
            self.refused += 1
            _reset(writer)
            return
        conn = _Conn(self, writer)
        try:
            up_reader, conn.upstream = await asyncio.open_connection(HOST, self.upstream)
        except OSError:
            self.refused += 1
            _reset(writer)
            return
        self.connections += 1
        self._live.add(conn)
        conn.tasks = [
            asyncio.create_task(self._pipe(conn, reader, conn.upstream, upward=True)),
            asyncio.create_task(self._pipe(conn, up_reader, writer, upward=False)),
        ]
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*conn.tasks)
        self._live.discard(conn)
        for end in (writer, conn.upstream):
            end.close()

    async def _pipe(
        self,
        conn: _Conn,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        *,
        upward: bool,
    ) -> None:
        """One direction: read as it comes, deliver after the latency at the link's rate."""
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(QUEUED)

        async def read() -> None:
            try:
                while data := await source.read(CHUNK):
                    if upward:
                        conn.up_arrived += len(data)
                        conn.requests.feed(data)  # a request is known when it arrives here
                    await queue.put((time.monotonic() + self.latency, data))
            except (ConnectionError, OSError):
                pass
            await queue.put(None)

        reading = asyncio.create_task(read())
        try:
            while (item := await queue.get()) is not None:
                due, data = item
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                await (self._up if upward else self._down).take(len(data))
                sink.write(data)
                await sink.drain()
                self._delivered(conn, data, upward)
            if sink.can_write_eof():
                sink.write_eof()
        except (ConnectionError, OSError):
            conn.abort()
        finally:
            reading.cancel()

    def _delivered(self, conn: _Conn, data: bytes, upward: bool) -> None:
        if upward:
            self.up_bytes += len(data)
            conn.up_delivered += len(data)
        else:
            self.down_bytes += len(data)
            conn.answers.feed(data)  # an acknowledgement counts once the client has it
        self._notify()
