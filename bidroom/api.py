"""HTTP routes: health, readiness, metrics, and the room directory. Thin: validate, call, answer."""

from __future__ import annotations

import json
import re
from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bidroom import owners, protocol, tokens
from bidroom.errors import AuthError, BidroomError, Refused, RoomNotFound, StoreError
from bidroom.room import Actor
from bidroom.store import RoomRecord

ROOM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
SEQUENCE = re.compile(r"[0-9]{1,18}")  # ASCII digits only ("²".isdigit() is True), below 2**63


DIRECTORY_KINDS = frozenset({"meeting"})  # what POST /api/rooms creates
RESERVED_PREFIX = "opening-"  # the ids of openings and their evaluation sessions (tenders.room_id)


class RoomCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ROOM_ID.pattern)
    kind: str = Field(min_length=1, max_length=40)
    title: str = Field(min_length=1, max_length=300)
    config: dict[str, Any] = Field(default_factory=dict)


def room_public(room: RoomRecord) -> dict[str, Any]:
    """What anyone may know of a room: never its private configuration."""
    return {
        "id": room.id,
        "kind": room.kind,
        "title": room.title,
        "created_at": room.created_at.isoformat(),
    }


def error(status: int, code: str, message: str, detail: dict[str, Any] | None = None) -> Response:
    # The detail is evidence for a person: whatever it holds (bytes, a number too large for
    # JSON, an exception in a validation error's context) goes out as text, never as a 500.
    plain = json.loads(json.dumps(detail or {}, default=str), parse_constant=str)  # inf, NaN
    return JSONResponse({"code": code, "message": message, "detail": plain}, status)


def invalid(exc: ValidationError) -> dict[str, Any]:
    """A validation error's detail: where and why, never the input (it may be a whole body)."""
    return {"errors": exc.errors(include_url=False, include_input=False)}


def sequence(text: str) -> int | None:
    """A sequence number from a query parameter; None if it is not one."""
    return int(text) if SEQUENCE.fullmatch(text) else None


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", "node": request.app.state.settings.node_id})


async def readyz(request: Request) -> Response:
    state = request.app.state
    checks: dict[str, str] = {}
    for name, probe in (("database", state.store.ping), ("broker", state.broker.ping)):
        try:
            await probe()
            checks[name] = "ok"
        except BidroomError as exc:
            checks[name] = exc.message
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, 200 if ready else 503)


async def metrics(request: Request) -> Response:
    body = request.app.state.metrics.exposition()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


async def list_rooms(request: Request) -> Response:
    rooms = await request.app.state.store.rooms()
    return JSONResponse([room_public(r) for r in rooms])


async def create_room(request: Request) -> Response:
    try:
        holder = identity(request)
    except AuthError as exc:
        return error(401, exc.code, exc.message)
    if "chair" not in holder.roles:
        return error(403, "not_allowed", "only trading-centre staff (chair) create rooms")
    try:
        body = RoomCreate.model_validate_json(await request.body())
    except ValidationError as exc:
        return error(422, "invalid_args", "invalid room", invalid(exc))
    if body.kind in request.app.state.hub.room_types and body.kind not in DIRECTORY_KINDS:
        # an opening comes only from a tender's publication, an evaluation only from a
        # published opening record (POST /api/lots/{lot}/evaluations): a room of those kinds
        # made here would read bids through a live opening's handed-over keys
        return error(
            403,
            "room_kind_reserved",
            f"rooms of kind {body.kind} are not created here",
            {"kinds": sorted(DIRECTORY_KINDS)},
        )
    if body.id.startswith(RESERVED_PREFIX):
        # a meeting squatting on "opening-<lot>-evaluation-1" would stop the lot's evaluation
        return error(
            403,
            "room_id_reserved",
            f"room ids starting {RESERVED_PREFIX} are the openings' and their sessions'",
            {"prefix": RESERVED_PREFIX},
        )
    unfit = _unfit(request.app.state.hub, body)
    if unfit is not None:
        return unfit
    try:
        room = await request.app.state.hub.create_room(body.id, body.kind, body.title, body.config)
    except Refused as exc:
        return error(422, exc.code, exc.message, dict(exc.detail))
    except StoreError:
        return error(409, "room_exists", f"room {body.id} exists already")
    return JSONResponse(room_public(room), 201)


