"""Where a received frame belongs in a recording: pure arithmetic over RTP timestamps.

A WebRTC frame carries the sender's RTP timestamp (90 kHz for video, 48 kHz for Opus audio),
which starts at a random value and wraps at 2**32 (13 h 15 min of video). Its arrival time
jitters; its timestamp does not. So a frame's place in the file is

    offset of the track's first frame from the segment's origin (by arrival, once)
    + (unwrapped timestamp - first timestamp) in the track's clock

which is right whatever the sender's frame rate (60 fps, a variable rate, a pause) and whatever
the network's jitter. aiortc's MediaRecorder stamps frames by count at an assumed 30 fps; this
does not.

Output times are integers in the file's time base (milliseconds for Matroska video, samples
for audio); a stream's times must increase, so a frame that would land on or before the previous
one is moved just after it (:meth:`Timeline.place`) and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

WRAP = 2**32
HALF = WRAP // 2


def unwrap(previous: int | None, timestamp: int) -> int:
    """``timestamp`` (mod 2**32) as the value nearest to ``previous`` on the unwrapped line."""
    if previous is None:
        return timestamp
    delta = (timestamp - previous) % WRAP
    if delta >= HALF:
        delta -= WRAP  # a little behind (reordered), not a whole wrap ahead
    return previous + delta


def rescale(value: int | Fraction, source: Fraction, target: Fraction) -> int:
    """``value`` ticks of ``source`` as the nearest number of ticks of ``target``."""
    return round(Fraction(value) * source / target)


@dataclass
class Timeline:
    """One track's mapping from RTP timestamps to output times.

    ``offset`` is the track's first frame's output time (its arrival after the segment's
    origin); ``out`` the output time base. Frames placed before the first one (reordered,
    or a sender whose clock went back) are moved after the last, as every late frame is."""

    out: Fraction
    offset: int = 0
    first: int | None = None
    last_unwrapped: int | None = None
    last_out: int | None = None
    last_length: int = 1
    moved: int = 0  # frames placed just after the previous one instead of at their time

    def place(self, timestamp: int, clock: Fraction, length: int = 1) -> int:
        """The output time of a frame stamped ``timestamp`` in ``clock`` (e.g. 1/90000) that
        lasts ``length`` output ticks (a picture: 1; a sound frame: its samples)."""
        unwrapped = unwrap(self.last_unwrapped, timestamp)
        self.last_unwrapped = unwrapped
        if self.first is None:
            self.first = unwrapped
        at = self.offset + rescale(unwrapped - self.first, clock, self.out)
        if self.last_out is not None and at < self.last_out + self.last_length:
            at = self.last_out + self.last_length  # never over the previous frame
            self.moved += 1
        self.last_out, self.last_length = at, length
        return at


def arrival_offset(origin: float, arrived: float, out: Fraction) -> int:
    """A track's first frame arriving at monotonic ``arrived``, in ``out`` ticks after
    ``origin`` (the segment's first frame of any track); never negative."""
    return max(0, rescale(Fraction(arrived - origin), Fraction(1), out))
