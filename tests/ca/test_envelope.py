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
from cryptography.hazmat.primitives.asymmetric import rsa
from envelopes import forge, split

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
    assert codes["trailer"] in (
        "envelope_trailer",
        "envelope_base64",
        "envelope_signature",
        "envelope_body_digest",
    )


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
    ("bend", "code"),
    [
        ({"v": True}, "envelope_header_field"),
        ({"chunk_size": 1048576.0}, "envelope_header"),  # numbers are integers
        ({"lot": 7}, "envelope_header_field"),
        ({"nonce_prefix": envelope._b64(b"12345678")}, "envelope_header_field"),
        ({"client": {"device": 1}}, "envelope_header_field"),
    ],
)
def test_a_header_that_bends_the_types_is_refused(
    bend: dict, code: str, bidder: envelope.Sealer, opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    head, records, trailer = split(sealed(b"bid", bidder, opening))
    fields = {**json.loads(head[14:]), **bend}
    preamble = envelope.canonical(fields)
    bent = head[:10] + struct.pack(">I", len(preamble)) + preamble + b"".join(records) + trailer
    assert refused(bent, bidder.key, tmp_path) == code


def test_the_published_envelope_vector_opens(tmp_path: Path) -> None:
    vector = json.loads((VECTORS / "envelope-v1-p256.json").read_text())
    data = base64.b64decode(vector["envelope"])
    plain = bytes((7 * i + 3) % 251 for i in range(vector["plaintext_size"]))
    proof = envelope.verify(io.BytesIO(data))
    assert (proof.header.lot, proof.body_digest) == (vector["lot"], vector["body_digest"])
    for name in ("bidder_key_pkcs8", "opening_key_pkcs8"):
        key = p.load_private_key(base64.b64decode(vector[name]))
        assert open_bytes(data, key, tmp_path) == plain


# the reader enforces the sealer's rules, exactly (docs/envelope.md) ----------------------


def codes(data: bytes, key: p.PrivateKey, tmp_path: Path) -> tuple[str, str]:
    """(the code verifying without a key gives, the code opening gives)."""
    with pytest.raises(EnvelopeError) as caught:
        envelope.verify(io.BytesIO(data))
    fresh = tmp_path / "refused"
    fresh.mkdir(exist_ok=True)
    return caught.value.code, refused(data, key, fresh)


def bad_padding(text: str) -> str:
    """The same bytes in non-canonical base64: an unused bit of the last character set."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    assert text.endswith("=")
    at = len(text.rstrip("=")) - 1
    bent = text[:at] + alphabet[alphabet.index(text[at]) | 1] + text[at + 1 :]
    assert bent != text and base64.b64decode(bent) == base64.b64decode(text)
    return bent


def recipient(index: int, **changes: str):  # type: ignore[no-untyped-def]
    def bend(fields: dict) -> dict:
        entries = [dict(e) for e in fields["recipients"]]
        entries[index].update(changes)
        return {**fields, "recipients": entries}

    return bend


def test_a_hand_sealed_envelope_that_follows_the_rules_opens(
    bidder: envelope.Sealer, opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    """The forging helper itself makes good envelopes: each refusal below is its one bent rule."""
    plain = os.urandom(MiB), os.urandom(100)
    data = forge(bidder, opening.public_key(), list(plain))
    assert open_bytes(data, bidder.key, tmp_path) == b"".join(plain)
    assert open_bytes(data, opening, tmp_path) == b"".join(plain)


def test_a_body_in_one_byte_chunks_is_refused(
    bidder: envelope.Sealer, opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    """A sealer cutting a bid into 1-byte chunks makes it 22 times larger and slow to open."""
    data = forge(bidder, opening.public_key(), [bytes([b]) for b in b"a short bid"])
    assert codes(data, bidder.key, tmp_path) == ("envelope_chunk_short",) * 2


def test_a_short_chunk_before_full_ones_is_refused(
    bidder: envelope.Sealer, opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    data = forge(bidder, opening.public_key(), [b"x" * (MiB - 1), b"y" * MiB, b"z"])
    assert codes(data, opening, tmp_path) == ("envelope_chunk_short",) * 2


def test_an_empty_final_chunk_after_data_is_refused(
    bidder: envelope.Sealer, opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    data = forge(bidder, opening.public_key(), [os.urandom(MiB), b""])
    assert codes(data, bidder.key, tmp_path) == ("envelope_chunk_empty",) * 2
    # the empty plaintext is one final, empty chunk: that one is right
    assert open_bytes(forge(bidder, opening.public_key(), [b""]), opening, tmp_path) == b""


@pytest.mark.parametrize(
    ("bend", "code"),
    [
        (lambda f: {**f, "note": "x"}, "envelope_header_field"),
        (lambda f: {k: v for k, v in f.items() if k != "client"}, "envelope_header_field"),
        (lambda f: {**f, "lot": ""}, "envelope_header_field"),
        (lambda f: {**f, "client": {"Device": "x"}}, "envelope_header_field"),
        (lambda f: {**f, "client": {"设备": "x"}}, "envelope_header_field"),
        (recipient(1, to="custodians"), "envelope_header_field"),
        (recipient(0, to="opening"), "envelope_header_field"),
        (recipient(1, alg="rsa-oaep-sha256"), "envelope_header_field"),
        (recipient(1, alg="hpke-p256-sha256-chacha20poly1305"), "envelope_header_field"),
        (recipient(1, note="x"), "envelope_header_field"),
        (
            lambda f: {**f, "recipients": [*f["recipients"], f["recipients"][1]]},
            ("envelope_header_field"),
        ),
        (lambda f: {**f, "recipients": f["recipients"][:1]}, "envelope_header_field"),
        (lambda f: recipient(1, key=f["recipients"][0]["key"])(f), "envelope_header_field"),
        (
            lambda f: recipient(0, key=f["recipients"][0]["key"].upper())(f),
            ("envelope_header_field"),
        ),
        (
            lambda f: recipient(1, key=f["recipients"][1]["key"].upper())(f),
            ("envelope_header_field"),
        ),
        (lambda f: recipient(0, key=f["recipients"][1]["key"])(f), "envelope_bidder_key"),
        (lambda f: {**f, "nonce_prefix": f["nonce_prefix"] + "\n"}, "envelope_base64"),
        (
            lambda f: recipient(1, enc=bad_padding(f["recipients"][1]["enc"]))(f),
            ("envelope_base64"),
        ),
        (
            lambda f: recipient(1, enc=f["recipients"][1]["enc"].rstrip("="))(f),
            ("envelope_base64"),
        ),
        (
            lambda f: {**f, "bidder_cert": f["bidder_cert"][:8] + "\\r\\n" + f["bidder_cert"][8:]},
            ("envelope_base64"),
        ),
    ],
)
def test_a_preamble_outside_the_rules_is_refused(
    bend: object, code: str, bidder: envelope.Sealer, opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    """Signed by the bidder as it is, yet refused: extra or missing fields, values outside the
    listed ones, an upper-case key id (verify took it, open then could not find its entry),
    two entries for one key, non-canonical base64."""
    data = forge(bidder, opening.public_key(), [b"bid"], preamble=bend)  # type: ignore[arg-type]
    assert codes(data, opening, tmp_path) == (code, code)


def test_padding_bits_in_the_nonce_prefix_are_refused(
    bidder: envelope.Sealer, opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    bend = lambda f: {**f, "nonce_prefix": bad_padding(f["nonce_prefix"])}  # noqa: E731
    data = forge(bidder, opening.public_key(), [b"bid"], preamble=bend)
    assert codes(data, bidder.key, tmp_path) == ("envelope_base64",) * 2


@pytest.mark.parametrize(
    ("bend", "code"),
    [
        (lambda t: {**t, "note": "x"}, "envelope_trailer"),
        (lambda t: {k: v for k, v in t.items() if k != "chunk_count"}, "envelope_trailer"),
        (lambda t: {**t, "body_digest": t["body_digest"].upper()}, "envelope_trailer"),
        (lambda t: {**t, "signature": bad_padding(t["signature"])}, "envelope_base64"),
    ],
)
def test_a_trailer_outside_the_rules_is_refused(
    bend: object, code: str, bidder: envelope.Sealer, opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    data = forge(bidder, opening.public_key(), [b"bid"], trailer=bend)  # type: ignore[arg-type]
    assert codes(data, bidder.key, tmp_path) == (code, code)


def test_the_rsa_bidder_entry_pads_nothing(
    rsa_bidder: envelope.Sealer, opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    """An RSA bidder's entry has ``enc`` "" and a wrapped key as long as the modulus."""
    data = forge(rsa_bidder, opening.public_key(), [b"bid"], preamble=recipient(0, enc="AA=="))
    assert codes(data, rsa_bidder.key, tmp_path) == ("envelope_header_field",) * 2
    assert open_bytes(forge(rsa_bidder, opening.public_key(), [b"bid"]), rsa_bidder.key, tmp_path)


def escaping(**options: object):  # type: ignore[no-untyped-def]
    def encode(fields: dict) -> bytes:
        return json.dumps(fields, sort_keys=True, separators=(",", ":"), **options).encode()

    return encode


@pytest.mark.parametrize(
    "lot",
    ["R&D <1>/2", "招标 ZJ-2026", "tab\there", "nul\u0000", 'quote" back\\', "\u2028\u007f", "😀"],
)
def test_the_escaping_rules_are_the_documented_ones(
    lot: str, bidder: envelope.Sealer, opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    """What the doc states: only ", \\ and controls are escaped (\\b \\f \\n \\r \\t, else
    \\u00xx lower-case); everything else, & < > / U+2028 non-ASCII included, is itself."""
    data = forge(bidder, opening.public_key(), [b"bid"], lot=lot, preamble=lambda f: f)
    assert envelope.verify(io.BytesIO(data)).header.lot == lot
    assert open_bytes(data, opening, tmp_path) == b"bid"
    ascii_only = forge(
        bidder, opening.public_key(), [b"bid"], lot=lot, encode=escaping(ensure_ascii=True)
    )
    if lot.isascii():
        assert envelope.verify(io.BytesIO(ascii_only)).header.lot == lot
    else:  # \\u escapes of non-ASCII are another spelling: refused
        assert codes(ascii_only, opening, tmp_path) == ("envelope_header",) * 2


def test_an_html_safe_escape_is_another_spelling(
    bidder: envelope.Sealer, opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    """A sealer escaping & as \\u0026 (Go's json.Marshal does) writes non-canonical JSON."""

    def go_style(fields: dict) -> bytes:
        return envelope.canonical(fields).replace(b"&", b"\\u0026")

    data = forge(bidder, opening.public_key(), [b"bid"], lot="R&D", encode=go_style)
    assert codes(data, opening, tmp_path) == ("envelope_header",) * 2


@pytest.mark.parametrize(
    "spell",
    [
        lambda raw: raw.replace(b'"v":1', b'"v":1.0'),
        lambda raw: raw.replace(b'"v":1', b'"v":1e0'),
        lambda raw: raw.replace(b'{"bidder_cert"', b'{"v":1,"bidder_cert"', 1),
        lambda raw: raw.replace(b'"v":1', b'"v": 1'),
        lambda raw: b"\xef\xbb\xbf" + raw,
    ],
)
def test_another_spelling_of_the_preamble_is_refused(
    spell: object, bidder: envelope.Sealer, opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    """Numbers with a fraction or exponent, a duplicate key, whitespace, a BOM."""
    encode = lambda f: spell(envelope.canonical(f))  # type: ignore[operator]  # noqa: E731
    data = forge(bidder, opening.public_key(), [b"bid"], encode=encode)
    assert codes(data, opening, tmp_path) == ("envelope_header",) * 2


def test_a_fault_is_named_after_the_failed_chunk_not_a_later_record(
    bidder: envelope.Sealer, opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    """The look-ahead that names a chunk's fault ignores a malformed later record."""
    mine = split(sealed(os.urandom(2 * MiB + 5), bidder, opening))
    other = split(sealed(os.urandom(2 * MiB + 5), bidder, opening))
    spliced = mine[0] + mine[1][0] + other[1][1] + b"\x07" + mine[1][2] + mine[2]
    assert refused(spliced, bidder.key, tmp_path) == "envelope_chunk_altered"


@pytest.mark.parametrize("size", [0, 5, MiB, 2 * MiB, 2 * MiB + 1])
def test_our_sealer_writes_what_the_strict_reader_takes(
    size: int,
    bidder: envelope.Sealer,
    rsa_bidder: envelope.Sealer,
    opening: p.EcPrivateKey,
    tmp_path: Path,
) -> None:
    for who in (bidder, rsa_bidder):
        data = sealed(os.urandom(size), who, opening, lot="R&D <标段>/1")
        assert envelope.verify(io.BytesIO(data)).chunk_count == max(1, -(-size // MiB))
        assert len(open_bytes(data, who.key, tmp_path)) == size


def test_the_published_rsa_envelope_vector_opens(tmp_path: Path) -> None:
    """An RSA bidder's envelope with its fixed keys and intermediate values (docs/envelope.md)."""
    vector = json.loads((VECTORS / "envelope-v1-rsa.json").read_text())
    data = base64.b64decode(vector["envelope"])
    plain = bytes((7 * i + 3) % 251 for i in range(vector["plaintext_size"]))
    proof = envelope.verify(io.BytesIO(data))
    assert (proof.header.lot, proof.body_digest) == (vector["lot"], vector["body_digest"])
    assert proof.chunk_count == vector["chunk_count"] == 2
    assert hashlib.sha256(proof.header.raw).hexdigest() == vector["preamble_sha256"]
    assert proof.header.binding().decode() == vector["binding"]
    bidder = p.load_private_key(base64.b64decode(vector["bidder_key_pkcs8"]))
    opening = p.load_private_key(base64.b64decode(vector["opening_key_pkcs8"]))
    assert isinstance(bidder, p.RsaPrivateKey) and isinstance(opening, p.EcPrivateKey)
    assert [e["key"] for e in proof.header.recipients] == [
        vector["bidder_key_id"],
        vector["opening_key_id"],
    ]
    assert [e["alg"] for e in proof.header.recipients] == [
        "rsa-oaep-sha256",
        "hpke-p256-sha256-aes256gcm",
    ]
    for key in (bidder, opening):
        assert envelope.unwrap_with(proof.header, key).hex() == vector["data_key"]
        assert open_bytes(data, key, tmp_path) == plain


@pytest.mark.parametrize(
    ("lot", "client"), [("", {}), (LOT, {"Device": "x"}), (LOT, {"device": 1})]
)
def test_the_sealer_refuses_what_the_reader_would(
    lot: str, client: dict, bidder: envelope.Sealer, opening: p.EcPrivateKey
) -> None:
    out = io.BytesIO()
    with pytest.raises(EnvelopeError) as caught:
        envelope.seal(
            io.BytesIO(b"bid"),
            out,
            lot=lot,
            sealer=bidder,
            opening_key=opening.public_key(),
            client=client,
        )
    assert caught.value.code == "envelope_header_field" and out.getvalue() == b""


@pytest.mark.parametrize("size", [5, MiB + 1, 2 * MiB + 12345])
def test_a_data_key_that_is_not_the_envelopes_is_a_wrong_key_at_every_size(
    size: int, bidder: envelope.Sealer, opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    """An opening-key entry that wraps another data key (what the custodians' quorum meets),
    or any data key handed over that is not this envelope's: every data-key path names it
    ``envelope_wrong_key``, for a one-chunk bid and for a real bid of several chunks alike;
    never a swapped preamble (which would read as the platform's tampering) nor an altered
    chunk. The envelope's own key still opens it."""
    plain = os.urandom(size)
    only_mine = forge(
        bidder,
        opening.public_key(),
        [plain[i : i + MiB] for i in range(0, size, MiB)],
        opening_data_key=os.urandom(32),
    )
    assert open_bytes(only_mine, bidder.key, tmp_path) == plain, "its bidder can open it"
    header = envelope.read_header(io.BytesIO(only_mine))
    entered = envelope.unwrap_with(header, opening)  # the key the opening entry holds
    target = tmp_path / "bid.zip"
    with pytest.raises(EnvelopeError) as whole:
        envelope.check_opens(io.BytesIO(only_mine), entered)
    with pytest.raises(EnvelopeError) as first:
        envelope.check_data_key(io.BytesIO(only_mine), entered)
    with pytest.raises(EnvelopeError) as opened:
        envelope.open_with_data_key(io.BytesIO(only_mine), target, entered)
    assert whole.value.code == first.value.code == opened.value.code == "envelope_wrong_key"
    assert whole.value.detail == {"chunk": 0, "found": None}
    assert not target.exists() and not list(tmp_path.glob("bid.zip*.partial"))
    own = envelope.unwrap_with(header, bidder.key)
    envelope.check_data_key(io.BytesIO(only_mine), own)
    assert envelope.check_opens(io.BytesIO(only_mine), own).plaintext_size == size


def test_a_right_data_key_on_a_damaged_body_names_the_chunk(
    bidder: envelope.Sealer, opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    """A data key that opens record 0 is the envelope's: a later chunk's fault keeps its name."""
    data = sealed(os.urandom(2 * MiB + 3), bidder, opening)
    data_key = envelope.unwrap_with(envelope.read_header(io.BytesIO(data)), opening)
    head, records, trailer = split(data)
    altered = bytearray(records[1])
    altered[100] ^= 1
    with pytest.raises(EnvelopeError) as caught:
        envelope.check_opens(
            io.BytesIO(head + records[0] + bytes(altered) + records[2] + trailer), data_key
        )
    assert caught.value.code == "envelope_chunk_altered"
    assert caught.value.detail == {"chunk": 1, "found": None}


def test_an_enc_point_off_the_curve_passes_the_header_and_fails_at_unwrap(
    bidder: envelope.Sealer, opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    """The header checks ``enc``'s length and 0x04 prefix only; that the point is on P-256 is
    HPKE's check at unwrap: ``envelope_wrong_recipient`` for the key that unwraps it."""
    off_curve = envelope._b64(b"\x04" + bytes(64))
    data = forge(bidder, opening.public_key(), [b"bid"], preamble=recipient(1, enc=off_curve))
    envelope.verify(io.BytesIO(data))
    assert refused(data, opening, tmp_path) == "envelope_wrong_recipient"
    assert open_bytes(data, bidder.key, tmp_path) == b"bid", "the bidder's entry still opens"


@pytest.fixture(scope="module")
def odd_rsa_bidders() -> list[envelope.Sealer]:
    """RSA keys the format refuses: exponent 3, and 4104 bits (over 4096)."""
    small_e = rsa.generate_private_key(public_exponent=3, key_size=2048)
    large = p.generate_rsa_key(4104)
    return [envelope.Sealer(certificate(k, "某某公司"), k) for k in (small_e, large)]


def test_rsa_bidder_keys_are_2048_to_4096_bits_with_exponent_65537(
    odd_rsa_bidders: list[envelope.Sealer], opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    """A reader refuses them (``envelope_header_field`` on ``bidder_cert``), and our sealer
    refuses to write them, before anything is written."""
    for sealer in odd_rsa_bidders:
        data = forge(sealer, opening.public_key(), [b"bid"])
        with pytest.raises(EnvelopeError) as caught:
            envelope.verify(io.BytesIO(data))
        assert (caught.value.code, caught.value.detail) == (
            "envelope_header_field",
            {"field": "bidder_cert"},
        )
        out = io.BytesIO()
        with pytest.raises(EnvelopeError) as sealing:
            envelope.seal(
                io.BytesIO(b"bid"), out, lot=LOT, sealer=sealer, opening_key=opening.public_key()
            )
        assert sealing.value.code == "envelope_header_field" and out.getvalue() == b""


def test_a_certificate_with_bytes_after_it_is_not_der(
    bidder: envelope.Sealer, opening: p.EcPrivateKey
) -> None:
    """The certificate is one strict-DER Certificate and nothing after it."""
    data = forge(
        bidder,
        opening.public_key(),
        [b"bid"],
        preamble=lambda f: {**f, "bidder_cert": envelope._b64(bidder.certificate + b"\0")},
    )
    with pytest.raises(EnvelopeError) as caught:
        envelope.verify(io.BytesIO(data))
    assert caught.value.code == "envelope_header"


@pytest.mark.parametrize("start", [b"", b"NOTANENV", b"BIDROOM\0\0\1\0\0\0", b"X" * 13])
def test_fewer_than_14_bytes_are_truncated_whatever_they_hold(start: bytes) -> None:
    with pytest.raises(EnvelopeError) as caught:
        envelope.verify(io.BytesIO(start))
    assert caught.value.code == "envelope_truncated"
    with pytest.raises(EnvelopeError) as magic:
        envelope.verify(io.BytesIO(b"X" * 14))
    assert magic.value.code == "envelope_header"


def test_a_field_missing_and_another_extra_lists_both(
    bidder: envelope.Sealer, opening: p.EcPrivateKey
) -> None:
    """``detail`` is ``{"missing": [...], "extra": [...]}``, each sorted; no ``field``."""

    def bend(fields: dict) -> dict:
        bent = {k: v for k, v in fields.items() if k != "client"}
        entries = [dict(e) for e in fields["recipients"]]
        entries[1]["note"] = "x"
        return {**bent, "zz": 1, "aa": 2, "recipients": entries}

    data = forge(bidder, opening.public_key(), [b"bid"], preamble=bend)
    with pytest.raises(EnvelopeError) as caught:
        envelope.verify(io.BytesIO(data))
    assert caught.value.code == "envelope_header_field"
    assert caught.value.detail == {"missing": ["client"], "extra": ["aa", "zz"]}
    entry = forge(bidder, opening.public_key(), [b"bid"], preamble=recipient(1, note="x"))
    with pytest.raises(EnvelopeError) as caught:
        envelope.verify(io.BytesIO(entry))
    assert caught.value.detail == {"missing": [], "extra": ["note"]}


def test_an_escaped_lone_surrogate_is_not_canonical(
    bidder: envelope.Sealer, opening: p.EcPrivateKey
) -> None:
    def encode(fields: dict) -> bytes:
        return envelope.canonical({**fields, "lot": "LOT@"}).replace(b"LOT@", b"\\ud800")

    data = forge(bidder, opening.public_key(), [b"bid"], encode=encode)
    with pytest.raises(EnvelopeError) as caught:
        envelope.verify(io.BytesIO(data))
    assert caught.value.code == "envelope_header"


def test_a_high_s_signature_is_another_valid_envelope_of_the_same_bid(
    bidder: envelope.Sealer, opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    """Documented, not refused (docs/envelope.md "Trailer"): replacing ECDSA's ``s`` by
    ``n - s`` gives a second file, with another SHA-256, that verifies and opens to the same
    bid under the same signed preamble and core."""
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    data = sealed(os.urandom(100), bidder, opening)
    head, records, trailer_record = split(data)
    trailer = json.loads(trailer_record[4:])
    signature = base64.b64decode(trailer["signature"])
    s = int.from_bytes(signature[32:], "big")
    trailer["signature"] = envelope._b64(signature[:32] + (n - s).to_bytes(32, "big"))
    encoded = envelope.canonical(trailer)
    other = head + b"".join(records) + struct.pack(">I", len(encoded)) + encoded
    assert hashlib.sha256(other).digest() != hashlib.sha256(data).digest()
    first, second = envelope.verify(io.BytesIO(data)), envelope.verify(io.BytesIO(other))
    assert (first.header.digest, first.body_digest) == (second.header.digest, second.body_digest)
    assert open_bytes(other, opening, tmp_path) == open_bytes(data, opening, tmp_path)
