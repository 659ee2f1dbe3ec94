"""The evaluation core, pure: every step and every refusal, without a loop or a socket."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from bidroom import committee as c
from bidroom import evaluation, scoring
from bidroom.errors import ScoringError
from bidroom.room import SYSTEM, Actor, Command, Event, Rejected

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # the scheduled start
SEED = bytes(range(32))
SEED2 = bytes(range(32, 64))
SPECIALTY = "A080101"
MAIN, HZ, NB = "主场·舟山", "副场·杭州", "副场·宁波"
CHAIR = Actor("chair", "王敏", "chair")
SUPERVISOR = Actor("sup", "赵磊", "supervisor")
BIDDER = Actor("uscc:b1", "投标人1", "bidder")
B1, B2, B3 = "uscc:b1", "uscc:b2", "uscc:b3"


def expert(n: int, city: str) -> c.Expert:
    return c.Expert(f"e{n:02d}", f"专家{n}", frozenset({SPECIALTY}), f"org{n}", city)


POOL = [
    *(expert(n, "舟山") for n in (1, 2, 3, 9)),
    *(expert(n, "杭州") for n in (4, 5, 6)),
    *(expert(n, "宁波") for n in (7, 8)),
]
REQUEST = c.Request(
    lot="LOT-1",
    seats=(
        c.Seats(MAIN, 3),
        c.Seats(HZ, 1, frozenset({"杭州"})),
        c.Seats(NB, 1, frozenset({"宁波"})),
    ),
    specialties=frozenset({SPECIALTY}),
    tenderer="tenderer",
    bidders=frozenset({B1, B2, B3}),
    on=date(2026, 12, 1),
)
DRAW = c.draw(POOL, REQUEST, SEED)
CRITERIA = [{"id": "licence", "text": "营业执照有效"}, {"id": "guarantee", "text": "保函符合要求"}]
PARAMS = {
    "price": {"method": "benchmark", "full": "30", "e_high": "0.2", "e_low": "0.1"},
    "items": [
        {"id": "tech", "max": "40"},
        {"id": "plan", "max": "20"},
        {"id": "cert", "max": "10", "kind": "objective", "part": "commercial"},
    ],
    "candidates": 2,
}


def opened(bidder: str, price: str, status: str) -> dict[str, Any]:
    """A bid as the opening's record lists it."""
    n = bidder[-1]
    received = f"2026-11-28T09:0{n}:00+08:00"
    name = f"投标人{n}"
    return {
        "bidder": bidder,
        "name": name,
        "price": price,
        "received_at": received,
        "status": status,
    }


CONFIG: Mapping[str, Any] = {
    "lot": "LOT-1",
    "title": "第1标段",
    "tender": "ZJ-ZS-2026-0417",
    "starts_at": T0.isoformat(),
    "bids": [
        opened(B1, "98", "decrypted"),
        opened(B2, "100", "quorum_opened"),
        opened(B3, "102", "decrypted"),
        {"bidder": "uscc:b4", "name": "投标人4", "status": "revoked"},
    ],
    "criteria": CRITERIA,
    "review_rule": "majority",
    "params": PARAMS,
    "k": "0",
    "venues": [{"venue": MAIN, "seats": 3}, {"venue": HZ, "seats": 1}, {"venue": NB, "seats": 1}],
}


def seated_actor(seat: c.SealedSeat) -> Actor:
    return Actor(seat.expert, f"专家{seat.expert[1:]}", "expert", venue=seat.venue)


SEATS = DRAW.sealed_view()
EXPERTS = [seated_actor(s) for s in SEATS]
MEMBERS = [e.subject for e in EXPERTS]
STRANGER = Actor("e99", "路人", "expert", venue=MAIN)
UNSIGNED: dict[str, Any] = {"signature": None}  # an act sent without its signature


class Session:
    """An evaluation room driven through decide/apply, as the hub would, with stamped events.

    An expert's signed act (evaluation.SIGNED, and the sign-in) gets a signature of its own
    unless ``args`` give one (``signature=None``: unsigned): the core only requires it (the
    shells check it, tests/bidroom/test_evaluations.py)."""

    def __init__(self, **config: Any) -> None:
        self.config = {**CONFIG, **config}
        self.state = evaluation.initial(self.config)
        self.seq = 0
        self.log: list[Event] = []
        self.at = T0
        self.signatures = 0

    def signature(self) -> dict[str, str]:
        """A signature not used before (the core takes each once), and a certificate."""
        self.signatures += 1
        return {"signature": f"signature-{self.signatures:08d}", "certificate": "certificate-der"}

    def run(self, name: str, actor: Actor, at: datetime | None = None, **args: Any) -> Any:
        if (name in evaluation.SIGNED or name == "evaluation.sign_in") and "signature" not in args:
            args |= self.signature()
        decision = evaluation.decide(self.state, Command(name, args), actor, at or self.at)
        if isinstance(decision, Rejected):
            return decision
        stamped = []
        for event in decision:
            self.seq += 1
            stamped.append(Event(event.name, event.data, self.seq, at or self.at, actor))
            self.state = evaluation.apply(self.state, stamped[-1])
        self.log.extend(stamped)
        return stamped

    def ok(self, name: str, actor: Actor, at: datetime | None = None, **args: Any) -> list[Event]:
        result = self.run(name, actor, at, **args)
        assert not isinstance(result, Rejected), result
        return list(result)

    def refused(self, name: str, actor: Actor, at: datetime | None = None, **args: Any) -> str:
        result = self.run(name, actor, at, **args)
        assert isinstance(result, Rejected), result
        return result.code

    def view(self, actor: Actor) -> dict[str, Any]:
        return evaluation.snapshot(self.state, actor)


def act(event: Event) -> dict[str, Any]:
    """A signed act's event data without what it keeps of its signature (which it must keep)."""
    kept = ("signature", "certificate", "signed")
    assert all(event.data.get(k) for k in kept), event.data
    return {k: v for k, v in event.data.items() if k not in kept}


def sign_in(s: Session, seat: c.SealedSeat, actor: Actor | None = None) -> list[Event]:
    who = actor or seated_actor(seat)
    return s.ok("evaluation.sign_in", who, seat=seat.seat, expert=who.subject, salt=seat.salt.hex())


def drawn(**config: Any) -> Session:
    s = Session(**config)
    s.ok("evaluation.record_draw", CHAIR, draw=DRAW.to_json())
    return s


def seated(**config: Any) -> Session:
    s = drawn(**config)
    for seat in SEATS:
        sign_in(s, seat)
    return s


def electing(**config: Any) -> Session:
    s = seated(**config)
    s.ok("evaluation.open_declarations", CHAIR)
    for e in EXPERTS:
        s.ok("evaluation.declare", e, declaration="none")
    return s


def elected(**config: Any) -> Session:
    s = electing(**config)
    for e in EXPERTS:
        s.ok("evaluation.vote", e, candidate=MEMBERS[0], round=1)
    return s


PRECHECK_LOT = {"lot": "LOT-1", "ceiling_price": "110.00"}
PRECHECK_BIDS = [
    {"bidder": B1, "name": "投标人1", "price": "98.00", "client": {"device": "D1"}},
    {"bidder": B2, "name": "投标人2", "price": "100.00", "client": {"device": "D1"}},
    {"bidder": B3, "name": "投标人3", "price": "102.00"},
]


def reviewing(**config: Any) -> Session:
    s = elected(**config)
    s.ok("evaluation.precheck", SYSTEM, lot=PRECHECK_LOT, bids=PRECHECK_BIDS)
    s.ok("evaluation.start_preliminary", EXPERTS[0])
    return s


def verdicts(fails: Mapping[tuple[str, str], str] = {}) -> list[dict[str, Any]]:
    return [
        {
            "bidder": b,
            "criterion": crit["id"],
            "passed": (b, crit["id"]) not in fails,
            "reason": fails.get((b, crit["id"]), ""),
        }
        for b in (B1, B2, B3)
        for crit in CRITERIA
    ]


def scoring_phase(**config: Any) -> Session:
    s = reviewing(**config)
    for e in EXPERTS:
        s.ok("evaluation.submit_review", e, verdicts=verdicts())
    return s


def sheet(tech: str = "30", plan: str = "15", cert: str = "8") -> dict[str, Any]:
    return {"scores": {"tech": tech, "plan": plan, "cert": cert}}


def bid_name(s: Session, bidder: str) -> str:
    """How an expert names a bid: its label while the technical part is anonymous."""
    return s.state.spec.labels.get(bidder, bidder) if s.state.anonymous else bidder


def deviating(outlier: str = "30", **config: Any) -> Session:
    """Every sheet in; the last expert scored B1's tech ``outlier``."""
    s = scoring_phase(**config)
    for e in EXPERTS:
        for b in (B1, B2, B3):
            tech = outlier if (e is EXPERTS[-1] and b == B1) else "30"
            s.ok("evaluation.submit_sheet", e, bid=bid_name(s, b), **sheet(tech=tech))
    return s


