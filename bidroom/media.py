"""Media signaling in a room: whom a signal is for, and whether the room lets the sender reach
them. signaling.rules decides over roles; this module reads the roles from the room's presence
(the meeting part) and, in an evaluation, who holds a seat.

Pure: a room's kind and state and the sender in, a hub Recipient or a SignalingError out. The
shell (bidroom.ws) relays through Hub.direct.

A refusal never tells a sender what the room hides from them: who is in the room is the
watchers' to know (chair, supervisors), so anyone else asking for an absent participant, or for
one they may not reach, is told ``signal_not_allowed`` alike; only a peer the sender may reach
and whose presence they could know is reported absent (``no_such_peer``).
"""

from __future__ import annotations

from typing import Any

from bidroom import evaluation
from bidroom.compose import Composite
from bidroom.hub import Recipient
from bidroom.meeting import MeetingState
from bidroom.room import JSON, Actor, RoomType
from signaling import rules
from signaling.errors import NoSuchPeer, SignalNotAllowed
from signaling.messages import Signal


def presence(kind: RoomType[Any], state: Any) -> MeetingState:
    """The meeting's slice of a room's state: who is in the room, online or not."""
    meeting = kind.part_state(state, "meeting") if isinstance(kind, Composite) else state
    if not isinstance(meeting, MeetingState):
        raise TypeError(f"room kind {kind.kind} keeps no presence")
    return meeting


def seated(kind: RoomType[Any], state: Any, actor: Actor) -> bool:
    """Whether ``actor`` holds a seat where that matters (an evaluation's committee)."""
    must_sit = rules.SEATED.get(kind.kind, frozenset())
    return actor.role not in must_sit or actor.subject in seats(kind, state)


def peers(kind: RoomType[Any], role: str) -> list[str]:
    """The roles a participant in ``role`` may signal in this room (seats aside)."""
    return rules.peers(kind.kind, role)


def route(kind: RoomType[Any], state: Any, sender: Actor, signal: Signal) -> Recipient:
    """The addressee of ``signal`` if the room lets ``sender`` reach them; raises otherwise."""
    room = presence(kind, state)
    target = room.participants.get(signal.to)
    hidden = SignalNotAllowed(
        f"you may not signal {signal.to} in this room",
        detail={"to": signal.to, "roles": rules.peers(kind.kind, sender.role)},
    )
    if signal.to == sender.subject:
        raise hidden
    if target is None or target.removed:
        if sender.role in rules.WATCHERS:
            raise NoSuchPeer(f"{signal.to} is not in this room", detail={"to": signal.to})
        raise hidden
    allowed = rules.may_signal(
        kind.kind,
        sender.role,
        target.actor.role,
        signal=signal.kind,
        sender_seated=seated(kind, state, sender),
        target_seated=seated(kind, state, target.actor),
    )
    if not allowed:
        raise hidden
    if not target.online or (signal.connection and signal.connection not in target.connections):
        raise NoSuchPeer(
            f"{signal.to} is not connected now",
            detail={"to": signal.to, "connection": signal.connection},
        )
    return Recipient(target.actor.subject, target.actor.role, signal.connection)


def reachable(kind: RoomType[Any], state: Any, one: Actor, other: Actor) -> bool:
    """Whether the room lets ``one`` and ``other`` see and hear each other (seats included),
    whoever offers."""
    return one.subject != other.subject and rules.may_signal(
        kind.kind,
        one.role,
        other.role,
        signal="answer",
        sender_seated=seated(kind, state, one),
        target_seated=seated(kind, state, other),
    )


def present(kind: RoomType[Any], state: Any, actor: Actor) -> list[JSON]:
    """The participants online now whom ``actor`` may signal, with their connections (the
    ``present`` of the media frame: a newcomer offers to each). Knowing someone is there is
    part of seeing and hearing them, so this reveals no presence the room hides."""
    room = presence(kind, state)
    return [
        {**p.actor.to_json(), "connections": sorted(p.connections)}
        for p in sorted(room.participants.values(), key=lambda p: p.actor.subject)
        if p.online and not p.removed and reachable(kind, state, actor, p.actor)
    ]


def joined_frame(actor: Actor, connection: str) -> JSON:
    """What each reachable participant hears when ``actor``'s ``connection`` comes online."""
    peer = {**actor.to_json(), "connection": connection}
    return {"type": "peer", "event": "joined", "peer": peer}


def recipients(kind: RoomType[Any], state: Any, actor: Actor) -> list[Recipient]:
    """Whom to tell that ``actor`` came online: everyone present that it may reach."""
    return [Recipient(str(p["subject"]), str(p["role"])) for p in present(kind, state, actor)]


# seats that change who sees whom (an evaluation's committee) ---------------------------------


def seats(kind: RoomType[Any], state: Any) -> frozenset[str]:
    """The subjects holding a seat, where seats decide who may reach whom (else none)."""
    if kind.kind != evaluation.KIND or not isinstance(kind, Composite):
        return frozenset()
    return frozenset(kind.part_state(state, "evaluation").members)


def left_frame(subject: str) -> JSON:
    return {"type": "peer", "event": "left", "peer": {"subject": subject}}


def seat_changes(
    kind: RoomType[Any], before: Any, after: Any, viewer: Actor
) -> tuple[bool, list[JSON]]:
    """What ``viewer``'s page must hear when the seats changed between two states: whether it
    needs a fresh media frame (it was just seated: it offers to everyone present, as a
    newcomer), and the ``peer`` frames (joined: a newly seated expert it may reach, who will
    offer; left: someone it may reach no more, to hang up on)."""
    gained = seats(kind, after) - seats(kind, before)
    lost = seats(kind, before) - seats(kind, after)
    frames: list[JSON] = []
    room = presence(kind, after)
    if viewer.subject in lost:
        was = present(kind, before, viewer)
        frames += [left_frame(str(p["subject"])) for p in was]
    for subject in sorted(lost - {viewer.subject}):
        gone = room.participants.get(subject)
        if gone is not None and reachable(kind, before, viewer, gone.actor):
            frames.append(left_frame(subject))
    for subject in sorted(gained - {viewer.subject}):
        came = room.participants.get(subject)
        if came is not None and came.online and reachable(kind, after, viewer, came.actor):
            frames += [joined_frame(came.actor, c) for c in sorted(came.connections)]
    return viewer.subject in gained, frames
