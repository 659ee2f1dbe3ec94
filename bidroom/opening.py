"""The remote bid opening (不见面开标), as a pure room type: from sign-in to the published record.

The steps (../shared/DOMAIN.md, contract in docs/opening.md "The opening room"): bidders sign in
(签到); at the deadline the bids are fixed and their count is public; with fewer than three the
chair decides, and the decision is recorded; the chair starts the decryption window (解密时间窗);
each bidder decrypts their own bid or a failure is reported; when the window closes, bids still
sealed have failed (``bidder_absent``). After the window the chair may ask the key custodians to
open failed bids with the lot's opening key (the quorum remedy), then settles the rest by cause
(Art. 31: the bidder's fault = treated as revoked 撤销, anyone else's = treated as withdrawn 撤回).
Only when every bid is settled is the opening sheet (唱标) published, to everyone at once. The
coefficient K of benchmark methods is drawn so that no single party chooses it (K v2,
docs/opening.md "The draw of K"): the chair's seed (committed before the window, revealed after
the sheet), each signed-in bidder's contribution (committed at sign-in, revealed in the window,
hidden from everyone but its bidder until the sheet; absent if not revealed by then) and an input
fixed when the window starts, after every commitment; anyone recomputes K with
:func:`draw_k_v2` (:func:`draw_k`: v1, the seed alone, for rooms from before v2).
Objections (异议) and the chair's answers are recorded. The opening record (开标记录) is a pure
function of the state (:func:`record_document`); each bidder confirms or dissents with a
signature, silence counts as the lot says, the chair countersigns and the record is published.

Phases: signing_in → bids_fixed → decrypting → settling → sheet → record → countersigned →
published; ``terminated`` ends it early. Statuses of a bid: sealed → decrypted | failed;
failed → quorum_opened | revoked | withdrawn (revoked at once when the custodians' key opens
the bid's opening-key entry but not the bid: ``bidder_entry_mismatch``).

Rules of this file: as bidroom.meeting — pure, phases and roles as data (:data:`RULES`), every
refusal a Rejected with a stable code, ``now`` an argument. Client commands (:data:`ARGUMENTS`)
arrive over the WebSocket; :data:`SHELL_ARGUMENTS` reach the core only through the HTTP shell,
after it checked a signature, a data key or a share.

Rejection codes, besides room.check's ``wrong_phase`` and ``not_allowed``:
already_signed_in, no_bid, duplicate_bid, not_needed, already_decided, decision_needed,
no_bids, already_settled, already_failed, window_closed, window_open, bidder_needed,
no_remedy, not_failed, already_requested, quorum_pending, no_quorum_request, unknown_share,
wrong_custodian, commitment_mismatch, duplicate_share, not_requested, share_not_submitted,
too_few_shares, nothing_to_settle, not_all_settled, sheet_mismatch, no_draw,
already_committed, no_commitment, already_drawn, seed_mismatch, no_such_objection,
already_answered, draw_not_committed, draw_pending, objections_pending, deadline_passed,
already_confirmed, text_needed, confirmations_open, confirmations_closed, same_cause,
cause_blames_bidder, not_the_bid, no_contribution, already_revealed, contribution_mismatch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from bidroom import meeting
from bidroom import opening as this  # this module: its functions make the Opening part
from bidroom.audit import canonical
from bidroom.bidform import money
from bidroom.compose import Composite, ModuleRoomType, Part
from bidroom.room import (
    JSON,
    SYSTEM,
    Actor,
    Command,
    Decision,
    Event,
    Rejected,
    Rules,
    admits,
    check,
)

KIND = "opening"
RECORD_FORMAT = "bidroom-opening-record"
MIN_BIDS = 3
CHAIR = frozenset({"chair"})
BIDDER = frozenset({"bidder"})
CUSTODIAN = frozenset({"custodian", "chair"})
ONLY_SYSTEM = frozenset({SYSTEM.role})
WATCHERS = frozenset({"chair", "supervisor"})
TALK = {"opening.object": BIDDER, "opening.answer": CHAIR}  # objections, decrypting .. record

RULES = Rules(
    phases=(
        "signing_in",
        "bids_fixed",
        "decrypting",
        "settling",
        "sheet",
        "record",
        "countersigned",
        "published",
        "terminated",
    ),
    commands={
        # A bidder's sign-in may carry the commitment of their contribution to K.
        "signing_in": {"opening.sign_in": BIDDER, "opening.fix_bids": ONLY_SYSTEM},
        "bids_fixed": {
            "opening.sign_in": BIDDER,
            "opening.decide": CHAIR,
            # K's commitment comes before the window: before any data key reaches the platform,
            # so nobody who could read a price can still choose K.
            "opening.commit_draw": CHAIR,
            "opening.start_window": CHAIR,
        },
        "decrypting": {
            "opening.decrypted": BIDDER,
            # K's contributions are revealed once the window fixed K's last input, up to the
            # sheet; each stays hidden from everyone but its bidder until the sheet.
            "opening.reveal_contribution": BIDDER,
            "opening.report_failure": BIDDER | CHAIR,
            "opening.close_window": CHAIR | ONLY_SYSTEM,
            **TALK,
        },
        "settling": {
            "opening.reveal_contribution": BIDDER,
            "opening.report_failure": CHAIR,  # the chair corrects a failure's cause
            "opening.request_quorum": CHAIR,
            "opening.cancel_quorum": CHAIR,
            "opening.share_submitted": CUSTODIAN,
            "opening.quorum_opened": ONLY_SYSTEM,
            "opening.quorum_refused": ONLY_SYSTEM,
            "opening.settle_failures": CHAIR,
            "opening.publish_sheet": CHAIR,
            **TALK,
        },
        "sheet": {"opening.reveal_draw": CHAIR, "opening.generate_record": CHAIR, **TALK},
        "record": {
            "opening.confirm_record": BIDDER,
            "opening.close_confirmations": ONLY_SYSTEM,
            "opening.countersign": CHAIR,
            **TALK,
        },
        "countersigned": {"opening.publish_record": CHAIR},
        "published": {},
        "terminated": {},
    },
)

# Who caused a decryption failure decides how the bid is treated (Art. 31).
CAUSES: Mapping[str, str] = {
    "bidder_key_lost": "revoked",  # the bidder's fault: treated as revoked (撤销)
    "bidder_absent": "revoked",
    "bidder_cert_revoked": "revoked",
    # the custodians' key opens the bid's opening-key entry (or the entry was the bidder's to
    # get right: the lot's key was checked) but what it holds does not open the bid: the bidder
    # sealed a bid only they could open. Established by the custodians' open, never reported.
    "bidder_entry_mismatch": "revoked",
    "platform_fault": "withdrawn",  # anyone else's: treated as withdrawn (撤回)
    "ca_fault": "withdrawn",
    "network_fault": "withdrawn",
}
# Causes that blame the bidder: while the bidder could still act, only the bidder may report one
# (the window's end reports the absent); the chair's word alone never makes a bid revoked.
BLAMING = frozenset(cause for cause, treated in CAUSES.items() if treated == "revoked")
OPENED = frozenset({"decrypted", "quorum_opened"})
# After the first, everyone sees the opening whole (the bids fixed at the deadline are public);
# after the sheet, everyone sees K's revealed contributions (hidden from all until then).
REVEALS = frozenset({"opening.count_published", "opening.sheet_published"})
AFTER_SHEET = frozenset({"sheet", "record", "countersigned", "published"})
K_V1 = "bidroom K v1"
K_V2 = "bidroom K v2"
K_INPUT = "bidroom K input v2"
SETTLED = OPENED | {"revoked", "withdrawn"}
GUARANTEE_CHECKS = ("ok", "insufficient", "missing", "not_required")
DIGEST = r"^[0-9a-f]{64}$"
TEXT_MAX = 2000


# the edge contract -------------------------------------------------------------------------


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class NoArgs(_Args):
    pass


class _MaySign(_Args):
    """A command a bidder signs with their certificate key (:data:`SIGNED`): the WebSocket
    shell checks the signature as a signed action (docs/opening.md "Signed actions") before the
    core sees it; the core requires it where the bidder's word decides."""

    signature: str | None = Field(default=None, min_length=16, max_length=1024)  # base64
    certificate: str | None = Field(default=None, min_length=16, max_length=16384)  # DER, b64
    chain: list[Annotated[str, Field(min_length=16, max_length=16384)]] | None = Field(
        default=None, max_length=5
    )


