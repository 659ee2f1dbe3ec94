"""A timestamp-correct recording writer: one participant's audio and video into one Matroska
file per segment, with PyAV.

Why not aiortc's MediaRecorder: it stamps frame n at n/30 s, so a 60 fps sender plays at half
speed and network jitter becomes drift. Here each frame goes where its own RTP timestamp says
(:mod:`signaling.timeline`).

Why Matroska: it is written as it goes (clusters), so a file cut short by a crash still plays up
to the cut; MP4 needs its index written at the end. Video is H.264 (libx264, ``zerolatency``: no
B-frames, nothing held back), audio Opus, both as the browser sent them in content.

The container is opened on the first video frame, when the picture's size is known (a Matroska
header names it); audio that arrives first waits, up to :data:`AUDIO_WAIT` seconds, and is then
written without video if none came (counted in :attr:`Stats.video_missing`). A picture whose size
changes mid-stream (the sender adapts to bandwidth) is scaled to the first size; one larger than
:data:`LARGEST` is scaled down to fit. The file is created exclusively: an existing one is never
written over (a recorder that lost its node may still be writing).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.video.frame import VideoFrame

from signaling.relay import Caps, copied, fit
from signaling.timeline import Timeline, arrival_offset

VIDEO_TIME_BASE = Fraction(1, 1000)  # Matroska's own resolution
AUDIO_RATE = 48_000
AUDIO_TIME_BASE = Fraction(1, AUDIO_RATE)
AUDIO_WAIT = 10.0  # seconds of audio kept while waiting for the first picture (a key frame)
LARGEST = Caps(1280, 720, 60)  # a larger picture is recorded scaled down to fit
OPUS_FRAME = 960  # 20 ms at 48 kHz
X264 = {"preset": "veryfast", "tune": "zerolatency", "crf": "26"}


@dataclass
class Stats:
    video_frames: int = 0
    audio_frames: int = 0
    moved: int = 0  # frames placed just after the previous one (reordered or late)
    video_missing: int = 0  # pictures dropped because the file was opened without video
    first: float | None = None  # monotonic arrival of the first frame
    last: float | None = None


@dataclass
class SegmentWriter:
    """Frames in (``write``), a closed, playable file out (``close``). Synchronous: call it
    from one task; encoding runs where it is called."""

    path: Path
    audio: bool
    video: bool
    clock: Callable[[], float] = time.monotonic
    stats: Stats = field(default_factory=Stats)
    _container: Any = None
    _video_stream: Any = None
    _audio_stream: Any = None
    _resampler: AudioResampler | None = None
    _timelines: dict[str, Timeline] = field(default_factory=dict)
    _origin: float | None = None
    _waiting: list[tuple[float, AudioFrame]] = field(default_factory=list)
    _size: tuple[int, int] | None = None
    _file: Any = None
    _closed: bool = False

    def write(self, frame: VideoFrame | AudioFrame, arrived: float | None = None) -> None:
        """Encode ``frame``, which arrived at monotonic ``arrived`` (now, if not given)."""
        if self._closed:
            return
        now = self.clock() if arrived is None else arrived
        if self._origin is None:
            self._origin = now
            self.stats.first = now
        self.stats.last = now
        if isinstance(frame, VideoFrame):
            self._picture(frame, now)
        else:
            self._sound(frame, now)

    def close(self) -> Stats:
        """Flush the encoders and close the file; idempotent. A segment that never got a frame
        leaves no file."""
        if self._closed:
            return self.stats
        self._closed = True
        if self._container is None and self._waiting:
            self._open(None)
        self.stats.moved = sum(line.moved for line in self._timelines.values())
        if self._container is None:
            return self.stats
        for stream in (self._video_stream, self._audio_stream):
            if stream is not None:
                for packet in stream.encode(None):
                    self._container.mux(packet)
        self._container.close()
        self._file.close()
        return self.stats

    # -- frames --------------------------------------------------------------------------------

    def _picture(self, frame: VideoFrame, now: float) -> None:
        if self._container is None:
            self._open((frame.width, frame.height))
        if self._video_stream is None:
            self.stats.video_missing += 1
            return
        at = self._timeline("video", now, VIDEO_TIME_BASE).place(int(frame.pts or 0), _clock(frame))
        assert self._size is not None
        width, height = self._size
        out = frame.reformat(width=width, height=height, format="yuv420p")
        if out is frame:
            out = copied(frame)  # a relayed frame is shared: never stamp it
        out.pts, out.time_base = at, VIDEO_TIME_BASE
        out.pict_type = av.video.frame.PictureType.NONE
        for packet in self._video_stream.encode(out):
            self._container.mux(packet)
        self.stats.video_frames += 1

    def _sound(self, frame: AudioFrame, now: float) -> None:
        if not self.audio:
            return
        if self._container is None:
            self._waiting.append((now, frame))
            assert self.stats.first is not None
            if not self.video or now - self.stats.first > AUDIO_WAIT:
                self._open(None)
            return
        self._encode_sound(frame, now)

    def _encode_sound(self, frame: AudioFrame, now: float) -> None:
        line = self._timeline("audio", now, AUDIO_TIME_BASE)
        at = line.place(int(frame.pts or 0), _clock(frame), length=frame.samples)
        frame.pts, frame.time_base = at, AUDIO_TIME_BASE
        assert self._resampler is not None
        for chunk in self._resampler.resample(frame):
            for packet in self._audio_stream.encode(chunk):
                self._container.mux(packet)
        self.stats.audio_frames += 1

    def _timeline(self, kind: str, now: float, out: Fraction) -> Timeline:
        line = self._timelines.get(kind)
        if line is None:
            assert self._origin is not None
            line = Timeline(out, offset=arrival_offset(self._origin, now, out))
            self._timelines[kind] = line
        return line

    # -- the file ------------------------------------------------------------------------------

    def _open(self, size: tuple[int, int] | None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("xb")  # a file that exists is never written over
        container = av.open(self._file, mode="w", format="matroska")
        if size is not None and self.video:
            width, height = fit(*size, LARGEST)
            stream = container.add_stream("libx264", options=dict(X264))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.time_base = VIDEO_TIME_BASE
            stream.codec_context.time_base = VIDEO_TIME_BASE
            self._video_stream, self._size = stream, (width, height)
        if self.audio:
            sound = container.add_stream("libopus", rate=AUDIO_RATE)
            sound.layout = "stereo"
            sound.time_base = AUDIO_TIME_BASE
            self._audio_stream = sound
            self._resampler = AudioResampler(
                format="s16", layout="stereo", rate=AUDIO_RATE, frame_size=OPUS_FRAME
            )
        self._container = container
        waiting, self._waiting = self._waiting, []
        for arrived, frame in waiting:
            self._encode_sound(frame, arrived)


def _clock(frame: VideoFrame | AudioFrame) -> Fraction:
    base = frame.time_base
    if base is None:  # aiortc stamps every frame; a bare frame counts in the codec's clock
        return Fraction(1, 90_000) if isinstance(frame, VideoFrame) else AUDIO_TIME_BASE
    return Fraction(base.numerator, base.denominator)
