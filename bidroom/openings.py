"""The opening's shell: what the pure core (bidroom.opening) cannot do by itself.

The core decides; this module does the I/O around the consequential steps, each checked before
the core sees it (docs/opening.md):

- ``POST /api/openings/{room}/decrypt``: a bidder hands over their bid's data key, sealed to the
  room and signed. The signature, the signer, the sealed key and the key itself (it must open
  the envelope's first chunk) are checked here; only then is ``opening.decrypted`` sent.
- ``POST /api/openings/{room}/share``: a custodian submits their share of the lot's opening key,
  signed. It is checked against its published commitment and kept in the room's log sealed to
  the room key; once k are in, the key is combined in memory and the requested bids are opened
  (``opening.quorum_opened``, one per bid, each naming the shares used). The key must open
  each bid whole; when the bid's own opening-key entry does not hold a key that does, the bid is
  the bidder's fault (``opening.quorum_refused``, cause ``bidder_entry_mismatch``: revoked).
- ``POST /api/openings/{room}/sheet``: the chair asks for the sheet; every opened bid is
  decrypted (in threads, streamed to a temporary file), its bid form read, and the rows sent
  with ``opening.publish_sheet``. Nobody, chair included, sees a price before this.
- ``POST /api/openings/{room}/confirm`` and ``/countersign``: the record's signatures.
- ``POST /api/openings/{room}/publish``: the record goes out with the audit receipts of its
  signatures (inclusion proofs against a signed, timestamped checkpoint).
- ``GET /api/openings/{room}/key`` (the room's public key) and ``/record`` (public once published).

The clock (:func:`tick`) sends the system's commands when their time comes: the bids are fixed a
grace after the deadline (unfinished uploads swept), the window closes when it ends (or when no
bid is still sealed), confirmations close at their deadline, and an interrupted quorum is
finished. Every node runs it; its commands carry ids, so each step is applied once.

Every refusal is ``{code, message, detail}`` with its HTTP status (bidroom.tender_api.guarded).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import tempfile
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bidroom import audit, audit_api, bidform, blobs, opening, owners, receipts, signed, uploads
from bidroom.api import identity
from bidroom.compose import Composite
from bidroom.errors import OpeningRefused, RoomNotFound, RoomTampered
from bidroom.hub import Hub, LiveRoom
from bidroom.room import SYSTEM, Actor, Command
from bidroom.settings import Settings
from bidroom.tender_api import guarded
from bidroom.tender_store import LotRecord
from bidroom.tokens import Identity
from ca import envelope, handoff, shares
from ca import primitives as p
from ca.errors import CryptoError, EnvelopeError

log = logging.getLogger(__name__)


# bodies ------------------------------------------------------------------------------------


class _Body(BaseModel):
    # Nothing is stripped: a signed field must be checked over exactly the bytes that were signed.
    model_config = ConfigDict(extra="forbid", frozen=True)


class SignedBody(_Body):
    certificate: str = Field(min_length=16, max_length=16384)
    chain: list[str] = Field(default_factory=list, max_length=8)
    signature: str = Field(min_length=16, max_length=2048)


class DecryptBody(SignedBody):
    envelope: str = Field(pattern=r"^[0-9a-f]{64}$")
    sealed_key: str = Field(min_length=16, max_length=1024)


class ShareBody(SignedBody):
    """A share sealed to the room in the custodian's browser (ca.handoff.seal_share)."""

    index: int = Field(ge=1, le=16)
    commitment: str = Field(pattern=r"^[0-9a-f]{64}$")
    sealed_share: str = Field(min_length=16, max_length=4096)


class CountersignBody(SignedBody):
    """A signature over the record: its digest, as the signer saw it."""

    digest: str = Field(pattern=r"^[0-9a-f]{64}$")


class ConfirmBody(CountersignBody):
    opinion: str = Field(pattern="^(confirm|dissent)$")
    text: str = Field(default="", max_length=2000)


# helpers -----------------------------------------------------------------------------------


