"""HPKE (RFC 9180), base mode, single shot, for one suite: DHKEM(P-256, HKDF-SHA256), HKDF-SHA256.

The AEAD is AES-256-GCM for sealed bids (suite 0x0010/0x0001/0x0002); AES-128-GCM is here
only so the implementation can be checked against RFC 9180's own Appendix A.3 vectors, the
RFC's vectors for P-256. Written from the RFC's pseudo-code over the primitives in
ca.primitives (ECDH, HKDF, AES-GCM), so the ephemeral key can be derived from given bytes in
tests (``ikm_e``) and the browser implementation (web/js/hpke.js) can follow it line by line.
Never pass ``ikm_e`` outside tests: the ephemeral key must be fresh.
"""

from __future__ import annotations

from dataclasses import dataclass

from ca import primitives as p
from ca.errors import CryptoError, HpkeError

KEM_ID = 0x0010
KDF_ID = 0x0001
AEAD_AES_128_GCM = 0x0001
AEAD_AES_256_GCM = 0x0002
N_SECRET = 32
N_PK = 65
N_ENC = 65
N_NONCE = 12
_KEY_LEN = {AEAD_AES_128_GCM: 16, AEAD_AES_256_GCM: 32}
_VERSION = b"HPKE-v1"
_KEM_SUITE = b"KEM" + KEM_ID.to_bytes(2, "big")
MODE_BASE = 0


def _suite(aead_id: int) -> bytes:
    return (
        b"HPKE" + KEM_ID.to_bytes(2, "big") + KDF_ID.to_bytes(2, "big") + aead_id.to_bytes(2, "big")
    )


def labeled_extract(suite: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return p.hkdf_extract(salt, _VERSION + suite + label + ikm)


def labeled_expand(suite: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    return p.hkdf_expand(prk, length.to_bytes(2, "big") + _VERSION + suite + label + info, length)


def derive_key_pair(ikm: bytes) -> p.EcPrivateKey:
    """RFC 9180 §7.1.3 DeriveKeyPair for P-256 (rejection sampling, bitmask 0xff)."""
    dkp_prk = labeled_extract(_KEM_SUITE, b"", b"dkp_prk", ikm)
    for counter in range(256):
        candidate = labeled_expand(_KEM_SUITE, dkp_prk, b"candidate", bytes([counter]), 32)
        scalar = int.from_bytes(candidate, "big")
        if 0 < scalar < p.P256_ORDER:
            return p.ec_key_from_scalar(scalar)
    raise CryptoError("DeriveKeyPair found no key", code="derive_key_pair")


def _shared_secret(dh: bytes, enc: bytes, pk_r: bytes) -> bytes:
    eae_prk = labeled_extract(_KEM_SUITE, b"", b"eae_prk", dh)
    return labeled_expand(_KEM_SUITE, eae_prk, b"shared_secret", enc + pk_r, N_SECRET)


def encap(pk_r: p.EcPublicKey, ikm_e: bytes | None = None) -> tuple[bytes, bytes]:
    """(shared_secret, enc) for the recipient's public key."""
    sk_e = derive_key_pair(ikm_e) if ikm_e is not None else p.generate_ec_key()
    enc = p.ec_point(sk_e.public_key())
    return _shared_secret(p.ecdh(sk_e, pk_r), enc, p.ec_point(pk_r)), enc


def decap(enc: bytes, sk_r: p.EcPrivateKey) -> bytes:
    if len(enc) != N_ENC:
        raise HpkeError("enc is not a P-256 point", code="hpke_bad_enc")
    try:
        pk_e = p.ec_from_point(enc)
    except CryptoError as exc:
        raise HpkeError("enc is not a P-256 point", code="hpke_bad_enc") from exc
    return _shared_secret(p.ecdh(sk_r, pk_e), enc, p.ec_point(sk_r.public_key()))


@dataclass(frozen=True, slots=True)
class Context:
    key: bytes
    base_nonce: bytes
    exporter_secret: bytes


def key_schedule(shared_secret: bytes, info: bytes, aead_id: int) -> Context:
    """RFC 9180 §5.1, mode_base (no PSK)."""
    suite = _suite(aead_id)
    psk_id_hash = labeled_extract(suite, b"", b"psk_id_hash", b"")
    info_hash = labeled_extract(suite, b"", b"info_hash", info)
    context = bytes([MODE_BASE]) + psk_id_hash + info_hash
    secret = labeled_extract(suite, shared_secret, b"secret", b"")
    return Context(
        key=labeled_expand(suite, secret, b"key", context, _KEY_LEN[aead_id]),
        base_nonce=labeled_expand(suite, secret, b"base_nonce", context, N_NONCE),
        exporter_secret=labeled_expand(suite, secret, b"exp", context, 32),
    )


def seal(
    pk_r: p.EcPublicKey,
    info: bytes,
    aad: bytes,
    plaintext: bytes,
    *,
    aead_id: int = AEAD_AES_256_GCM,
    ikm_e: bytes | None = None,
) -> tuple[bytes, bytes]:
    """SealBase: (enc, ciphertext) — the first message of the context, so nonce = base_nonce."""
    shared_secret, enc = encap(pk_r, ikm_e)
    ctx = key_schedule(shared_secret, info, aead_id)
    return enc, p.seal(ctx.key, ctx.base_nonce, plaintext, aad)


def open_(
    enc: bytes,
    sk_r: p.EcPrivateKey,
    info: bytes,
    aad: bytes,
    ciphertext: bytes,
    *,
    aead_id: int = AEAD_AES_256_GCM,
) -> bytes:
    """OpenBase; HpkeError when this key is not the recipient or anything was altered."""
    ctx = key_schedule(decap(enc, sk_r), info, aead_id)
    try:
        return p.open_sealed(ctx.key, ctx.base_nonce, ciphertext, aad)
    except CryptoError as exc:
        raise HpkeError("cannot open: not the recipient, or the data was altered") from exc
