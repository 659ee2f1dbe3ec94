"""The recording of an evaluation session, as a part of its room: when it ran, on which node, who
asked, and the SHA-256 of every file it wrote (DOMAIN.md, evaluation step 12: the whole session's
audio and video is recorded and archived).

Only the server's recorder sends these commands (role ``recorder``, which no WebSocket may take):
the chair asks over HTTP (bidroom.recordings checks the chair), the node that runs the recorder
records the fact. So the files a record lists are the files a recorder closed and hashed, never
a list a client sent. Each file's hash also goes into the audit log with the event
(bidroom.audit.room_event names every ``files[].sha256``).

    off --recording.start--> on --recording.stop (files)--> off --recording.start--> on ...
                              on --recording.request_stop (chair over HTTP, or the clock)-->
                                 on, stop requested: the node running the recorder hears the
                                 event, closes its files and sends recording.stop

A recorder lost with its node leaves the part ``on`` with nobody recording: the next start first
stops it with reason ``recorder_lost`` (the lost node's files are not in the record; their
segments on that node's disk still play up to the cut, see docs/operations.md).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bidroom import meeting
from bidroom.compose import ModuleRoomType
from bidroom.room import JSON, SYSTEM, Actor, Command, Decision, Event, Rejected, Rules, check

this = sys.modules[__name__]

KIND = "recording"
RECORDER = "recorder"
ONLY_RECORDER = frozenset({RECORDER})
CHAIR_OR_SYSTEM = frozenset({"chair", SYSTEM.role})
RULES = Rules(
    phases=("off", "on"),
    commands={
        "off": {"recording.start": ONLY_RECORDER},
        "on": {"recording.stop": ONLY_RECORDER, "recording.request_stop": CHAIR_OR_SYSTEM},
    },
)
Reason = Literal["requested", "session_over", "node_stopping", "recorder_lost"]
SHA256 = r"^[0-9a-f]{64}$"


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StartArgs(_Args):
    requested_by: str = Field(min_length=1, max_length=200)
    node: str = Field(min_length=1, max_length=200)


class FileArgs(_Args):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")
    subject: str = Field(min_length=1, max_length=200)
    person: str = Field(max_length=200)
    role: str = Field(min_length=1, max_length=40)
    venue: str | None = Field(default=None, max_length=200)
    segment: int = Field(ge=1, le=100_000)
    sha256: str = Field(pattern=SHA256)
    bytes: int = Field(ge=0)
    video_frames: int = Field(ge=0)
    audio_frames: int = Field(ge=0)
    seconds: float = Field(ge=0)
    started_at: str = Field(max_length=40)
    ended_at: str = Field(max_length=40)


class RequestStopArgs(_Args):
    reason: Literal["requested", "session_over"] = "requested"


class StopArgs(_Args):
    requested_by: str = Field(min_length=1, max_length=200)
    reason: Reason
    files: list[FileArgs] = Field(default_factory=list, max_length=10_000)


SHELL_ARGUMENTS: Mapping[str, type[BaseModel]] = {
    "recording.start": StartArgs,
    "recording.stop": StopArgs,
    "recording.request_stop": RequestStopArgs,
}
ARGUMENTS: Mapping[str, type[BaseModel]] = {}  # the WebSocket edge's: none is a client's to send


@dataclass(frozen=True, slots=True)
class RecordingState:
    roles: frozenset[str]
    phase: str = "off"
    node: str | None = None
    started_at: str | None = None
    requested_by: str | None = None
    runs: int = 0  # how many times recording started
    stop_requested_by: str | None = None
    files: tuple[Mapping[str, Any], ...] = ()


def initial(config: Mapping[str, Any]) -> RecordingState:
    return RecordingState(roles=frozenset(config.get("roles") or ()))


def decide(state: RecordingState, command: Command, actor: Actor, now: datetime) -> Decision:
    refused = check(RULES, state.phase, command, actor)
    if refused is not None:
        code = "recording_on" if command.name == "recording.start" else "recording_off"
        if refused.code == "wrong_phase":
            return Rejected(code, f"the recording is {state.phase} already", {"phase": state.phase})
        return refused
    if command.name == "recording.start":
        return [Event("recording.started", {**command.args, "run": state.runs + 1})]
    if command.name == "recording.request_stop":
        if state.stop_requested_by is not None:
            return Rejected("stop_requested", "the recording is stopping already", {})
        data = {"requested_by": actor.subject, "reason": command.args["reason"], "run": state.runs}
        return [Event("recording.stop_requested", data)]
    return [Event("recording.stopped", {**command.args, "run": state.runs})]


def apply(state: RecordingState, event: Event) -> RecordingState:
    data = event.data
    if event.name == "recording.started":
        at = event.at.isoformat() if event.at is not None else None
        return replace(
            state,
            phase="on",
            node=str(data["node"]),
            started_at=at,
            requested_by=str(data["requested_by"]),
            runs=int(data["run"]),
            stop_requested_by=None,
        )
    if event.name == "recording.stop_requested":
        return replace(state, stop_requested_by=str(data["requested_by"]))
    if event.name == "recording.stopped":
        files = tuple(dict(f) for f in data.get("files", []))
        return replace(
            state, phase="off", node=None, stop_requested_by=None, files=state.files + files
        )
    return state


def roles(state: RecordingState) -> frozenset[str]:
    return state.roles


def may_join(state: RecordingState, actor: Actor) -> Rejected | None:
    return None  # the room's other parts decide who joins


def visible(state: RecordingState, event: Event, actor: Actor) -> bool:
    """Everyone in the session knows it is recorded, and what; a bidder (there for a
    clarification) sees nothing of the committee's room."""
    return actor.role != "bidder"


def snapshot(state: RecordingState, actor: Actor) -> JSON:
    if actor.role == "bidder":
        return {"status": "hidden", "allowed": []}
    return {
        "status": state.phase,
        "node": state.node,
        "started_at": state.started_at,
        "requested_by": state.requested_by,
        "runs": state.runs,
        "stopping": state.stop_requested_by is not None,
        "files": [dict(f) for f in state.files],
        "allowed": [],
    }


class Recording(ModuleRoomType[RecordingState], core=this, presence=meeting):
    """The recording part, as bidroom.compose sees it (presence is the meeting part's)."""
