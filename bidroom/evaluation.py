"""The remote multi-venue evaluation (远程异地评标), as a pure room type: from the committee's draw
to the summary.

The steps (../shared/DOMAIN.md "Remote multi-venue evaluation", contract in docs/evaluation.md):
the chair records the committee's draw (bidroom.committee; only its public view is kept: venue,
seat and commitment per seat, the pool digest and SHA-256 of the seed); each expert signs in at a
seat of their venue by opening its commitment; the chair opens the declarations (discipline
notice, bidder list) and each expert declares no conflict or a conflict (回避) with named
bidders: a conflict vacates the seat, the chair records the replacement drawn for it
(committee.replace_seat) and the seat reopens for sign-in. When every seat holds an expert who
declared no conflict, the election of the leader (组长) opens (committee's election: equal votes;
a tie is re-voted once among the tied, a second tie is settled by the chair's appointment). The
pre-check (清标, bidroom.precheck) is recorded as evidence, never as a verdict. In the
preliminary review (资格/符合性审查) each member gives pass or fail per criterion per bid, a
written reason for each fail; when all have, the lot's rule decides per bid (``majority``: a bid
fails a criterion that more than half of the members fail, an even split passes; ``unanimity``:
a bid passes a criterion only if every member passes it). In detailed scoring each member hands in
one score sheet per passing bid (subjective and objective items); nobody sees another member's
sheet for a bid before handing in their own for it. When every sheet is in, bidroom.scoring's
deviation check (87号令 Art. 64) raises flags: an ``abnormal`` score is re-scored or explained in
writing by its expert; every other flag (sum error, out of range, missing, objective items in
dispute) only a re-score resolves. The leader summarises only when no flag is open: the scores
are locked, an anonymous technical part (暗标) is revealed (its experts saw "Bid A, B, C", a
fixed function of the config's seed, :func:`labels`) and the summary (totals, ranking,
candidates) is bidroom.scoring's recomputable computation over the recorded record
(``bidroom evaluation recompute``).

Clarification (澄清, DOMAIN step 7), from the preliminary review or scoring: the leader drafts a
question to one bidder (named by its label while anonymous) with a deadline, which opens the
``clarifying`` phase; the supervisor approves or rejects it with a reason; only an approved
question reaches its bidder, who answers it signed (through the shell, which checked the
signature) before the deadline; the leader closes the clarification when no approved question
may still be answered, an approved question without answer is recorded ``unanswered``, a draft
never approved ``withdrawn``, and the phase returns to the one it came from. A bidder joins the
room to see only the questions sent to them and their answers.

Signing (DOMAIN step 11): after the summary the shell issues the report (its digest and page
count); each member signs it (through the shell: the PAdES signature, certificate, timestamp) or
refuses in writing (dissent); when every member has done one or the other, or at the deadline
(``signing_minutes`` after the issue, default 60; the clock's ``close_signing``), the members who
did neither are deemed to consent: ``signed``.

Faults (DOMAIN step 13): the chair suspends the session from any working phase and resumes it;
committee.fault_clocks judges each step: past 4 hours during the evaluation the session may only
be sealed (``sealed``: the work kept, closed; a new committee works in a new session); past
2 hours before the start the tenderee decides (the chair resumes or seals, recorded).

Phases: forming → signing_in → declaring → electing → prechecked → preliminary → scoring →
deviations → summary → signing → signed; ``clarifying`` from preliminary or scoring and back;
``suspended`` from any working phase and back; ``sealed``.

Rules of this file: as bidroom.opening — pure, phases and roles as data (:data:`RULES`), every
refusal a Rejected with a stable code, ``now`` an argument. Client commands (:data:`ARGUMENTS`)
arrive over the WebSocket; :data:`SHELL_ARGUMENTS` reach the core only through the HTTP shell
(the draw with its seed, a sign-in after the certificate was checked, a replacement, the
pre-check over the decrypted bids, a bidder's signed answer, the report issued, a member's
signature over it, the signing deadline). The core never records who holds a seat before that expert
signs in. Events name a bid of an anonymous technical part by its label (``label``) until the
labels are revealed, by its bidder (``bidder``) otherwise.

Rejection codes, besides room.check's ``wrong_phase`` and ``not_allowed``:
draw_invalid, draw_mismatch, seat_not_vacated, no_such_seat, wrong_venue, seat_mismatch,
wrong_expert, seat_taken, seat_vacated, already_seated, seats_open, not_a_member,
already_declared, reason_needed, no_bid, round_closed, no_such_round, already_voted,
not_a_candidate, self_vote_forbidden, no_votes, not_tied_candidate, leader_needed,
precheck_invalid (and precheck's own codes), not_leader, already_submitted, unknown_criterion,
duplicate_verdict, incomplete_review, not_passed, item_unknown, number_invalid, record_invalid,
no_sheet, no_such_flag, not_your_flag, rescore_needed, already_explained, flags_open, the
scoring codes of :func:`bidroom.scoring.recompute` (e.g. score_missing, no_valid_price),
no_schedule, limit_exceeded, within_limit, deadline_invalid, no_such_question, not_a_draft,
deadline_passed, not_your_question, already_answered, question_closed, answer_late, unsigned,
answers_pending, already_signed, signing_open, signature_required, signature_reused.

Signed acts (:data:`SIGNED`): an expert's declaration, vote, review, score sheet, re-score,
explanation, dissent and refusal to sign are signed actions with their certificate key (docs/
opening.md "Signed actions"): the WebSocket shell checks the signature, its certificate at that
moment and that its holder is the session's, before the core sees the command; the core refuses
the act unsigned (``signature_required``: a session token, which the operator can mint, never
makes an expert's act) or with a signature this room has recorded already
(``signature_reused``: an earlier sheet or dissent cannot be replayed), and keeps ``signature``,
``certificate`` and ``signed`` (the action and fields signed, without ``room``) in the act's
event, so that each act can be checked offline against the expert's certificate.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bidroom import committee, meeting, precheck, recording, scoring
from bidroom import evaluation as this  # this module: its functions make the Evaluation part
from bidroom.compose import Composite, ModuleRoomType, Part
from bidroom.errors import BidroomError
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

KIND = "evaluation"
CHAIR = frozenset({"chair"})
EXPERT = frozenset({"expert"})
LEADER = frozenset({"expert", "chair"})  # the chair, or the expert elected leader
CHAIR_OR_SYSTEM = frozenset({"chair", SYSTEM.role})
LEADER_OR_SYSTEM = LEADER | {SYSTEM.role}
ONLY_SYSTEM = frozenset({SYSTEM.role})
SUPERVISOR = frozenset({"supervisor"})
BIDDER = frozenset({"bidder"})
WATCHERS = frozenset({"chair", "supervisor"})
# A bidder sees only their clarification; the recorder (the server's, never a socket's) nothing.
ROLES = ("chair", "expert", "supervisor", "bidder", "recorder")
OPENED = frozenset({"decrypted", "quorum_opened"})  # bids the opening opened (opening.OPENED)
EXPLAINABLE = frozenset({"abnormal"})  # the other flags stop the totals: only a re-score helps
TEXT_MAX = 2000
ANSWER_MAX = 20_000
SIGNING = 60  # minutes from the report's issue to the signing deadline, unless configured
SUSPEND = {"evaluation.suspend": CHAIR}
WORKING = (
    "forming",
    "signing_in",
    "declaring",
    "electing",
    "prechecked",
    "preliminary",
    "clarifying",
    "scoring",
    "deviations",
    "summary",
)

RULES = Rules(
    phases=(*WORKING, "signing", "signed", "suspended", "sealed"),
    commands={
        "forming": {"evaluation.record_draw": CHAIR, **SUSPEND},
        "signing_in": {
            "evaluation.sign_in": EXPERT,
            "evaluation.open_declarations": CHAIR,
            **SUSPEND,
        },
        "declaring": {
            "evaluation.declare": EXPERT,
            "evaluation.record_replacement": CHAIR,
            "evaluation.sign_in": EXPERT,  # at a seat reopened by a replacement
            **SUSPEND,
        },
        "electing": {
            "evaluation.vote": EXPERT,
            "evaluation.close_round": CHAIR,
            "evaluation.revote": CHAIR,
            "evaluation.appoint": CHAIR,
            "evaluation.precheck": CHAIR_OR_SYSTEM,  # once the leader is elected
            **SUSPEND,
        },
        "prechecked": {"evaluation.start_preliminary": LEADER, **SUSPEND},
        "preliminary": {
            "evaluation.submit_review": EXPERT,
            "evaluation.draft_question": LEADER,
            **SUSPEND,
        },
        "clarifying": {
            "evaluation.draft_question": LEADER,
            "evaluation.approve_question": SUPERVISOR,
            "evaluation.reject_question": SUPERVISOR,
            "evaluation.answer_question": BIDDER,
            "evaluation.close_clarification": LEADER,
            **SUSPEND,
        },
        "scoring": {
            "evaluation.submit_sheet": EXPERT,
            "evaluation.draft_question": LEADER,
            **SUSPEND,
        },
        "deviations": {
            "evaluation.rescore": EXPERT,
            "evaluation.explain": EXPERT,
            "evaluation.summarise": LEADER,
            **SUSPEND,
        },
        "summary": {
            "evaluation.issue_report": LEADER_OR_SYSTEM,
            "evaluation.dissent": EXPERT,
            **SUSPEND,
        },
        "signing": {
            "evaluation.sign_report": EXPERT,
            "evaluation.refuse_signing": EXPERT,
            "evaluation.close_signing": ONLY_SYSTEM,
            **SUSPEND,  # a fault while signing must not turn into deemed consent
        },
        "signed": {},
        "suspended": {"evaluation.resume": CHAIR, "evaluation.seal": CHAIR_OR_SYSTEM},
        "sealed": {},
    },
)
# After these, what an expert may see widens (others' sheets and reviews, the bidders behind the
# labels, an answer whose event they may not see while anonymous), or a bidder's question
# changes without an event of theirs: the hub sends each participant a fresh snapshot.
REVEALS = frozenset(
    {
        # who sits on the committee changes: a new member sees it all, one who left no more
        "evaluation.draw_recorded",
        "evaluation.expert_seated",
        "evaluation.declared",
        "evaluation.seat_replaced",
        "evaluation.question_approved",  # a bidder learns of their question by snapshot only
        "evaluation.review_submitted",
        "evaluation.sheet_submitted",
        "evaluation.labels_revealed",
        "evaluation.question_answered",
        "evaluation.clarification_closed",
    }
)


# the edge contract -------------------------------------------------------------------------


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class NoArgs(_Args):
    pass


class ReasonArgs(_Args):
    reason: str = Field(min_length=1, max_length=TEXT_MAX)


class _MaySign(_Args):
    """An expert's act, signed with their certificate key (:data:`SIGNED`): the WebSocket shell
    checks the signature as a signed action before the core sees it; the core requires it."""

    signature: str | None = Field(default=None, min_length=16, max_length=1024)  # base64
    certificate: str | None = Field(default=None, min_length=16, max_length=16384)  # DER, b64
    chain: list[Annotated[str, Field(min_length=16, max_length=16384)]] | None = Field(
        default=None, max_length=5
    )


class SignedReasonArgs(_MaySign):
    reason: str = Field(min_length=1, max_length=TEXT_MAX)


class DrawArgs(_Args):
    draw: dict[str, Any]  # committee.Draw.to_json(), seed included: the core keeps only its hash
    # The same draw sealed to the room key by the shell (ca.handoff.seal_record): it rests in the
    # log so that any node can send each expert their seat and draw a replacement.
    sealed: str = Field(default="", max_length=4_000_000)


class SignInArgs(_Args):
    seat: int = Field(ge=1, le=1000)
    expert: str = Field(min_length=1, max_length=200)
    salt: str = Field(pattern=r"^[0-9a-f]{64}$")  # the seat's salt, sent sealed to the expert
    # The expert's signed action evaluation.sign_in {room, venue}, which the shell checked.
    signature: str | None = Field(default=None, min_length=16, max_length=2048)
    certificate: str | None = Field(default=None, min_length=16, max_length=16384)


class DeclareArgs(_MaySign):
    declaration: Literal["none", "conflict"]
    bidders: list[str] = Field(default_factory=list, max_length=1000)
    reason: str = Field(default="", max_length=TEXT_MAX)


class VoteArgs(_MaySign):
    candidate: str = Field(min_length=1, max_length=200)
    round: int = Field(ge=1)


class AppointArgs(_Args):
    expert: str = Field(min_length=1, max_length=200)


class PrecheckArgs(_Args):
    lot: dict[str, Any]  # precheck.Lot's JSON form
    bids: list[dict[str, Any]] = Field(max_length=1000)  # precheck.Bid's JSON form, per bid


class Verdict(_Args):
    bidder: str = Field(min_length=1, max_length=200)
    criterion: str = Field(min_length=1, max_length=64)
    passed: bool
    reason: str = Field(default="", max_length=TEXT_MAX)


class ReviewArgs(_MaySign):
    verdicts: list[Verdict] = Field(max_length=100_000)


class SheetArgs(_MaySign):
    bid: str = Field(min_length=1, max_length=200)  # the label shown, or the bidder
    scores: dict[str, str] = Field(max_length=1000)  # item -> decimal string
    total: str | None = Field(default=None, max_length=40)


class ExplainArgs(_MaySign):
    flag: str = Field(min_length=1, max_length=600)  # a flag's ``key``
    reason: str = Field(min_length=1, max_length=TEXT_MAX)


class QuestionArgs(_Args):
    bidder: str = Field(min_length=1, max_length=200)  # the label shown, or the bidder
    text: str = Field(min_length=1, max_length=TEXT_MAX)
    deadline: str = Field(min_length=10, max_length=40)  # ISO 8601 with its offset


class ApproveArgs(_Args):
    question: str = Field(min_length=1, max_length=20)


class RejectQuestionArgs(_Args):
    question: str = Field(min_length=1, max_length=20)
    reason: str = Field(min_length=1, max_length=TEXT_MAX)


class _Signed(_Args):
    signature: str = Field(min_length=16, max_length=1_000_000)  # base64
    certificate: str = Field(min_length=16, max_length=16384)  # DER, base64


class AnswerArgs(_Signed):
    """A bidder's answer, signed; the shell checked the signature over the text first."""

    question: str = Field(min_length=1, max_length=20)
    text: str = Field(min_length=1, max_length=ANSWER_MAX)