# forming the committee ---------------------------------------------------------------------


def test_the_config_gives_the_opened_bids_criteria_and_frozen_parameters() -> None:
    state = Session().state
    assert state.phase == "forming"
    assert [b.bidder for b in state.spec.bids] == [B1, B2, B3], "revoked bids are not evaluated"
    assert state.spec.criteria == (("licence", "营业执照有效"), ("guarantee", "保函符合要求"))
    assert state.spec.rule == "majority" and state.spec.params.threshold == Decimal("0.30")
    assert state.spec.venues == ((MAIN, 3), (HZ, 1), (NB, 1))
    assert state.spec.labels == {}, "no labels unless the technical part is anonymous"
    with pytest.raises(ScoringError):
        evaluation.initial({**CONFIG, "params": {**PARAMS, "threshold": "2"}})


def test_the_draw_is_recorded_as_its_public_view_only() -> None:
    s = Session()
    assert s.refused("evaluation.record_draw", SUPERVISOR, draw=DRAW.to_json()) == "not_allowed"
    assert s.refused("evaluation.sign_in", EXPERTS[0], seat=1, expert="e01", salt="0" * 64) == (
        "wrong_phase"
    )
    [recorded] = s.ok("evaluation.record_draw", CHAIR, draw=DRAW.to_json())
    text = json.dumps(recorded.data, ensure_ascii=False)
    for member in MEMBERS:
        assert f'"{member}"' not in text, "a sealed identity never reaches the log"
    assert SEED.hex() not in text
    assert recorded.data["seats"] == [p.to_json() for p in DRAW.public_view()]
    assert recorded.data["pool_digest"] == DRAW.pool_digest
    assert s.state.phase == "signing_in"
    assert [seat["status"] for seat in s.view(CHAIR)["seats"]] == ["sealed"] * 5
    assert s.refused("evaluation.record_draw", CHAIR, draw=DRAW.to_json()) == "wrong_phase"


def test_a_draw_of_another_shape_is_refused() -> None:
    s = Session()
    assert s.refused("evaluation.record_draw", CHAIR, draw={"format": "x"}) == "draw_invalid"
    broken = {**DRAW.to_json(), "picks": "nope"}
    assert s.refused("evaluation.record_draw", CHAIR, draw=broken) == "draw_invalid"
    other = dataclasses.replace(REQUEST, lot="LOT-2")
    elsewhere = c.draw(POOL, other, SEED).to_json()
    assert s.refused("evaluation.record_draw", CHAIR, draw=elsewhere) == "draw_mismatch"
    fewer = dataclasses.replace(REQUEST, seats=REQUEST.seats[:2])
    assert s.refused("evaluation.record_draw", CHAIR, draw=c.draw(POOL, fewer, SEED).to_json()) == (
        "draw_mismatch"
    )


def test_each_expert_signs_in_at_their_own_seat_and_venue() -> None:
    s = drawn()
    first = SEATS[0]
    me = EXPERTS[0]
    assert s.refused("evaluation.sign_in", CHAIR, seat=1, expert=me.subject, salt="0" * 64) == (
        "not_allowed"
    )
    assert (
        s.refused(
            "evaluation.sign_in", me, seat=1, expert=EXPERTS[1].subject, salt=first.salt.hex()
        )
        == "wrong_expert"
    )
    assert s.refused("evaluation.sign_in", me, seat=1, expert=me.subject, salt="0" * 64) == (
        "seat_mismatch"
    )
    away = dataclasses.replace(me, venue=HZ)
    assert (
        s.refused("evaluation.sign_in", away, seat=1, expert=me.subject, salt=first.salt.hex())
        == "wrong_venue"
    )
    assert s.refused("evaluation.sign_in", me, seat=9, expert=me.subject, salt="0" * 64) == (
        "no_such_seat"
    )
    unsigned = {"seat": 1, "expert": me.subject, "salt": first.salt.hex(), **UNSIGNED}
    assert s.refused("evaluation.sign_in", me, **unsigned) == "signature_required"
    [came] = sign_in(s, first)
    assert act(came) == {
        "seat": 1,
        "venue": MAIN,
        "expert": me.subject,
        "name": me.name,
        "salt": first.salt.hex(),
    }
    assert came.data["signed"] == {"action": "evaluation.sign_in", "venue": MAIN}
    assert (
        s.refused("evaluation.sign_in", me, seat=2, expert=me.subject, salt=SEATS[1].salt.hex())
        == "already_seated"
    )
    assert (
        s.refused(
            "evaluation.sign_in", STRANGER, seat=1, expert=STRANGER.subject, salt=first.salt.hex()
        )
        == "seat_taken"
    )
    assert s.view(SUPERVISOR)["seats"][0]["expert"] == me.subject


def test_declarations_open_when_every_seat_is_taken() -> None:
    s = drawn()
    for seat in SEATS[:4]:
        sign_in(s, seat)
    assert s.refused("evaluation.open_declarations", CHAIR) == "seats_open"
    sign_in(s, SEATS[4])
    assert s.refused("evaluation.open_declarations", EXPERTS[0]) == "not_allowed"
    [opened] = s.ok("evaluation.open_declarations", CHAIR)
    assert [b["bidder"] for b in opened.data["bidders"]] == [B1, B2, B3], "the bidder list"
    assert s.state.phase == "declaring"


# conflicts and replacement -----------------------------------------------------------------


def test_a_conflict_vacates_the_seat_and_its_replacement_signs_in_and_declares() -> None:
    s = seated()
    s.ok("evaluation.open_declarations", CHAIR)
    conflicted = EXPERTS[1]
    assert s.refused("evaluation.declare", conflicted, declaration="conflict", bidders=[B2]) == (
        "reason_needed"
    )
    assert (
        s.refused(
            "evaluation.declare", conflicted, declaration="conflict", bidders=["uscc:x"], reason="r"
        )
        == "no_bid"
    )
    assert s.refused("evaluation.declare", STRANGER, declaration="none") == "not_a_member"
    [left] = s.ok(
        "evaluation.declare", conflicted, declaration="conflict", bidders=[B2], reason="曾任职"
    )
    signed = {"action": "evaluation.declare", "declaration": "conflict", "bidders": [B2]}
    assert left.data == {
        "seat": 2,
        "expert": conflicted.subject,
        "declaration": "conflict",
        "bidders": [B2],
        "reason": "曾任职",
        "signature": s.log[-1].data["signature"],
        "certificate": "certificate-der",
        "signed": {**signed, "reason": "曾任职"},
    }
    assert s.state.seats[1].status == "vacated" and conflicted.subject not in s.state.members
    assert s.refused("evaluation.declare", conflicted, declaration="none") == "not_a_member"
    for e in EXPERTS[:1] + EXPERTS[2:]:
        s.ok("evaluation.declare", e, declaration="none")
    assert s.state.phase == "declaring", "the election waits for the empty seat"
    assert s.refused("evaluation.declare", EXPERTS[0], declaration="none") == "already_declared"
    replaced = c.replace_seat(DRAW, 2, SEED2)
    assert s.refused("evaluation.record_replacement", CHAIR, draw=DRAW.to_json()) == (
        "draw_mismatch"
    )
    assert (
        s.refused(
            "evaluation.record_replacement", CHAIR, draw=c.replace_seat(DRAW, 1, SEED2).to_json()
        )
        == "seat_not_vacated"
    )
    [reopened] = s.ok("evaluation.record_replacement", CHAIR, draw=replaced.to_json())
    newcomer = replaced.sealed_view()[1]
    assert f'"{newcomer.expert}"' not in json.dumps(reopened.data), "the newcomer stays sealed"
    assert reopened.data["replaced"] == conflicted.subject
    assert s.state.seats[1].status == "sealed"
    old = SEATS[1]
    assert (
        s.refused(
            "evaluation.sign_in", conflicted, seat=2, expert=conflicted.subject, salt=old.salt.hex()
        )
        == "seat_mismatch"
    ), "the one who left cannot come back"
    sign_in(s, newcomer)
    _, opened = s.ok("evaluation.declare", seated_actor(newcomer), declaration="none")
    assert opened.name == "evaluation.election_opened" and s.state.phase == "electing"
    assert opened.data["members"][1] == newcomer.expert
    assert s.state.seats[1].left[0]["expert"] == conflicted.subject, "the record keeps who left"


# the leader --------------------------------------------------------------------------------


