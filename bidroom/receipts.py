"""Audit receipts: what a bidder keeps to prove, later and offline, what the platform recorded.

    {"format": "bidroom-receipt", "version": 2,
     "entry": "<canonical encoding, with its salt>", "index": i, "leaf": hex,
     "checkpoint": "<signed note>", "verifier_key": "<C2SP verifier key>",
     "inclusion": [base64 hashes], "timestamp": base64 DER RFC 3161 token over the note}

A receipt discloses its entry and the entry's salt: it is for the entry's subject (the actor it
names), the chair and supervisors, or a record published anyway (docs/audit.md "Who sees what").
Version 2 (made now) may hold a version-1 or version-2 entry; version 1 (made before salts)
holds a version-1 entry, and still checks. Checking one needs the log's verifier key (published
by the platform) and the TSA's root; it raises an AuditError or TimestampError naming what does
not hold.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from bidroom import audit
from bidroom.audit_log import AuditLog
from ca import checkpoint, merkle, tsa
from ca.errors import AuditError

FORMAT = "bidroom-receipt"
VERSION = 2
VERSIONS = (1, 2)  # what check reads


@dataclass(frozen=True, slots=True)
class Proven:
    entry: audit.Entry
    size: int
    time: Any  # the TSA's genTime (datetime), or None when the receipt has no token


async def make(log: AuditLog, index: int) -> dict[str, Any]:
    """The receipt of entry ``index`` against the latest checkpoint that covers it."""
    latest = await log.latest()
    if index < 0:
        raise AuditError("an entry's index is a whole number from 0", code="invalid_args")
    if latest is None or index >= latest.size:
        raise AuditError(
            "the entry is not in a signed checkpoint yet; try again shortly",
            code="audit_not_yet",
            detail={"index": index},
        )
    signer = await log.signer_of(latest)
    if signer is None:
        raise AuditError(
            "the latest checkpoint is signed by none of this log's keys",
            code="audit_key_continuity",
            detail={"verifier_key": str(log.verifier)},
        )
    [(found, encoding, leaf)] = await log.entries(index, index + 1)
    proof = await log.inclusion(index, latest.size)
    return {
        "format": FORMAT,
        "version": VERSION,
        "index": found,
        "entry": encoding.decode(),
        "leaf": leaf.hex(),
        "checkpoint": latest.note,
        "verifier_key": str(signer),
        "inclusion": [base64.b64encode(h).decode() for h in proof],
        "timestamp": base64.b64encode(latest.timestamp).decode() if latest.timestamp else None,
    }


def check(
    receipt: dict[str, Any], verifier_key: str, tsa_roots: Sequence[x509.Certificate] | None = None
) -> Proven:
    """Verify a receipt offline against the log's published key (and the TSA's roots)."""
    if receipt.get("format") != FORMAT or receipt.get("version") not in VERSIONS:
        raise AuditError("not a version-1 or version-2 bidroom receipt", code="audit_receipt")
    if receipt.get("verifier_key") != verifier_key:
        raise AuditError("the receipt is for another log", code="audit_note_unknown_key")
    cp = checkpoint.parse_and_verify(receipt["checkpoint"], verifier_key)
    encoding = str(receipt["entry"]).encode()
    try:
        entry = audit.decode(encoding)
    except audit.EntryMalformed as exc:
        raise AuditError(
            "the receipt's entry was altered",
            code="audit_entry_altered",
            detail={"index": receipt.get("index")},
        ) from exc
    leaf = merkle.leaf_hash(encoding)
    if entry.index != receipt["index"] or leaf.hex() != receipt["leaf"]:
        raise AuditError(
            "the receipt's entry was altered",
            code="audit_entry_altered",
            detail={"index": receipt.get("index")},
        )
    path = [base64.b64decode(h) for h in receipt["inclusion"]]
    merkle.verify_inclusion(leaf, receipt["index"], cp.size, path, cp.root)
    when = None
    if tsa_roots is not None:
        if not receipt.get("timestamp"):
            raise AuditError(
                "the receipt has no timestamp: nothing proves when its checkpoint was signed",
                code="audit_timestamp",
            )
        token = base64.b64decode(receipt["timestamp"])
        when = tsa.verify_token(token, receipt["checkpoint"].encode(), list(tsa_roots)).gen_time
    return Proven(entry, cp.size, when)
