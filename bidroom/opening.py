"""The remote bid opening (不见面开标), as a pure room type — first part: from sign-in to the sheet.

The steps (../shared/DOMAIN.md): bidders sign in (签到); at the deadline the bids are fixed and
their count is public; with fewer than three the chair decides, and the decision is recorded;
the chair starts the decryption window (解密时间窗); each bidder decrypts their own bid; a
failure is settled by its cause (Art. 31: the bidder's fault = treated as revoked 撤销, anyone
else's = treated as withdrawn 撤回); after the window, custodians may open a bid with the lot's
opening key (the quorum remedy); only when every bid is settled is the opening sheet (唱标)
published, to everyone at once. Objections (异议) and the chair's answers are recorded.

The coefficient K of benchmark methods is drawn verifiably: a commitment (SHA-256 of a random
seed, drawn outside the core) is published before the sheet, the seed after it, and anyone
recomputes K with ``draw_k``. Still to come (issue 5): the opening record with its signatures,
and the browser pages.

Rules of this file: as bidroom.meeting — pure, phases and roles as data, every refusal a
Rejected with a stable code, ``now`` an argument.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bidroom import meeting
from bidroom.compose import Composite, Part
from bidroom.room import JSON, SYSTEM, Actor, Command, Decision, Event, Rejected, Rules, check

KIND = "opening"
MIN_BIDS = 3
CHAIR = frozenset({"chair"})
BIDDER = frozenset({"bidder"})
CUSTODIAN = frozenset({"custodian", "chair"})
ONLY_SYSTEM = frozenset({SYSTEM.role})

RULES = Rules(
    phases=("signing_in", "bids_fixed", "decrypting", "settling", "sheet", "terminated"),
    commands={
        "signing_in": {"opening.sign_in": BIDDER, "opening.fix_bids": ONLY_SYSTEM},
        "bids_fixed": {"opening.decide": CHAIR, "opening.start_window": CHAIR},
        "decrypting": {
            "opening.decrypted": BIDDER,
            "opening.failed": BIDDER | CHAIR,
            "opening.object": BIDDER,
            "opening.answer": CHAIR,
            "opening.commit_draw": CHAIR,
            "opening.close_window": CHAIR | ONLY_SYSTEM,
        },
        "settling": {
            "opening.quorum_opened": CUSTODIAN,
            "opening.failed": CHAIR,
            "opening.publish_sheet": CHAIR,
            "opening.object": BIDDER,
            "opening.answer": CHAIR,
            "opening.commit_draw": CHAIR,
        },
        "sheet": {
            "opening.object": BIDDER,
            "opening.answer": CHAIR,
            "opening.reveal_draw": CHAIR,
        },
        "terminated": {},
    },
)

# Who caused a decryption failure decides how the bid is treated (Art. 31).
CAUSES: Mapping[str, str] = {
    "bidder_key_lost": "revoked",  # the bidder's fault: treated as revoked (撤销)
    "bidder_absent": "revoked",
    "platform_fault": "withdrawn",  # anyone else's: treated as withdrawn (撤回)
    "ca_fault": "withdrawn",
}
SETTLED = frozenset({"decrypted", "quorum_opened", "revoked", "withdrawn"})
DIGEST = r"^[0-9a-f]{64}$"


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class NoArgs(_Args):
    pass


class DecideArgs(_Args):
    decision: str = Field(pattern="^(continue|terminate)$")
    reason: str = Field(min_length=1, max_length=2000)


class DecryptedArgs(_Args):
    """The data key, sealed to the room by the bidder's browser, and its signature over it."""

    sealed_key: str = Field(min_length=16, max_length=4096)
    signature: str = Field(min_length=16, max_length=1024)


class FailedArgs(_Args):
    bidder: str | None = Field(default=None, max_length=200)
    cause: str = Field(pattern="^(" + "|".join(CAUSES) + ")$")


class QuorumArgs(_Args):
    bidder: str = Field(min_length=1, max_length=200)
    shares: list[str] = Field(min_length=1, max_length=16)  # hex SHA-256 of each share used


class TextArgs(_Args):
    text: str = Field(min_length=1, max_length=2000)


class AnswerArgs(TextArgs):
    objection: int = Field(ge=1)


class CommitArgs(_Args):
    commitment: str = Field(pattern=DIGEST)  # hex SHA-256 of the seed, before the sheet


class RevealArgs(_Args):
    seed: str = Field(pattern=DIGEST)  # the 32 random bytes, hex, revealed after it