def test_a_majority_elects_the_leader() -> None:
    s = electing()
    assert s.refused("evaluation.vote", STRANGER, candidate=MEMBERS[0], round=1) == "not_a_member"
    assert s.refused("evaluation.vote", EXPERTS[0], candidate="e99", round=1) == "not_a_candidate"
    s.ok("evaluation.vote", EXPERTS[0], candidate=MEMBERS[1], round=1)
    assert s.refused("evaluation.vote", EXPERTS[0], candidate=MEMBERS[1], round=1) == (
        "already_voted"
    )
    for e in EXPERTS[1:4]:
        s.ok("evaluation.vote", e, candidate=MEMBERS[1], round=1)
    *_, closed, leader = s.ok("evaluation.vote", EXPERTS[4], candidate=MEMBERS[0], round=1)
    assert closed.data["tally"][MEMBERS[1]] == 4 and closed.data["tied"] == []
    assert leader.data == {"leader": MEMBERS[1], "appointed": False}
    assert s.state.leader == MEMBERS[1]
    assert s.refused("evaluation.vote", EXPERTS[0], candidate=MEMBERS[1], round=2) == (
        "round_closed"
    )


def test_a_tie_is_revoted_and_a_second_tie_is_appointed_by_the_chair() -> None:
    s = electing()
    ballots = [MEMBERS[0], MEMBERS[0], MEMBERS[1], MEMBERS[1]]
    for e, choice in zip(EXPERTS[:4], ballots, strict=True):
        s.ok("evaluation.vote", e, candidate=choice, round=1)
    assert s.refused("evaluation.revote", CHAIR) == "wrong_phase"  # committee's phase: voting
    [closed] = s.ok("evaluation.close_round", CHAIR)
    assert closed.data["tied"] == MEMBERS[:2]
    assert s.refused("evaluation.revote", EXPERTS[0]) == "not_allowed"
    [revote] = s.ok("evaluation.revote", CHAIR)
    assert revote.data == {"round": 2, "candidates": MEMBERS[:2]}
    assert s.refused("evaluation.vote", EXPERTS[0], candidate=MEMBERS[2], round=2) == (
        "not_a_candidate"
    )
    for e, choice in zip(EXPERTS[:4], ballots, strict=True):
        s.ok("evaluation.vote", e, candidate=choice, round=2)
    s.ok("evaluation.close_round", CHAIR)
    assert s.state.election is not None and s.state.election.phase == "appointing"
    assert s.refused("evaluation.appoint", CHAIR, expert=MEMBERS[3]) == "not_tied_candidate"
    [appointed] = s.ok("evaluation.appoint", CHAIR, expert=MEMBERS[1])
    assert appointed.data == {"leader": MEMBERS[1], "appointed": True}
    assert s.state.leader == MEMBERS[1] and s.state.appointed


def test_the_precheck_comes_after_the_election_and_is_evidence_only() -> None:
    s = electing()
    assert s.refused("evaluation.precheck", SYSTEM, lot=PRECHECK_LOT, bids=PRECHECK_BIDS) == (
        "leader_needed"
    )
    for e in EXPERTS:
        s.ok("evaluation.vote", e, candidate=MEMBERS[0], round=1)
    assert s.refused("evaluation.precheck", SYSTEM, lot={}, bids=PRECHECK_BIDS) == (
        "precheck_invalid"
    )
    assert s.refused("evaluation.precheck", EXPERTS[0], lot=PRECHECK_LOT, bids=[]) == (
        "not_allowed"
    )
    [checked] = s.ok("evaluation.precheck", SYSTEM, lot=PRECHECK_LOT, bids=PRECHECK_BIDS)
    kinds = [f["kind"] for f in checked.data["result"]["findings"]]
    assert "same_device" in kinds
    assert s.state.phase == "prechecked" and s.view(EXPERTS[2])["precheck"]["findings"]
    assert s.refused("evaluation.start_preliminary", EXPERTS[1]) == "not_leader"
    s.ok("evaluation.start_preliminary", EXPERTS[0])
    assert s.state.phase == "preliminary"


# the preliminary review --------------------------------------------------------------------


def test_a_review_is_complete_with_a_reason_for_every_fail_and_submitted_once() -> None:
    s = reviewing()
    me = EXPERTS[0]
    assert s.refused("evaluation.submit_review", me, verdicts=verdicts()[:-1]) == (
        "incomplete_review"
    )
    no_reason = verdicts({(B2, "licence"): ""})
    assert s.refused("evaluation.submit_review", me, verdicts=no_reason) == "reason_needed"
    twice = [*verdicts(), verdicts()[0]]
    assert s.refused("evaluation.submit_review", me, verdicts=twice) == "duplicate_verdict"
    odd = [{**verdicts()[0], "criterion": "x"}]
    assert s.refused("evaluation.submit_review", me, verdicts=odd) == "unknown_criterion"
    assert s.refused("evaluation.submit_review", STRANGER, verdicts=verdicts()) == "not_a_member"
    assert s.refused("evaluation.submit_review", CHAIR, verdicts=verdicts()) == "not_allowed"
    assert s.refused("evaluation.submit_sheet", me, bid=B1, **sheet()) == "wrong_phase"
    s.ok("evaluation.submit_review", me, verdicts=verdicts())
    assert s.refused("evaluation.submit_review", me, verdicts=verdicts()) == "already_submitted"


@pytest.mark.parametrize(
    ("rule", "failing", "passed"),
    [
        ("majority", 2, [B1, B2, B3]),  # 2 of 5 fail B2: it passes
        ("majority", 3, [B1, B3]),
        ("unanimity", 1, [B1, B3]),  # one fail is enough
        ("unanimity", 0, [B1, B2, B3]),
    ],
)
def test_the_lots_rule_decides_each_bid(rule: str, failing: int, passed: list[str]) -> None:
    s = reviewing(review_rule=rule)
    fail = verdicts({(B2, "guarantee"): "保函金额不足"})
    for n, e in enumerate(EXPERTS):
        s.ok("evaluation.submit_review", e, verdicts=fail if n < failing else verdicts())
    decided = s.log[-1]
    assert decided.name == "evaluation.preliminary_decided"
    assert decided.data["passed"] == passed
    assert decided.data["criteria"][B2]["guarantee"]["fail"] == failing
    assert [r["reason"] for r in decided.data["reasons"]] == ["保函金额不足"] * failing
    assert s.state.phase == "scoring"


def test_an_expert_sees_other_reviews_only_after_their_own() -> None:
    s = reviewing()
    [theirs] = s.ok("evaluation.submit_review", EXPERTS[1], verdicts=verdicts())
    me = EXPERTS[0]
    assert not evaluation.visible(s.state, theirs, me)
    assert list(s.view(me)["reviews"]["verdicts"]) == []
    assert s.view(me)["reviews"]["submitted"] == [MEMBERS[1]], "who submitted is known"
    assert evaluation.visible(s.state, theirs, SUPERVISOR)
    s.ok("evaluation.submit_review", me, verdicts=verdicts())
    assert evaluation.visible(s.state, theirs, me)
    assert set(s.view(me)["reviews"]["verdicts"]) == {MEMBERS[0], MEMBERS[1]}


def test_no_bid_passing_ends_in_a_summary_without_scores() -> None:
    s = reviewing()
    everything = {(b, "licence"): "无营业执照" for b in (B1, B2, B3)}
    for e in EXPERTS:
        s.ok("evaluation.submit_review", e, verdicts=verdicts(everything))
    assert s.state.phase == "summary" and s.state.summary is not None
    assert s.state.summary["reason"] == "no_bid_passed"
    assert s.state.summary["computation"] is None
    assert [b["passed"] for b in s.state.summary["record"]["bids"]] == [False] * 3
    s.ok("evaluation.issue_report", SYSTEM, digest=DIGEST, pages=2)  # the failed tender's report


# detailed scoring --------------------------------------------------------------------------


def test_each_expert_scores_each_passing_bid_once() -> None:
    s = reviewing()
    for e in EXPERTS:
        s.ok("evaluation.submit_review", e, verdicts=verdicts({(B3, "licence"): "过期"}))
    me = EXPERTS[0]
    assert s.refused("evaluation.submit_sheet", me, bid=B3, **sheet()) == "not_passed"
    assert s.refused("evaluation.submit_sheet", me, bid="uscc:x", **sheet()) == "no_bid"
    assert s.refused("evaluation.submit_sheet", STRANGER, bid=B1, **sheet()) == "not_a_member"
    bad: dict[str, Any] = {"scores": {"tech": "30", "design": "5"}}
    assert s.refused("evaluation.submit_sheet", me, bid=B1, **bad) == "item_unknown"
    assert s.refused("evaluation.submit_sheet", me, bid=B1, scores={"tech": "abc"}) == (
        "number_invalid"
    )
    [done] = s.ok("evaluation.submit_sheet", me, bid=B1, **sheet())
    assert act(done) == {"expert": me.subject, "bidder": B1, **sheet(), "total": None}
    assert s.refused("evaluation.submit_sheet", me, bid=B1, **sheet()) == "already_submitted"
    assert s.refused("evaluation.explain", me, flag="x", reason="r") == "wrong_phase"


