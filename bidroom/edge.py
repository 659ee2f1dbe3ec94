"""The HTTP edge, as two small ASGI middlewares: request bodies bounded before they are read,
and the security headers every response carries.

Bodies. Every HTTP request has a limit chosen by its method and path (:func:`body_limit`): a
login a few KiB, JSON commands tens or hundreds of KiB, a tender 1 MiB, a tus PATCH the largest
bid. A declared ``Content-Length`` over it is refused before the app runs; a body without one
(chunked) is counted as it streams and refused the moment it passes the limit. Either way the
answer is ``413 body_too_large`` with ``Connection: close`` (the rest is never read), so no
handler ever holds more than its limit in memory, whatever it does with ``request.body()``.
A body must also keep arriving: once no byte of it has come for ``body_timeout`` seconds (as
nginx's ``client_body_timeout``, between two reads), the app is told the client is gone (an
``http.disconnect``: a tus PATCH keeps what arrived, as after a cut) and the answer is ``408
body_timeout`` with ``Connection: close``. A connection whose peer vanished without a reset (an
island's link going dark) would otherwise hold its handler, and a PATCH its upload's
``upload_busy``, as long as the socket stayed open (uvicorn has no time limit on a body); and a
client trickling bodies could hold many.

Headers. A Content-Security-Policy without inline script (the pages are ES modules from this
origin), framing refused (``frame-ancestors 'none'``), ``nosniff`` and a Referrer-Policy that
sends no path off the site. The policy is what the pages use: WebCrypto and WebRTC need nothing
from CSP, the room socket needs ``ws:``/``wss:`` of this host, downloads and previews are
``blob:`` URLs and the camera's video elements play ``blob:``/MediaStream sources.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.requests import ClientDisconnect

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

KiB = 1024
MiB = 1024 * KiB

# (method, path pattern, limit in bytes); the first match wins, DEFAULT_LIMIT otherwise.
LIMITS: tuple[tuple[str, re.Pattern[str], int], ...] = (
    ("POST", re.compile(r"/api/login(/challenge)?"), 32 * KiB),
    ("POST", re.compile(r"/api/rooms"), 64 * KiB),
    ("POST", re.compile(r"/tsa"), 64 * KiB),
    ("POST", re.compile(r"/api/lots/[^/]+/evaluations"), 64 * KiB),
    ("*", re.compile(r"/api/(tenders|lots)(/.*)?"), 1 * MiB),  # a tender with its custodians
    ("POST", re.compile(r"/api/openings/[^/]+/[a-z-]+"), 64 * KiB),
    ("POST", re.compile(r"/api/evaluations/[^/]+/[a-z/-]+"), 256 * KiB),  # an answer: 20,000 chars
)
DEFAULT_LIMIT = 64 * KiB
# Seconds a body may pause between two of its pieces (nginx's client_body_timeout default): well
# beyond an island's 5-15 s outages and TCP's retransmission backoff after one; a tus PATCH cut
# here resumes from HEAD anyway.
BODY_TIMEOUT = 60.0
UPLOAD_PATCH = re.compile(r"/api/uploads/[^/]+")


def body_limit(method: str, path: str, max_bid_bytes: int) -> int:
    """The most bytes a request's body may have: a tus PATCH may carry a whole bid (its own
    check holds it to the upload's length); everything else is a small document."""
    if method == "PATCH" and UPLOAD_PATCH.fullmatch(path):
        return max_bid_bytes
    for wanted, pattern, limit in LIMITS:
        if wanted in ("*", method) and pattern.fullmatch(path):
            return limit
    return DEFAULT_LIMIT


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The request's Content-Length, None without one (the server refused malformed ones)."""
    for name, value in headers:
        if name == b"content-length" and value.isdigit():
            return int(value)
    return None


class BodyTooLarge(Exception):
    """Raised from ``receive`` once a streamed body passes its limit."""


def refusal(code: str, message: str, detail: dict[str, Any]) -> bytes:
    return json.dumps({"code": code, "message": message, "detail": detail}).encode()


