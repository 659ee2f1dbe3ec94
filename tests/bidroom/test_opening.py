"""The opening core, pure: every step and every refusal, without a loop or a socket."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bidroom import opening
from bidroom.room import SYSTEM, Actor, Command, Event, Rejected

T0 = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
CHAIR = Actor("chair", "王敏", "chair")
CUSTODIAN = Actor("notary", "公证处", "custodian")
SUPERVISOR = Actor("sup", "赵磊", "supervisor")
BIDDERS = [Actor(f"uscc:b{n}", f"投标人{n}", "bidder") for n in range(1, 4)]
KEY = {"sealed_key": "k" * 32, "signature": "s" * 64}


class Opening:
    def __init__(self) -> None:
        self.state = opening.initial({"lot": "LOT-1", "window_minutes": 30})
        self.seq = 0

    def run(
        self, name: str, actor: Actor, at: datetime = T0, **args: object
    ) -> list[Event] | Rejected:
        decision = opening.decide(self.state, Command(name, args), actor, at)
        if isinstance(decision, Rejected):
            return decision
        for event in decision:
            self.seq += 1
            stamped = Event(event.name, event.data, self.seq, at, actor)
            self.state = opening.apply(self.state, stamped)
        return decision

    def ok(self, name: str, actor: Actor, at: datetime = T0, **args: object) -> list[Event]:
        result = self.run(name, actor, at, **args)
        assert not isinstance(result, Rejected), result
        return result

    def refused(self, name: str, actor: Actor, at: datetime = T0, **args: object) -> str:
        result = self.run(name, actor, at, **args)
        assert isinstance(result, Rejected), result
        return result.code


def fixed(bidders: list[Actor]) -> Opening:
    o = Opening()
    for b in bidders:
        o.ok("opening.sign_in", b)
    o.ok(
        "opening.fix_bids",
        SYSTEM,
        bids=[{"bidder": b.subject, "envelope": "0" * 64} for b in bidders],
    )
    return o


def decrypting() -> Opening:
    o = fixed(BIDDERS)
    o.ok("opening.start_window", CHAIR)
    return o


def test_the_bids_are_fixed_at_the_deadline_and_their_count_is_public() -> None:
    o = fixed(BIDDERS)
    assert o.state.phase == "bids_fixed" and len(o.state.bids) == 3
    assert o.refused("opening.sign_in", BIDDERS[0]) == "wrong_phase"
    assert o.refused("opening.fix_bids", CHAIR, bids=[]) == "wrong_phase"
    assert opening.snapshot(o.state, BIDDERS[0])["count"] == 3
    assert opening.snapshot(o.state, BIDDERS[0])["statuses"] == {"uscc:b1": "sealed"}


def test_only_the_system_fixes_the_bids() -> None:
    assert Opening().refused("opening.fix_bids", CHAIR, bids=[]) == "not_allowed"


def test_fewer_than_three_bids_need_the_chair_s_recorded_decision() -> None:
    o = fixed(BIDDERS[:2])
    assert o.refused("opening.start_window", CHAIR) == "decision_needed"
    assert o.refused("opening.decide", BIDDERS[0], decision="continue", reason="x") == (
        "not_allowed"
    )
    [decided] = o.ok("opening.decide", CHAIR, decision="continue", reason="经监督人同意继续")
    assert decided.data == {"decision": "continue", "reason": "经监督人同意继续", "count": 2}
    assert o.refused("opening.decide", CHAIR, decision="terminate", reason="x") == (
        "already_decided"
    )
    o.ok("opening.start_window", CHAIR)
    ended = fixed(BIDDERS[:1])
    ended.ok("opening.decide", CHAIR, decision="terminate", reason="投标人不足三家")
    assert ended.state.phase == "terminated"
    assert fixed(BIDDERS).refused("opening.decide", CHAIR, decision="continue", reason="x") == (
        "not_needed"
    )


def test_decrypting_before_the_window_is_refused() -> None:
    assert fixed(BIDDERS).refused("opening.decrypted", BIDDERS[0], **KEY) == "wrong_phase"


def test_each_bidder_decrypts_once_within_the_window() -> None:
    o = decrypting()
    o.ok("opening.decrypted", BIDDERS[0], **KEY)
    assert o.refused("opening.decrypted", BIDDERS[0], **KEY) == "already_settled"
    late = T0 + timedelta(minutes=30)
    assert o.refused("opening.decrypted", BIDDERS[1], late, **KEY) == "window_closed"
    stranger = Actor("uscc:nobid", "无投标", "bidder")
    assert o.refused("opening.decrypted", stranger, **KEY) == "no_bid"


def test_a_failure_is_settled_by_its_cause() -> None:
    o = decrypting()
    [mine] = o.ok("opening.failed", BIDDERS[0], cause="bidder_key_lost")
    assert mine.data["treated_as"] == "revoked"
    [theirs] = o.ok("opening.failed", CHAIR, bidder="uscc:b2", cause="platform_fault")
    assert theirs.data["treated_as"] == "withdrawn"
    assert o.state.bids["uscc:b1"].status == "revoked"


def test_the_quorum_opens_a_bid_only_after_the_window() -> None:
    o = decrypting()
    o.ok("opening.decrypted", BIDDERS[0], **KEY)
    o.ok("opening.decrypted", BIDDERS[1], **KEY)
    shares = {"bidder": "uscc:b3", "shares": ["a" * 64, "b" * 64]}
    assert o.refused("opening.quorum_opened", CUSTODIAN, **shares) == "wrong_phase"
    assert o.refused("opening.close_window", CHAIR, T0 + timedelta(minutes=10)) == "window_open"
    o.ok("opening.close_window", SYSTEM, T0 + timedelta(minutes=30))
    assert o.refused("opening.quorum_opened", BIDDERS[0], **shares) == "not_allowed"
    [opened] = o.ok("opening.quorum_opened", CUSTODIAN, **shares)
    assert opened.data["shares"] == ["a" * 64, "b" * 64], "each share's use is recorded"


def test_the_sheet_waits_until_every_bid_is_settled() -> None:
    o = decrypting()
    o.ok("opening.decrypted", BIDDERS[0], **KEY)
    o.ok("opening.close_window", CHAIR, T0 + timedelta(minutes=31))
    assert o.refused("opening.publish_sheet", CHAIR) == "not_all_settled"
    o.ok("opening.failed", CHAIR, bidder="uscc:b2", cause="bidder_absent")
    o.ok("opening.quorum_opened", CUSTODIAN, bidder="uscc:b3", shares=["c" * 64])
    [sheet] = o.ok("opening.publish_sheet", CHAIR)
    assert sheet.data["opened"] == ["uscc:b1", "uscc:b3"]
    assert o.state.phase == "sheet"


def test_objections_are_answered_once_by_the_chair() -> None:
    o = decrypting()
    [raised] = o.ok("opening.object", BIDDERS[0], text="解密时间窗过短")
    assert o.refused("opening.answer", BIDDERS[1], objection=raised.seq, text="x") == (
        "not_allowed"
    )
    assert o.refused("opening.answer", CHAIR, objection=99, text="x") == "no_such_objection"
    o.ok("opening.answer", CHAIR, objection=self_seq(o), text="按招标文件规定执行")
    assert o.refused("opening.answer", CHAIR, objection=self_seq(o), text="y") == (
        "already_answered"
    )


def self_seq(o: Opening) -> int:
    return o.state.objections[0][0]


def test_before_the_sheet_bidders_do_not_see_who_else_bid() -> None:
    o = decrypting()
    [done] = o.ok("opening.decrypted", BIDDERS[0], **KEY)
    stamped = Event(done.name, done.data, 9, T0, BIDDERS[0])
    assert opening.visible(o.state, stamped, BIDDERS[0])
    assert not opening.visible(o.state, stamped, BIDDERS[1])
    assert opening.visible(o.state, stamped, SUPERVISOR)
    fixed_event = Event("opening.bids_fixed", {"bids": []}, 1, T0, SYSTEM)
    assert not opening.visible(o.state, fixed_event, BIDDERS[1])
    count = Event("opening.count_published", {"count": 3}, 2, T0, SYSTEM)
    assert opening.visible(o.state, count, BIDDERS[1])


@pytest.mark.parametrize("name", sorted(opening.ARGUMENTS))
def test_every_client_command_is_in_the_rules(name: str) -> None:
    assert name in opening.RULES.all_commands()


def drawing() -> Opening:
    o = Opening()
    o.state = opening.initial({"lot": "LOT-1", "k_range": ["0.00", "0.05", "0.005"]})
    for b in BIDDERS:
        o.ok("opening.sign_in", b)
    bids = [{"bidder": b.subject, "envelope": "0" * 64} for b in BIDDERS]
    o.ok("opening.fix_bids", SYSTEM, bids=bids)
    o.ok("opening.start_window", CHAIR)
    return o


SEED = bytes(range(32))


def test_k_is_drawn_verifiably_commit_before_the_sheet_reveal_after() -> None:
    o = drawing()
    commitment = hashlib.sha256(SEED).hexdigest()
    o.ok("opening.commit_draw", CHAIR, commitment=commitment)
    assert o.refused("opening.commit_draw", CHAIR, commitment="f" * 64) == "already_committed"
    assert o.refused("opening.reveal_draw", CHAIR, seed=SEED.hex()) == "wrong_phase"
    for b in BIDDERS:
        o.ok("opening.decrypted", b, **KEY)
    o.ok("opening.close_window", CHAIR, T0 + timedelta(minutes=30))
    o.ok("opening.publish_sheet", CHAIR)
    assert o.refused("opening.reveal_draw", CHAIR, seed="00" * 32) == "seed_mismatch"
    [revealed] = o.ok("opening.reveal_draw", CHAIR, seed=SEED.hex())
    recomputed = opening.draw_k(SEED, "LOT-1", Decimal("0.00"), Decimal("0.05"), Decimal("0.005"))
    assert Decimal(revealed.data["k"]) == recomputed, "anyone recomputes K from the record"
    assert Decimal("0.00") <= recomputed <= Decimal("0.05")
    assert (recomputed / Decimal("0.005")) % 1 == 0
    assert o.refused("opening.reveal_draw", CHAIR, seed=SEED.hex()) == "already_drawn"


def test_draw_k_is_a_fixed_function_of_its_inputs() -> None:
    low, high, step = Decimal("0.00"), Decimal("0.05"), Decimal("0.005")
    n = int.from_bytes(hashlib.sha256(b"bidroom K v1\nLOT-1\n" + SEED).digest(), "big")
    assert opening.draw_k(SEED, "LOT-1", low, high, step) == low + (n % 11) * step
    ks = {opening.draw_k(bytes([i]) * 32, "LOT-1", low, high, step) for i in range(200)}
    assert len(ks) == 11, "every step in the range can come up"


def test_a_lot_without_a_draw_refuses_one() -> None:
    assert decrypting().refused("opening.commit_draw", CHAIR, commitment="a" * 64) == "no_draw"
