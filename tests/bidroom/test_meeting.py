"""The meeting core, pure: no event loop, no socket, no database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bidroom import meeting
from bidroom.room import SYSTEM, Actor, Command, Event, Rejected, fold

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
CHAIR = Actor("chair-1", "王敏", "chair", "主场")
BIDDER = Actor("bidder-1", "李海", "bidder", organisation="六横海洁")
OTHER = Actor("bidder-2", "陈静", "bidder")
SUPERVISOR = Actor("sup-1", "赵磊", "supervisor")
CONFIG = {"title": "开标会", "roles": ["chair", "bidder", "supervisor"]}


class Room:
    """Drives the core the way the hub does: decide, number, apply."""

    def __init__(self) -> None:
        self.state = meeting.initial(CONFIG)
        self.seq = 0

    def run(self, name: str, actor: Actor, **args: object) -> list[Event] | Rejected:
        decision = meeting.decide(self.state, Command(name, args), actor, NOW)
        if isinstance(decision, Rejected):
            return decision
        events = []
        for event in decision:
            self.seq += 1
            events.append(Event(event.name, event.data, self.seq, NOW, actor))
        self.state = fold(meeting.Meeting(), self.state, events)
        return events

    def join(self, actor: Actor, connection: str = "") -> None:
        self.run("presence.join", actor, connection=connection or f"n1/{actor.subject}", node="n1")

    def ok(self, name: str, actor: Actor, **args: object) -> list[Event]:
        result = self.run(name, actor, **args)
        assert not isinstance(result, Rejected), result
        return result

    def refused(self, name: str, actor: Actor, **args: object) -> Rejected:
        result = self.run(name, actor, **args)
        assert isinstance(result, Rejected), result
        return result


@pytest.fixture
def room() -> Room:
    r = Room()
    for actor in (CHAIR, BIDDER, OTHER, SUPERVISOR):
        r.join(actor)
    return r


def opened(room: Room) -> Room:
    room.ok("meeting.open", CHAIR)
    return room


def test_a_new_meeting_waits_for_the_chair(room: Room) -> None:
    assert room.state.phase == "scheduled"
    assert room.ok("meeting.open", CHAIR)[0].name == "meeting.opened"
    assert room.state.phase == "open"


def test_only_the_chair_opens(room: Room) -> None:
    refusal = room.refused("meeting.open", BIDDER)
    assert refusal.code == "not_allowed"
    assert refusal.detail["roles"] == ["chair"]


def test_announcing_before_the_meeting_opens_names_the_phase(room: Room) -> None:
    refusal = room.refused("meeting.announce", CHAIR, text="开始")
    assert refusal.code == "wrong_phase"
    assert refusal.detail["phase"] == "scheduled"
    assert refusal.detail["allowed_phases"] == ["open"]
    assert "meeting.open" in refusal.detail["allowed"]


def test_announcements_are_kept_in_order(room: Room) -> None:
    opened(room)
    room.ok("meeting.announce", CHAIR, text="第一条")
    room.ok("meeting.announce", CHAIR, text="第二条")
    assert [a.text for a in room.state.announcements] == ["第一条", "第二条"]
    assert room.refused("meeting.announce", BIDDER, text="x").code == "not_allowed"


def test_a_bidder_writes_to_the_chair_and_others_cannot_read_it(room: Room) -> None:
    opened(room)
    [sent] = room.ok("meeting.message", BIDDER, text="对开标时间有异议", to=None)
    assert sent.data == {"from": "bidder-1", "to": None, "text": "对开标时间有异议"}
    for reader, may in ((CHAIR, True), (SUPERVISOR, True), (BIDDER, True), (OTHER, False)):
        assert meeting.visible(room.state, sent, reader) is may
    assert meeting.snapshot(room.state, OTHER)["messages"] == []
    assert meeting.snapshot(room.state, CHAIR)["messages"][0]["text"] == "对开标时间有异议"


def test_the_chair_answers_one_participant(room: Room) -> None:
    opened(room)
    [answer] = room.ok("meeting.message", CHAIR, text="已记录", to="bidder-1")
    assert meeting.visible(room.state, answer, BIDDER)
    assert not meeting.visible(room.state, answer, OTHER)
    assert room.refused("meeting.message", CHAIR, text="x", to=None).code == "invalid_args"
    assert room.refused("meeting.message", CHAIR, text="x", to="ghost").code == (
        "no_such_participant"
    )


def test_participants_cannot_write_to_each_other(room: Room) -> None:
    opened(room)
    assert room.refused("meeting.message", BIDDER, text="x", to="bidder-2").code == "not_allowed"


def test_supervisors_only_watch(room: Room) -> None:
    opened(room)
    assert room.refused("meeting.message", SUPERVISOR, text="x", to=None).code == "not_allowed"


def test_a_muted_bidder_cannot_write_until_unmuted(room: Room) -> None:
    opened(room)
    room.ok("meeting.mute", CHAIR, subject="bidder-1")
    assert room.refused("meeting.message", BIDDER, text="x", to=None).code == "muted"
    assert room.refused("meeting.mute", CHAIR, subject="bidder-1").code == "already_muted"
    room.ok("meeting.unmute", CHAIR, subject="bidder-1")
    room.ok("meeting.message", BIDDER, text="x", to=None)
    assert room.refused("meeting.unmute", CHAIR, subject="bidder-1").code == "not_muted"


def test_the_chair_cannot_be_muted_or_removed(room: Room) -> None:
    opened(room)
    assert room.refused("meeting.mute", CHAIR, subject="chair-1").code == "not_allowed"
    assert room.refused("meeting.remove", CHAIR, subject="chair-1", reason="x").code == (
        "not_allowed"
    )


def test_a_removed_participant_may_not_come_back(room: Room) -> None:
    opened(room)
    room.ok("meeting.remove", CHAIR, subject="bidder-2", reason="扰乱会场秩序")
    refusal = meeting.may_join(room.state, OTHER)
    assert refusal is not None and refusal.code == "removed"
    assert room.refused("presence.join", OTHER, connection="n1/again", node="n1").code == "removed"
    assert meeting.may_join(room.state, BIDDER) is None


def test_roles_outside_the_room_may_not_join(room: Room) -> None:
    refusal = meeting.may_join(room.state, Actor("p", "路人", "public"))
    assert refusal is not None and refusal.code == "not_allowed"


def test_presence_follows_connections(room: Room) -> None:
    room.join(BIDDER, "n2/second-tab")
    assert room.state.participants["bidder-1"].online
    room.ok("presence.leave", SYSTEM, connection="n1/bidder-1")
    assert room.state.participants["bidder-1"].online, "still on the second tab"
    room.ok("presence.leave", SYSTEM, connection="n2/second-tab")
    assert not room.state.participants["bidder-1"].online
    assert room.ok("presence.leave", SYSTEM, connection="n2/second-tab") == []


def test_connections_of_a_dead_node_expire(room: Room) -> None:
    room.join(OTHER, "n2/x")
    expired = room.ok("presence.expire", SYSTEM, alive=["n2"])
    assert {e.data["subject"] for e in expired} == {"chair-1", "bidder-1", "bidder-2", "sup-1"}
    assert next(e for e in expired if e.data["subject"] == "bidder-2").data["connections"] == [
        "n1/bidder-2"
    ]
    assert not room.state.participants["bidder-1"].online
    assert room.state.participants["bidder-2"].online
    assert room.ok("presence.expire", SYSTEM, alive=["n2"]) == []


def test_bidders_see_the_chair_and_themselves_but_not_each_other(room: Room) -> None:
    [joined] = room.run("presence.join", OTHER, connection="n1/tab2", node="n1")  # type: ignore[misc]
    assert meeting.visible(room.state, joined, OTHER)
    assert meeting.visible(room.state, joined, CHAIR)
    assert meeting.visible(room.state, joined, SUPERVISOR)
    assert not meeting.visible(room.state, joined, BIDDER)
    seen = {p["subject"] for p in meeting.snapshot(room.state, BIDDER)["participants"]}
    assert seen == {"chair-1", "bidder-1"}
    assert len(meeting.snapshot(room.state, SUPERVISOR)["participants"]) == 4


def test_who_is_muted_or_removed_is_told_to_them_and_the_watchers_only(room: Room) -> None:
    opened(room)
    [muted] = room.ok("meeting.mute", CHAIR, subject="bidder-2")
    [removed] = room.ok("meeting.remove", CHAIR, subject="bidder-2", reason="扰乱秩序")
    for event in (muted, removed):
        assert meeting.visible(room.state, event, OTHER) and meeting.visible(
            room.state, event, CHAIR
        )
        assert meeting.visible(room.state, event, SUPERVISOR)
        assert not meeting.visible(room.state, event, BIDDER), "it would name another bidder"


def test_presence_commands_are_not_the_clients_to_send() -> None:
    assert not any(name.startswith("presence.") for name in meeting.ARGUMENTS)
    assert meeting.RULES.commands["open"]["presence.expire"] == frozenset({"system"})


def test_a_closed_meeting_takes_no_more_commands(room: Room) -> None:
    opened(room)
    room.ok("meeting.close", CHAIR)
    assert room.state.phase == "closed"
    assert room.refused("meeting.announce", CHAIR, text="x").code == "wrong_phase"
    assert room.refused("meeting.open", CHAIR).code == "wrong_phase"


def test_replaying_the_log_gives_the_same_state(room: Room) -> None:
    opened(room)
    room.ok("meeting.announce", CHAIR, text="a")
    room.ok("meeting.mute", CHAIR, subject="bidder-2")
    log = []
    replay = Room()
    for actor in (CHAIR, BIDDER, OTHER, SUPERVISOR):
        log += replay.run("presence.join", actor, connection=f"n1/{actor.subject}", node="n1")
    log += replay.run("meeting.open", CHAIR)
    log += replay.run("meeting.announce", CHAIR, text="a")
    log += replay.run("meeting.mute", CHAIR, subject="bidder-2")
    again = fold(meeting.Meeting(), meeting.initial(CONFIG), log)
    assert again == room.state


def test_the_snapshot_tells_each_role_what_it_may_do(room: Room) -> None:
    opened(room)
    assert "meeting.announce" in meeting.snapshot(room.state, CHAIR)["allowed"]
    assert meeting.snapshot(room.state, BIDDER)["allowed"] == ["meeting.message"]
    assert meeting.snapshot(room.state, SUPERVISOR)["allowed"] == []
