"""The sealed-bid envelope, version 1: docs/envelope.md is its specification.

    magic "BIDROOM\\0"  version u16 = 1
    preamble   u32 length + canonical JSON   (lot, bidder certificate, chunk size, nonce prefix,
                                              the data key wrapped to the bidder AND the lot)
    chunks     u8 kind (1 = chunk, 2 = final chunk) + u32 length + AES-256-GCM ciphertext
    trailer    u32 length + canonical JSON   (sizes, body digest, the bidder's signature)

Every chunk is AES-256-GCM under one random data key; its nonce is prefix(7) || counter(4) ||
final(1) and its associated data is SHA-256(preamble), so a dropped, repeated, reordered or
spliced chunk, a truncated body and a swapped preamble all fail. The trailer's signature (by the
bidder's certificate key) covers SHA-256(preamble) and the trailer's own fields, including the
SHA-256 of the exact chunk records: anyone can check an envelope's integrity and signer without
being able to read it (that is what the platform does at receipt).

The reader is strict: it takes exactly what a sealer following docs/envelope.md writes (full
chunks but the last, exactly the listed fields and values, canonical JSON and base64) and checks
in the document's one order, so two implementations give the same error code on the same bytes.

Sealing and opening stream in 1 MiB chunks: memory stays bounded whatever the bid's size. Opening
writes to a random ``<target>.<hex>.partial`` (0600) and renames only when everything, signature
included, verified; on any failure the partial file is removed: no plaintext is ever handed over
as if it were good.
Sealing into a file (:func:`replacing`) writes beside it and renames over it only once the
envelope is complete and on disk: an interrupted seal never replaces the envelope that was there.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import struct
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from cryptography import x509

from ca import hpke
from ca import primitives as p
from ca.errors import CryptoError, EnvelopeError, HpkeError, SignatureInvalid

MAGIC = b"BIDROOM\0"
VERSION = 1
CHUNK = 1 << 20
SUITE = "AES-256-GCM/STREAM-1MiB"
KEY_INFO = b"bidroom envelope v1"
SIGNED_PREFIX = b"bidroom envelope v1 signature\n"
PREFIX_LEN = 7
DATA_KEY = 32
KIND_CHUNK, KIND_FINAL = 1, 2
MAX_PREAMBLE = 1 << 20
MAX_CHUNKS = (1 << 32) - 1
SEARCH = 8  # how far a failed chunk's true position is looked for, to name the fault
Progress = Callable[[int], None]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    """Canonical base64 only (docs/envelope.md "Notation"): the standard alphabet, padding as
    needed, the unused bits of the last character zero. Anything else is one of the many other
    spellings of the same bytes, and is refused."""
    data = base64.b64decode(text, validate=True)
    if _b64(data) != text:
        raise ValueError("not canonical base64")
    return data


def canonical(value: Mapping[str, Any]) -> bytes:
    """UTF-8 JSON, keys sorted, no whitespace: one byte string per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_id(key: p.PublicKey) -> str:
    """A recipient's id: hex SHA-256 of its SubjectPublicKeyInfo."""
    return hashlib.sha256(p.public_der(key)).hexdigest()


def nonce(prefix: bytes, counter: int, final: bool) -> bytes:
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if final else b"\x00")


# the body digest, on a second core ---------------------------------------------------------


class _Digest:
    """SHA-256 over the body's records, computed by one worker thread in submission order.

    hashlib releases the GIL on large buffers, so hashing a chunk runs on the other core while
    this thread reads, encrypts or decrypts, and writes; SHA-256 is the slowest step of all.
    A buffer handed to ``update`` must not change until the returned future is done.
    """

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="envelope-digest")
        self._last: Future[None] | None = None

    def update(self, *parts: bytes | memoryview) -> Future[None]:
        self._last = self._pool.submit(self._feed, parts)
        return self._last

    def _feed(self, parts: tuple[bytes | memoryview, ...]) -> None:
        for part in parts:
            self._sha.update(part)

    def hexdigest(self) -> str:
        if self._last is not None:
            self._last.result()
        self._pool.shutdown()
        return self._sha.hexdigest()

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