def _unfit(hub: Any, body: RoomCreate) -> Response | None:
    """A room whose config its kind cannot start from would fail every later request (each
    loads the room): refuse it here, with the kind's reason."""
    kind = hub.room_types.get(body.kind)
    if kind is None:
        return None  # the hub names the kinds it knows
    try:
        kind.initial({**body.config, "title": body.title})
    except Exception as exc:  # any room type's own validation: a KeyError, a ScoringError...
        reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        return error(422, "invalid_config", f"not a {body.kind} config", {"reason": reason})
    return None


HISTORY_PAGE = 500
WATCHERS = ("chair", "supervisor")


async def room_events(request: Request) -> Response:
    """``GET /api/rooms/{room}/events?after=N``: a room's log, a page at a time, for the chair
    and supervisors (who see every event anyway): a watcher's page shows the whole history,
    not only what happened since it was opened."""
    try:
        who = identity(request)
    except AuthError as exc:
        return error(401, exc.code, exc.message)
    if not any(role in who.roles for role in WATCHERS):
        return error(403, "not_allowed", "the room's history is for the chair and supervisors")
    after = sequence(request.query_params.get("after", "0"))
    if after is None:
        return error(422, "invalid_args", "after is a sequence number (0 to 18 digits)")
    hub = request.app.state.hub
    try:
        live = await hub.room(request.path_params["room"])
    except RoomNotFound as exc:
        return error(404, "room_not_found", exc.message)
    if "supervisor" not in who.roles:  # a chair reads only the rooms of their own tenders
        kind, config = live.record.kind, live.record.config
        refused = owners.refusal(kind, config, who.subject, who.organisation)
        if refused is not None:
            return error(403, "not_your_tender", refused)
    room = request.path_params["room"]
    found = await hub.store.events(room, after=after, upto=after + HISTORY_PAGE)
    # Even a watcher does not see everything always: a bidder's contribution to K is theirs
    # alone until the sheet (docs/opening.md). The room type says, as for the live stream.
    role = next(r for r in WATCHERS if r in who.roles)
    actor = Actor(who.subject, who.name, role, who.venue, who.organisation)
    shown = [e for e in found if live.kind.visible(live.state, e, actor)]
    return JSONResponse(
        {"room": room, "events": [protocol.event_json(e) for e in shown], "page": HISTORY_PAGE}
    )


def identity(request: Request) -> tokens.Identity:
    """Who the request's bearer token speaks for; AuthError otherwise."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthError("send Authorization: Bearer <session token>", code="token_missing")
    state = request.app.state
    verified: tokens.Identity = state.sessions.verify(token, state.hub.clock())
    return verified


async def ca_crl(request: Request) -> Response:
    """``GET /ca/<name>.crl``: the latest CRL (DER) of a platform CA, ``<ca_dir>/<name>/crl.der``.

    Anything else under /ca/ is a JSON 404; ``name`` is [A-Za-z0-9_-]{1,64}, never a path.
    """
    file = request.path_params["file"]
    match = re.fullmatch(r"([A-Za-z0-9_-]{1,64})\.crl", file)
    # the route's pattern ends in `$`, which lets a trailing newline through: check the path too
    if match is None or not request.scope["path"].endswith("/" + file):
        return error(404, "crl_not_found", "no such CRL (GET /ca/<name>.crl)")
    name = match.group(1)
    settings = request.app.state.settings
    path = (settings.ca_dir or settings.var_dir / "ca") / name / "crl.der"
    try:
        body = await anyio.Path(path).read_bytes()  # crl.der is replaced atomically
    except OSError:
        return error(404, "crl_not_found", f"no CRL is published for {name}")
    headers = {"cache-control": "public, max-age=300"}
    return Response(body, media_type="application/pkix-crl", headers=headers)
