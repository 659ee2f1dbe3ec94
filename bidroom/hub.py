"""The hub: runs commands against rooms, keeps each room's log in order, and fans events out.

One request's way through: ``execute`` decides on the room's cached state, appends the events
with the next seqs in one transaction (a concurrent append from another node is a SeqConflict:
catch up from the store and decide again), applies them locally, queues them to this node's
subscribers and publishes them to the other nodes. Everything that touches a room's state or its
subscribers holds that room's lock, so each subscriber sees events in seq order, exactly once.

The hub knows room types only through bidroom.room.RoomType; it knows nothing of procurement.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bidroom import audit, integrity, owners, protocol
from bidroom.broker import Broker
from bidroom.errors import (
    BrokerError,
    Refused,
    RoomNotFound,
    RoomTampered,
    SeqConflict,
    StoreError,
)
from bidroom.metrics import Metrics
from bidroom.presence import Presence
from bidroom.protocol import Close
from bidroom.room import SYSTEM, Actor, Command, Event, Rejected, RoomType, fold
from bidroom.store import CommandKey, DuplicateCommand, RoomRecord, Store

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Outcome = dict[str, Any]
RETRIES = 20
BATCH = 256


def system_clock() -> datetime:
    return datetime.now(UTC)


REPUBLISH_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)  # seconds before each new try of a failed publish
REPUBLISH_PENDING = 1000  # failed publishes retried at once; beyond, the resync catches up


class Subscriber(Protocol):
    """A connection as the hub sees it: never awaited, so one slow client cannot stall a room."""

    id: str
    actor: Actor

    def push(self, frame: str) -> None:
        """Queue a frame; a subscriber whose queue is full closes itself."""

    def close(self, code: Close, reason: str) -> None:
        """Ask the connection to close (it happens on its own task)."""


@dataclass(frozen=True, slots=True)
class Recipient:
    """The addressee of a direct frame: a subject in a role, or one of its connections."""

    subject: str
    role: str
    connection: str | None = None

    def matches(self, subscriber: Subscriber) -> bool:
        actor = subscriber.actor
        return (
            actor.subject == self.subject
            and actor.role == self.role
            and self.connection in (None, subscriber.id)
        )

    def to_json(self) -> dict[str, Any]:
        return {"subject": self.subject, "role": self.role, "connection": self.connection}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Recipient:
        return cls(str(data["subject"]), str(data["role"]), data.get("connection"))


@dataclass
class LiveRoom:
    record: RoomRecord
    kind: RoomType[Any]
    state: Any
    seq: int
    recent: deque[Event]
    subscribers: dict[str, Subscriber] = field(default_factory=dict)
    # The same subscribers by subject: a direct frame finds its addressee's connections without
    # scanning the room (a join tells everyone present: a scan each would make joins O(N^2)).
    by_subject: dict[str, dict[str, Subscriber]] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: list[Pending] = field(default_factory=list)
    drainer: asyncio.Task[None] | None = None

    def admit(self, subscriber: Subscriber) -> None:
        self.subscribers[subscriber.id] = subscriber
        self.by_subject.setdefault(subscriber.actor.subject, {})[subscriber.id] = subscriber

    def discharge(self, subscriber_id: str) -> Subscriber | None:
        """Forget a subscriber; the one forgotten, or None if it was not here."""
        subscriber = self.subscribers.pop(subscriber_id, None)
        if subscriber is not None:
            mine = self.by_subject.get(subscriber.actor.subject, {})
            mine.pop(subscriber_id, None)
            if not mine:
                self.by_subject.pop(subscriber.actor.subject, None)
        return subscriber

    def connections_of(self, to: Recipient) -> list[Subscriber]:
        """This node's connections that a direct frame for ``to`` reaches."""
        mine = self.by_subject.get(to.subject, {})
        return [s for s in list(mine.values()) if to.matches(s)]


@dataclass
class Pending:
    """A command waiting in its room's queue for the next group commit."""

    command: Command
    actor: Actor
    key: CommandKey | None
    outcome: asyncio.Future[Outcome]