class SignInArgs(_MaySign):
    # hex SHA-256 of the bidder's contribution to K: 32 random bytes their browser made
    contribution: str | None = Field(default=None, pattern=DIGEST)


class ContributionArgs(_Args):
    value: str = Field(pattern=DIGEST)  # the contribution's 32 bytes, hex, after the window


class DecideArgs(_Args):
    decision: Literal["continue", "terminate"]
    reason: str = Field(min_length=1, max_length=TEXT_MAX)


class FailureArgs(_MaySign):
    """A bidder reports their own failure (no ``bidder``); the chair names the bidder."""

    bidder: str | None = Field(default=None, min_length=1, max_length=200)
    cause: Literal[
        "bidder_key_lost",
        "bidder_absent",
        "bidder_cert_revoked",
        "platform_fault",
        "ca_fault",
        "network_fault",
    ]


class QuorumRequestArgs(_Args):
    bidders: list[str] = Field(min_length=1, max_length=100)
    reason: str = Field(min_length=1, max_length=TEXT_MAX)


class ReasonArgs(_Args):
    reason: str = Field(min_length=1, max_length=TEXT_MAX)


class TextArgs(_Args):
    text: str = Field(min_length=1, max_length=TEXT_MAX)


class AnswerArgs(TextArgs):
    objection: int = Field(ge=1)


class CommitArgs(_Args):
    commitment: str = Field(pattern=DIGEST)  # hex SHA-256 of the seed, before the window
    # The seed sealed to the room key (ca.handoff, bound to the commitment), so that the draw
    # is revealed after the sheet even if the chair's browser lost it.
    sealed_seed: str | None = Field(default=None, min_length=16, max_length=1024)


class RevealArgs(_Args):
    seed: str = Field(pattern=DIGEST)  # the 32 random bytes, hex, revealed after it


class _Signed(_Args):
    signature: str = Field(min_length=16, max_length=1024)  # base64
    certificate: str = Field(min_length=16, max_length=16384)  # DER, base64


class DecryptedArgs(_Signed):
    """The data key, sealed to the room by the bidder's browser, and its signature over it."""

    sealed_key: str = Field(min_length=16, max_length=4096)


class FixedBid(_Args):
    bidder: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    envelope: str = Field(pattern=DIGEST)  # hex SHA-256 of the sealed envelope as received


class FixBidsArgs(_Args):
    bids: list[FixedBid] = Field(max_length=1000)


class ShareArgs(_Args):
    custodian: str = Field(min_length=1, max_length=200)
    index: int = Field(ge=1, le=255)
    commitment: str = Field(pattern=DIGEST)
    sealed_share: str = Field(min_length=16, max_length=4096)  # sealed to the room key


class QuorumOpenedArgs(_Args):
    bidder: str = Field(min_length=1, max_length=200)
    sealed_key: str = Field(min_length=16, max_length=4096)
    shares: list[int] = Field(min_length=1, max_length=255)  # the indices combined


class QuorumRefusedArgs(_Args):
    """The custodians' key, combined and checked against the lot's, opened the bid's entry for
    it, but not the bid: the evidence (the entry's key id, the envelope as received, the code
    of ca.envelope's refusal)."""

    bidder: str = Field(min_length=1, max_length=200)
    shares: list[int] = Field(min_length=1, max_length=255)
    entry: str = Field(pattern=DIGEST)
    envelope: str = Field(pattern=DIGEST)
    code: str = Field(pattern=r"^envelope_[a-z_]+$", max_length=64)


class SheetRow(_Args):
    bidder: str = Field(min_length=1, max_length=200)
    name: str = Field(max_length=200)
    status: str
    fields: dict[str, Any] = Field(default_factory=dict)
    guarantee_check: Literal["ok", "insufficient", "missing", "not_required"] | None = None
    over_ceiling: bool = False
    form_error: str | None = Field(default=None, max_length=100)


class SheetArgs(_Args):
    rows: list[SheetRow] = Field(max_length=1000)


class ConfirmArgs(_Signed):
    opinion: Literal["confirm", "dissent"]
    text: str = Field(default="", max_length=TEXT_MAX)


class CountersignArgs(_Signed):
    pass


class PublishArgs(_Args):
    checkpoint: dict[str, Any] | str  # the audit log's signed checkpoint
    proofs: dict[str, Any] | list[Any]  # inclusion proofs of the record's entries


ARGUMENTS: Mapping[str, type[BaseModel]] = {
    "opening.sign_in": SignInArgs,
    "opening.decide": DecideArgs,
    "opening.start_window": NoArgs,
    "opening.report_failure": FailureArgs,
    "opening.close_window": NoArgs,
    "opening.request_quorum": QuorumRequestArgs,
    "opening.cancel_quorum": ReasonArgs,
    "opening.settle_failures": NoArgs,
    "opening.commit_draw": CommitArgs,
    "opening.reveal_draw": RevealArgs,
    "opening.reveal_contribution": ContributionArgs,
    "opening.object": TextArgs,
    "opening.answer": AnswerArgs,
    "opening.generate_record": NoArgs,
}
"""What clients may send over the WebSocket (the room type's ``arguments``)."""

SIGNED: Mapping[str, tuple[str, ...]] = {
    "opening.sign_in": ("contribution",),
    "opening.report_failure": ("cause",),
}
"""The WebSocket commands a bidder signs: the action's fields besides ``room``. A bidder's own
failure report and a sign-in that commits a contribution to K are the bidder's word: a session
token alone (which the operator could mint) does not make them (``signature_required``)."""

SHELL_ARGUMENTS: Mapping[str, type[BaseModel]] = {
    "opening.fix_bids": FixBidsArgs,
    "opening.decrypted": DecryptedArgs,
    "opening.share_submitted": ShareArgs,
    "opening.quorum_opened": QuorumOpenedArgs,
    "opening.quorum_refused": QuorumRefusedArgs,
    "opening.publish_sheet": SheetArgs,
    "opening.confirm_record": ConfirmArgs,
    "opening.close_confirmations": NoArgs,
    "opening.countersign": CountersignArgs,
    "opening.publish_record": PublishArgs,
}
"""What the HTTP shell and the clock send, validated there before ``hub.execute``."""


# state -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bid:
    bidder: str
    name: str
    envelope: str  # hex SHA-256 of the sealed envelope as received
    status: str = "sealed"
    cause: str | None = None  # why it failed, if it did
    reported_by: str | None = None  # who said so: "bidder", "chair", "clock", "custodians"

    @property
    def settled_by_bidder(self) -> bool:
        """Decrypted, or failed on the bidder's own word: nothing left for them to do in the
        window. A failure the chair reported leaves the bid open for its bidder until the end."""
        return self.status not in ("sealed", "failed") or self.reported_by == "bidder"

    def to_json(self) -> JSON:
        return {
            "bidder": self.bidder,
            "name": self.name,
            "envelope": self.envelope,
            "status": self.status,
            "cause": self.cause,
            "reported_by": self.reported_by,
        }


@dataclass(frozen=True, slots=True)
class ShareCommitment:
    """What the lot's config says of one key share (ca.shares.Commitment.to_dict)."""

    index: int
    custodian: str | None
    digest: str


@dataclass(frozen=True, slots=True)
class Quorum:
    """One request to the custodians: the bids to open, and the shares that came in for it."""

    bidders: tuple[str, ...]
    reason: str
    shares: Mapping[int, str] = field(default_factory=dict)  # index -> custodian
    opened: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # bidder -> indices
    cancelled: str | None = None  # the chair's reason
    # bidder -> the evidence that the key opened their entry but not their bid
    refused: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def pending(self) -> bool:
        done = len(self.opened) + len(self.refused)
        return self.cancelled is None and done < len(self.bidders)

    def to_json(self) -> JSON:
        shown: JSON = {
            "bidders": list(self.bidders),
            "reason": self.reason,
            "shares": [{"index": i, "custodian": c} for i, c in sorted(self.shares.items())],
            "opened": {b: list(ix) for b, ix in self.opened.items()},
            "cancelled": self.cancelled,
        }
        if self.refused:  # only then: a record without one keeps the digest it always had
            shown["refused"] = {b: dict(evidence) for b, evidence in self.refused.items()}
        return shown