def room_key(settings: Settings, room: str) -> p.EcPrivateKey:
    """The opening room's HPKE key, from BIDROOM_ROOM_SECRET (its own secret: the session key
    does not make it)."""
    assert settings.room_secret is not None, "the app refuses to start without a room secret"
    return handoff.room_key(settings.room_secret.get_secret_value().encode(), room)


def part(live: LiveRoom) -> opening.OpeningState:
    """The opening slice of a composite opening room's state."""
    if live.record.kind != opening.KIND or not isinstance(live.kind, Composite):
        raise OpeningRefused(404, "not_an_opening", f"room {live.record.id} is not an opening")
    state: opening.OpeningState = live.kind.part_state(live.state, "opening")
    return state


def actor_for(who: Identity, role: str) -> Actor:
    if role not in who.roles:
        raise OpeningRefused(403, "not_allowed", f"this step is for the {role}", {"role": role})
    return Actor(who.subject, who.name, role, who.venue, who.organisation)


async def _step(
    request: Request, role: str
) -> tuple[Identity, Actor, LiveRoom, opening.OpeningState]:
    """Who asks (acting in ``role``), the live room and its opening state."""
    who = identity(request)
    actor = actor_for(who, role)
    live = await _live(request)
    if role == "chair":  # only the tender's own chairs (bidroom.owners)
        owners.check_room(live.record.kind, live.record.config, who.subject, who.organisation)
    return who, actor, live, part(live)


async def _live(request: Request) -> LiveRoom:
    hub: Hub = request.app.state.hub
    try:
        return await hub.room(request.path_params["room"])
    except RoomNotFound as exc:
        raise OpeningRefused(404, "room_not_found", exc.message) from exc


async def _body(request: Request, model: type[BaseModel]) -> Any:
    raw = await request.body()
    if len(raw) > 64 * 1024:
        raise OpeningRefused(413, "body_too_large", "the request body is too large")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise OpeningRefused(
            422,
            "invalid_args",
            "invalid request",
            {"errors": exc.errors(include_url=False, include_input=False)},
        ) from exc


async def _verify(
    request: Request, who: Identity, body: SignedBody, action: str, fields: dict[str, Any]
) -> None:
    """The signature over the action, by a certificate whose holder is the session's subject."""
    state = request.app.state
    await signed.verify_action(
        state.settings, state.store, who, body.model_dump(), action, fields, state.hub.clock()
    )


def attempt(step: str, body: SignedBody) -> str:
    """The command id of one signed attempt: a retry of the same request (same signature) is
    applied once; a new attempt (signatures are randomised) is decided afresh."""
    return f"{step}:{hashlib.sha256(body.signature.encode()).hexdigest()[:40]}"


async def _execute(
    hub: Hub,
    room: str,
    name: str,
    args: Mapping[str, Any],
    actor: Actor,
    command_id: str | None,
) -> dict[str, Any]:
    model = opening.SHELL_ARGUMENTS.get(name) or opening.ARGUMENTS[name]
    checked = model.model_validate(dict(args)).model_dump(mode="json")
    outcome = await hub.execute(room, Command(name, checked), actor, command_id)
    if not outcome["ok"]:
        raise OpeningRefused(409, outcome["code"], outcome["message"], outcome.get("detail"))
    return outcome


async def _all_events(hub: Hub, room: str, name: str) -> list[Mapping[str, Any]]:
    return [e.data for e in await hub.store.events(room) if e.name == name]


def _answer(outcome: dict[str, Any], **extra: Any) -> Response:
    return JSONResponse({"ok": True, "seqs": outcome.get("seqs", []), **extra})


# the room key ------------------------------------------------------------------------------


@guarded
async def public_key(request: Request) -> Response:
    live = await _live(request)
    part(live)
    key = room_key(request.app.state.settings, live.record.id)
    return JSONResponse({"room": live.record.id, "public_key": handoff.public_point(key)})


# decryption hand-off -----------------------------------------------------------------------


def _envelope_path(store: blobs.BlobStore, digest: str) -> Path:
    path = store.path(digest)
    if not path.is_file():
        raise OpeningRefused(500, "blob_missing", "the sealed bid is missing from the blob store")
    return path


