"""Session tokens: signed, expiring, holding subject and roles; time is a parameter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
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


def test_a_bound_token_carries_its_certificate_and_a_malformed_one_is_refused() -> None:
    unbound = tokens.Identity("alice", "李海", ("bidder",), None, None)
    certificate = tokens.Bound("ab" * 32, "cd" * 32, "1f")
    alice = tokens.Identity("alice", "李海", ("bidder",), None, "六横海洁", certificate)
    token = tokens.mint(alice, KEY, NOW, timedelta(hours=1))
    assert tokens.verify(token, KEY, NOW) == alice
    assert tokens.verify(tokens.mint(unbound, KEY, NOW, timedelta(hours=1)), KEY, NOW) == unbound
    claims = jwt.decode(token, KEY, algorithms=["HS256"], options={"verify_signature": False})
    for cert in ({**claims["cert"], "serial": "XYZ"}, {"sha256": "ab"}, "ab" * 32):
        forged = jwt.encode({**claims, "cert": cert}, KEY, algorithm="HS256")
        with pytest.raises(AuthError) as caught:
            tokens.verify(forged, KEY, NOW)
        assert caught.value.code == "token_invalid"


def test_a_token_issued_in_the_future_is_refused_beyond_the_clock_skew() -> None:
    ahead = tokens.mint(ALICE, KEY, NOW + tokens.CLOCK_SKEW + timedelta(seconds=1), timedelta(1))
    with pytest.raises(AuthError) as caught:
        tokens.verify(ahead, KEY, NOW)
    assert caught.value.code == "token_not_yet_valid"
    within = tokens.mint(ALICE, KEY, NOW + tokens.CLOCK_SKEW, timedelta(hours=1))
    assert tokens.verify(within, KEY, NOW) == ALICE
