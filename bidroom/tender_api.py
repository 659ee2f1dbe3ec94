"""HTTP routes of tenders, lots and bids (docs/opening.md "Tenders and lots", "Bids").

Thin: who is asking (the session token), validate, call the store or the pure core, answer.
Every refusal is a BidroomError (or ca's CryptoError) turned into ``{code, message, detail}``
with its HTTP status by :func:`guarded`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from bidroom import audit, blobs, owners, signed, tenders, uploads
from bidroom.api import error, identity
from bidroom.bids import BidRefused
from bidroom.blobs import BlobStore
from bidroom.errors import (
    AuthError,
    BidroomError,
    Conflict,
    HttpRefusal,
    NotAllowed,
    NotFound,
    StoreError,
    TenderError,
)
from bidroom.settings import Settings
from bidroom.store import RoomRecord
from bidroom.tender_store import LotRecord, Publication, TenderRecord, TenderStore
from bidroom.tokens import Identity
from ca import login, lot_key, merkle, tsa
from ca.errors import CryptoError
from ca.trust import TrustStore, Usage, holder_of

MAX_BODY = 1 << 20  # a tender with its custodian certificates; a withdrawal
SHA256_HEX = re.compile(r"[0-9a-f]{64}")

Handler = Callable[[Request], Awaitable[Response]]


def attach(state: State, engine: Any, settings: Settings) -> None:
    """The resources of tenders and bids, made in the app's lifespan."""
    state.tenders = TenderStore(engine)
    state.blobs = BlobStore(blobs.root(settings))
    state.uploads_busy = set()


def render(exc: BidroomError | CryptoError) -> Response:
    if isinstance(exc, HttpRefusal):
        status = exc.status
    elif isinstance(exc, AuthError):
        status = 401
    elif isinstance(exc, BidRefused):
        status = 422
    elif isinstance(exc, StoreError):
        status = 503
    else:
        status = 422 if isinstance(exc, CryptoError) else 500
    return error(status, exc.code, exc.message, _plain(exc.detail))


def _plain(detail: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(detail), default=str))  # type: ignore[no-any-return]


def guarded(handler: Handler, headers: Mapping[str, str] | None = None) -> Handler:
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except (BidroomError, CryptoError) as exc:
            response = render(exc)
            response.headers.update(headers or {})
            return response

    run.__name__ = handler.__name__
    return run


# who, and what ---------------------------------------------------------------------------


def _now(request: Request) -> datetime:
    return request.app.state.hub.clock()  # type: ignore[no-any-return]


def _as(request: Request, role: str) -> Identity:
    who = identity(request)
    if role not in who.roles:
        raise NotAllowed(f"only a {role} may do this", code="not_allowed", detail={"role": role})
    return who


def _maybe(request: Request) -> Identity | None:
    if not request.headers.get("authorization"):
        return None
    return identity(request)


async def _lot(request: Request) -> LotRecord:
    lot: LotRecord | None = await request.app.state.tenders.lot(request.path_params["lot"])
    if lot is None:
        raise NotFound("no such lot", code="lot_not_found")
    return lot


async def _body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise TenderError("the body is too large", code="invalid_args")
    return body


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise TenderError("the body is not JSON", code="invalid_args") from exc
    if not isinstance(value, dict):
        raise TenderError("the body is a JSON object", code="invalid_args")
    return value


# shapes ------------------------------------------------------------------------------------


def _custodian_view(pem: str) -> dict[str, Any]:
    holder = holder_of(tenders.custodian_certificate(pem))
    return {
        "name": holder.name,
        "organisation": holder.organisation,
        "uscc": holder.uscc,
        "fingerprint": holder.fingerprint,
    }


