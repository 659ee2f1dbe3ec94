"""One secret a purpose (issue 15 §1): the session key no longer makes the opening rooms' keys,
the report's signing tokens or the built-in TSA's password (that one: test_timestamps). Each
follows its own secret and nothing else."""

from __future__ import annotations

import pytest

from bidroom import evaluations, openings
from bidroom.errors import ConfigError, EvaluationRefused
from bidroom.settings import SECRETS, Settings, load_settings
from ca import primitives as p

ROOM = "opening-ZJ-ZS-2026-0417-1"


def settings(**secrets: str) -> Settings:
    base = {name: f"{name}-" + "s" * 40 for name in SECRETS}
    return load_settings(**{**base, **secrets})


def room_point(config: Settings) -> bytes:
    return p.ec_point(openings.room_key(config, ROOM).public_key())


def test_the_rooms_keys_follow_the_room_secret_alone() -> None:
    first = room_point(settings())
    assert room_point(settings(secret_key="another-session-key-" + "k" * 40)) == first
    assert room_point(settings(report_secret="another-report-" + "k" * 40)) == first
    assert room_point(settings(room_secret="another-room-secret-" + "k" * 40)) != first


def test_the_reports_signing_tokens_follow_the_report_secret_alone() -> None:
    token = evaluations.make_token(settings(), {"room": ROOM, "expert": "uscc:x"})
    rotated_session = settings(secret_key="another-session-key-" + "k" * 40)
    assert evaluations.read_token(rotated_session, token) == {"room": ROOM, "expert": "uscc:x"}
    with pytest.raises(EvaluationRefused) as refused:
        evaluations.read_token(settings(report_secret="another-report-" + "k" * 40), token)
    assert refused.value.code == "token_invalid"


def test_one_value_is_never_two_purposes_secret() -> None:
    same = "one-secret-for-everything-" + "x" * 40
    with pytest.raises(ConfigError) as refused:
        settings(secret_key=same, room_secret=same)
    assert "BIDROOM_SECRET_KEY and BIDROOM_ROOM_SECRET hold the same value" in refused.value.message
    missing = load_settings(room_secret=None, report_secret=None, secret_key=None)
    assert missing.missing_secrets()[:3] == [
        "BIDROOM_SECRET_KEY",
        "BIDROOM_ROOM_SECRET",
        "BIDROOM_REPORT_SECRET",
    ]
