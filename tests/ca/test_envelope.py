"""The sealed-bid envelope: round trips, streaming, and every kind of tampering named."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import struct
import tracemalloc
from pathlib import Path

import pytest
from certs import certificate
from envelopes import split

from ca import envelope
from ca import primitives as p
from ca.errors import EnvelopeError

MiB = 1 << 20
VECTORS = Path(__file__).parent.parent / "vectors"
LOT = "ZJ-ZS-2026-0417/1"


@pytest.fixture(scope="module")
def bidder() -> envelope.Sealer:
    key = p.generate_ec_key()
    return envelope.Sealer(certificate(key, "六横海洁环境服务有限公司"), key)


@pytest.fixture(scope="module")
def rsa_bidder() -> envelope.Sealer:
    key = p.generate_rsa_key()
    return envelope.Sealer(certificate(key, "东港城市服务集团有限公司"), key)


@pytest.fixture(scope="module")
def opening() -> p.EcPrivateKey:
    return p.generate_ec_key()


def sealed(plain: bytes, sealer: envelope.Sealer, opening: p.EcPrivateKey, lot: str = LOT) -> bytes:
    out = io.BytesIO()
    envelope.seal(
        io.BytesIO(plain),
        out,
        lot=lot,
        sealer=sealer,
        opening_key=opening.public_key(),
        client={"device": "test-device"},
    )
    return out.getvalue()


def open_bytes(data: bytes, key: p.PrivateKey, tmp_path: Path) -> bytes:
    target = tmp_path / "bid.pdf"
    envelope.open_to(io.BytesIO(data), target, key)
    return target.read_bytes()


def refused(data: bytes, key: p.PrivateKey, tmp_path: Path) -> str:
    target = tmp_path / "bid.pdf"
    with pytest.raises(EnvelopeError) as caught:
        envelope.open_to(io.BytesIO(data), target, key)
    assert not target.exists(), "no plaintext is handed over when anything fails"
    assert not list(tmp_path.glob("*.partial")), "the partial output is removed"
    return caught.value.code


@pytest.mark.parametrize("size", [0, 1, MiB - 1, MiB, MiB + 1, 3 * MiB + 12345])
def test_both_the_bidder_and_the_opening_key_open_it(
    size: int, bidder: envelope.Sealer, opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    plain = os.urandom(size)
    data = sealed(plain, bidder, opening)
    assert open_bytes(data, bidder.key, tmp_path) == plain
    assert open_bytes(data, opening, tmp_path) == plain
    proof = envelope.verify(io.BytesIO(data))
    assert (proof.plaintext_size, proof.chunk_count) == (size, max(1, -(-size // MiB)))
    assert proof.header.lot == LOT and proof.header.client == {"device": "test-device"}


def test_an_rsa_bidder_seals_and_opens_too(
    rsa_bidder: envelope.Sealer, opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    plain = os.urandom(MiB + 7)
    data = sealed(plain, rsa_bidder, opening)
    assert open_bytes(data, rsa_bidder.key, tmp_path) == plain
    assert open_bytes(data, opening, tmp_path) == plain


def test_the_same_bid_sealed_twice_shares_nothing(
    bidder: envelope.Sealer, opening: p.EcPrivateKey
) -> None:
    plain = b"price: 1,234,000.00" * 100
    one, two = sealed(plain, bidder, opening), sealed(plain, bidder, opening)
    assert split(one)[1] != split(two)[1]
    assert plain not in one


def test_a_flipped_bit_anywhere_is_caught(
    bidder: envelope.Sealer, opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    data = sealed(os.urandom(2 * MiB + 100), bidder, opening)
    head = split(data)[0]
    places = {"header": len(head) // 2, "body": len(head) + MiB, "trailer": len(data) - 20}
    codes = {}
    for where, at in places.items():
        bent = bytearray(data)
        bent[at] ^= 0x10
        codes[where] = refused(bytes(bent), bidder.key, tmp_path)
    assert codes["body"] == "envelope_chunk_altered"
    assert codes["header"].startswith("envelope_")
    assert codes["trailer"] in ("envelope_trailer", "envelope_signature", "envelope_body_digest")


def test_a_truncated_body_is_caught(
    bidder: envelope.Sealer, opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    data = sealed(os.urandom(2 * MiB + 100), bidder, opening)
    head, records, _ = split(data)
    assert refused(head + records[0] + records[1][:1000], bidder.key, tmp_path) == (
        "envelope_truncated"
    )
    assert refused(head + records[0], bidder.key, tmp_path) == "envelope_truncated"


@pytest.mark.parametrize(
    ("arrange", "code"),
    [
        (lambda r: [r[0], r[2], r[3]], "envelope_chunk_dropped"),
        (lambda r: [r[0], r[1], r[1], r[2], r[3]], "envelope_chunk_repeated"),
        (lambda r: [r[0], r[2], r[1], r[3]], "envelope_chunk_reordered"),
        (lambda r: [r[0], r[1], r[2]], "envelope_truncated"),
    ],
)
def test_dropped_repeated_and_reordered_chunks_are_named(
    arrange: object,
    code: str,
    bidder: envelope.Sealer,
    opening: p.EcPrivateKey,
    tmp_path: Path,
) -> None:
    data = sealed(os.urandom(3 * MiB + 100), bidder, opening)
    head, records, trailer = split(data)
    moved = head + b"".join(arrange(records)) + trailer  # type: ignore[operator]
    assert refused(moved, bidder.key, tmp_path) == code


def test_a_chunk_from_another_bid_is_caught(
    bidder: envelope.Sealer, opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    mine = split(sealed(os.urandom(2 * MiB + 5), bidder, opening))
    other = split(sealed(os.urandom(2 * MiB + 5), bidder, opening))
    spliced = mine[0] + mine[1][0] + other[1][1] + mine[1][2] + mine[2]
    assert refused(spliced, bidder.key, tmp_path) == "envelope_chunk_altered"


def test_a_swapped_header_is_caught(
    bidder: envelope.Sealer, opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    mine = split(sealed(os.urandom(MiB + 5), bidder, opening))
    other = split(sealed(os.urandom(MiB + 5), bidder, opening))
    swapped = other[0] + b"".join(mine[1]) + mine[2]
    assert refused(swapped, bidder.key, tmp_path) == "envelope_header_mismatch"


def test_someone_else_cannot_open_it(
    bidder: envelope.Sealer,
    rsa_bidder: envelope.Sealer,
    opening: p.EcPrivateKey,
    tmp_path: Path,
) -> None:
    data = sealed(b"bid", bidder, opening)
    assert refused(data, rsa_bidder.key, tmp_path) == "envelope_wrong_recipient"
    assert refused(data, p.generate_ec_key(), tmp_path) == "envelope_wrong_recipient"


def test_a_signature_by_another_certificate_is_caught(
    bidder: envelope.Sealer, opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    data = sealed(b"bid", bidder, opening)
    head, records, trailer = split(data)
    fields = json.loads(trailer[4:])
    core = {k: fields[k] for k in ("plaintext_size", "chunk_count", "body_digest")}
    forger = p.generate_ec_key()
    digest = hashlib.sha256(head[14:]).digest()
    fields["signature"] = envelope._b64(p.sign(forger, envelope._signed(digest, core)))
    forged = envelope.canonical(fields)
    tampered = head + b"".join(records) + struct.pack(">I", len(forged)) + forged
    assert refused(tampered, bidder.key, tmp_path) == "envelope_signature"
    with pytest.raises(EnvelopeError) as caught:
        envelope.verify(io.BytesIO(tampered))
    assert caught.value.code == "envelope_signature"


def test_sealing_and_opening_use_bounded_memory(
    bidder: envelope.Sealer, opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    source = tmp_path / "big.bin"
    with source.open("wb") as out:
        for _ in range(24):
            out.write(os.urandom(MiB))
    target = tmp_path / "big.env"
    tracemalloc.start()
    with source.open("rb") as src, target.open("wb") as dst:
        envelope.seal(src, dst, lot=LOT, sealer=bidder, opening_key=opening.public_key())
    with target.open("rb") as src:
        envelope.open_to(src, tmp_path / "back.bin", opening)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB for a 24 MiB bid"
    assert (tmp_path / "back.bin").read_bytes() == source.read_bytes()


@pytest.mark.parametrize(
    "bend",
    [
        {"v": True},
        {"chunk_size": 1048576.0},
        {"lot": 7},
        {"nonce_prefix": envelope._b64(b"12345678")},
        {"client": {"device": 1}},
    ],
)
def test_a_header_that_bends_the_types_is_refused(
    bend: dict, bidder: envelope.Sealer, opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    head, records, trailer = split(sealed(b"bid", bidder, opening))
    fields = {**json.loads(head[14:]), **bend}
    preamble = envelope.canonical(fields)
    bent = head[:10] + struct.pack(">I", len(preamble)) + preamble + b"".join(records) + trailer
    assert refused(bent, bidder.key, tmp_path) == "envelope_header"


def test_the_published_envelope_vector_opens(tmp_path: Path) -> None:
    vector = json.loads((VECTORS / "envelope-v1-p256.json").read_text())
    data = base64.b64decode(vector["envelope"])
    plain = bytes((7 * i + 3) % 251 for i in range(vector["plaintext_size"]))
    proof = envelope.verify(io.BytesIO(data))
    assert (proof.header.lot, proof.body_digest) == (vector["lot"], vector["body_digest"])
    for name in ("bidder_key_pkcs8", "opening_key_pkcs8"):
        key = p.load_private_key(base64.b64decode(vector[name]))
        assert open_bytes(data, key, tmp_path) == plain