class ReportArgs(_Args):
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")  # SHA-256 of the PDF as issued
    pages: int = Field(ge=1, le=100_000)


class SignReportArgs(_Signed):
    """A member's signature over the report (PAdES: the CMS), with its RFC 3161 timestamp."""

    timestamp: str = Field(min_length=16, max_length=65536)  # the timestamp token, base64
    base: str = Field(pattern=r"^[0-9a-f]{64}$")  # SHA-256 of the revision signed over
    document: str = Field(pattern=r"^[0-9a-f]{64}$")  # SHA-256 of the PDF with this signature


ARGUMENTS: Mapping[str, type[BaseModel]] = {
    "evaluation.open_declarations": NoArgs,
    "evaluation.declare": DeclareArgs,
    "evaluation.vote": VoteArgs,
    "evaluation.close_round": NoArgs,
    "evaluation.revote": NoArgs,
    "evaluation.appoint": AppointArgs,
    "evaluation.start_preliminary": NoArgs,
    "evaluation.submit_review": ReviewArgs,
    "evaluation.submit_sheet": SheetArgs,
    "evaluation.rescore": SheetArgs,
    "evaluation.explain": ExplainArgs,
    "evaluation.summarise": NoArgs,
    "evaluation.draft_question": QuestionArgs,
    "evaluation.approve_question": ApproveArgs,
    "evaluation.reject_question": RejectQuestionArgs,
    "evaluation.close_clarification": NoArgs,
    "evaluation.refuse_signing": SignedReasonArgs,
    "evaluation.dissent": SignedReasonArgs,
    "evaluation.suspend": ReasonArgs,
    "evaluation.resume": ReasonArgs,
    "evaluation.seal": ReasonArgs,
}
"""What clients may send over the WebSocket (the room type's ``arguments``)."""

SIGNED: Mapping[str, tuple[str, ...]] = {
    "evaluation.declare": ("declaration", "bidders", "reason"),
    "evaluation.vote": ("candidate", "round"),
    "evaluation.submit_review": ("verdicts",),
    "evaluation.submit_sheet": ("bid", "scores", "total"),
    "evaluation.rescore": ("bid", "scores", "total"),
    "evaluation.explain": ("flag", "reason"),
    "evaluation.dissent": ("reason",),
    "evaluation.refuse_signing": ("reason",),
}
"""The expert's acts, signed as signed actions: each command's fields besides ``room`` (every
argument but the signature's own: ``signature``, ``certificate``, ``chain``), as the edge
contract gives them (strings trimmed, absent fields at their defaults)."""
SIGNED_EVENTS = frozenset(
    {
        "evaluation.expert_seated",  # the sign-in, a signed action through the HTTP shell
        "evaluation.declared",
        "evaluation.voted",
        "evaluation.review_submitted",
        "evaluation.sheet_submitted",
        "evaluation.sheet_rescored",
        "evaluation.flag_explained",
        "evaluation.dissent_recorded",
        "evaluation.signing_refused",
    }
)
"""The events of the signed acts: the first event each one causes carries its signature (and
the seating, of the sign-in the shell checked: ``signed`` is {action, venue})."""

SHELL_ARGUMENTS: Mapping[str, type[BaseModel]] = {
    "evaluation.record_draw": DrawArgs,
    "evaluation.sign_in": SignInArgs,
    "evaluation.record_replacement": DrawArgs,
    "evaluation.precheck": PrecheckArgs,
    "evaluation.answer_question": AnswerArgs,
    "evaluation.issue_report": ReportArgs,
    "evaluation.sign_report": SignReportArgs,
    "evaluation.close_signing": NoArgs,
}
"""What the HTTP shell and the clock send, after the shell drew, checked a certificate or a
signature, read the bids or built the report."""


# state -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bid:
    """An opened bid as the opening's record gives it."""

    bidder: str
    name: str
    price: str | None
    received_at: str | None


@dataclass(frozen=True, slots=True)
class Spec:
    """The lot's frozen parameters and the opening's record, as the room's config gives them."""

    lot: str
    title: str
    tender: str
    starts_at: datetime | None
    bids: tuple[Bid, ...]
    criteria: tuple[tuple[str, str], ...]  # (id, text)
    rule: str  # majority | unanimity
    params: scoring.Params
    k: str | None
    anonymous: bool
    labels: Mapping[str, str]  # bidder -> label ("A", "B", ...): empty unless anonymous
    venues: tuple[tuple[str, int], ...]  # (venue, seats)
    self_vote: bool
    signing: timedelta = timedelta(minutes=SIGNING)  # from the report's issue to its deadline

    def bid(self, bidder: str) -> Bid | None:
        return next((b for b in self.bids if b.bidder == bidder), None)


@dataclass(frozen=True, slots=True)
class Seat:
    """A seat of the committee: ``sealed`` until its expert signs in, ``seated`` after,
    ``vacated`` after a conflict until the replacement is recorded (then ``sealed`` again)."""

    seat: int
    venue: str
    commitment: str
    status: str = "sealed"
    expert: str | None = None
    name: str = ""
    declaration: str | None = None  # none | conflict, of the expert now seated
    left: tuple[Mapping[str, Any], ...] = ()  # the experts who left it: {expert, bidders, reason}

    def to_json(self) -> JSON:
        return {
            "seat": self.seat,
            "venue": self.venue,
            "commitment": self.commitment,
            "status": self.status,
            "expert": self.expert,
            "name": self.name,
            "declaration": self.declaration,
            "left": [dict(x) for x in self.left],
        }


@dataclass(frozen=True, slots=True)
class Question:
    """A clarification question (澄清) to one bidder: ``draft`` until the supervisor approves
    (``approved``, then the bidder sees it) or rejects it (``rejected``); ``answered``; when the
    clarification closes, an approved question without answer is ``unanswered`` and a draft not
    yet approved ``withdrawn``."""

    id: str  # Q1, Q2, .. in the order drafted
    bidder: str
    text: str
    deadline: str  # ISO 8601
    drafted_by: str
    status: str = "draft"
    rejection: str = ""  # the supervisor's reason
    answer: Mapping[str, Any] | None = None  # {text, at, signature, certificate}

    def to_json(self) -> JSON:
        return {
            "question": self.id,
            "text": self.text,
            "deadline": self.deadline,
            "drafted_by": self.drafted_by,
            "status": self.status,
            "rejection": self.rejection,
            "answer": None if self.answer is None else dict(self.answer),
        }


