"""The protocol's sans-I/O half: every malformed frame gets its documented code."""

from __future__ import annotations

import json

import pytest

from bidroom import meeting, protocol
from bidroom.errors import FrameTooLarge, ProtocolError
from bidroom.protocol import CommandFrame, Hello, Ping, Pong

LIMIT = 1024


def parse(frame: object) -> object:
    return protocol.parse(frame if isinstance(frame, str) else json.dumps(frame), LIMIT)


def code_of(frame: object) -> str:
    with pytest.raises(ProtocolError) as caught:
        parse(frame)
    return caught.value.code


def test_a_hello_resumes_from_a_seq() -> None:
    assert parse({"type": "hello", "token": "t", "room": "r", "since": 7}) == Hello("t", "r", 7)
    assert parse({"type": "hello", "token": "t", "room": "r"}) == Hello("t", "r", 0)
    assert parse({"type": "hello", "token": "t", "room": "r", "role": "chair"}).role == "chair"


def test_commands_pings_and_pongs_parse() -> None:
    frame = parse({"type": "command", "id": "c1", "name": "meeting.open"})
    assert frame == CommandFrame("c1", "meeting.open", {})
    assert parse({"type": "ping"}) == Ping()
    assert parse({"type": "pong"}) == Pong()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_json"),
        ({"type": "teleport"}, "unknown_type"),
        ({"no": "type"}, "unknown_type"),
        ({"type": "hello", "room": "r"}, "token_missing"),
        ({"type": "hello", "room": "r", "token": ""}, "token_missing"),
        ({"type": "hello", "room": "r", "token": 7}, "bad_message"),
        ({"type": "hello", "token": "t", "room": "r", "since": -1}, "bad_message"),
        ({"type": "hello", "token": "t", "room": "r", "since": True}, "bad_message"),
        ({"type": "hello", "token": "t", "room": "x" * 101}, "bad_message"),
        ({"type": "command", "name": "meeting.open"}, "bad_message"),
        ({"type": "command", "id": "1", "name": "meeting.open", "args": [1]}, "bad_message"),
        ("x" * (LIMIT + 1), "frame_too_large"),
    ],
)
def test_malformed_frames_get_their_code(frame: object, code: str) -> None:
    assert code_of(frame) == code
    assert code in protocol.ERROR_CODES


def test_the_size_limit_counts_bytes_not_characters() -> None:
    with pytest.raises(FrameTooLarge):
        parse(json.dumps({"type": "ping", "pad": "开" * 400}, ensure_ascii=False))


def test_arguments_are_checked_against_the_room_type() -> None:
    def command(name: str, **args: object) -> object:
        return protocol.command_from(CommandFrame("1", name, args), meeting.ARGUMENTS)

    assert command("meeting.announce", text="  开始  ").args == {"text": "开始"}
    with pytest.raises(ProtocolError) as unknown:
        command("presence.join", connection="x", node="y")
    assert unknown.value.code == "unknown_command"
    with pytest.raises(ProtocolError) as invalid:
        command("meeting.announce", text="")
    assert invalid.value.code == "invalid_args"
    assert invalid.value.detail["errors"][0]["field"] == "text"
    with pytest.raises(ProtocolError) as extra:
        command("meeting.open", sneaky=1)
    assert extra.value.code == "invalid_args"


def test_close_codes_say_whether_to_reconnect() -> None:
    assert protocol.Close.TOO_SLOW in protocol.RECONNECT
    assert protocol.Close.GOING_AWAY in protocol.RECONNECT
    assert protocol.Close.UNAUTHORIZED not in protocol.RECONNECT
    assert protocol.Close.REMOVED not in protocol.RECONNECT
