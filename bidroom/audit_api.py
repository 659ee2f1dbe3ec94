"""The audit log over HTTP, and the log's key and name from the settings. Thin: read, answer.

GET /api/audit/checkpoint                       the latest signed checkpoint (public)
GET /api/audit/proof/inclusion?index=I&size=N   an audit path (public)
GET /api/audit/proof/consistency?from=M&to=N    a consistency proof (public)
GET /api/audit/entries?start=S&end=E            entries S..E-1, at most PAGE (supervisor)
GET /api/audit/mine?start=S                     the caller's own entries from S on, at most PAGE
GET /api/audit/receipt?index=I | ?room=R&seq=S  one entry's receipt (its actor, supervisor)
GET /.well-known/bidroom-audit.json             the log's keys, rotations and TSA roots (public)
GET /.well-known/bidroom-tsa-roots.pem          the TSA roots, PEM (public)

What is public holds hashes only: each leaf commits to its entry with the entry's salt, so a
leaf reveals nothing guessable. An entry (with its salt) goes only to whom docs/audit.md "Who
sees what" names.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bidroom import api, audit, audit_key, receipts
from bidroom.api import error
from bidroom.audit_log import AuditLog, Signed
from bidroom.errors import AuthError
from bidroom.settings import Settings
from ca import checkpoint, tsa
from ca import primitives as p
from ca.errors import AuditError

PAGE = 1000


def log_origin(settings: Settings) -> str:
    """The checkpoint origin: BIDROOM_AUDIT_ORIGIN, else the public URL's host and /audit, else
    "bidroom.local/audit" — never the listening port, which the CLI and a node do not share."""
    if settings.audit_origin:
        return settings.audit_origin
    if settings.public_url:
        return settings.public_url.split("://", 1)[-1].rstrip("/") + "/audit"
    return "bidroom.local/audit"


def open_log(
    engine: AsyncEngine,
    settings: Settings,
    stamper: tsa.Timestamper | None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    create: bool = True,
) -> AuditLog:
    """The platform's audit log, as every process opens it: the configured origin and key,
    each checkpoint time-stamped by ``stamper``."""

    async def token(note: bytes) -> bytes:
        assert stamper is not None
        return bytes((await stamper.stamp(note)).token)

    return AuditLog(
        engine,
        log_origin(settings),
        audit_key.load(settings, create),
        clock,
        timestamper=None if stamper is None else token,
        witness=witness_path(settings),
    )


def witness_path(settings: Settings) -> Path:
    return settings.audit_witness or settings.var_dir / "audit" / "witness.note"


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def checkpoint_json(signed: Signed, signer: checkpoint.VerifierKey) -> dict[str, Any]:
    """A checkpoint as served: labelled with the key that signed it (after a rotation, until
    the next checkpoint, the old one), never merely the node's own."""
    return {
        "origin": signer.name,
        "size": signed.size,
        "root": _b64(signed.root),
        "note": signed.note,
        "timestamp": _b64(signed.timestamp),
        "at": signed.at.isoformat(),
        "verifier_key": str(signer),
    }


def _ints(request: Request, *names: str) -> list[int] | None:
    """Whole numbers from the query, each 0 <= n < 2**63 as the database keeps them; None if
    one is missing or is not one (a longer number would overflow the driver: a 500)."""
    values = []
    for name in names:
        value = api.sequence(request.query_params.get(name, ""))
        if value is None:
            return None
        values.append(value)
    return values


async def latest(request: Request) -> Response:
    log: AuditLog = request.app.state.audit
    signed = await log.latest()
    if signed is None:
        return error(404, "audit_empty", "no checkpoint has been signed yet")
    signer = await log.signer_of(signed)
    if signer is None:
        return error(
            409,
            "audit_key_continuity",
            "the latest checkpoint is signed by none of this log's keys: this node's key is not "
            "the one the log goes on under",
            {"verifier_key": str(log.verifier)},
        )
    return JSONResponse(checkpoint_json(signed, signer))


def tsa_roots(request: Request) -> list[x509.Certificate]:
    """The roots the platform's timestamps chain to: the built-in TSA's root, or the external
    TSAs' (BIDROOM_TSA_ROOTS); empty if it trusts its whole trust store for them."""
    trust = getattr(request.app.state.timestamper, "trust", None)
    return list(trust) if isinstance(trust, list) else []


async def published(request: Request) -> Response:
    """What a checker needs, from the platform: the log's verifier keys (current, and every
    rotation signed by old and new), and the TSA's roots. Public."""
    log: AuditLog = request.app.state.audit
    return JSONResponse(await published_json(log, tsa_roots(request)))


async def published_json(log: AuditLog, roots: list[x509.Certificate]) -> dict[str, Any]:
    rotations = await log.rotations()
    return {
        "format": "bidroom-audit-keys",
        "version": 1,
        "origin": log.origin,
        "verifier_key": str(log.verifier),
        "rotations": [
            {"old": str(r.old), "new": str(r.new), "size": r.size, "note": r.note}
            for r in rotations
        ],
        "tsa_roots": [p.certificate_pem(c).decode() for c in roots],
    }