@dataclass(frozen=True, slots=True)
class Objection:
    seq: int
    bidder: str
    text: str
    at: str | None
    answer: str | None = None
    answered_at: str | None = None

    def to_json(self) -> JSON:
        answer = None if self.answer is None else {"text": self.answer, "at": self.answered_at}
        return {
            "seq": self.seq,
            "bidder": self.bidder,
            "text": self.text,
            "at": self.at,
            "answer": answer,
        }


@dataclass(frozen=True, slots=True)
class Record:
    """The generated opening record and what happened to it since."""

    document: Mapping[str, Any]
    digest: str
    confirm_until: str
    confirmations: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # opinion, text
    deemed: Mapping[str, str] | None = None  # set when confirmations close
    countersigned: Mapping[str, Any] | None = None  # {chair, at}
    published: Mapping[str, Any] | None = None  # {checkpoint, proofs}


@dataclass(frozen=True, slots=True)
class Spec:
    """The lot's frozen parameters the opening needs (from the room's config)."""

    lot: str
    title: str = ""
    tender: str = ""
    starts_at: str | None = None
    window: timedelta = timedelta(minutes=30)
    remedy: str = "none"
    commitments: Mapping[int, ShareCommitment] = field(default_factory=dict)
    k: int | None = None  # shares needed
    confirm: timedelta = timedelta(minutes=30)
    silence: str = "consent"  # consent | refusal: what not signing in time counts as
    ceiling_price: str | None = None
    guarantee: Mapping[str, Any] = field(default_factory=dict)
    sheet_fields: tuple[str, ...] = ("price",)
    k_range: tuple[Decimal, Decimal, Decimal] | None = None  # (low, high, step), drawn live


@dataclass(frozen=True, slots=True)
class OpeningState:
    spec: Spec
    roles: frozenset[str]
    phase: str = "signing_in"
    signed_in: frozenset[str] = frozenset()
    bids: Mapping[str, Bid] = field(default_factory=dict)
    decision: Mapping[str, Any] | None = None  # {decision, reason, count}
    window_ends: datetime | None = None
    times: Mapping[str, str] = field(default_factory=dict)  # step -> when it happened
    quorums: tuple[Quorum, ...] = ()
    sheet: Mapping[str, Any] | None = None  # {rows, ceiling_price, fields}
    objections: tuple[Objection, ...] = ()
    commitment: str | None = None
    seed: str | None = None
    sealed_seed: str | None = None  # the seed sealed to the room key, if the chair gave it
    k: Decimal | None = None
    formula: str | None = None  # K_V1 | K_V2, once K is drawn
    contributions: Mapping[str, str] = field(default_factory=dict)  # bidder -> commitment
    counted: Mapping[str, str] = field(default_factory=dict)  # those with a bid, at the window
    revealed: Mapping[str, str] = field(default_factory=dict)  # bidder -> value (hex)
    fixed: Mapping[str, str] | None = None  # K's input fixed at the window: {at, digest}
    record: Record | None = None

    @property
    def lot(self) -> str:
        return self.spec.lot

    @property
    def quorum(self) -> Quorum | None:
        """The request still waiting for shares or openings, if any."""
        last = self.quorums[-1] if self.quorums else None
        return last if last is not None and last.pending() else None


def _commitments(items: Iterable[Mapping[str, Any]]) -> dict[int, ShareCommitment]:
    found = {}
    for item in items:
        digest = str(item.get("digest") or item.get("commitment") or "").lower()
        custodian = item.get("custodian")
        index = int(item["index"])
        found[index] = ShareCommitment(index, None if custodian is None else str(custodian), digest)
    return found


def _spec(config: Mapping[str, Any]) -> Spec:
    k = config.get("k_range")  # e.g. ["0.00", "0.05", "0.005"] for benchmark methods
    record = config.get("record") or {}
    commitments = _commitments(config.get("commitments") or ())
    shares_k = config.get("k") or next(
        (c.get("k") for c in config.get("commitments") or () if c.get("k")), None
    )
    fields = [str(f) for f in config.get("sheet_fields") or ()]
    return Spec(
        lot=str(config.get("lot", "")),
        title=str(config.get("title", "")),
        tender=str(config.get("tender", "")),
        starts_at=config.get("starts_at"),
        window=timedelta(minutes=int(config.get("window_minutes", 30))),
        remedy=str(config.get("remedy") or "none"),
        commitments=commitments,
        k=None if shares_k is None else int(shares_k),
        confirm=timedelta(minutes=int(record.get("confirm_minutes", 30))),
        silence=str(record.get("silence") or "consent"),
        ceiling_price=config.get("ceiling_price"),
        guarantee=dict(config.get("guarantee") or {}),
        sheet_fields=("price", *(f for f in fields if f != "price")),
        k_range=(Decimal(str(k[0])), Decimal(str(k[1])), Decimal(str(k[2]))) if k else None,
    )


def initial(config: Mapping[str, Any]) -> OpeningState:
    return OpeningState(
        spec=_spec(config),
        roles=frozenset(config.get("roles") or ("chair", "bidder", "supervisor", "custodian")),
    )


# decide ------------------------------------------------------------------------------------

Args = Mapping[str, Any]


def decide(state: OpeningState, command: Command, actor: Actor, now: datetime) -> Decision:
    refused = check(RULES, state.phase, command, actor)
    if refused is not None:
        return refused
    return _DECIDERS[command.name](state, command.args, actor, now)


def _no_bid(bidder: str | None) -> Rejected:
    return Rejected("no_bid", "no such bid in this lot", {"bidder": bidder})


def _sign_in(state: OpeningState, args: Args, actor: Actor, now: datetime) -> Decision:
    if actor.subject in state.signed_in:
        return Rejected("already_signed_in", "you have signed in already", {})
    if state.phase != "signing_in" and actor.subject not in state.bids:
        return _no_bid(actor.subject)
    contribution = args.get("contribution")
    if contribution is None:
        return [Event("opening.signed_in", {"bidder": actor.subject})]
    if state.spec.k_range is None:
        return Rejected("no_draw", "this lot draws no coefficient K", {})
    if args.get("signature") is None:
        return _unsigned("a contribution to K is committed with the bidder's signature")
    data = {"bidder": actor.subject, "contribution": str(contribution).lower(), **_signed(args)}
    return [Event("opening.signed_in", data)]


def _unsigned(message: str) -> Rejected:
    return Rejected("signature_required", message, {})


def _signed(args: Args) -> dict[str, str]:
    """The signature a bidder's signed command carries, kept with its event."""
    return {"signature": str(args["signature"]), "certificate": str(args["certificate"])}


def _fix_bids(state: OpeningState, args: Args, actor: Actor, now: datetime) -> Decision:
    """System, at the deadline: the bids received are fixed; their count is public."""
    bids = [
        {"bidder": str(b["bidder"]), "name": str(b["name"]), "envelope": str(b["envelope"])}
        for b in args["bids"]
    ]
    if len({b["bidder"] for b in bids}) != len(bids):
        return Rejected("duplicate_bid", "a bidder has one bid in a lot", {})
    return [
        Event("opening.bids_fixed", {"bids": bids}),
        Event("opening.count_published", {"count": len(bids)}),
    ]


def _decide(state: OpeningState, args: Args, actor: Actor, now: datetime) -> Decision:
    if len(state.bids) >= MIN_BIDS:
        return Rejected("not_needed", f"{len(state.bids)} bids: no decision is needed", {})
    if state.decision is not None:
        return Rejected("already_decided", f"the chair decided: {state.decision['decision']}", {})
    data = {"decision": args["decision"], "reason": args["reason"], "count": len(state.bids)}
    return [Event("opening.decided", data)]


