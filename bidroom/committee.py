"""The evaluation committee (评标委员会), pure: the expert draw, sealed seats, replacement after a
conflict (回避), the leader election (组长) and the fault clocks.

The steps (../shared/DOMAIN.md, "Remote multi-venue evaluation", steps 1-4 and 13): experts are
drawn from a pool per venue (主场 / 副场, e.g. 3 + 1 + 1); their identities stay sealed until each
signs in at a seat of their venue; a conflicted expert leaves and a replacement is drawn at the
same venue; the committee elects its leader by equal votes (a tie is re-voted once among the tied,
a second tie is settled by the chair's appointment); a fault before the start is the tenderee's
to decide after 2 hours, a fault during evaluation that lasts over 4 hours seals the session.

Rules of this file:
- Nothing here does I/O, reads a clock or draws randomness. Seeds come in as arguments (the
  caller draws them, publishes SHA-256(seed) first and logs the seed), and so does ``now``.
- The draw is a fixed function of the pool snapshot, the request and the seed
  (:func:`choose`); anyone holding the record recomputes it with :func:`recompute`.
- A seed reveals the whole committee, so the caller keeps it (and the sealed view) sealed until
  sign-in; the public view shows only venue, seat and a commitment per seat.
- Every refusal raises :class:`bidroom.errors.CommitteeError` with one of the codes below and the
  evidence in ``detail``.

Codes:
- draw: invalid_pool, invalid_request, seed_too_short, too_few_eligible;
- replacement: seed_reused, no_such_seat, too_few_eligible;
- sign-in: no_such_seat, wrong_venue, seat_mismatch;
- recompute: pool_mismatch, invalid_record, record_mismatch;
- election: invalid_members, wrong_phase, round_closed, no_such_round, not_a_member,
  already_voted, not_a_candidate, self_vote_forbidden, no_votes, not_tied_candidate;
- fault clocks: invalid_intervals, naive_time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Literal

from bidroom.audit import canonical
from bidroom.errors import CommitteeError

JSON = dict[str, Any]
POOL_FORMAT = "bidroom-expert-pool"
DRAW_FORMAT = "bidroom-committee-draw"
MIN_SEED = 16  # bytes: a seed anyone could guess would let them choose the committee


# the pool and the request ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PastDraw:
    """An earlier draw of an expert for a tenderer (for the rest period)."""

    tenderer: str
    on: date


@dataclass(frozen=True, slots=True)
class Expert:
    """One expert of the pool (专家库), as the pool snapshot holds them.

    ``avoids`` is the expert's declared avoidance list (organisations they may not evaluate).
    """

    id: str
    name: str
    specialties: frozenset[str]
    organisation: str
    city: str
    avoids: frozenset[str] = frozenset()
    history: tuple[PastDraw, ...] = ()

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "name": self.name,
            "specialties": sorted(self.specialties),
            "organisation": self.organisation,
            "city": self.city,
            "avoids": sorted(self.avoids),
            "history": [
                {"tenderer": p.tenderer, "on": p.on.isoformat()}
                for p in sorted(self.history, key=lambda p: (p.on, p.tenderer))
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Expert:
        return cls(
            id=str(data["id"]),
            name=str(data["name"]),
            specialties=frozenset(data["specialties"]),
            organisation=str(data["organisation"]),
            city=str(data["city"]),
            avoids=frozenset(data.get("avoids", ())),
            history=tuple(
                PastDraw(str(p["tenderer"]), date.fromisoformat(p["on"]))
                for p in data.get("history", ())
            ),
        )


@dataclass(frozen=True, slots=True)
class Seats:
    """How many experts a venue needs; ``cities``, if not empty, are the home cities it takes."""

    venue: str
    count: int
    cities: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Request:
    """What the session asks of the draw (抽取专家申请).

    An expert is eligible when they hold one of ``specialties``; work neither for the tenderer
    nor for a bidder and did not declare avoidance of either; do not live in ``local_city`` (set
    when the lot's rule excludes local experts); and, if ``rest_days`` is set, were not drawn for
    the same tenderer fewer than ``rest_days`` days before ``on``, the day of this draw.
    """

    lot: str
    seats: tuple[Seats, ...]
    specialties: frozenset[str]
    tenderer: str
    bidders: frozenset[str]
    on: date
    local_city: str | None = None
    rest_days: int | None = None

    def to_json(self) -> JSON:
        return {
            "lot": self.lot,
            "seats": [
                {"venue": s.venue, "count": s.count, "cities": sorted(s.cities)} for s in self.seats
            ],
            "specialties": sorted(self.specialties),
            "tenderer": self.tenderer,
            "bidders": sorted(self.bidders),
            "on": self.on.isoformat(),
            "local_city": self.local_city,
            "rest_days": self.rest_days,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Request:
        return cls(
            lot=str(data["lot"]),
            seats=tuple(
                Seats(str(s["venue"]), int(s["count"]), frozenset(s.get("cities", ())))
                for s in data["seats"]
            ),
            specialties=frozenset(data["specialties"]),
            tenderer=str(data["tenderer"]),
            bidders=frozenset(data["bidders"]),
            on=date.fromisoformat(data["on"]),
            local_city=data.get("local_city"),
            rest_days=data.get("rest_days"),
        )


def pool_json(pool: Iterable[Expert]) -> JSON:
    """The pool snapshot as canonical JSON: experts sorted by id."""
    experts = sorted(pool, key=lambda e: e.id)
    return {"format": POOL_FORMAT, "v": 1, "experts": [e.to_json() for e in experts]}


def pool_digest(pool: Iterable[Expert]) -> str:
    """Hex SHA-256 of the pool snapshot's canonical JSON; logged before the seed is revealed."""
    return hashlib.sha256(canonical(pool_json(pool))).hexdigest()


def ineligible(expert: Expert, request: Request) -> str | None:
    """Why ``expert`` may not sit on this committee, or None if they may."""
    parties = request.bidders | {request.tenderer}
    if not expert.specialties & request.specialties:
        return "specialty"
    if expert.organisation == request.tenderer:
        return "tenderer_staff"
    if expert.organisation in request.bidders:
        return "bidder_staff"
    if expert.avoids & parties:
        return "declared_avoidance"
    if request.local_city is not None and expert.city == request.local_city:
        return "local_city"
    if _resting(expert, request):
        return "rest_period"
    return None


def _resting(expert: Expert, request: Request) -> bool:
    if request.rest_days is None:
        return False
    return any(
        p.tenderer == request.tenderer and 0 <= (request.on - p.on).days < request.rest_days
        for p in expert.history
    )


def eligible(pool: Iterable[Expert], request: Request) -> tuple[Expert, ...]:
    """The eligible experts in the draw's order: by id (code point order)."""
    return tuple(sorted((e for e in pool if ineligible(e, request) is None), key=lambda e: e.id))


# the draw ----------------------------------------------------------------------------------


def choose(seed: bytes, digest: str, lot: str, seat: int, candidates: int) -> int:
    """The index of the candidate that takes ``seat``; anyone recomputes it from the record.

    n = SHA-256("bidroom committee v1\\n" || pool digest (hex) || "\\n" || lot || "\\n" || seat
    (decimal) || "\\n" || seed) as a big-endian integer; index = n mod candidates, the candidates
    being the eligible experts the seat's venue takes and not drawn yet, in the eligible order.
    """
    label = f"bidroom committee v1\n{digest}\n{lot}\n{seat}\n".encode()
    return int.from_bytes(hashlib.sha256(label + seed).digest(), "big") % candidates


def seat_salt(seed: bytes, lot: str, seat: int) -> bytes:
    """The salt of a seat's commitment, from the seed that placed its expert:
    SHA-256("bidroom seat salt v1\\n" || lot || "\\n" || seat || "\\n" || seed)."""
    return hashlib.sha256(f"bidroom seat salt v1\n{lot}\n{seat}\n".encode() + seed).digest()


def seat_commitment(seat: int, expert: str, salt: bytes) -> str:
    """Hex SHA-256 of the canonical JSON {"v": 1, "seat", "expert", "salt" (hex)}."""
    document = {"v": 1, "seat": seat, "expert": expert, "salt": salt.hex()}
    return hashlib.sha256(canonical(document)).hexdigest()


@dataclass(frozen=True, slots=True)
class Pick:
    """A seat and the expert drawn for it. Seats are numbered 1.. across venues in order."""

    seat: int
    venue: str
    expert: str


@dataclass(frozen=True, slots=True)
class Replacement:
    """Seat ``seat`` passed from ``replaced`` (conflicted, 回避) to ``expert``, drawn with
    ``seed`` among ``candidates`` (ids, in order)."""

    seat: int
    venue: str
    replaced: str
    expert: str
    seed: bytes
    candidates: tuple[str, ...]

    def to_json(self) -> JSON:
        return {
            "seat": self.seat,
            "venue": self.venue,
            "replaced": self.replaced,
            "expert": self.expert,
            "seed": self.seed.hex(),
            "candidates": list(self.candidates),
        }


@dataclass(frozen=True, slots=True)
class PublicSeat:
    """What everyone may see of a seat before sign-in (四不见面)."""

    seat: int
    venue: str
    commitment: str

    def to_json(self) -> JSON:
        return {"seat": self.seat, "venue": self.venue, "commitment": self.commitment}


@dataclass(frozen=True, slots=True)
class SealedSeat:
    """Who holds a seat, and the salt the expert is sent to prove it at sign-in."""

    seat: int
    venue: str
    expert: str
    salt: bytes
    commitment: str


@dataclass(frozen=True, slots=True)
class Draw:
    """The record of a draw: pool digest, request, seed, eligible list, picks, replacements."""

    request: Request
    pool_digest: str
    seed: bytes
    eligible: tuple[Expert, ...]
    picks: tuple[Pick, ...]
    replacements: tuple[Replacement, ...] = ()

    def seats(self) -> tuple[Pick, ...]:
        """The seats with their current experts (after replacements)."""
        current = {p.seat: p for p in self.picks}
        for r in self.replacements:
            current[r.seat] = Pick(r.seat, r.venue, r.expert)
        return tuple(current[n] for n in sorted(current))

    def by_venue(self) -> dict[str, tuple[str, ...]]:
        """Current expert ids per venue, in the request's venue order."""
        seats = self.seats()
        return {
            s.venue: tuple(p.expert for p in seats if p.venue == s.venue)
            for s in self.request.seats
        }

    def drawn(self) -> frozenset[str]:
        """Everyone ever drawn for this committee, the replaced included."""
        return frozenset(p.expert for p in self.picks) | {r.expert for r in self.replacements}

    def sealed_view(self) -> tuple[SealedSeat, ...]:
        """Each seat's expert and salt: the draw's seed salts a drawn seat, the replacement's
        seed a replaced one."""
        seeds = {p.seat: self.seed for p in self.picks}
        seeds |= {r.seat: r.seed for r in self.replacements}
        lot = self.request.lot
        return tuple(_sealed(p, seat_salt(seeds[p.seat], lot, p.seat)) for p in self.seats())

    def public_view(self) -> tuple[PublicSeat, ...]:
        return tuple(PublicSeat(s.seat, s.venue, s.commitment) for s in self.sealed_view())

    def to_json(self) -> JSON:
        return {
            "format": DRAW_FORMAT,
            "v": 1,
            "request": self.request.to_json(),
            "pool_digest": self.pool_digest,
            "seed": self.seed.hex(),
            "eligible": [e.to_json() for e in self.eligible],
            "picks": [{"seat": p.seat, "venue": p.venue, "expert": p.expert} for p in self.picks],
            "replacements": [r.to_json() for r in self.replacements],
        }


def _sealed(pick: Pick, salt: bytes) -> SealedSeat:
    commitment = seat_commitment(pick.seat, pick.expert, salt)
    return SealedSeat(pick.seat, pick.venue, pick.expert, salt, commitment)


def draw(pool: Sequence[Expert], request: Request, seed: bytes) -> Draw:
    """Draw the committee seat by seat with :func:`choose`.

    Seats are numbered 1.. in the request's venue order; venues are filled most constrained
    first (fewest eligible experts for them, then request order), so that a venue taking any
    city cannot use up the only experts of a venue bound to one.
    """
    _check_pool(pool)
    _check_request(request)
    _check_seed(seed)
    digest = pool_digest(pool)
    experts = eligible(pool, request)
    _enough(experts, request)
    picks: dict[int, Pick] = {}
    for seats, first in _draw_order(experts, request):
        for seat in range(first, first + seats.count):
            candidates = _candidates(experts, seats, (p.expert for p in picks.values()))
            if not candidates:
                raise _too_few(seats.venue, seats.count, len(_candidates(experts, seats, ())))
            index = choose(seed, digest, request.lot, seat, len(candidates))
            picks[seat] = Pick(seat, seats.venue, candidates[index].id)
    return Draw(request, digest, seed, experts, tuple(picks[n] for n in sorted(picks)))


def _draw_order(experts: Sequence[Expert], request: Request) -> list[tuple[Seats, int]]:
    """The venues with their first seat number, in the order they are filled."""
    firsts = [1]
    for seats in request.seats:
        firsts.append(firsts[-1] + seats.count)
    numbered = list(zip(request.seats, firsts[:-1], strict=True))
    order = sorted(
        range(len(numbered)), key=lambda i: (len(_candidates(experts, numbered[i][0], ())), i)
    )
    return [numbered[i] for i in order]


def _candidates(experts: Sequence[Expert], seats: Seats, taken: Iterable[str]) -> list[Expert]:
    out = set(taken)
    return [e for e in experts if e.id not in out and (not seats.cities or e.city in seats.cities)]


def _enough(experts: Sequence[Expert], request: Request) -> None:
    needed = sum(s.count for s in request.seats)
    if len(experts) < needed:
        raise CommitteeError(
            f"{len(experts)} eligible experts for {needed} seats",
            code="too_few_eligible",
            detail={"venue": None, "needed": needed, "eligible": len(experts)},
        )
    for seats in request.seats:
        available = len(_candidates(experts, seats, ()))
        if available < seats.count:
            raise _too_few(seats.venue, seats.count, available)


def _too_few(venue: str, needed: int, available: int) -> CommitteeError:
    return CommitteeError(
        f"venue {venue} needs {needed} experts; {available} eligible for it",
        code="too_few_eligible",
        detail={"venue": venue, "needed": needed, "eligible": available},
    )


def _check_pool(pool: Sequence[Expert]) -> None:
    ids = [e.id for e in pool]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice or not all(ids):
        raise CommitteeError(
            "every expert of the pool needs one unique id",
            code="invalid_pool",
            detail={"duplicates": twice},
        )


def _check_request(request: Request) -> None:
    venues = [s.venue for s in request.seats]
    problem = (
        "no seats" if not request.seats
        else "a venue is listed twice" if len(set(venues)) != len(venues)
        else "a venue asks for no expert" if any(s.count < 1 for s in request.seats)
        else "no specialty required" if not request.specialties
        else "negative rest period" if request.rest_days is not None and request.rest_days < 0
        else None
    )  # fmt: skip
    if problem is not None:
        raise CommitteeError(f"invalid draw request: {problem}", code="invalid_request")


def _check_seed(seed: bytes) -> None:
    if len(seed) < MIN_SEED:
        raise CommitteeError(
            f"a seed needs at least {MIN_SEED} random bytes",
            code="seed_too_short",
            detail={"length": len(seed), "minimum": MIN_SEED},
        )


# replacement after a conflict (回避) ---------------------------------------------------------


def replace_seat(record: Draw, seat: int, seed: bytes) -> Draw:
    """Draw a replacement for ``seat`` at its venue, among the eligible not drawn yet.

    The same :func:`choose` with the new seed; the result records the replacement of the seat.
    """
    _check_seed(seed)
    if seed == record.seed or any(r.seed == seed for r in record.replacements):
        raise CommitteeError("each draw needs a fresh seed", code="seed_reused")
    current = _seat(record, seat)
    seats = next(s for s in record.request.seats if s.venue == current.venue)
    candidates = _candidates(record.eligible, seats, record.drawn())
    if not candidates:
        raise _too_few(current.venue, 1, 0)
    index = choose(seed, record.pool_digest, record.request.lot, seat, len(candidates))
    ids = tuple(e.id for e in candidates)
    done = Replacement(seat, current.venue, current.expert, ids[index], seed, ids)
    return replace(record, replacements=(*record.replacements, done))


def _seat(record: Draw, seat: int) -> Pick:
    found = next((p for p in record.seats() if p.seat == seat), None)
    if found is None:
        raise CommitteeError(
            f"no seat {seat}", code="no_such_seat", detail={"seats": len(record.picks)}
        )
    return found


# sign-in against a sealed seat ---------------------------------------------------------------


def verify_sign_in(
    view: Sequence[PublicSeat], seat: int, venue: str, expert: str, salt: bytes
) -> None:
    """Check that ``expert``, signing in at ``venue`` with the salt they were sent, holds
    ``seat``. Returns nothing; raises on any mismatch."""
    found = next((s for s in view if s.seat == seat), None)
    if found is None:
        raise CommitteeError(f"no seat {seat}", code="no_such_seat", detail={"seats": len(view)})
    if found.venue != venue:
        raise CommitteeError(
            f"seat {seat} is at venue {found.venue}",
            code="wrong_venue",
            detail={"seat": seat, "venue": found.venue, "signed_in_at": venue},
        )
    if seat_commitment(seat, expert, salt) != found.commitment:
        raise CommitteeError(
            f"seat {seat} is not this expert's", code="seat_mismatch", detail={"seat": seat}
        )


# recompute from the record -------------------------------------------------------------------


def recompute(pool: Sequence[Expert], record: Mapping[str, Any]) -> Draw:
    """Recompute a recorded draw (its ``to_json``) from the pool snapshot; raise if it differs."""
    given = pool_digest(pool)
    if given != record.get("pool_digest"):
        raise CommitteeError(
            "the pool is not the snapshot the draw was made from",
            code="pool_mismatch",
            detail={"recorded": record.get("pool_digest"), "given": given},
        )
    try:
        request = Request.from_json(record["request"])
        seeds = [bytes.fromhex(record["seed"])]
        seeds += [bytes.fromhex(r["seed"]) for r in record["replacements"]]
        seats = [int(r["seat"]) for r in record["replacements"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise CommitteeError(
            f"not a draw record: {exc!r}", code="invalid_record", detail={}
        ) from exc
    again = draw(pool, request, seeds[0])
    for seat, seed in zip(seats, seeds[1:], strict=True):
        again = replace_seat(again, seat, seed)
    if canonical(again.to_json()) != canonical(record):
        raise CommitteeError(
            "the recorded draw is not what its inputs give",
            code="record_mismatch",
            detail={"recomputed": again.to_json()["picks"], "recorded": record.get("picks")},
        )
    return again


# leader election (推选组长) -------------------------------------------------------------------

Phase = Literal["voting", "tied", "appointing", "elected"]
# Which step each phase allows; anything else is refused with wrong_phase.
STEPS: Mapping[Phase, frozenset[str]] = {
    "voting": frozenset({"vote", "close_round"}),
    "tied": frozenset({"revote"}),
    "appointing": frozenset({"appoint"}),
    "elected": frozenset(),
}
REVOTES = 1  # after one tied revote the chair appoints


@dataclass(frozen=True, slots=True)
class Round:
    """One round of votes; ``candidates`` are who may be voted for (the tied, in a revote)."""

    number: int
    candidates: tuple[str, ...]
    votes: Mapping[str, str] = field(default_factory=dict)  # voter -> candidate

    def tally(self) -> dict[str, int]:
        counts = dict.fromkeys(self.candidates, 0)
        for choice in self.votes.values():
            counts[choice] += 1
        return counts

    def top(self) -> tuple[str, ...]:
        counts = self.tally()
        best = max(counts.values())
        return tuple(c for c in self.candidates if counts[c] == best)

    def to_json(self) -> JSON:
        return {
            "round": self.number,
            "candidates": list(self.candidates),
            "votes": dict(sorted(self.votes.items())),
            "tally": self.tally(),
        }


@dataclass(frozen=True, slots=True)
class Election:
    """The election's state. Build it with :func:`election`; every step returns a new one."""

    members: tuple[str, ...]
    self_vote: bool
    phase: Phase
    current: Round
    closed: tuple[Round, ...] = ()
    leader: str | None = None
    appointed: bool = False

    def tied(self) -> tuple[str, ...]:
        """The tied candidates of the last closed round (empty if it was not tied)."""
        top = self.closed[-1].top() if self.closed else ()
        return top if len(top) > 1 else ()

    def to_json(self) -> JSON:
        return {
            "members": list(self.members),
            "self_vote": self.self_vote,
            "phase": self.phase,
            "rounds": [r.to_json() for r in self.closed],
            "tied": list(self.tied()),
            "leader": self.leader,
            "appointed": self.appointed,
        }


def election(members: Sequence[str], *, self_vote: bool = True) -> Election:
    """A new election among the seated members (after conflicts are settled)."""
    if not members or len(set(members)) != len(members):
        raise CommitteeError(
            "an election needs members, each once",
            code="invalid_members",
            detail={"members": list(members)},
        )
    return Election(tuple(members), self_vote, "voting", Round(1, tuple(members)))


def _allow(state: Election, step: str) -> None:
    if step not in STEPS[state.phase]:
        raise CommitteeError(
            f"{step} is not allowed while {state.phase}",
            code="wrong_phase",
            detail={"phase": state.phase, "allowed": sorted(STEPS[state.phase])},
        )


def vote(state: Election, voter: str, candidate: str, round: int) -> Election:
    """Record one member's vote in ``round``; the round closes when every member has voted."""
    if round < state.current.number or state.phase != "voting":
        raise CommitteeError(
            f"round {round} is closed",
            code="round_closed",
            detail={"round": round, "phase": state.phase, "current": state.current.number},
        )
    if round > state.current.number:
        raise CommitteeError(f"no round {round} yet", code="no_such_round", detail={})
    _check_vote(state, voter, candidate)
    votes = {**state.current.votes, voter: candidate}
    after = replace(state, current=replace(state.current, votes=votes))
    return _close(after) if len(votes) == len(state.members) else after


def _check_vote(state: Election, voter: str, candidate: str) -> None:
    current = state.current
    if voter not in state.members:
        raise CommitteeError(f"{voter} is not a member", code="not_a_member", detail={})
    if voter in current.votes:
        raise CommitteeError(
            f"{voter} has voted in round {current.number}", code="already_voted", detail={}
        )
    if candidate not in current.candidates:
        raise CommitteeError(
            f"{candidate} is not a candidate in round {current.number}",
            code="not_a_candidate",
            detail={"candidates": list(current.candidates)},
        )
    if voter == candidate and not state.self_vote:
        raise CommitteeError(
            "this lot forbids voting for oneself", code="self_vote_forbidden", detail={}
        )


def close_round(state: Election) -> Election:
    """Close the round before every member voted (the chair's step for an absentee)."""
    _allow(state, "close_round")
    if not state.current.votes:
        raise CommitteeError("nobody has voted yet", code="no_votes", detail={})
    return _close(state)


def _close(state: Election) -> Election:
    done = state.current
    top = done.top()
    closed = (*state.closed, done)
    if len(top) == 1:
        return replace(state, phase="elected", closed=closed, leader=top[0])
    phase: Phase = "tied" if len(closed) <= REVOTES else "appointing"
    return replace(state, phase=phase, closed=closed)


def revote(state: Election) -> Election:
    """Open a new round among the tied candidates."""
    _allow(state, "revote")
    tied = state.closed[-1].top()
    return replace(state, phase="voting", current=Round(state.current.number + 1, tied))


def appoint(state: Election, appointee: str) -> Election:
    """The chair appoints one of the candidates tied in the revote; recorded as appointed."""
    _allow(state, "appoint")
    tied = state.closed[-1].top()
    if appointee not in tied:
        raise CommitteeError(
            f"{appointee} was not tied in the revote",
            code="not_tied_candidate",
            detail={"tied": list(tied)},
        )
    return replace(state, phase="elected", leader=appointee, appointed=True)


# fault clocks (DOMAIN step 13) ---------------------------------------------------------------

BEFORE_START = timedelta(hours=2)
DURING = timedelta(hours=4)
FaultStatus = Literal["ok", "tenderee_decides", "must_seal_and_reform"]


@dataclass(frozen=True, slots=True)
class Suspension:
    """A fault: suspended at ``start``, resumed at ``end`` (None while still suspended)."""

    start: datetime
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class Clock:
    """One rule's clock. ``elapsed`` is the open fault's time if one is open, else the longest
    fault's; ``exceeded`` stays true once any fault went past the limit."""

    rule: Literal["before_start", "during_evaluation"]
    limit: timedelta
    elapsed: timedelta
    running: bool
    exceeded: bool

    @property
    def left(self) -> timedelta:
        return timedelta(0) if self.exceeded else max(self.limit - self.elapsed, timedelta(0))


@dataclass(frozen=True, slots=True)
class FaultReport:
    status: FaultStatus
    before_start: Clock
    during: Clock


def fault_clocks(
    scheduled_start: datetime, suspensions: Sequence[Suspension], now: datetime
) -> FaultReport:
    """The two fault clocks at ``now``.

    A fault that begins at or before the scheduled start is a fault before the start: its clock
    counts the delay it causes, from the scheduled start to its end (or ``now``); past 2 hours
    the tenderee decides. A fault that begins after the scheduled start is a fault during the
    evaluation: its clock runs from its start; past 4 hours everything is sealed and a new
    committee is formed. Fixed at exactly the limit is within it.
    """
    _check_times(scheduled_start, suspensions, now)
    before = [s for s in suspensions if s.start <= scheduled_start]
    during = [s for s in suspensions if s.start > scheduled_start]
    delays = [(s, max(_end(s, now) - scheduled_start, timedelta(0))) for s in before]
    durations = [(s, _end(s, now) - s.start) for s in during]
    first = _clock("before_start", BEFORE_START, delays)
    second = _clock("during_evaluation", DURING, durations)
    status: FaultStatus = (
        "must_seal_and_reform" if second.exceeded
        else "tenderee_decides" if first.exceeded
        else "ok"
    )  # fmt: skip
    return FaultReport(status, first, second)


def _end(suspension: Suspension, now: datetime) -> datetime:
    return now if suspension.end is None else suspension.end


def _clock(
    rule: Literal["before_start", "during_evaluation"],
    limit: timedelta,
    faults: Sequence[tuple[Suspension, timedelta]],
) -> Clock:
    open_ = [t for s, t in faults if s.end is None]
    longest = max((t for _, t in faults), default=timedelta(0))
    elapsed = open_[0] if open_ else longest
    return Clock(rule, limit, elapsed, bool(open_), longest > limit)


def _check_times(start: datetime, suspensions: Sequence[Suspension], now: datetime) -> None:
    times = [start, now, *(s.start for s in suspensions)]
    times += [s.end for s in suspensions if s.end is not None]
    if any(t.tzinfo is None or t.utcoffset() is None for t in times):
        raise CommitteeError("times need their time zone", code="naive_time", detail={})
    previous: datetime | None = None
    for n, s in enumerate(suspensions):
        problem = (
            "resumed before suspended" if s.end is not None and s.end < s.start
            else "overlaps the previous fault" if previous is not None and s.start < previous
            else "still open but not the last" if s.end is None and n != len(suspensions) - 1
            else "after now" if _end(s, now) > now or s.start > now
            else None
        )  # fmt: skip
        if problem is not None:
            raise CommitteeError(
                f"suspension {n + 1}: {problem}", code="invalid_intervals", detail={"index": n}
            )
        previous = s.end