async def published_roots(request: Request) -> Response:
    roots = tsa_roots(request)
    if not roots:
        return error(404, "tsa_roots_unpublished", "set BIDROOM_TSA_ROOTS to publish them")
    return Response(
        b"".join(p.certificate_pem(c) for c in roots), media_type="application/x-pem-file"
    )


AUDITORS = frozenset({"supervisor"})


def _watcher(request: Request) -> Response | None:
    """Entries name who did what: before an opening, who bids is secret (招标投标法实施条例).
    Checkpoints and proofs, which hold only hashes (salted leaves), are public; the log's
    entries, with their salts, are for supervisors (who watch every tender), and a receipt for
    the actor it names. A chair is not one: the log spans every organisation's tenders, and a
    chair sees their own tenders' rooms through the rooms (docs/opening.md "Who chairs a
    tender")."""
    try:
        identity = api.identity(request)
    except AuthError as exc:
        return error(401, exc.code, exc.message)
    if AUDITORS.isdisjoint(identity.roles):
        return error(403, "not_allowed", "the audit log's entries are for supervisors")
    return None


async def entries(request: Request) -> Response:
    refused = _watcher(request)
    if refused is not None:
        return refused
    bounds = _ints(request, "start", "end")
    if bounds is None or not bounds[0] < bounds[1] <= bounds[0] + PAGE:
        return error(422, "invalid_args", f"give start < end, at most {PAGE} apart")
    found = await request.app.state.audit.entries(*bounds)
    return JSONResponse(
        [{"index": i, "entry": e.decode(), "leaf": leaf.hex()} for i, e, leaf in found],
        headers={"cache-control": "no-store"},
    )


async def mine(request: Request) -> Response:
    """The caller's own integrated entries (the ones whose actor they are), with their salts,
    from index ``start`` (default 0) on, at most PAGE: a subject checks what the log says of it."""
    try:
        identity = api.identity(request)
    except AuthError as exc:
        return error(401, exc.code, exc.message)
    start = _ints(request, "start") if "start" in request.query_params else [0]
    if start is None:
        return error(422, "invalid_args", "give start, a whole number")
    found = await request.app.state.audit.entries_of(identity.subject, start[0], PAGE)
    return JSONResponse(
        [{"index": i, "entry": e.decode(), "leaf": leaf.hex()} for i, e, leaf in found],
        headers={"cache-control": "no-store"},
    )


async def inclusion(request: Request) -> Response:
    values = _ints(request, "index", "size")
    if values is None:
        return error(422, "invalid_args", "give index and size")
    return await _proof(request.app.state.audit.inclusion(*values))


async def consistency(request: Request) -> Response:
    values = _ints(request, "from", "to")
    if values is None:
        return error(422, "invalid_args", "give from and to")
    return await _proof(request.app.state.audit.consistency(*values))


async def _proof(work: Any) -> Response:
    try:
        proof = await work
    except AuditError as exc:
        return error(422, exc.code, exc.message, dict(exc.detail))
    return JSONResponse({"proof": [_b64(h) for h in proof]})


async def receipt(request: Request) -> Response:
    """The receipt of one entry, with its salt, for the actor it names (or supervisors); by
    its index, or by the room event it records (``room`` and ``seq``)."""
    try:
        identity = api.identity(request)
    except AuthError as exc:
        return error(401, exc.code, exc.message)
    log: AuditLog = request.app.state.audit
    mine = None if not AUDITORS.isdisjoint(identity.roles) else identity.subject
    try:
        index = await _receipt_index(request, log, mine)
        if index is None:
            return error(422, "invalid_args", "give index, or room and seq")
        made = await receipts.make(log, index)
    except AuditError as exc:
        return error(
            404 if exc.code == "audit_not_yet" else 422, exc.code, exc.message, dict(exc.detail)
        )
    try:
        actor = audit.decode(made["entry"].encode()).actor
    except ValueError:  # an entry the log holds that its own rules refuse: altered at rest
        return error(409, "audit_entry_malformed", "the log's entry is malformed", {"index": index})
    if actor != identity.subject and AUDITORS.isdisjoint(identity.roles):
        return error(403, "not_allowed", "a receipt is for the one its entry names")
    return JSONResponse(made, headers={"cache-control": "no-store"})


async def _receipt_index(request: Request, log: AuditLog, mine: str | None) -> int | None:
    """The index a receipt request names; None if it names none. By room and seq for someone
    other than a supervisor (``mine``), only an entry of theirs is found: another's is answered
    `404 audit_not_yet` as a missing one is, so no one counts a room's events (its sign-ins)."""
    if "index" in request.query_params:
        values = _ints(request, "index")
        return None if values is None else values[0]
    room, seq = request.query_params.get("room"), _ints(request, "seq")
    if not room or seq is None:
        return None
    return await log.index_of_event(room, seq[0], mine)
