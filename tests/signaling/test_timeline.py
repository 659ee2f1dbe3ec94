"""Where a received frame lands in a recording: by its own RTP timestamp, whatever the sender's
frame rate, the network's jitter or a wrap of the 32-bit clock."""

from __future__ import annotations

import itertools
from fractions import Fraction

from signaling.timeline import WRAP, Timeline, arrival_offset, unwrap

MS = Fraction(1, 1000)
VIDEO = Fraction(1, 90_000)


def test_a_timestamp_unwraps_past_two_to_the_32() -> None:
    assert unwrap(None, 5) == 5
    assert unwrap(WRAP - 10, 20) == WRAP + 20  # wrapped forward
    assert unwrap(WRAP + 20, WRAP - 10) == WRAP - 10  # a late frame from before the wrap
    assert unwrap(1000, 900) == 900  # reordered, not a whole wrap ahead


def test_sixty_frames_a_second_land_at_sixty_a_second_across_a_clock_wrap() -> None:
    # Arrival times do not enter at all (only the first frame's, as the offset): jitter cannot
    # move a frame. One minute at 60 fps whose 32-bit clock wraps after 4 seconds.
    line = Timeline(MS, offset=250)
    start = WRAP - 4 * 90_000
    times = [line.place((start + n * 1500) % WRAP, VIDEO) for n in range(3600)]
    assert times[0] == 250
    assert times[-1] == 250 + round(3599 * 1000 / 60)
    assert all(b > a for a, b in itertools.pairwise(times))
    assert line.moved == 0


def test_a_frame_stamped_before_the_last_goes_just_after_it() -> None:
    line = Timeline(MS)
    assert [line.place(t, VIDEO) for t in (0, 9000, 4500, 18000)] == [0, 100, 101, 200]
    assert line.moved == 1


def test_a_variable_rate_keeps_its_gaps() -> None:
    line = Timeline(MS)
    stamps = [0, 3000, 6000, 96000, 99000]  # 30 fps, a one-second pause, 30 fps
    assert [line.place(t, VIDEO) for t in stamps] == [0, 33, 67, 1067, 1100]


def test_a_track_that_starts_later_starts_later_in_the_file() -> None:
    assert arrival_offset(10.0, 10.5, MS) == 500
    assert arrival_offset(10.0, 9.0, MS) == 0


def test_a_late_sound_frame_never_overlaps_the_one_before() -> None:
    line = Timeline(Fraction(1, 48_000))
    assert line.place(0, Fraction(1, 48_000), length=960) == 0
    # stamped 100 samples early (a sender's clock adjusting): moved after the previous frame
    assert line.place(860, Fraction(1, 48_000), length=960) == 960
    assert line.place(1920, Fraction(1, 48_000), length=960) == 1920
    assert line.moved == 1
