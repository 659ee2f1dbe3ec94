"""The evaluation's shell: what the pure core (bidroom.evaluation) cannot do by itself.

The core decides; this module does the I/O around the steps that need a secret, a file or a
signature, each checked before the core sees it (docs/evaluation.md "The shell (HTTP)"):

- a session is opened for a lot from its published opening record (``open_session``);
- the committee is drawn from the expert database's pool snapshot with a fresh seed, and the draw
  rests in the room's log sealed to the room key (ca.handoff.seal_record): identities stay
  sealed, yet any node can seat an expert or draw a replacement;
- an expert signs in with a signed action; the shell finds their seat in the sealed draw and
  proves it to the core with the seat's salt;
- the pre-check (清标) reads every opened bid through the opening's sealed data keys;
- a bidder's answer to a clarification is checked for its signature;
- the report is built from the state (bidroom.report), stored, issued, and signed by each member
  in turn: the server prepares the PAdES signature (ca.pades.prepare), the member's browser signs
  the attributes with a key that never leaves it, the server finishes it with the TSA's time-stamp.

The clock (:func:`tick`) closes signing at its deadline and seals a suspended session whose fault
clock is past its limit. Every refusal is ``{code, message, detail}`` with its HTTP status.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import io
import ipaddress
import json
import logging
import os
import tempfile
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from asn1crypto import cms
from cryptography import x509
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from pyhanko.pdf_utils.reader import PdfFileReader
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bidroom import (
    audit,
    bidform,
    blobs,
    committee,
    evaluation,
    opening,
    openings,
    owners,
    precheck,
    report,
    signed,
    tenders,
)
from bidroom.api import identity
from bidroom.compose import Composite
from bidroom.errors import (
    BidroomError,
    EvaluationRefused,
    RoomNotFound,
    RoomTampered,
    StoreError,
)
from bidroom.hub import Hub, LiveRoom
from bidroom.room import SYSTEM, Actor, Command
from bidroom.settings import Settings
from bidroom.store import RoomRecord
from bidroom.tender_api import guarded
from bidroom.tokens import Identity
from ca import envelope, handoff, login, pades
from ca import primitives as p
from ca.errors import CryptoError
from ca.trust import TrustStore, Usage

log = logging.getLogger(__name__)

SCHEDULE = timedelta(days=30)  # how far from now a session may be scheduled to start
READ_KEPT = 32  # bids whose reading a node keeps
DRAW = "committee draw"  # what the sealed draw is called in the room's log
PRICE_LIST = "price-list.json"  # the bid archive's priced bill (已标价工程量清单), optional
MAX_PRICE_LIST = 8 * 1024 * 1024
TOKEN_PREFIX = b"bidroom report signing v1\n"


# bodies ------------------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoBody(_Body):
    pass


class SessionBody(_Body):
    starts_at: AwareDatetime | None = None  # the scheduled start (the 2-hour rule); now if none


class SignInBody(openings.SignedBody):
    venue: str = Field(min_length=1, max_length=100)


class SeatBody(_Body):
    seat: int = Field(ge=1, le=1000)


class AnswerBody(openings.SignedBody):
    question: str = Field(min_length=1, max_length=20)
    text: str = Field(min_length=1, max_length=evaluation.ANSWER_MAX)


class PrepareBody(_Body):
    certificate: str = Field(min_length=16, max_length=16384)
    chain: list[str] = Field(default_factory=list, max_length=8)


class SignBody(_Body):
    token: str = Field(min_length=16, max_length=4096)
    signature: str = Field(min_length=16, max_length=2048)


# helpers -----------------------------------------------------------------------------------


def part(live: LiveRoom) -> evaluation.EvaluationState:
    """The evaluation slice of an evaluation room's state."""
    if live.record.kind != evaluation.KIND or not isinstance(live.kind, Composite):
        raise EvaluationRefused(
            404, "not_an_evaluation", f"room {live.record.id} is not an evaluation"
        )
    state: evaluation.EvaluationState = live.kind.part_state(live.state, "evaluation")
    return state


async def live_room(hub: Hub, room: str) -> LiveRoom:
    try:
        return await hub.room(room)
    except RoomNotFound as exc:
        raise EvaluationRefused(404, "room_not_found", exc.message) from exc


def acting_as(who: Identity, role: str, venue: str | None = None) -> Actor:
    if role not in who.roles:
        raise EvaluationRefused(403, "not_allowed", f"this step is for the {role}", {"role": role})
    return Actor(who.subject, who.name, role, venue or who.venue, who.organisation)


async def _step(
    request: Request, role: str
) -> tuple[Identity, Actor, LiveRoom, evaluation.EvaluationState]:
    who = identity(request)
    actor = acting_as(who, role)
    live = await live_room(request.app.state.hub, request.path_params["room"])
    if role == "chair":
        chair_owns(who, live.record)
    return who, actor, live, part(live)


def chair_owns(who: Identity, record: RoomRecord) -> None:
    """A chair acts and reads only in the rooms of their own tenders (bidroom.owners)."""
    owners.check_room(record.kind, record.config, who.subject, who.organisation)


async def _body(request: Request, model: type[BaseModel], limit: int = 64 * 1024) -> Any:
    raw = await request.body()
    if len(raw) > limit:
        raise EvaluationRefused(413, "body_too_large", "the request body is too large")
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise EvaluationRefused(
            422,
            "invalid_args",
            "invalid request",
            {"errors": exc.errors(include_url=False, include_input=False)},
        ) from exc


