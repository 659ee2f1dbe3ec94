"""One room type made of several: the meeting every session has, plus the opening or evaluation.

A composite routes by name: a command or event whose name starts with a part's prefix goes to
that part, with that part's slice of the state. The first part answers for presence (joined,
left, expired) and for who may join. Everything stays pure: a composite is as replayable as its
parts.

:class:`ModuleRoomType` makes a room type (a composite's part, or a room of its own) of a module
of pure functions: bidroom.meeting, bidroom.opening and bidroom.evaluation each declare theirs in
one class statement.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol

from pydantic import BaseModel

from bidroom.room import JSON, Actor, Command, Decision, Event, Rejected, RoomType, Rules, S


@dataclass(frozen=True, slots=True)
class Part:
    name: str  # the key of this part's snapshot
    prefixes: tuple[str, ...]  # command and event names it owns, e.g. ("meeting.", "presence.")
    kind: RoomType[Any]
    # Who may see this part at all, decided over the whole room's state (a part sees only its
    # own slice): None, everyone the part itself lets see.
    audience: Callable[[tuple[Any, ...], Actor], bool] | None = None

    def hides(self, state: tuple[Any, ...], actor: Actor) -> bool:
        return self.audience is not None and not self.audience(state, actor)


HIDDEN: JSON = {"hidden": True, "allowed": []}  # the snapshot of a part its audience excludes


class Composite:
    """A room type whose state is a tuple: one slice per part, in order."""

    rules = Rules(phases=(), commands={})  # each part keeps its own phases and permissions

    def __init__(self, kind: str, parts: Sequence[Part]):
        self.kind = kind
        self.parts = tuple(parts)
        self.arguments: Mapping[str, type[BaseModel]] = {
            name: model for part in self.parts for name, model in part.kind.arguments.items()
        }
        self.gates = frozenset().union(*(part.kind.gates for part in self.parts))
        self.reveals = frozenset().union(*(part.kind.reveals for part in self.parts))
        self.signed: Mapping[str, tuple[str, ...]] = {
            name: fields for part in self.parts for name, fields in part.kind.signed.items()
        }

    def _index(self, name: str) -> int:
        for index, part in enumerate(self.parts):
            if name.startswith(part.prefixes):
                return index
        raise KeyError(f"no part of {self.kind} owns {name}")

    def initial(self, config: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(part.kind.initial(config) for part in self.parts)

    def decide(
        self, state: tuple[Any, ...], command: Command, actor: Actor, now: datetime
    ) -> Decision:
        try:
            index = self._index(command.name)
        except KeyError:
            return Rejected("unknown_command", f"no command {command.name} in this room", {})
        return self.parts[index].kind.decide(state[index], command, actor, now)

    def apply(self, state: tuple[Any, ...], event: Event) -> tuple[Any, ...]:
        index = self._index(event.name)
        changed = self.parts[index].kind.apply(state[index], event)
        return (*state[:index], changed, *state[index + 1 :])

    def roles(self, state: tuple[Any, ...]) -> frozenset[str]:
        return self.parts[0].kind.roles(state[0])

    def may_join(self, state: tuple[Any, ...], actor: Actor) -> Rejected | None:
        for part, part_state in zip(self.parts, state, strict=True):
            refused = part.kind.may_join(part_state, actor)
            if refused is not None:
                return refused
        return None

    def visible(self, state: tuple[Any, ...], event: Event, actor: Actor) -> bool:
        index = self._index(event.name)
        part = self.parts[index]
        return not part.hides(state, actor) and part.kind.visible(state[index], event, actor)

    def part_state(self, state: tuple[Any, ...], name: str) -> Any:
        """The slice of ``state`` that the part called ``name`` keeps."""
        for part, part_state in zip(self.parts, state, strict=True):
            if part.name == name:
                return part_state
        raise KeyError(f"{self.kind} has no part {name}")

    def snapshot(self, state: tuple[Any, ...], actor: Actor) -> JSON:
        views = {
            part.name: HIDDEN if part.hides(state, actor) else part.kind.snapshot(s, actor)
            for part, s in zip(self.parts, state, strict=True)
        }
        allowed = sorted({c for view in views.values() for c in view.get("allowed", [])})
        return {"kind": self.kind, **views, "allowed": allowed}

    def joined(self, actor: Actor, connection: str, node: str) -> Command:
        return self.parts[0].kind.joined(actor, connection, node)

    def left(self, connection: str) -> Command:
        return self.parts[0].kind.left(connection)

    def expired(self, alive: frozenset[str]) -> Command:
        return self.parts[0].kind.expired(alive)


class Core(Protocol[S]):
    """A module of pure functions that is a room type but for presence: its constants and its
    functions, named as in :class:`RoomType` (``KIND`` for ``kind`` and so on)."""

    KIND: str
    RULES: Rules
    ARGUMENTS: Mapping[str, Any]

    def initial(self, config: Mapping[str, Any]) -> S: ...
    def decide(self, state: S, command: Command, actor: Actor, now: datetime) -> Decision: ...
    def apply(self, state: S, event: Event) -> S: ...
    def roles(self, state: S) -> frozenset[str]: ...
    def may_join(self, state: S, actor: Actor) -> Rejected | None: ...
    def visible(self, state: S, event: Event, actor: Actor) -> bool: ...
    def snapshot(self, state: S, actor: Actor) -> JSON: ...


class Presence(Protocol):
    """A module whose functions make the presence commands (bidroom.meeting's)."""

    def joined(self, actor: Actor, connection: str, node: str) -> Command: ...
    def left(self, connection: str) -> Command: ...
    def expired(self, alive: frozenset[str]) -> Command: ...


class ModuleRoomType(Generic[S]):
    """A :class:`RoomType` made of a module of pure functions, declared by subclassing it in
    that module (``this`` being the module itself, ``from bidroom import meeting as this``)::

        class Meeting(ModuleRoomType[MeetingState], core=this, presence=this):
            "The meeting room type, as the hub sees it."

    ``core`` gives the constants and the state functions, ``presence`` joined/left/expired
    (a part of a composite borrows the meeting's, which answers for presence). mypy checks the
    modules against :class:`Core` and :class:`Presence`.
    """

    kind: str
    rules: Rules
    arguments: Mapping[str, Any]
    gates: frozenset[str]
    reveals: frozenset[str]
    signed: Mapping[str, tuple[str, ...]]
    _core: Core[Any]
    _presence: Presence

    def __init_subclass__(
        cls,
        *,
        core: Core[S],
        presence: Presence,
        gates: frozenset[str] = frozenset(),
        reveals: frozenset[str] = frozenset(),
        signed: Mapping[str, tuple[str, ...]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        cls.kind, cls.rules, cls.arguments = core.KIND, core.RULES, core.ARGUMENTS
        cls.gates, cls.reveals, cls.signed = gates, reveals, dict(signed or {})
        cls._core, cls._presence = core, presence

    def initial(self, config: Mapping[str, Any]) -> S:
        state: S = self._core.initial(config)
        return state

    def decide(self, state: S, command: Command, actor: Actor, now: datetime) -> Decision:
        return self._core.decide(state, command, actor, now)

    def apply(self, state: S, event: Event) -> S:
        changed: S = self._core.apply(state, event)
        return changed

    def roles(self, state: S) -> frozenset[str]:
        return self._core.roles(state)

    def may_join(self, state: S, actor: Actor) -> Rejected | None:
        return self._core.may_join(state, actor)

    def visible(self, state: S, event: Event, actor: Actor) -> bool:
        return self._core.visible(state, event, actor)

    def snapshot(self, state: S, actor: Actor) -> JSON:
        return self._core.snapshot(state, actor)

    def joined(self, actor: Actor, connection: str, node: str) -> Command:
        return self._presence.joined(actor, connection, node)

    def left(self, connection: str) -> Command:
        return self._presence.left(connection)

    def expired(self, alive: frozenset[str]) -> Command:
        return self._presence.expired(alive)
