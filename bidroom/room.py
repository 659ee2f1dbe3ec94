"""What a room type is: the pure contract every room (meeting, opening, evaluation) fulfils.

Rules of this file:
- Nothing here does I/O, reads a clock or draws randomness. ``now`` and any random bytes come in
  as arguments, so a room's whole history can be replayed and recomputed from its event log.
- A room type is a pure core: ``decide(state, command, actor, now)`` returns the events a command
  causes or a :class:`Rejected`; ``apply(state, event)`` folds one event into the state.
- Phases and which role may send which command in which phase are data (:class:`Rules`), checked
  in one place (:func:`check`), so an illegal command is rejected with the phase it met and what
  that phase would allow.
- The hub knows only this contract. It knows nothing of procurement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who sends a command: the subject of a verified session token, in the role it acts in."""

    subject: str
    name: str
    role: str
    venue: str | None = None
    organisation: str | None = None

    def to_json(self) -> JSON:
        return {
            "subject": self.subject,
            "name": self.name,
            "role": self.role,
            "venue": self.venue,
            "organisation": self.organisation,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Actor:
        return cls(
            subject=str(data["subject"]),
            name=str(data.get("name", "")),
            role=str(data["role"]),
            venue=data.get("venue"),
            organisation=data.get("organisation"),
        )


SYSTEM = Actor(subject="system", name="bidroom", role="system")


@dataclass(frozen=True, slots=True)
class Command:
    """A validated request to change a room. ``args`` were checked at the edge."""

    name: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Event:
    """A fact a room recorded. ``seq``/``at``/``actor`` are set by the hub when it is appended."""

    name: str
    data: Mapping[str, Any]
    seq: int = 0
    at: datetime | None = None
    actor: Actor | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """Why a command was refused. ``code`` is stable and documented in docs/protocol.md."""

    code: str
    message: str
    detail: Mapping[str, Any] = field(default_factory=dict)


Decision = list[Event] | Rejected


@dataclass(frozen=True, slots=True)
class Rules:
    """A room type's phases and, per phase, which roles may send which command.

    ``commands[phase][command] = roles``. A command absent from a phase is refused there with
    ``wrong_phase``; a role absent from the set is refused with ``not_allowed``.
    """

    phases: tuple[str, ...]
    commands: Mapping[str, Mapping[str, frozenset[str]]]

    def all_commands(self) -> frozenset[str]:
        return frozenset(name for table in self.commands.values() for name in table)

    def allowed_in(self, phase: str, role: str) -> list[str]:
        table = self.commands.get(phase, {})
        return sorted(name for name, roles in table.items() if role in roles)


def check(rules: Rules, phase: str, command: Command, actor: Actor) -> Rejected | None:
    """Refuse a command that its phase or the actor's role does not allow; None if allowed."""
    table = rules.commands.get(phase, {})
    roles = table.get(command.name)
    if roles is None:
        where = sorted(p for p, t in rules.commands.items() if command.name in t)
        return Rejected(
            "wrong_phase",
            f"{command.name} is not allowed in phase {phase}",
            {
                "phase": phase,
                "allowed_phases": where,
                "allowed": rules.allowed_in(phase, actor.role),
            },
        )
    if actor.role not in roles:
        return Rejected(
            "not_allowed",
            f"role {actor.role} may not send {command.name}",
            {"phase": phase, "roles": sorted(roles)},
        )
    return None


def admits(roles: frozenset[str], actor: Actor, room: str) -> Rejected | None:
    """Refuse an actor whose role the room does not take (``room`` names it: "this opening")."""
    if actor.role in roles:
        return None
    return Rejected(
        "not_allowed", f"role {actor.role} may not join {room}", {"roles": sorted(roles)}
    )


S = TypeVar("S")


class RoomType(Protocol[S]):
    """The contract between the hub and a room type. Everything here is pure."""

    kind: str
    rules: Rules
    gates: frozenset[str]
    """Events after which the hub re-checks, with may_join, who may stay connected."""
    reveals: frozenset[str]
    """Events after which what a participant may see can widen (the sheet makes every bid
    public): the hub then sends each participant a fresh snapshot, since the earlier events
    they were not sent are in a snapshot only."""
    arguments: Mapping[str, Any]
    """Client commands and the pydantic model of each one's arguments (the edge contract)."""
    signed: Mapping[str, tuple[str, ...]]
    """Client commands its sender signs as a signed action, and the argument fields the
    signature covers besides ``room``: the WebSocket shell checks the signature, if the
    arguments carry one, before the command reaches the hub (the core says when one is needed)."""

    def initial(self, config: Mapping[str, Any]) -> S:
        """The state of a newly created room, from its frozen configuration."""

    def decide(self, state: S, command: Command, actor: Actor, now: datetime) -> Decision:
        """The events ``command`` causes, or why it is refused."""

    def apply(self, state: S, event: Event) -> S:
        """The state after ``event``."""

    def roles(self, state: S) -> frozenset[str]:
        """The roles that may join the room."""

    def may_join(self, state: S, actor: Actor) -> Rejected | None:
        """Whether ``actor`` may be in this room now; None if allowed."""

    def visible(self, state: S, event: Event, actor: Actor) -> bool:
        """Whether ``actor`` may see ``event``; ``state`` is the room's state at or after it
        (live fan-out passes the state right after, a replay the current one)."""

    def snapshot(self, state: S, actor: Actor) -> JSON:
        """The state as ``actor`` may see it, JSON-ready."""

    def joined(self, actor: Actor, connection: str, node: str) -> Command:
        """The system command recording that ``actor`` connected."""

    def left(self, connection: str) -> Command:
        """The system command recording that a connection ended."""

    def expired(self, alive: frozenset[str]) -> Command:
        """The system command dropping connections held by nodes not in ``alive``.

        A connection id is ``"<node>/<id>"``; a node that died cannot say its clients left.
        """


def fold(room_type: RoomType[S], state: S, events: Sequence[Event]) -> S:
    """Apply events in order."""
    for event in events:
        state = room_type.apply(state, event)
    return state