def _start_window(state: OpeningState, args: Args, actor: Actor, now: datetime) -> Decision:
    count = len(state.bids)
    if count == 0:
        return Rejected("no_bids", "no bid was received: there is nothing to decrypt", {})
    if count < MIN_BIDS and (state.decision or {}).get("decision") != "continue":
        return Rejected(
            "decision_needed",
            f"only {count} bids: the chair decides first (continue or terminate)",
            {"count": count},
        )
    data: dict[str, Any] = {"ends": (now + state.spec.window).isoformat()}
    if state.spec.k_range is not None:
        if state.commitment is None:
            return Rejected("draw_not_committed", "commit the draw of K before the window", {})
        # K's last input, fixed now that no commitment can come any more (no sign-in, no
        # commit_draw from the window on), and before any contribution is revealed.
        at = now.isoformat()
        data["draw_input"] = {
            "at": at,
            "digest": fixed_input(state.lot, state.commitment, _counted(state), at),
        }
    return [Event("opening.window_started", data)]


def _sealed(bid: Bid | None, bidder: str | None) -> Rejected | None:
    """Refuse unless ``bid`` exists and is still sealed."""
    if bid is None:
        return _no_bid(bidder)
    if bid.status == "failed":
        return Rejected("already_failed", f"the bid has failed ({bid.cause})", {"bidder": bidder})
    if bid.status != "sealed":
        return Rejected("already_settled", f"the bid is {bid.status} already", {"bidder": bidder})
    return None


def _window_over(state: OpeningState, now: datetime) -> bool:
    return state.window_ends is not None and now >= state.window_ends


def _decrypted(state: OpeningState, args: Args, actor: Actor, now: datetime) -> Decision:
    bid = state.bids.get(actor.subject)
    # Within the window the bidder's own key prevails over a failure reported for them (by the
    # chair, or by themselves too soon): nobody else can take a bidder's decryption away.
    refused = None if bid is not None and bid.status == "failed" else _sealed(bid, actor.subject)
    if refused is not None:
        return refused
    if _window_over(state, now):
        return Rejected("window_closed", "the decryption window has closed", {})
    data = {
        "bidder": actor.subject,
        "sealed_key": args["sealed_key"],
        "signature": args["signature"],
        "certificate": args["certificate"],
    }
    return [Event("opening.bid_decrypted", data)]


def _report_failure(state: OpeningState, args: Args, actor: Actor, now: datetime) -> Decision:
    named = args.get("bidder")
    if actor.role == "bidder" and named not in (None, actor.subject):
        return Rejected("not_allowed", "a bidder reports a failure of their own bid only", {})
    bidder = actor.subject if actor.role == "bidder" else named
    if bidder is None:
        return Rejected("bidder_needed", "name the bidder whose decryption failed", {})
    bid = state.bids.get(bidder)
    cause = args["cause"]
    # Art. 31 treats a bid failed by its bidder's fault as revoked: that is never assigned on the
    # chair's word alone (the bidder reports it, or the window's end their absence).
    blames = actor.role != "bidder" and cause in BLAMING
    blaming = Rejected(
        "cause_blames_bidder",
        "only the bidder may report a cause that blames them",
        {"bidder": bidder, "cause": cause},
    )
    by = "bidder" if actor.role == "bidder" else "chair"
    data = {"bidder": bidder, "cause": cause, "by": by}
    if by == "bidder":  # their own word settles their bid: signed, never a session's alone
        if args.get("signature") is None:
            return _unsigned("a bidder's own failure report is signed with their certificate key")
        data |= _signed(args)
    reported = [Event("opening.failure_reported", data)]
    if state.phase == "settling" and bid is not None and bid.status == "failed":
        # After the window the chair may correct the cause in the bidder's favour (a network
        # fault first recorded as absence), never against it, before the bid is settled.
        if bid.cause == cause:
            return Rejected("same_cause", f"the failure is recorded as {bid.cause}", {})
        return blaming if blames else reported
    if blames:
        return blaming
    if bid is not None and bid.status == "failed" and actor.role == "bidder":
        # The chair reported it: within the window the bidder's own word replaces it.
        if bid.reported_by == "bidder":
            return Rejected("already_failed", f"the bid has failed ({bid.cause})", {})
    else:
        refused = _sealed(bid, bidder)
        if refused is not None:
            return refused
    if actor.role == "bidder" and _window_over(state, now):
        return Rejected("window_closed", "the decryption window has closed", {})
    return reported


def _close_window(state: OpeningState, args: Args, actor: Actor, now: datetime) -> Decision:
    """Time is up, or every bid is decrypted or failed on its own bidder's word (the clock closes
    it then); a failure the chair reported keeps the window open for that bidder to the end."""
    sealed = [b.bidder for b in state.bids.values() if b.status == "sealed"]
    waiting = [b.bidder for b in state.bids.values() if not b.settled_by_bidder]
    if not _window_over(state, now) and waiting:
        ends = state.window_ends.isoformat() if state.window_ends else None
        return Rejected(
            "window_open",
            "the decryption window has not ended and bids still wait for their bidders",
            {"ends": ends, "sealed": len(sealed), "waiting": len(waiting)},
        )
    # The phase change is public; which bids failed is for each bidder to see alone.
    absent = [
        Event("opening.failure_reported", {"bidder": b, "cause": "bidder_absent", "by": "clock"})
        for b in sealed
    ]
    return [Event("opening.window_closed", {"absent": len(sealed)}), *absent]


def _request_quorum(state: OpeningState, args: Args, actor: Actor, now: datetime) -> Decision:
    if state.spec.remedy != "quorum":
        return Rejected("no_remedy", "this lot names no quorum remedy", {})
    if state.quorum is not None:
        return Rejected("quorum_pending", "a request to the custodians is still open", {})
    bidders = list(dict.fromkeys(args["bidders"]))
    asked = {b for q in state.quorums for b in q.bidders}
    for bidder in bidders:
        bid = state.bids.get(bidder)
        if bid is None:
            return _no_bid(bidder)
        if bid.status != "failed":
            return Rejected("not_failed", f"the bid is {bid.status}", {"bidder": bidder})
        if bidder in asked:
            return Rejected("already_requested", "the quorum was asked once", {"bidder": bidder})
    return [Event("opening.quorum_requested", {"bidders": bidders, "reason": args["reason"]})]


def _cancel_quorum(state: OpeningState, args: Args, actor: Actor, now: datetime) -> Decision:
    if state.quorum is None:
        return Rejected("no_quorum_request", "no request to the custodians is open", {})
    return [Event("opening.quorum_cancelled", {"reason": args["reason"]})]


def _share_submitted(state: OpeningState, args: Args, actor: Actor, now: datetime) -> Decision:
    quorum = state.quorum
    if quorum is None:
        return Rejected("no_quorum_request", "no request to the custodians is open", {})
    index = int(args["index"])
    known = state.spec.commitments.get(index)
    if known is None:
        return Rejected("unknown_share", f"the lot has no share {index}", {"index": index})
    if known.custodian is not None and known.custodian != args["custodian"]:
        return Rejected("wrong_custodian", f"share {index} is another custodian's", {})
    if str(args["commitment"]).lower() != known.digest:
        return Rejected("commitment_mismatch", f"not the commitment of share {index}", {})
    if index in quorum.shares:
        return Rejected("duplicate_share", f"share {index} is in already", {"index": index})
    data = {
        "custodian": args["custodian"],
        "index": index,
        "commitment": known.digest,
        "sealed_share": args["sealed_share"],
    }
    return [Event("opening.share_submitted", data)]


