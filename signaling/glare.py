"""Glare: both peers send an offer at once. The documented rule ("perfect negotiation", W3C
WebRTC 1.0 §10.7), shared by the pages and by server-side peers.

- Each pair of participants has one peer connection, named by a ``session`` the offerer chose.
  Renegotiation (a camera turned on later) is a new offer in the same session.
- The *polite* peer is the one whose participant key (its subject) sorts lower. The other is
  impolite.
- A collision is an offer that arrives while this peer has an offer of its own outstanding
  (its signaling state is not ``stable``), or while it is making one.
- On a collision the impolite peer ignores the incoming offer (its own stands, and the other
  side will answer it); the polite peer rolls its own offer back and answers the incoming one,
  adopting the incoming offer's session. Its own offer is not lost: it renegotiates after.
- An offer in a *new* session from a peer that already has one supersedes it: the peer
  reconnected, so the old peer connection is closed and a new one answers.

Pure: nothing here touches a peer connection. :func:`on_offer` says what to do.
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    ANSWER = "answer"  # no collision: set the remote offer and answer it
    ROLLBACK_AND_ANSWER = "rollback_and_answer"  # polite on a collision: drop ours, answer theirs
    IGNORE = "ignore"  # impolite on a collision: ours stands, theirs is dropped
    REPLACE = "replace"  # a new session from this peer: close the old connection, answer anew


def polite(me: str, peer: str) -> bool:
    """Whether ``me`` yields on a collision: the lower participant key is polite."""
    if me == peer:
        raise ValueError("a participant does not negotiate with itself")
    return me < peer


def on_offer(me: str, peer: str, *, offering: bool, current: str | None, incoming: str) -> Action:
    """What ``me`` does with an offer from ``peer`` in session ``incoming``.

    ``offering``: ``me`` has an offer of its own outstanding or in the making for this peer.
    ``current``: the session ``me`` holds with this peer now, if any (``me``'s own offer's
    session counts)."""
    if current is not None and current != incoming and not offering:
        return Action.REPLACE
    if not offering:
        return Action.ANSWER
    return Action.ROLLBACK_AND_ANSWER if polite(me, peer) else Action.IGNORE
