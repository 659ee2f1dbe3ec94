"""Every error the signaling package raises, each with a stable code (docs/protocol.md,
"Media signaling").

    SignalingError (code, message, detail)
    ├── SignalInvalid        a signal frame whose fields are missing or of the wrong type
    │   ├── SdpTooLarge      an SDP over the size limit (BIDROOM_MAX_SDP_BYTES)
    │   ├── SdpInvalid       an SDP that is not a session description (no "v=0", no "m=" line,
    │   │                    control characters)
    │   └── CandidateInvalid an ICE candidate that is too long or not a candidate line
    ├── NoSuchPeer           the addressee is not in the room now (and the sender may know it)
    ├── SignalNotAllowed     the room does not let these two see and hear each other
    └── MediaError           the server's media participant could not answer the offer (codecs,
        │                    SDP, ICE set-up, too many sessions)
        └── NoSuchFeed       a viewer asked for a publisher the server does not receive

The package imports nothing of bidroom: the WebSocket shell catches these and answers an
``error`` frame with the same code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class SignalingError(Exception):
    code = "signal_invalid"

    def __init__(self, message: str, *, detail: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.detail: Mapping[str, Any] = dict(detail or {})

    def __str__(self) -> str:
        return self.message


class SignalInvalid(SignalingError):
    code = "signal_invalid"


class SdpTooLarge(SignalInvalid):
    code = "sdp_too_large"


class SdpInvalid(SignalInvalid):
    code = "sdp_invalid"


class CandidateInvalid(SignalInvalid):
    code = "candidate_invalid"


class NoSuchPeer(SignalingError):
    code = "no_such_peer"


class SignalNotAllowed(SignalingError):
    code = "signal_not_allowed"


class MediaError(SignalingError):
    code = "media_failed"


class NoSuchFeed(MediaError):
    code = "no_such_feed"


CODES: Mapping[str, str] = {
    "signal_invalid": "the signal's fields are missing or of the wrong type",
    "sdp_too_large": "the SDP is larger than the server's limit",
    "sdp_invalid": "the SDP is not a session description",
    "candidate_invalid": "the ICE candidate is not a candidate line or is too long",
    "no_such_peer": "the addressee is not in the room now",
    "signal_not_allowed": "the room does not let these participants see and hear each other",
    "no_such_feed": "the server receives no media from the participant asked for",
    "media_failed": "the server's media participant could not answer the offer",
}
