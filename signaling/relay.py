"""What the built-in backend sends a viewer: a publisher's picture converted to yuv420p and held
within the room's caps of size and frame rate.

aiortc decodes every received frame and encodes again for each viewer, so what a relay costs
grows with the pixels and frames it encodes: the caps (``BIDROOM_MEDIA_MAX_WIDTH`` / ``_HEIGHT``
/ ``_FPS``) bound it. Converting to yuv420p before the encoder keeps a sender's odd format (a
browser may send I444 or NV12) from costing a conversion per viewer.

:func:`fit` and :class:`Pacer` are pure; :class:`CappedVideo` is the thin track around them.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from aiortc.mediastreams import MediaStreamTrack
from av.video.frame import VideoFrame


@dataclass(frozen=True, slots=True)
class Caps:
    width: int = 640
    height: int = 480
    fps: float = 15.0


def fit(width: int, height: int, caps: Caps) -> tuple[int, int]:
    """The largest even size within ``caps`` with the picture's aspect; never enlarged."""
    scale = min(1.0, caps.width / width, caps.height / height)
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


@dataclass
class Pacer:
    """Lets a frame through when at least ``1/fps`` of the sender's time has passed since the
    last one let through (by timestamp, so arrival jitter does not thin the stream)."""

    fps: float
    last: Fraction | None = None

    def admit(self, at: Fraction) -> bool:
        gap = Fraction(1) / Fraction(self.fps)
        if self.last is not None and self.last <= at < self.last + gap:
            return False  # too soon (a frame stamped before the last: a new source, let it in)
        self.last = at
        return True


class CappedVideo(MediaStreamTrack):
    """A video track that relays ``source`` in yuv420p within ``caps``."""

    kind = "video"

    def __init__(self, source: MediaStreamTrack, caps: Caps):
        super().__init__()
        self.source = source
        self.caps = caps
        self.pacer = Pacer(caps.fps)
        self.passed = 0
        self.dropped = 0

    async def recv(self) -> VideoFrame:
        while True:
            frame = await self.source.recv()
            assert isinstance(frame, VideoFrame)
            at = Fraction(frame.pts or 0) * Fraction(frame.time_base or Fraction(1, 90_000))
            if self.pacer.admit(at):
                break
            self.dropped += 1
        width, height = fit(frame.width, frame.height, self.caps)
        out = frame.reformat(width=width, height=height, format="yuv420p")
        out.pts, out.time_base = frame.pts, frame.time_base
        self.passed += 1
        return out

    def stop(self) -> None:
        super().stop()
        self.source.stop()
