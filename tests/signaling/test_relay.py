"""What a viewer gets through the built-in relay: within the room's caps, never enlarged."""

from __future__ import annotations

from fractions import Fraction

import pytest
from av.video.frame import VideoFrame

from signaling.relay import Caps, Pacer, copied, fit


@pytest.mark.parametrize(
    ("size", "caps", "out"),
    [
        ((1280, 720), Caps(640, 480, 15), (640, 360)),
        ((640, 480), Caps(320, 240, 15), (320, 240)),
        ((320, 240), Caps(640, 480, 30), (320, 240)),  # never enlarged
        ((481, 271), Caps(640, 480, 30), (480, 270)),  # even, for yuv420p
        ((720, 1280), Caps(640, 480, 15), (270, 480)),  # a phone held upright
    ],
)
def test_the_picture_fits_the_caps(size: tuple[int, int], caps: Caps, out: tuple[int, int]) -> None:
    assert fit(*size, caps) == out


def test_sixty_frames_a_second_pass_at_the_capped_fifteen() -> None:
    pacer = Pacer(15)
    passed = [n for n in range(120) if pacer.admit(Fraction(n, 60))]
    assert len(passed) == 30  # two seconds at 15 fps
    assert passed[:3] == [0, 4, 8]


def test_a_new_source_whose_clock_starts_again_is_let_in() -> None:
    pacer = Pacer(15)
    assert pacer.admit(Fraction(100))
    assert not pacer.admit(Fraction(100) + Fraction(1, 60))
    assert pacer.admit(Fraction(0))  # a rejoin: timestamps from zero again


def test_a_sender_at_exactly_the_cap_passes_whole_though_its_clock_is_rounded() -> None:
    pacer = Pacer(15)
    # 90 kHz ticks truncated as aiortc does: every third interval is one tick short
    stamps = [Fraction(int(n * 90_000 / 15), 90_000) for n in range(45)]
    assert all(pacer.admit(at) for at in stamps)


def test_twenty_frames_a_second_capped_at_fifteen_pass_fifteen() -> None:
    pacer = Pacer(15)
    assert sum(pacer.admit(Fraction(n, 20)) for n in range(200)) in range(148, 152)


def test_a_copied_frame_is_the_relayed_frames_picture_and_its_own_object() -> None:
    shared = VideoFrame(320, 240, "yuv420p")
    for plane in shared.planes:
        plane.update(bytes([77]) * plane.buffer_size)
    shared.pts, shared.time_base = 9000, Fraction(1, 90_000)
    mine = copied(shared)
    mine.pts = 1  # stamping the copy leaves the shared frame as it was
    assert mine is not shared and shared.pts == 9000
    assert bytes(mine.planes[0]) == bytes(shared.planes[0])