def too_large_body(limit: int) -> bytes:
    message = f"the request body is larger than this endpoint takes ({limit} bytes)"
    return refusal("body_too_large", message, {"max": limit})


def stalled_body(seconds: float) -> bytes:
    message = f"no byte of the request body came for {seconds:g} s; send it again"
    return refusal("body_timeout", message, {"seconds": seconds})


async def refuse_body(send: Send, limit: int) -> None:
    await answer_closing(send, 413, too_large_body(limit))


async def answer_closing(send: Send, status: int, body: bytes) -> None:
    """A JSON error, and the connection closed after it (the rest of the body is never read)."""
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@dataclass
class _Body:
    """One request's body as it arrives: bytes counted against the limit, pauses timed."""

    receive: Receive
    limit: int
    timeout: float
    counted: int = 0
    done: bool = False  # the last piece came: later receives wait for a disconnect, untimed
    stalled: bool = False

    async def __call__(self) -> Message:
        if self.stalled:
            return {"type": "http.disconnect"}
        if self.done:
            return await self.receive()
        message: Message | None = None
        with anyio.move_on_after(self.timeout):
            message = await self.receive()
        if message is None:
            self.stalled = True
            return {"type": "http.disconnect"}  # to the app, the client is gone
        if message["type"] == "http.request":
            self.counted += len(message.get("body", b""))
            if self.counted > self.limit:
                raise BodyTooLarge
            self.done = not message.get("more_body", False)
        return message


@dataclass
class BodyLimit:
    """ASGI middleware: no request body beyond :func:`body_limit` is ever read, and none that
    pauses for more than ``body_timeout`` seconds is waited for."""

    app: ASGIApp
    max_bid_bytes: int
    body_timeout: float = BODY_TIMEOUT

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["method"], scope["path"], self.max_bid_bytes)
        declared = declared_length(scope["headers"])
        if declared is not None and declared > limit:
            await refuse_body(send, limit)
            return
        body = _Body(receive, limit, self.body_timeout)
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            if body.stalled and not started:
                return  # the app's answer to a client it thinks gone: the 408 below instead
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, body, watched_send)
        except BodyTooLarge:
            if not started:
                await refuse_body(send, limit)
            return
        except ClientDisconnect:
            if not body.stalled:
                return  # the client left mid-body: nobody to answer, nothing to log
        if body.stalled and not started:
            await answer_closing(send, 408, stalled_body(self.body_timeout))


def content_security_policy() -> str:
    """The pages' policy: scripts, styles, fonts and images from this origin only; sockets to
    this host; blob: and data: for what the pages make themselves (downloads, previews, video)."""
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' blob: data:",
        "media-src": "'self' blob:",
        "font-src": "'self'",
        "connect-src": "'self'",  # + ws:/wss: of the request's host, added per request
        "worker-src": "'self' blob:",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


POLICY = content_security_policy()
STATIC_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),  # frame-ancestors for browsers that predate CSP 2
    (b"cross-origin-opener-policy", b"same-origin"),
)
HOST = re.compile(rb"[A-Za-z0-9.\-\[\]:]{1,300}")


def policy_for(headers: list[tuple[bytes, bytes]]) -> bytes:
    """The policy with the room socket's ws:/wss: URL on the host the page was asked from
    (a host header that is not a plain host[:port] gets 'self' alone)."""
    host = next((v for k, v in headers if k == b"host"), b"")
    sockets = f" ws://{host.decode()} wss://{host.decode()}" if HOST.fullmatch(host) else ""
    return POLICY.replace("connect-src 'self'", f"connect-src 'self'{sockets}").encode()


@dataclass
class SecurityHeaders:
    """ASGI middleware: every HTTP response carries the security headers (the app's own
    headers of the same name win, none of them sets any today)."""

    app: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [(b"content-security-policy", policy_for(scope["headers"])), *STATIC_HEADERS]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                added = [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await self.app(scope, receive, with_headers)
