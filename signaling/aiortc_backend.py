"""The built-in media backend (aiortc): records every publisher and relays to a few viewers.

One RTCPeerConnection per publishing or viewing peer. A publisher's tracks are fanned out with
aiortc's MediaRelay to whatever consumes them: the recording (one segment file per publisher
and session, written by :class:`signaling.writer.SegmentWriter` in a thread of its own, since
H.264 encoding would stall the event loop) and any viewer (a :class:`signaling.relay.CappedVideo`
per viewer: one encode each).

Segments: a publisher's segment ends when its session does (``bye``, the peer connection
failing, or a new session from the same subject: a rejoin), and when a renegotiation adds a
track (a camera turned on later); the next segment is a new file. Nothing is overwritten: a name
that exists is never reused.

ICE: :func:`pin_host_addresses` makes aioice offer only the named host addresses (a server with
several interfaces, or a test on loopback: aioice never offers 127.0.0.1 of its own accord).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aioice.ice
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import candidate_from_sdp
from av.audio.frame import AudioFrame
from av.video.frame import VideoFrame

from signaling.backend import Peer, RecordedFile
from signaling.errors import MediaError, NoSuchFeed
from signaling.relay import CappedVideo, Caps
from signaling.writer import SegmentWriter

log = logging.getLogger(__name__)

DEFAULT_CAPS = Caps()
MAX_SEGMENTS = 2000  # a recording's files: a rejoin a minute for a whole day's session
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def pin_host_addresses(addresses: Sequence[str]) -> None:
    """Offer only ``addresses`` as host candidates, process-wide (aioice keeps no per-connection
    setting). An empty list restores aioice's own discovery (every interface but loopback)."""
    if not addresses:
        aioice.ice.get_host_addresses = _DISCOVER
        return
    pinned = list(addresses)
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: list(pinned)


_DISCOVER = aioice.ice.get_host_addresses


def discovered_addresses() -> list[str]:
    """The host addresses aioice finds by itself (IPv4, every interface but loopback)."""
    return list(_DISCOVER(use_ipv4=True, use_ipv6=False))


def configuration(ice_servers: Sequence[dict[str, Any]]) -> RTCConfiguration:
    """An RTCConfiguration of the room's ICE servers (docs/protocol.md "ICE servers"); an empty
    list is none at all (aiortc's default would be a public STUN server)."""
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(
                urls=server["urls"],
                username=server.get("username"),
                credential=server.get("credential"),
            )
            for server in ice_servers
        ]
    )


def file_name(number: int, subject: str, segment: int) -> str:
    """``007-expert-zhang-2.mkv``: the recording's 7th file, the subject's 2nd segment."""
    slug = _UNSAFE.sub("_", subject).strip("_")[:40] or "participant"
    return f"{number:03d}-{slug}-{segment}.mkv"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Segment:
    writer: SegmentWriter
    number: int  # the file's place in the recording
    index: int  # the publisher's segment: 1, 2, ...
    started_at: datetime
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="recorder")
    )
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


@dataclass
class _Session:
    peer: Peer
    session: str
    pc: RTCPeerConnection
    feed: str | None
    tracks: list[MediaStreamTrack] = field(default_factory=list)
    segment: _Segment | None = None
    recorded: list[MediaStreamTrack] = field(default_factory=list)  # in the current segment
    viewing: bool = False  # the feed's tracks are added (once: a renegotiation keeps them)
    relayed: list[CappedVideo] = field(default_factory=list)  # what this viewer is sent
    sinks: list[asyncio.Task[None]] = field(default_factory=list)  # relay only: tracks drained