def _check_key(path: Path, data_key: bytes) -> None:
    with path.open("rb") as source:
        envelope.check_data_key(source, data_key)


@guarded
async def decrypt(request: Request) -> Response:
    """A bidder hands over the data key of their own bid, sealed to the room, signed."""
    who, actor, live, state = await _step(request, "bidder")
    body: DecryptBody = await _body(request, DecryptBody)
    bid = state.bids.get(who.subject)
    if bid is None or bid.envelope != body.envelope:
        raise OpeningRefused(404, "no_bid", "you have no such bid in this opening")
    room = live.record.id
    fields = {"room": room, "envelope": body.envelope, "sealed_key": body.sealed_key}
    await _verify(request, who, body, "opening.decrypt", fields)
    settings: Settings = request.app.state.settings
    data_key = handoff.open_key(room_key(settings, room), room, body.envelope, body.sealed_key)
    try:
        await asyncio.to_thread(
            _check_key, _envelope_path(request.app.state.blobs, body.envelope), data_key
        )
    except CryptoError as exc:
        raise OpeningRefused(422, "bad_data_key", "this key does not open your bid") from exc
    args = {
        "sealed_key": body.sealed_key,
        "signature": body.signature,
        "certificate": body.certificate,
    }
    outcome = await _execute(
        request.app.state.hub, room, "opening.decrypted", args, actor, attempt("decrypt", body)
    )
    return _answer(outcome)


# the custodians' quorum --------------------------------------------------------------------


def _commitments(live: LiveRoom) -> dict[int, shares.Commitment]:
    """The lot's share commitments, as publication put them in the room's config."""
    found = (shares.Commitment.from_dict(d) for d in live.record.config.get("commitments") or ())
    return {c.index: c for c in found}


@guarded
async def share(request: Request) -> Response:
    """A custodian's share, checked against its commitment, kept sealed until k are in."""
    who = identity(request)
    role = "custodian" if "custodian" in who.roles else "chair"
    actor = actor_for(who, role)
    live = await _live(request)
    if part(live).quorum is None:  # a share is taken only while the custodians are asked
        raise OpeningRefused(
            409, "no_quorum_request", "the custodians have not been asked to open a bid"
        )
    body: ShareBody = await _body(request, ShareBody)
    commitment = _commitments(live).get(body.index)
    if commitment is None or commitment.digest.hex() != body.commitment:
        raise OpeningRefused(422, "share_uncommitted", "no such share was committed for this lot")
    if commitment.custodian != who.subject:
        raise OpeningRefused(403, "not_your_share", "this share was given to another custodian")
    room = live.record.id
    fields = {
        "room": room,
        "index": body.index,
        "commitment": body.commitment,
        "sealed_share": body.sealed_share,
    }
    await _verify(request, who, body, "opening.share", fields)
    settings: Settings = request.app.state.settings
    key = room_key(settings, room)
    mnemonic = handoff.open_share(key, room, body.commitment, body.sealed_share)
    given = shares.Share(
        commitment.lot_id,
        commitment.key_fingerprint,
        commitment.custodian,
        commitment.index,
        commitment.k,
        commitment.n,
        mnemonic,
    )
    if shares.commitment_digest(given) != commitment.digest:
        raise OpeningRefused(
            422, "share_commitment_mismatch", "the share does not match its commitment"
        )
    args = {  # kept as it came: sealed to the room key, bound to its commitment
        "custodian": who.subject,
        "index": body.index,
        "commitment": body.commitment,
        "sealed_share": body.sealed_share,
    }
    hub: Hub = request.app.state.hub
    outcome = await _execute(
        hub, room, "opening.share_submitted", args, actor, attempt("share", body)
    )
    opened = await open_by_quorum(hub, settings, request.app.state.blobs, room)
    return _answer(outcome, opened=opened)