async def _execute(
    hub: Hub,
    room: str,
    name: str,
    args: Mapping[str, Any],
    actor: Actor,
    command_id: str | None = None,
) -> dict[str, Any]:
    model = evaluation.SHELL_ARGUMENTS.get(name) or evaluation.ARGUMENTS[name]
    try:
        checked = model.model_validate(dict(args)).model_dump(mode="json")
    except ValidationError as exc:  # e.g. a draw from a pool too large for one event
        errors = exc.errors(include_url=False, include_input=False)
        raise EvaluationRefused(
            422, "invalid_args", f"{name}: invalid", {"errors": errors}
        ) from exc
    outcome = await hub.execute(room, Command(name, checked), actor, command_id)
    if not outcome["ok"]:
        raise EvaluationRefused(409, outcome["code"], outcome["message"], outcome.get("detail"))
    return outcome


def _answer(outcome: Mapping[str, Any], **extra: Any) -> Response:
    return JSONResponse({"ok": True, "seqs": outcome.get("seqs", []), **extra})


def _room_public(settings: Settings, room: str) -> p.EcPublicKey:
    return openings.room_key(settings, room).public_key()


def _leader_or_chair(who: Identity, live: LiveRoom) -> Actor:
    """The chair (of this tender), or the elected leader acting as an expert."""
    state = part(live)
    if "chair" in who.roles:
        chair_owns(who, live.record)
        return acting_as(who, "chair")
    if "expert" in who.roles and who.subject == state.leader:
        return acting_as(who, "expert")
    raise EvaluationRefused(403, "not_leader", "only the chair or the leader does this")


def reader(who: Identity, live: LiveRoom) -> None:
    """A member of the committee, the tender's chair or a supervisor."""
    if who.subject in part(live).members or "supervisor" in who.roles:
        return
    if "chair" in who.roles:
        chair_owns(who, live.record)
        return
    raise EvaluationRefused(403, "not_allowed", "for the committee, the chair and supervisors")


# opening a session -------------------------------------------------------------------------


def _lot_spec(lot: Any) -> tenders.LotSpec:
    return tenders.LotSpec.model_validate(dict(lot.spec))


async def sessions_of(hub: Hub, lot_id: str) -> list[dict[str, Any]]:
    """The lot's evaluation sessions, newest first."""
    found = [r for r in await hub.store.rooms(evaluation.KIND) if r.config.get("lot_id") == lot_id]
    found.sort(key=lambda r: int(r.config.get("session", 0)), reverse=True)
    sessions = []
    for record in found:
        state = part(await hub.room(record.id))
        sessions.append(
            {"room": record.id, "session": record.config.get("session"), "phase": state.phase}
        )
    return sessions


async def open_session(
    state: Any, lot_id: str, chair: str, now: datetime, starts_at: datetime | None = None
) -> str:
    """A new evaluation session for the lot, from its published opening record; its room id.

    Refused while another session of the lot is not sealed (a new committee comes only after
    the old one's session was sealed under the fault rules)."""
    hub: Hub = state.hub
    if starts_at is not None and abs(starts_at - now) > SCHEDULE:
        raise EvaluationRefused(
            422, "starts_at_invalid", "the session starts within 30 days of now", {"now": now}
        )
    lot = await state.tenders.lot(lot_id)
    if lot is None:
        raise EvaluationRefused(404, "lot_not_found", "no such lot")
    earlier = await sessions_of(hub, lot_id)
    if any(s["phase"] != "sealed" for s in earlier):
        raise EvaluationRefused(
            409, "session_open", "the lot has a session that is not sealed", {"sessions": earlier}
        )
    opening_live = await live_room(hub, lot.room)
    if not isinstance(opening_live.kind, Composite):
        raise EvaluationRefused(404, "not_an_opening", "the lot's room is not an opening")
    opened = openings.part(opening_live)
    if opened.record is None or not opened.record.published:
        raise EvaluationRefused(409, "record_unpublished", "the opening record is not published")
    bids = await state.tenders.current_bids(lot_id)
    received = {b.bidder: b.received_at.isoformat() for b in bids}
    try:
        config = tenders.evaluation_config(
            _lot_spec(lot),
            openings.published_record(lot.room, opened),
            received_at=received,
            label_seed=os.urandom(32).hex(),
        )
    except BidroomError as exc:
        raise EvaluationRefused(409, exc.code, exc.message, dict(exc.detail)) from exc
    number = len(earlier) + 1
    config |= {
        "lot_id": lot_id,
        "opening_room": lot.room,
        "session": number,
        "starts_at": (starts_at or now).isoformat(),
        "created_by": chair,
        "owner": opening_live.record.config.get("owner"),  # its tender's owners, as published
    }
    room = f"{lot.room}-evaluation-{number}"
    title = f"{config.get('title', '')} 评标（第{number}次）"
    try:
        await hub.create_room(room, evaluation.KIND, title, config)
    except StoreError as exc:
        raise EvaluationRefused(409, "room_exists", f"room {room} exists already") from exc
    return room


async def _lot(state: Any, lot_id: str) -> Any:
    lot = await state.tenders.lot(lot_id)
    if lot is None:
        raise EvaluationRefused(404, "lot_not_found", "no such lot")
    return lot


async def _lot_owned(state: Any, who: Identity, lot_id: str) -> Any:
    """The lot, if the chair owns its tender: its opening room names them (bidroom.owners)."""
    lot = await _lot(state, lot_id)
    chair_owns(who, (await live_room(state.hub, lot.room)).record)
    return lot


@guarded
async def create(request: Request) -> Response:
    who = identity(request)
    acting_as(who, "chair")
    body: SessionBody = await _body(request, SessionBody)
    state = request.app.state
    await _lot_owned(state, who, request.path_params["lot"])
    room = await open_session(
        state, request.path_params["lot"], who.subject, state.hub.clock(), body.starts_at
    )
    return JSONResponse({"room": room}, 201)


@guarded
async def list_sessions(request: Request) -> Response:
    who = identity(request)
    if not any(r in who.roles for r in evaluation.WATCHERS):
        raise EvaluationRefused(403, "not_allowed", "for the chair and supervisors")
    if "supervisor" not in who.roles:
        await _lot_owned(request.app.state, who, request.path_params["lot"])
    hub: Hub = request.app.state.hub
    return JSONResponse({"sessions": await sessions_of(hub, request.path_params["lot"])})


