"""Who may chair a tender, its opening and its evaluation: the tender's owners (pure).

A tender belongs to the organisation of the chair who created it (the ``O`` of their
certificate, carried in the session token) and to the chairs assigned to it by name (their
registry subjects). Only its owners act as chair on it: edit and publish the draft, chair the
opening, open and chair evaluation sessions, read what a chair reads there. Another chair of
the platform (another trading centre, another agency) is refused with ``not_your_tender``.

The rule travels with the rooms: publication copies the tender's owners into the opening room's
config (``"owner"``), and an evaluation session copies them from its opening, so the hub checks
a chair against the room it acts in without looking the tender up. The owners are therefore
frozen at publication, with the rest of the tender. A room without ``"owner"`` (a meeting) has
no such rule. docs/opening.md ("Who chairs a tender") is the specification.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from bidroom.errors import NotYourTender, TenderError
from ca.organisations import organisation_keys

MAX_CHAIRS = 20
SUBJECT = re.compile(r"^[A-Za-z0-9:_.@-]{1,200}$")
OWNED_KINDS = frozenset({"opening", "evaluation"})
FOREIGN = "this tender belongs to another organisation: only its own chairs act on it"


def owner(organisation: str | None, chairs: Sequence[str]) -> dict[str, Any]:
    """The ``"owner"`` value a room's config carries."""
    return {"organisation": organisation or None, "chairs": sorted(set(chairs))}


def may_chair(owned: Mapping[str, Any] | None, subject: str, organisation: str | None) -> bool:
    """Whether the chair ``subject`` of ``organisation`` is one of ``owned``'s owners.

    ``owned`` is a tender's or a room config's ``"owner"`` value; ``None`` means no owner rule
    (a meeting). Organisations compare as the custody policy compares them
    (bidroom.organisations: full-width brackets as ASCII, no white space, case-folded), and
    only when known (not null, not empty): two chairs without one are not colleagues."""
    if owned is None:
        return True
    if subject in (owned.get("chairs") or ()):
        return True
    theirs = organisation_keys(owned.get("organisation"), None)
    return bool(theirs & organisation_keys(organisation, None))


def check(owned: Mapping[str, Any] | None, subject: str, organisation: str | None) -> None:
    if not may_chair(owned, subject, organisation):
        raise NotYourTender(FOREIGN, detail={"organisation": (owned or {}).get("organisation")})


def room_owner(kind: str, config: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """A room's owner rule. An opening or evaluation room always has one: a room of those kinds
    whose config lacks it (made before owners existed, or written into the database by hand) is
    chaired by nobody, rather than by everybody."""
    found = config.get("owner")
    if isinstance(found, Mapping):
        return found
    return owner(None, ()) if kind in OWNED_KINDS else None


def refusal(
    kind: str, config: Mapping[str, Any], subject: str, organisation: str | None
) -> str | None:
    """Why the chair may not chair this room (a message), or None if they may."""
    return None if may_chair(room_owner(kind, config), subject, organisation) else FOREIGN


def check_room(
    kind: str, config: Mapping[str, Any], subject: str, organisation: str | None
) -> None:
    """``not_your_tender`` unless the chair may chair this room."""
    check(room_owner(kind, config), subject, organisation)


def parse_chairs(value: Any) -> list[str]:
    """The assigned chairs of a tender as a request gives them: registry subjects, bounded."""
    if not isinstance(value, list) or len(value) > MAX_CHAIRS:
        raise TenderError(
            f"chairs is a list of at most {MAX_CHAIRS} subjects", code="invalid_chairs"
        )
    if not all(isinstance(s, str) and SUBJECT.fullmatch(s) for s in value):
        raise TenderError("a chair is named by their registry subject", code="invalid_chairs")
    return sorted(set(value))