def test_nobody_sees_another_sheet_before_handing_in_their_own() -> None:
    s = scoring_phase()
    [theirs] = s.ok("evaluation.submit_sheet", EXPERTS[1], bid=B1, **sheet(tech="33"))
    me = EXPERTS[0]
    assert not evaluation.visible(s.state, theirs, me)
    assert s.view(me)["sheets"] == []
    assert evaluation.visible(s.state, theirs, SUPERVISOR) and evaluation.visible(
        s.state, theirs, CHAIR
    )
    assert not evaluation.visible(s.state, theirs, BIDDER)
    s.ok("evaluation.submit_sheet", me, bid=B2, **sheet())
    assert not evaluation.visible(s.state, theirs, me), "one's own for another bid is not enough"
    s.ok("evaluation.submit_sheet", me, bid=B1, **sheet())
    assert evaluation.visible(s.state, theirs, me)
    shown = {(x["expert"], x["bidder"]) for x in s.view(me)["sheets"]}
    assert shown == {(MEMBERS[0], B1), (MEMBERS[0], B2), (MEMBERS[1], B1)}


def test_an_anonymous_technical_part_shows_labels_until_the_scores_are_locked() -> None:
    config: dict[str, Any] = {"anonymous": True, "label_seed": SEED.hex()}
    s = scoring_phase(**config)
    labels = s.state.spec.labels
    assert labels == evaluation.labels([B1, B2, B3], "LOT-1", SEED)
    assert sorted(labels.values()) == ["A", "B", "C"]
    me = EXPERTS[0]
    view = s.view(me)
    assert [b for b in view["to_score"]] == [
        {"label": "A", "scored": False},
        {"label": "B", "scored": False},
        {"label": "C", "scored": False},
    ]
    assert s.refused("evaluation.submit_sheet", me, bid=B1, **sheet()) == "no_bid"
    [done] = s.ok("evaluation.submit_sheet", me, bid=labels[B1], **sheet())
    assert done.data["label"] == labels[B1] and "bidder" not in done.data
    assert s.view(me)["sheets"] == [
        {"expert": me.subject, "label": labels[B1], **sheet(), "total": None}
    ]
    assert s.view(SUPERVISOR)["sheets"][0]["bidder"] == B1, "the supervisor sees who is who"
    s = deviating(**config)
    assert all("bidder" not in f for f in s.state.flags)
    s.ok("evaluation.summarise", EXPERTS[0])
    locked, revealed, summarised = s.log[-3:]
    assert locked.name == "evaluation.scores_locked"
    assert revealed.data == {"labels": {label: b for b, label in sorted(labels.items())}}
    assert s.state.revealed and s.view(me)["to_score"][0]["bidder"] in (B1, B2, B3)
    assert summarised.data["record"]["sheets"][0]["bidder"] in (B1, B2, B3)


def test_the_first_labels_of_a_long_list() -> None:
    names = evaluation.labels([f"b{n}" for n in range(28)], "LOT-1", SEED)
    assert sorted(names.values(), key=lambda v: (len(v), v))[-3:] == ["Z", "AA", "AB"]


# the deviation check -----------------------------------------------------------------------


def test_every_sheet_in_raises_the_deviation_flags() -> None:
    s = deviating("10")
    assert s.state.phase == "deviations"
    [flag] = s.state.flags
    assert (flag["kind"], flag["bidder"], flag["expert"], flag["item"]) == (
        "abnormal",
        B1,
        MEMBERS[-1],
        "tech",
    )
    assert flag["evidence"]["threshold"] == "0.30"
    assert s.view(EXPERTS[0])["open_flags"] == [flag["key"]]


def test_flags_block_the_summary_until_explained_or_rescored() -> None:
    s = deviating("10")
    key = s.state.flags[0]["key"]
    outlier = EXPERTS[-1]
    assert s.refused("evaluation.summarise", EXPERTS[0]) == "flags_open"
    assert s.refused("evaluation.summarise", EXPERTS[1]) == "not_leader"
    assert s.refused("evaluation.explain", EXPERTS[0], flag=key, reason="r") == "not_your_flag"
    assert s.refused("evaluation.explain", outlier, flag="nope", reason="r") == "no_such_flag"
    [explained] = s.ok("evaluation.explain", outlier, flag=key, reason="技术方案缺少关键工序")
    assert act(explained) == {
        "flag": key,
        "expert": outlier.subject,
        "reason": "技术方案缺少关键工序",
    }
    assert s.refused("evaluation.explain", outlier, flag=key, reason="r") == "already_explained"
    assert s.state.open_flags() == []
    s.ok("evaluation.summarise", CHAIR)
    assert s.state.phase == "summary"

    again = deviating("10")
    assert again.refused("evaluation.rescore", EXPERTS[0], bid="uscc:x", **sheet()) == "no_bid"
    rescored, checked = again.ok("evaluation.rescore", outlier, bid=B1, **sheet(tech="28"))
    assert rescored.name == "evaluation.sheet_rescored" and checked.data == {"flags": []}
    again.ok("evaluation.summarise", EXPERTS[0])


def test_a_flag_that_stops_the_totals_needs_a_rescore() -> None:
    s = deviating("45")  # over the item's maximum of 40
    kinds = {f["kind"]: f for f in s.state.flags}
    assert "out_of_range" in kinds
    outlier = EXPERTS[-1]
    out = kinds["out_of_range"]["key"]
    assert s.refused("evaluation.explain", outlier, flag=out, reason="r") == "rescore_needed"
    s.ok("evaluation.rescore", outlier, bid=B1, **sheet(tech="29"))
    assert s.state.open_flags() == []


def test_an_explanation_lasts_while_its_flag_stands() -> None:
    s = deviating("10")
    key = s.state.flags[0]["key"]
    s.ok("evaluation.explain", EXPERTS[-1], flag=key, reason="理由")
    s.ok("evaluation.rescore", EXPERTS[0], bid=B2, **sheet(plan="16"))
    assert s.state.explanations == {key: "理由"}
    s.ok("evaluation.rescore", EXPERTS[-1], bid=B1, **sheet(tech="30"))
    assert s.state.flags == () and s.state.explanations == {}


# the summary -------------------------------------------------------------------------------


def test_the_summary_is_scorings_recomputable_computation() -> None:
    s = deviating()
    assert s.state.flags == ()
    s.ok("evaluation.summarise", EXPERTS[0])
    summary = s.state.summary
    assert summary is not None
    assert summary["computation"] == scoring.recompute(summary["record"]), "recomputable"
    computation = summary["computation"]
    assert [r["bidder"] for r in computation["ranking"]] == [B2, B1, B3]
    assert computation["recommended"] == [B2, B1]
    assert [t["total"] for t in computation["totals"]] == [
        "82.80",
        "83.00",
        "82.60",
    ]  # 53 + 29.80, 30.00, 29.60
    assert s.refused("evaluation.summarise", EXPERTS[0]) == "wrong_phase"


def test_the_record_carries_the_committee_so_a_member_who_never_scored_is_named() -> None:
    s = deviating()
    s.ok("evaluation.summarise", EXPERTS[0])
    assert s.state.summary is not None
    record = s.state.summary["record"]
    assert record["committee"] == [e.subject for e in EXPERTS] == list(s.state.members)
    absent = EXPERTS[1].subject  # their sheets dropped from the record, as an editor would
    edited = {**record, "sheets": [x for x in record["sheets"] if x["expert"] != absent]}
    with pytest.raises(ScoringError) as refused:
        scoring.recompute(edited)
    assert refused.value.code == "member_unscored" and absent in refused.value.message
    # without the roster the same sheets would recompute, one member short, unnoticed
    roster_less = {k: v for k, v in edited.items() if k != "committee"}
    assert scoring.recompute(roster_less)["items"]


def test_a_scoring_refusal_reaches_the_leader_with_its_code() -> None:
    s = deviating(k=None)
    assert s.refused("evaluation.summarise", EXPERTS[0]) == "k_required"


def with_bids(*prices: str | None) -> list[dict[str, Any]]:
    """CONFIG's bids B1, B2, B3 with these prices (None: the form could not be read)."""
    return [
        {**opened(b, "", "decrypted"), "price": p}
        for b, p in zip((B1, B2, B3), prices, strict=True)
    ]


def test_unpriced_and_zero_priced_bids_are_listed_and_never_block_the_summary() -> None:
    s = reviewing(bids=with_bids("98", "0.00", None))
    for e in EXPERTS:  # B3 (price null) fails the review, B2 (0.00) passes it
        s.ok("evaluation.submit_review", e, verdicts=verdicts({(B3, "licence"): "报价无法读取"}))
    assert s.state.passed == (B1, B2) and s.state.ranked == (B1,)
    for e in EXPERTS:  # B2 is scored too, by one expert out of range: no flag, never ranked
        s.ok("evaluation.submit_sheet", e, bid=B1, **sheet())
        s.ok("evaluation.submit_sheet", e, bid=B2, **sheet(tech="45" if e is EXPERTS[0] else "1"))
    assert s.state.phase == "deviations" and s.state.flags == ()
    s.ok("evaluation.summarise", EXPERTS[0])
    summary = s.state.summary
    assert summary is not None and summary["computation"] == scoring.recompute(summary["record"])
    lines = {x["bidder"]: x["status"] for x in summary["computation"]["price"]["lines"]}
    assert lines == {B1: "valid", B2: "unpriced", B3: "failed_review"}
    assert summary["computation"]["recommended"] == [B1]


