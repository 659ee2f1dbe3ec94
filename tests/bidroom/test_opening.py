"""The opening core, pure: every step and every refusal, without a loop or a socket."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bidroom import bidform, opening
from bidroom.audit import canonical
from bidroom.room import SYSTEM, Actor, Command, Event, Rejected

T0 = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
LATE = T0 + timedelta(minutes=30)  # the window's end
CHAIR = Actor("chair", "王敏", "chair")
CUSTODIAN = Actor("notary", "公证处", "custodian")
SUPERVISOR = Actor("sup", "赵磊", "supervisor")
BIDDERS = [Actor(f"uscc:b{n}", f"投标人{n}", "bidder") for n in range(1, 4)]
B1, B2, B3 = (b.subject for b in BIDDERS)
STRANGER = Actor("uscc:nobid", "无投标", "bidder")
KEY = {"sealed_key": "k" * 32, "signature": "s" * 64, "certificate": "c" * 64}
SIGNED = {"signature": "s" * 64, "certificate": "c" * 64}
SEED = bytes(range(32))


def share_digest(index: int) -> str:
    return hashlib.sha256(f"share {index}".encode()).hexdigest()


COMMITMENTS = [
    {
        "lot_id": "LOT-1",
        "key_fingerprint": "ab" * 32,
        "custodian": custodian,
        "index": index,
        "k": 2,
        "n": 3,
        "digest": share_digest(index),
    }
    for index, custodian in enumerate(["notary", "agency", "sup"], 1)
]
CONFIG: Mapping[str, Any] = {
    "lot": "LOT-1",
    "title": "第1标段",
    "tender": "ZJ-ZS-2026-0417",
    "starts_at": T0.isoformat(),
    "window_minutes": 30,
    "remedy": "quorum",
    "commitments": COMMITMENTS,
    "k": 2,
    "record": {"confirm_minutes": 30, "silence": "consent"},
    "ceiling_price": "3800000.00",
    "guarantee": {"required": True, "amount": "50000.00"},
    "sheet_fields": ["price", "duration_days", "guarantee"],
}


def share(index: int, custodian: str | None = None) -> dict[str, object]:
    owner = custodian or COMMITMENTS[index - 1]["custodian"]
    return {
        "custodian": owner,
        "index": index,
        "commitment": share_digest(index),
        "sealed_share": f"sealed share {index} to the room key",
    }


class Opening:
    """An opening room driven through decide/apply, as the hub would, with stamped events."""

    def __init__(self, **config: Any) -> None:
        self.state = opening.initial({**CONFIG, **config})
        self.seq = 0
        self.log: list[Event] = []

    def run(
        self, name: str, actor: Actor, at: datetime = T0, **args: object
    ) -> list[Event] | Rejected:
        decision = opening.decide(self.state, Command(name, args), actor, at)
        if isinstance(decision, Rejected):
            return decision
        stamped = []
        for event in decision:
            self.seq += 1
            stamped.append(Event(event.name, event.data, self.seq, at, actor))
            self.state = opening.apply(self.state, stamped[-1])
        self.log.extend(stamped)
        return stamped

    def ok(self, name: str, actor: Actor, at: datetime = T0, **args: object) -> list[Event]:
        result = self.run(name, actor, at, **args)
        assert not isinstance(result, Rejected), result
        return result

    def refused(self, name: str, actor: Actor, at: datetime = T0, **args: object) -> str:
        result = self.run(name, actor, at, **args)
        assert isinstance(result, Rejected), result
        return result.code

    def status(self, bidder: str) -> str:
        return self.state.bids[bidder].status


def fixed(bidders: list[Actor] = BIDDERS, **config: Any) -> Opening:
    o = Opening(**config)
    for b in bidders:
        o.ok("opening.sign_in", b)
    bids = [{"bidder": b.subject, "name": b.name, "envelope": "0" * 64} for b in bidders]
    o.ok("opening.fix_bids", SYSTEM, bids=bids)
    return o


def decrypting(**config: Any) -> Opening:
    """The window open; a lot that draws K has its commitment (of SEED) published before."""
    o = fixed(**config)
    if config.get("k_range"):
        o.ok("opening.commit_draw", CHAIR, commitment=hashlib.sha256(SEED).hexdigest())
    o.ok("opening.start_window", CHAIR)
    return o


def settling(**config: Any) -> Opening:
    """b1 decrypted; b2 lost their key; b3 never came (bidder_absent when the window closed)."""
    o = decrypting(**config)
    o.ok("opening.decrypted", BIDDERS[0], **KEY)
    o.ok("opening.report_failure", BIDDERS[1], cause="bidder_key_lost", **SIGNED)
    o.ok("opening.close_window", SYSTEM, LATE)
    return o


def rows_for(o: Opening) -> list[dict[str, Any]]:
    forms = {bidder: form(price="3650000.00") for bidder in o.state.bids}
    return [dict(row) for row in opening.sheet_rows(o.state.bids.values(), forms, CONFIG)]


def sheet(**config: Any) -> Opening:
    o = settling(**config)
    o.ok("opening.settle_failures", CHAIR)
    o.ok("opening.publish_sheet", CHAIR, rows=rows_for(o))
    return o


def recording(**config: Any) -> Opening:
    o = sheet(**config)
    o.ok("opening.generate_record", CHAIR)
    return o


def form(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": "bidroom-bid-form",
        "version": 1,
        "lot": "LOT-1",
        "price": "3650000.00",
        "duration_days": 365,
        "guarantee": {"kind": "bank", "issuer": "某银行", "number": "G-1", "amount": "50000.00"},
    }
    doc.update(fields)
    return {k: v for k, v in doc.items() if v is not None}


# sign-in, the bids fixed, the chair's decision ---------------------------------------------


def test_the_bids_are_fixed_at_the_deadline_and_their_count_is_public() -> None:
    o = fixed()
    assert o.state.phase == "bids_fixed" and len(o.state.bids) == 3
    assert o.state.bids[B1].name == "投标人1"
    assert o.refused("opening.fix_bids", SYSTEM, bids=[]) == "wrong_phase"
    view = opening.snapshot(o.state, BIDDERS[0])
    assert view["count"] == 3
    assert [b["name"] for b in view["bids"]] == ["投标人1", "投标人2", "投标人3"]
    assert {b["status"] for b in view["bids"]} == {"sealed"}


def test_only_the_system_fixes_the_bids_and_each_bidder_once() -> None:
    assert Opening().refused("opening.fix_bids", CHAIR, bids=[]) == "not_allowed"
    twice = [{"bidder": B1, "name": "x", "envelope": "0" * 64}] * 2
    assert Opening().refused("opening.fix_bids", SYSTEM, bids=twice) == "duplicate_bid"


def test_bidders_sign_in_once_and_still_may_after_the_deadline() -> None:
    o = fixed()
    assert o.refused("opening.sign_in", BIDDERS[0]) == "already_signed_in"
    late = Opening()
    late.ok("opening.fix_bids", SYSTEM, bids=[{"bidder": B1, "name": "n", "envelope": "0" * 64}])
    late.ok("opening.sign_in", BIDDERS[0])
    assert late.refused("opening.sign_in", STRANGER) == "no_bid"
    assert late.refused("opening.sign_in", CHAIR) == "not_allowed"
    late.ok("opening.decide", CHAIR, decision="continue", reason="继续")
    late.ok("opening.start_window", CHAIR)
    assert late.refused("opening.sign_in", BIDDERS[1]) == "wrong_phase"


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
    assert ended.refused("opening.start_window", CHAIR) == "wrong_phase"
    assert fixed().refused("opening.decide", CHAIR, decision="continue", reason="x") == (
        "not_needed"
    )
    empty = fixed([])
    empty.ok("opening.decide", CHAIR, decision="continue", reason="x")
    assert empty.refused("opening.start_window", CHAIR) == "no_bids"


# the decryption window ---------------------------------------------------------------------


def test_decrypting_before_the_window_is_refused() -> None:
    assert fixed().refused("opening.decrypted", BIDDERS[0], **KEY) == "wrong_phase"


def test_each_bidder_decrypts_once_within_the_window() -> None:
    o = decrypting()
    [done] = o.ok("opening.decrypted", BIDDERS[0], **KEY)
    assert done.data == {"bidder": B1, **KEY}
    assert o.refused("opening.decrypted", BIDDERS[0], **KEY) == "already_settled"
    assert o.refused("opening.decrypted", BIDDERS[1], LATE, **KEY) == "window_closed"
    assert o.refused("opening.decrypted", STRANGER, **KEY) == "no_bid"
    assert o.refused("opening.decrypted", CHAIR, **KEY) == "not_allowed"
    o.ok("opening.close_window", SYSTEM, LATE)
    assert o.refused("opening.decrypted", BIDDERS[1], LATE, **KEY) == "wrong_phase"


def test_a_failure_is_reported_with_its_cause_by_the_bidder_or_the_chair() -> None:
    o = decrypting()
    # A bidder's own word settles their bid: a session alone (which the operator could mint)
    # does not make it; the WebSocket shell checks the signature the command carries.
    unsigned = o.refused("opening.report_failure", BIDDERS[0], cause="bidder_key_lost")
    assert unsigned == "signature_required"
    [mine] = o.ok("opening.report_failure", BIDDERS[0], cause="bidder_key_lost", **SIGNED)
    assert mine.data == {"bidder": B1, "cause": "bidder_key_lost", "by": "bidder", **SIGNED}
    assert o.state.bids[B1].status == "failed" and o.state.bids[B1].cause == "bidder_key_lost"
    assert (
        o.refused("opening.report_failure", BIDDERS[0], cause="ca_fault", **SIGNED)
        == "already_failed"
    )
    assert o.refused(
        "opening.report_failure", BIDDERS[1], bidder=B3, cause="ca_fault", **SIGNED
    ) == ("not_allowed")
    assert o.refused("opening.report_failure", CHAIR, cause="ca_fault") == "bidder_needed"
    assert o.refused("opening.report_failure", SUPERVISOR, bidder=B2, cause="ca_fault") == (
        "not_allowed"
    )
    assert o.refused("opening.report_failure", BIDDERS[1], LATE, cause="ca_fault", **SIGNED) == (
        "window_closed"
    )
    o.ok("opening.report_failure", CHAIR, LATE, bidder=B2, cause="network_fault")
    assert o.status(B2) == "failed"
    assert o.refused("opening.report_failure", CHAIR, bidder="uscc:x", cause="ca_fault") == (
        "no_bid"
    )


def test_within_the_window_the_bidders_own_key_prevails_over_a_reported_failure() -> None:
    o = decrypting()
    o.ok("opening.report_failure", CHAIR, bidder=B1, cause="network_fault")
    assert o.status(B1) == "failed"
    [decrypted] = o.ok("opening.decrypted", BIDDERS[0], **KEY)
    assert decrypted.name == "opening.bid_decrypted"
    assert (o.status(B1), o.state.bids[B1].cause) == ("decrypted", None)
    o.ok("opening.report_failure", BIDDERS[1], cause="bidder_key_lost", **SIGNED)
    assert o.refused("opening.decrypted", BIDDERS[1], LATE, **KEY) == "window_closed"


def test_the_chair_cannot_fail_a_bid_for_its_bidder_nor_close_the_window_by_reporting() -> None:
    """The attack of issue 14: during the window the chair reports the bidders who have not yet
    decrypted as having lost their keys, so that the clock closes the window early and their bids
    are revoked as their fault. A cause that blames the bidder is refused from the chair; a
    failure the chair may report (not the bidder's fault) leaves the bid open for its bidder, who
    still decrypts, and no early close comes of it; the record says who reported what."""
    o = decrypting()
    early = T0 + timedelta(minutes=1)
    o.ok("opening.decrypted", BIDDERS[0], early, **KEY)
    for cause in sorted(opening.BLAMING):
        assert o.refused("opening.report_failure", CHAIR, early, bidder=B2, cause=cause) == (
            "cause_blames_bidder"
        )
    [reported] = o.ok("opening.report_failure", CHAIR, early, bidder=B2, cause="network_fault")
    assert reported.data == {"bidder": B2, "cause": "network_fault", "by": "chair"}
    o.ok("opening.report_failure", CHAIR, early, bidder=B3, cause="platform_fault")
    assert o.refused("opening.close_window", SYSTEM, early) == "window_open"
    assert o.refused("opening.close_window", CHAIR, early) == "window_open"
    o.ok("opening.decrypted", BIDDERS[1], early, **KEY)  # bidder 2, key in hand
    assert o.status(B2) == "decrypted"
    [own] = o.ok("opening.report_failure", BIDDERS[2], early, cause="bidder_key_lost", **SIGNED)
    assert own.data["by"] == "bidder"  # the bidder's own word replaces the chair's
    assert o.refused("opening.report_failure", BIDDERS[2], early, cause="ca_fault", **SIGNED) == (
        "already_failed"
    )
    o.ok("opening.close_window", SYSTEM, early)  # now every bid is settled by its bidder
    assert o.state.phase == "settling"
    # After the window the chair may correct a cause in the bidder's favour, never against it.
    o.ok("opening.report_failure", CHAIR, bidder=B3, cause="network_fault")
    assert o.refused("opening.report_failure", CHAIR, bidder=B3, cause="bidder_absent") == (
        "cause_blames_bidder"
    )


def test_a_failure_the_chair_reported_stands_at_the_windows_end_as_not_the_bidders_fault() -> None:
    o = decrypting()
    o.ok("opening.report_failure", CHAIR, bidder=B1, cause="platform_fault")
    for b in BIDDERS[1:]:
        o.ok("opening.decrypted", b, **KEY)
    assert o.refused("opening.close_window", SYSTEM) == "window_open"
    [closed] = o.ok("opening.close_window", SYSTEM, LATE)
    assert closed.data == {"absent": 0}
    assert (o.status(B1), o.state.bids[B1].cause) == ("failed", "platform_fault")
    assert o.state.bids[B1].reported_by == "chair"


def test_the_window_closes_at_its_end_or_when_no_bid_is_sealed() -> None:
    o = decrypting()
    early = T0 + timedelta(minutes=10)
    assert o.refused("opening.close_window", CHAIR, early) == "window_open"
    assert o.refused("opening.close_window", SYSTEM, early) == "window_open"
    assert o.refused("opening.close_window", BIDDERS[0], LATE) == "not_allowed"
    for b in BIDDERS[:2]:
        o.ok("opening.decrypted", b, early, **KEY)
    o.ok("opening.report_failure", BIDDERS[2], early, cause="bidder_cert_revoked", **SIGNED)
    [closed] = o.ok("opening.close_window", CHAIR, early)
    assert closed.data == {"absent": 0} and o.state.phase == "settling"


def test_bids_still_sealed_when_the_window_closes_have_failed_bidder_absent() -> None:
    o = decrypting()
    o.ok("opening.decrypted", BIDDERS[0], **KEY)
    closed, *absent = o.ok("opening.close_window", SYSTEM, LATE + timedelta(seconds=1))
    assert closed.name == "opening.window_closed" and closed.data == {"absent": 2}
    assert [e.data for e in absent] == [
        {"bidder": B2, "cause": "bidder_absent", "by": "clock"},
        {"bidder": B3, "cause": "bidder_absent", "by": "clock"},
    ]
    assert o.status(B2) == o.status(B3) == "failed"


def test_after_the_window_the_chair_corrects_a_cause_and_the_bid_is_settled_by_it() -> None:
    o = decrypting()
    o.ok("opening.decrypted", BIDDERS[0], **KEY)
    o.ok("opening.close_window", SYSTEM, LATE)
    assert o.refused("opening.report_failure", BIDDERS[1], cause="network_fault", **SIGNED) == (
        "not_allowed"
    )
    assert o.refused("opening.report_failure", CHAIR, bidder=B2, cause="bidder_absent") == (
        "same_cause"
    )
    assert o.refused("opening.report_failure", CHAIR, bidder=B1, cause="network_fault") == (
        "already_settled"
    )
    [corrected] = o.ok("opening.report_failure", CHAIR, bidder=B2, cause="network_fault")
    assert corrected.data == {"bidder": B2, "cause": "network_fault", "by": "chair"}
    [settled] = o.ok("opening.settle_failures", CHAIR)
    assert settled.data == {"settled": {B2: "withdrawn", B3: "revoked"}}


# the quorum remedy -------------------------------------------------------------------------


def test_the_quorum_is_refused_before_the_window_ends() -> None:
    o = decrypting()
    o.ok("opening.report_failure", BIDDERS[1], cause="bidder_key_lost", **SIGNED)
    assert o.refused("opening.request_quorum", CHAIR, bidders=[B2], reason="x") == "wrong_phase"
    assert o.refused("opening.share_submitted", CUSTODIAN, **share(1)) == "wrong_phase"
    opened = {"bidder": B2, "sealed_key": "q" * 32, "shares": [1, 2]}
    assert o.refused("opening.quorum_opened", SYSTEM, **opened) == "wrong_phase"


def test_the_quorum_only_where_the_lot_names_it_and_only_for_failed_bids() -> None:
    assert settling(remedy="none").refused(
        "opening.request_quorum", CHAIR, bidders=[B2], reason="x"
    ) == ("no_remedy")
    o = settling()
    assert o.refused("opening.request_quorum", CHAIR, bidders=[B1], reason="x") == "not_failed"
    assert o.refused("opening.request_quorum", CHAIR, bidders=["uscc:x"], reason="x") == "no_bid"
    assert o.refused("opening.request_quorum", SUPERVISOR, bidders=[B2], reason="x") == (
        "not_allowed"
    )
    assert o.refused("opening.share_submitted", CUSTODIAN, **share(1)) == "no_quorum_request"


def test_custodians_submit_committed_shares_and_the_system_opens_the_bid() -> None:
    o = settling()
    [asked] = o.ok("opening.request_quorum", CHAIR, bidders=[B2, B3], reason="投标人CA锁丢失")
    assert asked.data == {"bidders": [B2, B3], "reason": "投标人CA锁丢失"}
    assert o.refused("opening.request_quorum", CHAIR, bidders=[B3], reason="x") == (
        "quorum_pending"
    )
    wrong = {**share(1), "commitment": "f" * 64}
    assert o.refused("opening.share_submitted", CUSTODIAN, **wrong) == "commitment_mismatch"
    assert o.refused("opening.share_submitted", CUSTODIAN, **share(1, "agency")) == (
        "wrong_custodian"
    )
    assert o.refused("opening.share_submitted", CUSTODIAN, **{**share(1), "index": 9}) == (
        "unknown_share"
    )
    assert o.refused("opening.share_submitted", BIDDERS[0], **share(1)) == "not_allowed"
    [submitted] = o.ok("opening.share_submitted", CUSTODIAN, **share(1))
    assert submitted.data == share(1)
    assert o.refused("opening.share_submitted", CHAIR, **share(1)) == "duplicate_share"
    opened = {"bidder": B2, "sealed_key": "q" * 32, "shares": [1, 2]}
    assert o.refused("opening.quorum_opened", SYSTEM, **opened) == "share_not_submitted"
    assert o.refused("opening.quorum_opened", SYSTEM, **{**opened, "shares": [1]}) == (
        "too_few_shares"
    )
    o.ok("opening.share_submitted", CHAIR, **share(2))  # the chair, for a custodian in the hall
    assert o.refused("opening.quorum_opened", CHAIR, **opened) == "not_allowed"
    assert o.refused("opening.quorum_opened", SYSTEM, **{**opened, "bidder": B1}) == (
        "not_requested"
    )
    assert o.refused("opening.settle_failures", CHAIR) == "quorum_pending"
    [done] = o.ok("opening.quorum_opened", SYSTEM, **opened)
    assert done.data["shares"] == [1, 2], "each share's use is recorded"
    assert o.status(B2) == "quorum_opened"
    assert o.state.quorum is not None, "b3 is still waiting"
    o.ok("opening.quorum_opened", SYSTEM, **{**opened, "bidder": B3})
    assert o.state.quorum is None
    assert o.refused("opening.settle_failures", CHAIR) == "nothing_to_settle"
    assert o.refused("opening.request_quorum", CHAIR, bidders=[B3], reason="x") == "not_failed"


def test_a_quorum_request_can_be_cancelled_but_not_made_twice_for_a_bid() -> None:
    o = settling()
    assert o.refused("opening.cancel_quorum", CHAIR, reason="x") == "no_quorum_request"
    o.ok("opening.request_quorum", CHAIR, bidders=[B3], reason="平台故障")
    o.ok("opening.cancel_quorum", CHAIR, reason="公证员未到场")
    assert o.state.quorum is None
    assert o.refused("opening.request_quorum", CHAIR, bidders=[B3], reason="x") == (
        "already_requested"
    )
    assert o.refused("opening.share_submitted", CUSTODIAN, **share(1)) == "no_quorum_request"


# settling and the sheet --------------------------------------------------------------------


def test_failures_are_settled_by_their_cause() -> None:
    o = decrypting()
    o.ok("opening.decrypted", BIDDERS[0], **KEY)
    o.ok("opening.report_failure", CHAIR, bidder=B2, cause="platform_fault")
    o.ok("opening.close_window", SYSTEM, LATE)
    assert o.refused("opening.settle_failures", BIDDERS[0]) == "not_allowed"
    [settled] = o.ok("opening.settle_failures", CHAIR)
    assert settled.data == {"settled": {B2: "withdrawn", B3: "revoked"}}
    assert (o.status(B1), o.status(B2), o.status(B3)) == ("decrypted", "withdrawn", "revoked")
    assert o.refused("opening.report_failure", CHAIR, bidder=B3, cause="network_fault") == (
        "already_settled"
    )
    assert all(opening.CAUSES[c] == "revoked" for c in opening.CAUSES if c.startswith("bidder_"))
    assert {opening.CAUSES[c] for c in ("platform_fault", "ca_fault", "network_fault")} == {
        "withdrawn"
    }


def test_the_sheet_waits_until_every_bid_is_settled_and_matches_the_bids() -> None:
    o = settling()
    assert o.refused("opening.publish_sheet", CHAIR, rows=rows_for(o)) == "not_all_settled"
    o.ok("opening.settle_failures", CHAIR)
    rows = rows_for(o)
    assert o.refused("opening.publish_sheet", CHAIR, rows=rows[:2]) == "sheet_mismatch"
    assert o.refused("opening.publish_sheet", CHAIR, rows=[*rows, rows[0]]) == "sheet_mismatch"
    lying = [{**rows[0], "status": "withdrawn"}, *rows[1:]]
    assert o.refused("opening.publish_sheet", CHAIR, rows=lying) == "sheet_mismatch"
    leaking = [rows[0], {**rows[1], "fields": {"price": "1.00"}}, rows[2]]
    assert o.refused("opening.publish_sheet", CHAIR, rows=leaking) == "sheet_mismatch"
    extra = [{**rows[0], "fields": {"secret": 1}}, *rows[1:]]
    assert o.refused("opening.publish_sheet", CHAIR, rows=extra) == "sheet_mismatch"
    assert o.refused("opening.publish_sheet", SUPERVISOR, rows=rows) == "not_allowed"
    [published] = o.ok("opening.publish_sheet", CHAIR, rows=list(reversed(rows)))
    assert [r["bidder"] for r in published.data["rows"]] == [B1, B2, B3], "in the bids' order"
    assert published.data["ceiling_price"] == "3800000.00"
    assert published.data["fields"] == ["price", "duration_days", "guarantee"]
    assert o.state.phase == "sheet"


# sheet_rows and the bid form -----------------------------------------------------------------


def bid(bidder: str, status: str = "decrypted") -> opening.Bid:
    return opening.Bid(bidder, f"name of {bidder}", "0" * 64, status)


def test_sheet_rows_check_the_guarantee_and_the_ceiling() -> None:
    bids = [bid("a"), bid("b"), bid("c", "quorum_opened"), bid("d"), bid("e")]
    forms: dict[str, Mapping[str, Any] | str] = {
        "a": form(),
        "b": form(guarantee={"kind": "bank", "amount": "49999.99"}),
        "c": form(guarantee=None, price="3800000.01"),
        "d": form(price="3800000.00"),
        "e": "form_other_lot",
    }
    rows = opening.sheet_rows(bids, forms, CONFIG)
    assert [r["guarantee_check"] for r in rows] == ["ok", "insufficient", "missing", "ok", None]
    assert [r["over_ceiling"] for r in rows] == [False, False, True, False, False]
    assert rows[0]["fields"] == {
        "price": "3650000.00",
        "duration_days": 365,
        "guarantee": form()["guarantee"],
    }
    assert rows[2]["fields"]["guarantee"] is None
    assert rows[4] == {
        "bidder": "e",
        "name": "name of e",
        "status": "decrypted",
        "fields": {},
        "guarantee_check": None,
        "over_ceiling": False,
        "form_error": "form_other_lot",
    }
    free = {**CONFIG, "guarantee": {"required": False}, "ceiling_price": None}
    [row] = opening.sheet_rows([bid("a")], {"a": form(price="9999999999.00")}, free)
    assert row["guarantee_check"] == "not_required" and row["over_ceiling"] is False


def test_revoked_and_withdrawn_rows_carry_no_fields() -> None:
    rows = opening.sheet_rows([bid("r", "revoked"), bid("w", "withdrawn"), bid("m")], {}, CONFIG)
    assert [r["fields"] for r in rows] == [{}, {}, {}]
    assert [r["form_error"] for r in rows] == [None, None, "form_missing"]
    assert [r["status"] for r in rows] == ["revoked", "withdrawn", "decrypted"]


def form_bytes(**fields: Any) -> bytes:
    return json.dumps(form(**fields), ensure_ascii=False).encode()


def test_read_form_checks_and_normalises_the_bid_form() -> None:
    checked = bidform.read_form(form_bytes(quality=" 合格 ", extra="ignored"), "LOT-1")
    assert checked["price"] == "3650000.00" and checked["quality"] == "合格"
    assert "extra" not in checked and checked["guarantee"]["payer"] is None
    assert bidform.read_form(form_bytes(discount_rate="2.5"), "LOT-1")["discount_rate"] == "2.5"


@pytest.mark.parametrize(
    ("data", "code", "field"),
    [
        (b"\xff\xfe", "form_unreadable", None),
        (b"[1, 2]", "form_unreadable", None),
        (form_bytes(format="other"), "form_format", None),
        (form_bytes(version=2), "form_format", None),
        (form_bytes(version=True), "form_format", None),
        (form_bytes(lot="LOT-2"), "form_other_lot", None),
        (form_bytes(price=3650000.0), "form_bad_field", "price"),
        (form_bytes(price="3650000.001"), "form_bad_field", "price"),
        (form_bytes(price="-1.00"), "form_bad_field", "price"),
        (form_bytes(price=None), "form_bad_field", "price"),
        (form_bytes(duration_days=True), "form_bad_field", "duration_days"),
        (form_bytes(duration_days="365"), "form_bad_field", "duration_days"),
        (form_bytes(project_manager=""), "form_bad_field", "project_manager"),
        (form_bytes(discount_rate="101"), "form_bad_field", "discount_rate"),
        (form_bytes(guarantee="bank"), "form_bad_field", "guarantee"),
        (form_bytes(guarantee={"kind": "cash", "amount": "1.00"}), "form_bad_field", None),
        (form_bytes(guarantee={"kind": "bank", "amount": 50000}), "form_bad_field", None),
        (b" " * (bidform.MAX_FORM_BYTES + 1), "form_too_large", None),
    ],
)
def test_read_form_refuses_a_bad_form_with_a_code(
    data: bytes, code: str, field: str | None
) -> None:
    with pytest.raises(bidform.FormError) as caught:
        bidform.read_form(data, "LOT-1")
    assert caught.value.code == code
    if field is not None:
        assert caught.value.detail["field"] == field


def archive(*members: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for name, data in members:
            zipped.writestr(name, data)
    return buffer.getvalue()


def test_the_form_is_the_first_member_of_the_bid_archive() -> None:
    bid_zip = archive(("bid.json", form_bytes()), ("技术标.pdf", b"%PDF"))
    assert bidform.form_from_archive(bid_zip, "LOT-1")["price"] == "3650000.00"
    for data, code in [
        (b"not a zip", "form_not_zip"),
        (archive(("技术标.pdf", b"%PDF"), ("bid.json", form_bytes())), "form_missing"),
        (archive(("bid.json", form_bytes(lot="LOT-9"))), "form_other_lot"),
    ]:
        with pytest.raises(bidform.FormError) as caught:
            bidform.form_from_archive(data, "LOT-1")
        assert caught.value.code == code


# K, objections -----------------------------------------------------------------------------


K_RANGE = ["0.00", "0.05", "0.005"]


def k_v2(seed: bytes, lot: str, fixed: str, contributions: Mapping[str, str]) -> Decimal:
    """K v2 as docs/opening.md gives it, written out here (not opening.draw_k_v2)."""
    body = {
        "lot": lot,
        "range": K_RANGE,
        "seed": seed.hex(),
        "fixed": fixed,
        "contributions": dict(contributions),
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    n = int.from_bytes(hashlib.sha256(b"bidroom K v2\n" + text.encode()).digest(), "big")
    return Decimal("0.00") + (n % 11) * Decimal("0.005")


def contribution(n: int) -> bytes:
    return hashlib.sha256(f"bidder contribution {n}".encode()).digest()


def drawing(values: Mapping[str, bytes], seed: bytes = SEED) -> Opening:
    """Bidders sign in, those in ``values`` with the commitment of their contribution; the
    chair commits ``seed``; the window starts (K's last input fixed)."""
    o = Opening(k_range=K_RANGE)
    for b in BIDDERS:
        given = values.get(b.subject)
        args = (
            {} if given is None else {"contribution": hashlib.sha256(given).hexdigest(), **SIGNED}
        )
        o.ok("opening.sign_in", b, **args)
    bids = [{"bidder": b.subject, "name": b.name, "envelope": "0" * 64} for b in BIDDERS]
    o.ok("opening.fix_bids", SYSTEM, bids=bids)
    o.ok("opening.commit_draw", CHAIR, commitment=hashlib.sha256(seed).hexdigest())
    o.ok("opening.start_window", CHAIR)
    return o


def to_the_sheet(o: Opening) -> None:
    for b in BIDDERS:
        o.ok("opening.decrypted", b, **KEY)
    o.ok("opening.close_window", CHAIR)
    o.ok("opening.publish_sheet", CHAIR, rows=rows_for(o))


def drawn_k(values: Mapping[str, bytes], seed: bytes = SEED) -> Decimal:
    o = drawing(values, seed)
    for bidder, value in values.items():
        actor = next(b for b in BIDDERS if b.subject == bidder)
        o.ok("opening.reveal_contribution", actor, value=value.hex())
    to_the_sheet(o)
    [revealed] = o.ok("opening.reveal_draw", CHAIR, seed=seed.hex())
    return Decimal(revealed.data["k"])


def test_k_is_committed_before_the_window_and_revealed_after_the_sheet() -> None:
    o = fixed(k_range=K_RANGE)
    assert o.refused("opening.start_window", CHAIR) == "draw_not_committed"
    commitment = hashlib.sha256(SEED).hexdigest()
    assert o.refused("opening.commit_draw", BIDDERS[0], commitment=commitment) == "not_allowed"
    o.ok("opening.commit_draw", CHAIR, commitment=commitment)
    assert o.refused("opening.commit_draw", CHAIR, commitment="f" * 64) == "already_committed"
    assert o.refused("opening.reveal_draw", CHAIR, seed=SEED.hex()) == "wrong_phase"
    [started] = o.ok("opening.start_window", CHAIR)
    # K's last input, fixed at the window's start, after every commitment
    fixed_at = started.data["draw_input"]
    body = {"lot": "LOT-1", "commitment": commitment, "contributions": {}, "at": T0.isoformat()}
    preimage = b"bidroom K input v2\n" + canonical(body)
    assert fixed_at == {"at": T0.isoformat(), "digest": hashlib.sha256(preimage).hexdigest()}
    # once data keys can reach the platform, K can no longer be chosen
    assert o.refused("opening.commit_draw", CHAIR, commitment="f" * 64) == "wrong_phase"
    to_the_sheet(o)
    assert o.refused("opening.generate_record", CHAIR) == "draw_pending"
    assert o.refused("opening.reveal_draw", CHAIR, seed="00" * 32) == "seed_mismatch"
    [revealed] = o.ok("opening.reveal_draw", CHAIR, seed=SEED.hex())
    # no bidder contributed: K from the seed and the fixed input (docs/opening.md)
    recomputed = k_v2(SEED, "LOT-1", fixed_at["digest"], {})
    assert Decimal(revealed.data["k"]) == recomputed, "anyone recomputes K from the record"
    assert revealed.data["formula"] == "bidroom K v2" and revealed.data["absent"] == []
    assert o.refused("opening.reveal_draw", CHAIR, seed=SEED.hex()) == "already_drawn"
    [record] = o.ok("opening.generate_record", CHAIR)
    draw = record.data["document"]["draw"]
    assert draw["seed"] == SEED.hex() and draw["fixed"] == fixed_at
    assert draw["formula"] == "bidroom K v2" and draw["k"] == str(recomputed)


def test_a_room_whose_window_started_before_v2_still_draws_k_v1() -> None:
    """Old records: a window_started without draw_input replays to K v1, from the seed alone."""
    o = fixed(k_range=K_RANGE)
    o.ok("opening.commit_draw", CHAIR, commitment=hashlib.sha256(SEED).hexdigest())
    o.seq += 1
    old = Event("opening.window_started", {"ends": LATE.isoformat()}, o.seq, T0, CHAIR)
    o.state = opening.apply(o.state, old)
    to_the_sheet(o)
    [revealed] = o.ok("opening.reveal_draw", CHAIR, seed=SEED.hex())
    n = int.from_bytes(hashlib.sha256(b"bidroom K v1\nLOT-1\n" + SEED).digest(), "big")
    assert Decimal(revealed.data["k"]) == Decimal("0.00") + (n % 11) * Decimal("0.005")
    assert "formula" not in revealed.data and o.state.formula == "bidroom K v1"
    assert opening.snapshot(o.state, BIDDERS[0])["draw"]["formula"] == "bidroom K v1"


def test_draw_k_is_a_fixed_function_of_its_inputs() -> None:
    low, high, step = Decimal("0.00"), Decimal("0.05"), Decimal("0.005")
    n = int.from_bytes(hashlib.sha256(b"bidroom K v1\nLOT-1\n" + SEED).digest(), "big")
    assert opening.draw_k(SEED, "LOT-1", low, high, step) == low + (n % 11) * step
    ks = {opening.draw_k(bytes([i]) * 32, "LOT-1", low, high, step) for i in range(200)}
    assert len(ks) == 11, "every step in the range can come up"
    values = {B1: "ab" * 32}
    assert opening.draw_k_v2(SEED.hex(), "LOT-1", K_RANGE, "cd" * 32, values) == k_v2(
        SEED, "LOT-1", "cd" * 32, values
    )


EXAMPLE_LOT = "5b0f3e2a9c6d4e81a7f2c3d4e5f60718-1"  # <tender id>-<number>, as a record's `lot`


def docs_checker() -> Any:
    """The Python checker docs/opening.md "The draw of K" gives, taken from the doc itself."""
    text = (Path(__file__).parents[2] / "docs" / "opening.md").read_text()
    section = text[text.index("## The draw of K") :]
    start = section.index("A complete checker in Python")
    code = section[section.index("```python\n", start) + 10 :]
    namespace: dict[str, Any] = {}
    exec(code[: code.index("```")], namespace)  # the doc's own snippet
    return namespace["check_k"]


def test_the_worked_example_of_docs_opening_md() -> None:
    seed = bytes(range(32))
    people = ["uscc:91330903MA2B7H1X6Q", "uscc:91330921MA28K0XX3R", "uscc:91330902MA29Q5L41C"]
    values = dict(zip(people, ("11" * 32, "22" * 32, "33" * 32), strict=True))
    commitments = {b: hashlib.sha256(bytes.fromhex(v)).hexdigest() for b, v in values.items()}
    fixed = opening.fixed_input(
        EXAMPLE_LOT,
        hashlib.sha256(seed).hexdigest(),
        dict(sorted(commitments.items())),
        "2026-11-28T01:35:00+00:00",
    )
    assert fixed == "7b9920307b0ace23c6370eff0950cc42676ae128bfd725e28732f72083c76c73"
    revealed = {b: values[b] for b in people[:2]}  # the third does not reveal
    assert k_v2(seed, EXAMPLE_LOT, fixed, revealed) == Decimal("0.000")
    k = opening.draw_k_v2(seed.hex(), EXAMPLE_LOT, K_RANGE, fixed, revealed)
    assert str(k) == "0.000", "K's text has the step's three places"
    none = opening.draw_k_v2(seed.hex(), EXAMPLE_LOT, K_RANGE, fixed, {})
    assert str(none) == "0.030"
    low, high, step = (Decimal(v) for v in K_RANGE)
    v1 = hashlib.sha256(b"bidroom K v1\n" + EXAMPLE_LOT.encode() + b"\n" + seed).hexdigest()
    assert v1 == "7a0e611f82b81442cf4578805c2a2b100af4cb6d14f97aad8d0e41039e7ca3b3"
    assert str(opening.draw_k(seed, EXAMPLE_LOT, low, high, step)) == "0.035"

    # the doc's checker, on the example as a record's draw would carry it
    draw = {
        "formula": "bidroom K v2",
        "range": K_RANGE,
        "commitment": hashlib.sha256(seed).hexdigest(),
        "seed": seed.hex(),
        "fixed": {"at": "2026-11-28T01:35:00+00:00", "digest": fixed},
        "contributions": [
            {
                "bidder": b,
                "commitment": commitments[b],
                "value": revealed.get(b),
                "revealed": b in revealed,
            }
            for b in sorted(people)
        ],
        "k": "0.000",
    }
    check_k = docs_checker()
    assert check_k({"lot": EXAMPLE_LOT, "draw": draw}) == "0.000"
    with pytest.raises(AssertionError):
        check_k({"lot": "LOT-1", "draw": draw})  # the lot number is not the lot id


@pytest.mark.parametrize("revealing", [2, 1, 0])
def test_the_docs_checker_verifies_a_real_record(revealing: int) -> None:
    """The doc's checker, on the record the core writes: some, one or no contribution revealed
    (then the body's contributions is {}), every counted one listed."""
    values = {b.subject: contribution(n) for n, b in enumerate(BIDDERS[:2])}
    o = drawing(values)
    for b in BIDDERS[:revealing]:
        o.ok("opening.reveal_contribution", b, value=values[b.subject].hex())
    to_the_sheet(o)
    o.ok("opening.reveal_draw", CHAIR, seed=SEED.hex())
    record = opening.record_document(o.state, T0)
    assert [e["bidder"] for e in record["draw"]["contributions"]] == sorted(values)
    assert docs_checker()(record) == record["draw"]["k"]


def test_the_chair_cannot_choose_k_with_its_seed() -> None:
    """The attack of issue 14: the chair tries seeds until K v1 is the value it wants, and
    commits that seed. Under v2 the same seed gives K according to the bidders' contributions,
    which the chair does not know when it commits (each is revealed only after the window)."""
    low, high, step = (Decimal(v) for v in K_RANGE)
    wanted = Decimal("0.050")
    ground = next(
        seed
        for seed in (hashlib.sha256(bytes([i])).digest() for i in range(1000))
        if opening.draw_k(seed, "LOT-1", low, high, step) == wanted
    )
    ks = {drawn_k({B1: contribution(n), B2: contribution(1000 + n)}, ground) for n in range(12)}
    assert len(ks) >= 4, "with its seed committed, K still depends on what the bidders bring"
    # and one bidder's contribution alone moves K
    assert len({drawn_k({B1: contribution(1), B2: contribution(n)}) for n in range(12)}) >= 4


def test_one_bidder_cannot_choose_k_without_the_chairs_seed() -> None:
    """A bidder who knows their own contribution, and the rest as the chair's seed varies:
    K is not determined by what one bidder brings."""
    seeds = [hashlib.sha256(f"seed {n}".encode()).digest() for n in range(12)]
    ks = {drawn_k({B1: contribution(1), B2: contribution(2)}, seed) for seed in seeds}
    assert len(ks) >= 4


def test_a_contribution_is_committed_at_sign_in_and_revealed_only_as_committed() -> None:
    o = Opening(k_range=K_RANGE)
    mine = contribution(1)
    unsigned = o.refused("opening.sign_in", BIDDERS[0], contribution="f" * 64)
    assert unsigned == "signature_required", "a commitment to K is the bidder's own, signed"
    o.ok("opening.sign_in", BIDDERS[0], contribution=hashlib.sha256(mine).hexdigest(), **SIGNED)
    # the commitment cannot change after the sign-in
    refused = o.refused("opening.sign_in", BIDDERS[0], contribution="f" * 64, **SIGNED)
    assert refused == "already_signed_in"
    o.ok("opening.sign_in", BIDDERS[1])  # without a contribution: counted as absent
    bids = [{"bidder": b.subject, "name": b.name, "envelope": "0" * 64} for b in BIDDERS]
    o.ok("opening.fix_bids", SYSTEM, bids=bids)
    late = hashlib.sha256(contribution(3)).hexdigest()
    o.ok(
        "opening.sign_in", BIDDERS[2], contribution=late, **SIGNED
    )  # after the deadline, before the window
    assert o.refused("opening.reveal_contribution", BIDDERS[0], value=mine.hex()) == "wrong_phase"
    o.ok("opening.commit_draw", CHAIR, commitment=hashlib.sha256(SEED).hexdigest())
    o.ok("opening.start_window", CHAIR)
    assert set(o.state.counted) == {B1, B3}
    # no commitment after K's last input is fixed: neither the chair's nor a bidder's
    assert o.refused("opening.commit_draw", CHAIR, commitment="f" * 64) == "wrong_phase"
    assert o.refused("opening.sign_in", STRANGER, contribution="f" * 64, **SIGNED) == "wrong_phase"
    wrong = contribution(2).hex()
    assert o.refused("opening.reveal_contribution", BIDDERS[0], value=wrong) == (
        "contribution_mismatch"
    )
    assert o.refused("opening.reveal_contribution", BIDDERS[1], value=wrong) == "no_contribution"
    assert o.refused("opening.reveal_contribution", CHAIR, value=mine.hex()) == "not_allowed"
    o.ok("opening.reveal_contribution", BIDDERS[0], value=mine.hex())
    refused = o.refused("opening.reveal_contribution", BIDDERS[0], value=mine.hex())
    assert refused == "already_revealed"
    to_the_sheet(o)
    # a reveal after the sheet is refused: B3 stays absent from the formula
    late_reveal = o.refused("opening.reveal_contribution", BIDDERS[2], value=contribution(3).hex())
    assert late_reveal == "wrong_phase"
    [revealed] = o.ok("opening.reveal_draw", CHAIR, seed=SEED.hex())
    assert revealed.data["contributions"] == {B1: mine.hex()}
    assert revealed.data["absent"] == [B3]
    fixed_digest = o.state.fixed["digest"] if o.state.fixed else ""
    assert Decimal(revealed.data["k"]) == k_v2(SEED, "LOT-1", fixed_digest, {B1: mine.hex()})


def test_a_contribution_needs_a_lot_that_draws_k() -> None:
    o = Opening()
    assert o.refused("opening.sign_in", BIDDERS[0], contribution="a" * 64, **SIGNED) == "no_draw"


def test_a_revealed_contribution_is_its_bidders_alone_until_the_sheet() -> None:
    """No one, chair and supervisor included, learns a contribution (or whether it came) before
    the sheet: a bidder who withholds theirs does so blind, and the chair cannot time the sheet
    on them."""
    values = {B1: contribution(1), B2: contribution(2)}
    o = drawing(values)
    [event] = o.ok("opening.reveal_contribution", BIDDERS[0], value=values[B1].hex())
    for actor in (CHAIR, SUPERVISOR, CUSTODIAN, BIDDERS[1], BIDDERS[2]):
        assert not opening.visible(o.state, event, actor), actor.role
        entries = opening.snapshot(o.state, actor)["draw"]["contributions"]
        assert all(e["value"] is None for e in entries), actor
        assert all(e["revealed"] is None for e in entries if e["bidder"] == B1), actor
        assert values[B1].hex() not in json.dumps(opening.snapshot(o.state, actor))
    assert opening.visible(o.state, event, BIDDERS[0])
    [own] = opening.snapshot(o.state, BIDDERS[0])["draw"]["contributions"]
    assert own == {
        "bidder": B1,
        "commitment": hashlib.sha256(values[B1]).hexdigest(),
        "value": None,
        "revealed": True,
    }
    # a bidder sees only their own commitment; the watchers see every one
    assert [
        e["bidder"] for e in opening.snapshot(o.state, BIDDERS[1])["draw"]["contributions"]
    ] == [B2]
    assert [e["bidder"] for e in opening.snapshot(o.state, CHAIR)["draw"]["contributions"]] == [
        B1,
        B2,
    ]
    to_the_sheet(o)
    for actor in (CHAIR, BIDDERS[1], BIDDERS[2]):
        assert opening.visible(o.state, event, actor), "after the sheet, everyone sees it"
        entries = opening.snapshot(o.state, actor)["draw"]["contributions"]
        assert [(e["bidder"], e["value"], e["revealed"]) for e in entries] == [
            (B1, values[B1].hex(), True),
            (B2, None, False),
        ]
    assert "opening.sheet_published" in opening.REVEALS, "pages get the widened snapshot"


def test_a_lot_without_a_draw_refuses_one() -> None:
    assert fixed().refused("opening.commit_draw", CHAIR, commitment="a" * 64) == "no_draw"
    assert sheet().refused("opening.reveal_draw", CHAIR, seed=SEED.hex()) == "no_commitment"


def test_objections_are_answered_once_by_the_chair_from_decryption_to_the_record() -> None:
    assert fixed().refused("opening.object", BIDDERS[0], text="x") == "wrong_phase"
    o = decrypting()
    [raised] = o.ok("opening.object", BIDDERS[0], text="解密时间窗过短")
    assert raised.data == {"bidder": B1, "text": "解密时间窗过短"}
    assert o.refused("opening.answer", BIDDERS[1], objection=raised.seq, text="x") == (
        "not_allowed"
    )
    assert o.refused("opening.object", CHAIR, text="x") == "not_allowed"
    assert o.refused("opening.object", STRANGER, text="x") == "no_bid"
    assert o.refused("opening.answer", CHAIR, objection=99, text="x") == "no_such_objection"
    o.ok("opening.answer", CHAIR, objection=raised.seq, text="按招标文件规定执行")
    assert o.refused("opening.answer", CHAIR, objection=raised.seq, text="y") == (
        "already_answered"
    )
    r = recording()
    [late] = r.ok("opening.object", BIDDERS[2], text="记录有误")
    r.ok("opening.answer", CHAIR, objection=late.seq, text="已核对")
    assert r.state.objections[-1].answer == "已核对"


# the record --------------------------------------------------------------------------------


def test_the_record_waits_for_every_answer() -> None:
    o = sheet()
    [raised] = o.ok("opening.object", BIDDERS[0], text="报价读错")
    assert o.refused("opening.generate_record", CHAIR) == "objections_pending"
    assert o.refused("opening.generate_record", SUPERVISOR) == "not_allowed"
    o.ok("opening.answer", CHAIR, objection=raised.seq, text="已更正")
    o.ok("opening.generate_record", CHAIR)
    assert o.state.phase == "record"


def test_the_record_is_a_pure_document_with_its_canonical_digest() -> None:
    o = sheet()
    at = T0 + timedelta(hours=1)
    [generated] = o.ok("opening.generate_record", CHAIR, at)
    document = generated.data["document"]
    assert generated.data["digest"] == hashlib.sha256(canonical(document)).hexdigest()
    assert generated.data["confirm_until"] == (at + timedelta(minutes=30)).isoformat()
    assert document == opening.record_document(sheet().state, at), "a function of the state"
    assert document["lot"] == "LOT-1" and document["tender"] == "ZJ-ZS-2026-0417"
    assert document["title"] == "第1标段" and document["count"] == 3
    assert [(b["bidder"], b["status"], b["cause"]) for b in document["bids"]] == [
        (B1, "decrypted", None),
        (B2, "revoked", "bidder_key_lost"),
        (B3, "revoked", "bidder_absent"),
    ]
    assert document["sheet"]["rows"] == rows_for(o)
    assert document["times"]["scheduled"] == T0.isoformat()
    assert document["times"]["generated"] == at.isoformat()
    assert document["times"]["window_closed"] == LATE.isoformat()
    canonical(document)  # JSON-ready all the way down
    assert o.refused("opening.generate_record", CHAIR) == "wrong_phase"


def test_the_record_names_the_quorum_s_use() -> None:
    o = settling()
    o.ok("opening.request_quorum", CHAIR, bidders=[B2], reason="CA锁损坏")
    o.ok("opening.share_submitted", CUSTODIAN, **share(1))
    o.ok("opening.share_submitted", CUSTODIAN, **share(3))
    o.ok("opening.quorum_opened", SYSTEM, bidder=B2, sealed_key="q" * 32, shares=[3, 1])
    o.ok("opening.settle_failures", CHAIR)
    o.ok("opening.publish_sheet", CHAIR, rows=rows_for(o))
    [generated] = o.ok("opening.generate_record", CHAIR)
    assert generated.data["document"]["quorum"] == [
        {
            "bidders": [B2],
            "reason": "CA锁损坏",
            "shares": [{"index": 1, "custodian": "notary"}, {"index": 3, "custodian": "sup"}],
            "opened": {B2: [1, 3]},
            "cancelled": None,
        }
    ]


def test_each_bidder_confirms_or_dissents_once() -> None:
    o = recording()
    assert o.refused("opening.confirm_record", CHAIR, opinion="confirm", **SIGNED) == (
        "not_allowed"
    )
    assert o.refused("opening.confirm_record", STRANGER, opinion="confirm", **SIGNED) == "no_bid"
    assert o.refused("opening.confirm_record", BIDDERS[1], opinion="dissent", **SIGNED) == (
        "text_needed"
    )
    [confirmed] = o.ok("opening.confirm_record", BIDDERS[0], opinion="confirm", **SIGNED)
    assert confirmed.data == {"bidder": B1, "opinion": "confirm", "text": "", **SIGNED}
    assert o.refused("opening.confirm_record", BIDDERS[0], opinion="confirm", **SIGNED) == (
        "already_confirmed"
    )
    o.ok("opening.confirm_record", BIDDERS[1], opinion="dissent", text="未读出工期", **SIGNED)
    late = T0 + timedelta(minutes=31)
    assert o.refused("opening.confirm_record", BIDDERS[2], late, opinion="confirm", **SIGNED) == (
        "deadline_passed"
    )


def test_confirmations_close_when_all_answered_or_at_the_deadline() -> None:
    o = recording()
    assert o.refused("opening.close_confirmations", SYSTEM) == "confirmations_open"
    assert o.refused("opening.close_confirmations", CHAIR) == "not_allowed"
    for b in BIDDERS:
        o.ok("opening.confirm_record", b, opinion="confirm", **SIGNED)
    [closed] = o.ok("opening.close_confirmations", SYSTEM)
    assert closed.data == {"deemed": {}}
    assert o.refused("opening.close_confirmations", SYSTEM) == "confirmations_closed"
    assert o.refused("opening.confirm_record", BIDDERS[0], opinion="confirm", **SIGNED) == (
        "confirmations_closed"
    )


@pytest.mark.parametrize(
    ("silence", "deemed"), [("consent", "confirmed"), ("refusal", "not_signed")]
)
def test_silence_counts_as_the_lot_says(silence: str, deemed: str) -> None:
    o = recording(record={"confirm_minutes": 10, "silence": silence})
    o.ok("opening.confirm_record", BIDDERS[0], opinion="confirm", **SIGNED)
    assert o.refused("opening.close_confirmations", SYSTEM, T0 + timedelta(minutes=9)) == (
        "confirmations_open"
    )
    [closed] = o.ok("opening.close_confirmations", SYSTEM, T0 + timedelta(minutes=10))
    assert closed.data == {"deemed": {B2: deemed, B3: deemed}}


def test_the_chair_countersigns_after_the_confirmations_then_publishes() -> None:
    o = recording()
    assert o.refused("opening.countersign", CHAIR, **SIGNED) == "confirmations_open"
    assert o.refused("opening.publish_record", CHAIR, checkpoint={}, proofs=[]) == "wrong_phase"
    o.ok("opening.close_confirmations", SYSTEM, T0 + timedelta(minutes=30))
    assert o.refused("opening.countersign", BIDDERS[0], **SIGNED) == "not_allowed"
    [raised] = o.ok("opening.object", BIDDERS[0], text="签章有误")
    assert o.refused("opening.countersign", CHAIR, **SIGNED) == "objections_pending"
    o.ok("opening.answer", CHAIR, objection=raised.seq, text="已核对")
    [signed] = o.ok("opening.countersign", CHAIR, **SIGNED)
    assert signed.data == {"chair": "chair", **SIGNED} and o.state.phase == "countersigned"
    assert o.refused("opening.object", BIDDERS[0], text="x") == "wrong_phase"
    assert o.refused("opening.publish_record", SUPERVISOR, checkpoint={}, proofs=[]) == (
        "not_allowed"
    )
    checkpoint, proofs = {"size": 12, "root": "cm9vdA=="}, [{"index": 3, "proof": []}]
    [published] = o.ok("opening.publish_record", CHAIR, checkpoint=checkpoint, proofs=proofs)
    assert published.data == {
        "digest": o.state.record.digest if o.state.record else None,
        "checkpoint": checkpoint,
        "proofs": proofs,
    }
    assert o.state.phase == "published"
    assert o.refused("opening.publish_record", CHAIR, checkpoint={}, proofs=[]) == "wrong_phase"


# who sees what -----------------------------------------------------------------------------


def stamped(name: str, data: dict[str, Any]) -> Event:
    return Event(name, data, 9, T0, SYSTEM)


def test_before_the_deadline_bidders_do_not_see_who_else_may_bid_after_it_all_is_public() -> None:
    early = Opening()
    early.ok("opening.sign_in", BIDDERS[0])
    came = stamped("opening.signed_in", {"bidder": B2})
    assert not opening.visible(early.state, came, BIDDERS[0]), "who signed in is secret"
    assert opening.visible(early.state, came, BIDDERS[1]) and opening.visible(
        early.state, came, CHAIR
    )
    assert opening.visible(early.state, came, SUPERVISOR)
    assert not opening.visible(early.state, came, CUSTODIAN)
    view = opening.snapshot(early.state, BIDDERS[0])
    assert view["signed_in"] is None and view["me_signed_in"] is True and view["bids"] == []

    o = settling()
    for event in [
        stamped("opening.bid_decrypted", {"bidder": B1, **KEY}),
        stamped("opening.bids_fixed", {"bids": [{"bidder": B1}, {"bidder": B2}]}),
        stamped("opening.quorum_requested", {"bidders": [B2, B3], "reason": "x"}),
        stamped("opening.failures_settled", {"settled": {B2: "revoked"}}),
        stamped("opening.share_submitted", share(1)),
    ]:
        for actor in (*BIDDERS, CUSTODIAN, SUPERVISOR):
            assert opening.visible(o.state, event, actor), (event.name, actor.subject)
    view = opening.snapshot(o.state, BIDDERS[1])
    assert {b["bidder"]: b["status"] for b in view["bids"]} == {
        B1: "decrypted",
        B2: "failed",
        B3: "failed",
    }, "from the deadline, every decryption status is shown to everyone"
    assert view["sheet"] is None, "the prices stay sealed until the sheet"


def test_the_client_and_shell_commands_are_split() -> None:
    client, shell = set(opening.ARGUMENTS), set(opening.SHELL_ARGUMENTS)
    assert not client & shell
    assert client | shell == set(opening.RULES.all_commands())
    room = opening.room_type()
    assert not shell & set(room.arguments), "the WebSocket edge never takes a shell command"
    assert client <= set(room.arguments)


def roundtrip(events: list[Event]) -> list[Event]:
    """The events as the store gives them back: data through JSON."""
    return [Event(e.name, json.loads(json.dumps(e.data)), e.seq, e.at, e.actor) for e in events]


def test_a_whole_opening_replays_from_its_log_and_shows_each_actor_its_share() -> None:
    o = decrypting(k_range=["0.00", "0.05", "0.01"])
    o.ok("opening.decrypted", BIDDERS[0], **KEY)
    o.ok("opening.report_failure", BIDDERS[1], cause="bidder_key_lost", **SIGNED)
    o.ok("opening.object", BIDDERS[2], text="无法解密")
    o.ok("opening.close_window", SYSTEM, LATE)
    before = opening.snapshot(o.state, BIDDERS[0])
    assert before["phase"] == "settling" and before["count"] == 3
    assert [b["bidder"] for b in before["bids"]] == [B1, B2, B3], "the opening is public"
    assert before["signed_in"] == [B1, B2, B3] and before["me_signed_in"] is True
    assert before["sheet"] is None and before["quorum"]["requested"] == []
    assert before["objections"][0]["bidder"] == B3, "objections are public"
    assert sorted(before["allowed"]) == ["opening.object", "opening.reveal_contribution"]
    assert before["actions"] == []
    o.ok("opening.request_quorum", CHAIR, bidders=[B3], reason="投标人网络故障")
    assert opening.snapshot(o.state, BIDDERS[0])["quorum"]["requested"] == [B3]
    watcher = opening.snapshot(o.state, SUPERVISOR)
    assert watcher["quorum"]["requested"] == [B3] and watcher["quorum"]["pending"]
    assert watcher["signed_in"] == [B1, B2, B3]
    custodian = opening.snapshot(o.state, CUSTODIAN)
    assert custodian["actions"] == ["opening.share_submitted"] and len(custodian["bids"]) == 3
    o.ok("opening.share_submitted", CUSTODIAN, **share(1))
    o.ok("opening.share_submitted", CHAIR, **share(2))
    assert opening.snapshot(o.state, CHAIR)["quorum"]["submitted"] == [1, 2]
    o.ok("opening.quorum_opened", SYSTEM, bidder=B3, sealed_key="q" * 32, shares=[1, 2])
    o.ok("opening.settle_failures", CHAIR)
    o.ok("opening.answer", CHAIR, objection=o.state.objections[0].seq, text="已由密钥保管人开启")
    o.ok("opening.publish_sheet", CHAIR, rows=rows_for(o))
    after = opening.snapshot(o.state, BIDDERS[0])
    assert [(b["bidder"], b["status"]) for b in after["bids"]] == [
        (B1, "decrypted"),
        (B2, "revoked"),
        (B3, "quorum_opened"),
    ]
    assert after["sheet"]["rows"][2]["fields"]["price"] == "3650000.00"
    assert after["sheet"]["rows"][1]["fields"] == {}
    assert after["quorum"]["requested"] == [B3]
    o.ok("opening.reveal_draw", CHAIR, seed=SEED.hex())
    o.ok("opening.generate_record", CHAIR, T0 + timedelta(hours=1))
    for b in BIDDERS[:2]:
        o.ok("opening.confirm_record", b, T0 + timedelta(hours=1), opinion="confirm", **SIGNED)
    assert opening.snapshot(o.state, BIDDERS[2])["actions"] == ["opening.confirm_record"]
    o.ok("opening.close_confirmations", SYSTEM, T0 + timedelta(hours=2))
    o.ok("opening.countersign", CHAIR, **SIGNED)
    o.ok("opening.publish_record", CHAIR, checkpoint={"size": 1}, proofs=[])
    view = opening.snapshot(o.state, BIDDERS[2])
    record = view["record"]
    assert view["phase"] == "published" and view["draw"]["seed"] == SEED.hex()
    assert record["confirmations"][B1] == {"opinion": "confirm", "text": ""}
    assert record["deemed"] == {B3: "confirmed"}
    assert record["countersigned"]["chair"] == "chair"
    assert record["published"] == {"checkpoint": {"size": 1}, "proofs": []}
    assert record["digest"] == opening.record_digest(record["document"])
    assert view["allowed"] == [] and view["actions"] == []
    json.dumps(view)  # a page renders it as it is
    replayed = opening.initial({**CONFIG, "k_range": ["0.00", "0.05", "0.01"]})
    for event in roundtrip(o.log):
        replayed = opening.apply(replayed, event)
    assert replayed == o.state, "the log alone rebuilds the room"
