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
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bidroom import evaluation, media, protocol, recording, ws
from bidroom.api import identity
from bidroom.compose import Composite
from bidroom.errors import BidroomError, EvaluationRefused, Refused
from bidroom.evaluations import acting_as, chair_owns, live_room, part, reader
from bidroom.hub import Hub, LiveRoom, Recipient
from bidroom.protocol import Close
from bidroom.room import SYSTEM, Actor, Command
from bidroom.settings import Settings
from bidroom.tender_api import guarded
from signaling import messages
from signaling.aiortc_backend import AiortcBackend
from signaling.backend import MediaBackend, Peer, RecordedFile
from signaling.errors import MediaError, SignalingError, SignalNotAllowed
from signaling.relay import Caps

log = logging.getLogger(__name__)

RECORDER = Actor(subject="recorder", name="录像", role=recording.RECORDER)
ENDED = frozenset({"signed", "sealed"})  # the session's phases after which nothing is recorded
STOP_WAIT = 30.0
QUEUE = 1000
NEW_SESSIONS = 1.0  # a participant's new media sessions a second (bursts of two)
LOST_AFTER = timedelta(minutes=1)  # on, yet no recorder in the room this long: its node died
MANIFEST = "SHA256SUMS"  # each run's files and hashes, as `sha256sum -c` reads them

StopRequest = Callable[[str, str], None]


def recording_state(live: LiveRoom) -> recording.RecordingState:
    part(live)  # an evaluation room, or 404
    assert isinstance(live.kind, Composite)
    state: recording.RecordingState = live.kind.part_state(live.state, "recording")
    return state


def recorder_online(live: LiveRoom) -> bool:
    present = media.presence(live.kind, live.state).participants.get(RECORDER.subject)
    return present is not None and present.online


def run_folder(settings: Settings, room: str, run: int) -> Path:
    """Where a run's files go: ``<recordings>/<room>/run-<n>/`` (docs/evaluation.md)."""
    return settings.recordings_root / room / f"run-{run}"


def manifest(files: list[RecordedFile]) -> str:
    return "".join(f"{f.sha256}  {f.name}\n" for f in files)


class Recorder:
    """The server's participant in one room: a hub subscriber whose signals a backend answers.

    Frames the hub pushes are queued and handled one at a time, in order, by :meth:`run`; a
    frame that fails is answered or logged, and the next one is handled."""

    def __init__(self, hub: Hub, room: str, backend: MediaBackend, on_stop: StopRequest):
        self.hub = hub
        self.room = room
        self.backend = backend
        self.actor = RECORDER
        self.id = f"{hub.node}/recorder-{uuid.uuid4().hex[:12]}"
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE)
        self.sessions: dict[str, tuple[Peer, str]] = {}  # subject -> (peer, publishing session)
        self.limits: dict[str, ws.RateLimit] = {}  # subject -> its new sessions' bucket
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
        """The hub closes its subscribers when the node stops: the recording stops with it."""
        self.on_stop(self.room, "node_stopping")

    async def run(self) -> None:
        while True:
            frame = await self.queue.get()
            try:
                await self._handle(frame)
            except SignalingError as exc:
                await self._refuse(frame, exc)
            except Exception:
                log.exception("recorder signal not answered", extra={"room": self.room})

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
            known = self.sessions.get(peer.subject)
            if known is None or known[1] != session:  # a new session: a peer connection made
                limit = self.limits.setdefault(peer.subject, ws.RateLimit(NEW_SESSIONS))
                if not limit.allow(time.monotonic()):
                    raise MediaError("too many new media sessions: slow down")
            feed = frame.get("feed")
            if feed is not None:
                await self._may_view(peer, str(feed))
            answer = await self.backend.offer(peer, session, str(frame["sdp"]), feed)
            if feed is None:
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
            if self.sessions.get(peer.subject, (peer, ""))[1] == session:
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
        """Say bye to every peer, close the backend (its files, hashed) and leave the room;
        whatever failed before, the files are closed and hashed."""
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        try:
            for peer, session in list(self.sessions.values()):
                bye = messages.Bye(kind="bye", to=peer.subject, session=session)
                with contextlib.suppress(SignalingError, BidroomError):
                    await self._send(bye)
            self.sessions.clear()
        finally:
            try:
                files = await self.backend.close()
            finally:
                with contextlib.suppress(BidroomError):
                    await self.hub.detach(self.room, self)
        return files