# the committee -----------------------------------------------------------------------------


def load_pool(settings: Settings) -> list[committee.Expert]:
    """The expert database's pool snapshot (docs/operations.md)."""
    if settings.expert_pool is None:
        raise EvaluationRefused(409, "no_expert_pool", "no expert pool is configured")
    try:
        data = json.loads(settings.expert_pool.read_bytes())
        if data.get("format") != committee.POOL_FORMAT:
            raise ValueError(f"not a {committee.POOL_FORMAT}")
        return [committee.Expert.from_json(e) for e in data["experts"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EvaluationRefused(503, "expert_pool_unreadable", f"the pool: {exc}") from exc


def draw_request(config: Mapping[str, Any], spec: tenders.LotSpec, now: datetime) -> Any:
    """What the session asks of the draw, from the lot's frozen evaluation section."""
    section = spec.evaluation
    assert section is not None, "a session exists only for a lot with an evaluation section"
    return committee.Request(
        lot=str(config["lot"]),
        seats=tuple(committee.Seats(v.venue, v.seats, frozenset(v.cities)) for v in section.venues),
        specialties=frozenset(section.specialties),
        tenderer=section.tenderer,
        bidders=frozenset(str(b.get("name") or b["bidder"]) for b in config.get("bids") or ()),
        on=now.date(),
        local_city=section.local_city,
        rest_days=section.rest_days,
    )


def seal_draw(settings: Settings, room: str, drawn: committee.Draw) -> str:
    data = zlib.compress(envelope.canonical(drawn.to_json()))
    return handoff.seal_record(_room_public(settings, room), room, DRAW, data)


def open_draw(settings: Settings, room: str, state: evaluation.EvaluationState) -> committee.Draw:
    if state.sealed_draw is None:
        raise EvaluationRefused(409, "no_draw", "the committee is not drawn yet")
    key = openings.room_key(settings, room)
    data = json.loads(zlib.decompress(handoff.open_record(key, room, DRAW, state.sealed_draw)))
    drawn = evaluation.parse_draw(data)
    if not isinstance(drawn, committee.Draw):
        raise EvaluationRefused(500, "draw_invalid", "the sealed draw does not parse")
    return drawn


@guarded
async def draw(request: Request) -> Response:
    """The chair asks for the committee: drawn from the pool with a fresh seed."""
    _, actor, live, state = await _step(request, "chair")
    app = request.app.state
    if state.phase != "forming":
        raise EvaluationRefused(409, "wrong_phase", "the committee is drawn once")
    lot = await app.tenders.lot(live.record.config["lot_id"])
    request_ = draw_request(live.record.config, _lot_spec(lot), app.hub.clock())
    try:
        drawn = committee.draw(load_pool(app.settings), request_, os.urandom(32))
    except BidroomError as exc:
        raise EvaluationRefused(409, exc.code, exc.message, dict(exc.detail)) from exc
    args = {"draw": drawn.to_json(), "sealed": seal_draw(app.settings, live.record.id, drawn)}
    outcome = await _execute(app.hub, live.record.id, "evaluation.record_draw", args, actor)
    return _answer(outcome, seats=[s.to_json() for s in drawn.public_view()])


@guarded
async def sign_in(request: Request) -> Response:
    """An expert signs in at their seat: signed, at a venue; the seat is found in the draw."""
    who = identity(request)
    acting_as(who, "expert")
    body: SignInBody = await _body(request, SignInBody)
    room = request.path_params["room"]
    app = request.app.state
    fields = {"room": room, "venue": body.venue}
    await signed.verify_action(
        app.settings,
        app.store,
        who,
        body.model_dump(),
        "evaluation.sign_in",
        fields,
        app.hub.clock(),
    )
    state = part(await live_room(app.hub, room))
    drawn = open_draw(app.settings, room, state)
    seat = next((s for s in drawn.sealed_view() if s.expert == who.subject), None)
    if seat is None:
        raise EvaluationRefused(403, "not_drawn", "you are not on this committee")
    if who.venue is not None and who.venue != body.venue:
        raise EvaluationRefused(
            409, "wrong_venue", "you signed in at another venue", {"venue": who.venue}
        )
    actor = acting_as(who, "expert", body.venue)
    args = {
        "seat": seat.seat,
        "expert": who.subject,
        "salt": seat.salt.hex(),
        "signature": body.signature,  # kept with the seating: checked offline as it was here
        "certificate": body.certificate,
    }
    command = openings.attempt("sign_in", body)
    outcome = await _execute(app.hub, room, "evaluation.sign_in", args, actor, command)
    return _answer(outcome, seat=seat.seat)


@guarded
async def replace_seat(request: Request) -> Response:
    """The chair has a replacement drawn for a seat its expert left (回避)."""
    _, actor, live, state = await _step(request, "chair")
    body: SeatBody = await _body(request, SeatBody)
    app = request.app.state
    room = live.record.id
    seat = next((s for s in state.seats if s.seat == body.seat), None)
    if seat is None or seat.status != "vacated":
        raise EvaluationRefused(409, "seat_not_vacated", f"seat {body.seat} was not left")
    try:
        drawn = committee.replace_seat(
            open_draw(app.settings, room, state), body.seat, os.urandom(32)
        )
    except BidroomError as exc:
        raise EvaluationRefused(409, exc.code, exc.message, dict(exc.detail)) from exc
    args = {"draw": drawn.to_json(), "sealed": seal_draw(app.settings, room, drawn)}
    outcome = await _execute(app.hub, room, "evaluation.record_replacement", args, actor)
    return _answer(outcome)


# the bids: the pre-check and the committee's reading -----------------------------------------


def _fingerprint(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_bid(path: Path, data_key: bytes, scratch: Path, lot: str) -> dict[str, Any]:
    """One opened bid decrypted to scratch and read: its form, priced bill, the members of its
    archive, and the envelope's client map and signer fingerprints. The plaintext is deleted."""
    with path.open("rb") as source:
        header = envelope.read_header(source)
    cert = x509.load_der_x509_certificate(header.bidder_cert)
    facts: dict[str, Any] = {
        "client": dict(header.client),
        "certificate": _fingerprint(header.bidder_cert),
        "public_key": _fingerprint(p.public_der(p.accept_public_key(cert.public_key()))),
    }
    target = scratch / f"{path.name}.zip"
    try:
        with path.open("rb") as source:
            envelope.open_with_data_key(source, target, data_key)
        with target.open("rb") as plain:
            facts["form"] = bidform.form_from_archive(plain, lot)
        with zipfile.ZipFile(target) as archive:
            facts["files"] = [
                {"name": i.filename, "size": i.file_size}
                for i in archive.infolist()
                if not i.is_dir()
            ]
            facts["price_list"] = _price_list(archive)
    except bidform.FormError as exc:
        facts["error"] = exc.code
    except (CryptoError, zipfile.BadZipFile, OSError, ValueError) as exc:
        log.warning("an opened bid could not be read", extra={"error": type(exc).__name__})
        facts["error"] = "bid_unreadable"
    finally:
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
    return facts


def _price_list(archive: zipfile.ZipFile) -> dict[str, Any] | None:
    try:
        info = archive.getinfo(PRICE_LIST)
    except KeyError:
        return None
    if info.file_size > MAX_PRICE_LIST:
        return {"error": "price_list_too_large"}
    try:
        data = json.loads(archive.read(info))
    except (ValueError, UnicodeDecodeError):
        return {"error": "price_list_unreadable"}
    return data if isinstance(data, dict) else {"error": "price_list_unreadable"}


def _reading(app: Any) -> tuple[asyncio.Semaphore, OrderedDict[str, dict[str, Any]]]:
    """This node's limit on bids decrypted at once, and what it read of the last few bids
    (never their plaintext): a member paging through bids costs one decryption each."""
    if not hasattr(app, "bid_reading"):
        app.bid_reading = (asyncio.Semaphore(2), OrderedDict())
    reading: tuple[asyncio.Semaphore, OrderedDict[str, dict[str, Any]]] = app.bid_reading
    return reading


READS_SHOWN = 5000


async def real_session(app: Any, record: RoomRecord) -> tuple[str, opening.OpeningState]:
    """The opening a session reads its bids from, once it is shown to be a real session: the
    lot it names exists, its room is the lot's opening and the session's id is the one
    ``open_session`` gives, and that opening's record is published. Anything else (a room
    made by hand, or a session of a lot whose record is not out) reads nothing."""
    config = record.config
    lot = await app.tenders.lot(str(config.get("lot_id") or ""))
    session = config.get("session")
    real = (
        record.kind == evaluation.KIND
        and lot is not None
        and config.get("opening_room") == lot.room
        and isinstance(session, int)
        and record.id == f"{lot.room}-evaluation-{session}"
    )
    if not real or lot is None:
        raise EvaluationRefused(
            409, "session_not_real", "this room is not an evaluation session of a published lot"
        )
    opened = openings.part(await live_room(app.hub, lot.room))
    if opened.record is None or not opened.record.published:
        raise EvaluationRefused(409, "record_unpublished", "the opening record is not published")
    return lot.room, opened


async def read_bids(
    app: Any, record: RoomRecord, bidders: Sequence[str], reader: Actor, read: str
) -> dict[str, dict[str, Any]]:
    """The bids of ``bidders`` read through the opening's sealed data keys, for ``reader``;
    each read (who, which bid, which part, when) is an audit entry first (bid.read.<part>)."""
    hub: Hub = app.hub
    room, opened = await real_session(app, record)
    sealed = openings.sealed_keys(await hub.store.events(room))
    key = openings.room_key(app.settings, room)
    if any(b not in opened.bids or b not in sealed for b in bidders):
        raise EvaluationRefused(
            409, "bid_not_opened", "the opening has not handed over this bid's data key"
        )
    now = hub.clock()
    await app.store.record(
        [audit.bid_read(now, reader, record.id, opened.bids[b].envelope, read) for b in bidders]
    )
    limit, kept = _reading(app)
    with tempfile.TemporaryDirectory(dir=app.settings.var_dir, prefix="evaluation-") as scratch:

        async def one(bidder: str) -> tuple[str, dict[str, Any]]:
            digest = opened.bids[bidder].envelope
            if digest in kept:
                kept.move_to_end(digest)
                return bidder, kept[digest]
            data_key = handoff.open_key(key, room, digest, sealed[bidder])
            path = app.blobs.path(digest)
            async with limit:
                facts = await asyncio.to_thread(read_bid, path, data_key, Path(scratch), opened.lot)
            kept[digest] = facts
            while len(kept) > READ_KEPT:
                kept.popitem(last=False)
            return bidder, facts

        return dict(await asyncio.gather(*(one(b) for b in bidders)))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False  # e.g. a test client's name: no evidence of a network
    return True


def precheck_bid(
    bid: Mapping[str, Any], facts: Mapping[str, Any], addresses: Sequence[str]
) -> dict[str, Any]:
    """precheck.Bid's JSON form from what the record and the decrypted bid say."""
    form = facts.get("form") or {}
    price_list = facts.get("price_list") or {}
    sheet = {
        k: v for k, v in (bid.get("fields") or {}).items() if isinstance(v, str | int) or v is None
    }
    guarantee = form.get("guarantee")
    manager = form.get("project_manager")
    data: dict[str, Any] = {
        "bidder": bid["bidder"],
        "name": bid.get("name") or bid["bidder"],
        "price": bid.get("price") or form.get("price"),
        "sheet": sheet,
        "client": facts.get("client") or {},
        "certificate": facts.get("certificate"),
        "public_key": facts.get("public_key"),
        "addresses": [a for a in addresses if _is_ip(a)],
    }
    if guarantee:
        data["guarantee"] = {k: guarantee.get(k) for k in ("issuer", "number", "amount", "payer")}
    if manager:
        data["project_manager"] = {"name": manager}
    if price_list.get("error"):
        return {**data, "price_list_error": str(price_list["error"])}
    if "lines" in price_list:
        priced = {
            **data,
            "lines": price_list["lines"],
            "stated_total": price_list.get("stated_total"),
        }
        try:
            precheck.parse_bid(priced)
        except BidroomError as exc:  # one bidder's file never stops the pre-check for all
            return {**data, "price_list_error": exc.code}
        return priced
    return data


@guarded
async def run_precheck(request: Request) -> Response:
    """The chair runs the pre-check over the decrypted bids: evidence, never a verdict."""
    _, actor, live, state = await _step(request, "chair")
    app = request.app.state
    if state.phase != "electing" or state.leader is None:
        raise EvaluationRefused(
            409, "leader_needed", "the pre-check comes once the leader is elected"
        )
    config = live.record.config
    wanted = [str(b["bidder"]) for b in config.get("bids") or ()]
    facts = await read_bids(app, live.record, wanted, actor, "precheck")
    lot = await app.tenders.lot(config["lot_id"])
    history: dict[str, list[str]] = {}
    for bidder in facts:
        versions = await app.tenders.bids_of(config["lot_id"], bidder)
        history[bidder] = sorted({v.uploader_address for v in versions if v.uploader_address})
    bids = [
        precheck_bid(b, facts[str(b["bidder"])], history.get(str(b["bidder"]), []))
        for b in config.get("bids") or ()
    ]
    lot_json = {
        "lot": config["lot"],
        "ceiling_price": f"{_lot_spec(lot).ceiling_price:.2f}",
    }
    args = {"lot": lot_json, "bids": bids}
    outcome = await _execute(app.hub, live.record.id, "evaluation.precheck", args, actor)
    return _answer(outcome)


@guarded
async def bid_view(request: Request) -> Response:
    """A bid as a member may read it: by its label while the technical part is anonymous (then
    only the technical documents' list), by its bidder otherwise (form and priced bill too)."""
    who = identity(request)
    live = await live_room(request.app.state.hub, request.path_params["room"])
    state = part(live)
    reader(who, live)
    shown = request.path_params["shown"]
    bidder = evaluation.bidder_named(state, shown)
    if bidder is None:
        raise EvaluationRefused(404, "no_bid", f"no bid {shown}")
    anonymous = state.anonymous and "expert" in who.roles and who.subject in state.members
    role = "expert" if who.subject in state.members else _watching(who)
    reader_ = Actor(who.subject, who.name, role, who.venue, who.organisation)
    read = "technical" if anonymous else "commercial"
    facts = (await read_bids(request.app.state, live.record, [bidder], reader_, read))[bidder]
    files = facts.get("files") or []
    if anonymous:
        technical = [f for f in files if f["name"].startswith("technical/")]
        return JSONResponse({"bid": shown, "anonymous": True, "files": technical})
    return JSONResponse(
        {
            "bid": shown,
            "anonymous": False,
            "form": facts.get("form"),
            "price_list": facts.get("price_list"),
            "files": files,
            "error": facts.get("error"),
        }
    )


def _watching(who: Identity) -> str:
    return "supervisor" if "supervisor" in who.roles else "chair"


@guarded
async def bid_reads(request: Request) -> Response:
    """``GET /api/lots/{lot}/reads``: every read of the lot's bids' plaintext (the sheet's
    and each evaluation session's), from the audit log, for supervisors and the tender's
    chairs: who read which bid, which part, when."""
    who = identity(request)
    app, lot_id = request.app.state, request.path_params["lot"]
    if "supervisor" in who.roles:
        lot = await _lot(app, lot_id)
    else:
        acting_as(who, "chair")
        lot = await _lot_owned(app, who, lot_id)
    found = await app.store.audit_of(
        [lot.room], f"{lot.room}-evaluation-", audit.BID_READ, READS_SHOWN + 1
    )
    reads = [
        {
            "at": entry.at.isoformat(),
            "reader": entry.actor,
            "part": entry.action.removeprefix(audit.BID_READ),
            "room": entry.room,
            "envelope": entry.objects.get("envelope"),
            "index": entry.index,
        }
        for entry in found[:READS_SHOWN]
    ]
    return JSONResponse({"lot": lot.id, "reads": reads, "more": len(found) > READS_SHOWN})


# clarification -----------------------------------------------------------------------------


@guarded
async def answer(request: Request) -> Response:
    """A bidder answers an approved question, signed."""
    who = identity(request)
    actor = acting_as(who, "bidder")
    body: AnswerBody = await _body(request, AnswerBody, 256 * 1024)  # 20,000 characters
    room = request.path_params["room"]
    app = request.app.state
    fields = {"room": room, "question": body.question, "text": body.text}
    await signed.verify_action(
        app.settings,
        app.store,
        who,
        body.model_dump(),
        "evaluation.answer_question",
        fields,
        app.hub.clock(),
    )
    args = {
        "question": body.question,
        "text": body.text,
        "signature": body.signature,
        "certificate": body.certificate,
    }
    command = openings.attempt("answer", body)
    outcome = await _execute(app.hub, room, "evaluation.answer_question", args, actor, command)
    return _answer(outcome)


# the report --------------------------------------------------------------------------------


def _name_of(state: evaluation.EvaluationState, expert: str | None) -> str:
    seat = next((s for s in state.seats if s.expert == expert), None)
    if seat is not None:
        return seat.name
    for s in state.seats:
        for gone in s.left:
            if gone.get("expert") == expert:
                return str(gone.get("name") or expert)
    return str(expert or "")


def build_report(
    state: evaluation.EvaluationState, flag_history: Sequence[Mapping[str, Any]], now: datetime
) -> report.Report:
    """The report's content from the session's state (after the summary)."""
    assert state.summary is not None, "the report follows the summary"
    names = {b.bidder: b.name or b.bidder for b in state.spec.bids}
    names |= {label: names[b] for b, label in state.spec.labels.items()}  # flags raised under A, B
    computation = state.summary.get("computation") or {}  # none when no bid passed (流标)
    seats = [
        report.Seat(
            seat=str(s.seat),
            venue=s.venue,
            expert=s.name or str(s.expert),
            note="组长" if s.expert == state.leader else ("替补" if s.left else ""),
        )
        for s in state.seats
        if s.status == "seated"
    ]
    for s in state.seats:
        for gone in s.left:
            seats.append(
                report.Seat(
                    seat=str(s.seat),
                    venue=s.venue,
                    expert=_name_of(state, gone["expert"]),
                    note=report.WITHDREW,
                )
            )
    prelim = state.preliminary or {}
    reasons: dict[str, list[str]] = {}
    for r in prelim.get("reasons") or ():
        reasons.setdefault(r["bidder"], []).append(
            f"{r['criterion']}：{r.get('reason', '')}（{_name_of(state, r['expert'])}）"
        )
    reviews = [
        report.Review(
            bidder=names[b.bidder],
            passed=b.bidder in state.passed,
            reasons=tuple(reasons.get(b.bidder, ())),
        )
        for b in state.spec.bids
    ]
    items = [report.Item(id=i.id, name=i.id) for i in state.spec.params.items]
    per_item: dict[str, dict[str, str]] = {}
    for score in computation.get("items") or ():
        per_item.setdefault(score["bidder"], {})[score["item"]] = str(score["score"])
    scores = [
        report.Score(
            bidder=names.get(t["bidder"], t["bidder"]),
            price=str(t["price"]),
            price_score=str(t.get("price_score") or "—"),
            items=per_item.get(t["bidder"], {}),
            total=str(t.get("total") or "—"),
        )
        for t in computation.get("totals") or ()
    ]
    order = {b.bidder: n for n, b in enumerate(state.spec.bids)}
    seat_of = {e: n for n, e in enumerate(state.members)}
    sheets = [
        report.Sheet(
            expert=_name_of(state, expert),
            bidder=names.get(bidder, bidder),
            items={k: str(v) for k, v in sheet["scores"].items()},
            total=str(sheet.get("total") or _sum(sheet["scores"].values())),
        )
        for (expert, bidder), sheet in sorted(
            state.sheets.items(),
            key=lambda kv: (seat_of.get(kv[0][0], len(seat_of)), kv[0][0], order.get(kv[0][1], 0)),
        )
    ]
    totals = {t["bidder"]: str(t.get("total") or "—") for t in computation.get("totals") or ()}
    ranking = [
        report.Standing(
            rank=int(s["rank"]),
            bidder=names.get(s["bidder"], s["bidder"]),
            total=totals.get(s["bidder"], "—"),
        )
        for s in computation.get("ranking") or ()
    ]
    flags = [
        report.Flag(
            expert=_name_of(state, f.get("expert")),
            bidder=names.get(str(f.get("bidder") or f.get("label")), "—"),
            item=str(f.get("item") or ""),
            kind=str(f["kind"]),
            resolution=state.explanations.get(str(f["key"]), "已重新评分"),
        )
        for f in flag_history
    ]
    clarifications = [
        report.Clarification(
            bidder=names.get(q.bidder, q.bidder),
            question=q.text,
            answer=str((q.answer or {}).get("text") or f"（{q.status}）"),
            answered_at=str((q.answer or {}).get("at") or ""),
        )
        for q in state.questions
        if q.status in ("answered", "unanswered")
    ]
    dissent = [
        report.Dissent(expert=_name_of(state, e), text=text) for e, text in state.dissents.items()
    ]
    return report.Report(
        tender=state.spec.tender,
        lot=state.spec.lot,
        title=state.spec.title,
        created_at=now,
        committee=report.Committee(leader=_name_of(state, state.leader), seats=tuple(seats)),
        reviews=tuple(reviews),
        items=tuple(items),
        scores=tuple(scores),
        ranking=tuple(ranking),
        sheets=tuple(sheets),
        recommended=tuple(names.get(b, b) for b in computation.get("recommended") or ()),
        flags=tuple(flags),
        clarifications=tuple(clarifications),
        dissent=tuple(dissent),
    )


def _sum(scores: Iterable[Any]) -> str:
    """The sum of a sheet's item scores (decimal strings the core checked), as written."""
    try:
        return str(sum((Decimal(str(v)) for v in scores), Decimal(0)))
    except InvalidOperation:
        return "—"


def flag_history(events: Sequence[Any]) -> list[Mapping[str, Any]]:
    """Every flag the deviation checks raised, once each, in the order raised."""
    seen: dict[str, Mapping[str, Any]] = {}
    for event in events:
        if event.name == "evaluation.deviations_checked":
            for flag in event.data.get("flags") or ():
                seen.setdefault(str(flag["key"]), flag)
    return list(seen.values())


def page_count(pdf: bytes) -> int:
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    return int(reader.root["/Pages"]["/Count"])


def _put(store: blobs.BlobStore, settings: Settings, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    if not store.exists(digest):
        fd, name = tempfile.mkstemp(dir=settings.var_dir, prefix="blob-")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        store.put(Path(name), digest)
    return digest


def _read(store: blobs.BlobStore, digest: str) -> bytes:
    with store.open(digest) as source:
        return source.read()


@guarded
async def issue_report(request: Request) -> Response:
    """The leader (or the chair) issues the report: built from the state, stored, issued."""
    who = identity(request)
    app = request.app.state
    live = await live_room(app.hub, request.path_params["room"])
    state = part(live)
    actor = _leader_or_chair(who, live)
    if state.phase != "summary" or state.summary is None:
        raise EvaluationRefused(409, "wrong_phase", "the report follows the summary")
    events = await app.hub.store.events(live.record.id)
    content = build_report(state, flag_history(events), app.hub.clock())
    pdf = await asyncio.get_running_loop().run_in_executor(
        app.document_worker, report.render, content
    )
    digest = _put(app.blobs, app.settings, pdf)
    args = {"digest": digest, "pages": page_count(pdf)}
    outcome = await _execute(app.hub, live.record.id, "evaluation.issue_report", args, actor)
    return _answer(outcome, digest=digest)


@guarded
async def summary(request: Request) -> Response:
    """The summary as recorded, ``{record, computation}``: what ``bidroom evaluation recompute
    FILE --check FILE`` recomputes and compares."""
    who = identity(request)
    live = await live_room(request.app.state.hub, request.path_params["room"])
    state = part(live)
    reader(who, live)
    if state.summary is None:
        raise EvaluationRefused(404, "no_summary", "the evaluation is not summarised yet")
    return JSONResponse(dict(state.summary))


@guarded
async def report_pdf(request: Request) -> Response:
    """The report as last signed."""
    who = identity(request)
    app = request.app.state
    live = await live_room(app.hub, request.path_params["room"])
    state = part(live)
    reader(who, live)
    if state.report is None:
        raise EvaluationRefused(404, "no_report", "the report is not issued yet")
    pdf = _read(app.blobs, state.report.current)
    headers = {"Content-Disposition": f'inline; filename="evaluation-{state.spec.lot}.pdf"'}
    return Response(pdf, media_type="application/pdf", headers=headers)


def _token_key(settings: Settings) -> bytes:
    assert settings.report_secret is not None  # BIDROOM_REPORT_SECRET: the app needs it to start
    return hashlib.sha256(
        b"bidroom report token\n" + settings.report_secret.get_secret_value().encode()
    ).digest()


def make_token(settings: Settings, claims: Mapping[str, str]) -> str:
    payload = envelope.canonical(dict(claims))
    mac = hmac.new(_token_key(settings), TOKEN_PREFIX + payload, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(payload).decode() + "." + base64.urlsafe_b64encode(mac).decode()


def read_token(settings: Settings, token: str) -> dict[str, str]:
    try:
        payload_b64, mac_b64 = token.split(".")
        payload = base64.urlsafe_b64decode(payload_b64)
        mac = base64.urlsafe_b64decode(mac_b64)
    except ValueError as exc:
        raise EvaluationRefused(422, "token_invalid", "not a signing token") from exc
    expected = hmac.new(_token_key(settings), TOKEN_PREFIX + payload, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        raise EvaluationRefused(422, "token_invalid", "not a signing token of this platform")
    claims: dict[str, str] = json.loads(payload)
    return claims


def _b64(value: str, name: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise EvaluationRefused(422, "invalid_args", f"{name} is not base64") from exc


async def _member_certificate(
    app: Any, who: Identity, body: PrepareBody, now: datetime
) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """The member's signing certificate, valid now and theirs."""
    certificate = _b64(body.certificate, "certificate")
    chain = [_b64(c, "chain") for c in body.chain]
    try:
        cert, intermediates = login.load_chain(certificate, chain)
        verified = TrustStore(app.settings.trust_root).verify_certificate(
            cert, intermediates, now, Usage.SIGN
        )
    except CryptoError as exc:
        raise EvaluationRefused(403, exc.code, exc.message) from exc
    known = await app.store.roles_of(login.holder_keys(verified.holder))
    if known is None or known[0] != who.subject:
        raise EvaluationRefused(403, "signer_mismatch", "the certificate is another holder's")
    return cert, list(intermediates)


@guarded
async def prepare_signature(request: Request) -> Response:
    """The next signature prepared over the report's latest revision; the browser signs it."""
    who, _, live, state = await _step(request, "expert")
    app = request.app.state
    body: PrepareBody = await _body(request, PrepareBody)
    if state.phase != "signing" or state.report is None:
        raise EvaluationRefused(409, "wrong_phase", "the report is signed once issued")
    if who.subject not in state.members:
        raise EvaluationRefused(403, "not_a_member", "you hold no seat on this committee")
    if who.subject in state.report.answered():
        raise EvaluationRefused(409, "already_signed", "you have signed or refused already")
    cert, chain = await _member_certificate(app, who, body, app.hub.clock())
    base = state.report.current
    seat = next(s.seat for s in state.seats if s.expert == who.subject)
    loop = asyncio.get_running_loop()
    prepared = await loop.run_in_executor(
        app.document_worker,
        pades.prepare_blocking,
        _read(app.blobs, base),
        cert.public_bytes(p.serialization_der()),
        [c.public_bytes(p.serialization_der()) for c in chain],
        f"expert-{seat}-{len(state.report.signatures) + 1}",
        who.name,
        "评标报告签署",
    )
    held = _put(app.blobs, app.settings, prepared.state)
    claims = {
        "room": live.record.id,
        "expert": who.subject,
        "base": base,
        "state": held,
        "certificate": hashlib.sha256(_b64(body.certificate, "certificate")).hexdigest(),
    }
    return JSONResponse(
        {
            "to_sign": base64.b64encode(prepared.to_sign).decode(),
            "token": make_token(app.settings, claims),
            "base": base,
        }
    )


@guarded
async def finish_signature(request: Request) -> Response:
    """The member's signature over the prepared attributes, finished with the TSA's time-stamp,
    checked, stored and recorded."""
    who, actor, live, state = await _step(request, "expert")
    app = request.app.state
    body: SignBody = await _body(request, SignBody)
    claims = read_token(app.settings, body.token)
    if claims.get("room") != live.record.id or claims.get("expert") != who.subject:
        raise EvaluationRefused(403, "token_invalid", "the token is for another signer or room")
    if state.report is None or state.report.current != claims["base"]:
        current = None if state.report is None else state.report.current
        raise EvaluationRefused(
            409,
            "report_moved",
            "another member signed meanwhile: prepare again",
            {"current": current},
        )
    held = _read(app.blobs, claims["state"])
    try:
        finished = await pades.finish_on(
            app.document_worker, held, _b64(body.signature, "signature"), app.timestamper
        )
    except CryptoError as exc:
        raise EvaluationRefused(422, exc.code, exc.message, dict(exc.detail)) from exc
    loop = asyncio.get_running_loop()
    statuses = await loop.run_in_executor(
        app.document_worker, pades.inspect_blocking, finished.pdf, report_trust(app)
    )
    if not statuses or not statuses[-1].holds:
        summary = statuses[-1].summary if statuses else "no signature found"
        raise EvaluationRefused(422, "signature_invalid", f"the signature does not hold: {summary}")
    document = _put(app.blobs, app.settings, finished.pdf)
    cert_der = _certificate_of(finished.cms)
    if hashlib.sha256(cert_der).hexdigest() != claims["certificate"]:
        raise EvaluationRefused(422, "signature_invalid", "signed with another certificate")
    args = {
        "signature": base64.b64encode(finished.cms).decode(),
        "certificate": base64.b64encode(cert_der).decode(),
        "timestamp": base64.b64encode(finished.timestamp).decode(),
        "base": claims["base"],
        "document": document,
    }
    command = f"sign_report:{hashlib.sha256(body.signature.encode()).hexdigest()[:40]}"
    outcome = await _execute(
        app.hub, live.record.id, "evaluation.sign_report", args, actor, command
    )
    return _answer(outcome, document=document)


def report_trust(app: Any) -> pades.Trust:
    """What the platform trusts when it checks a signature on the report: the trust store's
    roots, intermediates and CRLs for signers, the TSA's roots for time-stamps."""
    recognised = TrustStore(app.settings.trust_root).recognised
    return pades.Trust(
        roots=recognised.roots,
        tsa_roots=list(app.timestamper.trust),
        intermediates=recognised.intermediates,
        crls=[p.crl_der(c) for c in recognised.crls],
        at=app.hub.clock(),
    )


def _certificate_of(cms_der: bytes) -> bytes:
    """The signer's certificate inside a CMS SignedData."""
    signed_data = cms.ContentInfo.load(cms_der)["content"]
    info = signed_data["signer_infos"][0]
    sid = info["sid"]
    for choice in signed_data["certificates"]:
        cert = choice.chosen
        if sid.name == "issuer_and_serial_number":
            wanted = sid.chosen
            if (
                cert.serial_number == wanted["serial_number"].native
                and cert.issuer == wanted["issuer"]
            ):
                return bytes(cert.dump())
    raise EvaluationRefused(422, "signature_invalid", "the signature names no certificate it holds")


ROUTES = [
    Route("/api/lots/{lot}/evaluations", create, methods=["POST"]),
    Route("/api/lots/{lot}/evaluations", list_sessions, methods=["GET"]),
    Route("/api/lots/{lot}/reads", bid_reads, methods=["GET"]),
    Route("/api/evaluations/{room}/draw", draw, methods=["POST"]),
    Route("/api/evaluations/{room}/sign-in", sign_in, methods=["POST"]),
    Route("/api/evaluations/{room}/replace", replace_seat, methods=["POST"]),
    Route("/api/evaluations/{room}/precheck", run_precheck, methods=["POST"]),
    Route("/api/evaluations/{room}/bids/{shown}", bid_view, methods=["GET"]),
    Route("/api/evaluations/{room}/answer", answer, methods=["POST"]),
    Route("/api/evaluations/{room}/report", issue_report, methods=["POST"]),
    Route("/api/evaluations/{room}/summary", summary, methods=["GET"]),
    Route("/api/evaluations/{room}/report.pdf", report_pdf, methods=["GET"]),
    Route("/api/evaluations/{room}/report/prepare", prepare_signature, methods=["POST"]),
    Route("/api/evaluations/{room}/report/sign", finish_signature, methods=["POST"]),
]


# the clock ---------------------------------------------------------------------------------


def due(state: evaluation.EvaluationState, now: datetime) -> str | None:
    """The system's command the session waits for at ``now``, if any."""
    report_ = state.report
    if state.phase == "signing" and report_ and now >= datetime.fromisoformat(report_.sign_until):
        return "evaluation.close_signing"
    if state.phase == "suspended" and state.spec.starts_at is not None and state.suspensions:
        start = state.spec.starts_at
        suspensions = [
            committee.Suspension(
                datetime.fromisoformat(s["start"]),
                None if s.get("end") is None else datetime.fromisoformat(s["end"]),
            )
            for s in state.suspensions
        ]
        with contextlib.suppress(BidroomError):
            faults = committee.fault_clocks(start, suspensions, now)
            if faults.status == "must_seal_and_reform":
                return "evaluation.seal"
    return None


async def tick(app: Any, now: datetime) -> None:
    """Send each session opened within the clock's horizon the command its time calls for (each
    applied once)."""
    hub: Hub = app.hub
    horizon = now - timedelta(days=app.settings.clock_horizon_days)
    for record in await hub.store.rooms(evaluation.KIND, since=horizon):
        try:
            state = part(await hub.room(record.id))
            name = due(state, now)
            if name is None:
                continue
            args = {} if name == "evaluation.close_signing" else {"reason": "故障超过时限，封存"}
            command = f"clock:{name}:{len(state.suspensions)}"
            await hub.execute(record.id, Command(name, args), SYSTEM, command)
        except RoomTampered:
            continue  # not served: the hub raised the alarm once (bidroom.integrity)
        except (BidroomError, CryptoError):
            log.exception("the evaluation clock skipped a session", extra={"room": record.id})
