"""The room WebSocket protocol without I/O: text frames in, typed messages out, and back.

docs/protocol.md is the specification; this module is its executable half. Nothing here awaits
or touches a socket: the shell in ``bidroom.ws`` reads a frame, calls :func:`parse`, and sends
what the ``*_frame`` functions return. Every malformed input becomes a :class:`ProtocolError`
whose code is listed in :data:`ERROR_CODES`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from pydantic import BaseModel, ValidationError

from bidroom.errors import FrameTooLarge, ProtocolError
from bidroom.room import JSON, Actor, Command, Event, Rejected
from signaling import errors as signaling_errors

VERSION = 1
ID_MAX = 100
NAME_MAX = 100


class Close(IntEnum):
    """WebSocket close codes; :data:`RECONNECT` says which ones a client should retry."""

    NORMAL = 1000
    GOING_AWAY = 1001
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    UNAUTHORIZED = 4001
    PROTOCOL_VIOLATION = 4002
    FORBIDDEN = 4003
    ROOM_NOT_FOUND = 4004
    TOO_SLOW = 4008
    HEARTBEAT_TIMEOUT = 4009
    REMOVED = 4010
    ROOM_TAMPERED = 4011
    CONNECTION_REPLACED = 4029


RECONNECT = frozenset(
    {
        Close.GOING_AWAY,
        Close.INTERNAL_ERROR,
        Close.SERVICE_RESTART,
        Close.TOO_SLOW,
        Close.HEARTBEAT_TIMEOUT,
    }
)

ERROR_CODES: Mapping[str, str] = {
    "bad_json": "the frame is not a JSON object",
    "bad_message": "a field is missing or has the wrong type",
    "unknown_type": "the frame's type is not one the protocol knows",
    "frame_too_large": "the frame is larger than the server's limit",
    "not_joined": "a command was sent before the hello was answered",
    "token_missing": "the hello carries no session token (then closed with 4001)",
    "unknown_command": "the room type has no such client command",
    "invalid_args": "the command's arguments do not match its schema",
    "wrong_phase": "the room's phase does not allow this command",
    "not_allowed": "the actor's role may not send this command",
    "rate_limited": "too many commands in a short time",
    "unavailable": "the server could not record the command now; retry with the same id",
    "room_tampered": "the room's stored events do not match the audit log: not served (4011)",
    **signaling_errors.CODES,
}


@dataclass(frozen=True, slots=True)
class Hello:
    token: str
    room: str
    since: int
    role: str | None = None


@dataclass(frozen=True, slots=True)
class CommandFrame:
    id: str
    name: str
    args: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SignalFrame:
    """A media signal to relay (docs/protocol.md "Media signaling"); its fields are checked by
    signaling.messages, with the room's limits, in the shell."""

    id: str | None
    fields: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class Pong:
    pass


ClientMessage = Hello | CommandFrame | SignalFrame | Ping | Pong


def parse(text: str, limit: int) -> ClientMessage:
    """Decode one client frame; raise ProtocolError with a documented code if it is not valid."""
    if len(text.encode()) > limit:
        raise FrameTooLarge(f"frame exceeds {limit} bytes", detail={"limit": limit})
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ProtocolError("frame is not valid JSON", code="bad_json") from exc
    if not isinstance(data, dict):
        raise ProtocolError("frame is not a JSON object", code="bad_json")
    kind = data.get("type")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise ProtocolError(
            f"unknown frame type {kind!r}", code="unknown_type", detail={"known": sorted(_PARSERS)}
        )
    return parser(data)


def _text(data: Mapping[str, Any], key: str, limit: int) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise ProtocolError(
            f"{key} must be a string of 1 to {limit} characters", detail={"field": key}
        )
    return value


def _hello(data: Mapping[str, Any]) -> Hello:
    since = data.get("since", 0)
    if isinstance(since, bool) or not isinstance(since, int) or since < 0:
        raise ProtocolError("since must be a non-negative integer", detail={"field": "since"})
    role = _text(data, "role", NAME_MAX) if data.get("role") is not None else None
    if data.get("token") in (None, ""):
        raise ProtocolError("hello carries no session token; sign in", code="token_missing")
    return Hello(
        token=_text(data, "token", 4096), room=_text(data, "room", ID_MAX), since=since, role=role
    )


def _command(data: Mapping[str, Any]) -> CommandFrame:
    args = data.get("args", {})
    if not isinstance(args, dict):
        raise ProtocolError("args must be a JSON object", detail={"field": "args"})
    return CommandFrame(id=_text(data, "id", ID_MAX), name=_text(data, "name", NAME_MAX), args=args)


def _signal(data: Mapping[str, Any]) -> SignalFrame:
    ident = _text(data, "id", ID_MAX) if data.get("id") is not None else None
    return SignalFrame(ident, {k: v for k, v in data.items() if k not in ("type", "id")})


_PARSERS: Mapping[str, Callable[[Mapping[str, Any]], ClientMessage]] = {
    "hello": _hello,
    "command": _command,
    "signal": _signal,
    "ping": lambda data: Ping(),
    "pong": lambda data: Pong(),
}


def command_from(frame: CommandFrame, arguments: Mapping[str, type[BaseModel]]) -> Command:
    """Check a command's name and arguments against its room type's edge contract."""
    model = arguments.get(frame.name)
    if model is None:
        raise ProtocolError(
            f"no client command {frame.name!r} in this room",
            code="unknown_command",
            detail={"commands": sorted(arguments)},
        )
    try:
        args = model.model_validate(frame.args)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(map(str, e["loc"])), "problem": e["msg"]} for e in exc.errors()
        ]
        raise ProtocolError(
            "invalid arguments", code="invalid_args", detail={"errors": problems}
        ) from exc
    return Command(frame.name, args.model_dump())


# server frames ------------------------------------------------------------------------------


def dump(frame: JSON) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def event_json(event: Event) -> JSON:
    return {
        "type": "event",
        "seq": event.seq,
        "name": event.name,
        "data": dict(event.data),
        "actor": event.actor.to_json() if event.actor else None,
        "at": event.at.isoformat() if event.at else None,
    }


def welcome_frame(room: str, actor: Actor, seq: int, mode: str, node: str, limits: JSON) -> JSON:
    return {
        "type": "welcome",
        "version": VERSION,
        "room": room,
        "you": actor.to_json(),
        "seq": seq,
        "mode": mode,
        "node": node,
        "limits": limits,
    }


def snapshot_frame(seq: int, state: JSON) -> JSON:
    return {"type": "snapshot", "seq": seq, "state": state}


def ack_frame(command_id: str, seqs: list[int]) -> JSON:
    return {"type": "ack", "id": command_id, "seqs": seqs}


def error_frame(
    code: str, message: str, detail: Mapping[str, Any] | None = None, command_id: str | None = None
) -> JSON:
    return {
        "type": "error",
        "id": command_id,
        "code": code,
        "message": message,
        "detail": dict(detail or {}),
    }


def rejected_frame(command_id: str, rejected: Rejected) -> JSON:
    return error_frame(rejected.code, rejected.message, rejected.detail, command_id)


def media_frame(
    ice_servers: list[JSON],
    peers: list[str],
    expires: int | None,
    present: list[JSON] | None = None,
    receive_only: list[str] | None = None,
) -> JSON:
    return {
        "type": "media",
        "ice_servers": ice_servers,
        "peers": peers,
        "expires": expires,
        "present": present or [],
        "receive_only": receive_only or [],
    }


def ping_frame() -> JSON:
    return {"type": "ping"}


def pong_frame() -> JSON:
    return {"type": "pong"}
