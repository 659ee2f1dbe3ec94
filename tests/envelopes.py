"""Taking a sealed envelope apart, for the tests that tamper with one (docs/envelope.md)."""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable
from typing import Any

from ca import envelope
from ca import primitives as p


def split(data: bytes) -> tuple[bytes, list[bytes], bytes]:
    """(magic + preamble, chunk records, trailer) of an envelope."""
    (length,) = struct.unpack(">I", data[10:14])
    head_end = 14 + length
    records, at = [], head_end
    while True:
        kind, size = struct.unpack(">BI", data[at : at + 5])
        records.append(data[at : at + 5 + size])
        at += 5 + size
        if kind == envelope.KIND_FINAL:
            return data[:head_end], records, data[at:]


def forge(
    sealer: envelope.Sealer,
    opening_key: p.EcPublicKey,
    chunks: list[bytes],
    *,
    lot: str = "ZJ-ZS-2026-0417/1",
    preamble: Callable[[dict[str, Any]], dict[str, Any]] = lambda fields: fields,
    trailer: Callable[[dict[str, Any]], dict[str, Any]] = lambda fields: fields,
    encode: Callable[[dict[str, Any]], bytes] = envelope.canonical,
    opening_data_key: bytes | None = None,
) -> bytes:
    """An envelope sealed by hand, as a sealer that does not follow the rules would: the chunks
    as given (any sizes), the preamble and trailer fields bent by ``preamble`` and ``trailer``
    and written by ``encode``, the opening-key entry wrapping ``opening_data_key`` if given; and
    signed by ``sealer`` over whatever came out, so only the bent rule is wrong."""
    data_key, prefix = os.urandom(32), os.urandom(envelope.PREFIX_LEN)
    binding = envelope._binding(lot, sealer.certificate, prefix)
    bidder_public = p.load_public_der(envelope._spki(sealer.certificate))
    fields = {
        "v": envelope.VERSION,
        "suite": envelope.SUITE,
        "lot": lot,
        "chunk_size": envelope.CHUNK,
        "bidder_cert": envelope._b64(sealer.certificate),
        "nonce_prefix": envelope._b64(prefix),
        "recipients": [
            envelope.wrap(data_key, "bidder", bidder_public, binding),
            envelope.wrap(opening_data_key or data_key, "opening", opening_key, binding),
        ],
        "client": {"device": "forge"},
    }
    raw = encode(preamble(fields))
    aad = hashlib.sha256(raw).digest()
    body = b""
    for at, chunk in enumerate(chunks):
        final = at == len(chunks) - 1
        sealed = p.Gcm(data_key).seal(envelope.nonce(prefix, at, final), chunk, aad)
        kind = envelope.KIND_FINAL if final else envelope.KIND_CHUNK
        body += struct.pack(">BI", kind, len(sealed)) + sealed
    core = {
        "plaintext_size": sum(len(c) for c in chunks),
        "chunk_count": len(chunks),
        "body_digest": hashlib.sha256(body).hexdigest(),
    }
    signature = envelope._b64(p.sign(sealer.key, envelope._signed(aad, core)))
    tail = encode(trailer({**core, "signature": signature}))
    head = envelope.MAGIC + struct.pack(">HI", envelope.VERSION, len(raw)) + raw
    return head + body + struct.pack(">I", len(tail)) + tail