async def open_by_quorum(
    hub: Hub, settings: Settings, store: blobs.BlobStore, room: str
) -> list[str]:
    """Once k shares are in, open every requested, still-failed bid; the bidders opened."""
    live = await hub.room(room)
    state = part(live)
    by_index = _commitments(live)
    quorum = state.quorum
    if not by_index or quorum is None:
        return []
    k = next(iter(by_index.values())).k
    waiting = [b for b in quorum.bidders if state.bids[b].status == "failed"]
    if len(quorum.shares) < k or not waiting:
        return []
    in_log = await _all_events(hub, room, "opening.share_submitted")
    submitted = list(
        {int(d["index"]): d for d in in_log if int(d["index"]) in quorum.shares}.values()
    )
    key = room_key(settings, room)
    given = [
        shares.Share(
            c.lot_id,
            c.key_fingerprint,
            c.custodian,
            c.index,
            c.k,
            c.n,
            handoff.open_share(key, room, d["commitment"], d["sealed_share"]),
        )
        for d in submitted
        for c in [by_index[int(d["index"])]]
    ]
    expected = p.load_public_der(base64.b64decode(live.record.config["opening_key"]))
    assert isinstance(expected, p.EcPublicKey)
    key = shares.combine(given, list(by_index.values()), expected)
    used = sorted(int(d["index"]) for d in submitted)
    opened = []
    for bidder in waiting:
        digest = state.bids[bidder].envelope
        try:
            data_key = await asyncio.to_thread(
                _open_entry, _envelope_path(store, digest), key, digest
            )
        except Unopenable as exc:  # the bidder's own envelope: their fault (docs/opening.md)
            log.warning(
                "the opening key opens a bid's entry, not the bid", extra={"code": exc.code}
            )
            args = {
                "bidder": bidder,
                "shares": used,
                "entry": envelope.key_id(key.public_key()),
                "envelope": digest,
                "code": exc.code,
            }
            await _execute(hub, room, "opening.quorum_refused", args, SYSTEM, f"quorum:{bidder}")
            continue
        except CryptoError as exc:  # not the bidder's doing: kept failed, the chair settles it
            log.warning("the opening key does not open a bid", extra={"code": exc.code})
            continue
        sealed = handoff.seal_key(room_key(settings, room).public_key(), room, digest, data_key)
        args = {"bidder": bidder, "sealed_key": sealed, "shares": used}
        await _execute(hub, room, "opening.quorum_opened", args, SYSTEM, f"quorum:{bidder}")
        opened.append(bidder)
    return opened


class Unopenable(CryptoError):
    """The lot's key (combined, checked against the lot's public key) finds its entry in the
    envelope exactly as received and signed by its bidder, but that entry does not unwrap, or
    the data key it holds does not open the whole bid: the bidder sealed a bid only they could
    open. ``code`` is ca.envelope's refusal."""


