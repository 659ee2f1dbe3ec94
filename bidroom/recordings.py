"""The evaluation recorder on this node: the chair's HTTP steps, the server-side participant
(a hub subscriber that answers offers through a media backend) and its clock.

    POST /api/evaluations/{room}/recording/start   chair: the recorder joins the room here
    POST /api/evaluations/{room}/recording/stop    chair: any node; the recorder's node stops
    GET  /api/evaluations/{room}/recording         committee and watchers: status and files

How a stop reaches the recorder whatever node the request lands on: the chair's stop is a room
command (``recording.request_stop``); the recorder is a subscriber of its room, hears the event,
closes its files, hashes them and records ``recording.stop`` with the hashes. The request waits
for that (up to :data:`STOP_WAIT`) and answers with the files.

The participant is receive-only (role ``recorder``): the pages offer it their tracks (it never
offers), each page as it learns the recorder is there (``peer`` joined, or ``present`` in its
media frame). Its signals go through bidroom.media.route as any participant's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bidroom import evaluation, media, protocol, recording
from bidroom.api import identity
from bidroom.compose import Composite
from bidroom.errors import BidroomError, EvaluationRefused, Refused
from bidroom.evaluations import _actor, _live, part
from bidroom.hub import Hub, LiveRoom, Recipient
from bidroom.protocol import Close
from bidroom.room import SYSTEM, Actor, Command
from bidroom.settings import Settings
from bidroom.tender_api import guarded
from signaling import ice, messages
from signaling.aiortc_backend import AiortcBackend
from signaling.backend import MediaBackend, Peer, RecordedFile
from signaling.errors import SignalingError, SignalNotAllowed
from signaling.relay import Caps

log = logging.getLogger(__name__)

RECORDER = Actor(subject="recorder", name="录像", role=recording.RECORDER)
ENDED = frozenset({"signed", "sealed"})  # the session's phases after which nothing is recorded
STOP_WAIT = 30.0
QUEUE = 1000


def recording_state(live: LiveRoom) -> recording.RecordingState:
    part(live)  # an evaluation room, or 404
    assert isinstance(live.kind, Composite)
    state: recording.RecordingState = live.kind.part_state(live.state, "recording")
    return state


def recorder_online(live: LiveRoom) -> bool:
    present = media.presence(live.kind, live.state).participants.get(RECORDER.subject)
    return present is not None and present.online


class Recorder:
    """The server's participant in one room: a hub subscriber whose signals a backend answers.

    Frames the hub pushes are queued and handled one at a time, in order, by :meth:`run`."""

    def __init__(self, hub: Hub, room: str, backend: MediaBackend, on_stop: Any):
        self.hub = hub
        self.room = room
        self.backend = backend
        self.actor = RECORDER
        self.id = f"{hub.node}/recorder-{uuid.uuid4().hex[:12]}"
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE)
        self.sessions: dict[str, tuple[Peer, str]] = {}  # subject -> (peer, session)
        self.on_stop = on_stop  # called with the reason when the room asks this recorder to stop
        self.task: asyncio.Task[None] | None = None

    # the hub's Subscriber
    def push(self, frame: str) -> None:
        data = json.loads(frame)
        kind = data.get("type")
        if kind == "event" and data.get("name") == "recording.stop_requested":
            self.on_stop(self.room, str(data["data"].get("reason", "requested")))
        elif kind == "signal" or (kind == "peer" and data.get("event") == "left"):
            try:
                self.queue.put_nowait(data)
            except asyncio.QueueFull:
                log.warning("recorder queue full: signal dropped", extra={"room": self.room})

    def close(self, code: Close, reason: str) -> None:
        """The hub closes a subscriber the chair removed: the recording stops as asked."""
        self.on_stop(self.room, "requested")

    async def run(self) -> None:
        while True:
            frame = await self.queue.get()
            try:
                await self._handle(frame)
            except SignalingError as exc:
                await self._refuse(frame, exc)
            except BidroomError as exc:
                log.warning("recorder signal not answered", extra={"error": exc.message})

    async def _handle(self, frame: Mapping[str, Any]) -> None:
        if frame["type"] == "peer":  # no longer ours to record (an expert left the committee)
            subject = str(frame["peer"]["subject"])
            known = self.sessions.pop(subject, None)
            if known is not None:
                await self.backend.bye(subject, known[1])
            return
        peer = Peer.from_json(dict(frame["from"]))
        session = str(frame["session"])
        kind = frame["kind"]
        if kind == "offer":
            feed = frame.get("feed")
            if feed is not None:
                await self._may_view(peer, str(feed))
            answer = await self.backend.offer(peer, session, str(frame["sdp"]), feed)
            self.sessions[peer.subject] = (peer, session)
            to, via = peer.subject, peer.connection
            await self._send(
                messages.Answer(kind="answer", to=to, session=session, connection=via, sdp=answer)
            )
        elif kind == "candidate":
            await self.backend.candidate(
                peer,
                session,
                str(frame.get("candidate", "")),
                frame.get("sdpMid"),
                frame.get("sdpMLineIndex"),
            )
        elif kind == "bye":
            self.sessions.pop(peer.subject, None)
            await self.backend.bye(peer.subject, session)

    async def _may_view(self, peer: Peer, feed: str) -> None:
        """A viewer sees through the server only whom the room lets them see directly."""
        live = await self.hub.room(self.room)
        viewer = Actor(peer.subject, peer.name, peer.role, peer.venue)
        target = media.presence(live.kind, live.state).participants.get(feed)
        if target is None or not media.reachable(live.kind, live.state, viewer, target.actor):
            raise SignalNotAllowed(f"you may not view {feed} in this room", detail={"feed": feed})

    async def _send(self, signal: messages.Signal) -> None:
        live = await self.hub.room(self.room)
        to = media.route(live.kind, live.state, self.actor, signal)
        await self.hub.direct(
            self.room, to, messages.forward_json(signal, self.actor.to_json(), self.id)
        )

    async def _refuse(self, frame: Mapping[str, Any], exc: SignalingError) -> None:
        sender = frame.get("from") or {}
        subject, role = str(sender.get("subject")), str(sender.get("role"))
        to = Recipient(subject, role, sender.get("connection"))
        error = protocol.error_frame(exc.code, exc.message, {**exc.detail, "to": RECORDER.subject})
        with contextlib.suppress(BidroomError):
            await self.hub.direct(self.room, to, error)

    async def announce(self) -> None:
        """Tell everyone who may offer to the recorder that it is here."""
        live = await self.hub.room(self.room)
        frame = media.joined_frame(self.actor, self.id)
        for to in media.recipients(live.kind, live.state, self.actor):
            await self.hub.direct(self.room, to, frame)

    async def stop(self) -> list[RecordedFile]:
        """Say bye to every peer, close the backend (its files, hashed) and leave the room."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        for peer, session in list(self.sessions.values()):
            bye = messages.Bye(kind="bye", to=peer.subject, session=session)
            with contextlib.suppress(SignalingError, BidroomError):
                await self._send(bye)
        self.sessions.clear()
        files = await self.backend.close()
        await self.hub.detach(self.room, self)
        return files