class _Ring:
    """Two reusable buffers; taking one waits until its previous contents are hashed."""

    def __init__(self, size: int):
        self._buffers = [bytearray(size), bytearray(size)]
        self._pending: list[Future[None] | None] = [None, None]
        self._turn = 0

    def take(self) -> bytearray:
        self._turn ^= 1
        pending = self._pending[self._turn]
        if pending is not None:
            pending.result()
        return self._buffers[self._turn]

    def hold(self, pending: Future[None]) -> None:
        """The buffer last taken is in use until ``pending`` is done."""
        self._pending[self._turn] = pending


# recipients --------------------------------------------------------------------------------


def _binding(lot: str, bidder_cert: bytes, prefix: bytes) -> bytes:
    """What a wrapped key is bound to: moving it into another envelope fails to unwrap."""
    return canonical(
        {"lot": lot, "bidder": hashlib.sha256(bidder_cert).hexdigest(), "prefix": _b64(prefix)}
    )


def wrap(data_key: bytes, to: str, recipient: p.PublicKey, binding: bytes) -> dict[str, str]:
    if isinstance(recipient, p.EcPublicKey):
        enc, wrapped = hpke.seal(recipient, KEY_INFO, binding, data_key)
        return {
            "to": to,
            "alg": "hpke-p256-sha256-aes256gcm",
            "key": key_id(recipient),
            "enc": _b64(enc),
            "wrapped": _b64(wrapped),
        }
    wrapped = p.rsa_wrap(recipient, data_key + hashlib.sha256(binding).digest())
    return {
        "to": to,
        "alg": "rsa-oaep-sha256",
        "key": key_id(recipient),
        "enc": "",
        "wrapped": _b64(wrapped),
    }


def unwrap(entry: Mapping[str, str], key: p.PrivateKey, binding: bytes) -> bytes:
    try:
        if entry["alg"] == "hpke-p256-sha256-aes256gcm" and isinstance(key, p.EcPrivateKey):
            data_key = hpke.open_(
                _unb64(entry["enc"]), key, KEY_INFO, binding, _unb64(entry["wrapped"])
            )
            if len(data_key) == DATA_KEY:  # AES-256 only: a shorter key is not this format
                return data_key
        if entry["alg"] == "rsa-oaep-sha256" and isinstance(key, p.RsaPrivateKey):
            opened = p.rsa_unwrap(key, _unb64(entry["wrapped"]))
            if len(opened) == 2 * DATA_KEY and opened[32:] == hashlib.sha256(binding).digest():
                return opened[:DATA_KEY]
    except (CryptoError, ValueError) as exc:
        raise EnvelopeError(
            "the data key does not open with this key", code="envelope_wrong_recipient"
        ) from exc
    raise EnvelopeError("the data key does not open with this key", code="envelope_wrong_recipient")


# sealing -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sealer:
    """Who seals: the bidder's certificate (DER) and its private key (which never leaves)."""

    certificate: bytes
    key: p.PrivateKey


