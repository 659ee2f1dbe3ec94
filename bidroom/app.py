"""The Starlette app: routes, and every resource (engine, broker, hub) made in its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from bidroom import (
    api,
    audit_api,
    demo,
    edge,
    evaluation,
    evaluations,
    login,
    opening,
    openings,
    recordings,
    sessions,
    tender_api,
    throttle,
    timestamps,
    wire,
    ws,
)
from bidroom.audit_log import AuditLog
from bidroom.broker import broker_for
from bidroom.db import ensure_migrated
from bidroom.errors import BidroomError, RoomTampered
from bidroom.hub import Hub
from bidroom.meeting import Meeting
from bidroom.metrics import Metrics
from bidroom.presence import Presence
from bidroom.room import RoomType
from bidroom.settings import Settings
from bidroom.store import Store, close_engine, create_engine
from bidroom.worker import Worker
from ca.errors import AuditError, CryptoError
from signaling.aiortc_backend import pin_host_addresses

log = logging.getLogger(__name__)

ROOM_TYPES: Mapping[str, RoomType[Any]] = {
    Meeting.kind: Meeting(),
    opening.KIND: opening.room_type(),
    evaluation.KIND: evaluation.room_type(),
}


async def _maintain(hub: Hub, settings: Settings) -> None:
    """Heartbeat this node, expire dead nodes' presence, and resync rooms, until cancelled."""
    ttl = timedelta(seconds=settings.node_ttl_seconds)
    every = min(settings.resync_seconds, settings.node_ttl_seconds / 3)
    while True:
        await asyncio.sleep(every)
        try:
            await hub.heartbeat(ttl)
            await hub.resync()
        except BidroomError as exc:
            log.warning("maintenance skipped", extra={"error": exc.message})


async def _integrate(audit_log: AuditLog, settings: Settings) -> None:
    """Number pending audit entries and sign a checkpoint, every few seconds, until cancelled."""
    while True:
        await asyncio.sleep(settings.audit_seconds)
        try:
            await audit_log.integrate()
        except AuditError as exc:  # key continuity, a rollback, a fork: an alarm, not a skip
            log.error("audit integration refused", extra={"error": exc.message, "code": exc.code})
        except (BidroomError, CryptoError, SQLAlchemyError) as exc:
            reason = getattr(exc, "message", type(exc).__name__)
            log.warning("audit integration skipped", extra={"error": reason})


async def _clock(state: Any, every: float) -> None:
    """The rooms' clock, until cancelled: each round the openings' steps, then the evaluations';
    nothing that goes wrong in a round stops it."""
    while True:
        await asyncio.sleep(every)
        for tick in (openings.tick, evaluations.tick, state.recordings.tick):
            try:
                await tick(state, state.hub.clock())
            except Exception:
                log.exception("clock round skipped", extra={"clock": tick.__module__})