@dataclass(frozen=True, slots=True)
class Report:
    """The issued report and its signatures: each member signs (PAdES, timestamped) or refuses
    in writing (dissent); at the deadline those who did neither are deemed to consent."""

    digest: str
    pages: int
    issued_at: str
    sign_until: str
    signatures: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # expert -> ..
    refusals: Mapping[str, str] = field(default_factory=dict)  # expert -> written reason
    closed: Mapping[str, Any] | None = None  # {signed, dissent, deemed}

    def answered(self) -> set[str]:
        return set(self.signatures) | set(self.refusals)

    @property
    def current(self) -> str:
        """SHA-256 of the report's latest revision: as issued, or with the last signature."""
        documents = [str(s["document"]) for s in self.signatures.values() if s.get("document")]
        return documents[-1] if documents else self.digest

    def to_json(self) -> JSON:
        return {
            "digest": self.digest,
            "pages": self.pages,
            "issued_at": self.issued_at,
            "sign_until": self.sign_until,
            "signatures": {e: dict(s) for e, s in self.signatures.items()},
            "refusals": dict(self.refusals),
            "closed": None if self.closed is None else dict(self.closed),
            "current": self.current,
        }


@dataclass(frozen=True, slots=True)
class EvaluationState:
    spec: Spec
    roles: frozenset[str]
    phase: str = "forming"
    resume_to: str | None = None  # the phase a suspension interrupted
    draw: Mapping[str, Any] | None = None  # {pool_digest, seed_digest, replacements}
    sealed_draw: str | None = None  # the latest draw, sealed to the room key (never shown)
    seats: tuple[Seat, ...] = ()
    election: committee.Election | None = None
    leader: str | None = None
    appointed: bool = False
    precheck: Mapping[str, Any] | None = None
    reviews: Mapping[str, tuple[Mapping[str, Any], ...]] = field(default_factory=dict)
    preliminary: Mapping[str, Any] | None = None
    sheets: Mapping[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)
    flags: tuple[Mapping[str, Any], ...] = ()
    explanations: Mapping[str, str] = field(default_factory=dict)  # flag key -> reason
    revealed: bool = False
    summary: Mapping[str, Any] | None = None
    dissents: Mapping[str, str] = field(default_factory=dict)  # expert -> written dissent
    questions: tuple[Question, ...] = ()
    clarify_from: str | None = None  # the phase a clarification interrupted
    report: Report | None = None
    suspensions: tuple[Mapping[str, Any], ...] = ()  # {start, end, reason, ...}
    sealed: Mapping[str, Any] | None = None
    signatures: frozenset[str] = frozenset()  # signature_identity of each signed act recorded

    @property
    def members(self) -> tuple[str, ...]:
        """The seated experts, in seat order."""
        return tuple(s.expert for s in self.seats if s.status == "seated" and s.expert)

    @property
    def passed(self) -> tuple[str, ...]:
        return tuple(self.preliminary["passed"]) if self.preliminary else ()

    @property
    def ranked(self) -> tuple[str, ...]:
        """The passed bids whose price is valid (scoring.status): the bids the summary ranks.
        A passed bid without a price above 0.00, or over the ceiling, is listed, never ranked."""
        ceiling = self.spec.params.price.ceiling
        return tuple(
            b
            for b in self.passed
            if scoring.status(True, _price(self.spec.bid(b)), ceiling) == "valid"
        )

    @property
    def anonymous(self) -> bool:
        """Whether bids are still named by their labels."""
        return self.spec.anonymous and not self.revealed

    def open_flags(self) -> list[Mapping[str, Any]]:
        return [
            f
            for f in self.flags
            if f["kind"] not in EXPLAINABLE or f["key"] not in self.explanations
        ]


def _price(bid: Bid | None) -> Decimal | None:
    """A bid's price from the opening's sheet; None when absent or not a finite decimal."""
    if bid is None or bid.price is None:
        return None
    try:
        price = Decimal(str(bid.price))
    except InvalidOperation:
        return None
    return price if price.is_finite() else None


def labels(bidders: Iterable[str], lot: str, seed: bytes) -> dict[str, str]:
    """The labels of an anonymous part: bidders ordered by SHA-256("bidroom labels v1\\n" || lot
    || "\\n" || bidder || "\\n" || seed), then named A, B, .. Z, AA, AB, .. in that order."""

    def rank(bidder: str) -> bytes:
        return hashlib.sha256(f"bidroom labels v1\n{lot}\n{bidder}\n".encode() + seed).digest()

    ordered = sorted(set(bidders), key=lambda b: (rank(b), b))
    return {bidder: _letters(n) for n, bidder in enumerate(ordered)}


