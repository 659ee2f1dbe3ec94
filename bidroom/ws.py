"""The WebSocket shell: decode a frame, call the hub, queue the answer. No room logic here.

The hub only ever calls :meth:`Connection.push`, which never waits: a frame goes onto the socket
at once when the socket takes it (bidroom.wire), else into the connection's bounded backlog,
which exactly one writer task empties; a client whose backlog is full is closed with
``TOO_SLOW`` (reconnect and resume) instead of slowing the room. Reader, writer and heartbeat run
as sibling tasks and end together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from bidroom import media, protocol, signed, tokens, wire
from bidroom.errors import (
    AuthError,
    BidroomError,
    HttpRefusal,
    ProtocolError,
    Refused,
    RoomNotFound,
    RoomTampered,
)
from bidroom.hub import Hub, LiveRoom, Recipient
from bidroom.metrics import Metrics
from bidroom.protocol import Close, CommandFrame, Hello, Ping, SignalFrame
from bidroom.room import Actor, Command, RoomType
from bidroom.sessions import Sessions
from bidroom.settings import Settings
from signaling import ice, messages, rules
from signaling.errors import SignalingError

log = logging.getLogger(__name__)

CLOSE_GRACE = 2.0
REFUSAL_CLOSE = {"removed": Close.REMOVED}


@dataclass
class RateLimit:
    """A token bucket: ``rate`` commands a second, bursts of ``2 * rate``."""

    rate: float
    tokens: float = field(default=0.0)
    stamp: float = field(default=0.0)

    def allow(self, now: float) -> bool:
        burst = 2 * self.rate
        self.tokens = (
            min(burst, self.tokens + (now - self.stamp) * self.rate) if self.stamp else burst
        )
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Connection:
    """One client's socket, as the hub's Subscriber.

    A frame pushed while nothing waits before it and the socket's transport takes more goes
    onto the socket at once (bidroom.wire: the frame's bytes encoded once for every recipient).
    Otherwise it waits in the backlog, which the one writer task empties in order, as many
    frames a wake-up as are there; a backlog of ``queue_size`` frames closes the connection as
    too slow."""

    def __init__(
        self,
        websocket: WebSocket,
        settings: Settings,
        metrics: Metrics,
        frames: wire.Frames,
    ):
        self.websocket = websocket
        self.id = f"{settings.node_id}/{uuid.uuid4().hex[:16]}"
        self.actor = Actor(subject="", name="", role="")
        self.backlog: deque[str] = deque()
        self.limit = settings.queue_size
        self.closing: tuple[int, str] | None = None
        self.closed = asyncio.Event()
        self.last_heard = time.monotonic()
        self.welcomed = asyncio.Event()  # the first frame (the welcome) is on the wire
        self.wire: wire.Wire | None = None  # set once accepted, where the server allows it
        self._frames = frames
        self._queued = asyncio.Event()  # the backlog has frames for the writer
        self._drained = asyncio.Event()  # the backlog is empty and nothing is being written
        self._drained.set()
        self._metrics = metrics

    def accepted(self) -> None:
        """The handshake is done: frames may take the direct way from now on."""
        self.wire = wire.Wire.of(self.websocket.scope, self._frames)

    def push(self, frame: str) -> None:
        if self.closing is not None:
            return
        if not self.backlog and self.wire is not None and self.wire.offer(frame):
            self.welcomed.set()
            return
        if len(self.backlog) >= self.limit:
            self._metrics.queue_drops.inc()
            log.warning("client too slow; closing", extra={"connection": self.id})
            self.close(Close.TOO_SLOW, "too slow: reconnect and resume")
            return
        self.backlog.append(frame)
        self._drained.clear()
        self._queued.set()

    def send(self, frame: dict[str, Any]) -> None:
        self.push(protocol.dump(frame))

    def close(self, code: int, reason: str) -> None:
        if self.closing is None:
            self.closing = (int(code), reason)
            self.closed.set()

    async def writer(self) -> None:
        """The one task that writes what had to wait, in order, from the moment the socket is
        accepted: the welcome goes out as soon as the hub queues it, not after the join. A frame
        leaves the backlog only once written, so a push meanwhile queues behind it."""
        while True:
            await self._queued.wait()
            while self.backlog:
                await self._write(self.backlog[0])
                self.backlog.popleft()
                self.welcomed.set()
            self._queued.clear()
            self._drained.set()

    async def _write(self, frame: str) -> None:
        if self.wire is not None:
            await self.wire.writable()
            if self.wire.open():
                self.wire.write(frame)
                return
        await self.websocket.send_text(frame)  # the ASGI way; raises if the client is gone

    async def flush(self) -> None:
        """Wait until every queued frame is written (callers bound the wait)."""
        await self._drained.wait()

    async def reader(self, on_message: Any) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            self.last_heard = time.monotonic()  # any frame is a sign of life
            text = message.get("text")
            if text is None:
                self.send(protocol.error_frame("bad_json", "binary frames are not supported"))
                continue
            await on_message(text)

    async def heartbeat(self, interval: float) -> None:
        """Ping every ``interval`` from the welcome on; close a client silent for two. Started
        once the join is done, when the reader starts too: a client that waited for a slow join
        has been silent because nobody was reading it, so the timer starts afresh here."""
        await self.welcomed.wait()
        self.last_heard = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            if time.monotonic() - self.last_heard > 2 * interval:
                self.close(Close.HEARTBEAT_TIMEOUT, "no heartbeat: reconnect and resume")
                return
            self.send(protocol.ping_frame())


class Session:
    """The life of one WebSocket: hello, attach to a room, serve frames, detach."""

    def __init__(
        self,
        websocket: WebSocket,
        hub: Hub,
        settings: Settings,
        metrics: Metrics,
        frames: wire.Frames,
        sessions: Sessions,
    ):
        self.hub = hub
        self.settings = settings
        self.sessions = sessions
        self.identity: tokens.Identity | None = None  # the session's, once attached
        self.conn = Connection(websocket, settings, metrics, frames)
        self.room = ""
        self.limit = RateLimit(settings.commands_per_second)
        self.signal_limit = RateLimit(settings.signals_per_second)
        self.signal_limits = messages.Limits(sdp=settings.max_sdp_bytes)
        self.peers: dict[tuple[str, str], Recipient] = {}  # (subject, session) -> addressee

    async def run(self) -> None:
        websocket = self.conn.websocket
        await websocket.accept()
        self.conn.accepted()
        writer = asyncio.create_task(self.conn.writer(), name=f"writer {self.conn.id}")
        try:
            try:
                hello = await self._hello()
                await self._attach(hello)
            except _Refusal as refusal:
                await self._refuse(refusal)
                return
            try:
                await self._serve(writer)
            finally:
                await self._farewell()
                await self.hub.detach(self.room, self.conn)
                await self._close()
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    async def _hello(self) -> Hello:
        try:
            message = await asyncio.wait_for(
                self.conn.websocket.receive(), self.settings.hello_timeout_seconds
            )
        except TimeoutError:
            raise _Refusal(Close.PROTOCOL_VIOLATION, "hello_timeout", "no hello in time") from None
        except (WebSocketDisconnect, RuntimeError):
            raise _Refusal(Close.NORMAL, "gone", "client left before hello") from None
        if message["type"] == "websocket.disconnect":
            raise _Refusal(Close.NORMAL, "gone", "client left before hello")
        self.conn.last_heard = time.monotonic()
        text = message.get("text")
        if text is None:
            raise _Refusal(Close.PROTOCOL_VIOLATION, "not_joined", "the first frame must be hello")
        try:
            frame = protocol.parse(text, self.settings.max_frame_bytes)
        except ProtocolError as exc:
            code = Close.UNAUTHORIZED if exc.code == "token_missing" else Close.PROTOCOL_VIOLATION
            raise _Refusal(code, exc.code, exc.message) from None
        if not isinstance(frame, Hello):
            raise _Refusal(Close.PROTOCOL_VIOLATION, "not_joined", "the first frame must be hello")
        return frame

    async def _attach(self, hello: Hello) -> None:
        try:
            identity = self.sessions.verify(hello.token, self.hub.clock())
            self.identity = identity
            live = await self.hub.room(hello.room)
            role = tokens.role_for(identity, hello.role, sorted(live.kind.roles(live.state)))
            if role in rules.RECEIVE_ONLY or identity.subject in rules.RESERVED_SUBJECTS:
                # the server's own media participant: its role and its name are reserved
                raise _Refusal(Close.FORBIDDEN, "not_allowed", "no socket acts as the recorder")
            if role is None:
                raise _Refusal(Close.FORBIDDEN, "not_allowed", f"you do not hold role {hello.role}")
            self.conn.actor = Actor(
                identity.subject, identity.name, role, identity.venue, identity.organisation
            )
            self.room = hello.room
            await self.hub.attach(hello.room, self.conn, hello.since)
            await self._media(media.peers(live.kind, role))
        except AuthError as exc:
            raise _Refusal(Close.UNAUTHORIZED, exc.code, exc.message) from None
        except RoomNotFound as exc:
            raise _Refusal(Close.ROOM_NOT_FOUND, exc.code, exc.message) from None
        except RoomTampered as exc:  # alarmed by the hub
            raise _Refusal(Close.ROOM_TAMPERED, exc.code, exc.message, dict(exc.detail)) from None
        except Refused as exc:
            code = REFUSAL_CLOSE.get(exc.code, Close.FORBIDDEN)
            raise _Refusal(code, exc.code, exc.message, dict(exc.detail)) from None
        except BidroomError as exc:
            raise _Refusal(Close.INTERNAL_ERROR, "unavailable", exc.message) from None

    async def _serve(self, writer: asyncio.Task[None]) -> None:
        """Read, write and keep the heartbeat until one of them ends; then end them all, the
        writer (started at accept) included."""
        conn = self.conn
        tasks = [
            asyncio.create_task(conn.reader(self._on_message)),
            asyncio.create_task(conn.heartbeat(self.settings.heartbeat_seconds)),
            asyncio.create_task(conn.closed.wait()),
        ]
        try:
            done, _ = await asyncio.wait([*tasks, writer], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        except (WebSocketDisconnect, OSError, RuntimeError):
            conn.close(Close.NORMAL, "")
        finally:
            for task in (*tasks, writer):  # the writer ends here too: nothing is written after
                task.cancel()
            await asyncio.gather(*tasks, writer, return_exceptions=True)

    async def _on_message(self, text: str) -> None:
        try:
            frame = protocol.parse(text, self.settings.max_frame_bytes)
        except ProtocolError as exc:
            self.conn.send(protocol.error_frame(exc.code, exc.message, exc.detail))
            return
        if isinstance(frame, Ping):
            self.conn.send(protocol.pong_frame())
        elif isinstance(frame, CommandFrame):
            await self._command(frame)
        elif isinstance(frame, SignalFrame):
            await self._signal(frame)
        elif isinstance(frame, Hello):
            self.conn.send(protocol.error_frame("bad_message", "already joined; one room a socket"))

    async def _command(self, frame: CommandFrame) -> None:
        if not self.limit.allow(time.monotonic()):
            self.conn.send(protocol.error_frame("rate_limited", "slow down", {}, frame.id))
            return
        try:  # a session whose certificate was revoked since the hello ends here
            assert self.identity is not None
            self.sessions.check(self.identity, self.hub.clock())
        except AuthError as exc:
            self.conn.send(protocol.error_frame(exc.code, exc.message, {}, frame.id))
            self.conn.close(Close.UNAUTHORIZED, exc.code)
            return
        try:
            live = await self.hub.room(self.room)
            command = protocol.command_from(frame, live.kind.arguments)
            await self._verify_signed(live, command)
            outcome = await self.hub.execute(self.room, command, self.conn.actor, frame.id)
        except ProtocolError as exc:
            self.conn.send(protocol.error_frame(exc.code, exc.message, exc.detail, frame.id))
            return
        except HttpRefusal as exc:  # a signature refused (signed.verify_action's codes)
            self.conn.send(protocol.error_frame(exc.code, exc.message, dict(exc.detail), frame.id))
            return
        except RoomTampered as exc:  # alarmed by the hub; the room's connections are closed
            self.conn.send(protocol.error_frame(exc.code, exc.message, dict(exc.detail), frame.id))
            self.conn.close(Close.ROOM_TAMPERED, exc.code)
            return
        except BidroomError as exc:
            log.warning("command not recorded", extra={"room": self.room, "error": exc.message})
            self.conn.send(protocol.error_frame("unavailable", exc.message, {}, frame.id))
            return
        if outcome["ok"]:
            self.conn.send(protocol.ack_frame(frame.id, outcome["seqs"]))
        else:
            self.conn.send(
                protocol.error_frame(
                    outcome["code"], outcome["message"], outcome["detail"], frame.id
                )
            )

    async def _verify_signed(self, live: Any, command: Command) -> None:
        """A command the room type lists as signed, carrying a signature: checked as a signed
        action of the session's holder (docs/opening.md "Signed actions") over ``room`` and the
        fields it covers, before the hub sees it. Whether one is needed is the core's to say."""
        covered = live.kind.signed.get(command.name)
        if covered is None or command.args.get("signature") is None:
            return
        who = self.identity  # the session's own: its subject and the certificate it is bound to
        assert who is not None
        fields = {"room": self.room, **{name: command.args.get(name) for name in covered}}
        body = {k: command.args.get(k) for k in ("certificate", "chain", "signature")}
        await signed.verify_action(
            self.settings, self.hub.store, who, body, command.name, fields, self.hub.clock()
        )

    # media signaling (docs/protocol.md "Media signaling") ---------------------------------

    async def _media(self, peers: list[str]) -> None:
        """The ICE servers and who is there to reach, to a participant whose role may signal
        someone in this room; and to each of those, that this connection came online."""
        if not peers:
            return
        live = await self.hub.room(self.room)
        actor = self.conn.actor
        now = self.hub.clock()
        held = self.hub.presence.held()  # departures not yet recorded: no socket there
        frame = media_frame_for(self.settings, now, live.kind, live.state, actor, peers, held)
        self.conn.send(frame)
        joined = media.joined_frame(actor, self.conn.id)
        reachable = media.recipients(live.kind, live.state, actor)
        await self.hub.direct_many(self.room, reachable, joined)

    async def _signal(self, frame: SignalFrame) -> None:
        """Relay a signal to its addressee's connections on every node; refusals answer."""
        if not self.signal_limit.allow(time.monotonic()):
            self.conn.send(protocol.error_frame("rate_limited", "slow down", {}, frame.id))
            return
        try:
            signal = messages.parse_signal(frame.fields, self.signal_limits)
            live = await self.hub.room(self.room)
            to = media.route(live.kind, live.state, self.conn.actor, signal)
        except SignalingError as exc:
            self.conn.send(protocol.error_frame(exc.code, exc.message, exc.detail, frame.id))
            return
        out = messages.forward_json(signal, self.conn.actor.to_json(), self.conn.id)
        await self.hub.direct(self.room, to, out)
        if signal.kind == "bye":
            self.peers.pop((signal.to, signal.session), None)
        else:
            self.peers[(signal.to, signal.session)] = to

    async def _farewell(self) -> None:
        """A ``bye`` to every peer this connection negotiated with and did not say bye to."""
        actor = self.conn.actor.to_json()
        for (subject, session), to in list(self.peers.items()):
            bye = messages.Bye(kind="bye", to=subject, session=session)
            frame = {**messages.forward_json(bye, actor, self.conn.id), "reason": "left"}
            with contextlib.suppress(BidroomError):
                await self.hub.direct(self.room, to, frame)
        self.peers.clear()

    async def _refuse(self, refusal: _Refusal) -> None:
        """The refusal's error frame after whatever is queued (through the one writer), then
        the close code."""
        websocket = self.conn.websocket
        if websocket.application_state == WebSocketState.CONNECTED and refusal.code != Close.NORMAL:
            self.conn.send(protocol.error_frame(refusal.error, refusal.message, refusal.detail))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.conn.flush(), CLOSE_GRACE)
        self.conn.close(refusal.code, refusal.error)
        await self._close()

    async def _close(self) -> None:
        code, reason = self.conn.closing or (Close.NORMAL, "")
        websocket = self.conn.websocket
        if websocket.application_state != WebSocketState.CONNECTED:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(websocket.close(code, reason[:120]), CLOSE_GRACE)