class AiortcBackend:
    """A :class:`signaling.backend.MediaBackend` on aiortc. ``folder`` None: relay only.

    Every operation holds one lock, so an offer, a bye, a failed connection and the close never
    interleave. A publisher's session is keyed by its subject (a new one replaces it: a rejoin);
    a viewer's by subject and feed. A publisher's segment records one audio and one video track
    (the latest of each kind a renegotiation brought); at most :data:`MAX_SEGMENTS` segments a
    recording."""

    def __init__(
        self,
        folder: Path | None,
        *,
        ice_servers: Sequence[dict[str, Any]] = (),
        caps: Caps = DEFAULT_CAPS,
        clock: Callable[[], datetime] = utc_now,
    ):
        self.folder = folder
        self.ice_servers = list(ice_servers)
        self.caps = caps
        self.clock = clock
        self.relay = MediaRelay()
        self.files: list[RecordedFile] = []
        self.viewers: list[CappedVideo] = []
        self._sessions: dict[tuple[str, str | None], _Session] = {}  # (subject, feed) -> session
        self._segments: Counter[str] = Counter()
        self._numbers = 0
        self._lock = asyncio.Lock()
        self._finishing: set[asyncio.Task[None]] = set()

    # -- the interface -------------------------------------------------------------------------

    async def offer(self, peer: Peer, session: str, sdp: str, feed: str | None) -> str:
        async with self._lock:
            return await self._offer(peer, session, sdp, feed)

    async def _offer(self, peer: Peer, session: str, sdp: str, feed: str | None) -> str:
        key = (peer.subject, feed)
        current = self._sessions.get(key)
        if current is not None and current.session != session:
            await self._end(current)  # a rejoin: the old session is over
            current = None
        if current is None:
            if feed is None and self._segments.total() >= MAX_SEGMENTS:
                raise MediaError("this recording holds as many segments as it may")
            current = self._open(peer, session, feed)
        try:
            await current.pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
            if feed is not None and not current.viewing:
                self._view(current, feed)
            answer = await current.pc.createAnswer()
            await current.pc.setLocalDescription(answer)
        except NoSuchFeed:
            await self._end(current)
            raise
        except Exception as exc:  # aiortc raises what it likes on an SDP it cannot use
            await self._end(current)
            raise MediaError(f"the offer could not be answered: {exc}") from exc
        if current.feed is None and _recordable(current.tracks) != current.recorded:
            await self._record(current)  # the first tracks, or one a renegotiation added
        return str(current.pc.localDescription.sdp)

    async def candidate(
        self, peer: Peer, session: str, candidate: str, mid: str | None, index: int | None
    ) -> None:
        current = self._find(peer.subject, session)
        if current is None or not candidate:
            return  # a stale session's, or the end of candidates (aiortc needs no mark)
        line = candidate.removeprefix("a=").removeprefix("candidate:")
        try:
            ice = candidate_from_sdp(line)
        except (AssertionError, ValueError, IndexError):
            return  # not one aiortc can use (e.g. a TCP candidate form it does not parse)
        ice.sdpMid, ice.sdpMLineIndex = mid, index
        async with self._lock:
            with contextlib.suppress(Exception):
                await current.pc.addIceCandidate(ice)

    async def bye(self, subject: str, session: str) -> None:
        async with self._lock:
            current = self._find(subject, session)
            if current is not None:
                await self._end(current)

    async def close(self) -> list[RecordedFile]:
        async with self._lock:
            for current in list(self._sessions.values()):
                await self._end(current)
        while self._finishing:  # segments whose closing outlived a cancelled caller
            await asyncio.gather(*list(self._finishing), return_exceptions=True)
        return list(self.files)

    # -- sessions ------------------------------------------------------------------------------

    def _find(self, subject: str, session: str) -> _Session | None:
        return next(
            (x for (s, _), x in self._sessions.items() if s == subject and x.session == session),
            None,
        )

    def _open(self, peer: Peer, session: str, feed: str | None) -> _Session:
        pc = RTCPeerConnection(configuration(self.ice_servers))
        current = _Session(peer, session, pc, feed)
        self._sessions[(peer.subject, feed)] = current

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            current.tracks.append(track)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState == "failed":
                log.info("media session failed", extra={"subject": peer.subject})
                await self.bye(peer.subject, session)

        return current

    def _view(self, current: _Session, feed: str) -> None:
        source = self._sessions.get((feed, None))
        if source is None or not source.tracks:
            raise NoSuchFeed(f"the server receives no media from {feed}", detail={"feed": feed})
        for track in _recordable(source.tracks):
            relayed = self.relay.subscribe(track, buffered=False)
            if track.kind == "video":
                capped = CappedVideo(relayed, self.caps)
                self.viewers.append(capped)
                current.relayed.append(capped)
                current.pc.addTrack(capped)
            else:
                current.pc.addTrack(relayed)
        current.viewing = True

    async def _end(self, current: _Session) -> None:
        key = (current.peer.subject, current.feed)
        if self._sessions.get(key) is current:
            del self._sessions[key]
        self.viewers = [v for v in self.viewers if v not in current.relayed]
        for task in current.sinks:
            task.cancel()
        await self._close_segment(current)
        with contextlib.suppress(Exception):
            await current.pc.close()

    # -- recording -----------------------------------------------------------------------------

    async def _record(self, current: _Session) -> None:
        """Start a segment of ``current``'s tracks (closing the one they had)."""
        await self._close_segment(current)
        tracks = _recordable(current.tracks)
        current.recorded = tracks
        if self.folder is None:
            # Nothing records: keep each track drained, or aiortc queues every decoded frame
            # while nobody views it.
            for task in current.sinks:
                task.cancel()
            loop = asyncio.get_running_loop()
            current.sinks = [
                loop.create_task(_discard(self.relay.subscribe(t, buffered=False))) for t in tracks
            ]
            return
        subject = current.peer.subject
        self._segments[subject] += 1
        index = self._segments[subject]
        self._numbers += 1
        kinds = {track.kind for track in tracks}
        writer = SegmentWriter(
            self.folder / file_name(self._numbers, subject, index),
            audio="audio" in kinds,
            video="video" in kinds,
        )
        segment = _Segment(writer, self._numbers, index, self.clock())
        loop = asyncio.get_running_loop()
        for track in tracks:
            # Pictures: the latest only, if the writer falls behind (dropped, never piled up);
            # sound: every frame (50 small ones a second).
            source = self.relay.subscribe(track, buffered=track.kind == "audio")
            segment.tasks.append(loop.create_task(self._pump(source, segment)))
        current.segment = segment

    async def _pump(self, source: MediaStreamTrack, segment: _Segment) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                frame = await source.recv()
                if not isinstance(frame, VideoFrame | AudioFrame):
                    continue
                arrived = time.monotonic()
                await loop.run_in_executor(segment.executor, segment.writer.write, frame, arrived)
        except MediaStreamError:
            return  # the track ended: the session is closing
        finally:
            source.stop()

    async def _close_segment(self, current: _Session) -> None:
        """Close ``current``'s segment: its file closed, hashed and listed, even if the caller
        is cancelled meanwhile (the work goes on, and :meth:`close` waits for it)."""
        segment, current.segment = current.segment, None
        if segment is None:
            return
        task = asyncio.get_running_loop().create_task(self._finish(current.peer, segment))
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)
        await asyncio.shield(task)

    async def _finish(self, peer: Peer, segment: _Segment) -> None:
        for task in segment.tasks:
            task.cancel()
        await asyncio.gather(*segment.tasks, return_exceptions=True)
        loop = asyncio.get_running_loop()
        try:
            stats = await loop.run_in_executor(segment.executor, segment.writer.close)
            path = segment.writer.path
            if not path.exists():
                return  # no frame ever came: no file
            digest, size = await loop.run_in_executor(segment.executor, _hash, path)
        finally:
            segment.executor.shutdown(wait=False)
        seconds = (stats.last or 0.0) - (stats.first or 0.0)
        self.files.append(
            RecordedFile(
                name=path.name,
                subject=peer.subject,
                person=peer.name,
                role=peer.role,
                venue=peer.venue,
                segment=segment.index,
                sha256=digest,
                bytes=size,
                video_frames=stats.video_frames,
                audio_frames=stats.audio_frames,
                seconds=round(seconds, 3),
                started_at=_utc(segment.started_at),
                ended_at=_utc(self.clock()),
            )
        )


async def _discard(source: MediaStreamTrack) -> None:
    try:
        while True:
            await source.recv()
    except MediaStreamError:
        return
    finally:
        source.stop()


def _recordable(tracks: Sequence[MediaStreamTrack]) -> list[MediaStreamTrack]:
    """The latest live track of each kind: what a segment records and a viewer is sent."""
    latest: dict[str, MediaStreamTrack] = {}
    for track in tracks:
        if track.readyState == "live":
            latest[track.kind] = track
    return [latest[k] for k in sorted(latest)]


def _hash(path: Path) -> tuple[str, int]:
    sha = hashlib.sha256()
    size = 0
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            sha.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), size


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
