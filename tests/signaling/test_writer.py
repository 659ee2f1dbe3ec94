"""The recording writer: files a player opens, with frames where their timestamps say."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import av
from av.audio.frame import AudioFrame
from av.video.frame import VideoFrame

from signaling.writer import AUDIO_WAIT, SegmentWriter

VIDEO = Fraction(1, 90_000)
AUDIO = Fraction(1, 48_000)


def picture(n: int, pts: int, size: tuple[int, int] = (320, 240)) -> VideoFrame:
    frame = VideoFrame(*size, "yuv420p")
    for plane in frame.planes:
        plane.update(bytes([16 + n % 200]) * plane.buffer_size)
    frame.pts, frame.time_base = pts, VIDEO
    return frame


def sound(pts: int) -> AudioFrame:
    frame = AudioFrame(format="s16", layout="stereo", samples=960)
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    frame.sample_rate, frame.pts, frame.time_base = 48_000, pts, AUDIO
    return frame


def decoded(path: Path) -> tuple[list[float], int, tuple[int, int]]:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        size = (video.width, video.height)
        times = [f.time for f in container.decode(video=0) if f.time is not None]
    with av.open(str(path)) as container:
        sounds = sum(1 for _ in container.decode(audio=0)) if container.streams.audio else 0
    return times, sounds, size


def test_sixty_jittery_frames_a_second_play_at_sixty_across_a_clock_wrap(tmp_path: Path) -> None:
    arrived = [0.0]
    writer = SegmentWriter(tmp_path / "a.mkv", audio=True, video=True, clock=lambda: arrived[0])
    start = 2**32 - 90_000  # the sender's clock wraps one second in
    for n in range(180):
        arrived[0] = n / 60 + (0.03 if n % 7 == 0 else 0.0)  # late in bursts
        writer.write(picture(n, (start + n * 1500) % 2**32))
        if n % 3 == 0:
            writer.write(sound((n // 3) * 960))
    stats = writer.close()
    times, sounds, size = decoded(tmp_path / "a.mkv")
    assert stats.video_frames == len(times) == 180 and stats.moved == 0
    assert size == (320, 240)
    assert abs(times[-1] - times[0] - 179 / 60) < 0.002  # Matroska keeps milliseconds
    assert all(b > a for a, b in itertools.pairwise(times))
    assert sounds >= 59


def test_a_picture_that_changes_size_is_scaled_to_the_first(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path / "b.mkv", audio=False, video=True)
    for n in range(30):
        size = (640, 480) if n < 15 else (320, 180)  # the sender adapts to the network
        writer.write(picture(n, n * 3000, size), arrived=n / 30)
    writer.close()
    times, _, size = decoded(tmp_path / "b.mkv")
    assert len(times) == 30 and size == (640, 480)


def test_sound_without_a_picture_is_kept_and_a_late_picture_counted(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path / "c.mkv", audio=True, video=True)
    steps = int(AUDIO_WAIT / 0.02) + 10
    for n in range(steps):
        writer.write(sound(n * 960), arrived=n * 0.02)
    writer.write(picture(0, 0), arrived=steps * 0.02)
    stats = writer.close()
    with av.open(str(tmp_path / "c.mkv")) as container:
        assert not container.streams.video
        assert sum(1 for _ in container.decode(audio=0)) >= steps - 1
    assert stats.video_missing == 1


def test_a_segment_without_frames_leaves_no_file(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path / "d.mkv", audio=True, video=True)
    writer.close()
    writer.close()  # idempotent
    assert not (tmp_path / "d.mkv").exists()
