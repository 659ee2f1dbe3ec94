"""The committee core, pure: the draw, sealed seats, replacement, the leader election, fault
clocks."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from bidroom import committee as c
from bidroom.audit import canonical
from bidroom.errors import CommitteeError

SEED = bytes(range(32))
SEED2 = bytes(range(32, 64))
TODAY = date(2026, 12, 1)
SPECIALTY = "A080101"  # 房屋建筑


def expert(n: int, city: str, **changes: Any) -> c.Expert:
    base = c.Expert(
        id=f"e{n:02d}",
        name=f"专家{n}",
        specialties=frozenset({SPECIALTY}),
        organisation=f"org{n}",
        city=city,
    )
    return dataclasses.replace(base, **changes)


# Eligible: e01-e08 (舟山, 杭州, 宁波 mixed); e09-e14 each excluded by one rule.
POOL = [
    *(expert(n, "舟山") for n in (1, 2, 3)),
    *(expert(n, "杭州") for n in (4, 5, 6)),
    *(expert(n, "宁波") for n in (7, 8)),
    expert(9, "杭州", specialties=frozenset({"C05"})),
    expert(10, "杭州", organisation="tenderer"),
    expert(11, "宁波", organisation="bidder-b"),
    expert(12, "杭州", avoids=frozenset({"bidder-a"})),
    expert(13, "杭州", history=(c.PastDraw("tenderer", TODAY - timedelta(days=10)),)),
    expert(14, "舟山", specialties=frozenset({"B01", SPECIALTY}), organisation="bidder-a"),
]
ELIGIBLE = [f"e{n:02d}" for n in range(1, 9)]
REQUEST = c.Request(
    lot="LOT-1",
    seats=(
        c.Seats("主场·舟山", 3),
        c.Seats("副场·杭州", 1, frozenset({"杭州"})),
        c.Seats("副场·宁波", 1, frozenset({"宁波"})),
    ),
    specialties=frozenset({SPECIALTY}),
    tenderer="tenderer",
    bidders=frozenset({"bidder-a", "bidder-b", "bidder-c"}),
    on=TODAY,
    rest_days=30,
)


def code_of(call: Callable[[], object]) -> str:
    with pytest.raises(CommitteeError) as info:
        call()
    return info.value.code


def committee(d: c.Draw) -> list[tuple[int, str, str]]:
    return [(p.seat, p.venue, p.expert) for p in d.seats()]


# eligibility ---------------------------------------------------------------------------------


def test_each_eligibility_rule_names_its_reason() -> None:
    reasons = {e.id: c.ineligible(e, REQUEST) for e in POOL}
    assert reasons == {
        **dict.fromkeys(ELIGIBLE),
        "e09": "specialty",
        "e10": "tenderer_staff",
        "e11": "bidder_staff",
        "e12": "declared_avoidance",
        "e13": "rest_period",
        "e14": "bidder_staff",
    }
    assert [e.id for e in c.eligible(reversed(POOL), REQUEST)] == ELIGIBLE, "ordered by id"


def test_one_specialty_of_the_lot_is_enough() -> None:
    wide = dataclasses.replace(REQUEST, specialties=frozenset({"B01", "C05"}))
    assert c.ineligible(POOL[8], wide) is None
    assert c.ineligible(POOL[0], wide) == "specialty"


def test_local_experts_are_excluded_only_when_the_rule_says_so() -> None:
    local = dataclasses.replace(REQUEST, local_city="舟山")
    assert c.ineligible(POOL[0], REQUEST) is None
    assert c.ineligible(POOL[0], local) == "local_city"
    assert c.ineligible(POOL[3], local) is None


def test_the_rest_period_counts_whole_days_and_only_for_the_same_tenderer() -> None:
    def drawn(days_ago: int, tenderer: str = "tenderer") -> c.Expert:
        return expert(20, "杭州", history=(c.PastDraw(tenderer, TODAY - timedelta(days_ago)),))

    assert c.ineligible(drawn(0), REQUEST) == "rest_period"
    assert c.ineligible(drawn(29), REQUEST) == "rest_period"
    assert c.ineligible(drawn(30), REQUEST) is None, "30 days later the expert may sit again"
    assert c.ineligible(drawn(5, "another"), REQUEST) is None
    assert c.ineligible(drawn(5), dataclasses.replace(REQUEST, rest_days=None)) is None


# the draw ------------------------------------------------------------------------------------


def test_the_draw_fills_each_venue_from_the_experts_it_takes() -> None:
    d = c.draw(POOL, REQUEST, SEED)
    seats = d.seats()
    assert [p.seat for p in seats] == [1, 2, 3, 4, 5]
    assert [len(v) for v in d.by_venue().values()] == [3, 1, 1]
    assert len({p.expert for p in seats}) == 5
    assert set(d.drawn()) <= set(ELIGIBLE)
    by_id = {e.id: e for e in POOL}
    assert by_id[d.by_venue()["副场·杭州"][0]].city == "杭州"
    assert by_id[d.by_venue()["副场·宁波"][0]].city == "宁波"


def test_the_record_holds_digest_seed_eligible_list_and_picks() -> None:
    d = c.draw(POOL, REQUEST, SEED)
    record = d.to_json()
    assert record["pool_digest"] == hashlib.sha256(canonical(c.pool_json(POOL))).hexdigest()
    assert record["seed"] == SEED.hex()
    assert [e["id"] for e in record["eligible"]] == ELIGIBLE
    assert [p["venue"] for p in record["picks"]] == ["主场·舟山"] * 3 + ["副场·杭州", "副场·宁波"]
    assert record["request"] == REQUEST.to_json()


def test_each_pick_is_the_documented_function_of_the_seed() -> None:
    d = c.draw(POOL, REQUEST, SEED)
    # 宁波 (2 eligible) is filled first, then 杭州 (3), then the main venue (8).
    label = f"bidroom committee v1\n{d.pool_digest}\nLOT-1\n5\n".encode()
    n = int.from_bytes(hashlib.sha256(label + SEED).digest(), "big")
    assert d.seats()[4].expert == ["e07", "e08"][n % 2]
    assert (
        d.seats()[3].expert == ["e04", "e05", "e06"][c.choose(SEED, d.pool_digest, "LOT-1", 4, 3)]
    )
    left = [e for e in ELIGIBLE if e not in {d.seats()[3].expert, d.seats()[4].expert}]
    assert d.seats()[0].expert == left[c.choose(SEED, d.pool_digest, "LOT-1", 1, 6)]


def test_the_same_seed_and_pool_give_the_same_committee_whatever_the_pool_order() -> None:
    first = c.draw(POOL, REQUEST, SEED)
    assert c.draw(list(reversed(POOL)), REQUEST, SEED) == first
    assert c.draw(POOL, REQUEST, bytes(SEED)) == first


def test_a_one_byte_change_in_the_seed_changes_the_committee() -> None:
    first = committee(c.draw(POOL, REQUEST, SEED))
    for position in (0, 31):
        seed = bytearray(SEED)
        seed[position] ^= 1
        assert committee(c.draw(POOL, REQUEST, bytes(seed))) != first


def test_a_one_byte_change_in_the_pool_changes_the_digest_and_the_committee() -> None:
    changed = [*POOL[:-1], dataclasses.replace(POOL[-1], name="专家15")]  # an ineligible one
    first, second = c.draw(POOL, REQUEST, SEED), c.draw(changed, REQUEST, SEED)
    assert first.pool_digest != second.pool_digest
    assert committee(first) != committee(second), "the pool digest is part of each pick"


def test_anyone_recomputes_the_draw_from_its_record() -> None:
    d = c.replace_seat(c.draw(POOL, REQUEST, SEED), 2, SEED2)
    record = json.loads(json.dumps(d.to_json()))
    assert c.recompute(POOL, record) == d
    snapshot = [c.Expert.from_json(e) for e in c.pool_json(POOL)["experts"]]
    assert c.recompute(snapshot, record) == d, "the logged pool snapshot is enough"


def test_a_tampered_record_or_another_pool_is_refused() -> None:
    record = c.draw(POOL, REQUEST, SEED).to_json()
    assert code_of(lambda: c.recompute(POOL[:-1], record)) == "pool_mismatch"
    picks = record["picks"]
    swapped = [
        {**picks[0], "expert": picks[1]["expert"]},
        {**picks[1], "expert": picks[0]["expert"]},
    ]
    forged = {**record, "picks": [*swapped, *picks[2:]]}
    assert code_of(lambda: c.recompute(POOL, forged)) == "record_mismatch"
    assert code_of(lambda: c.recompute(POOL, {**record, "seed": "zz"})) == "invalid_record"
    assert code_of(lambda: c.recompute(POOL, {**record, "replacements": [{}]})) == (
        "invalid_record"
    )


def test_every_eligible_expert_can_be_drawn() -> None:
    drawn: set[str] = set()
    hangzhou: set[str] = set()
    for i in range(300):
        d = c.draw(POOL, REQUEST, i.to_bytes(32, "big"))
        drawn |= d.drawn()
        hangzhou |= set(d.by_venue()["副场·杭州"])
    assert drawn == set(ELIGIBLE)
    assert hangzhou == {"e04", "e05", "e06"}


def test_too_few_eligible_experts_are_refused_with_the_counts() -> None:
    big = dataclasses.replace(REQUEST, seats=(c.Seats("主场·舟山", 9),))
    with pytest.raises(CommitteeError) as info:
        c.draw(POOL, big, SEED)
    assert info.value.code == "too_few_eligible"
    assert info.value.detail == {"venue": None, "needed": 9, "eligible": 8}
    two = (*REQUEST.seats[:2], c.Seats("副场·宁波", 3, frozenset({"宁波"})))
    with pytest.raises(CommitteeError) as info:
        c.draw(POOL, dataclasses.replace(REQUEST, seats=two), SEED)
    assert info.value.detail == {"venue": "副场·宁波", "needed": 3, "eligible": 2}


def test_a_venue_bound_to_a_city_is_filled_before_one_that_takes_any_city() -> None:
    seats = (c.Seats("主场·舟山", 6), c.Seats("副场·宁波", 2, frozenset({"宁波"})))
    request = dataclasses.replace(REQUEST, seats=seats)
    for i in range(20):
        d = c.draw(POOL, request, i.to_bytes(32, "big"))
        assert set(d.by_venue()["副场·宁波"]) == {"e07", "e08"}
        assert [p.seat for p in d.picks] == list(range(1, 9)), "numbered in the request's order"


def test_overlapping_venues_can_still_run_short_during_the_draw() -> None:
    seats = (
        c.Seats("副场·杭甬", 2, frozenset({"杭州", "宁波"})),
        c.Seats("副场·舟甬", 4, frozenset({"舟山", "宁波"})),
    )
    request = dataclasses.replace(REQUEST, seats=seats)
    outcomes: set[str] = set()
    for i in range(40):
        try:
            c.draw(POOL, request, i.to_bytes(32, "big"))
            outcomes.add("drawn")
        except CommitteeError as error:
            assert error.detail == {"venue": "副场·舟甬", "needed": 4, "eligible": 5}
            outcomes.add(error.code)
    assert outcomes == {"drawn", "too_few_eligible"}, "when 杭甬 takes both 宁波 experts"


def test_invalid_pool_request_or_seed_is_refused() -> None:
    assert code_of(lambda: c.draw([*POOL, POOL[0]], REQUEST, SEED)) == "invalid_pool"
    twice = dataclasses.replace(REQUEST, seats=(c.Seats("A", 1), c.Seats("A", 1)))
    for bad in (
        dataclasses.replace(REQUEST, seats=()),
        twice,
        dataclasses.replace(REQUEST, seats=(c.Seats("A", 0),)),
        dataclasses.replace(REQUEST, specialties=frozenset()),
        dataclasses.replace(REQUEST, rest_days=-1),
    ):
        assert code_of(partial(c.draw, POOL, bad, SEED)) == "invalid_request"
    assert code_of(lambda: c.draw(POOL, REQUEST, b"x" * 15)) == "seed_too_short"


# sealed seats --------------------------------------------------------------------------------


def test_the_public_view_names_no_expert() -> None:
    d = c.draw(POOL, REQUEST, SEED)
    public = [s.to_json() for s in d.public_view()]
    assert all(set(s) == {"seat", "venue", "commitment"} for s in public)
    assert all(len(s["commitment"]) == 64 for s in public)
    assert [(s.seat, s.venue) for s in d.public_view()] == [(p.seat, p.venue) for p in d.seats()]


def test_the_commitment_is_the_documented_hash() -> None:
    sealed = c.draw(POOL, REQUEST, SEED).sealed_view()[0]
    salt = hashlib.sha256(b"bidroom seat salt v1\nLOT-1\n1\n" + SEED).digest()
    assert sealed.salt == salt
    document = {"v": 1, "seat": 1, "expert": sealed.expert, "salt": salt.hex()}
    assert sealed.commitment == hashlib.sha256(canonical(document)).hexdigest()


def test_the_right_expert_signs_in_at_their_seat_and_nobody_else_does() -> None:
    d = c.draw(POOL, REQUEST, SEED)
    view = d.public_view()
    first, second = d.sealed_view()[:2]
    c.verify_sign_in(view, first.seat, first.venue, first.expert, first.salt)
    assert (
        code_of(lambda: c.verify_sign_in(view, first.seat, first.venue, second.expert, first.salt))
        == "seat_mismatch"
    )
    assert (
        code_of(lambda: c.verify_sign_in(view, first.seat, first.venue, first.expert, second.salt))
        == "seat_mismatch"
    )
    assert (
        code_of(lambda: c.verify_sign_in(view, second.seat, second.venue, first.expert, first.salt))
        == "seat_mismatch"
    ), "a seat-holder cannot take another seat"
    assert (
        code_of(lambda: c.verify_sign_in(view, first.seat, "副场·杭州", first.expert, first.salt))
        == "wrong_venue"
    )
    assert code_of(lambda: c.verify_sign_in(view, 9, first.venue, first.expert, first.salt)) == (
        "no_such_seat"
    )


# replacement ---------------------------------------------------------------------------------


def test_a_conflicted_expert_is_replaced_at_the_same_venue_by_someone_not_drawn() -> None:
    d = c.draw(POOL, REQUEST, SEED)
    conflicted = d.seats()[1]
    after = c.replace_seat(d, 2, SEED2)
    [done] = after.replacements
    assert (done.seat, done.venue, done.replaced) == (2, "主场·舟山", conflicted.expert)
    assert done.candidates == tuple(e for e in ELIGIBLE if e not in d.drawn())
    index = c.choose(SEED2, d.pool_digest, "LOT-1", 2, len(done.candidates))
    assert done.expert == done.candidates[index]
    assert after.seats()[1] == c.Pick(2, "主场·舟山", done.expert)
    assert after.picks == d.picks and after.seats()[2:] == d.seats()[2:], "the rest stays"
    assert c.replace_seat(d, 2, SEED2) == after, "reproducible"


def test_a_replacement_at_a_venue_bound_to_a_city_comes_from_that_city() -> None:
    small = dataclasses.replace(REQUEST, seats=(c.Seats("主场·舟山", 1), *REQUEST.seats[1:]))
    d = c.draw(POOL, small, SEED)
    after = c.replace_seat(d, 2, SEED2)  # seat 2 is 杭州's
    [done] = after.replacements
    assert done.venue == "副场·杭州"
    assert set(done.candidates) == {"e04", "e05", "e06"} - d.drawn()
    assert done.expert in done.candidates


def test_the_replacement_holds_the_seat_and_the_replaced_expert_no_longer_does() -> None:
    d = c.draw(POOL, REQUEST, SEED)
    after = c.replace_seat(d, 1, SEED2)
    old, new = d.sealed_view()[0], after.sealed_view()[0]
    assert new.salt == c.seat_salt(SEED2, "LOT-1", 1)
    view = after.public_view()
    c.verify_sign_in(view, 1, new.venue, new.expert, new.salt)
    assert code_of(lambda: c.verify_sign_in(view, 1, old.venue, old.expert, old.salt)) == (
        "seat_mismatch"
    )
    assert after.public_view()[1:] == d.public_view()[1:]


def test_replacements_never_bring_back_anyone_drawn_before() -> None:
    d = c.draw(POOL, REQUEST, SEED)
    d = c.replace_seat(d, 1, SEED2)
    d = c.replace_seat(d, 1, b"\x07" * 32)
    assert len(d.replacements) == 2 and d.replacements[1].replaced == d.replacements[0].expert
    assert len(d.drawn()) == 7 and d.seats()[0].expert not in {p.expert for p in d.picks}


def test_replacement_refusals() -> None:
    d = c.draw(POOL, REQUEST, SEED)
    assert code_of(lambda: c.replace_seat(d, 6, SEED2)) == "no_such_seat"
    assert code_of(lambda: c.replace_seat(d, 1, SEED)) == "seed_reused"
    once = c.replace_seat(d, 1, SEED2)
    assert code_of(lambda: c.replace_seat(once, 2, SEED2)) == "seed_reused"
    assert code_of(lambda: c.replace_seat(d, 1, b"short")) == "seed_too_short"
    ningbo = c.replace_seat(d, 5, SEED2)  # 宁波 has two eligible experts: none left now
    with pytest.raises(CommitteeError) as info:
        c.replace_seat(ningbo, 5, b"\x09" * 32)
    assert info.value.code == "too_few_eligible"
    assert info.value.detail == {"venue": "副场·宁波", "needed": 1, "eligible": 0}


# leader election -----------------------------------------------------------------------------

MEMBERS = ("e01", "e02", "e03", "e04", "e07")


def votes(state: c.Election, ballots: dict[str, str]) -> c.Election:
    for voter, candidate in ballots.items():
        state = c.vote(state, voter, candidate, state.current.number)
    return state


def test_a_clear_majority_elects_the_leader_in_one_round() -> None:
    e = c.election(MEMBERS)
    e = votes(e, {"e01": "e02", "e02": "e02", "e03": "e01", "e04": "e02"})
    assert e.phase == "voting" and e.leader is None, "open until every member voted"
    e = c.vote(e, "e07", "e07", 1)
    assert (e.phase, e.leader, e.appointed, e.tied()) == ("elected", "e02", False, ())
    assert e.to_json()["rounds"][0]["tally"] == {"e01": 1, "e02": 3, "e03": 0, "e04": 0, "e07": 1}


def test_one_tie_is_revoted_among_the_tied() -> None:
    e = votes(c.election(MEMBERS), {"e01": "e02", "e02": "e02", "e03": "e01", "e04": "e01"})
    e = c.vote(e, "e07", "e03", 1)
    assert (e.phase, e.tied()) == ("tied", ("e01", "e02"))
    e = c.revote(e)
    assert (e.phase, e.current.number, e.current.candidates) == ("voting", 2, ("e01", "e02"))
    assert code_of(lambda: c.vote(e, "e07", "e03", 2)) == "not_a_candidate"
    e = votes(e, {"e01": "e01", "e02": "e02", "e03": "e01", "e04": "e01", "e07": "e02"})
    assert (e.phase, e.leader, e.appointed) == ("elected", "e01", False)
    assert [r["round"] for r in e.to_json()["rounds"]] == [1, 2]


def test_a_second_tie_is_settled_by_the_chairs_appointment() -> None:
    e = votes(c.election(MEMBERS), {m: m for m in MEMBERS})
    assert e.tied() == MEMBERS
    e = c.revote(e)
    e = votes(e, {m: m for m in MEMBERS})
    assert (e.phase, e.tied()) == ("appointing", MEMBERS)
    assert code_of(lambda: c.revote(e)) == "wrong_phase"
    e = c.appoint(e, "e04")
    assert (e.phase, e.leader, e.appointed) == ("elected", "e04", True)
    assert e.to_json()["appointed"] is True and e.to_json()["tied"] == list(MEMBERS)


def test_the_appointee_must_be_one_of_the_tied() -> None:
    e = votes(c.election(MEMBERS), {"e01": "e01", "e02": "e02", "e03": "e03", "e04": "e01"})
    e = c.vote(e, "e07", "e02", 1)
    e = votes(c.revote(e), {"e01": "e01", "e02": "e02", "e03": "e01", "e04": "e02"})
    assert e.phase == "voting", "e07 has not voted in round 2"
    e = c.close_round(e)  # e07 is absent
    assert (e.phase, e.tied()) == ("appointing", ("e01", "e02"))
    with pytest.raises(CommitteeError) as info:
        c.appoint(e, "e03")
    assert (info.value.code, info.value.detail) == ("not_tied_candidate", {"tied": ["e01", "e02"]})
    assert c.appoint(e, "e02").leader == "e02"


def test_election_refusals() -> None:
    e = c.election(MEMBERS, self_vote=False)
    assert code_of(lambda: c.vote(e, "x", "e01", 1)) == "not_a_member"
    assert code_of(lambda: c.vote(e, "e01", "e01", 1)) == "self_vote_forbidden"
    assert code_of(lambda: c.vote(e, "e01", "x", 1)) == "not_a_candidate"
    assert code_of(lambda: c.vote(e, "e01", "e02", 2)) == "no_such_round"
    assert code_of(lambda: c.close_round(e)) == "no_votes"
    assert code_of(lambda: c.revote(e)) == "wrong_phase"
    assert code_of(lambda: c.appoint(e, "e01")) == "wrong_phase"
    once = c.vote(e, "e01", "e02", 1)
    assert code_of(lambda: c.vote(once, "e01", "e03", 1)) == "already_voted"
    assert code_of(lambda: c.election([])) == "invalid_members"
    assert code_of(lambda: c.election(["e01", "e01"])) == "invalid_members"


def test_a_vote_for_a_closed_round_is_refused() -> None:
    e = votes(c.election(MEMBERS), {m: m for m in MEMBERS})
    assert code_of(lambda: c.vote(e, "e01", "e01", 1)) == "round_closed", "tied, not revoting"
    revoting = c.revote(e)
    assert code_of(lambda: c.vote(revoting, "e01", "e01", 1)) == "round_closed"
    done = c.close_round(c.vote(revoting, "e01", "e02", 2))
    assert done.leader == "e02"
    assert code_of(lambda: c.vote(done, "e03", "e02", 2)) == "round_closed"
    assert code_of(lambda: c.close_round(done)) == "wrong_phase"


# fault clocks --------------------------------------------------------------------------------

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
TICK = timedelta(microseconds=1)


def clocks(suspensions: list[c.Suspension], now: datetime) -> c.FaultReport:
    return c.fault_clocks(START, suspensions, now)


def test_no_fault_is_ok_with_full_clocks() -> None:
    report = clocks([], START + H)
    assert report.status == "ok"
    assert (report.before_start.left, report.during.left) == (2 * H, 4 * H)
    assert not report.before_start.running and not report.during.running


def test_a_fault_before_the_start_counts_the_delay_from_the_scheduled_start() -> None:
    fault = [c.Suspension(START - H)]
    early = clocks(fault, START - H / 2)
    assert (early.status, early.before_start.elapsed, early.before_start.left) == (
        "ok",
        timedelta(0),
        2 * H,
    )
    at_limit = clocks(fault, START + 2 * H)
    assert (at_limit.status, at_limit.before_start.left, at_limit.before_start.running) == (
        "ok",
        timedelta(0),
        True,
    )
    past = clocks(fault, START + 2 * H + TICK)
    assert (past.status, past.before_start.exceeded) == ("tenderee_decides", True)


def test_a_fault_before_the_start_fixed_in_time_is_ok() -> None:
    fixed_before = clocks([c.Suspension(START - 3 * H, START - H)], START + H)
    assert fixed_before.status == "ok" and fixed_before.before_start.elapsed == timedelta(0)
    fixed_at_limit = clocks([c.Suspension(START, START + 2 * H)], START + 5 * H)
    assert fixed_at_limit.status == "ok" and not fixed_at_limit.before_start.running
    fixed_late = clocks([c.Suspension(START, START + 2 * H + TICK)], START + 5 * H)
    assert fixed_late.status == "tenderee_decides", "it stays the tenderee's decision"


def test_a_fault_during_evaluation_seals_the_session_past_four_hours() -> None:
    fault = [c.Suspension(START + H)]
    running = clocks(fault, START + 2 * H)
    assert (running.status, running.during.elapsed, running.during.left) == ("ok", H, 3 * H)
    assert running.during.running and running.before_start.left == 2 * H
    assert clocks(fault, START + 5 * H).status == "ok"
    past = clocks(fault, START + 5 * H + TICK)
    assert (past.status, past.during.left) == ("must_seal_and_reform", timedelta(0))


def test_each_fault_has_its_own_four_hours_and_an_exceeded_one_stays_exceeded() -> None:
    two = [c.Suspension(START + H, START + 4 * H), c.Suspension(START + 5 * H)]
    report = clocks(two, START + 8 * H)
    assert (report.status, report.during.elapsed, report.during.left) == ("ok", 3 * H, H)
    long = [c.Suspension(START + H, START + 6 * H), c.Suspension(START + 7 * H)]
    report = clocks(long, START + 7 * H + TICK)
    assert (report.status, report.during.left) == ("must_seal_and_reform", timedelta(0))


def test_sealing_outranks_the_tenderees_decision() -> None:
    both = [c.Suspension(START, START + 3 * H), c.Suspension(START + 4 * H, START + 9 * H)]
    report = clocks(both, START + 10 * H)
    assert report.before_start.exceeded and report.during.exceeded
    assert report.status == "must_seal_and_reform"


def test_inconsistent_fault_intervals_are_refused() -> None:
    for bad in (
        [c.Suspension(START + 2 * H, START + H)],
        [c.Suspension(START + H, START + 3 * H), c.Suspension(START + 2 * H, START + 4 * H)],
        [c.Suspension(START + H), c.Suspension(START + 2 * H, START + 3 * H)],
        [c.Suspension(START + H, START + 9 * H)],
        [c.Suspension(START + 9 * H)],
    ):
        assert code_of(partial(clocks, bad, START + 5 * H)) == "invalid_intervals"
    naive = datetime(2026, 12, 1, 9, 0)
    assert code_of(lambda: c.fault_clocks(naive, [], START)) == "naive_time"
