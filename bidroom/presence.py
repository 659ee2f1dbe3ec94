"""Presence at the hub's door: how many sockets one subject may hold in a room, and departures
held back for a moment so that a reconnection takes the old socket's place.

Without it, every socket is a ``presence.joined`` and a ``presence.left`` in the room's log and
the audit log: one bidder opening and closing 200 sockets in 4 s wrote 400 of each. Now

- a subject holds at most ``most`` sockets in one room on this node; a newer one replaces the
  oldest, which is closed with 4029 (``connection_replaced``). The newest wins because a link
  that changed (Wi-Fi to 4G, an island's outage) leaves sockets the server cannot yet know are
  dead until their heartbeat times out: refusing the newcomer would keep the bidder out of the
  room for that long, in the middle of a decryption window. Per node: a deployment of n nodes
  admits n times as many, each node bounding its own work;
- a socket that closes is recorded as gone (``presence.left``) only ``grace`` seconds later. A
  socket of the same actor (subject, name, role, venue, organisation) that arrives in the room
  meanwhile *resumes* it: it takes the old socket's connection id, and nothing is recorded, as
  nothing changed in the room. A subject's flapping link writes at most one join and one leave
  per ``grace`` seconds, and the room shows them present throughout, absent ``grace`` seconds
  after their last socket closed. Media is told the truth meanwhile: a held connection is left
  out of the ``present`` of media frames (:meth:`Presence.held`), so nobody offers to a socket
  that is not there; the socket that resumes it announces itself (``peer`` joined) as any
  newcomer does.

The hub calls :meth:`Presence.admit` and :meth:`Presence.resume` while it admits a subscriber
(under the room's lock), and :meth:`Presence.leave` when one goes; :meth:`Presence.flush`
records every held departure at once (shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bidroom.errors import BidroomError
from bidroom.room import Actor

log = logging.getLogger(__name__)

Record = Callable[[], Awaitable[Any]]


@dataclass
class Held:
    """A departure not yet recorded: the connection id it frees, and how to record it."""

    connection: str
    record: Record
    timer: asyncio.TimerHandle | None = None


@dataclass
class Presence:
    most: int = 0  # sockets per subject and room on this node; 0: no limit
    grace: float = 0.0  # seconds a departure is held; 0: recorded at once
    _held: dict[tuple[str, Actor], list[Held]] = field(default_factory=dict)
    _recording: set[asyncio.Task[None]] = field(default_factory=set)

    def admit(self, present: Iterable[Any], actor: Actor) -> list[Any]:
        """The subject's sockets to close so that a new one fits (``present``: the subject's
        subscribers in the room, oldest first; the hub's index, so a join does not scan the
        room): the oldest beyond ``most - 1``, not those already closing."""
        if not self.most:
            return []
        mine = [
            s
            for s in present
            if s.actor.subject == actor.subject and getattr(s, "closing", None) is None
        ]
        return mine[: max(0, len(mine) - (self.most - 1))]

    def resume(self, room: str, subscriber: Any) -> bool:
        """True if ``subscriber`` takes the place of a departure held for the same actor: it
        takes that connection's id, and its arrival is not recorded."""
        waiting = self._held.get((room, subscriber.actor))
        if not waiting:
            return False
        held = waiting.pop()
        if not waiting:
            del self._held[(room, subscriber.actor)]
        if held.timer is not None:
            held.timer.cancel()
        subscriber.id = held.connection
        return True

    async def leave(self, room: str, subscriber: Any, record: Record) -> None:
        """``subscriber`` is gone: record it after the grace (at once without one)."""
        if self.grace <= 0:
            await record()
            return
        key = (room, subscriber.actor)
        held = Held(subscriber.id, record)
        self._held.setdefault(key, []).append(held)
        loop = asyncio.get_running_loop()
        held.timer = loop.call_later(self.grace, self._due, key, held)

    def _due(self, key: tuple[str, Actor], held: Held) -> None:
        waiting = self._held.get(key, [])
        if held not in waiting:
            return
        waiting.remove(held)
        if not waiting:
            del self._held[key]
        task = asyncio.get_running_loop().create_task(self._record(held))
        self._recording.add(task)
        task.add_done_callback(self._recording.discard)

    @staticmethod
    async def _record(held: Held) -> None:
        try:
            await held.record()
        except BidroomError as exc:  # the store unavailable: the resync and expiry catch up
            log.warning("departure not recorded", extra={"error": exc.message})

    async def flush(self) -> None:
        """Record every held departure now, and wait for those already being recorded."""
        held = [h for waiting in self._held.values() for h in waiting]
        self._held.clear()
        for item in held:
            if item.timer is not None:
                item.timer.cancel()
            await self._record(item)
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._recording, return_exceptions=True)

    def held(self) -> frozenset[str]:
        """The connection ids whose departure is held: the room still lists them, but no
        socket answers there, so nobody should offer them media meanwhile."""
        return frozenset(h.connection for waiting in self._held.values() for h in waiting)