async def _room_tampered(request: Request, exc: Exception) -> Response:
    """Any HTTP request that read a room whose stored events do not match the audit log
    (bidroom.integrity): 409 ``room_tampered``, naming the room, seq and entry, never a 500;
    the alarm is the hub's (log and metrics), and so is closing the room if it is loaded (a
    report or a history page read the edit from the database)."""
    assert isinstance(exc, RoomTampered)
    request.app.state.hub.refuse(exc)
    return api.error(RoomTampered.status, exc.code, exc.message, dict(exc.detail))


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    settings.require_secrets()
    assert settings.secret_key is not None
    app.state.sessions = sessions.Sessions(
        settings.secret_key.get_secret_value(), settings.trust_root
    )
    # CPU work in pure Python in processes of their own: on a thread it would still hold the
    # GIL against the loop (bidroom.worker). Trusted time has its own, so that a bid's receipt
    # never waits behind a report being rendered; the public POST /tsa is capped in it.
    app.state.time_worker, app.state.document_worker = Worker(), Worker()
    app.state.tsa, app.state.timestamper = timestamps.open_timestamping(
        settings, worker=app.state.time_worker
    )
    app.state.tsa_public = timestamps.PublicLimits()
    app.state.login_limits = throttle.LoginLimits.of(
        settings.logins_per_minute, settings.certificate_logins_per_minute
    )
    app.state.login_verifying = asyncio.Semaphore(login.VERIFYING_AT_ONCE)
    engine = create_engine(settings.database_url)
    metrics = Metrics()
    broker = broker_for(settings.redis_url)
    store = Store(engine)
    hub = Hub(
        store,
        broker,
        ROOM_TYPES,
        node=settings.node_id,
        metrics=metrics,
        replay_limit=settings.replay_limit,
        presence=Presence(settings.connections_per_subject, settings.presence_grace_seconds),
        limits={
            "heartbeat": settings.heartbeat_seconds,
            "max_frame_bytes": settings.max_frame_bytes,
            "commands_per_second": settings.commands_per_second,
            "signals_per_second": settings.signals_per_second,
        },
    )
    try:
        await ensure_migrated(engine)
        audit_log = audit_api.open_log(engine, settings, app.state.timestamper, hub.clock)
        await audit_log.start()  # refuses a key, origin or database the log cannot go on in
        await hub.heartbeat(timedelta(seconds=settings.node_ttl_seconds))
        await broker.start(hub.deliver, hub.resync)
    except BaseException:
        await close_engine(engine)
        raise
    app.state.store, app.state.broker, app.state.hub, app.state.metrics = (
        store,
        broker,
        hub,
        metrics,
    )
    tender_api.attach(app.state, engine, settings)
    pin_host_addresses(settings.media_addresses)
    app.state.recordings = recordings.Recordings(hub, settings)
    hub.observers.append(app.state.recordings.observe)
    hub.observers.append(ws.MediaWatch(settings, hub.clock))
    app.state.audit = audit_log
    maintenance = asyncio.create_task(_maintain(hub, settings), name="maintenance")
    integration = asyncio.create_task(_integrate(app.state.audit, settings), name="audit")
    clock = asyncio.create_task(_clock(app.state, settings.clock_seconds), name="clock")
    if not settings.insider_organisations:
        # the custody policy then counts only the chair's and the owners' organisations as
        # insiders: the platform operator's staff could hold shares as outsiders
        log.warning(
            "BIDROOM_INSIDER_ORGANISATIONS is empty: name the trading centre and the platform "
            "operator (docs/operations.md)"
        )
    log.info(
        "node ready",
        extra={"database": engine.url.get_backend_name(), "broker": type(broker).__name__},
    )
    try:
        yield
    finally:
        for task in (maintenance, integration, clock):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await app.state.recordings.shutdown()
        await hub.shutdown()
        await broker.stop()
        await close_engine(engine)
        for worker in (app.state.time_worker, app.state.document_worker):
            await asyncio.to_thread(worker.shutdown, cancel_futures=True)


def create_app(settings: Settings, demo_dir: Path | None = None) -> Starlette:
    """The app; ``demo_dir`` (the demo command only) also serves the demo people's keys."""
    routes = [
        Route("/healthz", api.healthz),
        Route("/readyz", api.readyz),
        Route("/metrics", api.metrics),
        Route("/api/rooms", api.list_rooms, methods=["GET"]),
        Route("/api/rooms", api.create_room, methods=["POST"]),
        Route("/api/rooms/{room}/events", api.room_events, methods=["GET"]),
        Route("/ca/{file:path}", api.ca_crl, methods=["GET"]),  # <name>.crl
        Route("/tsa", timestamps.endpoint, methods=["POST"]),  # RFC 3161 over HTTP
        Route("/api/audit/checkpoint", audit_api.latest),
        Route("/api/audit/entries", audit_api.entries),
        Route("/api/audit/mine", audit_api.mine),
        Route("/api/audit/proof/inclusion", audit_api.inclusion),
        Route("/api/audit/proof/consistency", audit_api.consistency),
        Route("/api/audit/receipt", audit_api.receipt),
        Route("/.well-known/bidroom-audit.json", audit_api.published),
        Route("/.well-known/bidroom-tsa-roots.pem", audit_api.published_roots),
        Route("/api/login/challenge", login.challenge, methods=["POST"]),
        Route("/api/login", login.answer, methods=["POST"]),
        WebSocketRoute("/ws", ws.endpoint),
        *tender_api.ROUTES,
        *openings.ROUTES,
        *evaluations.ROUTES,
        *recordings.ROUTES,
    ]
    if demo_dir is not None:
        routes += [
            Route("/api/demo/people", demo.people),
            Route("/api/demo/people/{id}", demo.person),
        ]
    if settings.web_root.is_dir():
        routes.append(Mount("/", StaticFiles(directory=settings.web_root, html=True), name="web"))
    middleware = [
        Middleware(edge.SecurityHeaders),  # outermost: the 413 below carries the headers too
        Middleware(
            edge.BodyLimit,
            max_bid_bytes=settings.max_bid_bytes,
            body_timeout=settings.body_timeout_seconds,
        ),
        Middleware(wire.ServerSend),  # the WebSocket endpoint writes frames itself (bidroom.wire)
    ]
    handlers = {RoomTampered: _room_tampered}
    app = Starlette(
        routes=routes, lifespan=lifespan, middleware=middleware, exception_handlers=handlers
    )
    app.state.settings = settings
    app.state.demo_dir = demo_dir
    app.state.frames = wire.Frames()  # each event's WebSocket frame, encoded once for all
    return app
