"""Receiving a sealed bid (收标): trusted time decides the deadline, and every outcome is recorded.

    1. The envelope's bytes are hashed and the hash is time-stamped (RFC 3161): the token's
       genTime is the receipt time, not the server's clock.
    2. Received after the lot's deadline: refused, and the refusal is an audit entry.
    3. Otherwise the envelope is checked without opening it (ca.receipt.check_bid: intact, for
       this lot, signed by a certificate valid and unrevoked at the receipt time); a refusal is
       recorded too.
    4. The bidder is the registry subject of the sealing certificate's holder (uscc:… or
       cert:…); when the upload names who must have sealed it (the uploader's session subject),
       any other signer is refused (``signer_mismatch``).
    5. Accepted: a ``bid.received`` entry, integrated at once, and a receipt the bidder keeps:
       the audit receipt (entry, inclusion proof, signed timestamped checkpoint) and the token
       over the envelope itself.

The upload protocol (tus) and the bid records are bidroom.uploads and bidroom.tender_store;
this is the step every upload ends with.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

from bidroom import audit, receipts
from bidroom.audit_log import AuditLog
from bidroom.errors import BidroomError
from bidroom.store import Store
from ca import login, receipt, tsa
from ca import primitives as p
from ca.errors import CryptoError
from ca.trust import TrustStore

CHUNK = 1 << 20


class BidRefused(BidroomError):
    code = "bid_refused"


@dataclass(frozen=True, slots=True)
class Lot:
    id: str
    deadline: datetime  # UTC; equal to the opening time
    opening_key: bytes | None = None  # SubjectPublicKeyInfo (DER): bids must be wrapped to it


def _digest(source: BinaryIO) -> bytes:
    sha = hashlib.sha256()
    source.seek(0)
    while block := source.read(CHUNK):
        sha.update(block)
    source.seek(0)
    return sha.digest()


async def receive(
    store: Store,
    log: AuditLog,
    stamper: tsa.Timestamper,
    trust: TrustStore,
    lot: Lot,
    source: BinaryIO,
    uploader: str,
    *,
    signer: str | None = None,
) -> dict[str, Any]:
    """Accept a sealed bid for ``lot`` or raise BidRefused; either way the log records it.

    ``signer``: the registry subject who must have sealed it (None: whoever did)."""
    # Hashing and checking read the whole envelope: off the event loop, so that a 200 MiB bid
    # completing does not stall every room this node serves.
    digest = await asyncio.to_thread(_digest, source)
    stamp = await stamper.stamp(tsa.Digest("sha256", digest))
    at = stamp.info.gen_time
    objects = {"envelope": digest.hex(), "timestamp": hashlib.sha256(stamp.token).hexdigest()}
    if at > lot.deadline:
        await _refuse(
            store,
            at,
            uploader,
            lot,
            objects,
            "bid_late",
            f"received at {at.isoformat()}, after the deadline {lot.deadline.isoformat()}",
        )
    try:
        opening_key = p.load_public_der(lot.opening_key) if lot.opening_key else None
        accepted = await asyncio.to_thread(
            receipt.check_bid, source, lot.id, trust, at, None, opening_key
        )
    except CryptoError as exc:
        await _refuse(store, at, uploader, lot, objects, exc.code, exc.message)
    holder = accepted.holder
    known = await store.roles_of(login.holder_keys(holder))
    bidder = known[0] if known else f"cert:{holder.fingerprint}"
    if signer is not None and bidder != signer:
        await _refuse(
            store,
            at,
            uploader,
            lot,
            objects,
            "signer_mismatch",
            "the bid is sealed by another holder than the one uploading it",
        )
    [row] = await store.record([audit.Entry(at, bidder, "bid.received", lot.id, None, objects)])
    await log.integrate()
    index = await log.index_of(row)
    return {
        "received_at": at.isoformat(),
        "envelope_sha256": digest.hex(),
        "timestamp": base64.b64encode(stamp.token).decode(),
        "audit": await receipts.make(log, index),
        "bidder": bidder,
        "name": holder.organisation or holder.name,
        "organisation": holder.organisation,
    }


async def _refuse(
    store: Store,
    at: datetime,
    uploader: str,
    lot: Lot,
    objects: dict[str, str],
    code: str,
    message: str,
) -> None:
    await store.record([audit.Entry(at, uploader, f"bid.refused.{code}", lot.id, None, objects)])
    raise BidRefused(message, code=code, detail={"lot": lot.id, "received_at": at.isoformat()})