class Recordings:
    """The recorders running on this node, one per room at most; and, as a hub observer, the
    waiters for a room's recording to stop (wherever it stops)."""

    def __init__(self, hub: Hub, settings: Settings):
        self.hub = hub
        self.settings = settings
        self.running: dict[str, Recorder] = {}
        self._stopping: dict[str, asyncio.Task[list[RecordedFile]]] = {}
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}

    def backend(self, room: str, run: int) -> MediaBackend:
        s = self.settings
        servers, _ = ws.ice_for(s, RECORDER.subject, self.hub.clock())
        return AiortcBackend(
            run_folder(s, room, run),
            ice_servers=servers,
            caps=Caps(s.media_max_width, s.media_max_height, s.media_max_fps),
        )

    async def start(self, room: str, by: Actor) -> dict[str, Any]:
        live = await live_room(self.hub, room)
        state = recording_state(live)
        if part(live).phase in ENDED:
            raise EvaluationRefused(409, "session_over", "the session is over: nothing to record")
        if state.phase == "on":
            if room in self.running or recorder_online(live):
                raise EvaluationRefused(
                    409, "recording_on", "the session is being recorded", {"node": state.node}
                )
            await self._lost(room, state)  # its node is gone: the record says so first
        run = state.runs + 1
        recorder = Recorder(self.hub, room, self.backend(room, run), self.request_stop)
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
        asked = recording_state(await self.hub.room(room)).stop_requested_by
        if asked is not None:  # a stop asked for while the recorder was joining
            self.request_stop(room, "requested")
        return outcome

    def request_stop(self, room: str, reason: str) -> None:
        """The room asked this node's recorder to stop (from its push: never block there)."""
        if room in self.running and room not in self._stopping:
            task = asyncio.get_running_loop().create_task(self.stop(room, reason))
            self._stopping[room] = task
            task.add_done_callback(lambda _: self._stopping.pop(room, None))

    async def stop(self, room: str, reason: str) -> list[RecordedFile]:
        """Stop this node's recorder of ``room``; its files, hashed, go into the room's record
        (and, first, into the run's SHA256SUMS beside them, whatever happens next)."""
        recorder = self.running.pop(room, None)
        if recorder is None:
            return []
        files = await recorder.stop()
        live = await self.hub.room(room)
        state = recording_state(live)
        folder = run_folder(self.settings, room, state.runs)
        if files:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / MANIFEST).write_text(manifest(files))
        by = state.stop_requested_by or SYSTEM.subject
        args = {"requested_by": by, "reason": reason, "files": [f.to_json() for f in files]}
        try:
            await self._execute(room, "recording.stop", args, f"recording.stop:{state.runs}")
        except Exception:
            log.exception(
                "a recording's stop was not recorded; its hashes are in the run's SHA256SUMS",
                extra={"room": room, "folder": str(folder)},
            )
            raise
        return files

    async def _lost(self, room: str, state: recording.RecordingState) -> None:
        lost = {"requested_by": SYSTEM.subject, "reason": "recorder_lost", "files": []}
        await self._execute(room, "recording.stop", lost, f"recording.lost:{state.runs}")

    async def _execute(
        self, room: str, name: str, args: Mapping[str, Any], command_id: str | None = None
    ) -> dict[str, Any]:
        checked = recording.SHELL_ARGUMENTS[name].model_validate(dict(args)).model_dump(mode="json")
        outcome = await self.hub.execute(room, Command(name, checked), RECORDER, command_id)
        if not outcome["ok"]:
            raise EvaluationRefused(409, outcome["code"], outcome["message"], outcome.get("detail"))
        return outcome

    async def tick(self, app: Any, now: datetime) -> None:
        """Ask the recorder of a session that is over to stop; record a recorder lost with its
        node (on, and not in the room for :data:`LOST_AFTER`), whichever node notices."""
        # The evaluation clock, just before, loaded every session within its horizon.
        for room, live in list(self.hub.rooms.items()):
            if live.record.kind != evaluation.KIND:
                continue
            try:
                state = recording_state(live)
                if state.phase != "on":
                    continue
                if part(live).phase in ENDED and state.stop_requested_by is None:
                    command = Command("recording.request_stop", {"reason": "session_over"})
                    await self.hub.execute(room, command, SYSTEM, f"recording.over:{state.runs}")
                started = datetime.fromisoformat(state.started_at or now.isoformat())
                gone = room not in self.running and not recorder_online(live)
                if gone and now - started > LOST_AFTER:
                    await self._lost(room, state)
            except BidroomError:
                log.exception("the recording clock skipped a session", extra={"room": room})

    def observe(self, live: LiveRoom, before: Any) -> None:
        """A hub observer: wake whoever waits for this room's recording to stop."""
        waiters = self._waiters.get(live.record.id)
        if not waiters or not isinstance(live.kind, Composite):
            return
        if live.kind.part_state(live.state, "recording").phase == "off":
            for future in self._waiters.pop(live.record.id):
                if not future.done():
                    future.set_result(None)

    async def stopped(self, room: str, wait: float) -> bool:
        """Wait until the room's recording is off (True), or ``wait`` seconds (False)."""
        if recording_state(await self.hub.room(room)).phase == "off":
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(room, []).append(future)
        try:
            await asyncio.wait_for(future, wait)
        except TimeoutError:
            return False
        return True

    async def shutdown(self) -> None:
        """The node is stopping: every recording here ends with its files in the record."""
        for task in list(self._stopping.values()):
            await asyncio.gather(task, return_exceptions=True)
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
    actor = acting_as(who, "chair")
    live = await live_room(request.app.state.hub, request.path_params["room"])
    chair_owns(who, live.record)
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
    recordings: Recordings = request.app.state.recordings
    done = await recordings.stopped(room, STOP_WAIT)
    current = recording_state(await hub.room(room))
    if not done:
        return JSONResponse({"ok": True, "pending": True, **_status(current)}, status_code=202)
    return JSONResponse({"ok": True, **_status(current)})


@guarded
async def status(request: Request) -> Response:
    who = identity(request)
    live = await live_room(request.app.state.hub, request.path_params["room"])
    state = recording_state(live)
    reader(who, live)
    return JSONResponse(_status(state))


ROUTES = [
    Route("/api/evaluations/{room}/recording/start", start, methods=["POST"]),
    Route("/api/evaluations/{room}/recording/stop", stop, methods=["POST"]),
    Route("/api/evaluations/{room}/recording", status, methods=["GET"]),
]