def _quorum_shares(state: OpeningState, args: Args) -> Rejected | list[int]:
    """The shares that opened (or failed to open) a requested failed bid, if the request and
    the shares submitted bear them out (``envelope``, if given, must be the bid's)."""
    quorum, bidder = state.quorum, args["bidder"]
    if quorum is None or bidder not in quorum.bidders:
        return Rejected("not_requested", "the custodians were not asked to open this bid", {})
    bid = state.bids.get(bidder)
    if bid is None or bid.status != "failed":
        return Rejected("not_failed", "only a failed bid is opened by the quorum", {})
    if "envelope" in args and args["envelope"] != bid.envelope:
        return Rejected("not_the_bid", "the evidence is for another envelope", {})
    shares = sorted(set(args["shares"]))
    missing = [i for i in shares if i not in quorum.shares]
    if missing:
        return Rejected("share_not_submitted", "shares not submitted", {"missing": missing})
    if len(shares) < (state.spec.k or 1):
        return Rejected("too_few_shares", f"{state.spec.k} shares are needed", {})
    return shares


def _quorum_opened(state: OpeningState, args: Args, actor: Actor, now: datetime) -> Decision:
    shares = _quorum_shares(state, args)
    if isinstance(shares, Rejected):
        return shares
    data = {"bidder": args["bidder"], "sealed_key": args["sealed_key"], "shares": shares}
    return [Event("opening.quorum_opened", data)]


def _quorum_refused(state: OpeningState, args: Args, actor: Actor, now: datetime) -> Decision:
    """The bidder sealed a bid the lot's key cannot open: settled at once as their fault
    (Art. 31: revoked), so a bid only its bidder could open is no way to withdraw."""
    shares = _quorum_shares(state, args)
    if isinstance(shares, Rejected):
        return shares
    bidder = args["bidder"]
    data = {
        "bidder": bidder,
        "cause": "bidder_entry_mismatch",
        "entry": args["entry"],
        "envelope": args["envelope"],
        "code": args["code"],
        "shares": shares,
    }
    return [Event("opening.quorum_refused", data)]


def _failed(state: OpeningState) -> list[Bid]:
    return [b for b in state.bids.values() if b.status == "failed"]


def _settle_failures(state: OpeningState, args: Args, actor: Actor, now: datetime) -> Decision:
    if state.quorum is not None:
        return Rejected("quorum_pending", "the custodians' request is still open", {})
    failed = _failed(state)
    if not failed:
        return Rejected("nothing_to_settle", "no bid has a failure to settle", {})
    settled = {b.bidder: CAUSES[b.cause or "bidder_absent"] for b in failed}
    return [Event("opening.failures_settled", {"settled": settled})]


def _row_problem(bid: Bid | None, row: Mapping[str, Any], fields: Sequence[str]) -> str | None:
    if bid is None:
        return "no such bid"
    if row["status"] != bid.status or row["name"] != bid.name:
        return f"the bid is {bid.name}, {bid.status}"
    if bid.status not in OPENED and (row.get("fields") or row.get("guarantee_check")):
        return "a revoked or withdrawn bid shows no fields"
    unknown = set(row.get("fields") or {}) - set(fields)
    return f"fields not on this lot's sheet: {sorted(unknown)}" if unknown else None


def _publish_sheet(state: OpeningState, args: Args, actor: Actor, now: datetime) -> Decision:
    unsettled = [b.bidder for b in state.bids.values() if b.status not in SETTLED]
    if unsettled:
        return Rejected(
            "not_all_settled",
            "the sheet waits until every bid is settled",
            {"unsettled": len(unsettled)},
        )
    if state.spec.k_range is not None and state.commitment is None:
        # K's commitment must be public before anyone sees a price, or the draw proves nothing.
        return Rejected("draw_not_committed", "commit the draw of K before the sheet", {})
    rows = {str(r["bidder"]): r for r in args["rows"]}
    if len(rows) != len(args["rows"]) or set(rows) != set(state.bids):
        return Rejected("sheet_mismatch", "the sheet has one row per bid", {})
    for bidder, row in rows.items():
        problem = _row_problem(state.bids.get(bidder), row, state.spec.sheet_fields)
        if problem is not None:
            return Rejected("sheet_mismatch", problem, {"bidder": bidder})
    data = {
        "rows": [_row(rows[bidder]) for bidder in state.bids],
        "ceiling_price": state.spec.ceiling_price,
        "fields": list(state.spec.sheet_fields),
    }
    return [Event("opening.sheet_published", data)]


def _object(state: OpeningState, args: Args, actor: Actor, now: datetime) -> Decision:
    if actor.subject not in state.bids:
        return _no_bid(actor.subject)
    return [Event("opening.objection", {"bidder": actor.subject, "text": args["text"]})]


def _answer(state: OpeningState, args: Args, actor: Actor, now: datetime) -> Decision:
    found = next((o for o in state.objections if o.seq == args["objection"]), None)
    if found is None:
        return Rejected("no_such_objection", "no objection with that number", {})
    if found.answer is not None:
        return Rejected("already_answered", "that objection has its answer", {})
    return [Event("opening.answer", {"objection": found.seq, "text": args["text"]})]


def draw_k(seed: bytes, lot: str, low: Decimal, high: Decimal, step: Decimal) -> Decimal:
    """K v1, from the chair's seed alone (records before v2; the chair could choose it by
    trying seeds, which is why v2 exists); anyone recomputes it from the record.

    n = SHA-256("bidroom K v1\\n" || lot || "\\n" || seed) as a big-endian integer;
    K = low + (n mod steps) * step, with steps = (high - low) / step + 1.
    """
    digest = hashlib.sha256(b"bidroom K v1\n" + lot.encode() + b"\n" + seed).digest()
    return _k_of(digest, low, high, step)


def _k_of(digest: bytes, low: Decimal, high: Decimal, step: Decimal) -> Decimal:
    steps = int((high - low) / step) + 1
    return low + (int.from_bytes(digest, "big") % steps) * step


def fixed_input(lot: str, commitment: str, contributions: Mapping[str, str], at: str) -> str:
    """K's input fixed when the window starts, after every commitment (docs/opening.md):
    hex SHA-256("bidroom K input v2\\n" || canonical JSON {"lot", "commitment" (the chair's),
    "contributions" {bidder: commitment}, "at" (the window's start, ISO 8601)})."""
    body = {"lot": lot, "commitment": commitment, "contributions": dict(contributions), "at": at}
    return hashlib.sha256(K_INPUT.encode() + b"\n" + canonical(body)).hexdigest()


def draw_k_v2(
    seed: str,
    lot: str,
    k_range: Sequence[str],
    fixed: str,
    contributions: Mapping[str, str],
) -> Decimal:
    """K v2: from the chair's seed, every revealed bidder contribution and the fixed input.

    n = SHA-256("bidroom K v2\\n" || canonical JSON {"lot", "range": [low, high, step] as
    strings, "seed" (hex), "fixed" (hex), "contributions" {bidder: value hex, revealed only}})
    as a big-endian integer; K = low + (n mod steps) * step, as in v1.
    """
    body = {
        "lot": lot,
        "range": [str(v) for v in k_range],
        "seed": seed,
        "fixed": fixed,
        "contributions": dict(contributions),
    }
    digest = hashlib.sha256(K_V2.encode() + b"\n" + canonical(body)).digest()
    low, high, step = (Decimal(str(v)) for v in k_range)
    return _k_of(digest, low, high, step)


def _counted(state: OpeningState) -> dict[str, str]:
    """The contributions K counts: those of signed-in bidders with a bid, sorted by bidder."""
    return {b: c for b, c in sorted(state.contributions.items()) if b in state.bids}


def _reveal_contribution(state: OpeningState, args: Args, actor: Actor, now: datetime) -> Decision:
    commitment = state.counted.get(actor.subject)
    if state.fixed is None or commitment is None:
        return Rejected("no_contribution", "you committed no contribution to K at sign-in", {})
    if actor.subject in state.revealed:
        return Rejected("already_revealed", "your contribution to K is revealed already", {})
    value = str(args["value"]).lower()
    if hashlib.sha256(bytes.fromhex(value)).hexdigest() != commitment:
        return Rejected(
            "contribution_mismatch",
            "the value does not match the commitment you signed in with",
            {},
        )
    return [Event("opening.contribution_revealed", {"bidder": actor.subject, "value": value})]


