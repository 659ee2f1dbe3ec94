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
    if kind.kind != evaluation.KIND or not isinstance(kind, Composite):
        return True
    return not evaluation.outside(kind.part_state(state, "evaluation"), actor)


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
