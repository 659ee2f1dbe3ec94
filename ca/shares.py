"""The lot's opening key split k-of-n among custodians (开标密钥分片保管): bidder OR quorum.

A lot's opening key is a P-256 key pair; the data key of every sealed bid is also wrapped to its
public key (HPKE). Its private key (the 32-byte scalar) is split k-of-n among named custodians
from different organisations (agency, supervisor, notary, platform operator ...). The platform
keeps only the public key and one commitment per share; reconstruction needs k shares that match
their commitments, happens in memory only, and ends with a check against the public key.

Choice: SLIP-0039 through ``shamir-mnemonic``, Trezor's reference implementation (MIT). It is
Shamir over GF(2^8) byte by byte, takes 16- to 32-byte secrets (pycryptodome's Shamir takes 16
only), adds a digest share that catches a wrong combination, a RS1024 checksum on every share
that catches a mistyped word, and it comes with published test vectors (tests/vectors/
slip39-vectors.json, from trezor/python-shamir-mnemonic). A share is a standard SLIP-39 mnemonic
of the scalar (one group, k-of-n, empty passphrase, iteration exponent 0, not extendable), so
custodians can hold it as 33 words on paper and a quorum could recover the key with any SLIP-39
tool if the platform were gone. No field arithmetic is written here. The random polynomial
coefficients come from the library (``secrets.token_bytes``); tests do not need to pin them.

Share index i runs 1..n (SLIP-39 member index i - 1); 2 <= k <= n <= 16.

Commitment (what the audit log stores): SHA-256 over

    b"bidroom share commitment v1"
    || LP(lot id, UTF-8) || LP(key fingerprint) || LP(custodian, UTF-8)
    || u8 index || u8 k || u8 n || LP(share mnemonic, UTF-8)

with LP(x) = 4-byte big-endian length || x, and key fingerprint = SHA-256 of the public key's
uncompressed SEC1 point (65 bytes). A share carries 256 bits of entropy, so the hash hides it.

Share file, format version 1 (a custodian's copy, protected by the custodian's certificate): one
UTF-8 JSON object

    {"format": "bidroom-key-share", "version": 1,
     "lot_id": str, "key_fingerprint": hex, "custodian": str, "index": int, "k": int, "n": int,
     "recipient": hex SHA-256 of the custodian's SubjectPublicKeyInfo (DER),
     "scheme": "hpke-p256-sha256-aes256gcm" | "rsa-oaep-sha256-aes256gcm",
     "enc": b64 (HPKE only) | "wrapped_key": b64, "nonce": b64 (RSA only),
     "ciphertext": b64}

The plaintext is the share mnemonic. The associated data is the header: the fields from
"format" to "scheme", as JSON with sorted keys, no spaces, non-ASCII kept (UTF-8). For a P-256
custodian key: HPKE base mode (ca.hpke, DHKEM-P256/HKDF-SHA256/AES-256-GCM) with info =
b"bidroom share v1" + lot id. For an RSA key: a fresh AES-256-GCM key wrapped with RSA-OAEP-
SHA256, a fresh 12-byte nonce. Opening needs the custodian's private key.

Error codes (ShareError): share_split, share_commitments, share_other_lot, share_other_key,
share_duplicate, share_uncommitted, share_commitment_mismatch, share_too_few, share_malformed,
share_key_mismatch, share_file, share_file_recipient, share_file_open.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import shamir_mnemonic
from cryptography import x509

from ca import hpke
from ca import primitives as p
from ca.errors import CryptoError, ShareError

MAX_SHARES = 16  # SLIP-39's limit on members of a group
FILE_FORMAT = "bidroom-key-share"
FILE_VERSION = 1
SCHEME_HPKE = "hpke-p256-sha256-aes256gcm"
SCHEME_RSA = "rsa-oaep-sha256-aes256gcm"
_COMMITMENT_TAG = b"bidroom share commitment v1"
_HPKE_INFO = b"bidroom share v1"
_HEADER_FIELDS = (
    "format",
    "version",
    "lot_id",
    "key_fingerprint",
    "custodian",
    "index",
    "k",
    "n",
    "recipient",
    "scheme",
)


@dataclass(frozen=True, slots=True)
class Share:
    """One custodian's share of one lot's opening key. The mnemonic is the secret part."""

    lot_id: str
    key_fingerprint: bytes
    custodian: str
    index: int
    k: int
    n: int
    mnemonic: str = field(repr=False)

    def to_file(self, recipient: x509.Certificate | p.PublicKey) -> bytes:
        """The share encrypted to the custodian's certificate (or public key), format v1."""
        return export_share(self, recipient)

    @staticmethod
    def from_file(data: bytes, key: p.PrivateKey) -> Share:
        """The share in a file written by ``to_file``, opened with the custodian's key."""
        return import_share(data, key)

    def to_plain(self) -> dict[str, Any]:
        """The opened share as JSON-ready fields (the custodian keeps it offline)."""
        return {
            "lot_id": self.lot_id,
            "key_fingerprint": self.key_fingerprint.hex(),
            "custodian": self.custodian,
            "index": self.index,
            "k": self.k,
            "n": self.n,
            "mnemonic": self.mnemonic,
        }

    @staticmethod
    def from_plain(doc: Mapping[str, Any]) -> Share:
        try:
            return Share(
                str(doc["lot_id"]),
                bytes.fromhex(doc["key_fingerprint"]),
                str(doc["custodian"]),
                int(doc["index"]),
                int(doc["k"]),
                int(doc["n"]),
                str(doc["mnemonic"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ShareError("not an opened share", code="share_file") from exc


@dataclass(frozen=True, slots=True)
class Commitment:
    """What the platform keeps of a share: who holds which index, and a hash of it."""

    lot_id: str
    key_fingerprint: bytes
    custodian: str
    index: int
    k: int
    n: int
    digest: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "lot_id": self.lot_id,
            "key_fingerprint": self.key_fingerprint.hex(),
            "custodian": self.custodian,
            "index": self.index,
            "k": self.k,
            "n": self.n,
            "digest": self.digest.hex(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Commitment:
        try:
            return cls(
                lot_id=str(data["lot_id"]),
                key_fingerprint=bytes.fromhex(data["key_fingerprint"]),
                custodian=str(data["custodian"]),
                index=int(data["index"]),
                k=int(data["k"]),
                n=int(data["n"]),
                digest=bytes.fromhex(data["digest"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ShareError(f"not a share commitment: {exc}", code="share_commitments") from exc


# split and commit --------------------------------------------------------------------------


def key_fingerprint(public_key: p.EcPublicKey) -> bytes:
    """SHA-256 of the uncompressed SEC1 point: names the opening key in shares and commitments."""
    return hashlib.sha256(p.ec_point(public_key)).digest()


def _lp(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def commitment_digest(share: Share) -> bytes:
    """SHA-256 over the canonical encoding in the module docstring."""
    encoded = (
        _COMMITMENT_TAG
        + _lp(share.lot_id.encode())
        + _lp(share.key_fingerprint)
        + _lp(share.custodian.encode())
        + bytes([share.index, share.k, share.n])
        + _lp(share.mnemonic.encode())
    )
    return hashlib.sha256(encoded).digest()


def commit(share: Share) -> Commitment:
    return Commitment(
        share.lot_id,
        share.key_fingerprint,
        share.custodian,
        share.index,
        share.k,
        share.n,
        commitment_digest(share),
    )


def _check_split(k: int, n: int, custodians: Sequence[str], lot_id: str) -> None:
    problem = None
    if not 2 <= k <= n <= MAX_SHARES:
        problem = f"need 2 <= k <= n <= {MAX_SHARES}, got k={k}, n={n}"
    elif len(custodians) != n:
        problem = f"{n} shares need {n} custodians, got {len(custodians)}"
    elif len(set(custodians)) != n or not all(custodians):
        problem = "custodian names must be distinct and not empty"
    elif not lot_id:
        problem = "the lot id is empty"
    if problem:
        raise ShareError(f"cannot split the opening key: {problem}", code="share_split")


def _as_key(secret: bytes | p.EcPrivateKey) -> p.EcPrivateKey:
    if isinstance(secret, bytes):
        if len(secret) != 32:
            raise ShareError("a P-256 scalar is 32 bytes", code="share_split")
        return p.ec_key_from_scalar(int.from_bytes(secret, "big"))
    return secret


def split(
    secret: bytes | p.EcPrivateKey, k: int, n: int, custodians: Sequence[str], lot_id: str
) -> tuple[list[Share], list[Commitment]]:
    """Split the opening key k-of-n: share i goes to ``custodians[i - 1]``.

    Give each custodian their share (``Share.to_file``), record the commitments, and forget
    the shares.
    """
    _check_split(k, n, custodians, lot_id)
    key = _as_key(secret)
    fingerprint = key_fingerprint(key.public_key())
    [mnemonics] = shamir_mnemonic.generate_mnemonics(
        1, [(k, n)], p.ec_scalar(key), b"", extendable=False, iteration_exponent=0
    )
    shares = [
        Share(lot_id, fingerprint, custodian, i, k, n, mnemonic)
        for i, (custodian, mnemonic) in enumerate(zip(custodians, mnemonics, strict=True), 1)
    ]
    return shares, [commit(share) for share in shares]


# combine -----------------------------------------------------------------------------------


def _check_commitments(
    commitments: Sequence[Commitment], fingerprint: bytes
) -> dict[int, Commitment]:
    by_index = {c.index: c for c in commitments}
    problem = None
    if not commitments:
        problem = "there are none"
    elif len({(c.lot_id, c.key_fingerprint, c.k, c.n) for c in commitments}) != 1:
        problem = "they are of different lots, keys or splits"
    elif len(by_index) != len(commitments):
        problem = "two commitments have the same index"
    elif commitments[0].key_fingerprint != fingerprint:
        problem = "they are for another key than this lot's opening key"
    if problem:
        raise ShareError(
            f"the share commitments are not usable: {problem}", code="share_commitments"
        )
    return by_index


def _decode(share: Share) -> Any:
    """The SLIP-39 share in the mnemonic, consistent with what the Share says it is."""
    try:
        decoded = shamir_mnemonic.Share.from_mnemonic(share.mnemonic)
    except shamir_mnemonic.MnemonicError as exc:
        raise ShareError(
            f"the share of {share.custodian} is not readable: {exc}",
            code="share_malformed",
            detail={"custodian": share.custodian, "index": share.index},
        ) from exc
    if (decoded.index + 1, decoded.member_threshold, decoded.group_count) != (
        share.index,
        share.k,
        1,
    ):
        raise ShareError(
            f"the share of {share.custodian} does not match its own index or threshold",
            code="share_malformed",
            detail={"custodian": share.custodian, "index": share.index},
        )
    return decoded


def _check_share(share: Share, expected: Commitment, seen: set[int]) -> None:
    """Raise the first thing wrong with ``share``: the order gives the most specific cause."""
    who = {"custodian": share.custodian, "index": share.index}
    if share.lot_id != expected.lot_id:
        raise ShareError(
            f"the share of {share.custodian} is for lot {share.lot_id!r}, not {expected.lot_id!r}",
            code="share_other_lot",
            detail={**who, "lot_id": share.lot_id, "expected_lot_id": expected.lot_id},
        )
    if share.key_fingerprint != expected.key_fingerprint:
        raise ShareError(
            f"the share of {share.custodian} is of another opening key",
            code="share_other_key",
            detail={**who, "key_fingerprint": share.key_fingerprint.hex()},
        )
    if share.index in seen:
        raise ShareError(f"share {share.index} was given twice", code="share_duplicate", detail=who)


def _match(share: Share, by_index: Mapping[int, Commitment]) -> None:
    commitment = by_index.get(share.index)
    if commitment is None:
        raise ShareError(
            f"no commitment was recorded for share {share.index} of {share.custodian}",
            code="share_uncommitted",
            detail={"custodian": share.custodian, "index": share.index},
        )
    _decode(share)
    if commitment_digest(share) != commitment.digest:
        raise ShareError(
            f"the share given for {commitment.custodian} (share {share.index}) is not the one "
            "committed at publication",
            code="share_commitment_mismatch",
            detail={"custodian": commitment.custodian, "index": share.index},
        )


def recover_secret(mnemonics: Iterable[str], passphrase: bytes = b"") -> bytes:
    """SLIP-39 recovery of the master secret from exactly-threshold mnemonics, errors translated."""
    try:
        secret: bytes = shamir_mnemonic.combine_mnemonics(list(mnemonics), passphrase)
    except (shamir_mnemonic.MnemonicError, ValueError) as exc:
        raise ShareError(f"the shares do not combine: {exc}", code="share_malformed") from exc
    return secret


def combine(
    shares: Iterable[Share], commitments: Sequence[Commitment], expected_public_key: p.EcPublicKey
) -> p.EcPrivateKey:
    """The lot's opening private key from k (or more) shares, in memory only.

    Every share is checked against its commitment and the result against the public key;
    anything wrong raises ShareError with the code of the first problem met.
    """
    fingerprint = key_fingerprint(expected_public_key)
    by_index = _check_commitments(commitments, fingerprint)
    first = commitments[0]
    accepted: dict[int, Share] = {}
    for share in shares:
        _check_share(share, first, set(accepted))
        _match(share, by_index)
        accepted[share.index] = share
    if len(accepted) < first.k:
        missing = sorted(c.custodian for i, c in by_index.items() if i not in accepted)
        raise ShareError(
            f"{first.k} shares are needed, {len(accepted)} were given",
            code="share_too_few",
            detail={"need": first.k, "have": len(accepted), "not_given": missing},
        )
    chosen = [accepted[i].mnemonic for i in sorted(accepted)[: first.k]]
    return _checked_key(recover_secret(chosen), fingerprint)


def _checked_key(scalar: bytes, fingerprint: bytes) -> p.EcPrivateKey:
    try:
        key = p.ec_key_from_scalar(int.from_bytes(scalar, "big"))
    except CryptoError:
        key = None
    if key is None or key_fingerprint(key.public_key()) != fingerprint:
        raise ShareError(
            "the shares combine to a key that is not the lot's opening key",
            code="share_key_mismatch",
        )
    return key


# share files -------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    return base64.b64decode(text, validate=True)


def _header_bytes(doc: Mapping[str, Any]) -> bytes:
    header = {name: doc[name] for name in _HEADER_FIELDS}
    return json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _recipient_id(key: p.PublicKey) -> str:
    return hashlib.sha256(p.public_der(key)).hexdigest()


def _hpke_info(lot_id: str) -> bytes:
    return _HPKE_INFO + lot_id.encode()


def export_share(share: Share, recipient: x509.Certificate | p.PublicKey) -> bytes:
    """Format v1 (module docstring): only the holder of the recipient's private key opens it."""
    key = p.accept_public_key(
        recipient.public_key() if isinstance(recipient, x509.Certificate) else recipient
    )
    doc: dict[str, Any] = {
        "format": FILE_FORMAT,
        "version": FILE_VERSION,
        "lot_id": share.lot_id,
        "key_fingerprint": share.key_fingerprint.hex(),
        "custodian": share.custodian,
        "index": share.index,
        "k": share.k,
        "n": share.n,
        "recipient": _recipient_id(key),
        "scheme": SCHEME_HPKE if isinstance(key, p.EcPublicKey) else SCHEME_RSA,
    }
    aad, plaintext = _header_bytes(doc), share.mnemonic.encode()
    if isinstance(key, p.EcPublicKey):
        enc, ciphertext = hpke.seal(key, _hpke_info(share.lot_id), aad, plaintext)
        doc["enc"] = _b64(enc)
    else:
        data_key, nonce = secrets.token_bytes(32), secrets.token_bytes(p.GCM_NONCE)
        ciphertext = p.seal(data_key, nonce, plaintext, aad)
        doc["wrapped_key"], doc["nonce"] = _b64(p.rsa_wrap(key, data_key)), _b64(nonce)
    doc["ciphertext"] = _b64(ciphertext)
    return json.dumps(doc, indent=2, ensure_ascii=False).encode() + b"\n"


def _read_doc(data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ShareError("not a bidroom share file (not JSON)", code="share_file") from exc
    if not isinstance(doc, dict) or doc.get("format") != FILE_FORMAT:
        raise ShareError("not a bidroom share file", code="share_file")
    if doc.get("version") != FILE_VERSION:
        raise ShareError(
            f"share file version {doc.get('version')!r} is not supported (this is {FILE_VERSION})",
            code="share_file",
        )
    if doc.get("scheme") not in (SCHEME_HPKE, SCHEME_RSA):
        raise ShareError(f"unknown share file scheme {doc.get('scheme')!r}", code="share_file")
    return doc


def _decrypt(doc: Mapping[str, Any], key: p.PrivateKey) -> bytes:
    aad = _header_bytes(doc)
    if isinstance(key, p.EcPrivateKey):
        return hpke.open_(
            _unb64(doc["enc"]), key, _hpke_info(doc["lot_id"]), aad, _unb64(doc["ciphertext"])
        )
    data_key = p.rsa_unwrap(key, _unb64(doc["wrapped_key"]))
    return p.open_sealed(data_key, _unb64(doc["nonce"]), _unb64(doc["ciphertext"]), aad)


def import_share(data: bytes, key: p.PrivateKey) -> Share:
    """The share in a v1 share file, opened with the custodian's private key."""
    doc = _read_doc(data)
    if doc.get("recipient") != _recipient_id(key.public_key()):
        raise ShareError(
            f"this share file is for another custodian key (of {doc.get('custodian')!r})",
            code="share_file_recipient",
            detail={"custodian": doc.get("custodian"), "recipient": doc.get("recipient")},
        )
    try:
        plaintext = _decrypt(doc, key)
        share = Share(
            lot_id=str(doc["lot_id"]),
            key_fingerprint=bytes.fromhex(doc["key_fingerprint"]),
            custodian=str(doc["custodian"]),
            index=int(doc["index"]),
            k=int(doc["k"]),
            n=int(doc["n"]),
            mnemonic=plaintext.decode(),
        )
    except CryptoError as exc:  # HpkeError, unwrap_failed, aead_failed
        raise ShareError(
            "the share file does not open: it was altered, or not written for this key",
            code="share_file_open",
        ) from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ShareError(f"the share file is incomplete: {exc}", code="share_file") from exc
    _decode(share)
    return share