def _commit(state: OpeningState, args: Args, actor: Actor, now: datetime) -> Decision:
    if state.spec.k_range is None:
        return Rejected("no_draw", "this lot draws no coefficient K", {})
    if state.commitment is not None:
        return Rejected("already_committed", "the draw's commitment is published already", {})
    data = {"commitment": args["commitment"], "sealed_seed": args.get("sealed_seed")}
    return [Event("opening.draw_committed", data)]


def _reveal(state: OpeningState, args: Args, actor: Actor, now: datetime) -> Decision:
    k_range = state.spec.k_range
    if k_range is None or state.commitment is None:
        return Rejected("no_commitment", "no commitment was published before the sheet", {})
    if state.k is not None:
        return Rejected("already_drawn", f"K was drawn: {state.k}", {})
    seed = bytes.fromhex(args["seed"])
    if hashlib.sha256(seed).hexdigest() != state.commitment:
        return Rejected("seed_mismatch", "the seed does not match the published commitment", {})
    shown = [str(v) for v in k_range]
    if state.fixed is None:  # a room whose window started before v2: K from the seed alone
        k = draw_k(seed, state.lot, *k_range)
        return [Event("opening.draw_revealed", {"seed": args["seed"], "k": str(k), "range": shown})]
    # A contribution not revealed by the sheet is absent from the formula (docs/opening.md).
    revealed = {b: state.revealed[b] for b in state.counted if b in state.revealed}
    k = draw_k_v2(seed.hex(), state.lot, shown, state.fixed["digest"], revealed)
    data = {
        "formula": K_V2,
        "seed": seed.hex(),
        "k": str(k),
        "range": shown,
        "fixed": dict(state.fixed),
        "contributions": revealed,
        "absent": [b for b in state.counted if b not in revealed],
    }
    return [Event("opening.draw_revealed", data)]


def _unanswered(state: OpeningState) -> Rejected | None:
    waiting = [o.seq for o in state.objections if o.answer is None]
    if waiting:
        return Rejected(
            "objections_pending", "every objection needs its answer first", {"objections": waiting}
        )
    return None


def _generate_record(state: OpeningState, args: Args, actor: Actor, now: datetime) -> Decision:
    if state.spec.k_range is not None and state.k is None:
        return Rejected("draw_pending", "K is drawn (and revealed) before the record", {})
    refused = _unanswered(state)
    if refused is not None:
        return refused
    document = record_document(state, now)
    data = {
        "document": document,
        "digest": record_digest(document),
        "confirm_until": (now + state.spec.confirm).isoformat(),
    }
    return [Event("opening.record_generated", data)]


def _record(state: OpeningState) -> Record:
    assert state.record is not None, "the record phase has a record"
    return state.record


def _confirm_record(state: OpeningState, args: Args, actor: Actor, now: datetime) -> Decision:
    record = _record(state)
    if actor.subject not in state.bids:
        return _no_bid(actor.subject)
    if record.deemed is not None:
        return Rejected("confirmations_closed", "confirmations are closed", {})
    if now >= datetime.fromisoformat(record.confirm_until):
        return Rejected("deadline_passed", "the time to confirm the record is over", {})
    if actor.subject in record.confirmations:
        return Rejected("already_confirmed", "you have answered already", {})
    if args["opinion"] == "dissent" and not str(args.get("text") or "").strip():
        return Rejected("text_needed", "a dissent says why, in writing", {})
    data = {
        "bidder": actor.subject,
        "opinion": args["opinion"],
        "text": str(args.get("text") or ""),
        "signature": args["signature"],
        "certificate": args["certificate"],
    }
    return [Event("opening.record_confirmed", data)]


def _close_confirmations(state: OpeningState, args: Args, actor: Actor, now: datetime) -> Decision:
    record = _record(state)
    if record.deemed is not None:
        return Rejected("confirmations_closed", "confirmations are closed already", {})
    silent = [b for b in state.bids if b not in record.confirmations]
    if silent and now < datetime.fromisoformat(record.confirm_until):
        return Rejected(
            "confirmations_open",
            "bidders may still confirm the record",
            {"until": record.confirm_until, "waiting": len(silent)},
        )
    deemed = "confirmed" if state.spec.silence == "consent" else "not_signed"
    return [Event("opening.confirmations_closed", {"deemed": dict.fromkeys(silent, deemed)})]


def _countersign(state: OpeningState, args: Args, actor: Actor, now: datetime) -> Decision:
    if _record(state).deemed is None:
        return Rejected("confirmations_open", "the bidders' confirmations are not closed", {})
    refused = _unanswered(state)
    if refused is not None:
        return refused
    data = {
        "chair": actor.subject,
        "signature": args["signature"],
        "certificate": args["certificate"],
    }
    return [Event("opening.countersigned", data)]


def _publish_record(state: OpeningState, args: Args, actor: Actor, now: datetime) -> Decision:
    data = {
        "digest": _record(state).digest,
        "checkpoint": args["checkpoint"],
        "proofs": args["proofs"],
    }
    return [Event("opening.record_published", data)]


_DECIDERS = {
    "opening.sign_in": _sign_in,
    "opening.fix_bids": _fix_bids,
    "opening.decide": _decide,
    "opening.start_window": _start_window,
    "opening.decrypted": _decrypted,
    "opening.report_failure": _report_failure,
    "opening.close_window": _close_window,
    "opening.request_quorum": _request_quorum,
    "opening.cancel_quorum": _cancel_quorum,
    "opening.share_submitted": _share_submitted,
    "opening.quorum_opened": _quorum_opened,
    "opening.quorum_refused": _quorum_refused,
    "opening.settle_failures": _settle_failures,
    "opening.publish_sheet": _publish_sheet,
    "opening.object": _object,
    "opening.answer": _answer,
    "opening.commit_draw": _commit,
    "opening.reveal_draw": _reveal,
    "opening.reveal_contribution": _reveal_contribution,
    "opening.generate_record": _generate_record,
    "opening.confirm_record": _confirm_record,
    "opening.close_confirmations": _close_confirmations,
    "opening.countersign": _countersign,
    "opening.publish_record": _publish_record,
}


# the sheet and the record, pure -------------------------------------------------------------


class Row(TypedDict):
    """One line of the opening sheet (唱标): JSON-ready."""

    bidder: str
    name: str
    status: str
    fields: dict[str, Any]
    guarantee_check: str | None  # ok | insufficient | missing | not_required; None: no fields
    over_ceiling: bool
    form_error: str | None


def _row(row: Mapping[str, Any]) -> Row:
    return Row(
        bidder=str(row["bidder"]),
        name=str(row["name"]),
        status=str(row["status"]),
        fields=dict(row.get("fields") or {}),
        guarantee_check=row.get("guarantee_check"),
        over_ceiling=bool(row.get("over_ceiling")),
        form_error=row.get("form_error"),
    )


def guarantee_check(offered: Mapping[str, Any] | None, required: Mapping[str, Any]) -> str:
    """How the bid's guarantee (保证金 / 电子保函) meets the lot's requirement."""
    if not required.get("required"):
        return "not_required"
    amount = money((offered or {}).get("amount"))
    if amount is None:
        return "missing"
    return "ok" if amount >= (money(required.get("amount")) or Decimal(0)) else "insufficient"


def over_ceiling(price: object, ceiling: object) -> bool:
    """Whether a price is above the lot's ceiling (最高投标限价); no ceiling: never."""
    offered, limit = money(price), money(ceiling)
    return offered is not None and limit is not None and offered > limit


def sheet_rows(
    bids: Iterable[Bid],
    forms: Mapping[str, Mapping[str, Any] | str],
    lot_spec: Mapping[str, Any],
) -> list[Row]:
    """The sheet's rows, in the bids' order, from each opened bid's form (bidform.read_form).

    ``forms`` maps a bidder to the form read from their bid, or to the code of the error that
    stopped it being read. ``lot_spec`` has ``ceiling_price``, ``guarantee`` {required, amount}
    and ``sheet_fields``. Revoked and withdrawn bids carry no fields.
    """
    listed = [str(f) for f in lot_spec.get("sheet_fields") or ()]
    fields = ["price", *(f for f in listed if f != "price")]
    return [
        _sheet_row(bid, forms.get(bid.bidder, "form_missing"), fields, lot_spec) for bid in bids
    ]