def _letters(n: int) -> str:
    name = ""
    n += 1
    while n:
        n, rest = divmod(n - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


def _spec(config: Mapping[str, Any]) -> Spec:
    bids = tuple(
        Bid(str(b["bidder"]), str(b.get("name", "")), b.get("price"), b.get("received_at"))
        for b in config.get("bids") or ()
        if b.get("status") in (None, *OPENED)
    )
    anonymous = bool(config.get("anonymous"))
    seed = bytes.fromhex(str(config.get("label_seed") or ""))
    starts = config.get("starts_at")
    return Spec(
        lot=str(config.get("lot", "")),
        title=str(config.get("title", "")),
        tender=str(config.get("tender", "")),
        starts_at=datetime.fromisoformat(starts) if starts else None,
        bids=bids,
        criteria=tuple(
            (str(c["id"]), str(c.get("text", ""))) for c in config.get("criteria") or ()
        ),
        rule=str(config.get("review_rule") or "majority"),
        params=scoring.params_from_json(config["params"]),
        k=None if config.get("k") is None else str(config["k"]),
        anonymous=anonymous,
        labels=labels((b.bidder for b in bids), str(config.get("lot", "")), seed)
        if anonymous
        else {},
        venues=tuple((str(v["venue"]), int(v["seats"])) for v in config.get("venues") or ()),
        self_vote=bool(config.get("self_vote", True)),
        signing=timedelta(minutes=int(config.get("signing_minutes") or SIGNING)),
    )


def initial(config: Mapping[str, Any]) -> EvaluationState:
    """A new session from its config (docs/evaluation.md "Inputs from the opening"): ``lot``,
    ``title``, ``tender``, ``starts_at``, ``bids`` [{bidder, name, price, received_at, status}],
    ``criteria`` [{id, text}], ``review_rule``, ``params`` (bidroom.scoring's parameters: items,
    price method, threshold, candidates, ties), ``k``, ``anonymous`` and ``label_seed`` (hex),
    ``venues`` [{venue, seats}], ``self_vote``, ``signing_minutes`` (default 60). Raises
    ScoringError for invalid ``params``."""
    return EvaluationState(spec=_spec(config), roles=frozenset(config.get("roles") or ROLES))


# decide ------------------------------------------------------------------------------------

Args = Mapping[str, Any]


def decide(state: EvaluationState, command: Command, actor: Actor, now: datetime) -> Decision:
    refused = check(RULES, state.phase, command, actor)
    if refused is not None:
        return refused
    covered = SIGNED.get(command.name)
    if covered is None:
        return _DECIDERS[command.name](state, command.args, actor, now)
    refused = _unsigned(state, command.args)
    if refused is not None:
        return refused
    decision = _DECIDERS[command.name](state, command.args, actor, now)
    if isinstance(decision, Rejected):
        return decision
    act, *caused = decision
    assert act.name in SIGNED_EVENTS, act.name
    return [Event(act.name, {**act.data, **_signed(command, covered)}), *caused]


def _unsigned(state: EvaluationState, args: Args) -> Rejected | None:
    """An expert's act needs its signature (the shell checked it), one not recorded before."""
    if not args.get("signature") or not args.get("certificate"):
        message = "an expert's act is signed with their certificate key"
        return Rejected("signature_required", message, {})
    if signature_identity(str(args["signature"])) in state.signatures:
        return Rejected("signature_reused", "this signature is recorded already: sign anew", {})
    return None


def signature_identity(text: str) -> str:
    """What makes a signature the same signature, however it is spelled: the bytes base64
    decodes to (the spare bits of its last character ignored), and of an ECDSA signature (raw
    r || s, 64 bytes) r alone: (r, s) and (r, n - s) both verify, and r is the signer's fresh
    nonce, never drawn twice. Compared by this, a re-encoded or re-signed-by-symmetry replay of
    a recorded act is the recorded one (signature_reused)."""
    try:
        raw = base64.b64decode(text.strip() + "==")
    except (binascii.Error, ValueError):
        return text
    return ("r:" + raw[:32].hex()) if len(raw) == 64 else raw.hex()


def _signed(command: Command, covered: Sequence[str]) -> JSON:
    """What the act's event keeps of its signature: the signature, the certificate and the
    action and fields signed (``room`` aside: the event's room)."""
    fields = {name: command.args.get(name) for name in covered}
    return {
        "signature": str(command.args["signature"]),
        "certificate": str(command.args["certificate"]),
        "signed": {"action": command.name, **fields},
    }


def _refused(error: BidroomError) -> Rejected:
    """A refusal of one of the pure modules, with its code and evidence."""
    return Rejected(error.code, error.message, dict(error.detail))


def _member(state: EvaluationState, actor: Actor) -> Rejected | None:
    if actor.subject not in state.members:
        return Rejected("not_a_member", "you hold no seat on this committee", {})
    return None


def _leader(state: EvaluationState, actor: Actor) -> Rejected | None:
    if actor.role == "expert" and actor.subject != state.leader:
        return Rejected("not_leader", "only the chair or the leader does this", {})
    return None


# the committee: draw, sign-in, declarations, replacement

_Parsed = committee.Draw | Rejected


def parse_draw(data: Mapping[str, Any]) -> _Parsed:
    try:
        if data.get("format") != committee.DRAW_FORMAT or data.get("v") != 1:
            raise ValueError("not a bidroom-committee-draw version 1")
        parsed = committee.Draw(
            request=committee.Request.from_json(data["request"]),
            pool_digest=str(data["pool_digest"]),
            seed=bytes.fromhex(data["seed"]),
            eligible=tuple(committee.Expert.from_json(e) for e in data["eligible"]),
            picks=tuple(
                committee.Pick(int(p["seat"]), str(p["venue"]), str(p["expert"]))
                for p in data["picks"]
            ),
            replacements=tuple(_replacement(r) for r in data.get("replacements") or ()),
        )
        parsed.public_view()
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return Rejected("draw_invalid", f"not a committee draw: {exc}", {})
    return parsed


def _replacement(r: Mapping[str, Any]) -> committee.Replacement:
    return committee.Replacement(
        int(r["seat"]),
        str(r["venue"]),
        str(r["replaced"]),
        str(r["expert"]),
        bytes.fromhex(r["seed"]),
        tuple(str(c) for c in r["candidates"]),
    )


def _shape(state: EvaluationState, drawn: committee.Draw) -> Rejected | None:
    """The draw is for this lot and these venues, one drawn eligible expert per seat."""
    venues = tuple((s.venue, s.count) for s in drawn.request.seats)
    seats = [(p.seat, p.venue) for p in drawn.picks]
    expected = [(n + 1, v) for n, v in enumerate(v for v, count in venues for _ in range(count))]
    eligible = {e.id for e in drawn.eligible}
    problem = (
        "another lot" if drawn.request.lot != state.spec.lot
        else "other venues or seat counts" if venues != state.spec.venues
        else "the picks are not one per seat, in order" if seats != expected
        else "an expert drawn twice" if len(drawn.drawn()) != len(drawn.picks) + len(
            drawn.replacements
        )
        else "an expert not eligible" if not drawn.drawn() <= eligible
        else None
    )  # fmt: skip
    if problem is not None:
        return Rejected("draw_mismatch", f"the draw does not fit this session: {problem}", {})
    return None


def _seed_digest(drawn: committee.Draw) -> str:
    return hashlib.sha256(drawn.seed).hexdigest()


def _record_draw(state: EvaluationState, args: Args, actor: Actor, now: datetime) -> Decision:
    drawn = parse_draw(args["draw"])
    if isinstance(drawn, Rejected):
        return drawn
    refused = _shape(state, drawn)
    if refused is not None:
        return refused
    if drawn.replacements:
        return Rejected("draw_mismatch", "a new draw has no replacement yet", {})
    data = {
        "pool_digest": drawn.pool_digest,
        "seed_digest": _seed_digest(drawn),
        "seats": [s.to_json() for s in drawn.public_view()],
        "sealed": args.get("sealed") or None,
    }
    return [Event("evaluation.draw_recorded", data)]


def _seat(state: EvaluationState, number: int) -> Seat | None:
    return next((s for s in state.seats if s.seat == number), None)


def _public_view(state: EvaluationState) -> list[committee.PublicSeat]:
    return [committee.PublicSeat(s.seat, s.venue, s.commitment) for s in state.seats]


def _sign_in(state: EvaluationState, args: Args, actor: Actor, now: datetime) -> Decision:
    number, expert = int(args["seat"]), str(args["expert"])
    if expert != actor.subject:
        return Rejected("wrong_expert", "an expert signs in as themselves", {})
    if actor.subject in state.members:
        return Rejected("already_seated", "you hold a seat already", {})
    seat = _seat(state, number)
    if seat is not None and seat.status != "sealed":
        code = "seat_taken" if seat.status == "seated" else "seat_vacated"
        return Rejected(code, f"seat {number} is {seat.status}", {"seat": number})
    try:
        salt = bytes.fromhex(args["salt"])
        committee.verify_sign_in(_public_view(state), number, actor.venue or "", expert, salt)
    except BidroomError as exc:
        return _refused(exc)
    refused = _unsigned(state, args)
    if refused is not None:
        return refused
    data = {
        "seat": number,
        "venue": actor.venue,
        "expert": expert,
        "name": actor.name,
        "salt": args["salt"],
        "signature": str(args["signature"]),
        "certificate": str(args["certificate"]),
        "signed": {"action": "evaluation.sign_in", "venue": actor.venue},
    }
    return [Event("evaluation.expert_seated", data)]


def _open_declarations(state: EvaluationState, args: Args, actor: Actor, now: datetime) -> Decision:
    empty = [s.seat for s in state.seats if s.status != "seated"]
    if empty:
        return Rejected("seats_open", "every seat needs its expert first", {"seats": empty})
    bidders = [{"bidder": b.bidder, "name": b.name} for b in state.spec.bids]
    return [Event("evaluation.declarations_opened", {"bidders": bidders})]


def _declare(state: EvaluationState, args: Args, actor: Actor, now: datetime) -> Decision:
    refused = _member(state, actor)
    if refused is not None:
        return refused
    seat = next(s for s in state.seats if s.expert == actor.subject and s.status == "seated")
    if seat.declaration is not None:
        return Rejected("already_declared", "you have declared already", {})
    conflict = args["declaration"] == "conflict"
    named = list(dict.fromkeys(args.get("bidders") or ()))
    unknown = [b for b in named if state.spec.bid(b) is None]
    if unknown:
        return Rejected("no_bid", "no such bid in this lot", {"bidders": unknown})
    if conflict and (not named or not args.get("reason")):
        return Rejected("reason_needed", "a conflict names the bidders and its reason", {})
    data = {
        "seat": seat.seat,
        "expert": actor.subject,
        "declaration": args["declaration"],
        "bidders": named if conflict else [],
        "reason": args.get("reason", "") if conflict else "",
    }
    events = [Event("evaluation.declared", data)]
    after = _fold_declared(state, events[0])
    if not conflict and all(s.declaration == "none" for s in after.seats):
        events.append(Event("evaluation.election_opened", {"members": list(after.members)}))
    return events


def _record_replacement(
    state: EvaluationState, args: Args, actor: Actor, now: datetime
) -> Decision:
    drawn = parse_draw(args["draw"])
    if isinstance(drawn, Rejected):
        return drawn
    refused = _shape(state, drawn) or _same_draw(state, drawn)
    if refused is not None:
        return refused
    last = drawn.replacements[-1]
    seat = _seat(state, last.seat)
    if seat is None or seat.status != "vacated":
        return Rejected("seat_not_vacated", f"seat {last.seat} was not left", {"seat": last.seat})
    if seat.left[-1]["expert"] != last.replaced:
        return Rejected("draw_mismatch", "the replacement is for another expert", {})
    new = next(s for s in drawn.public_view() if s.seat == last.seat)
    data = {
        "seat": last.seat,
        "venue": last.venue,
        "replaced": last.replaced,
        "commitment": new.commitment,
        "seed_digest": hashlib.sha256(last.seed).hexdigest(),
        "sealed": args.get("sealed") or None,
    }
    return [Event("evaluation.seat_replaced", data)]


def _same_draw(state: EvaluationState, drawn: committee.Draw) -> Rejected | None:
    """The draw recorded, with exactly one more replacement, and every other seat unchanged."""
    recorded = state.draw or {}
    count = int(recorded.get("replacements", 0))
    same = (
        drawn.pool_digest == recorded.get("pool_digest")
        and _seed_digest(drawn) == recorded.get("seed_digest")
        and len(drawn.replacements) == count + 1
    )
    if not same:
        return Rejected("draw_mismatch", "not the recorded draw with one more replacement", {})
    changed = drawn.replacements[-1].seat
    kept = {s.seat: s.commitment for s in state.seats if s.seat != changed}
    if any(kept.get(s.seat, s.commitment) != s.commitment for s in drawn.public_view()):
        return Rejected("draw_mismatch", "the replacement changes another seat", {})
    return None


# the election of the leader


def _electing(
    state: EvaluationState, step: Callable[[committee.Election], committee.Election]
) -> committee.Election | Rejected:
    assert state.election is not None  # the election opens with the phase
    try:
        return step(state.election)
    except BidroomError as exc:
        return _refused(exc)


def _outcome(before: committee.Election, after: committee.Election) -> list[Event]:
    """The events a closed round causes: its result, and the leader if one was chosen."""
    events = []
    if len(after.closed) > len(before.closed):
        done = after.closed[-1]
        data = {"round": done.number, "tally": done.tally(), "tied": list(after.tied())}
        events.append(Event("evaluation.round_closed", data))
    if after.leader is not None:
        data = {"leader": after.leader, "appointed": after.appointed}
        events.append(Event("evaluation.leader_elected", data))
    return events


def _vote(state: EvaluationState, args: Args, actor: Actor, now: datetime) -> Decision:
    voter, candidate, number = actor.subject, str(args["candidate"]), int(args["round"])
    after = _electing(state, lambda e: committee.vote(e, voter, candidate, number))
    if isinstance(after, Rejected):
        return after
    assert state.election is not None
    data = {"voter": voter, "candidate": candidate, "round": number}
    return [Event("evaluation.voted", data), *_outcome(state.election, after)]


def _close_round(state: EvaluationState, args: Args, actor: Actor, now: datetime) -> Decision:
    after = _electing(state, committee.close_round)
    if isinstance(after, Rejected):
        return after
    assert state.election is not None
    return _outcome(state.election, after)


def _revote(state: EvaluationState, args: Args, actor: Actor, now: datetime) -> Decision:
    after = _electing(state, committee.revote)
    if isinstance(after, Rejected):
        return after
    data = {"round": after.current.number, "candidates": list(after.current.candidates)}
    return [Event("evaluation.revote_opened", data)]


def _appoint(state: EvaluationState, args: Args, actor: Actor, now: datetime) -> Decision:
    appointee = str(args["expert"])
    after = _electing(state, lambda e: committee.appoint(e, appointee))
    if isinstance(after, Rejected):
        return after
    return [Event("evaluation.leader_elected", {"leader": appointee, "appointed": True})]


# the pre-check and the preliminary review


def _precheck(state: EvaluationState, args: Args, actor: Actor, now: datetime) -> Decision:
    if state.leader is None:
        return Rejected("leader_needed", "the committee elects its leader first", {})
    try:
        lot = precheck.parse_lot(args["lot"])
        result = precheck.precheck(lot, [precheck.parse_bid(b) for b in args["bids"]])
    except BidroomError as exc:
        return _refused(exc)
    return [Event("evaluation.prechecked", {"result": result.to_json()})]


def _start_preliminary(state: EvaluationState, args: Args, actor: Actor, now: datetime) -> Decision:
    refused = _leader(state, actor)
    if refused is not None:
        return refused
    criteria = [{"id": i, "text": t} for i, t in state.spec.criteria]
    return [Event("evaluation.preliminary_started", {"criteria": criteria})]


def _verdicts_problem(state: EvaluationState, verdicts: Sequence[Args]) -> Rejected | None:
    criteria = {i for i, _ in state.spec.criteria}
    seen: set[tuple[str, str]] = set()
    for v in verdicts:
        where = {"bidder": v["bidder"], "criterion": v["criterion"]}
        problem = (
            ("no_bid", "no such bid in this lot") if state.spec.bid(v["bidder"]) is None
            else ("unknown_criterion", "no such criterion") if v["criterion"] not in criteria
            else ("duplicate_verdict", "one verdict per bid and criterion")
            if (v["bidder"], v["criterion"]) in seen
            else ("reason_needed", "a fail needs its written reason")
            if not v["passed"] and not v.get("reason")
            else None
        )  # fmt: skip
        if problem is not None:
            return Rejected(*problem, where)
        seen.add((v["bidder"], v["criterion"]))
    missing = [
        {"bidder": b.bidder, "criterion": c}
        for b in state.spec.bids
        for c, _ in state.spec.criteria
        if (b.bidder, c) not in seen
    ]
    if missing:
        return Rejected("incomplete_review", "every bid on every criterion", {"missing": missing})
    return None


def _submit_review(state: EvaluationState, args: Args, actor: Actor, now: datetime) -> Decision:
    refused = _member(state, actor)
    if refused is not None:
        return refused
    if actor.subject in state.reviews:
        return Rejected("already_submitted", "you have submitted your review", {})
    verdicts = [_verdict(v) for v in args["verdicts"]]
    refused = _verdicts_problem(state, verdicts)
    if refused is not None:
        return refused
    submitted = Event(
        "evaluation.review_submitted", {"expert": actor.subject, "verdicts": verdicts}
    )
    events = [submitted]
    after = apply(state, submitted)
    if set(after.reviews) == set(after.members):
        decided = Event("evaluation.preliminary_decided", decide_review(after))
        events.append(decided)
        after = apply(after, decided)
        if after.passed and not after.ranked:
            events.append(_no_valid_bid(after))
    return events


def _no_valid_bid(state: EvaluationState) -> Event:
    """Bids passed, but none has a valid price (unpriced, 0.00 or over the ceiling): the tender
    fails as when no bid passes, its summary without scores, its report issued and signed."""
    summary = {"record": record(state), "computation": None, "reason": "no_valid_bid"}
    return Event("evaluation.summarised", summary)


def _verdict(v: Any) -> dict[str, Any]:
    data = v.model_dump() if isinstance(v, BaseModel) else dict(v)
    reason = "" if data["passed"] else str(data.get("reason") or "")
    return {
        "bidder": str(data["bidder"]),
        "criterion": str(data["criterion"]),
        "passed": bool(data["passed"]),
        "reason": reason,
    }


def decide_review(state: EvaluationState) -> JSON:
    """The lot's rule over every member's verdicts: per bid and criterion the counts and the
    result; the bids passed and failed; every fail's reason."""
    n = len(state.reviews)
    counts: dict[str, dict[str, JSON]] = {}
    reasons = []
    for b in state.spec.bids:
        counts[b.bidder] = {c: {"pass": 0, "fail": 0} for c, _ in state.spec.criteria}
    for expert in state.members:
        for v in state.reviews.get(expert, ()):
            tally = counts[v["bidder"]][v["criterion"]]
            tally["pass" if v["passed"] else "fail"] += 1
            if not v["passed"]:
                reasons.append({"expert": expert, **v})
    for per_bid in counts.values():
        for tally in per_bid.values():
            failed = tally["fail"] > 0 if state.spec.rule == "unanimity" else 2 * tally["fail"] > n
            tally["result"] = "fail" if failed else "pass"
    passed = [b for b, per in counts.items() if all(t["result"] == "pass" for t in per.values())]
    failed = [b for b in counts if b not in passed]
    return {
        "rule": state.spec.rule,
        "members": n,
        "criteria": counts,
        "passed": passed,
        "failed": failed,
        "reasons": reasons,
    }


# detailed scoring and the deviation check


def bidder_named(state: EvaluationState, shown: str) -> str | None:
    """The bidder behind the name ``shown``: a label while anonymous, else the bidder."""
    if state.anonymous:
        return next((b for b, label in state.spec.labels.items() if label == shown), None)
    return shown if state.spec.bid(shown) is not None else None


def _named(state: EvaluationState, bidder: str) -> dict[str, str]:
    """How an event names a bid: by its label while anonymous, by its bidder after."""
    if state.anonymous:
        return {"label": state.spec.labels[bidder]}
    return {"bidder": bidder}


def _bidder_of(state: EvaluationState, data: Mapping[str, Any]) -> str:
    if "bidder" in data:
        return str(data["bidder"])
    found = bidder_named(replace(state, revealed=False), str(data["label"]))
    assert found is not None
    return found


def _sheet(state: EvaluationState, args: Args, actor: Actor) -> tuple[str, JSON] | Rejected:
    """The bidder and the sheet's data, or why the sheet is refused."""
    refused = _member(state, actor)
    if refused is not None:
        return refused
    bidder = bidder_named(state, str(args["bid"]))
    if bidder is None:
        return Rejected("no_bid", "no such bid to score", {"bid": args["bid"]})
    if bidder not in state.passed:
        return Rejected("not_passed", "only a bid that passed the review is scored", {})
    unknown = sorted(set(args["scores"]) - {i.id for i in state.spec.params.items})
    if unknown:
        return Rejected("item_unknown", "the lot has no such item", {"items": unknown})
    try:
        scoring.Sheet.model_validate({"expert": actor.subject, "bidder": bidder, **_numbers(args)})
    except ValidationError:
        return Rejected("number_invalid", 'scores are decimal strings like "31.5"', {})
    data = {"expert": actor.subject, **_named(state, bidder), **_numbers(args)}
    return bidder, data


def _numbers(args: Args) -> JSON:
    return {"scores": dict(args["scores"]), "total": args.get("total")}


def _all_sheets_in(state: EvaluationState) -> bool:
    """Every member's sheet for every passed bid (the pages ask for them all; the check and the
    summary then count only the bids that will be ranked)."""
    return all((e, b) in state.sheets for e in state.members for b in state.passed)


def _checked(state: EvaluationState) -> Event:
    """The deviation check over the sheets as they stand, of the bids that will be ranked only:
    a sheet of a bid that is not ranked raises no flag that could hold up the summary."""
    ranked = set(state.ranked)
    sheets = [
        scoring.Sheet.model_validate({"expert": e, "bidder": b, **sheet})
        for (e, b), sheet in sorted(state.sheets.items())
        if b in ranked
    ]
    flags = scoring.deviations(state.spec.params, sheets)
    return Event("evaluation.deviations_checked", {"flags": [_flag(state, f) for f in flags]})


def _flag(state: EvaluationState, flag: scoring.Flag) -> JSON:
    named = _named(state, flag.bidder)
    key = "|".join((flag.kind, *named.values(), flag.item or "", flag.expert or ""))
    return {
        "key": key,
        "kind": flag.kind,
        **named,
        "expert": flag.expert,
        "item": flag.item,
        "evidence": dict(flag.evidence),
    }


def _submit_sheet(state: EvaluationState, args: Args, actor: Actor, now: datetime) -> Decision:
    found = _sheet(state, args, actor)
    if isinstance(found, Rejected):
        return found
    bidder, data = found
    if (actor.subject, bidder) in state.sheets:
        return Rejected("already_submitted", "you have scored this bid", {"bid": args["bid"]})
    submitted = Event("evaluation.sheet_submitted", data)
    after = apply(state, submitted)
    return [submitted, _checked(after)] if _all_sheets_in(after) else [submitted]


def _rescore(state: EvaluationState, args: Args, actor: Actor, now: datetime) -> Decision:
    found = _sheet(state, args, actor)
    if isinstance(found, Rejected):
        return found
    bidder, data = found
    if (actor.subject, bidder) not in state.sheets:
        return Rejected("no_sheet", "you have no sheet for this bid", {"bid": args["bid"]})
    rescored = Event("evaluation.sheet_rescored", data)
    return [rescored, _checked(apply(state, rescored))]


def _explain(state: EvaluationState, args: Args, actor: Actor, now: datetime) -> Decision:
    key = str(args["flag"])
    flag = next((f for f in state.flags if f["key"] == key), None)
    if flag is None:
        return Rejected("no_such_flag", "no such flag is raised", {"flag": key})
    if flag["expert"] != actor.subject:
        return Rejected("not_your_flag", "each expert answers for their own scores", {})
    if flag["kind"] not in EXPLAINABLE:
        return Rejected("rescore_needed", f"a {flag['kind']} flag needs a re-score", {})
    if key in state.explanations:
        return Rejected("already_explained", "you have explained this score", {})
    data = {"flag": key, "expert": actor.subject, "reason": args["reason"]}
    return [Event("evaluation.flag_explained", data)]


def record(state: EvaluationState) -> JSON:
    """The evaluation record bidroom.scoring recomputes (``bidroom evaluation recompute``)."""
    passed = set(state.passed)
    return {
        "format": scoring.RECORD_FORMAT,
        "version": scoring.VERSION,
        "params": state.spec.params.model_dump(mode="json"),
        "k": state.spec.k,
        "bids": [
            {
                "bidder": b.bidder,
                "price": b.price,
                "passed": b.bidder in passed,
                "received_at": b.received_at,
            }
            for b in state.spec.bids
        ],
        # the roster, so that a recomputation names a member who never scored (member_unscored)
        "committee": list(state.members),
        "sheets": [
            {"expert": e, "bidder": b, **sheet} for (e, b), sheet in sorted(state.sheets.items())
        ],
    }


def _summarise(state: EvaluationState, args: Args, actor: Actor, now: datetime) -> Decision:
    refused = _leader(state, actor)
    if refused is not None:
        return refused
    still = state.open_flags()
    if still:
        keys = [f["key"] for f in still]
        return Rejected("flags_open", f"{len(keys)} flags are not resolved", {"flags": keys})
    if not state.ranked:
        return [_no_valid_bid(state)]
    data = record(state)
    try:
        computation = scoring.recompute(data)
    except BidroomError as exc:
        return _refused(exc)
    events = [Event("evaluation.scores_locked", {"sheets": len(state.sheets)})]
    if state.anonymous:
        revealed = {label: b for b, label in sorted(state.spec.labels.items())}
        events.append(Event("evaluation.labels_revealed", {"labels": revealed}))
    summary = {"record": data, "computation": computation}
    return [*events, Event("evaluation.summarised", summary)]


# clarification (澄清): drafted by the leader, approved by the supervisor, answered by the bidder


def _question(state: EvaluationState, ident: str) -> Question | None:
    return next((q for q in state.questions if q.id == ident), None)


def _no_question(ident: str) -> Rejected:
    return Rejected("no_such_question", "no such question", {"question": ident})


def _when(value: Any) -> datetime | None:
    """An aware datetime from ISO 8601, or None."""
    try:
        when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def _draft_question(state: EvaluationState, args: Args, actor: Actor, now: datetime) -> Decision:
    refused = _leader(state, actor)
    if refused is not None:
        return refused
    bidder = bidder_named(state, str(args["bidder"]))
    if bidder is None:
        return Rejected("no_bid", "no such bid to ask", {"bid": args["bidder"]})
    deadline = _when(args["deadline"])
    if deadline is None or deadline <= now:
        return Rejected("deadline_invalid", "the deadline is a time to come, with its offset", {})
    events = []
    if state.phase != "clarifying":
        events.append(Event("evaluation.clarification_opened", {"from": state.phase}))
    data = {
        "question": f"Q{len(state.questions) + 1}",
        **_named(state, bidder),
        "text": args["text"],
        "deadline": deadline.isoformat(),
        "drafted_by": actor.subject,
    }
    return [*events, Event("evaluation.question_drafted", data)]


def _draft(state: EvaluationState, args: Args, now: datetime) -> Question | Rejected:
    question = _question(state, str(args["question"]))
    if question is None:
        return _no_question(str(args["question"]))
    if question.status != "draft":
        return Rejected("not_a_draft", f"the question is {question.status}", {})
    if now >= datetime.fromisoformat(question.deadline):
        return Rejected("deadline_passed", "the question's deadline has passed: redraft it", {})
    return question


def _approve_question(state: EvaluationState, args: Args, actor: Actor, now: datetime) -> Decision:
    question = _draft(state, args, now)
    if isinstance(question, Rejected):
        return question
    # Self-contained for the bidder, who sees this event and never the draft (nor its label).
    data = {
        "question": question.id,
        "text": question.text,
        "deadline": question.deadline,
        "supervisor": actor.subject,
    }
    return [Event("evaluation.question_approved", data)]


def _reject_question(state: EvaluationState, args: Args, actor: Actor, now: datetime) -> Decision:
    question = _draft(state, args, now)
    if isinstance(question, Rejected):
        return question
    if not str(args.get("reason") or "").strip():
        return Rejected("reason_needed", "a rejection gives its written reason", {})
    data = {"question": question.id, "supervisor": actor.subject, "reason": args["reason"]}
    return [Event("evaluation.question_rejected", data)]


def _answer_question(state: EvaluationState, args: Args, actor: Actor, now: datetime) -> Decision:
    ident = str(args["question"])
    question = _question(state, ident)
    if question is None or question.status in ("draft", "rejected", "withdrawn"):
        return _no_question(ident)  # a question never sent does not exist for a bidder
    if question.bidder != actor.subject:
        return Rejected("not_your_question", "the question was sent to another bidder", {})
    if question.status == "answered":
        return Rejected("already_answered", "you have answered this question", {})
    if question.status != "approved":
        return Rejected("question_closed", "the clarification of this question is closed", {})
    if now >= datetime.fromisoformat(question.deadline):
        return Rejected(
            "answer_late",
            "the deadline for this answer has passed",
            {"deadline": question.deadline},
        )
    if not args.get("signature") or not args.get("certificate"):
        return Rejected("unsigned", "an answer is signed", {})
    data = {
        "question": ident,
        "text": args["text"],
        "at": now.isoformat(),
        "signature": args["signature"],
        "certificate": args["certificate"],
    }
    return [Event("evaluation.question_answered", data)]


def _close_clarification(
    state: EvaluationState, args: Args, actor: Actor, now: datetime
) -> Decision:
    refused = _leader(state, actor)
    if refused is not None:
        return refused
    waiting = [
        q.id
        for q in state.questions
        if q.status == "approved" and now < datetime.fromisoformat(q.deadline)
    ]
    if waiting:
        return Rejected(
            "answers_pending",
            "a bidder may still answer: wait for the answer or its deadline",
            {"questions": waiting},
        )
    ended = {"approved": "unanswered", "draft": "withdrawn"}
    closed = [
        {"question": q.id, "status": ended[q.status]} for q in state.questions if q.status in ended
    ]
    data = {"to": state.clarify_from or "preliminary", "closed": closed}
    return [Event("evaluation.clarification_closed", data)]


# the report and its signatures


def _issue_report(state: EvaluationState, args: Args, actor: Actor, now: datetime) -> Decision:
    refused = _leader(state, actor)
    if refused is not None:
        return refused
    data = {
        "digest": args["digest"],
        "pages": int(args["pages"]),
        "at": now.isoformat(),
        "sign_until": (now + state.spec.signing).isoformat(),
    }
    return [Event("evaluation.report_issued", data)]


def _report(state: EvaluationState) -> Report:
    assert state.report is not None, "the signing phase has a report"
    return state.report


def _signing(state: EvaluationState, actor: Actor, now: datetime) -> Report | Rejected:
    refused = _member(state, actor)
    if refused is not None:
        return refused
    report = _report(state)
    if actor.subject in report.answered():
        return Rejected("already_signed", "you have signed or refused already", {})
    if now >= datetime.fromisoformat(report.sign_until):
        return Rejected("deadline_passed", "the time to sign the report is over", {})
    return report


def _closed_if_complete(state: EvaluationState, event: Event, now: datetime) -> list[Event]:
    after = apply(state, event)
    if _report(after).answered() >= set(after.members):
        return [event, _signing_closed(after, now)]
    return [event]


def _signing_closed(state: EvaluationState, now: datetime) -> Event:
    report = _report(state)
    data = {
        "at": now.isoformat(),
        "signed": [e for e in state.members if e in report.signatures],
        "dissent": [
            {"expert": e, "reason": report.refusals[e]}
            for e in state.members
            if e in report.refusals
        ],
        "deemed": [e for e in state.members if e not in report.answered()],
    }
    return Event("evaluation.signing_closed", data)


def _sign_report(state: EvaluationState, args: Args, actor: Actor, now: datetime) -> Decision:
    report = _signing(state, actor, now)
    if isinstance(report, Rejected):
        return report
    if not all(args.get(k) for k in ("signature", "certificate", "timestamp")):
        return Rejected("unsigned", "a signature, its certificate and its timestamp", {})
    if args.get("base") != report.current:
        return Rejected(
            "report_moved",
            "another member signed meanwhile: sign the latest revision",
            {"current": report.current},
        )
    data = {
        "expert": actor.subject,
        "digest": report.digest,
        "at": now.isoformat(),
        "signature": args["signature"],
        "certificate": args["certificate"],
        "timestamp": args["timestamp"],
        "base": args["base"],
        "document": args["document"],
    }
    return _closed_if_complete(state, Event("evaluation.report_signed", data), now)


def _refuse_signing(state: EvaluationState, args: Args, actor: Actor, now: datetime) -> Decision:
    report = _signing(state, actor, now)
    if isinstance(report, Rejected):
        return report
    reason = str(args.get("reason") or "").strip()
    if not reason:
        return Rejected(
            "reason_needed", "a refusal gives its written reason, else signing is consent", {}
        )
    data = {"expert": actor.subject, "reason": reason, "at": now.isoformat()}
    return _closed_if_complete(state, Event("evaluation.signing_refused", data), now)


def _dissent(state: EvaluationState, args: Args, actor: Actor, now: datetime) -> Decision:
    """A member's dissenting opinion on the summary, written into the report (a later one
    replaces their earlier one until the report is issued)."""
    refused = _member(state, actor)
    if refused is not None:
        return refused
    reason = str(args.get("reason") or "").strip()
    if not reason:
        return Rejected("reason_needed", "a dissent is a written opinion", {})
    data = {"expert": actor.subject, "reason": reason, "at": now.isoformat()}
    return [Event("evaluation.dissent_recorded", data)]


def _close_signing(state: EvaluationState, args: Args, actor: Actor, now: datetime) -> Decision:
    report = _report(state)
    silent = [e for e in state.members if e not in report.answered()]
    if silent and now < datetime.fromisoformat(report.sign_until):
        return Rejected(
            "signing_open",
            "members may still sign the report",
            {"until": report.sign_until, "waiting": len(silent)},
        )
    return [_signing_closed(state, now)]


# faults: suspension, resumption, sealing


def _clocks(state: EvaluationState, now: datetime) -> committee.FaultReport | Rejected:
    if state.spec.starts_at is None:
        return Rejected("no_schedule", "the session has no scheduled start", {})
    spans = [
        committee.Suspension(
            datetime.fromisoformat(s["start"]),
            datetime.fromisoformat(s["end"]) if s.get("end") else None,
        )
        for s in state.suspensions
    ]
    try:
        return committee.fault_clocks(state.spec.starts_at, spans, now)
    except BidroomError as exc:
        return _refused(exc)


def _clocks_json(report: committee.FaultReport) -> JSON:
    def clock(c: committee.Clock) -> JSON:
        return {
            "rule": c.rule,
            "limit": int(c.limit.total_seconds()),
            "elapsed": int(c.elapsed.total_seconds()),
            "running": c.running,
            "exceeded": c.exceeded,
        }

    return {
        "status": report.status,
        "before_start": clock(report.before_start),
        "during": clock(report.during),
    }


def _suspend(state: EvaluationState, args: Args, actor: Actor, now: datetime) -> Decision:
    report = _clocks(state, now)
    if isinstance(report, Rejected):
        return report
    data = {"at": now.isoformat(), "reason": args["reason"], "phase": state.phase}
    return [Event("evaluation.suspended", data)]


def _resume(state: EvaluationState, args: Args, actor: Actor, now: datetime) -> Decision:
    report = _clocks(state, now)
    if isinstance(report, Rejected):
        return report
    if report.status == "must_seal_and_reform":
        return Rejected(
            "limit_exceeded",
            "the fault lasted over 4 hours: the session is sealed and a new committee formed",
            _clocks_json(report),
        )
    data: JSON = {"at": now.isoformat(), "reason": args["reason"], "clocks": _clocks_json(report)}
    if state.resume_to == "signing" and state.report is not None:
        # The time to sign is given back: the deadline moves by as long as the fault lasted.
        lost = now - datetime.fromisoformat(state.suspensions[-1]["start"])
        data["sign_until"] = (datetime.fromisoformat(state.report.sign_until) + lost).isoformat()
    return [Event("evaluation.resumed", data)]


def _seal(state: EvaluationState, args: Args, actor: Actor, now: datetime) -> Decision:
    report = _clocks(state, now)
    if isinstance(report, Rejected):
        return report
    if report.status == "ok":
        return Rejected("within_limit", "the fault is within its limit: resume", {})
    data = {"at": now.isoformat(), "reason": args["reason"], "clocks": _clocks_json(report)}
    return [Event("evaluation.sealed", data)]


_Decider = Callable[[EvaluationState, Args, Actor, datetime], Decision]
_DECIDERS: Mapping[str, _Decider] = {
    "evaluation.record_draw": _record_draw,
    "evaluation.sign_in": _sign_in,
    "evaluation.open_declarations": _open_declarations,
    "evaluation.declare": _declare,
    "evaluation.record_replacement": _record_replacement,
    "evaluation.vote": _vote,
    "evaluation.close_round": _close_round,
    "evaluation.revote": _revote,
    "evaluation.appoint": _appoint,
    "evaluation.precheck": _precheck,
    "evaluation.start_preliminary": _start_preliminary,
    "evaluation.submit_review": _submit_review,
    "evaluation.submit_sheet": _submit_sheet,
    "evaluation.rescore": _rescore,
    "evaluation.explain": _explain,
    "evaluation.summarise": _summarise,
    "evaluation.draft_question": _draft_question,
    "evaluation.approve_question": _approve_question,
    "evaluation.reject_question": _reject_question,
    "evaluation.answer_question": _answer_question,
    "evaluation.close_clarification": _close_clarification,
    "evaluation.issue_report": _issue_report,
    "evaluation.sign_report": _sign_report,
    "evaluation.refuse_signing": _refuse_signing,
    "evaluation.dissent": _dissent,
    "evaluation.close_signing": _close_signing,
    "evaluation.suspend": _suspend,
    "evaluation.resume": _resume,
    "evaluation.seal": _seal,
}


# apply -------------------------------------------------------------------------------------


def apply(state: EvaluationState, event: Event) -> EvaluationState:
    folder = _FOLDERS.get(event.name)
    after = state if folder is None else folder(state, event)
    signature = event.data.get("signature") if event.name in SIGNED_EVENTS else None
    if signature:
        return replace(after, signatures=after.signatures | {signature_identity(str(signature))})
    return after


def _with_seat(state: EvaluationState, number: int, **changes: Any) -> EvaluationState:
    seats = tuple(replace(s, **changes) if s.seat == number else s for s in state.seats)
    return replace(state, seats=seats)


def _fold_draw(state: EvaluationState, event: Event) -> EvaluationState:
    d = event.data
    seats = tuple(Seat(int(s["seat"]), str(s["venue"]), str(s["commitment"])) for s in d["seats"])
    draw = {"pool_digest": d["pool_digest"], "seed_digest": d["seed_digest"], "replacements": 0}
    return replace(state, phase="signing_in", draw=draw, seats=seats, sealed_draw=d.get("sealed"))


def _fold_seated(state: EvaluationState, event: Event) -> EvaluationState:
    d = event.data
    return _with_seat(
        state, int(d["seat"]), status="seated", expert=str(d["expert"]), name=str(d["name"])
    )


def _fold_declared(state: EvaluationState, event: Event) -> EvaluationState:
    d = event.data
    number = int(d["seat"])
    if d["declaration"] == "none":
        return _with_seat(state, number, declaration="none")
    seat = _seat(state, number)
    assert seat is not None
    gone = {
        "expert": d["expert"],
        "name": seat.name,
        "bidders": list(d["bidders"]),
        "reason": d["reason"],
    }
    return _with_seat(
        state, number, status="vacated", expert=None, name="", left=(*seat.left, gone)
    )


def _fold_replaced(state: EvaluationState, event: Event) -> EvaluationState:
    d = event.data
    draw = dict(state.draw or {})
    draw["replacements"] = int(draw.get("replacements", 0)) + 1
    after = _with_seat(state, int(d["seat"]), status="sealed", commitment=str(d["commitment"]))
    return replace(after, draw=draw, sealed_draw=d.get("sealed") or state.sealed_draw)


def _fold_election(state: EvaluationState, event: Event) -> EvaluationState:
    members = [str(m) for m in event.data["members"]]
    opened = committee.election(members, self_vote=state.spec.self_vote)
    return replace(state, phase="electing", election=opened)


def _elect(
    state: EvaluationState, step: Callable[[committee.Election], committee.Election]
) -> EvaluationState:
    assert state.election is not None
    return replace(state, election=step(state.election))


def _fold_voted(state: EvaluationState, event: Event) -> EvaluationState:
    d = event.data
    return _elect(
        state, lambda e: committee.vote(e, str(d["voter"]), str(d["candidate"]), int(d["round"]))
    )


def _fold_round_closed(state: EvaluationState, event: Event) -> EvaluationState:
    # After the last vote the round closed itself; the chair's early close is folded here.
    assert state.election is not None
    open_ = state.election.phase == "voting"
    return _elect(state, committee.close_round) if open_ else state


def _fold_leader(state: EvaluationState, event: Event) -> EvaluationState:
    assert state.election is not None
    leader = str(event.data["leader"])
    if state.election.phase == "appointing":
        state = _elect(state, lambda e: committee.appoint(e, leader))
    return replace(state, leader=leader, appointed=bool(event.data["appointed"]))


def _fold_review(state: EvaluationState, event: Event) -> EvaluationState:
    verdicts = tuple(dict(v) for v in event.data["verdicts"])
    return replace(state, reviews={**state.reviews, str(event.data["expert"]): verdicts})


def _fold_decided(state: EvaluationState, event: Event) -> EvaluationState:
    after = replace(state, preliminary=dict(event.data))
    if not after.passed:
        summary = {"record": record(after), "computation": None, "reason": "no_bid_passed"}
        return replace(after, phase="summary", summary=summary)
    return replace(after, phase="scoring" if state.spec.params.items else "deviations")


def _fold_sheet(state: EvaluationState, event: Event) -> EvaluationState:
    d = event.data
    key = (str(d["expert"]), _bidder_of(state, d))
    sheet = {"scores": dict(d["scores"]), "total": d.get("total")}
    return replace(state, sheets={**state.sheets, key: sheet})


def _fold_checked(state: EvaluationState, event: Event) -> EvaluationState:
    flags = tuple(dict(f) for f in event.data["flags"])
    keys = {f["key"] for f in flags}
    # An explanation holds while its flag stands; a flag that went away takes it along.
    kept = {k: r for k, r in state.explanations.items() if k in keys}
    return replace(state, phase="deviations", flags=flags, explanations=kept)


def _fold_explained(state: EvaluationState, event: Event) -> EvaluationState:
    key, reason = str(event.data["flag"]), str(event.data["reason"])
    return replace(state, explanations={**state.explanations, key: reason})


def _fold_summarised(state: EvaluationState, event: Event) -> EvaluationState:
    return replace(state, phase="summary", summary=dict(event.data))


def _with_question(state: EvaluationState, ident: str, **changes: Any) -> EvaluationState:
    questions = tuple(replace(q, **changes) if q.id == ident else q for q in state.questions)
    return replace(state, questions=questions)


def _fold_drafted(state: EvaluationState, event: Event) -> EvaluationState:
    d = event.data
    question = Question(
        str(d["question"]),
        _bidder_of(state, d),
        str(d["text"]),
        str(d["deadline"]),
        str(d["drafted_by"]),
    )
    return replace(state, questions=(*state.questions, question))


def _fold_answered(state: EvaluationState, event: Event) -> EvaluationState:
    d = event.data
    answer = {k: d[k] for k in ("text", "at", "signature", "certificate")}
    return _with_question(state, str(d["question"]), status="answered", answer=answer)


def _fold_clarified(state: EvaluationState, event: Event) -> EvaluationState:
    ended = {str(c["question"]): str(c["status"]) for c in event.data["closed"]}
    questions = tuple(replace(q, status=ended.get(q.id, q.status)) for q in state.questions)
    return replace(state, phase=str(event.data["to"]), clarify_from=None, questions=questions)


def _fold_issued(state: EvaluationState, event: Event) -> EvaluationState:
    d = event.data
    report = Report(str(d["digest"]), int(d["pages"]), str(d["at"]), str(d["sign_until"]))
    return replace(state, phase="signing", report=report)


def _with_report(state: EvaluationState, **changes: Any) -> EvaluationState:
    return replace(state, report=replace(_report(state), **changes))


def _fold_signed(state: EvaluationState, event: Event) -> EvaluationState:
    d = event.data
    keys = ("at", "signature", "certificate", "timestamp", "base", "document")
    signature = {k: d[k] for k in keys if k in d}
    return _with_report(state, signatures={**_report(state).signatures, d["expert"]: signature})


def _fold_refused(state: EvaluationState, event: Event) -> EvaluationState:
    d = event.data
    return _with_report(state, refusals={**_report(state).refusals, d["expert"]: d["reason"]})


def _fold_signing_closed(state: EvaluationState, event: Event) -> EvaluationState:
    return replace(_with_report(state, closed=dict(event.data)), phase="signed")


def _fold_suspended(state: EvaluationState, event: Event) -> EvaluationState:
    d = event.data
    stop = {"start": d["at"], "end": None, "reason": d["reason"], "phase": d["phase"]}
    return replace(
        state, phase="suspended", resume_to=state.phase, suspensions=(*state.suspensions, stop)
    )


def _end_suspension(state: EvaluationState, event: Event, **changes: Any) -> EvaluationState:
    last = {**state.suspensions[-1], "end": event.data["at"], "clocks": event.data["clocks"]}
    return replace(state, suspensions=(*state.suspensions[:-1], last), **changes)


def _fold_resumed(state: EvaluationState, event: Event) -> EvaluationState:
    after = _end_suspension(state, event, phase=state.resume_to or "forming", resume_to=None)
    if event.data.get("sign_until"):
        return _with_report(after, sign_until=str(event.data["sign_until"]))
    return after


def _fold_sealed(state: EvaluationState, event: Event) -> EvaluationState:
    sealed = {"at": event.data["at"], "reason": event.data["reason"]}
    return _end_suspension(state, event, phase="sealed", sealed=sealed)


_FOLDERS: Mapping[str, Callable[[EvaluationState, Event], EvaluationState]] = {
    "evaluation.draw_recorded": _fold_draw,
    "evaluation.expert_seated": _fold_seated,
    "evaluation.declarations_opened": lambda s, e: replace(s, phase="declaring"),
    "evaluation.declared": _fold_declared,
    "evaluation.seat_replaced": _fold_replaced,
    "evaluation.election_opened": _fold_election,
    "evaluation.voted": _fold_voted,
    "evaluation.round_closed": _fold_round_closed,
    "evaluation.revote_opened": lambda s, e: _elect(s, committee.revote),
    "evaluation.leader_elected": _fold_leader,
    "evaluation.prechecked": lambda s, e: replace(
        s, phase="prechecked", precheck=dict(e.data["result"])
    ),
    "evaluation.preliminary_started": lambda s, e: replace(s, phase="preliminary"),
    "evaluation.review_submitted": _fold_review,
    "evaluation.preliminary_decided": _fold_decided,
    "evaluation.sheet_submitted": _fold_sheet,
    "evaluation.sheet_rescored": _fold_sheet,
    "evaluation.deviations_checked": _fold_checked,
    "evaluation.flag_explained": _fold_explained,
    "evaluation.scores_locked": lambda s, e: s,
    "evaluation.labels_revealed": lambda s, e: replace(s, revealed=True),
    "evaluation.summarised": _fold_summarised,
    "evaluation.clarification_opened": lambda s, e: replace(
        s, phase="clarifying", clarify_from=str(e.data["from"])
    ),
    "evaluation.question_drafted": _fold_drafted,
    "evaluation.question_approved": lambda s, e: _with_question(
        s, str(e.data["question"]), status="approved"
    ),
    "evaluation.question_rejected": lambda s, e: _with_question(
        s, str(e.data["question"]), status="rejected", rejection=str(e.data["reason"])
    ),
    "evaluation.question_answered": _fold_answered,
    "evaluation.clarification_closed": _fold_clarified,
    "evaluation.report_issued": _fold_issued,
    "evaluation.report_signed": _fold_signed,
    "evaluation.signing_refused": _fold_refused,
    "evaluation.signing_closed": _fold_signing_closed,
    "evaluation.dissent_recorded": lambda s, e: replace(
        s, dissents={**s.dissents, str(e.data["expert"]): str(e.data["reason"])}
    ),
    "evaluation.suspended": _fold_suspended,
    "evaluation.resumed": _fold_resumed,
    "evaluation.sealed": _fold_sealed,
}


# who may see what --------------------------------------------------------------------------


def roles(state: EvaluationState) -> frozenset[str]:
    return state.roles


def may_join(state: EvaluationState, actor: Actor) -> Rejected | None:
    """A bidder of the session joins to see and answer their own clarification questions,
    nothing else; any other bidder stays out."""
    refused = admits(state.roles, actor, "this evaluation")
    if refused is None and actor.role == "bidder" and state.spec.bid(actor.subject) is None:
        return Rejected("not_allowed", "this evaluation is not of a bid of yours", {})
    return refused


def outside(state: EvaluationState, actor: Actor) -> bool:
    """An expert who holds no seat: drawn and not signed in yet, left after a conflict, or never
    drawn. They see the seats' state and their own sign-in, nothing of the committee's work."""
    return actor.role == "expert" and actor.subject not in state.members


# Before handing in their own, an expert sees neither another's review nor another's sheet.
_OWN_FIRST = frozenset(
    {"evaluation.review_submitted", "evaluation.sheet_submitted", "evaluation.sheet_rescored"}
)


# What a bidder sees of the evaluation: the questions sent to them and their own answers.
SENT = frozenset({"approved", "answered", "unanswered"})  # the statuses a bidder may see


def visible(state: EvaluationState, event: Event, actor: Actor) -> bool:
    if actor.role in WATCHERS:
        return True
    if actor.role != "expert" or outside(state, actor):
        # A bidder reads their questions in their snapshot (events name staff); an expert off
        # the committee sees the seats in theirs: both are refreshed when these change.
        return False
    if event.name == "evaluation.voted":  # a ballot is secret until its round closes
        return event.data.get("voter") == actor.subject
    if event.name == "evaluation.question_answered" and state.anonymous:
        # Its actor and certificate name the bidder: experts read the answer in the snapshot,
        # under the bid's label (a reveal).
        return False
    if event.name not in _OWN_FIRST or event.data.get("expert") == actor.subject:
        return True
    if event.name == "evaluation.review_submitted":
        return actor.subject in state.reviews
    return (actor.subject, _bidder_of(state, event.data)) in state.sheets


def _sees_all(actor: Actor) -> bool:
    return actor.role in WATCHERS


def _bid_view(state: EvaluationState, bidder: str, actor: Actor) -> JSON:
    """A bid as ``actor`` may name it: its label while anonymous (the watchers see both)."""
    label = state.spec.labels.get(bidder)
    if state.anonymous and not _sees_all(actor):
        return {"label": label}
    bid = state.spec.bid(bidder)
    return {"bidder": bidder, "name": bid.name if bid else "", "label": label}


def _reviews_view(state: EvaluationState, actor: Actor) -> JSON:
    mine = actor.subject in state.reviews
    shown = {
        e: [dict(v) for v in vs]
        for e, vs in state.reviews.items()
        if _sees_all(actor) or e == actor.subject or mine
    }
    return {"submitted": sorted(state.reviews), "verdicts": shown}


def _sheets_view(state: EvaluationState, actor: Actor) -> list[JSON]:
    own = {b for e, b in state.sheets if e == actor.subject}
    return [
        {"expert": e, **_bid_view(state, b, actor), **sheet}
        for (e, b), sheet in sorted(state.sheets.items())
        if _sees_all(actor) or e == actor.subject or b in own
    ]


def _to_score(state: EvaluationState, actor: Actor) -> list[JSON]:
    """The passing bids and, for an expert, whether they have scored each."""
    return [
        {**_bid_view(state, b, actor), "scored": (actor.subject, b) in state.sheets}
        for b in sorted(state.passed, key=lambda b: state.spec.labels.get(b, b))
    ]


def _question_view(state: EvaluationState, question: Question, actor: Actor) -> JSON:
    """A question as ``actor`` sees it: a bidder without who drafted it, an expert under the
    bid's label and without the answer's signature while the part is anonymous."""
    shown = question.to_json()
    if actor.role == "bidder":
        answer = question.answer
        shown.pop("drafted_by")
        shown.pop("rejection")
        shown["answer"] = None if answer is None else {"text": answer["text"], "at": answer["at"]}
        return shown
    if state.anonymous and not _sees_all(actor) and question.answer is not None:
        shown["answer"] = {"text": question.answer["text"], "at": question.answer["at"]}
    return {**_bid_view(state, question.bidder, actor), **shown}


def _clarifications(state: EvaluationState, actor: Actor) -> list[JSON]:
    return [
        _question_view(state, q, actor)
        for q in state.questions
        if actor.role != "bidder" or (q.bidder == actor.subject and q.status in SENT)
    ]


def _commands(state: EvaluationState, actor: Actor, table: Mapping[str, Any]) -> list[str]:
    return [c for c in RULES.allowed_in(state.phase, actor.role) if c in table]


def _bidder_snapshot(state: EvaluationState, actor: Actor) -> JSON:
    mine = _clarifications(state, actor)
    waiting = any(q["status"] == "approved" for q in mine)
    return {
        "kind": KIND,
        "lot": state.spec.lot,
        "phase": state.phase,
        "clarifications": mine,
        "allowed": [],
        "actions": _commands(state, actor, SHELL_ARGUMENTS) if waiting else [],
    }


_WITHHELD: JSON = {  # what an expert off the committee does not see, as an empty value
    "bidders": [],
    "election": None,
    "leader": None,
    "precheck": None,
    "reviews": {"submitted": [], "verdicts": {}},
    "preliminary": None,
    "to_score": [],
    "sheets": [],
    "flags": [],
    "open_flags": [],
    "explanations": {},
    "summary": None,
    "dissents": {},
    "clarifications": [],
    "report": None,
}


def _outside_snapshot(state: EvaluationState, actor: Actor) -> JSON:
    full = snapshot(replace(state, seats=()), replace(actor, role="supervisor"))
    seats = [
        {
            **s.to_json(),
            "expert": None,
            "name": "",
            "declaration": None,
            "left": [x for x in s.left if x.get("expert") == actor.subject],
        }
        for s in state.seats
    ]
    return {
        **full,
        **_WITHHELD,
        "seats": seats,
        "me_seated": False,
        "allowed": _commands(state, actor, ARGUMENTS),
        "actions": _commands(state, actor, SHELL_ARGUMENTS),
    }


def _election_view(state: EvaluationState, actor: Actor) -> JSON | None:
    """The election, with the open round as far as a ballot is secret until it closes: who has
    voted, and the actor's own choice."""
    if state.election is None:
        return None
    current = state.election.current
    return {
        **state.election.to_json(),
        "current": {
            "round": current.number,
            "candidates": list(current.candidates),
            "voted": sorted(current.votes),
            "mine": current.votes.get(actor.subject),
        },
    }


def snapshot(state: EvaluationState, actor: Actor) -> JSON:
    """Everything a page shows, as ``actor`` may see it (docs/evaluation.md)."""
    if actor.role == "bidder":
        return _bidder_snapshot(state, actor)
    if actor.role not in WATCHERS and actor.role != "expert":
        return {"kind": KIND, "lot": state.spec.lot, "phase": state.phase, "allowed": []}
    if outside(state, actor):
        return _outside_snapshot(state, actor)
    election = _election_view(state, actor)
    summary = dict(state.summary) if state.summary else None
    return {
        "kind": KIND,
        "lot": state.spec.lot,
        "tender": state.spec.tender,
        "title": state.spec.title,
        "phase": state.phase,
        "resume_to": state.resume_to,
        "starts_at": state.spec.starts_at.isoformat() if state.spec.starts_at else None,
        "venues": [{"venue": v, "seats": n} for v, n in state.spec.venues],
        "draw": None if state.draw is None else dict(state.draw),
        "seats": [s.to_json() for s in state.seats],
        "me_seated": actor.subject in state.members,
        "bidders": [{"bidder": b.bidder, "name": b.name} for b in state.spec.bids],
        "election": election,
        "leader": state.leader,
        "appointed": state.appointed,
        "precheck": None if state.precheck is None else dict(state.precheck),
        "criteria": [{"id": i, "text": t} for i, t in state.spec.criteria],
        "review_rule": state.spec.rule,
        "reviews": _reviews_view(state, actor),
        "preliminary": None if state.preliminary is None else dict(state.preliminary),
        "items": state.spec.params.model_dump(mode="json")["items"],
        "anonymous": state.spec.anonymous,
        "revealed": state.revealed,
        "to_score": _to_score(state, actor),
        "sheets": _sheets_view(state, actor),
        "flags": [dict(f) for f in state.flags],
        "open_flags": [f["key"] for f in state.open_flags()],
        "explanations": dict(state.explanations),
        "summary": summary,
        "dissents": dict(state.dissents),
        "clarifying_from": state.clarify_from,
        "clarifications": _clarifications(state, actor),
        "report": None if state.report is None else state.report.to_json(),
        "suspensions": [dict(s) for s in state.suspensions],
        "sealed": None if state.sealed is None else dict(state.sealed),
        "allowed": _commands(state, actor, ARGUMENTS),
        "actions": _commands(state, actor, SHELL_ARGUMENTS),  # sent through the HTTP shell
    }


class Evaluation(
    ModuleRoomType[EvaluationState], core=this, presence=meeting, reveals=REVEALS, signed=SIGNED
):
    """The evaluation part, as bidroom.compose sees it (presence is the meeting part's).

    Its ``arguments`` are the WebSocket edge's: shell commands are not a client's to send."""


def _committee_sees(state: tuple[Any, ...], actor: Actor) -> bool:
    """The committee's room (its recording): the watchers, the seated experts, the recorder."""
    return actor.role in WATCHERS | {recording.RECORDER} or (
        actor.role == "expert" and not outside(state[1], actor)
    )


def room_type() -> Composite:
    """The evaluation room: the meeting (presence, announcements, messages) and the evaluation."""
    return Composite(
        KIND,
        [
            Part("meeting", ("meeting.", "presence."), meeting.Meeting()),
            Part("evaluation", ("evaluation.",), Evaluation()),
            Part("recording", ("recording.",), recording.Recording(), _committee_sees),
        ],
    )
