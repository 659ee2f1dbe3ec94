"""The meeting (会议): what every session has in common, as a pure room type.

Presence (who is in the room, in which role and venue, online or not), the chair's announcements
(主持人公告), a message channel between each participant and the chair (objections 异议 during an
opening and questions during an evaluation will use it), and the chair's power to mute or remove a
participant. Opening and evaluation rooms build on this.

Rules of this file: pure functions over frozen dataclasses; no I/O, no clock (``now`` comes in);
phases and permissions live in :data:`RULES`; every refusal is a :class:`Rejected` with a stable
code. Argument models (pydantic) are the room's edge contract: the WebSocket shell validates a
client's arguments with them before the core ever sees the command.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bidroom import meeting as this  # this module: its functions make the Meeting room type
from bidroom.compose import ModuleRoomType
from bidroom.room import (
    JSON,
    SYSTEM,
    Actor,
    Command,
    Decision,
    Event,
    Rejected,
    Rules,
    admits,
    check,
)

KIND = "meeting"

CHAIR = frozenset({"chair"})
SPEAKERS = frozenset({"chair", "bidder", "expert"})
# "recorder": the server's own media participant (bidroom.recordings); no socket may act as one.
EVERYONE = frozenset({"chair", "bidder", "expert", "supervisor", "custodian", "public", "recorder"})
WATCHERS = frozenset({"chair", "supervisor"})
PRESENCE: Mapping[str, frozenset[str]] = {
    "presence.join": EVERYONE,
    "presence.leave": EVERYONE | {SYSTEM.role},
    "presence.expire": frozenset({SYSTEM.role}),
}

RULES = Rules(
    phases=("scheduled", "open", "closed"),
    commands={
        "scheduled": {"meeting.open": CHAIR, **PRESENCE},
        "open": {
            "meeting.announce": CHAIR,
            "meeting.message": SPEAKERS,
            "meeting.mute": CHAIR,
            "meeting.unmute": CHAIR,
            "meeting.remove": CHAIR,
            "meeting.close": CHAIR,
            **PRESENCE,
        },
        "closed": dict(PRESENCE),
    },
)

TEXT_MAX = 2000


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class NoArgs(_Args):
    pass


class AnnounceArgs(_Args):
    text: str = Field(min_length=1, max_length=TEXT_MAX)


class MessageArgs(_Args):
    text: str = Field(min_length=1, max_length=TEXT_MAX)
    to: str | None = Field(default=None, max_length=200)


class SubjectArgs(_Args):
    subject: str = Field(min_length=1, max_length=200)


class RemoveArgs(SubjectArgs):
    reason: str = Field(min_length=1, max_length=TEXT_MAX)


ARGUMENTS: Mapping[str, type[BaseModel]] = {
    "meeting.open": NoArgs,
    "meeting.announce": AnnounceArgs,
    "meeting.message": MessageArgs,
    "meeting.mute": SubjectArgs,
    "meeting.unmute": SubjectArgs,
    "meeting.remove": RemoveArgs,
    "meeting.close": NoArgs,
}


@dataclass(frozen=True, slots=True)
class Participant:
    actor: Actor
    connections: frozenset[str] = frozenset()
    muted: bool = False
    removed: bool = False

    @property
    def online(self) -> bool:
        return bool(self.connections)


@dataclass(frozen=True, slots=True)
class Message:
    seq: int
    sender: str
    to: str | None
    text: str
    at: str


@dataclass(frozen=True, slots=True)
class MeetingState:
    title: str
    roles: frozenset[str]
    starts_at: str | None = None
    phase: str = "scheduled"
    participants: Mapping[str, Participant] = field(default_factory=dict)
    announcements: tuple[Message, ...] = ()
    messages: tuple[Message, ...] = ()


def initial(config: Mapping[str, Any]) -> MeetingState:
    roles = frozenset(config.get("roles") or EVERYONE)
    return MeetingState(
        title=str(config.get("title", "")), roles=roles, starts_at=config.get("starts_at")
    )


# decide ------------------------------------------------------------------------------------


def decide(state: MeetingState, command: Command, actor: Actor, now: datetime) -> Decision:
    refused = check(RULES, state.phase, command, actor)
    if refused is not None:
        return refused
    handler = _DECIDERS[command.name]
    return handler(state, command.args, actor)


def _open(state: MeetingState, args: Mapping[str, Any], actor: Actor) -> Decision:
    return [Event("meeting.opened", {})]


def _close(state: MeetingState, args: Mapping[str, Any], actor: Actor) -> Decision:
    return [Event("meeting.closed", {})]


def _announce(state: MeetingState, args: Mapping[str, Any], actor: Actor) -> Decision:
    return [Event("meeting.announced", {"text": args["text"]})]


def _message(state: MeetingState, args: Mapping[str, Any], actor: Actor) -> Decision:
    me = state.participants.get(actor.subject)
    if me is not None and me.muted:
        return Rejected("muted", "the chair has muted you", {"subject": actor.subject})
    to = args.get("to")
    if actor.role == "chair":
        if to is None:
            return Rejected("invalid_args", "a chair's message names its addressee (to)", {})
        if to not in state.participants:
            return Rejected("no_such_participant", f"{to} has not joined this room", {"to": to})
    elif to is not None:
        return Rejected("not_allowed", "participants write to the chair only", {"to": to})
    return [Event("meeting.message_sent", {"from": actor.subject, "to": to, "text": args["text"]})]


def _target(state: MeetingState, args: Mapping[str, Any]) -> Participant | Rejected:
    subject = args["subject"]
    target = state.participants.get(subject)
    if target is None:
        return Rejected("no_such_participant", f"{subject} has not joined this room", args)
    if target.actor.role in ("chair", "recorder"):
        role = target.actor.role
        return Rejected("not_allowed", f"a {role} cannot be muted or removed", {"subject": subject})
    return target


def _mute(state: MeetingState, args: Mapping[str, Any], actor: Actor) -> Decision:
    target = _target(state, args)
    if isinstance(target, Rejected):
        return target
    if target.muted:
        return Rejected("already_muted", f"{target.actor.subject} is muted already", args)
    return [Event("meeting.muted", {"subject": target.actor.subject})]


def _unmute(state: MeetingState, args: Mapping[str, Any], actor: Actor) -> Decision:
    target = _target(state, args)
    if isinstance(target, Rejected):
        return target
    if not target.muted:
        return Rejected("not_muted", f"{target.actor.subject} is not muted", args)
    return [Event("meeting.unmuted", {"subject": target.actor.subject})]


def _remove(state: MeetingState, args: Mapping[str, Any], actor: Actor) -> Decision:
    target = _target(state, args)
    if isinstance(target, Rejected):
        return target
    if target.removed:
        return Rejected("already_removed", f"{target.actor.subject} was removed already", args)
    return [Event("meeting.removed", {"subject": target.actor.subject, "reason": args["reason"]})]


def _join(state: MeetingState, args: Mapping[str, Any], actor: Actor) -> Decision:
    refused = may_join(state, actor)
    if refused is not None:
        return refused
    data = {**actor.to_json(), "connection": args["connection"], "node": args["node"]}
    return [Event("presence.joined", data)]


def _owner(state: MeetingState, connection: str) -> Participant | None:
    return next((p for p in state.participants.values() if connection in p.connections), None)


def _leave(state: MeetingState, args: Mapping[str, Any], actor: Actor) -> Decision:
    owner = _owner(state, args["connection"])
    if owner is None:
        return []
    return [
        Event("presence.left", {"subject": owner.actor.subject, "connection": args["connection"]})
    ]


def _expire(state: MeetingState, args: Mapping[str, Any], actor: Actor) -> Decision:
    """One event per participant who held connections on nodes that are no longer alive."""
    alive = set(args["alive"])
    events = []
    for subject, p in state.participants.items():
        gone = sorted(c for c in p.connections if c.partition("/")[0] not in alive)
        if gone:
            events.append(Event("presence.expired", {"subject": subject, "connections": gone}))
    return events


_DECIDERS = {
    "meeting.open": _open,
    "meeting.close": _close,
    "meeting.announce": _announce,
    "meeting.message": _message,
    "meeting.mute": _mute,
    "meeting.unmute": _unmute,
    "meeting.remove": _remove,
    "presence.join": _join,
    "presence.leave": _leave,
    "presence.expire": _expire,
}


# apply -------------------------------------------------------------------------------------


def apply(state: MeetingState, event: Event) -> MeetingState:
    folder = _FOLDERS.get(event.name)
    return state if folder is None else folder(state, event)


def _with(state: MeetingState, subject: str, **changes: Any) -> MeetingState:
    participants = dict(state.participants)
    participants[subject] = replace(participants[subject], **changes)
    return replace(state, participants=participants)


def _without_connections(state: MeetingState, gone: frozenset[str]) -> MeetingState:
    participants = {
        subject: replace(p, connections=p.connections - gone) if p.connections & gone else p
        for subject, p in state.participants.items()
    }
    return replace(state, participants=participants)


def _note(event: Event, sender: str, to: str | None) -> Message:
    at = event.at.isoformat() if event.at else ""
    return Message(event.seq, sender, to, str(event.data["text"]), at)


def _fold_joined(state: MeetingState, event: Event) -> MeetingState:
    data = event.data
    actor = Actor.from_json(data)
    known = state.participants.get(actor.subject)
    connection = str(data["connection"])
    if known is None:
        participants = {**state.participants, actor.subject: Participant(actor)}
        state = replace(state, participants=participants)
        known = state.participants[actor.subject]
    return _with(state, actor.subject, actor=actor, connections=known.connections | {connection})


def _fold_left(state: MeetingState, event: Event) -> MeetingState:
    return _without_connections(state, frozenset({str(event.data["connection"])}))


def _fold_expired(state: MeetingState, event: Event) -> MeetingState:
    return _without_connections(state, frozenset(event.data["connections"]))


def _fold_announced(state: MeetingState, event: Event) -> MeetingState:
    sender = event.actor.subject if event.actor else SYSTEM.subject
    return replace(state, announcements=(*state.announcements, _note(event, sender, None)))


def _fold_message(state: MeetingState, event: Event) -> MeetingState:
    note = _note(event, str(event.data["from"]), event.data.get("to"))
    return replace(state, messages=(*state.messages, note))


_FOLDERS = {
    "meeting.opened": lambda s, e: replace(s, phase="open"),
    "meeting.closed": lambda s, e: replace(s, phase="closed"),
    "meeting.announced": _fold_announced,
    "meeting.message_sent": _fold_message,
    "meeting.muted": lambda s, e: _with(s, e.data["subject"], muted=True),
    "meeting.unmuted": lambda s, e: _with(s, e.data["subject"], muted=False),
    "meeting.removed": lambda s, e: _with(s, e.data["subject"], removed=True),
    "presence.joined": _fold_joined,
    "presence.left": _fold_left,
    "presence.expired": _fold_expired,
}


# who may see what --------------------------------------------------------------------------


def roles(state: MeetingState) -> frozenset[str]:
    return state.roles


def may_join(state: MeetingState, actor: Actor) -> Rejected | None:
    refused = admits(state.roles, actor, "this room")
    if refused is not None:
        return refused
    known = state.participants.get(actor.subject)
    if known is not None and known.removed:
        return Rejected("removed", "the chair removed you from this room", {})
    return None


def _may_read(message: Message, actor: Actor) -> bool:
    return actor.role in WATCHERS or actor.subject in (message.sender, message.to)


def _may_see(state: MeetingState, subject: str, actor: Actor) -> bool:
    """Presence is the watchers' to see; others see only themselves and the chair."""
    if actor.role in WATCHERS or subject == actor.subject:
        return True
    known = state.participants.get(subject)
    return known is not None and known.actor.role == "chair"


