"""Real aiortc peers for tests and the media benchmark: a participant that negotiates over the
room WebSocket (tests/client.py) as a page does, and tracks whose timestamps a test controls.

aioice offers no loopback candidate, so :func:`loopback` pins its host addresses to 127.0.0.1
for the test's own peers (the server is told the same with BIDROOM_MEDIA_ADDRESSES), and every
RTCConfiguration here has an empty ICE server list (aiortc's default is a public STUN server).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack
from aiortc.sdp import candidate_from_sdp
from av.video.frame import VideoFrame
from client import Frame, RoomClient

from signaling.aiortc_backend import pin_host_addresses

VIDEO_CLOCK = Fraction(1, 90_000)
CYCLE = 25  # Pattern's shades repeat every 25 frames
_sessions = itertools.count(1)


@contextlib.contextmanager
def loopback() -> Iterator[None]:
    pin_host_addresses(["127.0.0.1"])
    try:
        yield
    finally:
        pin_host_addresses([])


class Pattern(MediaStreamTrack):
    """A camera at ``fps`` whose frames leave up to ``jitter`` seconds late, stamped with the
    time they were due (as a real camera's capture time): ``sent`` counts them. Frame n is one
    flat grey, 16 + 8 * (n mod 25): a recording's frame tells which frame it was
    (:func:`luma`)."""

    kind = "video"

    def __init__(self, fps: float, jitter: float = 0.0, size: tuple[int, int] = (320, 240)):
        super().__init__()
        self.fps, self.jitter, self.size = fps, jitter, size
        self.sent = 0
        self.start: float | None = None

    async def recv(self) -> VideoFrame:
        if self.start is None:
            self.start = time.monotonic()
        due = self.sent / self.fps
        late = random.uniform(0, self.jitter)
        await asyncio.sleep(max(0.0, self.start + due + late - time.monotonic()))
        frame = VideoFrame(*self.size, "yuv420p")
        shade = bytes([16 + 8 * (self.sent % CYCLE)])
        for plane in frame.planes:
            plane.update(shade * plane.buffer_size)
        frame.pts, frame.time_base = round(due / VIDEO_CLOCK), VIDEO_CLOCK
        self.sent += 1
        return frame


async def drain(
    track: MediaStreamTrack, counts: dict[str, int], sizes: set[tuple[int, int]]
) -> None:
    """Receive ``track`` until it ends, counting its frames by kind (and pictures' sizes)."""
    with contextlib.suppress(MediaStreamError):
        while True:
            frame = await track.recv()
            counts[track.kind] = counts.get(track.kind, 0) + 1
            if isinstance(frame, VideoFrame):
                sizes.add((frame.width, frame.height))


class MediaPeer:
    """One participant's media over a RoomClient: offers, answers, trickled candidates."""

    def __init__(self, client: RoomClient, subject: str):
        self.client = client
        self.subject = subject
        self.pcs: dict[str, RTCPeerConnection] = {}  # session -> peer connection
        self.received: dict[str, int] = {}
        self.sizes: set[tuple[int, int]] = set()
        self.drains: list[asyncio.Task[None]] = []
        self.errors: list[Frame] = []
        self.sending: list[MediaStreamTrack] = []  # what this peer sends back when it answers
        self.seen = 0
        self.ended: list[RTCPeerConnection] = []  # closed on a bye, awaited in close()
        self.closing = False
        self.pump = asyncio.create_task(self._pump())

    def _pc(self, session: str) -> RTCPeerConnection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs[session] = pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.drains.append(asyncio.create_task(drain(track, self.received, self.sizes)))

        return pc

    async def offer(
        self, to: str, tracks: list[MediaStreamTrack], *, feed: str | None = None
    ) -> str:
        """Offer ``tracks`` (or, with none, to receive audio and video) to ``to``; the session."""
        session = f"{self.subject}-{next(_sessions)}"
        pc = self._pc(session)
        for track in tracks:
            pc.addTrack(track)
        if not tracks:
            pc.addTransceiver("audio", direction="recvonly")
            pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        frame: Frame = {
            "type": "signal",
            "kind": "offer",
            "to": to,
            "session": session,
            "sdp": pc.localDescription.sdp,
        }
        if feed is not None:
            frame["feed"] = feed
        await self.client.send(frame)
        return session

    async def _pump(self) -> None:
        while not self.closing:
            frame = await self.client.wait_for(lambda f: True, timeout=3600, start=self.seen)
            self.seen += 1
            if frame["type"] == "signal":
                await self._signal(frame)
            elif frame["type"] == "error":
                self.errors.append(frame)

    async def _signal(self, frame: Frame) -> None:
        session = frame["session"]
        kind = frame["kind"]
        if kind == "offer":
            pc = self.pcs.get(session)
            if pc is None:
                pc = self._pc(session)
                for track in self.sending:
                    pc.addTrack(track)
            await pc.setRemoteDescription(RTCSessionDescription(frame["sdp"], "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            answer = {
                "type": "signal",
                "kind": "answer",
                "to": frame["from"]["subject"],
                "session": session,
                "connection": frame["from"]["connection"],
                "sdp": pc.localDescription.sdp,
            }
            await self.client.send(answer)
        elif kind == "answer" and session in self.pcs:
            await self.pcs[session].setRemoteDescription(
                RTCSessionDescription(frame["sdp"], "answer")
            )
        elif kind == "candidate" and session in self.pcs and frame.get("candidate"):
            ice = candidate_from_sdp(frame["candidate"].split(":", 1)[1])
            ice.sdpMid, ice.sdpMLineIndex = frame.get("sdpMid"), frame.get("sdpMLineIndex")
            await self.pcs[session].addIceCandidate(ice)
        elif kind == "bye" and session in self.pcs:
            self.ended.append(self.pcs.pop(session))  # closed in close(), not in this loop

    def state(self, session: str) -> str:
        pc = self.pcs.get(session)
        return "closed" if pc is None else str(pc.connectionState)

    async def close(self) -> None:
        self.closing = True
        self.pump.cancel()
        for pc in [*self.pcs.values(), *self.ended]:
            await pc.close()
        for task in self.drains:
            task.cancel()
        await asyncio.gather(self.pump, *self.drains, return_exceptions=True)


def tone() -> AudioStreamTrack:
    """A microphone: aiortc's silent audio track, 20 ms frames stamped by sample count."""
    return AudioStreamTrack()


async def until(predicate: Any, timeout: float, every: float = 0.05) -> None:
    """Wait until ``predicate()`` holds; fails after ``timeout`` seconds (never a fixed sleep)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise TimeoutError("the condition did not hold in time")
        await asyncio.sleep(every)


def luma(frame: VideoFrame) -> float:
    """A decoded picture's mean brightness: which of :class:`Pattern`'s greys it shows (the
    codecs keep the greys in order and evenly spaced, not their values)."""
    plane = bytes(frame.planes[0])
    return sum(plane) / len(plane)
