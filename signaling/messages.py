"""The signal frames, validated at the edge: offer, answer, candidate and bye.

A client sends ``{"type": "signal", "kind": ..., "to": ..., "session": ...}`` over the room
WebSocket; :func:`parse_signal` turns its fields into one of the frozen models below or raises a
:class:`~signaling.errors.SignalInvalid` with a stable code. The SDP is checked for size and
for being a session description at all (RFC 8866: it starts with ``v=0`` and describes at least
one medium, ``m=``); nothing here parses codecs: the peers negotiate those.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from signaling.errors import CandidateInvalid, SdpInvalid, SdpTooLarge, SignalInvalid

SDP_MAX = 32 * 1024  # the default of BIDROOM_MAX_SDP_BYTES
CANDIDATE_MAX = 1024  # an ICE candidate line is ~100-200 characters
SUBJECT_MAX = 200
SESSION_MAX = 100
# Printable text, tabs and line ends: an SDP or candidate with other control bytes is not one.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MEDIA = re.compile(r"^m=", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Limits:
    sdp: int = SDP_MAX
    candidate: int = CANDIDATE_MAX


class _Signal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    to: str = Field(min_length=1, max_length=SUBJECT_MAX)
    session: str = Field(min_length=1, max_length=SESSION_MAX, pattern=r"^[\x21-\x7e]+$")
    connection: str | None = Field(default=None, min_length=1, max_length=SESSION_MAX)
    """When set, only this connection of the addressee gets the signal (a reply to one tab)."""


class Offer(_Signal):
    kind: Literal["offer"]
    sdp: str
    feed: str | None = Field(default=None, min_length=1, max_length=SUBJECT_MAX)
    """To a server-side media participant: view this publisher through it (signaling.backend)."""


class Answer(_Signal):
    kind: Literal["answer"]
    sdp: str


class Candidate(_Signal):
    kind: Literal["candidate"]
    candidate: str  # "" marks the end of candidates
    sdpMid: str | None = Field(default=None, max_length=64)  # the W3C names
    sdpMLineIndex: int | None = Field(default=None, ge=0, le=1023)


class Bye(_Signal):
    kind: Literal["bye"]


Signal = Offer | Answer | Candidate | Bye
_ADAPTER: TypeAdapter[Signal] = TypeAdapter(Annotated[Signal, Field(discriminator="kind")])
KINDS = ("offer", "answer", "candidate", "bye")


def parse_signal(fields: Mapping[str, Any], limits: Limits = Limits()) -> Signal:
    """A client's signal (the frame's fields but ``type`` and ``id``), checked; raises
    SignalInvalid, SdpTooLarge, SdpInvalid or CandidateInvalid."""
    try:
        signal = _ADAPTER.validate_python(dict(fields))
    except ValidationError as exc:
        problems = [
            {"field": ".".join(map(str, e["loc"])), "problem": e["msg"]} for e in exc.errors()
        ]
        raise SignalInvalid(
            "invalid signal", detail={"errors": problems, "kinds": list(KINDS)}
        ) from exc
    if isinstance(signal, Offer | Answer):
        check_sdp(signal.sdp, limits.sdp)
    elif isinstance(signal, Candidate):
        check_candidate(signal.candidate, limits.candidate)
    return signal


def check_sdp(sdp: str, limit: int) -> None:
    """Refuse an SDP over ``limit`` bytes (UTF-8) or one that is not a session description."""
    size = len(sdp.encode())
    if size > limit:
        raise SdpTooLarge(f"SDP of {size} bytes exceeds {limit}", detail={"limit": limit})
    if not sdp.startswith("v=0"):
        raise SdpInvalid('an SDP starts with "v=0"', detail={"problem": "version"})
    if _CONTROL.search(sdp):
        raise SdpInvalid("an SDP is text: no control characters", detail={"problem": "binary"})
    if not _MEDIA.search(sdp):
        raise SdpInvalid('an SDP describes at least one medium ("m=")', detail={"problem": "media"})


def check_candidate(candidate: str, limit: int) -> None:
    """Refuse a candidate over ``limit`` characters, or one that is not a candidate line."""
    if len(candidate) > limit:
        raise CandidateInvalid(f"candidate exceeds {limit} characters", detail={"limit": limit})
    if candidate and (not candidate.startswith(("candidate:", "a=candidate:"))):
        raise CandidateInvalid('a candidate starts with "candidate:"', detail={"problem": "line"})
    if _CONTROL.search(candidate) or "\n" in candidate or "\r" in candidate:
        raise CandidateInvalid("a candidate is one line of text", detail={"problem": "binary"})


def forward_json(signal: Signal, sender: Mapping[str, Any], connection: str) -> dict[str, Any]:
    """The frame the addressee gets: the signal, who sent it and from which connection."""
    body = signal.model_dump(exclude={"to", "connection"}, exclude_none=True)
    return {"type": "signal", **body, "from": {**sender, "connection": connection}}
