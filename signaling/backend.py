"""The media backend interface: what a server-side media participant does for a room, whatever
engine does it.

The pages never see the engine. They exchange `signal` frames (docs/protocol.md) with a
participant of the room whose role is receive-only (``recorder``): they offer, it answers. An
offer either *publishes* (the page sends its camera and microphone: the backend records them
and may relay them) or *views* a feed (``feed`` names the publisher whose media the page wants,
through the server instead of peer to peer). That is the shape of Janus's VideoRoom too
(publishers and subscribers of feeds), so a Janus backend is this Protocol over Janus's API: the
bidroom shell (bidroom.recordings) and the pages stay as they are.

    MediaBackend
    ├── AiortcBackend (signaling.aiortc_backend)  built in: records each publisher, relays to
    │                                             a few viewers (one decode + one encode each)
    └── a Janus VideoRoom bridge                  for large rooms (not built: docs/operations.md
                                                  says when a room needs it)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Peer:
    """Who sent a signal, as the room's relay stamped it (the ``from`` of a signal frame)."""

    subject: str
    name: str
    role: str
    venue: str | None
    connection: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Peer:
        return cls(
            str(data["subject"]),
            str(data.get("name", "")),
            str(data["role"]),
            data.get("venue"),
            str(data["connection"]),
        )


@dataclass(frozen=True, slots=True)
class RecordedFile:
    """One closed segment of one publisher: what goes into the room's record."""

    name: str  # the file's name in the room's recording folder
    subject: str
    person: str
    role: str
    venue: str | None
    segment: int  # 1, 2, ... per publisher: a rejoin starts the next
    sha256: str
    bytes: int
    video_frames: int
    audio_frames: int
    seconds: float  # from the first frame to the last, as received
    started_at: str  # UTC, ISO 8601
    ended_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "subject": self.subject,
            "person": self.person,
            "role": self.role,
            "venue": self.venue,
            "segment": self.segment,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "video_frames": self.video_frames,
            "audio_frames": self.audio_frames,
            "seconds": self.seconds,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
        }


class MediaBackend(Protocol):
    """A server-side participant in one room. Every method is called from the room's one
    signal-handling task, in the order the signals arrived."""

    async def offer(self, peer: Peer, session: str, sdp: str, feed: str | None) -> str:
        """Answer ``peer``'s offer in ``session``: publish (``feed`` None) or view ``feed``.
        A new session from a peer that holds one replaces it (a rejoin: the old segment
        closes); the same session again is a renegotiation. Raises MediaError."""
        ...

    async def candidate(
        self, peer: Peer, session: str, candidate: str, mid: str | None, index: int | None
    ) -> None:
        """A trickled ICE candidate of ``peer`` in ``session`` (``""``: no more)."""
        ...

    async def bye(self, subject: str, session: str) -> None:
        """``subject`` ended ``session`` (or left): close it; its segment is complete."""
        ...

    async def close(self) -> list[RecordedFile]:
        """End every session; the files recorded since the backend started, each closed."""
        ...