ARGUMENTS: Mapping[str, type[BaseModel]] = {
    "opening.sign_in": NoArgs,
    "opening.decide": DecideArgs,
    "opening.start_window": NoArgs,
    "opening.decrypted": DecryptedArgs,
    "opening.failed": FailedArgs,
    "opening.close_window": NoArgs,
    "opening.quorum_opened": QuorumArgs,
    "opening.publish_sheet": NoArgs,
    "opening.object": TextArgs,
    "opening.answer": AnswerArgs,
    "opening.commit_draw": CommitArgs,
    "opening.reveal_draw": RevealArgs,
}


@dataclass(frozen=True, slots=True)
class Bid:
    bidder: str
    envelope: str  # hex SHA-256 of the sealed envelope as received
    status: str = "sealed"


@dataclass(frozen=True, slots=True)
class OpeningState:
    lot: str
    window: timedelta
    roles: frozenset[str]
    phase: str = "signing_in"
    signed_in: frozenset[str] = frozenset()
    bids: Mapping[str, Bid] = field(default_factory=dict)
    decision: str | None = None
    window_ends: datetime | None = None
    objections: tuple[tuple[int, str, str], ...] = ()  # (seq, bidder, text)
    answers: Mapping[int, str] = field(default_factory=dict)
    k_range: tuple[Decimal, Decimal, Decimal] | None = None  # (low, high, step), drawn live
    commitment: str | None = None
    k: Decimal | None = None


def initial(config: Mapping[str, Any]) -> OpeningState:
    k = config.get("k_range")  # e.g. ["0.00", "0.05", "0.005"] for benchmark methods
    return OpeningState(
        k_range=(Decimal(str(k[0])), Decimal(str(k[1])), Decimal(str(k[2]))) if k else None,
        lot=str(config.get("lot", "")),
        window=timedelta(minutes=int(config.get("window_minutes", 30))),
        roles=frozenset(config.get("roles") or ("chair", "bidder", "supervisor", "custodian")),
    )


# decide ------------------------------------------------------------------------------------


def decide(state: OpeningState, command: Command, actor: Actor, now: datetime) -> Decision:
    refused = check(RULES, state.phase, command, actor)
    if refused is not None:
        return refused
    return _DECIDERS[command.name](state, command.args, actor, now)


def _sign_in(state: OpeningState, args: Mapping[str, Any], actor: Actor, now: datetime) -> Decision:
    if actor.subject in state.signed_in:
        return Rejected("already_signed_in", "you have signed in already", {})
    return [Event("opening.signed_in", {"bidder": actor.subject})]


def _fix_bids(
    state: OpeningState, args: Mapping[str, Any], actor: Actor, now: datetime
) -> Decision:
    """System, at the deadline: the bids received are fixed; their count is public."""
    bids = [{"bidder": str(b["bidder"]), "envelope": str(b["envelope"])} for b in args["bids"]]
    return [
        Event("opening.bids_fixed", {"bids": bids}),
        Event("opening.count_published", {"count": len(bids)}),
    ]


def _decide(state: OpeningState, args: Mapping[str, Any], actor: Actor, now: datetime) -> Decision:
    if len(state.bids) >= MIN_BIDS:
        return Rejected("not_needed", f"{len(state.bids)} bids: no decision is needed", {})
    if state.decision is not None:
        return Rejected("already_decided", f"the chair decided: {state.decision}", {})
    return [
        Event(
            "opening.decided",
            {"decision": args["decision"], "reason": args["reason"], "count": len(state.bids)},
        )
    ]


def _start_window(
    state: OpeningState, args: Mapping[str, Any], actor: Actor, now: datetime
) -> Decision:
    if len(state.bids) < MIN_BIDS and state.decision != "continue":
        return Rejected(
            "decision_needed",
            f"only {len(state.bids)} bids: the chair decides first (continue or terminate)",
            {"count": len(state.bids)},
        )
    return [Event("opening.window_started", {"ends": (now + state.window).isoformat()})]


def _decrypted(
    state: OpeningState, args: Mapping[str, Any], actor: Actor, now: datetime
) -> Decision:
    bid = state.bids.get(actor.subject)
    if bid is None:
        return Rejected("no_bid", "you have no bid in this lot", {})
    if bid.status != "sealed":
        return Rejected("already_settled", f"your bid is {bid.status} already", {})
    if state.window_ends is not None and now >= state.window_ends:
        return Rejected("window_closed", "the decryption window has closed", {})
    return [
        Event(
            "opening.bid_decrypted",
            {
                "bidder": actor.subject,
                "sealed_key": args["sealed_key"],
                "signature": args["signature"],
            },
        )
    ]


def _failed(state: OpeningState, args: Mapping[str, Any], actor: Actor, now: datetime) -> Decision:
    bidder = actor.subject if actor.role == "bidder" else args.get("bidder")
    bid = state.bids.get(bidder or "")
    if bid is None:
        return Rejected("no_bid", "no such bid in this lot", {"bidder": bidder})
    if bid.status != "sealed":
        return Rejected("already_settled", f"the bid is {bid.status} already", {})
    return [
        Event(
            "opening.bid_failed",
            {"bidder": bidder, "cause": args["cause"], "treated_as": CAUSES[args["cause"]]},
        )
    ]


