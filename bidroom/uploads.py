"""Bid uploads over tus 1.0.0 (core, ``creation``, ``termination``): docs/opening.md "Bids".

    OPTIONS /api/lots/{lot}/uploads      what the server takes (Tus-Max-Size: the lot's limit)
    POST    /api/lots/{lot}/uploads      Upload-Length -> 201, Location: /api/uploads/<id>
    HEAD    /api/uploads/{id}            Upload-Offset, Upload-Length
    PATCH   /api/uploads/{id}            the next bytes at Upload-Offset -> 204, the new offset
    GET     /api/uploads/{id}            {"status", "offset", "length", "bid", "error"}
    DELETE  /api/uploads/{id}            cancel an unfinished upload

Bytes go straight from the request stream to ``<var>/uploads/<id>``, never whole in memory.
A client cut off mid-PATCH keeps what arrived: HEAD says where to go on. When the last byte is
in, ``bids.receive`` checks the envelope against trusted time, the file moves into the blob
store and the bid is recorded; a refusal is kept as the upload's outcome and the file dropped.
An upload is its creator's alone: anyone else gets 404. Two PATCHes of one upload at once are
refused (409 ``upload_busy``) by this node; a deployment pins an upload to a node (sticky
sessions) or lets the offset check of the database refuse the second writer.

Completion happens once: the request that brings the last byte moves the upload from
``uploading`` to ``completing`` in one conditional update (TenderStore.advance), and only the
request that made that change completes it; PATCH and DELETE of a ``completing`` upload are
refused (409 ``upload_completing``) on every node. A refusal ends as ``refused``; an unexpected
failure puts the upload back to ``uploading`` at its full length (an empty PATCH retries), or
``failed`` once its bytes have left ``var/uploads``.

A bidder has at most ``max_open_uploads`` unfinished uploads per lot (409
``too_many_uploads``); once a lot's deadline has passed, :func:`sweep` removes the unfinished
ones (rows and files).
"""

from __future__ import annotations

import base64
import contextlib
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from bidroom import bids
from bidroom.errors import Conflict, NotAllowed, NotFound, TooLarge, UploadRefused
from bidroom.tender_store import BidRecord, LotRecord, UploadRecord
from bidroom.tokens import Identity
from ca.trust import TrustStore

VERSION = "1.0.0"
EXTENSIONS = "creation,termination"
OFFSET_TYPE = "application/offset+octet-stream"
HEADERS = {"Tus-Resumable": VERSION}
NUMBER = re.compile(r"[0-9]{1,19}")


def upload_dir(request: Request) -> Path:
    return _folder(request.app.state)


def _folder(state: Any) -> Path:
    folder: Path = state.settings.var_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def check_version(request: Request) -> None:
    if request.method not in ("OPTIONS", "GET") and request.headers.get("tus-resumable") != VERSION:
        raise UploadRefused(
            f"this server speaks tus {VERSION}: send Tus-Resumable: {VERSION}",
            code="tus_version",
            status=412,
            detail={"version": VERSION},
        )


def _number(request: Request, name: str) -> int:
    text = request.headers.get(name, "")
    if not NUMBER.fullmatch(text):  # ASCII digits: "²".isdigit() is True, int("²") fails
        raise UploadRefused(f"{name} is a non-negative integer", code="tus_header")
    return int(text)


async def options(request: Request, lot: LotRecord) -> Response:
    headers = {
        **HEADERS,
        "Tus-Version": VERSION,
        "Tus-Extension": EXTENSIONS,
        "Tus-Max-Size": str(lot.spec["max_bid_bytes"]),
    }
    return Response(status_code=204, headers=headers)


async def create(request: Request, who: Identity, lot: LotRecord) -> Response:
    """POST: a new upload for a registered bidder, before the deadline, within the lot's size."""
    state = request.app.state
    length = _number(request, "upload-length")
    limit = int(lot.spec["max_bid_bytes"])
    if not await state.tenders.is_registered(lot.id, who.subject):
        raise NotAllowed("register for this lot before uploading", code="not_registered")
    check_signed(lot)
    now = state.hub.clock()
    if now > lot.deadline:
        await sweep(state, lot, now)
        raise Conflict(
            "the deadline has passed",
            code="deadline_passed",
            detail={"deadline": lot.deadline.isoformat()},
        )
    if length > limit or length == 0:
        raise TooLarge(
            f"a bid for this lot is 1 to {limit} bytes", detail={"max": limit, "length": length}
        )
    upload_id = uuid.uuid4().hex
    most = state.settings.max_open_uploads
    target = anyio.Path(upload_dir(request) / upload_id)
    await target.write_bytes(b"")
    made = False
    try:
        made = await state.tenders.create_upload(
            UploadRecord(upload_id, lot.id, who.subject, length, 0, "uploading", None, now), most
        )
    finally:
        if not made:
            await target.unlink(missing_ok=True)
    if not made:
        raise Conflict(
            f"you have {most} unfinished uploads on this lot: finish or cancel (DELETE) one",
            code="too_many_uploads",
            detail={"max": most},
        )
    location = f"/api/uploads/{upload_id}"
    return Response(status_code=201, headers={**HEADERS, "Location": location})


