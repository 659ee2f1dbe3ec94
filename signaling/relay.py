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
    """Lets frames through at no more than ``fps`` by the sender's timestamps (so arrival
    jitter does not thin the stream): each let through sets when the next is due; a frame up to
    a tenth of an interval early counts as due (timestamps are rounded to clock ticks, so a
    sender at exactly ``fps`` is let through whole). A timestamp that goes back is a new source:
    let through, and the count starts again."""

    fps: float
    due: Fraction | None = None
    last: Fraction | None = None

    def admit(self, at: Fraction) -> bool:
        gap = Fraction(1) / Fraction(self.fps)
        again = self.due is None or (self.last is not None and at < self.last)
        self.last = at
        if not again and self.due is not None and at < self.due - gap / 10:
            return False
        on_time = not again and self.due is not None and at - self.due < gap
        self.due = (self.due + gap) if on_time and self.due is not None else at + gap
        return True


def copied(frame: VideoFrame) -> VideoFrame:
    """A yuv420p frame of one's own. A relayed frame is one object shared by every consumer
    (the recording, each viewer's encoder) and PyAV's ``reformat`` returns that same object when
    nothing changes: stamping it would change every consumer's frame."""
    source = frame if frame.format.name == "yuv420p" else frame.reformat(format="yuv420p")
    if source is not frame:
        return source  # reformatting made a new frame already
    out = VideoFrame(frame.width, frame.height, "yuv420p")
    for mine, theirs in zip(out.planes, source.planes, strict=True):
        if mine.line_size == theirs.line_size and mine.buffer_size == theirs.buffer_size:
            mine.update(bytes(theirs))
            continue
        rows = bytearray(mine.buffer_size)
        data, width = memoryview(theirs), min(mine.line_size, theirs.line_size)
        for row in range(mine.height):
            at, start = row * mine.line_size, row * theirs.line_size
            rows[at : at + width] = data[start : start + width]
        mine.update(bytes(rows))
    out.pts, out.time_base = frame.pts, frame.time_base
    return out


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
        if out is frame:
            out = copied(frame)  # the encoder stamps what it is given: never the shared frame
        out.pts, out.time_base = frame.pts, frame.time_base
        self.passed += 1
        return out

    def stop(self) -> None:
        super().stop()
        self.source.stop()
