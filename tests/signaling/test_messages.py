"""The signal frames at the edge: what passes, and the code of what does not."""

from __future__ import annotations

from typing import Any

import pytest

from signaling import messages
from signaling.errors import (
    CODES,
    CandidateInvalid,
    SdpInvalid,
    SdpTooLarge,
    SignalingError,
    SignalInvalid,
)

SDP = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n"
)


def signal(**fields: Any) -> dict[str, Any]:
    return {"to": "chair-1", "session": "s-1", **fields}


def test_each_kind_parses_to_its_model() -> None:
    offer = messages.parse_signal(signal(kind="offer", sdp=SDP))
    assert isinstance(offer, messages.Offer) and offer.sdp == SDP
    answer = messages.parse_signal(signal(kind="answer", sdp=SDP, connection="n/1"))
    assert isinstance(answer, messages.Answer) and answer.connection == "n/1"
    line = "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host"
    candidate = messages.parse_signal(
        signal(kind="candidate", candidate=line, sdpMid="0", sdpMLineIndex=0)
    )
    assert isinstance(candidate, messages.Candidate) and candidate.sdpMLineIndex == 0
    end = messages.parse_signal(signal(kind="candidate", candidate=""))
    assert isinstance(end, messages.Candidate)
    assert isinstance(messages.parse_signal(signal(kind="bye")), messages.Bye)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        (signal(kind="wave"), SignalInvalid),
        ({"kind": "offer", "sdp": SDP, "session": "s"}, SignalInvalid),  # no addressee
        (signal(kind="offer"), SignalInvalid),  # no sdp
        (signal(kind="bye", extra=1), SignalInvalid),
        (signal(kind="bye", session="has space"), SignalInvalid),
        (signal(kind="offer", sdp="hello"), SdpInvalid),
        (signal(kind="offer", sdp="v=0\r\ns=-\r\n"), SdpInvalid),  # no medium
        (signal(kind="answer", sdp=SDP + "a=x:\x00\x01\r\n"), SdpInvalid),
        (signal(kind="offer", sdp=SDP + "a=x:" + "y" * 2000 + "\r\n"), SdpTooLarge),
        (signal(kind="candidate", candidate="typ host"), CandidateInvalid),
        (signal(kind="candidate", candidate="candidate:" + "1" * 2000), CandidateInvalid),
        (signal(kind="candidate", candidate="candidate:1\r\nm=audio"), CandidateInvalid),
    ],
)
def test_a_bad_signal_is_refused_with_a_stable_code(
    fields: dict[str, Any], error: type[SignalingError]
) -> None:
    with pytest.raises(error) as raised:
        messages.parse_signal(fields, messages.Limits(sdp=1024))
    assert type(raised.value) is error and raised.value.code in CODES


def test_the_addressee_gets_the_signal_with_its_sender() -> None:
    offer = messages.parse_signal(signal(kind="offer", sdp=SDP, connection="n/2"))
    frame = messages.forward_json(offer, {"subject": "bidder-1", "role": "bidder"}, "n/9")
    assert frame == {
        "type": "signal",
        "kind": "offer",
        "session": "s-1",
        "sdp": SDP,
        "from": {"subject": "bidder-1", "role": "bidder", "connection": "n/9"},
    }