def test_flags_on_sheets_of_bids_over_the_ceiling_do_not_hold_up_the_summary() -> None:
    params = {**PARAMS, "price": {**PARAMS["price"], "ceiling": "99"}}
    s = scoring_phase(params=params)
    assert s.state.ranked == (B1,)
    for e in EXPERTS:  # on B2 one out of range, on B3 one abnormal: neither is ranked
        s.ok("evaluation.submit_sheet", e, bid=B2, **sheet(tech="45" if e is EXPERTS[-1] else "30"))
        s.ok("evaluation.submit_sheet", e, bid=B3, **sheet(tech="1" if e is EXPERTS[0] else "30"))
        s.ok("evaluation.submit_sheet", e, bid=B1, **sheet())
    assert s.state.phase == "deviations" and s.state.flags == ()
    s.ok("evaluation.summarise", EXPERTS[0])
    computation = s.state.summary["computation"] if s.state.summary else None
    assert computation is not None and computation["flags"] == []
    lines = {x["bidder"]: x["status"] for x in computation["price"]["lines"]}
    assert lines == {B1: "valid", B2: "over_ceiling", B3: "over_ceiling"}


def test_no_valid_bid_ends_as_a_failed_tender_with_its_report() -> None:
    params = {**PARAMS, "price": {**PARAMS["price"], "ceiling": "90"}}
    s = reviewing(params=params, bids=with_bids("98", "0.00", None))
    for e in EXPERTS:
        s.ok("evaluation.submit_review", e, verdicts=verdicts())
    assert s.log[-1].name == "evaluation.summarised"
    assert s.state.phase == "summary" and s.state.summary is not None
    assert s.state.summary["reason"] == "no_valid_bid"
    assert s.state.summary["computation"] is None
    s.ok("evaluation.issue_report", SYSTEM, digest=DIGEST, pages=2)  # the failed tender's report
    replayed = evaluation.initial(s.config)
    for event in roundtrip(s.log):
        replayed = evaluation.apply(replayed, event)
    assert replayed.phase == "signing" and replayed.summary == s.state.summary


# faults ------------------------------------------------------------------------------------


def test_the_chair_suspends_and_resumes_and_the_phase_comes_back() -> None:
    s = electing()
    at = T0 + timedelta(hours=1)
    assert s.refused("evaluation.suspend", EXPERTS[0], at, reason="x") == "not_allowed"
    s.ok("evaluation.suspend", CHAIR, at, reason="副场网络中断")
    assert s.state.phase == "suspended"
    assert s.refused("evaluation.vote", EXPERTS[0], at, candidate=MEMBERS[0], round=1) == (
        "wrong_phase"
    )
    assert s.refused("evaluation.seal", CHAIR, at + timedelta(hours=1), reason="x") == (
        "within_limit"
    )
    [resumed] = s.ok("evaluation.resume", CHAIR, at + timedelta(hours=4), reason="已恢复")
    assert resumed.data["clocks"]["status"] == "ok", "fixed at exactly 4 hours is within it"
    assert s.state.phase == "electing"
    assert s.view(SUPERVISOR)["suspensions"][0]["end"] == (at + timedelta(hours=4)).isoformat()


def test_past_four_hours_the_session_may_only_be_sealed() -> None:
    s = scoring_phase()
    at = T0 + timedelta(hours=1)
    s.ok("evaluation.suspend", CHAIR, at, reason="主场停电")
    late = at + timedelta(hours=4, minutes=1)
    assert s.refused("evaluation.resume", CHAIR, late, reason="x") == "limit_exceeded"
    [sealed] = s.ok("evaluation.seal", SYSTEM, late, reason="故障超过4小时")
    assert sealed.data["clocks"]["status"] == "must_seal_and_reform"
    assert s.state.phase == "sealed" and s.state.reviews, "the work is kept, closed"
    assert s.refused("evaluation.resume", CHAIR, late, reason="x") == "wrong_phase"


def test_past_two_hours_before_the_start_the_tenderee_decides() -> None:
    s = Session()
    s.ok("evaluation.suspend", CHAIR, T0 - timedelta(minutes=10), reason="专家未到")
    [resumed] = s.ok("evaluation.resume", CHAIR, T0 + timedelta(hours=3), reason="招标人决定继续")
    assert resumed.data["clocks"]["status"] == "tenderee_decides"
    assert s.state.phase == "forming"


def test_without_a_scheduled_start_there_is_no_clock() -> None:
    assert Session(starts_at=None).refused("evaluation.suspend", CHAIR, reason="x") == (
        "no_schedule"
    )


# clarification (澄清) ----------------------------------------------------------------------

BIDDER2 = Actor(B2, "投标人2", "bidder")
SIGNED: dict[str, str] = {"signature": "c2lnbmF0dXJl" * 2, "certificate": "Y2VydGlmaWNhdGU=" * 2}
DEADLINE = T0 + timedelta(hours=1)


def ask(s: Session, bidder: str = B1, text: str = "请说明报价中的暂估价构成", **kw: Any) -> Event:
    """The leader drafts a question, the supervisor approves it: the approval."""
    deadline = kw.pop("deadline", DEADLINE).isoformat()
    *_, drafted = s.ok(
        "evaluation.draft_question", EXPERTS[0], bidder=bidder, text=text, deadline=deadline
    )
    [approved] = s.ok("evaluation.approve_question", SUPERVISOR, question=drafted.data["question"])
    return approved


def answer(s: Session, who: Actor, question: str, at: datetime | None = None, **kw: Any) -> Any:
    args = {"question": question, "text": "暂估价按招标文件第5章计列", **SIGNED, **kw}
    return s.run("evaluation.answer_question", who, at, **args)


def test_the_leader_drafts_and_the_supervisor_approves_a_question() -> None:
    s = scoring_phase()
    leader, other = EXPERTS[0], EXPERTS[1]
    later = DEADLINE.isoformat()
    draft = "evaluation.draft_question"
    assert s.refused(draft, other, bidder=B1, text="q", deadline=later) == "not_leader"
    assert s.refused(draft, SUPERVISOR, bidder=B1, text="q", deadline=later) == "not_allowed"
    assert s.refused(draft, BIDDER, bidder=B1, text="q", deadline=later) == "not_allowed"
    assert s.refused(draft, leader, bidder="uscc:x", text="q", deadline=later) == "no_bid"
    past = (T0 - timedelta(minutes=1)).isoformat()
    assert s.refused(draft, leader, bidder=B1, text="q", deadline=past) == "deadline_invalid"
    naive = "2026-12-01T12:00:00"
    assert s.refused(draft, leader, bidder=B1, text="q", deadline=naive) == "deadline_invalid"
    assert s.refused(draft, leader, bidder=B1, text="q", deadline="soon") == "deadline_invalid"
    assert deviating().refused(draft, leader, bidder=B1, text="q", deadline=later) == (
        "wrong_phase"
    )
    assert elected().refused(draft, CHAIR, bidder=B1, text="q", deadline=later) == "wrong_phase"
    opened, drafted = s.ok(draft, leader, bidder=B1, text="请说明工期", deadline=later)
    assert opened.data == {"from": "scoring"} and s.state.phase == "clarifying"
    assert drafted.data == {
        "question": "Q1",
        "bidder": B1,
        "text": "请说明工期",
        "deadline": later,
        "drafted_by": leader.subject,
    }
    assert not evaluation.visible(s.state, drafted, BIDDER), "a draft never reaches the bidder"
    assert s.view(BIDDER)["clarifications"] == [] and s.view(BIDDER)["actions"] == []
    assert answer(s, BIDDER, "Q1").code == "no_such_question", "an unapproved question is none"
    assert s.refused("evaluation.submit_sheet", leader, bid=B1, **sheet()) == "wrong_phase"
    approve = "evaluation.approve_question"
    assert s.refused(approve, leader, question="Q1") == "not_allowed"
    assert s.refused(approve, CHAIR, question="Q1") == "not_allowed"
    assert s.refused(approve, SUPERVISOR, question="Q9") == "no_such_question"
    [approved] = s.ok(approve, SUPERVISOR, question="Q1")
    assert approved.data == {
        "question": "Q1",
        "text": "请说明工期",
        "deadline": later,
        "supervisor": SUPERVISOR.subject,
    }
    # The event names the supervisor: the bidder learns of the question by a fresh snapshot.
    assert not evaluation.visible(s.state, approved, BIDDER)
    assert "evaluation.question_approved" in evaluation.REVEALS
    assert not evaluation.visible(s.state, approved, BIDDER2), "another bidder sees nothing"
    assert not evaluation.visible(s.state, drafted, BIDDER2)
    assert s.view(BIDDER)["clarifications"] == [
        {
            "question": "Q1",
            "text": "请说明工期",
            "deadline": later,
            "status": "approved",
            "answer": None,
        }
    ], "the bidder sees neither who drafted it nor anything else"
    assert s.view(BIDDER)["actions"] == ["evaluation.answer_question"]
    assert s.view(BIDDER2)["clarifications"] == [] and s.view(BIDDER2)["actions"] == []
    assert s.refused(approve, SUPERVISOR, question="Q1") == "not_a_draft"
    assert s.view(other)["clarifications"][0]["drafted_by"] == leader.subject