class Recordings:
    """The recorders running on this node, one per room at most."""

    def __init__(self, hub: Hub, settings: Settings):
        self.hub = hub
        self.settings = settings
        self.running: dict[str, Recorder] = {}
        self._stopping: dict[str, asyncio.Task[list[RecordedFile]]] = {}

    def backend(self, room: str) -> MediaBackend:
        s = self.settings
        secret = s.turn_secret.get_secret_value() if s.turn_secret else None
        now = int(self.hub.clock().timestamp())
        servers = ice.ice_servers(
            s.stun_urls, s.turn_urls, secret, RECORDER.subject, now, s.turn_ttl_seconds
        )
        return AiortcBackend(
            s.recordings_root / room,
            ice_servers=[x.to_json() for x in servers],
            caps=Caps(s.media_max_width, s.media_max_height, s.media_max_fps),
        )

    async def start(self, room: str, by: Actor) -> dict[str, Any]:
        live = await _live(self.hub, room)
        state = recording_state(live)
        if part(live).phase in ENDED:
            raise EvaluationRefused(409, "session_over", "the session is over: nothing to record")
        if state.phase == "on":
            if room in self.running or recorder_online(live):
                raise EvaluationRefused(
                    409, "recording_on", "the session is being recorded", {"node": state.node}
                )
            # its node is gone: the record says so before a new recording starts
            lost = {"requested_by": by.subject, "reason": "recorder_lost", "files": []}
            await self._execute(room, "recording.stop", lost)
        recorder = Recorder(self.hub, room, self.backend(room), self.request_stop)
        start = {"requested_by": by.subject, "node": self.hub.node}
        outcome = await self._execute(room, "recording.start", start)
        self.running[room] = recorder
        try:
            await self.hub.attach(room, recorder, 0)
        except (BidroomError, Refused):
            await self.stop(room, "recorder_lost")
            raise
        recorder.task = asyncio.create_task(recorder.run(), name=f"recorder {room}")
        await recorder.announce()
        return outcome

    def request_stop(self, room: str, reason: str) -> None:
        """The room asked this node's recorder to stop (from its push: never block there)."""
        if room in self.running and room not in self._stopping:
            task = asyncio.get_running_loop().create_task(self.stop(room, reason))
            self._stopping[room] = task
            task.add_done_callback(lambda _: self._stopping.pop(room, None))

    async def stop(self, room: str, reason: str) -> list[RecordedFile]:
        """Stop this node's recorder of ``room``; its files, hashed, go into the room's record."""
        recorder = self.running.pop(room, None)
        if recorder is None:
            return []
        files = await recorder.stop()
        live = await self.hub.room(room)
        by = recording_state(live).stop_requested_by or SYSTEM.subject
        args = {"requested_by": by, "reason": reason, "files": [f.to_json() for f in files]}
        await self._execute(room, "recording.stop", args)
        return files

    async def _execute(self, room: str, name: str, args: Mapping[str, Any]) -> dict[str, Any]:
        checked = recording.SHELL_ARGUMENTS[name].model_validate(dict(args)).model_dump(mode="json")
        outcome = await self.hub.execute(room, Command(name, checked), RECORDER)
        if not outcome["ok"]:
            raise EvaluationRefused(409, outcome["code"], outcome["message"], outcome.get("detail"))
        return outcome

    async def tick(self, app: Any, now: datetime) -> None:
        """Stop the recording of a session that is over (signed or sealed)."""
        for room in list(self.running):
            with contextlib.suppress(BidroomError):
                live = await self.hub.room(room)
                if part(live).phase in ENDED:
                    await self._request(room, "session_over", SYSTEM, f"clock:recording:{room}")

    async def _request(self, room: str, reason: str, by: Actor, command_id: str | None) -> None:
        command = Command("recording.request_stop", {"reason": reason})
        await self.hub.execute(room, command, by, command_id)

    async def shutdown(self) -> None:
        """The node is stopping: every recording here ends with its files in the record."""
        for task in list(self._stopping.values()):
            with contextlib.suppress(Exception):
                await task
        for room in list(self.running):
            try:
                await self.stop(room, "node_stopping")
            except Exception:
                log.exception("a recording could not be closed", extra={"room": room})


