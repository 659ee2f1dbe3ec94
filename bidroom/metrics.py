"""Prometheus metrics, one registry per app (never the process-global default)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Gauge("bidroom_connections", "Open WebSocket connections", registry=r)
        self.rooms = Gauge("bidroom_rooms", "Rooms loaded on this node", registry=r)
        self.events_appended = Counter(
            "bidroom_events_appended", "Events this node appended to room logs", registry=r
        )
        self.events_delivered = Counter(
            "bidroom_events_delivered", "Event frames queued to clients", registry=r
        )
        self.commands = Counter("bidroom_commands", "Commands decided", ["outcome"], registry=r)
        self.queue_drops = Counter(
            "bidroom_queue_drops",
            "Clients cut off because their outgoing queue was full",
            registry=r,
        )
        self.gap_fills = Counter(
            "bidroom_gap_fills", "Times a gap in seq was filled from the store", registry=r
        )
        self.broker_errors = Counter(
            "bidroom_broker_errors",
            "Broker publish failures (the store still has the events)",
            registry=r,
        )
        self.rooms_tampered = Gauge(
            "bidroom_rooms_tampered",
            "Rooms this node refuses to serve: their stored events do not match the audit log",
            registry=r,
        )
        self.tampered_refusals = Counter(
            "bidroom_room_tampered_refusals",
            "Requests refused because the room's stored events do not match the audit log",
            registry=r,
        )
        self.broker_events_refused = Counter(
            "bidroom_broker_events_refused",
            "Events from the broker the audit log does not vouch for (the store's read instead)",
            registry=r,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