def _open_entry(path: Path, key: p.EcPrivateKey, digest: str) -> bytes:
    """The data key the opening-key entry holds, once it opened the whole bid (every chunk,
    the trailer, the signature); :class:`Unopenable` if it does not, through the bidder's fault.

    Upload cannot check this (the opening key does not exist before the quorum), so it is
    checked here, whole: a data key that opens only the first chunk is found out too. The file
    is hashed first: a stored envelope altered since its receipt is the platform's fault."""
    received = hashlib.sha256()
    with path.open("rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            received.update(block)
    if received.hexdigest() != digest:
        raise CryptoError("the stored envelope is not the one received", code="blob_altered")
    with path.open("rb") as source:
        header = envelope.read_header(source)
    if envelope.key_id(key.public_key()) not in {e["key"] for e in header.recipients}:
        raise CryptoError("the lot's key has no entry in this bid", code="envelope_wrong_recipient")
    try:
        data_key = envelope.unwrap_with(header, key)
        with path.open("rb") as source:
            envelope.check_opens(source, data_key)
    except EnvelopeError as exc:
        raise Unopenable(exc.message, code=exc.code, detail=exc.detail) from exc
    return data_key


# the sheet ---------------------------------------------------------------------------------


def read_bid_form(path: Path, data_key: bytes, scratch: Path, lot: str) -> dict[str, Any]:
    """Decrypt one bid (streamed, verified) and read its form; the plaintext is then deleted."""
    target = scratch / f"{path.name}.zip"
    try:
        with path.open("rb") as source:
            envelope.open_with_data_key(source, target, data_key)
        with target.open("rb") as plain:
            return {"form": bidform.form_from_archive(plain, lot)}
    except bidform.FormError as exc:
        return {"error": exc.code}
    except CryptoError as exc:  # the key opened the first chunk, not the whole bid
        log.warning("an opened bid does not decrypt whole", extra={"code": exc.code})
        return {"error": "bid_unreadable"}
    except Exception:  # whatever one bid holds, it never stops the sheet for the others
        log.exception("an opened bid could not be read")
        return {"error": "bid_unreadable"}
    finally:
        with contextlib.suppress(FileNotFoundError):
            target.unlink()


async def read_forms(
    settings: Settings,
    store: blobs.BlobStore,
    room: str,
    state: opening.OpeningState,
    sealed: Mapping[str, str],
) -> dict[str, Any]:
    """Every opened bid's form (or its error code), decrypted two at a time."""
    key = room_key(settings, room)
    limit = asyncio.Semaphore(2)
    with tempfile.TemporaryDirectory(dir=settings.var_dir, prefix="sheet-") as scratch:

        async def one(bidder: str) -> tuple[str, Any]:
            digest = state.bids[bidder].envelope
            data_key = handoff.open_key(key, room, digest, sealed[bidder])
            async with limit:
                outcome = await asyncio.to_thread(
                    read_bid_form,
                    _envelope_path(store, digest),
                    data_key,
                    Path(scratch),
                    state.lot,
                )
            return bidder, outcome.get("form") or outcome["error"]

        opened = [b.bidder for b in state.bids.values() if b.status in opening.OPENED]
        return dict(await asyncio.gather(*(one(b) for b in opened)))


def sealed_keys(events: list[Any]) -> dict[str, str]:
    """Each opened bid's data key, sealed to the room, from the room's log."""
    handed = ("opening.bid_decrypted", "opening.quorum_opened")
    return {e.data["bidder"]: e.data["sealed_key"] for e in events if e.name in handed}


@guarded
async def sheet(request: Request) -> Response:
    """The chair asks for the sheet: every opened bid is read, and the rows go out at once."""
    _, actor, live, state = await _step(request, "chair")
    if state.phase != "settling":
        raise OpeningRefused(
            409, "wrong_phase", "the sheet comes once the window is closed", {"phase": state.phase}
        )
    unsettled = [b.bidder for b in state.bids.values() if b.status not in opening.SETTLED]
    if unsettled:
        raise OpeningRefused(
            409,
            "not_all_settled",
            "the sheet waits until every bid is settled",
            {"unsettled": len(unsettled)},
        )
    hub: Hub = request.app.state.hub
    room = live.record.id
    events = await hub.store.events(room)
    state_ = request.app.state
    opened = [b for b in state.bids.values() if b.status in opening.OPENED]
    now = hub.clock()
    await state_.store.record(
        [audit.bid_read(now, actor, room, b.envelope, "sheet") for b in opened]
    )
    forms = await read_forms(state_.settings, state_.blobs, room, state, sealed_keys(events))
    rows = opening.sheet_rows(state.bids.values(), forms, live.record.config)
    outcome = await _execute(hub, room, "opening.publish_sheet", {"rows": rows}, actor, None)
    return _answer(outcome)


# the draw of K ------------------------------------------------------------------------------


@guarded
async def reveal(request: Request) -> Response:
    """The chair reveals K's seed from its copy sealed to the room at the commitment, when the
    browser that drew it lost it: the record cannot be generated without the draw."""
    _, actor, live, state = await _step(request, "chair")
    if state.phase != "sheet" or state.commitment is None or state.k is not None:
        raise OpeningRefused(409, "wrong_phase", "the draw is revealed once, after the sheet")
    if state.sealed_seed is None:
        raise OpeningRefused(404, "no_sealed_seed", "the seed was not sealed at the commitment")
    room = live.record.id
    key = room_key(request.app.state.settings, room)
    seed = handoff.open_key(key, room, state.commitment, state.sealed_seed)
    hub: Hub = request.app.state.hub
    args = {"seed": seed.hex()}
    outcome = await _execute(
        hub, room, "opening.reveal_draw", args, actor, f"reveal:{state.commitment}"
    )
    return _answer(outcome)


# the record --------------------------------------------------------------------------------


async def _sign_record(
    request: Request, role: str, model: type[CountersignBody], action: str, command: str
) -> Response:
    """A signature over the record being confirmed: the digest the signer saw must be the
    record's, the signature theirs; then the core records it (once per attempt)."""
    who, actor, live, state = await _step(request, role)
    body = await _body(request, model)
    room = live.record.id
    if state.record is None or state.record.digest != body.digest:
        raise OpeningRefused(409, "record_changed", "this is not the record being signed")
    said: dict[str, Any] = {
        name: getattr(body, name) for name in ("opinion", "text") if name in model.model_fields
    }
    await _verify(request, who, body, action, {"room": room, "digest": body.digest, **said})
    args = {**said, "signature": body.signature, "certificate": body.certificate}
    hub: Hub = request.app.state.hub
    outcome = await _execute(hub, room, command, args, actor, attempt(action, body))
    return _answer(outcome)


@guarded
async def confirm(request: Request) -> Response:
    """A bidder confirms the record, or records dissent, with a signature."""
    return await _sign_record(
        request, "bidder", ConfirmBody, "opening.confirm", "opening.confirm_record"
    )


@guarded
async def countersign(request: Request) -> Response:
    """The chair countersigns the record once confirmations are closed."""
    return await _sign_record(
        request, "chair", CountersignBody, "opening.countersign", "opening.countersign"
    )


RECORD_EVENTS = (
    "opening.sheet_published",
    "opening.draw_revealed",
    "opening.record_generated",
    "opening.record_confirmed",
    "opening.confirmations_closed",
    "opening.countersigned",
)


@guarded
async def publish(request: Request) -> Response:
    """The record goes out with an audit receipt for each of its steps."""
    _, actor, live, state = await _step(request, "chair")
    if state.phase != "countersigned":
        raise OpeningRefused(
            409, "wrong_phase", "the record is published once countersigned", {"phase": state.phase}
        )
    room = live.record.id
    hub: Hub = request.app.state.hub
    log_ = request.app.state.audit
    await log_.integrate()
    proofs = []
    for event in await hub.store.events(room):
        if event.name in RECORD_EVENTS:
            index = await log_.index_of_event(room, event.seq)
            proofs.append(
                {"seq": event.seq, "name": event.name, "receipt": await receipts.make(log_, index)}
            )
    latest = await log_.latest()
    args = {"checkpoint": latest.note if latest else "", "proofs": proofs}
    outcome = await _execute(hub, room, "opening.publish_record", args, actor, None)
    return _answer(outcome)


@guarded
async def record(request: Request) -> Response:
    """The published record: public. Before publication, 404 record_not_published."""
    live = await _live(request)
    state = part(live)
    if state.phase != "published" or state.record is None:
        raise OpeningRefused(404, "record_not_published", "the opening record is not published yet")
    answer = published_record(live.record.id, state)
    # what a checker of its receipts needs, as GET /.well-known/bidroom-audit.json gives it
    answer["audit"] = await audit_api.published_json(
        request.app.state.audit, audit_api.tsa_roots(request)
    )
    return JSONResponse(answer)


def published_record(room: str, state: opening.OpeningState) -> dict[str, Any]:
    """What the public sees of a published record: the document, who confirmed it and how,
    the chair's countersignature and the audit receipts that prove each step."""
    record = state.record
    assert record is not None
    return {
        "room": room,
        "lot": state.lot,
        "document": dict(record.document),
        "digest": record.digest,
        "confirmations": {
            bidder: {"opinion": opinion, "text": text}
            for bidder, (opinion, text) in record.confirmations.items()
        },
        "deemed": dict(record.deemed or {}),
        "countersigned": dict(record.countersigned or {}),
        "published": dict(record.published or {}),
    }


ROUTES = [
    Route("/api/openings/{room}/key", public_key, methods=["GET"]),
    Route("/api/openings/{room}/record", record, methods=["GET"]),
    Route("/api/openings/{room}/decrypt", decrypt, methods=["POST"]),
    Route("/api/openings/{room}/share", share, methods=["POST"]),
    Route("/api/openings/{room}/sheet", sheet, methods=["POST"]),
    Route("/api/openings/{room}/reveal", reveal, methods=["POST"]),
    Route("/api/openings/{room}/confirm", confirm, methods=["POST"]),
    Route("/api/openings/{room}/countersign", countersign, methods=["POST"]),
    Route("/api/openings/{room}/publish", publish, methods=["POST"]),
]


# the clock ---------------------------------------------------------------------------------


def due(
    state: opening.OpeningState, deadline: datetime, now: datetime, grace: timedelta
) -> str | None:
    """The system command this opening is due, if any (pure).

    The bids are fixed ``grace`` after the deadline: a bid whose trusted receipt time is before
    the deadline is still being checked and recorded for a moment after it (a large envelope
    takes seconds), and must be in the opening it was received for."""
    if state.phase == "signing_in" and now >= deadline + grace:
        return "opening.fix_bids"
    if state.phase == "decrypting" and state.window_ends is not None:
        waiting = any(not b.settled_by_bidder for b in state.bids.values())
        return "opening.close_window" if now >= state.window_ends or not waiting else None
    record = state.record
    if state.phase == "record" and record is not None and record.deemed is None:
        answered = all(b in record.confirmations for b in state.bids)
        ended = now >= datetime.fromisoformat(record.confirm_until)
        return "opening.close_confirmations" if answered or ended else None
    return None


async def tick(app: Any, now: datetime) -> None:
    """Send every due system command of every published lot's opening, and finish a quorum
    whose opening was interrupted (the node that received the k-th share died, say).

    ``app`` is the app's state: hub, tenders, settings, blobs. Only openings whose deadline has
    come, within the horizon (an opening ends within days), are looked at: the clock does not
    load every room ever opened into every node. One lot's trouble is logged and never keeps
    the clock from the others."""
    horizon = timedelta(days=app.settings.clock_horizon_days)
    for lot in await app.tenders.published_lots(since=now - horizon, until=now):
        try:
            await _tick_lot(app, lot, now)
        except RoomTampered:
            continue  # not served: the hub raised the alarm once (bidroom.integrity)
        except Exception:
            log.exception("the opening clock failed for a lot", extra={"room": lot.room})


async def _tick_lot(app: Any, lot: LotRecord, now: datetime) -> None:
    hub: Hub = app.hub
    try:
        live = await hub.room(lot.room)
    except RoomNotFound:
        return
    state = part(live)
    if state.quorum is not None:
        await open_by_quorum(hub, app.settings, app.blobs, lot.room)
    grace = timedelta(seconds=app.settings.fix_grace_seconds)
    name = due(state, lot.deadline, now, grace)
    if name is None:
        return
    args: dict[str, Any] = {}
    if name == "opening.fix_bids":
        await uploads.sweep(app, lot, now)  # an unfinished upload can never count now
        bids = await app.tenders.current_bids(lot.id)
        args = {
            "bids": [
                {
                    "bidder": b.bidder,
                    "name": b.organisation or b.name,
                    "envelope": b.envelope_sha256,
                }
                for b in bids
            ]
        }
    # The id names the room's position: every node that sees the same step due at the same
    # point sends the same command, applied once; a refusal is not remembered past it.
    command_id = f"clock:{name}:{live.seq}"
    outcome = await hub.execute(lot.room, Command(name, args), SYSTEM, command_id)
    if not outcome["ok"] and outcome.get("code") != "duplicate_command":
        log.warning("clock command refused", extra={"room": lot.room, "code": outcome["code"]})
