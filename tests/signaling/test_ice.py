"""ICE servers from settings; TURN credentials as coturn's REST API checks them."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from signaling import ice

NOW = 1_800_000_000


def test_none_by_default() -> None:
    assert ice.ice_servers([], [], None, "chair-1", NOW, 60) == []


def test_stun_and_turn_with_short_lived_credentials() -> None:
    servers = ice.ice_servers(
        ["stun:stun.island:3478"], ["turn:turn.island:3478?transport=udp"], "s3cret", "e1", NOW, 600
    )
    assert servers[0].to_json() == {"urls": ["stun:stun.island:3478"]}
    turn = servers[1].to_json()
    assert turn["username"] == f"{NOW + 600}:e1"
    # What coturn computes with static-auth-secret=s3cret:
    expected = hmac.new(b"s3cret", turn["username"].encode(), hashlib.sha1).digest()
    assert base64.b64decode(turn["credential"]) == expected


def test_a_known_vector() -> None:
    # echo -n "1800000060:chair-1" | openssl dgst -sha1 -hmac k -binary | base64
    assert ice.turn_credentials("k", "chair-1", NOW, 60) == (
        "1800000060:chair-1",
        "rmpgKKYzInAllrudzianpWbRg+Q=",
    )


def test_turn_without_its_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="secret"):
        ice.ice_servers([], ["turn:t"], None, "e1", NOW, 60)