def ice_for(settings: Settings, subject: str, now: datetime) -> tuple[list[Any], int | None]:
    """The ICE servers for ``subject`` (TURN credentials minted for them, coturn's REST form)
    and until when the credentials last (None: no TURN)."""
    s = settings
    at = int(now.timestamp())
    secret = s.turn_secret.get_secret_value() if s.turn_secret else None
    servers = ice.ice_servers(s.stun_urls, s.turn_urls, secret, subject, at, s.turn_ttl_seconds)
    expires = at + s.turn_ttl_seconds if s.turn_urls else None
    return [x.to_json() for x in servers], expires


def media_frame_for(
    settings: Settings,
    now: datetime,
    kind: RoomType[Any],
    state: Any,
    actor: Actor,
    peers: list[str],
    held: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The media frame for ``actor``: ICE servers (TURN credentials minted for them), the roles
    they may signal, who is there to reach now (not at a ``held`` connection), and who only
    answers."""
    servers, expires = ice_for(settings, actor.subject, now)
    present = [
        {**p, "connections": [c for c in p["connections"] if c not in held]}
        for p in media.present(kind, state, actor)
        if set(p["connections"]) - held
    ]
    receive_only = sorted(rules.RECEIVE_ONLY)
    return protocol.media_frame(servers, peers, expires, present, receive_only)


class MediaWatch:
    """A hub observer: when seats change who may see whom (an expert seated on the committee, or
    leaving it), this node's subscribers in the room are told: the newly seated a fresh media
    frame (they offer to everyone present), the others ``peer`` joined or left."""

    def __init__(self, settings: Settings, clock: Any):
        self.settings = settings
        self.clock = clock

    def __call__(self, live: LiveRoom, before: Any) -> None:
        if media.seats(live.kind, before) == media.seats(live.kind, live.state):
            return
        for subscriber in list(live.subscribers.values()):
            actor = subscriber.actor
            fresh, frames = media.seat_changes(live.kind, before, live.state, actor)
            if fresh:
                peers = media.peers(live.kind, actor.role)
                frame = media_frame_for(
                    self.settings, self.clock(), live.kind, live.state, actor, peers
                )
                subscriber.push(protocol.dump(frame))
            for frame in frames:
                subscriber.push(protocol.dump(frame))


class _Refusal(Exception):
    def __init__(self, code: int, error: str, message: str, detail: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.error = error
        self.message = message
        self.detail = detail or {}


async def endpoint(websocket: WebSocket) -> None:
    state = websocket.app.state
    await Session(
        websocket, state.hub, state.settings, state.metrics, state.frames, state.sessions
    ).run()
