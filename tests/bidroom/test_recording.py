"""The recording part of an evaluation room: only the server's recorder records what it wrote;
the chair (or the clock) may only ask it to stop; bidders see nothing of it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bidroom import evaluation, recording
from bidroom.evaluation import Seat
from bidroom.room import SYSTEM, Actor, Command, Event, Rejected

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
RECORDER = Actor("recorder", "录像", "recorder")
CHAIR = Actor("chair-1", "主持人", "chair")
EXPERT = Actor("e1", "专家1", "expert", venue="普陀")
BIDDER = Actor("bidder-1", "投标人1", "bidder")
FILE = {
    "name": "001-e1-1.mkv",
    "subject": "e1",
    "person": "专家1",
    "role": "expert",
    "venue": "普陀",
    "segment": 1,
    "sha256": "ab" * 32,
    "bytes": 1000,
    "video_frames": 90,
    "audio_frames": 150,
    "seconds": 3.0,
    "started_at": "2026-11-28T02:00:00.000000Z",
    "ended_at": "2026-11-28T02:00:03.000000Z",
}


def step(
    state: recording.RecordingState, name: str, args: dict[str, Any], actor: Actor
) -> recording.RecordingState | Rejected:
    model = recording.SHELL_ARGUMENTS[name]
    decided = recording.decide(
        state, Command(name, model.model_validate(args).model_dump()), actor, NOW
    )
    if isinstance(decided, Rejected):
        return decided
    for event in decided:
        state = recording.apply(state, Event(event.name, event.data, actor=actor, at=NOW))
    return state


def started() -> recording.RecordingState:
    state = step(
        recording.initial({}),
        "recording.start",
        {"requested_by": "chair-1", "node": "n1"},
        RECORDER,
    )
    assert isinstance(state, recording.RecordingState)
    return state


def test_a_recording_runs_from_start_to_stop_and_keeps_its_files() -> None:
    state = started()
    assert (state.phase, state.node, state.requested_by, state.runs) == ("on", "n1", "chair-1", 1)
    asked = step(state, "recording.request_stop", {}, CHAIR)
    assert isinstance(asked, recording.RecordingState) and asked.stop_requested_by == "chair-1"
    again = step(asked, "recording.request_stop", {}, CHAIR)
    assert isinstance(again, Rejected) and again.code == "stop_requested"
    args = {"requested_by": "chair-1", "reason": "requested", "files": [FILE]}
    stopped = step(asked, "recording.stop", args, RECORDER)
    assert isinstance(stopped, recording.RecordingState)
    assert stopped.phase == "off" and [f["sha256"] for f in stopped.files] == ["ab" * 32]
    view = recording.snapshot(stopped, EXPERT)
    assert view["status"] == "off" and view["files"][0]["name"] == "001-e1-1.mkv"


def test_nobody_but_the_recorder_records_and_only_the_chair_or_clock_asks_to_stop() -> None:
    state = started()
    args = {"requested_by": "chair-1", "reason": "requested", "files": [FILE]}
    forged = step(state, "recording.stop", args, CHAIR)  # a chair cannot list files
    assert isinstance(forged, Rejected) and forged.code == "not_allowed"
    expert = step(state, "recording.request_stop", {}, EXPERT)
    assert isinstance(expert, Rejected) and expert.code == "not_allowed"
    clock = step(state, "recording.request_stop", {"reason": "session_over"}, SYSTEM)
    assert isinstance(clock, recording.RecordingState)
    twice = step(state, "recording.start", {"requested_by": "chair-1", "node": "n2"}, RECORDER)
    assert isinstance(twice, Rejected) and twice.code == "recording_on"
    off = step(recording.initial({}), "recording.request_stop", {}, CHAIR)
    assert isinstance(off, Rejected) and off.code == "recording_off"


def test_a_bidder_sees_nothing_of_the_recording() -> None:
    state = started()
    event = Event("recording.started", {"requested_by": "chair-1", "node": "n1", "run": 1})
    assert not recording.visible(state, event, BIDDER)
    assert recording.visible(state, event, EXPERT)
    assert recording.snapshot(state, BIDDER) == {"status": "hidden", "allowed": []}
    assert recording.ARGUMENTS == {}  # no recording command is a socket's to send


def test_an_expert_off_the_committee_sees_nothing_of_the_recording() -> None:
    kind = evaluation.room_type()
    config = {
        "params": {
            "price": {"method": "benchmark", "full": "30", "e_high": "0.2", "e_low": "0.1"},
            "items": [{"id": "t", "max": "70"}],
            "candidates": 1,
        },
        "bids": [{"bidder": "bidder-1", "status": "decrypted"}],
    }
    meeting, part, recorded = kind.initial(config)
    seats = (Seat(1, "普陀", "c1", status="seated", expert="e1"), Seat(2, "岱山", "c2"))
    state = (meeting, replace(part, seats=seats), recorded)
    event = Event("recording.started", {"requested_by": "chair-1", "node": "n1", "run": 1})
    outsider = Actor("e9", "专家9", "expert", venue="岱山")
    assert kind.visible(state, event, EXPERT) and kind.visible(state, event, CHAIR)
    assert kind.visible(state, event, RECORDER)
    assert not kind.visible(state, event, outsider)
    assert not kind.visible(state, event, BIDDER)
    assert kind.snapshot(state, outsider)["recording"] == {"hidden": True, "allowed": []}
    assert kind.snapshot(state, EXPERT)["recording"]["status"] == "off"
