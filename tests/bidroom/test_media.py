"""Whom a signal is for, read from a room's presence and seats (pure: no loop, no socket)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from bidroom import evaluation, media, opening
from bidroom.compose import Composite
from bidroom.evaluation import Seat
from bidroom.hub import Recipient
from bidroom.meeting import MeetingState, Participant
from bidroom.room import Actor
from signaling.errors import NoSuchPeer, SignalingError, SignalNotAllowed
from signaling.messages import Offer

SDP = "v=0\r\nm=audio 9 RTP/AVP 0\r\n"
CHAIR = Actor("chair-1", "主持人", "chair")
EXPERT = Actor("e1", "专家1", "expert", venue="杭州")
OUTSIDER = Actor("e9", "专家9", "expert", venue="宁波")
BIDDER = Actor("bidder-1", "投标人1", "bidder")
RECORDER = Actor("recorder", "录像", "recorder")
PARAMS = {
    "price": {"method": "benchmark", "full": "30", "e_high": "0.2", "e_low": "0.1"},
    "items": [{"id": "t", "max": "70"}],
    "candidates": 1,
}


def room(kind: Composite, config: dict[str, Any], *present: Actor) -> Any:
    state = kind.initial(config)
    people = {a.subject: Participant(a, frozenset({f"n/{a.subject}"})) for a in present}
    meeting = replace(kind.part_state(state, "meeting"), participants=people)
    return (meeting, *state[1:])


def offer(to: str, **fields: Any) -> Offer:
    return Offer(kind="offer", to=to, session="s", sdp=SDP, **fields)


def evaluation_room() -> tuple[Composite, Any]:
    kind = evaluation.room_type()
    bids = [{"bidder": "bidder-1", "status": "decrypted"}]
    config = {"params": PARAMS, "bids": bids}
    meeting, part, *rest = room(kind, config, CHAIR, EXPERT, OUTSIDER, BIDDER, RECORDER)
    seats = (Seat(1, "杭州", "c1", status="seated", expert="e1"), Seat(2, "宁波", "c2"))
    return kind, (meeting, replace(part, seats=seats), *rest)


def test_a_seated_expert_reaches_the_chair_and_back() -> None:
    kind, state = evaluation_room()
    assert media.route(kind, state, EXPERT, offer("chair-1")) == Recipient("chair-1", "chair")
    assert media.route(kind, state, CHAIR, offer("e1", connection="n/e1")) == Recipient(
        "e1", "expert", "n/e1"
    )


@pytest.mark.parametrize(
    ("sender", "to", "error"),
    [
        (BIDDER, "e1", SignalNotAllowed),  # never bidder <-> expert
        (OUTSIDER, "chair-1", SignalNotAllowed),  # no seat, no signaling
        (CHAIR, "e9", SignalNotAllowed),
        (EXPERT, "e1", SignalNotAllowed),  # not to oneself
        (EXPERT, "nobody", SignalNotAllowed),  # an expert does not see who is absent
        (CHAIR, "nobody", NoSuchPeer),  # the chair does
    ],
)
def test_refusals_in_an_evaluation(sender: Actor, to: str, error: type[SignalingError]) -> None:
    kind, state = evaluation_room()
    with pytest.raises(error):
        media.route(kind, state, sender, offer(to))


def test_an_offline_peer_or_a_gone_connection_is_absent() -> None:
    kind = opening.room_type()
    state = room(kind, {}, CHAIR, BIDDER)
    with pytest.raises(NoSuchPeer):
        media.route(kind, state, BIDDER, offer("chair-1", connection="n/old"))
    meeting: MeetingState = state[0]
    gone = replace(meeting.participants["chair-1"], connections=frozenset())
    left = (replace(meeting, participants={**meeting.participants, "chair-1": gone}), state[1])
    with pytest.raises(NoSuchPeer):
        media.route(kind, left, BIDDER, offer("chair-1"))
    assert media.peers(kind, "bidder") == ["chair"]


def test_a_newcomer_is_told_who_it_may_reach_and_no_one_else() -> None:
    kind, state = evaluation_room()
    names = {
        a.subject: [p["subject"] for p in media.present(kind, state, a)]
        for a in (CHAIR, EXPERT, OUTSIDER, BIDDER)
    }
    # A seated expert sees the chair and the recorder; nobody sees a bidder or an outsider.
    assert names == {
        "chair-1": ["e1", "recorder"],
        "e1": ["chair-1", "recorder"],
        "e9": [],
        "bidder-1": [],
    }
    assert media.present(kind, state, EXPERT)[0]["connections"] == ["n/chair-1"]
    # Whom a newcomer's arrival is announced to: the same people, never the hidden ones.
    assert [r.subject for r in media.recipients(kind, state, RECORDER)] == ["chair-1", "e1"]
    frame = media.joined_frame(RECORDER, "n/recorder")
    assert frame == {
        "type": "peer",
        "event": "joined",
        "peer": {**RECORDER.to_json(), "connection": "n/recorder"},
    }


def test_an_expert_seated_or_leaving_is_told_and_so_are_those_who_see_them() -> None:
    kind, seated = evaluation_room()
    meeting, part, *rest = seated
    unseated = (meeting, replace(part, seats=(Seat(1, "杭州", "c1"), Seat(2, "宁波", "c2"))), *rest)

    # Seated: the expert needs a fresh media frame (it offers, as a newcomer); the chair and the
    # recorder hear it joined; a bidder and an outsider hear nothing.
    assert media.seat_changes(kind, unseated, seated, EXPERT) == (True, [])
    joined = media.joined_frame(EXPERT, "n/e1")
    assert media.seat_changes(kind, unseated, seated, CHAIR) == (False, [joined])
    assert media.seat_changes(kind, unseated, seated, RECORDER) == (False, [joined])
    assert media.seat_changes(kind, unseated, seated, BIDDER) == (False, [])
    assert media.seat_changes(kind, unseated, seated, OUTSIDER) == (False, [])

    # Leaving the committee (a conflict): both sides hang up.
    left = media.seat_changes(kind, seated, unseated, EXPERT)
    assert left == (False, [media.left_frame("chair-1"), media.left_frame("recorder")])
    assert media.seat_changes(kind, seated, unseated, CHAIR) == (False, [media.left_frame("e1")])
    assert media.seat_changes(kind, seated, seated, CHAIR) == (False, [])
