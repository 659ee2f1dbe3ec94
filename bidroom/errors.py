"""Every error bidroom raises, with a stable code a client or an operator can act on.

    BidroomError (code, message, detail)
    ├── ConfigError            settings missing or inconsistent (startup refuses, one line)
    ├── NotMigrated            the database schema is not at the latest migration
    ├── StoreError             the database failed or could not be reached
    │   └── SeqConflict        another writer appended to the room first (re-decide and retry)
    ├── BrokerError            the broker (Redis) failed or could not be reached
    ├── AuthError              no token, forged or expired token          -> close 4001
    ├── ProtocolError          a frame the protocol does not allow        -> error frame
    │   └── FrameTooLarge      a frame over the size limit
    ├── RoomNotFound           no such room                               -> close 4004
    └── Refused                a command the room refused (wraps room.Rejected)

The codes are the ones in docs/protocol.md; third-party exceptions are translated where they are
caught (``raise StoreError(...) from exc``) so callers never depend on a driver's exceptions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class BidroomError(Exception):
    code = "internal"

    def __init__(
        self, message: str, *, code: str | None = None, detail: Mapping[str, Any] | None = None
    ):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.detail: Mapping[str, Any] = dict(detail or {})

    def __str__(self) -> str:
        return self.message


class ConfigError(BidroomError):
    code = "config"


class NotMigrated(BidroomError):
    code = "not_migrated"


class StoreError(BidroomError):
    code = "store_unavailable"


class SeqConflict(StoreError):
    code = "seq_conflict"


class BrokerError(BidroomError):
    code = "broker_unavailable"


class AuthError(BidroomError):
    code = "unauthorized"


class ProtocolError(BidroomError):
    code = "bad_message"


class FrameTooLarge(ProtocolError):
    code = "frame_too_large"


class RoomNotFound(BidroomError):
    code = "room_not_found"


class Refused(BidroomError):
    code = "refused"