async def mine(request: Request, who: Identity) -> UploadRecord:
    upload: UploadRecord | None = await request.app.state.tenders.upload(
        request.path_params["upload"]
    )
    if upload is None or upload.owner != who.subject:
        raise NotFound("no such upload", code="upload_not_found")
    return upload


async def head(request: Request, who: Identity) -> Response:
    upload = await mine(request, who)
    headers = {
        **HEADERS,
        "Upload-Offset": str(upload.offset),
        "Upload-Length": str(upload.length),
        "Cache-Control": "no-store",
    }
    return Response(status_code=200, headers=headers)


async def status(request: Request, who: Identity) -> Response:
    upload = await mine(request, who)
    outcome = dict(upload.outcome or {})
    body = {
        "status": upload.status,
        "offset": upload.offset,
        "length": upload.length,
        "bid": outcome.get("bid"),
        "error": outcome.get("error"),
    }
    return JSONResponse(body, headers={**HEADERS, "Cache-Control": "no-store"})


def _completing() -> Conflict:
    return Conflict(
        "the upload is complete and being checked: ask with GET", code="upload_completing"
    )


async def delete(request: Request, who: Identity) -> Response:
    upload = await mine(request, who)
    if not await request.app.state.tenders.delete_upload(upload.id):
        again = await request.app.state.tenders.upload(upload.id)
        if again is not None and again.status == "completing":
            raise _completing()
        raise Conflict("the upload is finished", code="upload_finished")
    with contextlib.suppress(FileNotFoundError):
        await anyio.Path(upload_dir(request) / upload.id).unlink()
    return Response(status_code=204, headers=HEADERS)


async def patch(request: Request, who: Identity) -> Response:
    upload = await mine(request, who)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != OFFSET_TYPE:
        raise UploadRefused(f"send the bytes as {OFFSET_TYPE}", code="tus_media", status=415)
    if upload.status == "completing":
        raise _completing()
    if upload.status != "uploading":
        raise Conflict("the upload is finished", code="upload_finished")
    offset = _number(request, "upload-offset")
    if offset != upload.offset:
        raise Conflict(
            "Upload-Offset is not the server's: ask with HEAD",
            code="offset_mismatch",
            detail={"offset": upload.offset},
        )
    declared = request.headers.get("content-length", "")
    if NUMBER.fullmatch(declared) and offset + int(declared) > upload.length:
        raise TooLarge("more bytes than Upload-Length", detail={"length": upload.length})
    busy: set[str] = request.app.state.uploads_busy
    if upload.id in busy:
        raise Conflict("another request is writing this upload", code="upload_busy")
    busy.add(upload.id)
    try:
        return await _receive(request, who, upload)
    finally:
        busy.discard(upload.id)


async def _receive(request: Request, who: Identity, upload: UploadRecord) -> Response:
    path = upload_dir(request) / upload.id
    written, over = await _append(request, path, upload)
    if over:
        raise TooLarge("more bytes than Upload-Length", detail={"length": upload.length})
    state = request.app.state
    last = written == upload.length
    if not await state.tenders.advance(upload.id, upload.offset, written, last=last):
        again = await state.tenders.upload(upload.id)
        if again is not None and again.status == "completing":
            raise _completing()
        raise Conflict("the upload moved on meanwhile", code="offset_mismatch")
    headers = {**HEADERS, "Upload-Offset": str(written)}
    if last:  # this request moved it to ``completing``: it alone completes it
        await _complete(request, who, upload, path)
    return Response(status_code=204, headers=headers)


async def _append(request: Request, path: Path, upload: UploadRecord) -> tuple[int, bool]:
    """Write the request's bytes after ``upload.offset``; (the new offset, whether it was over
    Upload-Length). A client cut off keeps what arrived; bytes over the length are dropped."""
    position = upload.offset
    async with await anyio.open_file(path, "r+b") as target:
        await target.truncate(position)  # anything past the recorded offset never counted
        await target.seek(position)
        try:
            async for chunk in request.stream():
                if position + len(chunk) > upload.length:
                    await target.truncate(upload.offset)
                    return upload.offset, True
                await target.write(chunk)
                position += len(chunk)
        except ClientDisconnect:
            pass
        await target.flush()
    return position, False


