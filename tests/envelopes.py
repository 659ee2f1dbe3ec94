"""Taking a sealed envelope apart, for the tests that tamper with one (docs/envelope.md)."""

from __future__ import annotations

import struct

from ca import envelope


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