PERSONAL = frozenset({"meeting.muted", "meeting.unmuted", "meeting.removed"})


def visible(state: MeetingState, event: Event, actor: Actor) -> bool:
    if event.name == "meeting.message_sent":
        note = Message(event.seq, str(event.data["from"]), event.data.get("to"), "", "")
        return _may_read(note, actor)
    if event.name.startswith("presence.") or event.name in PERSONAL:
        # Who is muted or removed names a participant: as presence, the watchers' to see
        # (in an opening it would tell other bidders who is there before the deadline).
        return _may_see(state, str(event.data["subject"]), actor)
    return True


def _participant_json(p: Participant) -> JSON:
    return {
        **p.actor.to_json(),
        "online": p.online,
        "connections": sorted(p.connections),
        "muted": p.muted,
        "removed": p.removed,
    }


def _message_json(m: Message) -> JSON:
    return {"seq": m.seq, "from": m.sender, "to": m.to, "text": m.text, "at": m.at}


def snapshot(state: MeetingState, actor: Actor) -> JSON:
    return {
        "kind": KIND,
        "title": state.title,
        "starts_at": state.starts_at,
        "phase": state.phase,
        "participants": [
            _participant_json(p)
            for subject, p in state.participants.items()
            if _may_see(state, subject, actor)
        ],
        "announcements": [_message_json(m) for m in state.announcements],
        "messages": [_message_json(m) for m in state.messages if _may_read(m, actor)],
        "allowed": [c for c in RULES.allowed_in(state.phase, actor.role) if c in ARGUMENTS],
    }


def joined(actor: Actor, connection: str, node: str) -> Command:
    return Command("presence.join", {"connection": connection, "node": node})


def left(connection: str) -> Command:
    return Command("presence.leave", {"connection": connection})


def expired(alive: frozenset[str]) -> Command:
    return Command("presence.expire", {"alive": sorted(alive)})


class Meeting(
    ModuleRoomType[MeetingState], core=this, presence=this, gates=frozenset({"meeting.removed"})
):
    """The meeting room type, as the hub sees it: this module's functions."""
