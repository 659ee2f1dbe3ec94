"""Who may signal whom: only participants whom the room lets see and hear each other.

Rules of this file:
- The table is data: :data:`PAIRS` holds, per room kind, the unordered pairs of roles that may
  exchange offers, answers and candidates. A pair absent from it is refused, in both directions.
- :data:`NEVER` is subtracted from every kind: a bidder never reaches an expert (评标专家与投标人
  不得接触), whatever a room's configuration says.
- :data:`SEATED`: in an evaluation only an expert who holds a seat (a committee member) signals;
  an expert outside the committee (drawn but not signed in, or left after a conflict) does not.
  Whether an actor is seated is the room's to say: the caller passes it.
- :data:`RECEIVE_ONLY`: a server-side media participant (the recorder) may be offered media by
  anyone it pairs with and answers; it never makes an offer of its own.
- Pure: no I/O, nothing of bidroom imported. bidroom.media asks the room for roles and seats.

    opening     chair <-> bidder, custodian, supervisor   (a star: bidders never see each other)
    evaluation  chair, expert (seated), supervisor <-> each other; recorder <- all of them
    meeting     chair <-> everyone, supervisor <-> supervisor   (as presence: only the chair's
                presence is everyone's to see, so nobody else learns who else is there)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import combinations_with_replacement

Pair = frozenset[str]

RECORDER = "recorder"
EVERYONE = frozenset({"chair", "bidder", "expert", "supervisor", "custodian", "public"})
WATCHERS = frozenset({"chair", "supervisor"})
"""Roles that see every participant's presence: told ``no_such_peer`` for anyone absent."""


def star(centre: str, others: Iterable[str]) -> frozenset[Pair]:
    """``centre`` with each of ``others``, and the others not with each other."""
    return frozenset(frozenset({centre, other}) for other in others)


def clique(roles: Iterable[str]) -> frozenset[Pair]:
    """Every pair of ``roles``, a role with itself included (expert <-> expert)."""
    return frozenset(frozenset(pair) for pair in combinations_with_replacement(sorted(roles), 2))


NEVER: frozenset[Pair] = frozenset({frozenset({"bidder", "expert"})})
COMMITTEE = frozenset({"chair", "expert", "supervisor"})

PAIRS: Mapping[str, frozenset[Pair]] = {
    "opening": star("chair", ("bidder", "custodian", "supervisor")),
    "evaluation": clique(COMMITTEE) | star(RECORDER, COMMITTEE),
    "meeting": star("chair", EVERYONE) | clique(WATCHERS - {"chair"}),
}
SEATED: Mapping[str, frozenset[str]] = {"evaluation": frozenset({"expert"})}
RECEIVE_ONLY = frozenset({RECORDER})
RESERVED_SUBJECTS = frozenset({RECORDER})
"""The server's recorder joins under the name of its role: no one else may hold that name."""


def allowed(kind: str, one: str, other: str) -> bool:
    """Whether the pair of roles may signal each other in a room of ``kind`` (either way)."""
    pair = frozenset({one, other})
    return pair in PAIRS.get(kind, frozenset()) and pair not in NEVER


def may_signal(
    kind: str,
    sender_role: str,
    target_role: str,
    *,
    signal: str = "offer",
    sender_seated: bool = True,
    target_seated: bool = True,
) -> bool:
    """Whether a participant in ``sender_role`` may send ``signal`` to one in ``target_role``.

    ``*_seated`` say whether each holds a seat; it matters only for the :data:`SEATED` roles."""
    must_sit = SEATED.get(kind, frozenset())
    if (sender_role in must_sit and not sender_seated) or (
        target_role in must_sit and not target_seated
    ):
        return False
    if signal == "offer" and sender_role in RECEIVE_ONLY:
        return False
    return allowed(kind, sender_role, target_role)


def peers(kind: str, role: str, *, seated: bool = True) -> list[str]:
    """The roles a participant in ``role`` may signal in a room of ``kind`` (sorted)."""
    if role in SEATED.get(kind, frozenset()) and not seated:
        return []
    roles = {r for pair in PAIRS.get(kind, frozenset()) for r in pair} | {role}
    return sorted(r for r in roles if allowed(kind, role, r))
