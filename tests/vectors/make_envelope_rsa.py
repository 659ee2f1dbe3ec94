"""Writes envelope-v1-rsa.json: an envelope sealed once by ca/envelope.py for an RSA bidder.

Run once (``.venv/bin/python tests/vectors/make_envelope_rsa.py`` from the repository root);
the file is then fixed: every implementation must verify it, open it with either key, and
find the intermediate values it lists (key ids, binding, data key). Sealing is randomised (the
data key, the nonce prefix, HPKE's ephemeral key, OAEP's seed), so running it again writes
another, equally valid vector.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from certs import certificate

from ca import envelope
from ca import primitives as p

LOT = "浙ZS-2026-0417/1 <R&D>"
SIZE = (1 << 20) + 1000  # two chunks, the last one short


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def pkcs8(key: p.PrivateKey) -> str:
    return b64(
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def main() -> None:
    bidder, opening = p.generate_rsa_key(2048), p.generate_ec_key()
    cert = certificate(bidder, "东港城市服务集团有限公司")
    plain = bytes((7 * i + 3) % 251 for i in range(SIZE))
    out = io.BytesIO()
    trailer = envelope.seal(
        io.BytesIO(plain),
        out,
        lot=LOT,
        sealer=envelope.Sealer(cert, bidder),
        opening_key=opening.public_key(),
        client={"name": "bidroom vector", "version": "1"},
    )
    data = out.getvalue()
    header = envelope.read_header(io.BytesIO(data))
    vector = {
        "note": (
            "A bidroom envelope v1 (docs/envelope.md) sealed once by the Python implementation "
            "for an RSA-2048 bidder (RSA-OAEP entry, RSASSA-PSS signature) and a P-256 opening "
            "key; every implementation must verify it and open it with either key. The lot "
            "holds non-ASCII and & < > (written as themselves in canonical JSON). "
            "plaintext[i] = (7*i + 3) mod 251 for i < plaintext_size."
        ),
        "lot": LOT,
        "plaintext_size": SIZE,
        "chunk_count": trailer["chunk_count"],
        "body_digest": trailer["body_digest"],
        "bidder_key_pkcs8": pkcs8(bidder),
        "bidder_cert": b64(cert),
        "bidder_key_id": envelope.key_id(bidder.public_key()),
        "opening_key_pkcs8": pkcs8(opening),
        "opening_key_id": envelope.key_id(opening.public_key()),
        "binding": header.binding().decode(),
        "data_key": envelope.unwrap_with(header, bidder).hex(),
        "preamble_sha256": hashlib.sha256(header.raw).hexdigest(),
        "envelope": b64(data),
    }
    target = Path(__file__).with_name("envelope-v1-rsa.json")
    target.write_text(json.dumps(vector, ensure_ascii=False, indent=2) + "\n")


if __name__ == "__main__":
    main()