def test_a_rejected_question_never_reaches_the_bidder() -> None:
    s = scoring_phase()
    s.ok("evaluation.draft_question", CHAIR, bidder=B1, text="问题", deadline=DEADLINE.isoformat())
    reject = "evaluation.reject_question"
    assert s.refused(reject, SUPERVISOR, question="Q1", reason="  ") == "reason_needed"
    assert s.refused(reject, EXPERTS[0], question="Q1", reason="r") == "not_allowed"
    [rejected] = s.ok(reject, SUPERVISOR, question="Q1", reason="涉及实质性内容变更")
    assert rejected.data["reason"] == "涉及实质性内容变更"
    assert not evaluation.visible(s.state, rejected, BIDDER)
    assert s.view(BIDDER)["clarifications"] == []
    assert answer(s, BIDDER, "Q1").code == "no_such_question"
    assert s.refused("evaluation.approve_question", SUPERVISOR, question="Q1") == "not_a_draft"
    assert s.view(SUPERVISOR)["clarifications"][0]["rejection"] == "涉及实质性内容变更"
    soon = T0 + timedelta(minutes=5)
    s.ok("evaluation.draft_question", EXPERTS[0], bidder=B1, text="问题", deadline=soon.isoformat())
    assert s.refused("evaluation.approve_question", SUPERVISOR, soon, question="Q2") == (
        "deadline_passed"
    )


def test_the_bidder_answers_signed_before_the_deadline() -> None:
    s = scoring_phase()
    ask(s, B1)
    ask(s, B2, deadline=T0 + timedelta(hours=2))
    assert answer(s, BIDDER2, "Q1").code == "not_your_question"
    assert answer(s, EXPERTS[0], "Q1").code == "not_allowed"
    assert answer(s, BIDDER, "Q1", DEADLINE).code == "answer_late", "at the deadline is late"
    assert answer(s, BIDDER, "Q1", signature="").code == "unsigned"
    [answered] = answer(s, BIDDER, "Q1", T0 + timedelta(minutes=30))
    assert answered.data == {
        "question": "Q1",
        "text": "暂估价按招标文件第5章计列",
        "at": (T0 + timedelta(minutes=30)).isoformat(),
        **SIGNED,
    }
    assert answer(s, BIDDER, "Q1").code == "already_answered"
    assert not evaluation.visible(s.state, answered, BIDDER), "their snapshot shows it"
    assert not evaluation.visible(s.state, answered, BIDDER2)
    assert evaluation.visible(s.state, answered, EXPERTS[1])
    assert evaluation.visible(s.state, answered, SUPERVISOR)
    mine = s.view(BIDDER)["clarifications"]
    assert [(q["question"], q["status"]) for q in mine] == [("Q1", "answered")]
    assert mine[0]["answer"] == {"text": "暂估价按招标文件第5章计列", "at": answered.data["at"]}
    assert s.view(EXPERTS[2])["clarifications"][0]["answer"]["signature"] == SIGNED["signature"]
    close = "evaluation.close_clarification"
    assert s.refused(close, EXPERTS[1]) == "not_leader"
    assert s.refused(close, SUPERVISOR) == "not_allowed"
    assert s.refused(close, EXPERTS[0], DEADLINE) == "answers_pending", "B2 may still answer"
    [closed] = s.ok(close, EXPERTS[0], T0 + timedelta(hours=2))
    assert closed.data == {"to": "scoring", "closed": [{"question": "Q2", "status": "unanswered"}]}
    assert s.state.phase == "scoring" and s.state.clarify_from is None
    assert not evaluation.visible(s.state, closed, BIDDER)
    assert [q["status"] for q in s.view(BIDDER2)["clarifications"]] == ["unanswered"]
    assert answer(s, BIDDER2, "Q2").code == "wrong_phase"
    ask(s, B3, deadline=T0 + timedelta(hours=3))  # a second clarification
    assert s.state.phase == "clarifying" and s.state.clarify_from == "scoring"
    assert answer(s, BIDDER2, "Q2").code == "question_closed"
    assert [q["question"] for q in s.view(SUPERVISOR)["clarifications"]] == ["Q1", "Q2", "Q3"]


def test_a_clarification_from_the_preliminary_review_returns_there() -> None:
    s = reviewing()
    s.ok("evaluation.submit_review", EXPERTS[1], verdicts=verdicts())
    deadline = DEADLINE.isoformat()
    opened, _ = s.ok("evaluation.draft_question", CHAIR, bidder=B2, text="q", deadline=deadline)
    assert opened.data == {"from": "preliminary"}
    [again] = s.ok("evaluation.draft_question", CHAIR, bidder=B3, text="q2", deadline=deadline)
    assert again.data["question"] == "Q2", "one clarification, two questions"
    assert s.refused("evaluation.submit_review", EXPERTS[0], verdicts=verdicts()) == "wrong_phase"
    [closed] = s.ok("evaluation.close_clarification", EXPERTS[0])
    assert closed.data["closed"] == [
        {"question": "Q1", "status": "withdrawn"},
        {"question": "Q2", "status": "withdrawn"},
    ], "drafts never approved are withdrawn"
    assert s.state.phase == "preliminary"
    for e in EXPERTS[:1] + EXPERTS[2:]:
        s.ok("evaluation.submit_review", e, verdicts=verdicts())
    assert s.state.phase == "scoring"


def test_an_anonymous_part_asks_by_label_and_hides_the_answers_signer() -> None:
    s = scoring_phase(anonymous=True, label_seed=SEED.hex())
    label = s.state.spec.labels[B1]
    deadline = DEADLINE.isoformat()
    draft = "evaluation.draft_question"
    assert s.refused(draft, EXPERTS[0], bidder=B1, text="q", deadline=deadline) == "no_bid"
    _, drafted = s.ok(draft, EXPERTS[0], bidder=label, text="q", deadline=deadline)
    assert drafted.data["label"] == label and "bidder" not in drafted.data
    assert s.state.questions[0].bidder == B1
    s.ok("evaluation.approve_question", SUPERVISOR, question="Q1")
    assert "label" not in s.view(BIDDER)["clarifications"][0], "the bidder never learns its label"
    [answered] = answer(s, BIDDER, "Q1")
    assert not evaluation.visible(s.state, answered, EXPERTS[1]), "its signer names the bidder"
    assert "evaluation.question_answered" in evaluation.REVEALS
    seen = s.view(EXPERTS[1])["clarifications"][0]
    assert seen["label"] == label and "bidder" not in seen
    assert seen["answer"] == {"text": "暂估价按招标文件第5章计列", "at": T0.isoformat()}
    shown = s.view(SUPERVISOR)["clarifications"][0]
    assert shown["bidder"] == B1 and shown["answer"]["certificate"] == SIGNED["certificate"]


# signing the report ------------------------------------------------------------------------

DIGEST = "ab" * 32
STAMPED: dict[str, str] = {**SIGNED, "timestamp": "dGltZXN0YW1wdG9rZW4=" * 2}


def stamped(s: Session) -> dict[str, str]:
    """A signature over the report's latest revision, making the next one."""
    assert s.state.report is not None
    revision = len(s.state.report.signatures) + 1
    return {**STAMPED, "base": s.state.report.current, "document": f"{revision:064x}"}


def summarised(**config: Any) -> Session:
    s = deviating(**config)
    s.ok("evaluation.summarise", EXPERTS[0])
    return s


def issued(**config: Any) -> Session:
    s = summarised(**config)
    s.ok("evaluation.issue_report", SYSTEM, digest=DIGEST, pages=12)
    return s


def test_the_report_is_issued_after_the_summary() -> None:
    assert deviating().refused("evaluation.issue_report", SYSTEM, digest=DIGEST, pages=1) == (
        "wrong_phase"
    )
    s = summarised()
    assert s.refused("evaluation.issue_report", EXPERTS[1], digest=DIGEST, pages=1) == (
        "not_leader"
    )
    assert s.refused("evaluation.issue_report", SUPERVISOR, digest=DIGEST, pages=1) == (
        "not_allowed"
    )
    assert s.refused("evaluation.sign_report", EXPERTS[0], **STAMPED) == "wrong_phase"
    [report] = s.ok("evaluation.issue_report", SYSTEM, digest=DIGEST, pages=12)
    assert report.data == {
        "digest": DIGEST,
        "pages": 12,
        "at": T0.isoformat(),
        "sign_until": (T0 + timedelta(minutes=60)).isoformat(),
    }
    assert s.state.phase == "signing"
    assert s.view(EXPERTS[1])["report"]["sign_until"] == report.data["sign_until"]
    assert s.view(EXPERTS[0])["allowed"] == ["evaluation.refuse_signing"]
    assert s.view(EXPERTS[0])["actions"] == ["evaluation.sign_report"]
    s30 = summarised(signing_minutes=30)
    [short] = s30.ok("evaluation.issue_report", EXPERTS[0], digest=DIGEST, pages=12)
    assert short.data["sign_until"] == (T0 + timedelta(minutes=30)).isoformat()