def _close_window(
    state: OpeningState, args: Mapping[str, Any], actor: Actor, now: datetime
) -> Decision:
    if state.window_ends is not None and now < state.window_ends:
        return Rejected(
            "window_open",
            "the decryption window has not ended yet",
            {"ends": state.window_ends.isoformat()},
        )
    return [Event("opening.window_closed", {})]


def _quorum(state: OpeningState, args: Mapping[str, Any], actor: Actor, now: datetime) -> Decision:
    bid = state.bids.get(args["bidder"])
    if bid is None:
        return Rejected("no_bid", "no such bid in this lot", {"bidder": args["bidder"]})
    if bid.status != "sealed":
        return Rejected("already_settled", f"the bid is {bid.status} already", {})
    return [
        Event("opening.quorum_opened", {"bidder": args["bidder"], "shares": list(args["shares"])})
    ]


def _publish(state: OpeningState, args: Mapping[str, Any], actor: Actor, now: datetime) -> Decision:
    unsettled = sorted(b.bidder for b in state.bids.values() if b.status not in SETTLED)
    if unsettled:
        return Rejected(
            "not_all_settled",
            "the sheet waits until every bid is settled",
            {"unsettled": len(unsettled)},
        )
    return [
        Event(
            "opening.sheet_published",
            {
                "opened": sorted(
                    b.bidder
                    for b in state.bids.values()
                    if b.status in ("decrypted", "quorum_opened")
                )
            },
        )
    ]


def _object(state: OpeningState, args: Mapping[str, Any], actor: Actor, now: datetime) -> Decision:
    return [Event("opening.objection", {"bidder": actor.subject, "text": args["text"]})]


def _answer(state: OpeningState, args: Mapping[str, Any], actor: Actor, now: datetime) -> Decision:
    known = {seq for seq, _, _ in state.objections}
    if args["objection"] not in known:
        return Rejected("no_such_objection", "no objection with that number", {})
    if args["objection"] in state.answers:
        return Rejected("already_answered", "that objection has its answer", {})
    return [Event("opening.answer", {"objection": args["objection"], "text": args["text"]})]


def draw_k(seed: bytes, lot: str, low: Decimal, high: Decimal, step: Decimal) -> Decimal:
    """K from the revealed seed; anyone recomputes it from the record.

    n = SHA-256("bidroom K v1\\n" || lot || "\\n" || seed) as a big-endian integer;
    K = low + (n mod steps) * step, with steps = (high - low) / step + 1.
    """
    steps = int((high - low) / step) + 1
    digest = hashlib.sha256(b"bidroom K v1\n" + lot.encode() + b"\n" + seed).digest()
    return low + (int.from_bytes(digest, "big") % steps) * step


def _commit(state: OpeningState, args: Mapping[str, Any], actor: Actor, now: datetime) -> Decision:
    if state.k_range is None:
        return Rejected("no_draw", "this lot draws no coefficient K", {})
    if state.commitment is not None:
        return Rejected("already_committed", "the draw's commitment is published already", {})
    return [Event("opening.draw_committed", {"commitment": args["commitment"]})]


def _reveal(state: OpeningState, args: Mapping[str, Any], actor: Actor, now: datetime) -> Decision:
    if state.k_range is None or state.commitment is None:
        return Rejected("no_commitment", "no commitment was published before the sheet", {})
    if state.k is not None:
        return Rejected("already_drawn", f"K was drawn: {state.k}", {})
    seed = bytes.fromhex(args["seed"])
    if hashlib.sha256(seed).hexdigest() != state.commitment:
        return Rejected("seed_mismatch", "the seed does not match the published commitment", {})
    k = draw_k(seed, state.lot, *state.k_range)
    return [
        Event(
            "opening.draw_revealed",
            {"seed": args["seed"], "k": str(k), "range": [str(v) for v in state.k_range]},
        )
    ]


_DECIDERS = {
    "opening.sign_in": _sign_in,
    "opening.fix_bids": _fix_bids,
    "opening.decide": _decide,
    "opening.start_window": _start_window,
    "opening.decrypted": _decrypted,
    "opening.failed": _failed,
    "opening.close_window": _close_window,
    "opening.quorum_opened": _quorum,
    "opening.publish_sheet": _publish,
    "opening.object": _object,
    "opening.answer": _answer,
    "opening.commit_draw": _commit,
    "opening.reveal_draw": _reveal,
}


# apply -------------------------------------------------------------------------------------


def _status(state: OpeningState, bidder: str, status: str) -> OpeningState:
    bids = dict(state.bids)
    bids[bidder] = replace(bids[bidder], status=status)
    return replace(state, bids=bids)


