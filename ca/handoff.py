"""The decryption hand-off: a bid's data key, passed from the bidder's browser to the opening room.

At the opening each bidder unwraps their bid's data key with their certificate key, on their own
device, and hands it over sealed to the room (docs/opening.md):

    ikm        = HKDF-SHA256(secret, salt="bidroom room key v1", info=room id, 32 bytes)
    room key   = HPKE DeriveKeyPair(ikm)                  (DHKEM-P256; every node derives it)
    sealed_key = base64(enc || HPKE.seal(room public key, info="bidroom handoff v1",
                                         aad=canonical {"room", "envelope"}, data key))

The associated data binds the sealed key to one room and one envelope, so it cannot be replayed
into another opening or attached to another bid. Only the platform holds the room key, and only
after the bidder chose to hand the data key over, at the opening.
"""

from __future__ import annotations

import base64
import binascii
import json

from ca import hpke
from ca import primitives as p
from ca.errors import CryptoError

ROOM_KEY_SALT = b"bidroom room key v1"
INFO = b"bidroom handoff v1"
SHARE_INFO = b"bidroom share handoff v1"  # a custodian's share, sealed in their browser
ENC = 65  # an uncompressed P-256 point
DATA_KEY = 32


class HandoffError(CryptoError):
    """A sealed data key that does not open for this room and envelope (code bad_sealed_key)."""


def room_key(secret: bytes, room: str) -> p.EcPrivateKey:
    """The room's HPKE key pair, the same on every node that knows the platform secret."""
    prk = p.hkdf_extract(ROOM_KEY_SALT, secret)
    return hpke.derive_key_pair(p.hkdf_expand(prk, room.encode(), 32))


def public_point(key: p.EcPrivateKey) -> str:
    """The room's public key as the browser imports it: the uncompressed point, base64."""
    return base64.b64encode(p.ec_point(key.public_key())).decode()


def _aad(room: str, envelope: str) -> bytes:
    return json.dumps(
        {"envelope": envelope, "room": room}, sort_keys=True, separators=(",", ":")
    ).encode()


def _share_aad(room: str, commitment: str) -> bytes:
    return json.dumps(
        {"commitment": commitment, "room": room}, sort_keys=True, separators=(",", ":")
    ).encode()


def _seal(public: p.EcPublicKey, info: bytes, aad: bytes, plaintext: bytes) -> str:
    enc, sealed = hpke.seal(public, info, aad, plaintext)
    return base64.b64encode(enc + sealed).decode()


def _open(key: p.EcPrivateKey, info: bytes, aad: bytes, sealed: str, what: str, code: str) -> bytes:
    try:
        raw = base64.b64decode(sealed, validate=True)
        if len(raw) <= ENC:
            raise ValueError("too short")
        return hpke.open_(raw[:ENC], key, info, aad, raw[ENC:])
    except (CryptoError, ValueError, binascii.Error) as exc:
        raise HandoffError(f"the sealed {what} does not open for this room", code=code) from exc


def seal_share(public: p.EcPublicKey, room: str, commitment: str, mnemonic: str) -> str:
    """A custodian's share sealed to the room, bound to its commitment (the browser does the
    same): it travels, and stays in the room's log, never in clear."""
    return _seal(public, SHARE_INFO, _share_aad(room, commitment), mnemonic.encode())


def open_share(key: p.EcPrivateKey, room: str, commitment: str, sealed_share: str) -> str:
    """The share in ``sealed_share``; HandoffError if it is not for this room and commitment."""
    aad = _share_aad(room, commitment)
    opened = _open(key, SHARE_INFO, aad, sealed_share, "share", "bad_sealed_share")
    try:
        return opened.decode()
    except UnicodeDecodeError as exc:
        raise HandoffError("a share is text", code="bad_sealed_share") from exc


def seal_key(public: p.EcPublicKey, room: str, envelope: str, data_key: bytes) -> str:
    """What a client sends: the data key sealed to the room (the browser does the same)."""
    return _seal(public, INFO, _aad(room, envelope), data_key)


def open_key(key: p.EcPrivateKey, room: str, envelope: str, sealed_key: str) -> bytes:
    """The data key in ``sealed_key``; HandoffError if it is not for this room and envelope."""
    data_key = _open(key, INFO, _aad(room, envelope), sealed_key, "data key", "bad_sealed_key")
    if len(data_key) != DATA_KEY:
        raise HandoffError("a data key is 32 bytes", code="bad_sealed_key")
    return data_key


RECORD_INFO = b"bidroom room record v1"  # a secret the platform keeps in a room's own log


def _record_aad(room: str, what: str) -> bytes:
    return json.dumps({"room": room, "what": what}, sort_keys=True, separators=(",", ":")).encode()


def seal_record(public: p.EcPublicKey, room: str, what: str, data: bytes) -> str:
    """A secret of the room (``what`` names it, e.g. "committee draw") sealed to the room key, so
    it can rest in the room's log and any node can open it, while nobody reading the log can."""
    return _seal(public, RECORD_INFO, _record_aad(room, what), data)


def open_record(key: p.EcPrivateKey, room: str, what: str, sealed: str) -> bytes:
    """The secret in ``sealed``; HandoffError if it is not this room's ``what``."""
    return _open(key, RECORD_INFO, _record_aad(room, what), sealed, what, "bad_sealed_record")