def _sheet_row(
    bid: Bid, form: Mapping[str, Any] | str, fields: Sequence[str], lot_spec: Mapping[str, Any]
) -> Row:
    row = Row(
        bidder=bid.bidder,
        name=bid.name,
        status=bid.status,
        fields={},
        guarantee_check=None,
        over_ceiling=False,
        form_error=None,
    )
    if bid.status not in OPENED:
        return row
    if isinstance(form, str):
        return {**row, "form_error": form}
    return {
        **row,
        "fields": {name: form.get(name) for name in fields},
        "guarantee_check": guarantee_check(form.get("guarantee"), lot_spec.get("guarantee") or {}),
        "over_ceiling": over_ceiling(form.get("price"), lot_spec.get("ceiling_price")),
    }


def record_document(state: OpeningState, now: datetime) -> JSON:
    """The opening record (开标记录) as JSON: a pure function of the state and the time.

    Everyone signs its digest (:func:`record_digest`); anyone recomputes it from the log.
    """
    spec = state.spec
    return {
        "format": RECORD_FORMAT,
        "version": 1,
        "lot": spec.lot,
        "tender": spec.tender,
        "title": spec.title,
        "times": {"scheduled": spec.starts_at, **state.times, "generated": now.isoformat()},
        "window_ends": state.window_ends.isoformat() if state.window_ends else None,
        "count": len(state.bids),
        "bids": [b.to_json() for b in state.bids.values()],
        "decision": None if state.decision is None else dict(state.decision),
        "remedy": spec.remedy,
        "quorum": [q.to_json() for q in state.quorums],
        "sheet": None if state.sheet is None else dict(state.sheet),
        "draw": _draw_view(state),
        "objections": [o.to_json() for o in state.objections],
    }


