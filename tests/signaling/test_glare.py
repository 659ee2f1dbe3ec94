"""Glare: both peers offer at once; the lower key yields."""

from __future__ import annotations

import pytest

from signaling import glare
from signaling.glare import Action


def test_the_lower_participant_key_is_polite() -> None:
    assert glare.polite("bidder-1", "chair-1") and not glare.polite("chair-1", "bidder-1")
    with pytest.raises(ValueError):
        glare.polite("chair-1", "chair-1")


def test_a_collision_is_settled_the_same_way_on_both_sides() -> None:
    # bidder-1 offered in s-b, chair-1 in s-c, at once: exactly one offer survives.
    bidder = glare.on_offer("bidder-1", "chair-1", offering=True, current="s-b", incoming="s-c")
    chair = glare.on_offer("chair-1", "bidder-1", offering=True, current="s-c", incoming="s-b")
    assert (bidder, chair) == (Action.ROLLBACK_AND_ANSWER, Action.IGNORE)


def test_renegotiation_and_reconnection() -> None:
    assert glare.on_offer("a", "b", offering=False, current=None, incoming="s") == Action.ANSWER
    # a camera turned on later: a new offer in the same session
    assert glare.on_offer("a", "b", offering=False, current="s", incoming="s") == Action.ANSWER
    # the peer reconnected: a new session replaces the old peer connection
    assert glare.on_offer("a", "b", offering=False, current="s", incoming="t") == Action.REPLACE
