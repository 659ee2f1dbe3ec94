"""Who may signal whom: the table, read as a user would meet it."""

from __future__ import annotations

import pytest

from signaling import rules


@pytest.mark.parametrize(
    ("kind", "sender", "target"),
    [
        ("opening", "chair", "bidder"),
        ("opening", "bidder", "chair"),
        ("opening", "custodian", "chair"),
        ("opening", "supervisor", "chair"),
        ("evaluation", "expert", "expert"),
        ("evaluation", "expert", "chair"),
        ("evaluation", "supervisor", "expert"),
        ("evaluation", "expert", "recorder"),
        ("meeting", "bidder", "chair"),
        ("meeting", "public", "chair"),
        ("meeting", "supervisor", "chair"),
        ("meeting", "supervisor", "supervisor"),
    ],
)
def test_the_room_lets_these_see_and_hear_each_other(kind: str, sender: str, target: str) -> None:
    assert rules.may_signal(kind, sender, target)
    assert rules.may_signal(kind, target, sender, signal="answer")


@pytest.mark.parametrize(
    ("kind", "sender", "target"),
    [
        ("opening", "bidder", "bidder"),  # bidders never see each other
        ("opening", "bidder", "supervisor"),
        ("opening", "bidder", "expert"),
        ("evaluation", "bidder", "expert"),
        ("evaluation", "bidder", "chair"),
        ("meeting", "bidder", "expert"),  # never, whatever the room
        ("meeting", "expert", "bidder"),
        # a meeting hides everyone's presence but the chair's from non-watchers: media too
        ("meeting", "bidder", "bidder"),
        ("meeting", "public", "custodian"),
        ("meeting", "bidder", "supervisor"),
        ("unknown-kind", "chair", "chair"),
    ],
)
def test_a_pair_the_room_keeps_apart_is_refused_both_ways(
    kind: str, sender: str, target: str
) -> None:
    assert not rules.may_signal(kind, sender, target)
    assert not rules.may_signal(kind, target, sender)


def test_only_seated_experts_signal_in_an_evaluation() -> None:
    assert not rules.may_signal("evaluation", "expert", "chair", sender_seated=False)
    assert not rules.may_signal("evaluation", "chair", "expert", target_seated=False)
    assert rules.may_signal("evaluation", "chair", "supervisor", sender_seated=False)
    assert rules.peers("evaluation", "expert", seated=False) == []


def test_the_recorder_answers_and_never_offers() -> None:
    assert rules.may_signal("evaluation", "recorder", "expert", signal="answer")
    assert rules.may_signal("evaluation", "recorder", "expert", signal="candidate")
    assert not rules.may_signal("evaluation", "recorder", "expert", signal="offer")
    assert not rules.may_signal("opening", "bidder", "recorder")


def test_peers_list_whom_a_role_may_reach() -> None:
    assert rules.peers("opening", "bidder") == ["chair"]
    assert rules.peers("opening", "chair") == ["bidder", "custodian", "supervisor"]
    assert rules.peers("evaluation", "expert") == ["chair", "expert", "recorder", "supervisor"]
    assert rules.peers("evaluation", "bidder") == []
    assert "expert" not in rules.peers("meeting", "bidder")