def test_each_member_signs_or_refuses_in_writing_and_the_last_closes_the_signing() -> None:
    s = issued()
    sign, refuse = "evaluation.sign_report", "evaluation.refuse_signing"
    assert s.refused(sign, STRANGER, **STAMPED) == "not_a_member"
    assert s.refused(sign, CHAIR, **STAMPED) == "not_allowed"
    assert s.refused(sign, EXPERTS[0], **{**STAMPED, "timestamp": ""}) == "unsigned"
    assert s.refused(refuse, EXPERTS[1], reason="   ") == "reason_needed"
    assert s.refused(sign, EXPERTS[0], **{**stamped(s), "base": "cd" * 32}) == "report_moved"
    first = stamped(s)
    [signed] = s.ok(sign, EXPERTS[0], **first)
    assert signed.data == {"expert": MEMBERS[0], "digest": DIGEST, "at": T0.isoformat(), **first}
    assert s.state.report is not None and s.state.report.current == first["document"]
    assert s.refused(sign, EXPERTS[0], **STAMPED) == "already_signed"
    assert s.refused(refuse, EXPERTS[0], reason="r") == "already_signed"
    [refused] = s.ok(refuse, EXPERTS[1], reason="对第2名的技术评分有不同意见")
    assert refused.data["reason"] == "对第2名的技术评分有不同意见"
    assert s.refused(sign, EXPERTS[1], **STAMPED) == "already_signed"
    for e in EXPERTS[2:4]:
        s.ok(sign, e, **stamped(s))
    assert s.state.phase == "signing"
    last, closed = s.ok(sign, EXPERTS[4], **stamped(s))
    assert (last.name, closed.name) == ("evaluation.report_signed", "evaluation.signing_closed")
    assert closed.data == {
        "at": T0.isoformat(),
        "signed": [MEMBERS[0], *MEMBERS[2:]],
        "dissent": [{"expert": MEMBERS[1], "reason": "对第2名的技术评分有不同意见"}],
        "deemed": [],
    }
    assert s.state.phase == "signed"
    assert s.refused("evaluation.close_signing", SYSTEM) == "wrong_phase"
    assert s.view(SUPERVISOR)["report"]["closed"]["dissent"][0]["expert"] == MEMBERS[1]
    assert not any(evaluation.visible(s.state, e, BIDDER) for e in s.log)


def test_silence_at_the_signing_deadline_counts_as_consent() -> None:
    s = issued()
    deadline = T0 + timedelta(minutes=60)
    s.ok("evaluation.sign_report", EXPERTS[0], **stamped(s))
    s.ok("evaluation.refuse_signing", EXPERTS[1], reason="理由")
    assert s.refused("evaluation.close_signing", CHAIR, deadline) == "not_allowed"
    early = deadline - timedelta(seconds=1)
    assert s.refused("evaluation.close_signing", SYSTEM, early) == "signing_open"
    assert s.refused("evaluation.sign_report", EXPERTS[2], deadline, **STAMPED) == (
        "deadline_passed"
    )
    assert s.refused("evaluation.refuse_signing", EXPERTS[2], deadline, reason="r") == (
        "deadline_passed"
    )
    [closed] = s.ok("evaluation.close_signing", SYSTEM, deadline)
    assert closed.data["signed"] == [MEMBERS[0]]
    assert closed.data["dissent"] == [{"expert": MEMBERS[1], "reason": "理由"}]
    assert closed.data["deemed"] == MEMBERS[2:], "no written refusal: consent"
    assert s.state.phase == "signed"


# who sees what, the edge, the replay -------------------------------------------------------


def test_bidders_see_nothing_of_the_evaluation_but_their_clarification() -> None:
    s = deviating()
    assert evaluation.may_join(s.state, BIDDER) is None, "a bidder joins for clarifications"
    assert evaluation.may_join(s.state, EXPERTS[0]) is None
    public = Actor("pub", "公众", "public")
    assert evaluation.may_join(s.state, public) is not None
    assert not any(evaluation.visible(s.state, e, BIDDER) for e in s.log)
    view = evaluation.snapshot(s.state, BIDDER)
    assert view["allowed"] == [] and view["actions"] == [] and view["clarifications"] == []
    assert "sheets" not in view and "seats" not in view and "summary" not in view
    room = evaluation.room_type()
    assert room.may_join(room.initial(CONFIG), BIDDER) is None
    assert room.may_join(room.initial({**CONFIG, "roles": ["chair", "expert"]}), BIDDER)


def test_the_client_and_shell_commands_are_split() -> None:
    client, shell = set(evaluation.ARGUMENTS), set(evaluation.SHELL_ARGUMENTS)
    assert not client & shell
    assert client | shell == set(evaluation.RULES.all_commands())
    room = evaluation.room_type()
    assert not shell & set(room.arguments), "the WebSocket edge never takes a shell command"
    assert client <= set(room.arguments)
    assert evaluation.snapshot(scoring_phase().state, EXPERTS[0])["allowed"] == [
        "evaluation.draft_question",
        "evaluation.submit_sheet",
    ]
    assert drawn().view(EXPERTS[0])["actions"] == ["evaluation.sign_in"]


def test_every_experts_act_is_refused_unsigned_and_nothing_is_recorded() -> None:
    """A session token alone (the operator can mint one) makes no act of an expert's: each is
    refused ``signature_required`` before anything else is decided, and nothing is recorded."""

    def refused_unsigned(s: Session, name: str, actor: Actor, **args: Any) -> None:
        before = (len(s.log), s.state)
        for missing in (UNSIGNED, {"signature": "c2lnbmF0dXJlIG9ubHk=", "certificate": None}):
            assert s.refused(name, actor, **args, **missing) == "signature_required", name
        assert (len(s.log), s.state) == before, f"{name}: nothing recorded"
        [done, *_] = s.ok(name, actor, **args)
        assert done.name in evaluation.SIGNED_EVENTS
        assert done.data["signed"]["action"] == name

    s = seated()
    s.ok("evaluation.open_declarations", CHAIR)
    for e in EXPERTS:
        refused_unsigned(s, "evaluation.declare", e, declaration="none")
    refused_unsigned(s, "evaluation.vote", EXPERTS[0], candidate=MEMBERS[0], round=1)
    s = reviewing()
    refused_unsigned(s, "evaluation.submit_review", EXPERTS[0], verdicts=verdicts())
    s = deviating("10")
    outlier, key = EXPERTS[-1], s.state.flags[0]["key"]
    refused_unsigned(s, "evaluation.explain", outlier, flag=key, reason="理由")
    refused_unsigned(s, "evaluation.rescore", outlier, bid=B1, **sheet(tech="30"))
    s = scoring_phase()
    refused_unsigned(s, "evaluation.submit_sheet", EXPERTS[0], bid=B1, **sheet())
    s = summarised()
    refused_unsigned(s, "evaluation.dissent", EXPERTS[1], reason="保留意见")
    s.ok("evaluation.issue_report", SYSTEM, digest=DIGEST, pages=12)
    refused_unsigned(s, "evaluation.refuse_signing", EXPERTS[1], reason="不同意排名")
    assert set(evaluation.SIGNED) == {
        "evaluation.declare",
        "evaluation.vote",
        "evaluation.submit_review",
        "evaluation.submit_sheet",
        "evaluation.rescore",
        "evaluation.explain",
        "evaluation.dissent",
        "evaluation.refuse_signing",
    }


def test_a_recorded_signature_is_never_taken_again() -> None:
    """The operator holds the log: replaying an expert's earlier signed re-score (or dissent)
    would put back what they have since changed. Each signature is taken once per room."""
    s = deviating("10")
    outlier = EXPERTS[-1]
    [first, _] = s.ok("evaluation.rescore", outlier, bid=B1, **sheet(tech="12"))
    s.ok("evaluation.rescore", outlier, bid=B1, **sheet(tech="30"))
    assert s.state.flags == ()
    replayed = {k: first.data[k] for k in ("signature", "certificate")}
    rescore = sheet(tech="12")
    assert s.refused("evaluation.rescore", outlier, bid=B1, **rescore, **replayed) == (
        "signature_reused"
    )
    assert s.state.sheets[(outlier.subject, B1)]["scores"]["tech"] == "30"
    s.ok("evaluation.summarise", EXPERTS[0])
    [said] = s.ok("evaluation.dissent", EXPERTS[1], reason="甲")
    s.ok("evaluation.dissent", EXPERTS[1], reason="乙")
    again = {k: said.data[k] for k in ("signature", "certificate")}
    assert s.refused("evaluation.dissent", EXPERTS[1], reason="甲", **again) == "signature_reused"
    assert s.state.dissents[EXPERTS[1].subject] == "乙"
    replayed_state = evaluation.initial(s.config)
    for event in roundtrip(s.log):
        replayed_state = evaluation.apply(replayed_state, event)
    assert replayed_state.signatures == s.state.signatures, "the log alone gives them back"


