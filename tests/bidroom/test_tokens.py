"""Session tokens: signed, expiring, holding subject and roles; time is a parameter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bidroom import tokens
from bidroom.errors import AuthError

KEY = "k" * 40
NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
ALICE = tokens.Identity("alice", "李海", ("bidder",), None, "六横海洁")


def test_a_token_round_trips() -> None:
    token = tokens.mint(ALICE, KEY, NOW, timedelta(hours=1))
    assert tokens.verify(token, KEY, NOW + timedelta(minutes=59)) == ALICE


def test_an_expired_token_is_refused() -> None:
    token = tokens.mint(ALICE, KEY, NOW, timedelta(hours=1))
    with pytest.raises(AuthError) as caught:
        tokens.verify(token, KEY, NOW + timedelta(hours=1))
    assert caught.value.code == "token_expired"


@pytest.mark.parametrize("forge", ["other key", "tampered payload", "garbage"])
def test_a_forged_token_is_refused(forge: str) -> None:
    token = tokens.mint(ALICE, KEY, NOW, timedelta(hours=1))
    if forge == "other key":
        token = tokens.mint(ALICE, "z" * 40, NOW, timedelta(hours=1))
    elif forge == "tampered payload":
        head, body, sig = token.split(".")
        token = ".".join([head, body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1], sig])
    else:
        token = "not.a.token"
    with pytest.raises(AuthError) as caught:
        tokens.verify(token, KEY, NOW)
    assert caught.value.code == "token_invalid"


def test_unknown_roles_are_never_minted() -> None:
    with pytest.raises(AuthError):
        tokens.mint(tokens.Identity("x", "x", ("root",)), KEY, NOW, timedelta(hours=1))


def test_the_role_in_a_room_is_one_the_token_holds() -> None:
    both = tokens.Identity("s", "s", ("supervisor", "custodian"))
    assert tokens.role_for(both, None, ["chair", "custodian"]) == "custodian"
    assert tokens.role_for(both, "supervisor", []) == "supervisor"
    assert tokens.role_for(both, "chair", ["chair"]) is None