def seal(
    source: BinaryIO,
    target: BinaryIO,
    *,
    lot: str,
    sealer: Sealer,
    opening_key: p.EcPublicKey,
    client: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Seal ``source`` into ``target``; returns the trailer (sizes, digest, signature).

    A lot or client fields a reader would refuse (docs/envelope.md "Preamble") are refused here,
    before anything is written: the sealer writes only what the strict reader takes."""
    if not isinstance(lot, str) or lot == "":
        raise EnvelopeError("the lot is a non-empty string", code="envelope_header_field")
    if not _client(dict(client or {})):
        raise EnvelopeError(
            "client fields are [a-z][a-z0-9_]{0,31} names with string values",
            code="envelope_header_field",
        )
    data_key, prefix = os.urandom(32), os.urandom(PREFIX_LEN)
    binding = _binding(lot, sealer.certificate, prefix)
    bidder_public = _bidder_key(sealer.certificate)
    preamble = canonical(
        {
            "v": VERSION,
            "suite": SUITE,
            "lot": lot,
            "chunk_size": CHUNK,
            "bidder_cert": _b64(sealer.certificate),
            "nonce_prefix": _b64(prefix),
            "recipients": [
                wrap(data_key, "bidder", bidder_public, binding),
                wrap(data_key, "opening", opening_key, binding),
            ],
            "client": dict(client or {}),
        }
    )
    target.write(MAGIC + struct.pack(">HI", VERSION, len(preamble)) + preamble)
    aad = hashlib.sha256(preamble).digest()
    body = _Digest()
    try:
        size, count = _seal_body(source, target, p.Gcm(data_key), prefix, aad, body, progress)
        digest = body.hexdigest()
    finally:
        body.close()
    core = {"plaintext_size": size, "chunk_count": count, "body_digest": digest}
    trailer = {**core, "signature": _b64(p.sign(sealer.key, _signed(aad, core)))}
    encoded = canonical(trailer)
    target.write(struct.pack(">I", len(encoded)) + encoded)
    return trailer


@contextlib.contextmanager
def replacing(target: Path, *, private: bool = False) -> Iterator[BinaryIO]:
    """A new file that becomes ``target`` only once whole: written beside it under a temporary
    name, flushed to disk, then renamed over it; removed on any failure or interruption. A bidder
    resealing near the deadline keeps their good envelope if the new seal does not finish.

    The temporary name is random and created exclusively, never through a symbolic link (a name
    planted in a shared folder cannot redirect what is written); ``private`` makes it 0600
    whatever the umask (a bid's plaintext), else the umask applies (an envelope)."""
    partial = target.with_name(f"{target.name}.{secrets.token_hex(8)}.partial")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(partial, flags, 0o600 if private else 0o666)
    if private:
        os.fchmod(fd, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        partial.replace(target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise


def _seal_body(
    source: BinaryIO,
    target: BinaryIO,
    gcm: p.Gcm,
    prefix: bytes,
    aad: bytes,
    body: _Digest,
    progress: Progress | None,
) -> tuple[int, int]:
    """Encrypt chunk by chunk into reused buffers: memory stays at a few MiB."""
    current, following = bytearray(CHUNK), bytearray(CHUNK)
    ring = _Ring(CHUNK + p.GCM_TAG)
    size = count = 0
    length = _fill(source, current)
    while True:
        ahead = _fill(source, following) if length == CHUNK else 0
        final = ahead == 0
        out = memoryview(ring.take())[: length + p.GCM_TAG]
        gcm.seal_into(nonce(prefix, count, final), memoryview(current)[:length], aad, out)
        head = struct.pack(">BI", KIND_FINAL if final else KIND_CHUNK, len(out))
        ring.hold(body.update(head, out))
        target.write(head)
        target.write(out)
        size, count = size + length, count + 1
        if progress:
            progress(length)
        if final:
            return size, count
        current, following, length = following, current, ahead


def _fill(source: BinaryIO, buffer: bytearray) -> int:
    """Read until ``buffer`` is full or the source ends; the number of bytes read."""
    view, filled = memoryview(buffer), 0
    while filled < len(buffer):
        got = source.readinto(view[filled:])  # type: ignore[attr-defined]
        if not got:
            break
        filled += got
    return filled


def _signed(preamble_digest: bytes, core: Mapping[str, Any]) -> bytes:
    return SIGNED_PREFIX + preamble_digest + canonical(core)


def _spki(certificate: bytes) -> bytes:
    try:
        key = x509.load_der_x509_certificate(certificate).public_key()
        return p.public_der(key)  # type: ignore[arg-type]
    except ValueError as exc:
        raise EnvelopeError(
            "the bidder certificate cannot be read", code="envelope_header"
        ) from exc


# reading -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Header:
    """The preamble of an envelope, parsed; ``raw`` is its exact bytes."""

    raw: bytes
    lot: str
    bidder_cert: bytes
    prefix: bytes
    recipients: list[dict[str, str]]
    client: dict[str, str]

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.raw).digest()

    def binding(self) -> bytes:
        return _binding(self.lot, self.bidder_cert, self.prefix)


def _exactly(source: BinaryIO, count: int, what: str) -> bytes:
    data = source.read(count)
    if len(data) != count:
        raise EnvelopeError(f"the envelope ends inside its {what}", code="envelope_truncated")
    return data


def read_header(source: BinaryIO) -> Header:
    """The preamble, checked in the order docs/envelope.md "Order of checks" gives (so two
    implementations name the same fault on the same bytes)."""
    start = _exactly(source, len(MAGIC) + 6, "header")
    if start[: len(MAGIC)] != MAGIC:
        raise EnvelopeError("not a bidroom envelope", code="envelope_header")
    version, length = struct.unpack(">HI", start[len(MAGIC) :])
    if version != VERSION:
        raise EnvelopeError(f"envelope version {version} is not supported", code="envelope_version")
    if length > MAX_PREAMBLE:
        raise EnvelopeError("the envelope header is too large", code="envelope_header")
    raw = _exactly(source, length, "header")
    fields = _canonical_object(raw, "envelope_header", "the envelope header")
    _exact_fields(fields, PREAMBLE_FIELDS, "envelope_header_field", "preamble")
    _domain(_is_int(fields["v"], VERSION), "v")
    _domain(fields["suite"] == SUITE, "suite")
    _domain(_is_int(fields["chunk_size"], CHUNK), "chunk_size")
    lot = fields["lot"]
    _domain(isinstance(lot, str) and lot != "", "lot")
    client = fields["client"]
    _domain(_client(client), "client")
    certificate = _base64_field(fields["bidder_cert"], "bidder_cert")
    bidder_key = _bidder_key(certificate)
    prefix = _base64_field(fields["nonce_prefix"], "nonce_prefix")
    _domain(len(prefix) == PREFIX_LEN, "nonce_prefix")
    recipients = _recipients(fields["recipients"], bidder_key)
    return Header(raw, lot, certificate, prefix, recipients, client)


PREAMBLE_FIELDS = frozenset(
    {"v", "suite", "lot", "chunk_size", "bidder_cert", "nonce_prefix", "recipients", "client"}
)
TRAILER_FIELDS = frozenset({"plaintext_size", "chunk_count", "body_digest", "signature"})
RECIPIENT_FIELDS = frozenset({"to", "alg", "key", "enc", "wrapped"})
HPKE_ALG, RSA_ALG = "hpke-p256-sha256-aes256gcm", "rsa-oaep-sha256"
HPKE_ENC, HPKE_WRAPPED = 65, DATA_KEY + p.GCM_TAG
CLIENT_KEY = re.compile(r"[a-z][a-z0-9_]{0,31}")
HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
RSA_MAX_BITS, RSA_EXPONENT = 4096, 65537  # with p.RSA_MIN_BITS (2048): docs/envelope.md
SAFE_INT = (1 << 53) - 1  # what every JSON reader holds exactly (a double's integers)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_float(text: str) -> Any:
    raise ValueError("numbers are integers")


def _safe_int(text: str) -> int:
    value = int(text)
    if abs(value) > SAFE_INT:
        raise ValueError("an integer beyond 2^53 - 1")
    return value


def _canonical_object(raw: bytes, code: str, what: str) -> dict[str, Any]:
    """A JSON object whose bytes are exactly its canonical form (docs/envelope.md "Notation"):
    UTF-8, integers only (within 2^53 - 1), no NaN or Infinity, then byte-compared."""
    try:
        value = json.loads(
            raw.decode("utf-8"),
            parse_float=_no_float,
            parse_int=_safe_int,
            parse_constant=_no_constant,
        )
        if not isinstance(value, dict) or raw != canonical(value):
            raise ValueError("not canonical")
        return value
    except ValueError as exc:  # UnicodeError and JSONDecodeError are ValueErrors
        raise EnvelopeError(f"{what} is not canonical JSON", code=code) from exc


def _exact_fields(value: Mapping[str, Any], wanted: frozenset[str], code: str, what: str) -> None:
    if set(value) != wanted:
        missing, extra = sorted(wanted - set(value)), sorted(set(value) - wanted)
        raise EnvelopeError(
            f"the {what} must have exactly the fields {', '.join(sorted(wanted))}",
            code=code,
            detail={"missing": missing, "extra": extra},
        )


def _domain(ok: bool, field: str, code: str = "envelope_header_field") -> None:
    if not ok:
        raise EnvelopeError(
            f"the envelope's {field} is outside what the format allows",
            code=code,
            detail={"field": field},
        )


def _base64_field(value: Any, field: str, code: str = "envelope_header_field") -> bytes:
    _domain(isinstance(value, str), field, code)
    try:
        return _unb64(value)
    except ValueError as exc:
        raise EnvelopeError(
            f"the envelope's {field} is not canonical base64",
            code="envelope_base64",
            detail={"field": field},
        ) from exc


def _client(value: Any) -> bool:
    return isinstance(value, dict) and all(
        CLIENT_KEY.fullmatch(k) and isinstance(v, str) for k, v in value.items()
    )


def _bidder_key(certificate: bytes) -> p.PublicKey:
    try:
        key = x509.load_der_x509_certificate(certificate).public_key()
    except ValueError as exc:
        raise EnvelopeError(
            "the bidder certificate cannot be read", code="envelope_header"
        ) from exc
    refused = EnvelopeError(
        "the bidder certificate's key is not P-256, nor RSA of 2048 to 4096 bits with exponent "
        "65537",
        code="envelope_header_field",
        detail={"field": "bidder_cert"},
    )
    try:
        accepted = p.accept_public_key(key)
    except CryptoError as exc:
        raise refused from exc
    if isinstance(accepted, p.RsaPublicKey) and (
        accepted.key_size > RSA_MAX_BITS or accepted.public_numbers().e != RSA_EXPONENT
    ):
        raise refused
    return accepted


def _is_int(value: Any, expected: int) -> bool:
    """An integer equal to ``expected``; JSON's true and 1.0 are not (Python says True == 1)."""
    return type(value) is int and value == expected


def _recipients(entries: Any, bidder_key: p.PublicKey) -> list[dict[str, str]]:
    """Exactly the two entries a sealer writes: the bidder's (for the certificate's key), then
    the lot's opening key (P-256), each with exactly its five string fields, in their domains."""
    _domain(isinstance(entries, list) and len(entries) == 2, "recipients")
    bidder_alg = HPKE_ALG if isinstance(bidder_key, p.EcPublicKey) else RSA_ALG
    expected = (("bidder", bidder_alg), ("opening", HPKE_ALG))
    checked = []
    for at, (entry, (to, alg)) in enumerate(zip(entries, expected, strict=True)):
        name = f"recipients[{at}]"
        _domain(isinstance(entry, dict), name)
        _exact_fields(entry, RECIPIENT_FIELDS, "envelope_header_field", name)
        _domain(all(isinstance(v, str) for v in entry.values()), name)
        _domain(entry["to"] == to, f"{name}.to")
        _domain(entry["alg"] == alg, f"{name}.alg")
        _domain(HEX_DIGEST.fullmatch(entry["key"]) is not None, f"{name}.key")
        if at == 0 and entry["key"] != key_id(bidder_key):
            raise EnvelopeError(
                "the bidder's entry is not for the key of the bidder's certificate",
                code="envelope_bidder_key",
            )
        if alg == HPKE_ALG:
            enc = _base64_field(entry["enc"], f"{name}.enc")
            _domain(len(enc) == HPKE_ENC and enc[0] == 4, f"{name}.enc")
            wrapped = _base64_field(entry["wrapped"], f"{name}.wrapped")
            _domain(len(wrapped) == HPKE_WRAPPED, f"{name}.wrapped")
        else:
            _domain(entry["enc"] == "", f"{name}.enc")
            wrapped = _base64_field(entry["wrapped"], f"{name}.wrapped")
            size = (bidder_key.key_size + 7) // 8
            _domain(len(wrapped) == size, f"{name}.wrapped")
        checked.append(dict(entry))
    _domain(checked[0]["key"] != checked[1]["key"], "recipients[1].key")
    return checked


Record = tuple[bytes, memoryview, bool]


def _records(source: BinaryIO, ring: _Ring) -> Iterator[Record]:
    """(head, ciphertext, final) per chunk record, in order, stopping after the final one.

    The ciphertext is a view into a buffer of ``ring``: valid until that buffer is taken again.
    """
    for index in range(MAX_CHUNKS):
        buffer = ring.take()
        head = _exactly(source, 5, "body")
        kind, length = struct.unpack(">BI", head)
        if kind not in (KIND_CHUNK, KIND_FINAL) or not p.GCM_TAG <= length <= CHUNK + p.GCM_TAG:
            raise EnvelopeError("the body ends without its final chunk", code="envelope_truncated")
        # The sealer's chunking, enforced: every chunk but the last is full, and the last is
        # empty only when the whole plaintext is (one record). Else a sealer could cut a bid
        # into 1-byte chunks (22 times larger, far slower to open) or add an empty tail.
        if kind == KIND_CHUNK and length != CHUNK + p.GCM_TAG:
            raise EnvelopeError(
                f"chunk {index} is not final and shorter than the chunk size",
                code="envelope_chunk_short",
                detail={"chunk": index, "length": length},
            )
        if kind == KIND_FINAL and length == p.GCM_TAG and index > 0:
            raise EnvelopeError(
                f"the final chunk {index} is empty after data",
                code="envelope_chunk_empty",
                detail={"chunk": index},
            )
        yield head, _read_into(source, buffer, length), kind == KIND_FINAL
        if kind == KIND_FINAL:
            return


def _read_into(source: BinaryIO, buffer: bytearray, length: int) -> memoryview:
    view, filled = memoryview(buffer)[:length], 0
    while filled < length:
        got = source.readinto(view[filled:])  # type: ignore[attr-defined]
        if not got:
            raise EnvelopeError("the envelope ends inside its body", code="envelope_truncated")
        filled += got
    return view


def _trailer(source: BinaryIO) -> dict[str, Any]:
    (length,) = struct.unpack(">I", _exactly(source, 4, "trailer"))
    if length > 4096:
        raise EnvelopeError("the trailer is malformed", code="envelope_trailer")
    raw = _exactly(source, length, "trailer")
    if source.read(1):
        raise EnvelopeError("data follows the trailer", code="envelope_trailer")
    trailer = _canonical_object(raw, "envelope_trailer", "the trailer")
    _exact_fields(trailer, TRAILER_FIELDS, "envelope_trailer", "trailer")
    size, count, digest = trailer["plaintext_size"], trailer["chunk_count"], trailer["body_digest"]
    _domain(type(size) is int and size >= 0, "plaintext_size", "envelope_trailer")
    _domain(type(count) is int and count >= 1, "chunk_count", "envelope_trailer")
    _domain(
        isinstance(digest, str) and HEX_DIGEST.fullmatch(digest) is not None,
        "body_digest",
        "envelope_trailer",
    )
    _base64_field(trailer["signature"], "signature", "envelope_trailer")
    return trailer


def _check_trailer(
    header: Header, trailer: Mapping[str, Any], digest: str, size: int, count: int
) -> None:
    core = {k: trailer[k] for k in ("plaintext_size", "chunk_count", "body_digest")}
    sizes = _is_int(core["plaintext_size"], size) and _is_int(core["chunk_count"], count)
    if not sizes or core["body_digest"] != digest:
        raise EnvelopeError(
            "the body does not match the sealed sizes and digest", code="envelope_body_digest"
        )
    signer = p.load_public_der(_spki(header.bidder_cert))
    try:
        p.verify_signature(signer, _unb64(trailer["signature"]), _signed(header.digest, core))
    except (SignatureInvalid, ValueError) as exc:
        raise EnvelopeError(
            "the bidder's signature does not verify", code="envelope_signature"
        ) from exc


@dataclass(frozen=True, slots=True)
class Verified:
    """What an envelope proves without being opened."""

    header: Header
    plaintext_size: int
    chunk_count: int
    body_digest: str


def verify(source: BinaryIO) -> Verified:
    """Check structure, body digest and the bidder's signature, without any key.

    The certificate's path and revocation are the trust store's to check (ca.trust).
    """
    header = read_header(source)
    body, ring = _Digest(), _Ring(CHUNK + p.GCM_TAG)
    size = count = 0
    try:
        for head, ciphertext, _final in _records(source, ring):
            ring.hold(body.update(head, ciphertext))
            size += len(ciphertext) - p.GCM_TAG
            count += 1
        digest = body.hexdigest()
    finally:
        body.close()
    _check_trailer(header, _trailer(source), digest, size, count)
    return Verified(header, size, count, digest)


def open_to(
    source: BinaryIO, target: Path, key: p.PrivateKey, progress: Progress | None = None
) -> Verified:
    """Decrypt into ``target``: written as ``target.partial`` and renamed only if all verified."""
    header = read_header(source)
    data_key = unwrap(_recipient(header, key), key, header.binding())
    return _open_into(source, header, p.Gcm(data_key), target, progress)


def open_with_data_key(
    source: BinaryIO, target: Path, data_key: bytes, progress: Progress | None = None
) -> Verified:
    """Decrypt into ``target`` with a data key handed over at the opening (or recovered by the
    custodians' quorum); the same checks and the same partial-file rule as :func:`open_to`."""
    header = read_header(source)
    return _open_into(source, header, _gcm(data_key), target, progress, given=True)


def _open_into(
    source: BinaryIO,
    header: Header,
    gcm: p.Gcm,
    target: Path,
    progress: Progress | None,
    *,
    given: bool = False,
) -> Verified:
    """The body after ``header``, decrypted beside ``target`` (0600, :func:`replacing`) and
    renamed over it once all verified. ``given``: the data key was handed over, not unwrapped
    from the envelope's own entry (docs/envelope.md "Opening with a data key")."""
    with replacing(target, private=True) as out:
        size, count, digest = _open_body(source, out, gcm, header, progress, given=given)
        _check_trailer(header, _trailer(source), digest, size, count)
    return Verified(header, size, count, digest)


def check_data_key(source: BinaryIO, data_key: bytes) -> Header:
    """That ``data_key`` opens this envelope: its first chunk authenticates under it.

    Cheap (one chunk), so a wrong key handed over at the opening is refused at once. A record 0
    that does not open is named as :func:`check_opens` and :func:`open_with_data_key` name it
    (docs/envelope.md "Opening with a data key"): the same key gets the same code from all three.
    """
    header = read_header(source)
    gcm = _gcm(data_key)
    ring = _Ring(CHUNK + p.GCM_TAG)
    records = _records(source, ring)
    for _head, ciphertext, final in records:
        try:
            gcm.open(nonce(header.prefix, 0, final), bytes(ciphertext), header.digest)
        except CryptoError:
            raise _fault(gcm, header, 0, ciphertext, records, given=True) from None
        break
    return header


def check_opens(source: BinaryIO, data_key: bytes) -> Verified:
    """That ``data_key`` opens this envelope whole: every chunk, the trailer and the signature
    (the plaintext is discarded). What the custodians' open checks of the key the opening-key
    entry holds: a bidder who wrapped another data key there is found out (docs/opening.md)."""
    header = read_header(source)
    gcm = _gcm(data_key)
    with open(os.devnull, "wb") as discard:
        size, count, digest = _open_body(source, discard, gcm, header, None, given=True)
    _check_trailer(header, _trailer(source), digest, size, count)
    return Verified(header, size, count, digest)


def unwrap_with(header: Header, key: p.PrivateKey) -> bytes:
    """The data key, unwrapped from the recipient entry that ``key`` answers to."""
    return unwrap(_recipient(header, key), key, header.binding())


def _gcm(data_key: bytes) -> p.Gcm:
    if len(data_key) != DATA_KEY:
        raise EnvelopeError("a data key is 32 bytes", code="envelope_wrong_key")
    return p.Gcm(data_key)


def _recipient(header: Header, key: p.PrivateKey) -> dict[str, str]:
    wanted = key_id(key.public_key())
    for entry in header.recipients:
        if entry.get("key") == wanted:
            return entry
    raise EnvelopeError(
        "this key is not a recipient of the envelope", code="envelope_wrong_recipient"
    )


def _open_body(
    source: BinaryIO,
    out: BinaryIO,
    gcm: p.Gcm,
    header: Header,
    progress: Progress | None,
    *,
    given: bool = False,
) -> tuple[int, int, str]:
    body, ring = _Digest(), _Ring(CHUNK + p.GCM_TAG)
    try:
        return _decrypt_records(source, out, gcm, header, progress, body, ring, given)
    finally:
        body.close()


def _decrypt_records(
    source: BinaryIO,
    out: BinaryIO,
    gcm: p.Gcm,
    header: Header,
    progress: Progress | None,
    body: _Digest,
    ring: _Ring,
    given: bool,
) -> tuple[int, int, str]:
    plain = memoryview(bytearray(CHUNK))
    size = count = 0
    records = _records(source, ring)
    for head, ciphertext, final in records:
        ring.hold(body.update(head, ciphertext))
        opened = plain[: len(ciphertext) - p.GCM_TAG]
        try:
            gcm.open_into(nonce(header.prefix, count, final), ciphertext, header.digest, opened)
        except CryptoError:
            raise _fault(gcm, header, count, ciphertext, records, given=given) from None
        out.write(opened)
        size, count = size + len(opened), count + 1
        if progress:
            progress(len(opened))
    return size, count, body.hexdigest()


def _position(gcm: p.Gcm, header: Header, ciphertext: memoryview, near: int) -> int | None:
    """Where a chunk really belongs (it authenticates there), looking around ``near``."""
    for at in range(max(0, near - SEARCH), near + SEARCH + 1):
        for final in (False, True):
            with contextlib.suppress(CryptoError):
                gcm.open(nonce(header.prefix, at, final), bytes(ciphertext), header.digest)
                return at
    return None


def _peek(following: Iterator[Record]) -> Record | None:
    """The next record, if there is a well-formed one: a fault is named after the chunk that
    failed, never after a later record's own defect (docs/envelope.md "Order of checks")."""
    try:
        return next(following, None)
    except EnvelopeError:
        return None


def _fault(
    gcm: p.Gcm,
    header: Header,
    expected: int,
    ciphertext: memoryview,
    following: Iterator[Record],
    *,
    given: bool = False,
) -> EnvelopeError:
    """Name what happened to the chunk that failed at position ``expected``.

    ``given``: the data key was handed over (or recovered by the quorum from an entry that may
    wrap another key), not unwrapped from the envelope's own entry. Then a record 0 that opens
    at no nearby position says the key is not this envelope's: ``envelope_wrong_key``, never a
    swapped preamble or an altered chunk (docs/envelope.md "Opening with a data key")."""
    found = _position(gcm, header, ciphertext, expected)
    detail = {"chunk": expected, "found": found}
    if found is None and expected == 0 and given:
        return EnvelopeError(
            "the data key does not open this envelope", code="envelope_wrong_key", detail=detail
        )
    if found is None:
        nxt = _peek(following) if expected == 0 else None
        if nxt is not None and _position(gcm, header, nxt[1], 1) is None:
            return EnvelopeError(
                "the body was not sealed under this header (swapped header)",
                code="envelope_header_mismatch",
                detail=detail,
            )
        return EnvelopeError(
            f"chunk {expected} was altered or comes from another bid",
            code="envelope_chunk_altered",
            detail=detail,
        )
    if found < expected:
        return EnvelopeError(
            f"chunk {found} appears again at {expected}",
            code="envelope_chunk_repeated",
            detail=detail,
        )
    if found == expected:
        return EnvelopeError(
            f"chunk {expected} claims the wrong end of the body",
            code="envelope_chunk_final",
            detail=detail,
        )
    nxt = _peek(following)
    if nxt is not None and _position(gcm, header, nxt[1], expected) == expected:
        return EnvelopeError(
            f"chunks {expected} and {found} are out of order",
            code="envelope_chunk_reordered",
            detail=detail,
        )
    return EnvelopeError(
        f"chunk {expected} is missing", code="envelope_chunk_dropped", detail=detail
    )


__all__ = [
    "HpkeError",
    "Sealer",
    "Verified",
    "check_data_key",
    "check_opens",
    "open_to",
    "open_with_data_key",
    "read_header",
    "replacing",
    "seal",
    "unwrap_with",
    "verify",
]