def roundtrip(events: list[Event]) -> list[Event]:
    """The events as the store gives them back: data through JSON."""
    return [Event(e.name, json.loads(json.dumps(e.data)), e.seq, e.at, e.actor) for e in events]


@pytest.mark.parametrize("anonymous", [False, True])
def test_a_whole_evaluation_replays_from_its_log(anonymous: bool) -> None:
    config: dict[str, Any] = {"anonymous": anonymous, "label_seed": SEED.hex()}
    s = seated(**config)
    s.ok("evaluation.open_declarations", CHAIR)
    s.ok("evaluation.declare", EXPERTS[1], declaration="conflict", bidders=[B2], reason="亲属")
    for e in EXPERTS[:1] + EXPERTS[2:]:
        s.ok("evaluation.declare", e, declaration="none")
    replaced = c.replace_seat(DRAW, 2, SEED2)
    s.ok("evaluation.record_replacement", CHAIR, draw=replaced.to_json())
    newcomer = replaced.sealed_view()[1]
    sign_in(s, newcomer)
    s.ok("evaluation.declare", seated_actor(newcomer), declaration="none")
    experts = [seated_actor(seat) for seat in replaced.sealed_view()]
    for n, e in enumerate(experts[:4]):
        s.ok("evaluation.vote", e, candidate=experts[n % 2].subject, round=1)
    s.ok("evaluation.close_round", CHAIR)
    s.ok("evaluation.revote", CHAIR)
    for e in experts:
        s.ok("evaluation.vote", e, candidate=experts[0].subject, round=2)
    s.ok("evaluation.precheck", SYSTEM, lot=PRECHECK_LOT, bids=PRECHECK_BIDS)
    s.ok("evaluation.suspend", CHAIR, T0 + timedelta(hours=1), reason="网络")
    s.ok("evaluation.resume", CHAIR, T0 + timedelta(hours=2), reason="恢复")
    s.ok("evaluation.start_preliminary", CHAIR)
    for e in experts:
        s.ok("evaluation.submit_review", e, verdicts=verdicts({(B3, "licence"): "过期"}))
    deadline = (T0 + timedelta(hours=3)).isoformat()
    q = "evaluation.draft_question"
    s.ok(q, experts[0], bidder=bid_name(s, B1), text="请澄清", deadline=deadline)
    s.ok(q, experts[0], bidder=bid_name(s, B2), text="请澄清", deadline=deadline)
    s.ok(q, experts[0], bidder=bid_name(s, B2), text="再问", deadline=deadline)
    s.ok("evaluation.approve_question", SUPERVISOR, question="Q1")
    s.ok("evaluation.approve_question", SUPERVISOR, question="Q2")
    s.ok("evaluation.reject_question", SUPERVISOR, question="Q3", reason="重复")
    answer(s, BIDDER, "Q1", T0 + timedelta(hours=2))
    s.ok("evaluation.close_clarification", experts[0], T0 + timedelta(hours=3))
    assert [q.status for q in s.state.questions] == ["answered", "unanswered", "rejected"]
    for e in experts:
        for b in (B1, B2):
            tech = "10" if e is experts[-1] and b == B1 else "30"
            s.ok("evaluation.submit_sheet", e, bid=bid_name(s, b), **sheet(tech=tech))
    [flag] = s.state.flags
    s.ok("evaluation.explain", experts[-1], flag=flag["key"], reason="理由")
    s.ok("evaluation.summarise", experts[0])
    assert s.state.phase == "summary" and s.state.leader == experts[0].subject
    s.ok("evaluation.issue_report", SYSTEM, digest=DIGEST, pages=30)
    s.ok("evaluation.sign_report", experts[0], **stamped(s))
    s.ok("evaluation.refuse_signing", experts[1], reason="不同意")
    s.ok("evaluation.close_signing", SYSTEM, T0 + timedelta(hours=2))
    assert s.state.phase == "signed" and s.state.report is not None
    assert s.state.report.closed is not None and len(s.state.report.closed["deemed"]) == 3
    json.dumps(s.view(SUPERVISOR), ensure_ascii=False)  # a page renders it as it is
    json.dumps(s.view(BIDDER), ensure_ascii=False)
    replayed = evaluation.initial(s.config)
    for event in roundtrip(s.log):
        replayed = evaluation.apply(replayed, event)
    assert replayed == s.state, "the log alone rebuilds the room"


def test_a_member_records_a_dissent_on_the_summary_before_the_report() -> None:
    s = deviating()
    assert s.refused("evaluation.dissent", EXPERTS[1], reason="意见") == "wrong_phase"
    s.ok("evaluation.summarise", EXPERTS[0])
    assert s.refused("evaluation.dissent", STRANGER, reason="意见") == "not_a_member"
    assert s.refused("evaluation.dissent", CHAIR, reason="意见") == "not_allowed"
    assert s.refused("evaluation.dissent", EXPERTS[1], reason="  ") == "reason_needed"
    s.ok("evaluation.dissent", EXPERTS[1], reason="初稿")
    s.ok("evaluation.dissent", EXPERTS[1], reason="对第一名的技术评分有保留意见")
    assert s.view(SUPERVISOR)["dissents"] == {MEMBERS[1]: "对第一名的技术评分有保留意见"}
    s.ok("evaluation.issue_report", SYSTEM, digest=DIGEST, pages=3)
    assert s.refused("evaluation.dissent", EXPERTS[1], reason="迟") == "wrong_phase"


def test_the_open_round_shows_who_voted_and_only_ones_own_choice() -> None:
    s = electing()
    s.ok("evaluation.vote", EXPERTS[0], candidate=MEMBERS[1], round=1)
    mine = s.view(EXPERTS[0])["election"]["current"]
    theirs = s.view(EXPERTS[1])["election"]["current"]
    assert mine["voted"] == theirs["voted"] == [MEMBERS[0]]
    assert (mine["mine"], theirs["mine"]) == (MEMBERS[1], None)
    assert mine["round"] == 1 and set(mine["candidates"]) == set(MEMBERS)


def test_an_expert_off_the_committee_sees_the_seats_and_nothing_of_its_work() -> None:
    s = summarised()
    gone = STRANGER  # never drawn; the same holds for one who left after a conflict
    view = s.view(gone)
    assert view["phase"] == "summary" and view["me_seated"] is False
    assert all(seat["expert"] is None and seat["name"] == "" for seat in view["seats"])
    assert view["summary"] is None and view["sheets"] == [] and view["flags"] == []
    assert view["bidders"] == [] and view["precheck"] is None and view["election"] is None
    assert not any(evaluation.visible(s.state, e, gone) for e in s.log)
    assert s.view(EXPERTS[0])["summary"] is not None, "a member sees the summary"


def test_a_ballot_is_secret_until_its_round_closes_and_only_the_sessions_bidders_join() -> None:
    s = electing()
    [voted] = s.ok("evaluation.vote", EXPERTS[0], candidate=MEMBERS[1], round=1)
    assert evaluation.visible(s.state, voted, EXPERTS[0])
    assert not evaluation.visible(s.state, voted, EXPERTS[1])
    assert evaluation.visible(s.state, voted, SUPERVISOR)
    outsider = Actor("uscc:b9", "别的投标人", "bidder")
    assert evaluation.may_join(s.state, outsider) == Rejected(
        "not_allowed", "this evaluation is not of a bid of yours", {}
    )


def test_a_fault_while_signing_gives_the_time_to_sign_back() -> None:
    s = issued()
    deadline = T0 + timedelta(minutes=60)
    s.ok("evaluation.sign_report", EXPERTS[0], **stamped(s))
    s.ok("evaluation.suspend", CHAIR, T0 + timedelta(minutes=50), reason="时间戳服务中断")
    assert s.refused(
        "evaluation.sign_report", EXPERTS[1], T0 + timedelta(minutes=55), **stamped(s)
    ) == ("wrong_phase")
    [resumed] = s.ok("evaluation.resume", CHAIR, T0 + timedelta(minutes=80), reason="已恢复")
    assert resumed.data["sign_until"] == (deadline + timedelta(minutes=30)).isoformat()
    assert s.state.phase == "signing"
    assert s.refused("evaluation.close_signing", SYSTEM, deadline + timedelta(minutes=29)) == (
        "signing_open"
    )
    s.ok("evaluation.sign_report", EXPERTS[1], deadline + timedelta(minutes=20), **stamped(s))