def decide_all(
    kind: RoomType[Any], state: Any, seq: int, batch: list[Pending], now: datetime
) -> tuple[list[Outcome], list[Event]]:
    """Decide a batch in order, each command on the state the ones before it left (pure)."""
    outcomes: list[Outcome] = []
    events: list[Event] = []
    for pending in batch:
        decision = kind.decide(state, pending.command, pending.actor, now)
        if isinstance(decision, Rejected):
            outcomes.append(refused(decision))
            continue
        mine = numbered(decision, seq + len(events), now, pending.actor)
        state = fold(kind, state, mine)
        events += mine
        outcomes.append(accepted(mine))
    return outcomes, events


def _settle(future: asyncio.Future[Outcome], outcome: Outcome) -> None:
    if not future.done():
        future.set_result(outcome)


def _fail(future: asyncio.Future[Outcome], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def accepted(events: list[Event]) -> Outcome:
    return {"ok": True, "seqs": [e.seq for e in events]}


def refused(rejected: Rejected) -> Outcome:
    return {
        "ok": False,
        "code": rejected.code,
        "message": rejected.message,
        "detail": dict(rejected.detail),
    }


def not_owner(live: LiveRoom, actor: Actor) -> Rejected | None:
    """A chair acting in a room of a tender that is not theirs (bidroom.owners)."""
    if actor.role != "chair":
        return None
    kind, config = live.record.kind, live.record.config
    refused = owners.refusal(kind, config, actor.subject, actor.organisation)
    return None if refused is None else Rejected("not_your_tender", refused, {})


def numbered(events: list[Event], after: int, now: datetime, actor: Actor) -> list[Event]:
    return [
        Event(e.name, e.data, seq=after + i, at=now, actor=actor)
        for i, e in enumerate(events, start=1)
    ]


def event_from_json(frame: Mapping[str, Any]) -> Event:
    actor = Actor.from_json(frame["actor"]) if frame.get("actor") else None
    at = datetime.fromisoformat(frame["at"]) if frame.get("at") else None
    return Event(frame["name"], frame["data"], seq=int(frame["seq"]), at=at, actor=actor)


class Hub:
    def __init__(
        self,
        store: Store,
        broker: Broker,
        room_types: Mapping[str, RoomType[Any]],
        *,
        node: str,
        metrics: Metrics,
        replay_limit: int = 1000,
        clock: Clock = system_clock,
        presence: Presence | None = None,
        limits: Mapping[str, Any] | None = None,
    ):
        self.store = store
        self.broker = broker
        self.room_types = room_types
        self.node = node
        self.metrics = metrics
        self.replay_limit = replay_limit
        self.limits = dict(limits or {})  # told to every client in its welcome, with "replay"
        self.clock = clock
        self.presence = presence or Presence()  # sockets per subject, departures held back
        self.rooms: dict[str, LiveRoom] = {}
        self._loading = asyncio.Lock()
        self._republishing: set[asyncio.Task[None]] = set()
        # Called after each batch of events is applied (here or from the broker), with the room
        # and its state before the batch: what a change means beyond events (bidroom.ws's media
        # watch). An observer never blocks and never raises.
        self.observers: list[Callable[[LiveRoom, Any], None]] = []
        # Rooms found not to match their audit entries (bidroom.integrity), and the mismatches
        # already logged: the alarm is logged once per mismatch, counted at every refusal.
        self.tampered: set[str] = set()
        self._alarmed: set[tuple[Any, ...]] = set()

    # rooms -----------------------------------------------------------------------------------

    async def create_room(
        self, room_id: str, kind: str, title: str, config: Mapping[str, Any]
    ) -> RoomRecord:
        if kind not in self.room_types:
            raise Refused(
                f"unknown room kind {kind}",
                code="unknown_kind",
                detail={"kinds": sorted(self.room_types)},
            )
        record = RoomRecord(room_id, kind, title, dict(config), self.clock())
        await self.store.create_room(record)
        return record

    async def room(self, room_id: str) -> LiveRoom:
        live = self.rooms.get(room_id)
        if live is not None:
            return live
        async with self._loading:
            live = self.rooms.get(room_id) or await self._load(room_id)
            self.rooms[room_id] = live
            self.metrics.rooms.set(len(self.rooms))
        return live

    async def _load(self, room_id: str) -> LiveRoom:
        record = await self.store.room(room_id)
        if record is None:
            raise RoomNotFound(f"no room {room_id}", detail={"room": room_id})
        kind = self.room_types[record.kind]
        try:
            events = await self.store.events(room_id)  # checked against the audit entries
        except RoomTampered as exc:
            self.alarm(exc)
            raise
        if room_id in self.tampered:  # repaired (a backup restored): served again
            self.tampered.discard(room_id)
            self.metrics.rooms_tampered.set(len(self.tampered))
            log.warning("room matches its audit log again", extra={"room": room_id})
        state = fold(kind, kind.initial({**record.config, "title": record.title}), events)
        recent = deque(events[-self.replay_limit :], maxlen=self.replay_limit)
        seq = events[-1].seq if events else 0
        return LiveRoom(record, kind, state, seq, recent)

    # commands --------------------------------------------------------------------------------

    async def execute(
        self, room_id: str, command: Command, actor: Actor, command_id: str | None = None
    ) -> Outcome:
        """Decide and record a command; the outcome a retry with the same id gets too.

        Commands wait in the room's queue; one drain task at a time commits whatever has
        queued up in one transaction (group commit), so a burst — a reconnect storm's joins,
        say — costs a few transactions instead of one each.
        """
        live = await self.room(room_id)
        foreign = not_owner(live, actor)
        if foreign is not None:
            self.metrics.commands.labels("rejected").inc()
            return refused(foreign)
        key = CommandKey(actor.subject, command_id) if command_id else None
        pending = Pending(command, actor, key, asyncio.get_running_loop().create_future())
        live.pending.append(pending)
        if live.drainer is None or live.drainer.done():
            live.drainer = asyncio.create_task(self._drain(live), name=f"drain {room_id}")
        outcome = await pending.outcome
        self.metrics.commands.labels("accepted" if outcome["ok"] else "rejected").inc()
        return outcome

    async def _drain(self, live: LiveRoom) -> None:
        while live.pending:
            batch, live.pending = live.pending[:BATCH], live.pending[BATCH:]
            async with live.lock:
                await self._commit(live, batch)

    async def _commit(self, live: LiveRoom, batch: list[Pending]) -> None:
        """Record a batch, retrying on a lost seq race; settle every command's future."""
        for _ in range(RETRIES):
            try:
                outcomes = await self._attempt(live, batch)
            except SeqConflict:
                continue  # another writer won this seq (SQLite across processes): again
            except DuplicateCommand as seen:  # answered before: its first outcome, then the rest
                done = [p for p in batch if p.key == seen.key]
                for pending in done:
                    _settle(pending.outcome, seen.outcome)
                batch = [p for p in batch if p.key != seen.key]
                continue
            except BaseException as exc:
                for pending in batch:
                    _fail(pending.outcome, exc)
                if isinstance(exc, Exception):
                    return
                raise
            for pending, outcome in zip(batch, outcomes, strict=True):
                _settle(pending.outcome, outcome)
            return
        busy = StoreError(f"room {live.record.id} is too busy; retry", code="unavailable")
        for pending in batch:
            _fail(pending.outcome, busy)

    async def _attempt(self, live: LiveRoom, batch: list[Pending]) -> list[Outcome]:
        """Decide a batch on the room's latest state and record it, holding the room's write
        lock: catch up on what other nodes appended, decide each command in turn, append,
        commit; then fan out."""
        if not batch:
            return []
        async with self.store.writer(live.record.id) as writer:
            try:
                missing = await writer.events(after=live.seq)
            except RoomTampered as exc:
                self.quarantine(live, exc)
                raise
            if missing:
                self.metrics.gap_fills.inc()
                self._apply(live, missing)
            outcomes, events = decide_all(live.kind, live.state, live.seq, batch, self.clock())
            causes: dict[int, str] = {}
            for pending, outcome in zip(batch, outcomes, strict=True):
                if pending.key is not None:
                    await writer.remember(pending.key, outcome)
                    causes.update(dict.fromkeys(outcome.get("seqs", ()), pending.key.command_id))
            await writer.insert(events, causes)
            await writer.audit([audit.room_event(live.record.id, e) for e in events])
        if events:
            self.metrics.events_appended.inc(len(events))
            self._apply(live, events)
            await self._publish(live.record.id, events)
        return outcomes

    async def _publish(self, room_id: str, events: list[Event]) -> None:
        body = protocol.dump({"events": [protocol.event_json(e) for e in events]})
        payload = f"{self.node}\n{body}"
        try:
            await self.broker.publish(room_id, payload)
        except BrokerError as exc:
            self.metrics.broker_errors.inc()
            log.warning(
                "broker publish failed; published again once the broker is back",
                extra={"room": room_id, "error": exc.message},
            )
            if len(self._republishing) < REPUBLISH_PENDING:
                task = asyncio.create_task(self._republish(room_id, payload), name="republish")
                self._republishing.add(task)
                task.add_done_callback(self._republishing.discard)

    async def _republish(self, room_id: str, payload: str) -> None:
        """Publish again after a failure, a few times: the other nodes then hear of the events
        as soon as the broker is back, not only at their next resync. A copy that arrives twice
        or late is harmless: delivery skips what a node has and catches up over a gap."""
        for delay in REPUBLISH_DELAYS:
            await asyncio.sleep(delay)
            with contextlib.suppress(BrokerError):
                await self.broker.publish(room_id, payload)
                return

    # applying and fanning out ----------------------------------------------------------------

    def _apply(self, live: LiveRoom, events: list[Event]) -> None:
        before = live.state
        for event in events:
            live.state = live.kind.apply(live.state, event)
            live.seq = event.seq
            live.recent.append(event)
            self._fan_out(live, event)
        if any(event.name in live.kind.gates for event in events):
            self._enforce_membership(live)
        if any(event.name in live.kind.reveals for event in events):
            self._refresh(live)
        for observer in self.observers:
            try:
                observer(live, before)
            except Exception:
                log.exception("a room observer failed", extra={"room": live.record.id})

    def _fan_out(self, live: LiveRoom, event: Event) -> None:
        frame = protocol.dump(protocol.event_json(event))
        sent = 0
        for subscriber in list(live.subscribers.values()):
            if live.kind.visible(live.state, event, subscriber.actor):
                subscriber.push(frame)
                sent += 1
        self.metrics.events_delivered.inc(sent)

    def _refresh(self, live: LiveRoom) -> None:
        """A fresh snapshot to every subscriber: what they may see has just widened."""
        for subscriber in list(live.subscribers.values()):
            view = live.kind.snapshot(live.state, subscriber.actor)
            subscriber.push(protocol.dump(protocol.snapshot_frame(live.seq, view)))

    def _enforce_membership(self, live: LiveRoom) -> None:
        for subscriber in list(live.subscribers.values()):
            refusal = live.kind.may_join(live.state, subscriber.actor)
            if refusal is not None:
                code = Close.REMOVED if refusal.code == "removed" else Close.FORBIDDEN
                subscriber.close(code, refusal.message)

    # rooms whose stored events do not match the audit log ---------------------------------

    def alarm(self, exc: RoomTampered) -> None:
        """Raise the alarm of a room found not to match its audit entries: counted at every
        refusal, logged (level ERROR, ``alarm: room_tampered``) once per mismatch."""
        if exc.alarmed:  # the hub raised it and alarmed; the HTTP edge passes it on
            return
        exc.alarmed = True
        detail = dict(exc.detail)
        room = str(detail.get("room"))
        self.metrics.tampered_refusals.inc()
        self.tampered.add(room)
        self.metrics.rooms_tampered.set(len(self.tampered))
        seen = (room, detail.get("seq"), detail.get("index"), detail.get("problem"))
        if seen not in self._alarmed:
            self._alarmed.add(seen)
            log.error(
                "a room's stored events do not match the audit log: the room is not served",
                extra={"alarm": "room_tampered", "error": exc.message, **detail},
            )

    def refuse(self, exc: RoomTampered) -> None:
        """A read outside the hub (a report, the HTTP history) met a room that does not
        match: the alarm, and the room closed here if it is loaded."""
        live = self.rooms.get(str(exc.detail.get("room")))
        if live is None:
            self.alarm(exc)
        else:
            self.quarantine(live, exc)

    def quarantine(self, live: LiveRoom, exc: RoomTampered) -> None:
        """A loaded room whose stored log stopped matching the audit log: alarm, forget it
        (the next request loads and checks it again) and close its connections (4011)."""
        self.alarm(exc)
        if self.rooms.get(live.record.id) is live:
            del self.rooms[live.record.id]
            self.metrics.rooms.set(len(self.rooms))
        frame = protocol.dump(protocol.error_frame(exc.code, exc.message, dict(exc.detail)))
        for subscriber in list(live.subscribers.values()):
            subscriber.push(frame)
            subscriber.close(Close.ROOM_TAMPERED, exc.code)

    async def _catch_up(self, live: LiveRoom) -> None:
        try:
            missing = await self.store.events(live.record.id, after=live.seq)
        except RoomTampered as exc:
            self.quarantine(live, exc)
            raise
        if missing:
            self.metrics.gap_fills.inc()
            self._apply(live, missing)

    async def deliver(self, room_id: str, payload: str) -> None:
        """Broker callback: events another node appended, or a direct frame it relays."""
        node, _, body = payload.partition("\n")
        live = self.rooms.get(room_id)
        if node == self.node or live is None:
            return
        message = json.loads(body)
        if "direct" in message:
            direct = message["direct"]
            to = direct["to"] if isinstance(direct["to"], list) else [direct["to"]]
            self._push_direct(live, [Recipient.from_json(r) for r in to], direct["frame"])
            return
        events = [event_from_json(e) for e in message["events"]]
        async with live.lock:
            fresh = [e for e in events if e.seq is not None and e.seq > live.seq]
            with contextlib.suppress(RoomTampered):  # alarmed, the room closed
                if not fresh:
                    return
                if events[0].seq > live.seq + 1 or not await self._vouched(live, fresh):
                    await self._catch_up(live)
                else:
                    self._apply(live, fresh)

    async def _vouched(self, live: LiveRoom, events: list[Event]) -> bool:
        """Whether the audit log vouches for events the broker brought (another node's, or
        a forger's on the broker): the events are applied only if so; otherwise the store's are
        read (and checked) instead."""
        first, last = events[0].seq or 0, events[-1].seq or 0
        recorded = await self.store.recorded(live.record.id, first - 1, last)
        mismatch = integrity.first_mismatch(live.record.id, first - 1, events, recorded)
        if mismatch is None:
            return True
        self.metrics.broker_events_refused.inc(len(events))
        log.error(
            "events from the broker do not match the audit log: the store's are read instead",
            extra={"alarm": "broker_events_refused", **mismatch.to_json()},
        )
        return False

    async def resync(self) -> None:
        """Catch up loaded rooms whose log moved on without us (broker outage, lost message)."""
        heads = await self.store.last_seqs(self.rooms)
        for room_id, head in heads.items():
            live = self.rooms[room_id]
            if head > live.seq:
                async with live.lock:
                    with contextlib.suppress(RoomTampered):  # alarmed, the room closed
                        await self._catch_up(live)

    # subscribers -----------------------------------------------------------------------------

    async def attach(self, room_id: str, subscriber: Subscriber, since: int) -> None:
        """Admit a subscriber: welcome, the events it misses (or a snapshot), then live ones."""
        live = await self.room(room_id)
        async with live.lock:
            refusal = not_owner(live, subscriber.actor) or live.kind.may_join(
                live.state, subscriber.actor
            )
            if refusal is not None:
                raise Refused(refusal.message, code=refusal.code, detail=refusal.detail)
            mine = live.by_subject.get(subscriber.actor.subject, {}).values()
            for older in self.presence.admit(mine, subscriber.actor):
                older.close(Close.CONNECTION_REPLACED, "replaced by your newer connection")
            if since > live.seq:
                await self._catch_up(live)
            self._greet(live, subscriber, since)
            resumed = self.presence.resume(room_id, subscriber)  # takes a departed one's id
            live.admit(subscriber)
        self.metrics.connections.inc()
        if resumed:
            return
        join = live.kind.joined(subscriber.actor, subscriber.id, self.node)
        try:
            outcome = await self.execute(room_id, join, subscriber.actor)
        except BaseException:
            await self._forget(live, subscriber)
            raise
        if not outcome["ok"]:
            await self._forget(live, subscriber)
            raise Refused(outcome["message"], code=outcome["code"], detail=outcome["detail"])

    async def _forget(self, live: LiveRoom, subscriber: Subscriber) -> None:
        async with live.lock:
            if live.discharge(subscriber.id) is not None:
                self.metrics.connections.dec()

    def _greet(self, live: LiveRoom, subscriber: Subscriber, since: int) -> None:
        behind = live.seq - since
        # A newcomer (since 0) starts from a snapshot: the state is smaller than the log. So
        # does a client that missed an event widening what it may see (the bids fixed, say):
        # events hidden from it before that are not in any replay, and a connected page got a
        # fresh snapshot at that moment (_refresh), so a resuming one gets the same.
        replayable = since > 0 and 0 <= behind <= len(live.recent)
        missed = list(live.recent)[len(live.recent) - behind :] if replayable and behind else []
        widened = any(event.name in live.kind.reveals for event in missed)
        mode = "replay" if replayable and not widened else "snapshot"
        limits = {**self.limits, "replay": self.replay_limit}
        welcome = protocol.welcome_frame(
            live.record.id, subscriber.actor, live.seq, mode, self.node, limits
        )
        subscriber.push(protocol.dump(welcome))
        if mode == "snapshot":
            view = live.kind.snapshot(live.state, subscriber.actor)
            subscriber.push(protocol.dump(protocol.snapshot_frame(live.seq, view)))
            return
        for event in missed:
            if live.kind.visible(live.state, event, subscriber.actor):
                subscriber.push(protocol.dump(protocol.event_json(event)))

    async def detach(self, room_id: str, subscriber: Subscriber) -> None:
        live = self.rooms.get(room_id)
        if live is None or live.discharge(subscriber.id) is None:
            return
        self.metrics.connections.dec()
        leave = live.kind.left(subscriber.id)

        async def record() -> None:
            with contextlib.suppress(StoreError, RoomNotFound):
                await self.execute(room_id, leave, SYSTEM)

        await self.presence.leave(room_id, subscriber, record)

    # direct frames: not events, never logged ------------------------------------------------

    async def direct(self, room_id: str, to: Recipient, frame: Mapping[str, Any]) -> int:
        """Push ``frame`` to ``to``'s connections in the room, on this node and (through the
        broker) on every other; the number of this node's connections that got it.

        Ephemeral, as media signaling is: not in the room's log, not replayed on resume. A
        frame the broker fails to carry is lost; the peers' negotiation times out and retries."""
        return await self.direct_many(room_id, [to], frame)

    async def direct_many(
        self, room_id: str, recipients: Sequence[Recipient], frame: Mapping[str, Any]
    ) -> int:
        """:meth:`direct` to several addressees at once: one broker message whatever their
        number (a newcomer telling everyone present it joined costs O(1) messages, not O(N))."""
        if not recipients:
            return 0
        live = await self.room(room_id)
        sent = self._push_direct(live, recipients, frame)
        to = [r.to_json() for r in recipients]
        body = protocol.dump({"direct": {"to": to, "frame": dict(frame)}})
        try:
            await self.broker.publish(room_id, f"{self.node}\n{body}")
        except BrokerError as exc:
            self.metrics.broker_errors.inc()
            log.warning("direct frame not relayed", extra={"room": room_id, "error": exc.message})
        return sent

    def _push_direct(
        self, live: LiveRoom, recipients: Sequence[Recipient], frame: Mapping[str, Any]
    ) -> int:
        text = protocol.dump(dict(frame))
        sent = 0
        for to in recipients:
            for subscriber in live.connections_of(to):
                subscriber.push(text)
                sent += 1
        return sent

    # nodes -----------------------------------------------------------------------------------

    async def heartbeat(self, ttl: timedelta) -> None:
        """Say this node is alive; clear presence left behind by nodes that are not."""
        now = self.clock()
        await self.store.heartbeat(self.node, now)
        await self.resync()
        alive = frozenset(await self.store.live_nodes(now - ttl))
        for room_id, live in list(self.rooms.items()):
            await self.execute(room_id, live.kind.expired(alive), SYSTEM)

    async def shutdown(self) -> None:
        """Tell every client to reconnect elsewhere and record that they left."""
        for task in list(self._republishing):
            task.cancel()
        for room_id, live in list(self.rooms.items()):
            for subscriber in list(live.subscribers.values()):
                subscriber.close(Close.SERVICE_RESTART, "server shutting down; reconnect")
                await self.detach(room_id, subscriber)
        await self.presence.flush()
        with contextlib.suppress(StoreError):
            await self.store.heartbeat(self.node, datetime(1970, 1, 1, tzinfo=UTC))