# HTTP ---------------------------------------------------------------------------------------


def _status(state: recording.RecordingState) -> dict[str, Any]:
    return recording.snapshot(state, RECORDER)


async def _chair(request: Request) -> tuple[Actor, LiveRoom]:
    who = identity(request)
    actor = _actor(who, "chair")
    live = await _live(request.app.state.hub, request.path_params["room"])
    recording_state(live)
    return actor, live


@guarded
async def start(request: Request) -> Response:
    actor, live = await _chair(request)
    recordings: Recordings = request.app.state.recordings
    await recordings.start(live.record.id, actor)
    live = await recordings.hub.room(live.record.id)
    return JSONResponse({"ok": True, **_status(recording_state(live))})


@guarded
async def stop(request: Request) -> Response:
    actor, live = await _chair(request)
    hub: Hub = request.app.state.hub
    room = live.record.id
    state = recording_state(live)
    if state.phase != "on":
        raise EvaluationRefused(409, "recording_off", "the session is not being recorded")
    outcome = await hub.execute(
        room, Command("recording.request_stop", {"reason": "requested"}), actor
    )
    if not outcome["ok"] and outcome["code"] != "stop_requested":
        raise EvaluationRefused(409, outcome["code"], outcome["message"], outcome.get("detail"))
    runs = state.runs
    loop = asyncio.get_running_loop()
    until = loop.time() + STOP_WAIT
    while loop.time() < until:
        current = recording_state(await hub.room(room))
        if current.phase == "off" or current.runs != runs:
            return JSONResponse({"ok": True, **_status(current)})
        await asyncio.sleep(0.1)
    return JSONResponse({"ok": True, "pending": True, **_status(current)}, status_code=202)


@guarded
async def status(request: Request) -> Response:
    who = identity(request)
    live = await _live(request.app.state.hub, request.path_params["room"])
    state = recording_state(live)
    session = part(live)
    if not (any(r in who.roles for r in evaluation.WATCHERS) or who.subject in session.members):
        raise EvaluationRefused(403, "not_allowed", "the recording is the committee's to see")
    return JSONResponse(_status(state))


ROUTES = [
    Route("/api/evaluations/{room}/recording/start", start, methods=["POST"]),
    Route("/api/evaluations/{room}/recording/stop", stop, methods=["POST"]),
    Route("/api/evaluations/{room}/recording", status, methods=["GET"]),
]