def lot_public(
    tender_id: str,
    spec: Mapping[str, Any],
    lot: LotRecord | None,
    owner: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``Lot`` of docs/opening.md: the spec, its id and room, the custodians by name (never a
    certificate, never a share); once published also its tender and owners, the opening key's
    public parts and the chair's signature of them (``key_signature``, null until signed:
    "The signed lot key")."""
    lot_id = tenders.lot_id(tender_id, str(spec["number"]))
    if lot is None:
        shown = {k: v for k, v in spec.items() if k != "custodians"}
        custodians = [_custodian_view(pem) for pem in spec["custodians"]]
        return {**shown, "id": lot_id, "room": tenders.room_id(lot_id), "custodians": custodians}
    frozen = {k: v for k, v in lot.spec.items() if k != "custodians"}
    return {
        **frozen,
        "id": lot.id,
        "room": lot.room,
        "tender": lot.tender_id,
        "owner": dict(owner or {}),
        "opening_key": _b64(lot.opening_key),
        "key_fingerprint": lot.key_fingerprint,
        "custodians": lot.custodians,
        "commitments": lot.commitments,
        # as stored: a sealer refuses anything but a signature object
        "key_signature": (
            dict(lot.key_signature) if isinstance(lot.key_signature, Mapping) else lot.key_signature
        ),
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def tender_public(state: State, tender: TenderRecord) -> dict[str, Any]:
    published = {lot.number: lot for lot in await state.tenders.lots_of(tender.id)}
    return {
        "id": tender.id,
        "number": tender.number,
        "title": tender.title,
        "status": tender.status,
        "owner": dict(tender.owners),  # who chairs it (docs/opening.md "Who chairs a tender")
        "published_at": tender.published_at.isoformat() if tender.published_at else None,
        "lots": [
            lot_public(tender.id, spec, published.get(spec["number"]), tender.owners)
            for spec in tender.spec["lots"]
        ],
    }


# tenders ----------------------------------------------------------------------------------


def _spec(request: Request, body: bytes) -> tenders.TenderSpec:
    settings: Settings = request.app.state.settings
    return tenders.parse_tender(body, settings.max_bid_bytes)


async def create_tender(request: Request) -> Response:
    who = _as(request, "chair")
    spec = _spec(request, await _body(request))
    now = _now(request)
    record = TenderRecord(
        uuid.uuid4().hex,
        spec.number,
        spec.title,
        "draft",
        spec.frozen(),
        who.subject,
        now,
        None,
        owners.owner(who.organisation, [who.subject]),
    )
    await request.app.state.tenders.create_tender(record, now)
    return JSONResponse({"tender": await tender_public(request.app.state, record)}, 201)


async def list_tenders(request: Request) -> Response:
    who = _maybe(request)
    chair = who is not None and "chair" in who.roles
    found = await request.app.state.tenders.tenders(published_only=not chair)
    if who is not None:  # a chair sees the published tenders and their own drafts
        found = [t for t in found if t.status == "published" or _owns(who, t)]
    return JSONResponse([await tender_public(request.app.state, t) for t in found])


def _owns(who: Identity, tender: TenderRecord) -> bool:
    return "chair" in who.roles and owners.may_chair(tender.owners, who.subject, who.organisation)


async def _tender(request: Request, who: Identity | None) -> TenderRecord:
    tender: TenderRecord | None = await request.app.state.tenders.tender(
        request.path_params["tender"]
    )
    if tender is None or (tender.status != "published" and (who is None or not _owns(who, tender))):
        raise NotFound("no such tender", code="tender_not_found")  # a draft is its owners' only
    return tender


async def _owned(request: Request) -> tuple[Identity, TenderRecord]:
    """The tender a chair acts on, if it is theirs (``not_your_tender`` otherwise)."""
    who = _as(request, "chair")
    tender = await _tender(request, who)
    owners.check(tender.owners, who.subject, who.organisation)
    return who, tender


async def get_tender(request: Request) -> Response:
    tender = await _tender(request, _maybe(request))
    return JSONResponse({"tender": await tender_public(request.app.state, tender)})


async def update_tender(request: Request) -> Response:
    who, tender = await _owned(request)
    spec = _spec(request, await _body(request))
    state = request.app.state
    await state.tenders.update_tender(
        tender.id, spec.number, spec.title, spec.frozen(), _now(request)
    )
    return JSONResponse({"tender": await tender_public(state, await _tender(request, who))})


async def assign_chairs(request: Request) -> Response:
    """``PUT /api/tenders/{tender}/chairs`` {"chairs": [subject]}: the owners name the chairs
    of other organisations (an agency's staff, say) who may chair this tender too; a draft's
    only (the owners are frozen with publication), logged."""
    who, tender = await _owned(request)
    body = _json(await _body(request))
    if set(body) != {"chairs"}:
        raise TenderError('the body is {"chairs": [subject]}', code="invalid_chairs")
    chairs = owners.parse_chairs(body["chairs"])
    known = {holder: roles for holder, _, roles in await request.app.state.store.holders()}
    missing = [c for c in chairs if "chair" not in known.get(c, ())]
    if missing:
        raise TenderError(
            "every assigned chair is a registry holder with the chair role",
            code="invalid_chairs",
            detail={"unknown": missing},
        )
    now = _now(request)
    assigned = owners.owner(tender.owners.get("organisation"), [who.subject, *chairs])
    entry = audit.Entry(
        now, who.subject, "tender.chairs_assigned", objects={"owner": audit.digest(assigned)}
    )
    state = request.app.state
    await state.tenders.assign_chairs(tender.id, assigned["chairs"], entry, now)
    return JSONResponse({"tender": await tender_public(state, await _tender(request, who))})


async def publish_tender(request: Request) -> Response:
    who, tender = await _owned(request)
    if tender.status != "draft":
        raise Conflict("the tender is published already", code="tender_frozen")
    publisher = tenders.Publisher(who.subject, who.name, who.organisation)
    await publish(request.app.state, tender, who.subject, _now(request), publisher)
    return JSONResponse(
        {"tender": await tender_public(request.app.state, await _tender(request, who))}
    )


async def publish(
    state: State,
    tender: TenderRecord,
    actor: str,
    now: datetime,
    publisher: tenders.Publisher | None = None,
) -> None:
    """Freeze the tender: per lot, check the custodians (their certificates, the custody policy
    against ``publisher``: by default ``actor`` and the tender's owning organisation), make
    and split the opening key, log the commitments and create the opening room; all written in
    one transaction."""
    settings: Settings = state.settings
    # the operator's command line publishes for the tender's owners: their organisation is
    # the trading centre's side of the custody policy
    publisher = publisher or tenders.Publisher(actor, None, tender.owners.get("organisation"))
    # insiders: the configured list, and the tender's owners (an assigned chair of an agency
    # may publish: the trading centre that owns the tender is no less on the inside)
    owning = tender.owners.get("organisation")
    chairs = list(tender.owners.get("chairs") or ())
    insiders = [
        *settings.insider_organisations,
        *([owning] if owning else []),
        *(c for c in chairs if c.startswith("uscc:")),  # an organisation's own certificate
        *await _assigned_organisations(state, tender, chairs, publisher),  # and its O
    ]
    spec = tenders.parse_tender(dict(tender.spec), settings.max_bid_bytes)
    tenders.check_publishable(spec, now, settings.min_bid_days)
    trust = TrustStore(settings.trust_root)
    made, entries = [], []
    for lot in spec.lots:
        lot_id = tenders.lot_id(tender.id, lot.number)
        custodians = [await _custodian(state, trust, lot, pem, now) for pem in lot.custodians]
        if len({c.subject for c in custodians}) != len(custodians):
            raise TenderError(
                f"lot {lot.number}: two custodians are one registry holder",
                code="custodian_duplicate",
            )
        chairing = next((c for c in custodians if c.subject in chairs), None)
        if chairing is not None:  # a chair of the tender holds no share of it
            raise TenderError(
                f"lot {lot.number}: custodian {chairing.name} chairs this tender",
                code="custodian_is_chair",
                detail={"lot": lot.number, "custodian": tenders.who(chairing)},
            )
        custodians = tenders.check_custody(lot.number, lot.k, custodians, publisher, insiders)
        split = tenders.split_key(lot_id, lot.k, custodians)
        config = tenders.opening_config(spec, lot_id, lot, split) | {"owner": dict(tender.owners)}
        room = RoomRecord(
            tenders.room_id(lot_id), "opening", f"{spec.title} {lot.title}", config, now
        )
        record = LotRecord(
            lot_id,
            tender.id,
            lot.number,
            lot.title,
            room.id,
            lot.deadline,
            lot.frozen(),
            split.opening_key,
            split.fingerprint,
            split.commitments,
            split.custodians,
        )
        made.append(Publication(record, split.files, room))
        entries.append(_key_split_entry(actor, room.id, split, now))
    await state.tenders.publish(tender.id, made, entries, now)


async def _assigned_organisations(
    state: State, tender: TenderRecord, chairs: list[str], publisher: tenders.Publisher
) -> list[str]:
    """The organisations of the chairs assigned to ``tender`` by name (insiders: the custody
    policy): each by the O they last signed in with, since their staff's person certificates
    name the organisation by O alone (no USCC), whether the chair is a person (``cert:``) or the
    organisation itself (``uscc:``). The creator's organisation is the tender's owning one and
    the publisher's their session's; an assigned chair who never signed in is
    ``chair_organisation_unknown``."""
    others = [c for c in chairs if c not in (tender.created_by, publisher.subject)]
    known = await state.store.organisations_of(others)
    unknown = [c for c in others if not known.get(c)]
    if unknown:
        raise TenderError(
            "an assigned chair's organisation is known once they have signed in with their "
            "certificate: they sign in once before the tender is published",
            code="chair_organisation_unknown",
            detail={"chairs": unknown},
        )
    return [str(known[c]) for c in others]


def _key_split_entry(actor: str, room: str, split: tenders.KeySplit, now: datetime) -> audit.Entry:
    objects = {"opening_key": split.fingerprint}
    objects.update({f"share-{c['index']}": c["digest"] for c in split.commitments})
    return audit.Entry(now, actor, "lot.key_split", room, None, objects)


async def _custodian(
    state: State, trust: TrustStore, lot: tenders.LotSpec, pem: str, now: datetime
) -> tenders.Custodian:
    cert = tenders.custodian_certificate(pem)
    try:
        holder = trust.verify_certificate(cert, [], now, Usage.WRAP).holder
    except CryptoError as exc:
        raise TenderError(
            f"lot {lot.number}: a custodian certificate is not accepted: {exc.message}",
            code=exc.code,
            detail={"lot": lot.number, "certificate": holder_of(cert).fingerprint},
        ) from exc
    known = await state.store.roles_of(login.holder_keys(holder))
    if known is None:
        raise TenderError(
            f"lot {lot.number}: custodian {holder.name} is not in the platform's registry",
            code="custodian_unregistered",
            detail={"lot": lot.number, "holder": login.holder_keys(holder)},
        )
    return tenders.Custodian(known[0], holder.name, cert, holder.organisation, holder.uscc)


# lots -------------------------------------------------------------------------------------


async def get_lot(request: Request) -> Response:
    lot = await _lot(request)
    tender = await request.app.state.tenders.tender(lot.tender_id)
    owned = tender.owners if tender is not None else None
    return JSONResponse({"lot": lot_public(lot.tender_id, lot.spec, lot, owned)})


async def sign_key(request: Request) -> Response:
    """``POST /api/lots/{lot}/key-signature``: one of the tender's chairs signs the lot's public
    parts (the signed action ``lot.sign_key`` over ca.lot_key's statement), once; until then
    the lot takes no bid (``lot_key_unsigned``). docs/opening.md "The signed lot key"."""
    who = _as(request, "chair")
    lot = await _lot(request)
    body = _json(await _body(request))
    served = await accept_key_signature(request.app.state, lot, who, body, _now(request))
    return JSONResponse({"lot": served})


async def accept_key_signature(
    state: State, lot: LotRecord, who: Identity, body: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """Check and keep ``who``'s signature (``body``: certificate, chain, signature) of ``lot``'s
    key statement, with its audit entry ``lot.key_signed``; the lot as now served."""
    tender = await state.tenders.tender(lot.tender_id)
    if tender is None:
        raise NotFound("no such lot", code="lot_not_found")
    owners.check(tender.owners, who.subject, who.organisation)
    served = lot_public(lot.tender_id, lot.spec, lot, tender.owners)
    await _as_logged(state, lot)
    lapsed = _lapsed(state.settings, served, now)
    holder = await signed.verify_action(
        state.settings, state.store, who, body, lot_key.ACTION, lot_key.statement(served), now
    )
    if not lot_key.signer_owns(tender.owners, holder):
        # the session may chair (an assigned subject), but a sealer checks the certificate alone
        raise NotAllowed(
            "your certificate does not name you an owner of this tender",
            code="lot_key_signer",
            detail={"organisation": holder.organisation},
        )
    signature = {
        "certificate": body["certificate"],
        "chain": list(body.get("chain") or []),
        "signature": body["signature"],
        "signer": {
            "name": holder.name,
            "organisation": holder.organisation,
            "uscc": holder.uscc,
            "fingerprint": holder.fingerprint,
        },
        "signed_at": now.isoformat(),
    }
    digest = hashlib.sha256(lot_key.message(served)).hexdigest()
    objects = {"statement": digest, "opening_key": lot.key_fingerprint}
    entry = audit.Entry(now, who.subject, "lot.key_signed", lot.room, None, objects)
    if not await state.tenders.sign_key(lot.id, signature, entry, lapsed):
        raise Conflict("this lot's key is signed already", code="lot_key_signed")
    kept = await state.tenders.lot(lot.id)
    return lot_public(lot.tender_id, lot.spec, kept, tender.owners)


async def _as_logged(state: State, lot: LotRecord) -> None:
    """``409 lot_key_mismatch`` unless the lot's key and share commitments are those its
    publication logged (the first ``lot.key_split`` entry of exactly its room) and, once the
    log has taken that entry, the entry is still what its leaf hash commits to: a key written
    into the lot's row since is not signed, and one written into the entry as well shows
    against the checkpoints already signed (docs/opening.md "The signed lot key")."""
    found = await state.audit.first_of(lot.room, "lot.key_split")
    made = {"opening_key": lot.key_fingerprint}
    made.update({f"share-{c['index']}": c["digest"] for c in lot.commitments})
    entry, leaf = found if found is not None else (None, None)
    logged = entry is not None and dict(entry.objects or {}) == made
    if logged and entry is not None and leaf is not None:
        logged = merkle.leaf_hash(audit.encode(entry)) == leaf
    if not logged:
        raise Conflict(
            "the lot's key is not the one its publication logged: do not sign it; tell the "
            "supervisor",
            code="lot_key_mismatch",
            detail={"lot": lot.id, "key_fingerprint": lot.key_fingerprint},
        )


def _lapsed(settings: Settings, served: Mapping[str, Any], now: datetime) -> Any:
    """The lot's signature if an owner may replace it: held, but its certificate no longer
    valid now (expired, revoked: a sealer checking at the moment of sealing would refuse it);
    None if unsigned; ``409 lot_key_signed`` while it holds. The statement stays the same."""
    held = served.get("key_signature")
    if held is None:
        return None
    if not isinstance(held, Mapping):  # not a signature at all: replaced
        return held
    try:
        login.verify_signed(
            TrustStore(settings.trust_root),
            base64.b64decode(held["certificate"]),
            [base64.b64decode(c) for c in held.get("chain") or []],
            lot_key.message(served),
            base64.b64decode(held["signature"]),
            now,
        )
    except (CryptoError, KeyError, TypeError, ValueError):  # lapsed, or not a signature at all
        return held
    raise Conflict(
        "this lot's key is signed already, by a certificate still valid",
        code="lot_key_signed",
        detail={"signer": held.get("signer"), "signed_at": held.get("signed_at")},
    )


async def share(request: Request) -> Response:
    """The caller's share file of this lot's opening key, once the lot's deadline has passed;
    each fetch, and each attempt before the deadline, is an audit entry."""
    who = identity(request)
    lot = await _lot(request)
    data: bytes | None = await request.app.state.tenders.share_file(lot.id, who.subject)
    if data is None:
        raise NotFound("you hold no share of this lot's opening key", code="share_not_found")
    now = _now(request)
    if now < lot.deadline:
        refused = audit.Entry(now, who.subject, "lot.share_refused", lot.room, None, {})
        await request.app.state.store.record([refused])
        raise Conflict(
            "a share is served only after the lot's deadline",
            code="share_not_yet",
            detail={"deadline": lot.deadline.isoformat(), "now": now.isoformat()},
        )
    digest = hashlib.sha256(data).hexdigest()
    entry = audit.Entry(now, who.subject, "lot.share_fetched", lot.room, None, {"share": digest})
    await request.app.state.store.record([entry])
    return Response(data, media_type="application/json", headers={"cache-control": "no-store"})


async def register(request: Request) -> Response:
    who = _as(request, "bidder")
    lot = await _lot(request)
    if _now(request) > lot.deadline:
        raise Conflict("the deadline has passed", code="deadline_passed")
    tender = await request.app.state.tenders.tender(lot.tender_id)
    if tender is not None and owners.may_chair(tender.owners, who.subject, who.organisation):
        raise NotAllowed(
            "your organisation runs this tender (or you chair it): it may not bid on it",
            code="bidder_is_owner",
            detail={"lot": lot.id},
        )
    custodian = tenders.custodian_of(lot.custodians, who.subject, who.organisation)
    if custodian is not None:
        raise NotAllowed(
            f"your organisation holds a share of this lot's opening key ({custodian['name']}): "
            "it may not bid on the lot",
            code="bidder_is_custodian",
            detail={"lot": lot.id, "custodian": custodian},
        )
    new = await request.app.state.tenders.register(
        lot.id, who.subject, who.name, who.organisation, _now(request)
    )
    return JSONResponse(
        {"lot": lot.id, "subject": who.subject, "registered": True}, 201 if new else 200
    )


# bids -------------------------------------------------------------------------------------


async def my_bids(request: Request) -> Response:
    who = _as(request, "bidder")
    lot = await _lot(request)
    found = await request.app.state.tenders.bids_of(lot.id, who.subject)
    return JSONResponse(
        {"bids": [b.public() for b in found]}, headers={"cache-control": "no-store"}
    )


async def my_envelope(request: Request) -> Response:
    who = _as(request, "bidder")
    lot = await _lot(request)
    bid = await request.app.state.tenders.current_bid(lot.id, who.subject)
    if bid is None:
        raise NotFound("you have no current bid on this lot", code="bid_not_found")
    path = request.app.state.blobs.path(bid.envelope_sha256)
    return FileResponse(
        path,
        media_type="application/octet-stream",
        headers={"cache-control": "no-store", "x-envelope-sha256": bid.envelope_sha256},
    )


async def withdraw(request: Request) -> Response:
    """Withdraw my current bid (撤回), signed over ``{lot, envelope, version}`` (the version
    makes a signature useless against a later identical upload), before the deadline by
    trusted time. Junk, or anything but my current bid, is refused before the TSA is asked."""
    who = _as(request, "bidder")
    lot = await _lot(request)
    body = _json(await _body(request))
    envelope = body.get("envelope")
    if not isinstance(envelope, str) or not SHA256_HEX.fullmatch(envelope):
        raise TenderError(
            "name the envelope by its SHA-256 (64 lowercase hex digits)",
            code="invalid_args",
            detail={"field": "envelope"},
        )
    version = body.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise TenderError(
            "name the bid's version (a positive integer)",
            code="invalid_args",
            detail={"field": "version"},
        )
    state = request.app.state
    current = await state.tenders.current_bid(lot.id, who.subject)
    if current is None or (current.envelope_sha256, current.version) != (envelope, version):
        raise NotFound(
            "you have no current bid with that envelope and version on this lot",
            code="bid_not_found",
            detail={"lot": lot.id, "envelope": envelope, "version": version},
        )
    fields = {"lot": lot.id, "envelope": envelope, "version": version}
    await signed.verify_action(
        state.settings, state.store, who, body, "bid.withdraw", fields, _now(request)
    )
    message = signed.action_message("bid.withdraw", fields)
    stamp = await state.timestamper.stamp(tsa.Digest("sha256", hashlib.sha256(message).digest()))
    at = stamp.info.gen_time
    if at > lot.deadline:
        raise Conflict(
            "the deadline has passed: the bid stands",
            code="deadline_passed",
            detail={"at": at.isoformat(), "deadline": lot.deadline.isoformat()},
        )
    objects = {"envelope": envelope, "timestamp": hashlib.sha256(stamp.token).hexdigest()}
    entry = audit.Entry(at, who.subject, "bid.withdrawn", lot.id, None, objects)
    bid = await state.tenders.withdraw(lot.id, who.subject, envelope, version, entry)
    return JSONResponse({"bid": bid.public()})


# uploads ----------------------------------------------------------------------------------


def _tus(handler: Callable[[Request, Identity], Awaitable[Response]]) -> Handler:
    async def run(request: Request) -> Response:
        uploads.check_version(request)
        return await handler(request, _as(request, "bidder"))

    run.__name__ = handler.__name__
    return guarded(run, uploads.HEADERS)


async def _upload_options(request: Request) -> Response:
    return await uploads.options(request, await _lot(request))


async def _upload_create(request: Request, who: Identity) -> Response:
    return await uploads.create(request, who, await _lot(request))


ROUTES = [
    Route("/api/tenders", guarded(create_tender), methods=["POST"]),
    Route("/api/tenders", guarded(list_tenders), methods=["GET"]),
    Route("/api/tenders/{tender}", guarded(get_tender), methods=["GET"]),
    Route("/api/tenders/{tender}", guarded(update_tender), methods=["PUT"]),
    Route("/api/tenders/{tender}/publish", guarded(publish_tender), methods=["POST"]),
    Route("/api/tenders/{tender}/chairs", guarded(assign_chairs), methods=["PUT"]),
    Route("/api/lots/{lot}", guarded(get_lot), methods=["GET"]),
    Route("/api/lots/{lot}/share", guarded(share), methods=["GET"]),
    Route("/api/lots/{lot}/key-signature", guarded(sign_key), methods=["POST"]),
    Route("/api/lots/{lot}/registrations", guarded(register), methods=["POST"]),
    Route("/api/lots/{lot}/bids/mine", guarded(my_bids), methods=["GET"]),
    Route("/api/lots/{lot}/bids/mine/envelope", guarded(my_envelope), methods=["GET"]),
    Route("/api/lots/{lot}/bids/mine/withdraw", guarded(withdraw), methods=["POST"]),
    Route(
        "/api/lots/{lot}/uploads",
        guarded(_upload_options, uploads.HEADERS),
        methods=["OPTIONS"],
    ),
    Route("/api/lots/{lot}/uploads", _tus(_upload_create), methods=["POST"]),
    Route("/api/uploads/{upload}", _tus(uploads.head), methods=["HEAD"]),
    Route("/api/uploads/{upload}", _tus(uploads.patch), methods=["PATCH"]),
    Route("/api/uploads/{upload}", _tus(uploads.status), methods=["GET"]),
    Route("/api/uploads/{upload}", _tus(uploads.delete), methods=["DELETE"]),
]