async def _complete(request: Request, who: Identity, upload: UploadRecord, path: Path) -> None:
    """The last byte is in: check and time-stamp the envelope, keep it, record the bid."""
    state = request.app.state
    lot: LotRecord = await state.tenders.lot(upload.lot_id)
    address = request.client.host if request.client else None
    try:
        bid = await accept(state, lot, path, who.subject, address)
    except bids.BidRefused as exc:
        error = {"code": exc.code, "message": exc.message, "detail": dict(exc.detail)}
        await state.tenders.finish_upload(upload.id, "refused", {"error": error})
        await anyio.Path(path).unlink(missing_ok=True)
        raise
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            await _unstick(state, upload, path, exc)
        raise
    await state.tenders.finish_upload(upload.id, "accepted", {"bid": bid.public()})


async def _unstick(state: Any, upload: UploadRecord, path: Path, exc: BaseException) -> None:
    """A completion that failed unexpectedly (the TSA or the database unavailable, a crash
    of the check): back to ``uploading`` at full length while the bytes are still in
    var/uploads, so that an empty PATCH retries; ``failed`` once they have moved on (the blob
    store took them but the bid was not recorded): the bidder uploads again."""
    with contextlib.suppress(Exception):  # the database may be what failed: keep the cause
        if await anyio.Path(path).is_file():
            await state.tenders.retry_upload(upload.id)
        else:
            error = {
                "code": "upload_failed",
                "message": "the upload could not be completed: upload the bid again",
                "detail": {"cause": type(exc).__name__},
            }
            await state.tenders.finish_upload(upload.id, "failed", {"error": error})


def check_signed(lot: LotRecord) -> None:
    """``409 lot_key_unsigned`` until the tender's chair has signed the lot's key statement
    (docs/opening.md "The signed lot key"): nobody seals to a key its owner has not signed."""
    if not lot.key_signature:
        raise Conflict(
            "the lot's opening key is not signed by its tender's chair yet: no bid is taken",
            code="lot_key_unsigned",
            detail={"lot": lot.id},
        )


async def accept(
    state: Any, lot: LotRecord, path: Path, uploader: str, address: str | None
) -> BidRecord:
    """Receive the complete envelope at ``path`` for ``lot`` (bids.receive: trusted time,
    checks, audit), move it into the blob store and record it as the uploader's current bid.

    ``state`` holds settings, store, audit, timestamper, blobs and tenders (the app's state,
    or the demo's). BidRefused leaves nothing recorded but the refusal's audit entry.
    """
    check_signed(lot)
    size = (await anyio.Path(path).stat()).st_size
    with path.open("rb") as source:
        got = await bids.receive(
            state.store,
            state.audit,
            state.timestamper,
            TrustStore(state.settings.trust_root),
            bids.Lot(lot.id, lot.deadline, lot.opening_key),
            source,
            uploader,
            signer=uploader,
        )
    state.blobs.put(path, got["envelope_sha256"])
    recorded: BidRecord = await state.tenders.record_bid(_bid(lot, size, got, address))
    return recorded


def _bid(lot: LotRecord, size: int, got: dict[str, Any], address: str | None) -> BidRecord:
    return BidRecord(
        lot_id=lot.id,
        bidder=got["bidder"],
        name=got["name"],
        organisation=got["organisation"],
        version=0,
        envelope_sha256=got["envelope_sha256"],
        size=size,
        received_at=datetime.fromisoformat(got["received_at"]),
        status="current",
        receipt={k: got[k] for k in ("received_at", "envelope_sha256", "timestamp", "audit")},
        tsa_token=base64.b64decode(got["timestamp"]),
        uploader_address=address,
    )


async def sweep(state: Any, lot: LotRecord, now: datetime) -> int:
    """Once ``lot``'s deadline has passed (by ``now``), remove every bidder's unfinished
    uploads of it, rows and files; how many. The opening clock calls it; so does a POST of an
    upload to a closed lot. A ``completing`` upload is left to finish."""
    if now <= lot.deadline:
        return 0
    gone: list[str] = await state.tenders.sweep_uploads(lot.id)
    folder = _folder(state)
    for upload_id in gone:
        await anyio.Path(folder / upload_id).unlink(missing_ok=True)
    return len(gone)