def record_digest(document: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the document's canonical JSON (sorted keys, compact, UTF-8)."""
    return hashlib.sha256(canonical(document)).hexdigest()


# apply -------------------------------------------------------------------------------------


def apply(state: OpeningState, event: Event) -> OpeningState:
    folder = _FOLDERS.get(event.name)
    return state if folder is None else folder(state, event)


def _at(event: Event) -> str | None:
    return event.at.isoformat() if event.at else None


def _timed(state: OpeningState, step: str, event: Event) -> Mapping[str, str]:
    at = _at(event)
    return state.times if at is None else {**state.times, step: at}


def _bid(state: OpeningState, bidder: str, **changes: Any) -> OpeningState:
    bids = dict(state.bids)
    bids[bidder] = replace(bids[bidder], **changes)
    return replace(state, bids=bids)


def _fold_fixed(state: OpeningState, event: Event) -> OpeningState:
    bids = {
        b["bidder"]: Bid(b["bidder"], b.get("name", ""), b["envelope"]) for b in event.data["bids"]
    }
    return replace(state, bids=bids, times=_timed(state, "bids_fixed", event))


def _fold_decided(state: OpeningState, event: Event) -> OpeningState:
    ended = "terminated" if event.data["decision"] == "terminate" else state.phase
    return replace(state, decision=dict(event.data), phase=ended)


def _fold_window(state: OpeningState, event: Event) -> OpeningState:
    ends = datetime.fromisoformat(event.data["ends"])
    times = _timed(state, "window_started", event)
    state = replace(state, phase="decrypting", window_ends=ends, times=times)
    fixed = event.data.get("draw_input")  # absent before K v2: the draw stays v1
    if fixed is None:
        return state
    return replace(state, fixed=dict(fixed), counted=_counted(state))


def _fold_signed_in(state: OpeningState, event: Event) -> OpeningState:
    bidder, contribution = event.data["bidder"], event.data.get("contribution")
    state = replace(state, signed_in=state.signed_in | {bidder})
    if contribution is None:
        return state
    return replace(state, contributions={**state.contributions, bidder: contribution})


def _fold_drawn(state: OpeningState, event: Event) -> OpeningState:
    d = event.data
    return replace(state, seed=d["seed"], k=Decimal(d["k"]), formula=d.get("formula", K_V1))


def _with_quorum(state: OpeningState, **changes: Any) -> OpeningState:
    last = replace(state.quorums[-1], **changes)
    return replace(state, quorums=(*state.quorums[:-1], last))


def _fold_requested(state: OpeningState, event: Event) -> OpeningState:
    asked = Quorum(tuple(event.data["bidders"]), str(event.data["reason"]))
    return replace(state, quorums=(*state.quorums, asked))


def _fold_share(state: OpeningState, event: Event) -> OpeningState:
    shares = {**state.quorums[-1].shares, int(event.data["index"]): str(event.data["custodian"])}
    return _with_quorum(state, shares=shares)


def _fold_quorum_opened(state: OpeningState, event: Event) -> OpeningState:
    bidder = str(event.data["bidder"])
    opened = {**state.quorums[-1].opened, bidder: tuple(int(i) for i in event.data["shares"])}
    return _bid(_with_quorum(state, opened=opened), bidder, status="quorum_opened")


def _fold_quorum_refused(state: OpeningState, event: Event) -> OpeningState:
    d = event.data
    bidder = str(d["bidder"])
    evidence = {k: d[k] for k in ("cause", "entry", "envelope", "code", "shares")}
    refused = {**state.quorums[-1].refused, bidder: evidence}
    state = _with_quorum(state, refused=refused)
    return _bid(
        state, bidder, status=CAUSES[d["cause"]], cause=d["cause"], reported_by="custodians"
    )


def _fold_settled(state: OpeningState, event: Event) -> OpeningState:
    for bidder, treated_as in event.data["settled"].items():
        state = _bid(state, bidder, status=treated_as)
    return state


def _fold_sheet(state: OpeningState, event: Event) -> OpeningState:
    sheet = {
        "rows": [dict(r) for r in event.data["rows"]],
        "ceiling_price": event.data["ceiling_price"],
        "fields": list(event.data["fields"]),
    }
    return replace(state, phase="sheet", sheet=sheet, times=_timed(state, "sheet_published", event))


def _fold_objection(state: OpeningState, event: Event) -> OpeningState:
    raised = Objection(event.seq, str(event.data["bidder"]), str(event.data["text"]), _at(event))
    return replace(state, objections=(*state.objections, raised))


def _fold_answer(state: OpeningState, event: Event) -> OpeningState:
    seq, text = event.data["objection"], str(event.data["text"])
    objections = tuple(
        replace(o, answer=text, answered_at=_at(event)) if o.seq == seq else o
        for o in state.objections
    )
    return replace(state, objections=objections)


def _fold_record(state: OpeningState, event: Event) -> OpeningState:
    d = event.data
    record = Record(d["document"], d["digest"], d["confirm_until"])
    times = _timed(state, "record_generated", event)
    return replace(state, phase="record", record=record, times=times)


def _with_record(state: OpeningState, **changes: Any) -> OpeningState:
    return replace(state, record=replace(_record(state), **changes))


def _fold_confirmed(state: OpeningState, event: Event) -> OpeningState:
    d = event.data
    confirmations = {**_record(state).confirmations, d["bidder"]: (d["opinion"], d["text"])}
    return _with_record(state, confirmations=confirmations)


def _fold_countersigned(state: OpeningState, event: Event) -> OpeningState:
    signed = {"chair": event.data["chair"], "at": _at(event)}
    return replace(_with_record(state, countersigned=signed), phase="countersigned")


def _fold_published(state: OpeningState, event: Event) -> OpeningState:
    published = {"checkpoint": event.data["checkpoint"], "proofs": event.data["proofs"]}
    return replace(_with_record(state, published=published), phase="published")


_FOLDERS: Mapping[str, Any] = {
    "opening.signed_in": _fold_signed_in,
    "opening.bids_fixed": _fold_fixed,
    # The count is what bidders see of the fixing: it is the event that moves the phase.
    "opening.count_published": lambda s, e: replace(s, phase="bids_fixed"),
    "opening.decided": _fold_decided,
    "opening.window_started": _fold_window,
    "opening.bid_decrypted": lambda s, e: _bid(s, e.data["bidder"], status="decrypted", cause=None),
    "opening.failure_reported": lambda s, e: _bid(
        s, e.data["bidder"], status="failed", cause=e.data["cause"], reported_by=e.data.get("by")
    ),
    "opening.window_closed": lambda s, e: replace(
        s, phase="settling", times=_timed(s, "window_closed", e)
    ),
    "opening.quorum_requested": _fold_requested,
    "opening.quorum_cancelled": lambda s, e: _with_quorum(s, cancelled=str(e.data["reason"])),
    "opening.share_submitted": _fold_share,
    "opening.quorum_opened": _fold_quorum_opened,
    "opening.quorum_refused": _fold_quorum_refused,
    "opening.failures_settled": _fold_settled,
    "opening.sheet_published": _fold_sheet,
    "opening.objection": _fold_objection,
    "opening.answer": _fold_answer,
    "opening.draw_committed": lambda s, e: replace(
        s, commitment=e.data["commitment"], sealed_seed=e.data.get("sealed_seed")
    ),
    "opening.contribution_revealed": lambda s, e: replace(
        s, revealed={**s.revealed, e.data["bidder"]: e.data["value"]}
    ),
    "opening.draw_revealed": _fold_drawn,
    "opening.record_generated": _fold_record,
    "opening.record_confirmed": _fold_confirmed,
    "opening.confirmations_closed": lambda s, e: _with_record(s, deemed=dict(e.data["deemed"])),
    "opening.countersigned": _fold_countersigned,
    "opening.record_published": _fold_published,
}


# who may see what --------------------------------------------------------------------------


def roles(state: OpeningState) -> frozenset[str]:
    return state.roles


def may_join(state: OpeningState, actor: Actor) -> Rejected | None:
    return admits(state.roles, actor, "this opening")


def _sees_all(state: OpeningState, actor: Actor) -> bool:
    """Chair and supervisors always; everyone else once the bids are fixed.

    Before the deadline, who signed in (who may be bidding) is secret from the other bidders
    (a tenderer must not disclose potential bidders). From the deadline on, the opening is
    public (招标投标法 Art. 36): the bids, their bidders and every decryption status are shown to
    all; the prices stay sealed until the sheet, and are in no event before it."""
    return actor.role in WATCHERS or state.phase != "signing_in"


def _named(event: Event) -> set[str]:
    """The bidders an event names (who may be bidding is secret until the deadline)."""
    d = event.data
    if event.name == "opening.objection":
        return set()  # an objection is public: its author chose to speak
    named = {str(d["bidder"])} if d.get("bidder") else set()
    named.update(str(b) for b in d.get("bidders") or ())
    named.update(str(b["bidder"]) for b in d.get("bids") or ())
    named.update(str(b) for b in d.get("settled") or {})
    return named


def visible(state: OpeningState, event: Event, actor: Actor) -> bool:
    """Before the deadline a bidder sees the events that name no other bidder than themselves.
    A contribution to K is its bidder's alone until the sheet, the chair's and supervisor's too:
    nobody can then withhold theirs knowing the others (docs/opening.md, "The draw of K")."""
    if event.name == "opening.contribution_revealed" and state.phase not in AFTER_SHEET:
        return event.data.get("bidder") == actor.subject
    return _sees_all(state, actor) or _named(event) <= {actor.subject}


def _draw_view(state: OpeningState, actor: Actor | None = None) -> JSON | None:
    """K's draw as ``actor`` may see it (None: whole, as the record has it, after the sheet).

    Before the sheet a contribution's value is nobody's to see, whether it was revealed is its
    bidder's alone, and a bidder sees only their own commitment (who signed in stays the
    watchers')."""
    if state.spec.k_range is None:
        return None
    whole = actor is None or state.phase in AFTER_SHEET
    me = None if actor is None else actor.subject
    watcher = actor is None or actor.role in WATCHERS
    listed = state.counted if state.fixed is not None else _counted(state)
    if state.phase == "signing_in":
        listed = dict(sorted(state.contributions.items()))
    contributions = [
        {
            "bidder": bidder,
            "commitment": commitment,
            "value": state.revealed.get(bidder) if whole else None,
            "revealed": bidder in state.revealed if whole or bidder == me else None,
        }
        for bidder, commitment in listed.items()
        if whole or watcher or bidder == me
    ]
    formula = state.formula or (K_V2 if state.fixed is not None else None)
    return {
        "formula": formula,
        "range": [str(v) for v in state.spec.k_range],
        "commitment": state.commitment,
        "seed": state.seed,
        "fixed": None if state.fixed is None else dict(state.fixed),
        "contributions": contributions,
        "k": None if state.k is None else str(state.k),
    }


def _quorum_view(state: OpeningState, shown: Mapping[str, Bid]) -> JSON | None:
    if state.spec.remedy != "quorum":
        return None
    pending = state.quorum
    last = state.quorums[-1] if state.quorums else None
    return {
        "requested": [b for q in state.quorums for b in q.bidders if b in shown],
        "reason": None if last is None else last.reason,
        "pending": pending is not None,
        "submitted": sorted(pending.shares) if pending else [],
        "k": state.spec.k,
        "n": len(state.spec.commitments),
    }


def _record_view(record: Record | None) -> JSON | None:
    if record is None:
        return None
    return {
        "document": dict(record.document),
        "digest": record.digest,
        "confirm_until": record.confirm_until,
        "confirmations": {
            bidder: {"opinion": opinion, "text": text}
            for bidder, (opinion, text) in record.confirmations.items()
        },
        "deemed": None if record.deemed is None else dict(record.deemed),
        "countersigned": None if record.countersigned is None else dict(record.countersigned),
        "published": None if record.published is None else dict(record.published),
    }


def _commands(state: OpeningState, actor: Actor, table: Mapping[str, Any]) -> list[str]:
    return [c for c in RULES.allowed_in(state.phase, actor.role) if c in table]


def snapshot(state: OpeningState, actor: Actor) -> JSON:
    """Everything a page shows, as ``actor`` may see it (docs/opening.md, "The opening room")."""
    everything = _sees_all(state, actor)
    shown = {k: b for k, b in state.bids.items() if everything or k == actor.subject}
    return {
        "kind": KIND,
        "lot": state.lot,
        "tender": state.spec.tender,
        "title": state.spec.title,
        "phase": state.phase,
        "starts_at": state.spec.starts_at,
        "window_ends": state.window_ends.isoformat() if state.window_ends else None,
        "count": len(state.bids),
        "settled": sum(1 for b in state.bids.values() if b.status in SETTLED),
        "bids": [
            {
                "bidder": b.bidder,
                "name": b.name,
                "status": b.status,
                "cause": b.cause,
                # a page tells the chair's report (the bid still its bidder's) from the bidder's
                "reported_by": b.reported_by,
            }
            for b in shown.values()
        ],
        "signed_in": sorted(state.signed_in) if everything else None,
        "me_signed_in": actor.subject in state.signed_in,
        "decision": None if state.decision is None else dict(state.decision),
        "remedy": state.spec.remedy,
        "quorum": _quorum_view(state, shown),
        "sheet": None if state.sheet is None else dict(state.sheet),
        "draw": _draw_view(state, actor),
        "objections": [o.to_json() for o in state.objections],
        "record": _record_view(state.record),
        "allowed": _commands(state, actor, ARGUMENTS),
        "actions": _commands(state, actor, SHELL_ARGUMENTS),  # sent through the HTTP shell
    }


class Opening(
    ModuleRoomType[OpeningState], core=this, presence=meeting, reveals=REVEALS, signed=SIGNED
):
    """The opening part, as bidroom.compose sees it (presence is the meeting part's).

    Its ``arguments`` are the WebSocket edge's: shell commands are not a client's to send."""


def room_type() -> Composite:
    """The opening room: the meeting (presence, announcements, messages) and the opening."""
    return Composite(
        KIND,
        [
            Part("meeting", ("meeting.", "presence."), meeting.Meeting()),
            Part("opening", ("opening.",), Opening()),
        ],
    )
