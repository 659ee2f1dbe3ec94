"""Every error bidroom raises, with a stable code a client or an operator can act on.

    BidroomError (code, message, detail)
    ├── ConfigError            settings missing or inconsistent (startup refuses, one line)
    ├── NotMigrated            the database schema is not at the latest migration
    ├── StoreError             the database failed or could not be reached
    │   └── SeqConflict        another writer appended to the room first (re-decide and retry)
    ├── ReportError            an evaluation report that cannot be rendered (no CJK font)
    ├── BrokerError            the broker (Redis) failed or could not be reached
    ├── AuthError              no token, forged or expired token          -> close 4001
    ├── ProtocolError          a frame the protocol does not allow        -> error frame
    │   └── FrameTooLarge      a frame over the size limit
    ├── RoomNotFound           no such room                               -> close 4004
    ├── RoomTampered           the room's stored events do not match their audit entries
    │                          (bidroom.integrity): not served            -> close 4011, 409
    ├── Refused                a command the room refused (wraps room.Rejected)
    └── (HTTP refusals of tenders, lots, bids and uploads; ``status`` is the HTTP status)
        ├── TenderError        a tender or lot spec that cannot be accepted      -> 422
        ├── NotFound           no such tender, lot, bid or upload (or not yours) -> 404
        ├── NotAllowed         the role or the holder may not do this            -> 403
        │   └── NotYourTender  a chair acting on another organisation's tender   -> 403
        ├── Conflict           the state forbids it (frozen, deadline, offset)   -> 409
        ├── TooLarge           over a size limit                                 -> 413
        ├── UploadRefused      a tus request the server does not take (412, 415, 400)
        └── WorkerUnavailable  the node's worker process died twice on one task  -> 503

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


class RoomTampered(BidroomError):
    """A room whose stored events do not match their audit entries: never served. ``detail``
    is bidroom.integrity.Mismatch's JSON (room, seq, index, problem, fields)."""

    code = "room_tampered"
    status = 409
    alarmed = False  # set once the hub has raised the alarm of this refusal


class Refused(BidroomError):
    code = "refused"


class HttpRefusal(BidroomError):
    """A refusal the HTTP edge answers with ``status`` and the JSON error body."""

    status = 400


class TenderError(HttpRefusal):
    code = "invalid_tender"
    status = 422


class NotFound(HttpRefusal):
    code = "not_found"
    status = 404


class NotAllowed(HttpRefusal):
    code = "not_allowed"
    status = 403


class NotYourTender(NotAllowed):
    """A chair acting on a tender (or its rooms) that is not their organisation's or theirs."""

    code = "not_your_tender"


class Conflict(HttpRefusal):
    code = "conflict"
    status = 409


class TooLarge(HttpRefusal):
    code = "upload_too_large"
    status = 413


class UploadRefused(HttpRefusal):
    code = "upload_refused"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int = 400,
        detail: Mapping[str, Any] | None = None,
    ):
        super().__init__(message, code=code, detail=detail)
        self.status = status


class OpeningRefused(HttpRefusal):
    """A step of the opening the shell refuses before the core sees it, with its status."""

    code = "opening_refused"

    def __init__(
        self, status: int, code: str, message: str, detail: Mapping[str, Any] | None = None
    ):
        super().__init__(message, code=code, detail=dict(detail or {}))
        self.status = status


class EvaluationRefused(HttpRefusal):
    """A step of the evaluation the shell refuses before the core sees it, with its status."""

    code = "evaluation_refused"

    def __init__(
        self, status: int, code: str, message: str, detail: Mapping[str, Any] | None = None
    ):
        super().__init__(message, code=code, detail=dict(detail or {}))
        self.status = status


class ScoringError(BidroomError):
    """A scoring computation that cannot be made as asked (bidroom.scoring)."""

    code = "scoring_invalid"


class CommitteeError(BidroomError):
    """An evaluation committee that cannot be drawn or formed as asked (bidroom.committee)."""

    code = "committee_invalid"


class PrecheckError(BidroomError):
    """Pre-check (清标) input that cannot be checked as given (bidroom.precheck)."""

    code = "precheck_invalid"


class ReportError(BidroomError):
    """An evaluation report that cannot be rendered (bidroom.report), e.g. no Chinese font."""

    code = "report_invalid"


class WorkerUnavailable(HttpRefusal):
    """The node's worker process (bidroom.worker) died under a task, and again on a new one."""

    code = "worker_unavailable"
    status = 503
