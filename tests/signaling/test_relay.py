"""What a viewer gets through the built-in relay: within the room's caps, never enlarged."""

from __future__ import annotations

from fractions import Fraction

import pytest

from signaling.relay import Caps, Pacer, fit


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
