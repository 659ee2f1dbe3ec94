"""Receiving a sealed bid (收标): trusted time decides the deadline, and every outcome is recorded.

    1. The envelope's bytes are hashed and the hash is time-stamped (RFC 3161): the token's
       genTime is the receipt time, not the server's clock.
    2. Received after the lot's deadline: refused, and the refusal is an audit entry.
    3. Otherwise the envelope is checked without opening it (ca.receipt.check_bid: intact, for
       this lot, signed by a certificate valid and unrevoked at the receipt time); a refusal is
       recorded too.
    4. Accepted: a ``bid.received`` entry, integrated at once, and a receipt the bidder keeps:
       the audit receipt (entry, inclusion proof, signed timestamped checkpoint) and the token
       over the envelope itself.

The upload protocol (tus) and the lot's records are the opening's (issue 5); this is the step
every upload ends with.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

from bidroom import audit, receipts
from bidroom.audit_log import AuditLog
from bidroom.errors import BidroomError
from bidroom.store import Store
from ca import receipt, tsa
from ca.errors import CryptoError
from ca.trust import TrustStore

CHUNK = 1 << 20


class BidRefused(BidroomError):
    code = "bid_refused"


@dataclass(frozen=True, slots=True)
class Lot:
    id: str
    deadline: datetime  # UTC; equal to the opening time


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
) -> dict[str, Any]:
    """Accept a sealed bid for ``lot`` or raise BidRefused; either way the log records it."""
    digest = _digest(source)
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
        accepted = receipt.check_bid(source, lot.id, trust, at)
    except CryptoError as exc:
        await _refuse(store, at, uploader, lot, objects, exc.code, exc.message)
    bidder = f"cert:{accepted.holder.fingerprint}"
    [row] = await store.record([audit.Entry(at, bidder, "bid.received", lot.id, None, objects)])
    await log.integrate()
    index = await log.index_of(row)
    return {
        "received_at": at.isoformat(),
        "envelope_sha256": digest.hex(),
        "timestamp": base64.b64encode(stamp.token).decode(),
        "audit": await receipts.make(log, index),
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