def _fixed(state: OpeningState, event: Event) -> OpeningState:
    bids = {b["bidder"]: Bid(b["bidder"], b["envelope"]) for b in event.data["bids"]}
    return replace(state, phase="bids_fixed", bids=bids)


def _decided(state: OpeningState, event: Event) -> OpeningState:
    ended = "terminated" if event.data["decision"] == "terminate" else state.phase
    return replace(state, decision=event.data["decision"], phase=ended)


def apply(state: OpeningState, event: Event) -> OpeningState:
    d = event.data
    folders: dict[str, Any] = {
        "opening.signed_in": lambda s: replace(s, signed_in=s.signed_in | {d["bidder"]}),
        "opening.bids_fixed": lambda s: _fixed(s, event),
        "opening.decided": lambda s: _decided(s, event),
        "opening.window_started": lambda s: replace(
            s, phase="decrypting", window_ends=datetime.fromisoformat(d["ends"])
        ),
        "opening.bid_decrypted": lambda s: _status(s, d["bidder"], "decrypted"),
        "opening.bid_failed": lambda s: _status(s, d["bidder"], d["treated_as"]),
        "opening.window_closed": lambda s: replace(s, phase="settling"),
        "opening.quorum_opened": lambda s: _status(s, d["bidder"], "quorum_opened"),
        "opening.sheet_published": lambda s: replace(s, phase="sheet"),
        "opening.objection": lambda s: replace(
            s, objections=(*s.objections, (event.seq, d["bidder"], d["text"]))
        ),
        "opening.answer": lambda s: replace(s, answers={**s.answers, d["objection"]: d["text"]}),
        "opening.draw_committed": lambda s: replace(s, commitment=d["commitment"]),
        "opening.draw_revealed": lambda s: replace(s, k=Decimal(d["k"])),
    }
    folder = folders.get(event.name)
    return state if folder is None else folder(state)


# who may see what --------------------------------------------------------------------------


def roles(state: OpeningState) -> frozenset[str]:
    return state.roles


def may_join(state: OpeningState, actor: Actor) -> Rejected | None:
    if actor.role not in state.roles:
        return Rejected(
            "not_allowed",
            f"role {actor.role} may not join this opening",
            {"roles": sorted(state.roles)},
        )
    return None


def visible(state: OpeningState, event: Event, actor: Actor) -> bool:
    """Before the sheet, who bid is for the chair and supervisors; a bidder sees their own."""
    if actor.role in ("chair", "supervisor") or state.phase in ("sheet", "terminated"):
        return True
    if event.name == "opening.bids_fixed":
        return False  # the list is for watchers; everyone sees opening.count_published
    bidder = event.data.get("bidder")
    return bidder is None or bidder == actor.subject


def _draw_view(state: OpeningState) -> JSON | None:
    if state.k_range is None:
        return None
    return {
        "range": [str(v) for v in state.k_range],
        "commitment": state.commitment,
        "k": None if state.k is None else str(state.k),
    }


def snapshot(state: OpeningState, actor: Actor) -> JSON:
    mine = state.bids.get(actor.subject)
    watcher = actor.role in ("chair", "supervisor") or state.phase == "sheet"
    return {
        "kind": KIND,
        "lot": state.lot,
        "phase": state.phase,
        "count": len(state.bids),
        "decision": state.decision,
        "window_ends": state.window_ends.isoformat() if state.window_ends else None,
        "statuses": (
            {b.bidder: b.status for b in state.bids.values()}
            if watcher
            else {actor.subject: mine.status}
            if mine
            else {}
        ),
        "settled": sum(1 for b in state.bids.values() if b.status in SETTLED),
        "draw": _draw_view(state),
        "allowed": [c for c in RULES.allowed_in(state.phase, actor.role) if c in ARGUMENTS],
    }


class Opening:
    """The opening part, as bidroom.compose sees it (presence is the meeting part's)."""

    kind = KIND
    rules = RULES
    arguments = ARGUMENTS
    gates: frozenset[str] = frozenset()

    initial = staticmethod(initial)
    decide = staticmethod(decide)
    apply = staticmethod(apply)
    roles = staticmethod(roles)
    may_join = staticmethod(may_join)
    visible = staticmethod(visible)
    snapshot = staticmethod(snapshot)
    joined = staticmethod(meeting.joined)
    left = staticmethod(meeting.left)
    expired = staticmethod(meeting.expired)


def room_type() -> Composite:
    """The opening room: the meeting (presence, announcements, messages) and the opening."""
    return Composite(
        KIND,
        [
            Part("meeting", ("meeting.", "presence."), meeting.Meeting()),
            Part("opening", ("opening.",), Opening()),
        ],
    )
