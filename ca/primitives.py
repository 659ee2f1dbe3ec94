"""The fence around ``cryptography.hazmat``: the only module of bidroom that imports it.

Everything here is a thin, typed recipe over a primitive the library implements; nothing is
homemade. Callers get bytes and our own key types, and every failure comes out as a ca.errors
error (a verify never returns False). Choices fixed here, used by every protocol of bidroom:

- keys: ECDSA/ECDH on P-256, or RSA (2048 bits and up);
- signatures: ECDSA P-256 with SHA-256 as raw r||s (64 bytes, as WebCrypto produces), or
  RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt;
- key wrapping to RSA: RSA-OAEP with SHA-256 (and MGF1-SHA-256), empty label;
- symmetric: AES-256-GCM with 12-byte nonces and 16-byte tags;
- audit-log checkpoints: Ed25519 (the signed-note signature type 0x01).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from cryptography.hazmat.primitives.serialization import pkcs12

from ca.errors import CryptoError, KeyFileError, SignatureInvalid

EcPrivateKey: TypeAlias = ec.EllipticCurvePrivateKey
EcPublicKey: TypeAlias = ec.EllipticCurvePublicKey
RsaPrivateKey: TypeAlias = rsa.RSAPrivateKey
RsaPublicKey: TypeAlias = rsa.RSAPublicKey
PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey: TypeAlias = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

CURVE = ec.SECP256R1()
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
RSA_MIN_BITS = 2048
GCM_NONCE = 12
GCM_TAG = 16

# keys --------------------------------------------------------------------------------------


def generate_ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(CURVE)


def generate_rsa_key(bits: int = RSA_MIN_BITS) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def ec_key_from_scalar(scalar: int) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key from its scalar (HPKE's DeriveKeyPair, test vectors)."""
    if not 0 < scalar < P256_ORDER:
        raise CryptoError("scalar out of range for P-256", code="bad_scalar")
    return ec.derive_private_key(scalar, CURVE)


def ec_scalar(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_numbers().private_value.to_bytes(32, "big")


def _accept(key: object) -> PrivateKey:
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= RSA_MIN_BITS:
        return key
    raise KeyFileError("bidroom uses P-256 or RSA (2048 bits and up) keys", code="key_kind")


def _accept_public(key: object) -> PublicKey:
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= RSA_MIN_BITS:
        return key
    raise KeyFileError("bidroom uses P-256 or RSA (2048 bits and up) keys", code="key_kind")


def load_private_key(data: bytes, password: bytes | None = None) -> PrivateKey:
    """A private key from PEM (PKCS#8 or traditional) or DER PKCS#8."""
    loader = (
        serialization.load_pem_private_key
        if data.lstrip().startswith(b"-----")
        else serialization.load_der_private_key
    )
    try:
        return _accept(loader(data, password=password))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"cannot read the private key: {exc}", code="key_unreadable") from exc


def load_pkcs12(
    data: bytes, password: bytes | None
) -> tuple[PrivateKey, x509.Certificate, list[x509.Certificate]]:
    """Key, certificate and chain from a PKCS#12 file."""
    try:
        key, cert, chain = pkcs12.load_key_and_certificates(data, password)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"cannot read the PKCS#12 file: {exc}", code="key_unreadable") from exc
    if key is None or cert is None:
        raise KeyFileError("the PKCS#12 file holds no key and certificate", code="key_unreadable")
    return _accept(key), cert, list(chain)


def dump_private_key(key: PrivateKey, password: bytes | None = None) -> bytes:
    """PKCS#8 PEM, encrypted with the password when one is given."""
    protection = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, protection
    )


def dump_pkcs12(
    name: str,
    key: PrivateKey,
    cert: x509.Certificate,
    chain: list[x509.Certificate],
    password: bytes,
) -> bytes:
    """A PKCS#12 file protected by the password (AES-256, PBKDF2: what browsers import)."""
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(100_000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password)
    )
    return pkcs12.serialize_key_and_certificates(name.encode(), key, cert, chain, encryption)


def public_der(key: PublicKey) -> bytes:
    """SubjectPublicKeyInfo, DER."""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_der(data: bytes) -> PublicKey:
    try:
        return _accept_public(serialization.load_der_public_key(data))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFileError("not a public key", code="key_unreadable") from exc


def load_public_pem(data: bytes) -> PublicKey:
    try:
        return _accept_public(serialization.load_pem_public_key(data))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFileError("not a public key", code="key_unreadable") from exc


def dump_public_pem(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def ec_point(key: ec.EllipticCurvePublicKey) -> bytes:
    """The uncompressed SEC1 point (65 bytes), as HPKE's SerializePublicKey."""
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def ec_from_point(data: bytes) -> ec.EllipticCurvePublicKey:
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(CURVE, data)
    except ValueError as exc:
        raise CryptoError("not a P-256 point", code="bad_point") from exc


# signatures --------------------------------------------------------------------------------

_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


def sign(key: PrivateKey, data: bytes) -> bytes:
    """ECDSA P-256/SHA-256 as raw r||s, or RSA-PSS/SHA-256."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return key.sign(data, _PSS, hashes.SHA256())


def verify_signature(key: PublicKey, signature: bytes, data: bytes) -> None:
    """Return nothing if ``signature`` is the key's over ``data``; raise SignatureInvalid."""
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != 64:
                raise InvalidSignature
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(signature, data, _PSS, hashes.SHA256())
    except InvalidSignature:
        raise SignatureInvalid("the signature does not verify") from None


# key agreement, key derivation, wrapping ---------------------------------------------------


def ecdh(key: ec.EllipticCurvePrivateKey, peer: ec.EllipticCurvePublicKey) -> bytes:
    return key.exchange(ec.ECDH(), peer)


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    """RFC 5869 HKDF-Extract with SHA-256 (HMAC, as the RFC defines it)."""
    return hmac.new(salt or b"\0" * 32, ikm, hashlib.sha256).digest()


def hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    return HKDFExpand(hashes.SHA256(), length, info).derive(prk)


_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def rsa_wrap(key: rsa.RSAPublicKey, secret: bytes) -> bytes:
    return key.encrypt(secret, _OAEP)


def rsa_unwrap(key: rsa.RSAPrivateKey, wrapped: bytes) -> bytes:
    try:
        return key.decrypt(wrapped, _OAEP)
    except ValueError as exc:
        raise CryptoError("the key was not wrapped to this RSA key", code="unwrap_failed") from exc


# AES-256-GCM -------------------------------------------------------------------------------


def seal(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-GCM encryption; the 16-byte tag is appended."""
    return AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise CryptoError("authentication failed", code="aead_failed") from None


class Gcm:
    """One AES-256-GCM key, reused for many chunks without re-creating the cipher."""

    def __init__(self, key: bytes):
        self._aead = AESGCM(key)

    def seal(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return self._aead.encrypt(nonce, plaintext, aad)

    def open(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        try:
            return self._aead.decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            raise CryptoError("authentication failed", code="aead_failed") from None

    def seal_into(self, nonce: bytes, plaintext: memoryview, aad: bytes, out: memoryview) -> None:
        """Encrypt into ``out`` (len(plaintext) + 16 bytes): no copy of a large chunk."""
        self._aead.encrypt_into(nonce, plaintext, aad, out)

    def open_into(self, nonce: bytes, ciphertext: memoryview, aad: bytes, out: memoryview) -> None:
        try:
            self._aead.decrypt_into(nonce, ciphertext, aad, out)
        except InvalidTag:
            raise CryptoError("authentication failed", code="aead_failed") from None


# X.509 signing (building is cryptography.x509's; only the signature needs hazmat) -----------


def sign_certificate(builder: x509.CertificateBuilder, issuer_key: PrivateKey) -> x509.Certificate:
    return builder.sign(issuer_key, hashes.SHA256(), rsa_padding=None)


def sign_crl(
    builder: x509.CertificateRevocationListBuilder, issuer_key: PrivateKey
) -> x509.CertificateRevocationList:
    return builder.sign(issuer_key, hashes.SHA256())


def sign_csr(
    builder: x509.CertificateSigningRequestBuilder, key: PrivateKey
) -> x509.CertificateSigningRequest:
    return builder.sign(key, hashes.SHA256())


def serialization_der() -> serialization.Encoding:
    return serialization.Encoding.DER


def serialization_pem() -> serialization.Encoding:
    return serialization.Encoding.PEM


def fingerprint(cert: x509.Certificate) -> bytes:
    """SHA-256 over the certificate's DER."""
    return cert.fingerprint(hashes.SHA256())


# pki ---------------------------------------------------------------------------------------


def accept_public_key(key: object) -> PublicKey:
    """``key`` as one of bidroom's key kinds (P-256, RSA 2048+), or KeyFileError."""
    return _accept_public(key)


def certificate_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def crl_der(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.DER)


# checkpoints -------------------------------------------------------------------------------
# Ed25519 (RFC 8032), used only to sign the audit log's checkpoints (C2SP signed-note, type 0x01).

Ed25519PrivateKey: TypeAlias = ed25519.Ed25519PrivateKey
Ed25519PublicKey: TypeAlias = ed25519.Ed25519PublicKey


def generate_ed25519_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def ed25519_from_seed(seed: bytes) -> ed25519.Ed25519PrivateKey:
    """The private key of a 32-byte RFC 8032 seed (what signed-note private keys hold)."""
    if len(seed) != 32:
        raise KeyFileError("an Ed25519 seed is 32 bytes", code="key_unreadable")
    return ed25519.Ed25519PrivateKey.from_private_bytes(seed)


def ed25519_public_raw(key: ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey) -> bytes:
    """The 32-byte RFC 8032 encoding of the public key."""
    public = key.public_key() if isinstance(key, ed25519.Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def ed25519_public_from_raw(data: bytes) -> ed25519.Ed25519PublicKey:
    try:
        return ed25519.Ed25519PublicKey.from_public_bytes(data)
    except ValueError as exc:
        raise KeyFileError("not an Ed25519 public key", code="key_unreadable") from exc


def load_ed25519_private_key(data: bytes, password: bytes | None = None) -> Ed25519PrivateKey:
    """An Ed25519 private key from PKCS#8 PEM."""
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"cannot read the private key: {exc}", code="key_unreadable") from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise KeyFileError("a checkpoint key must be Ed25519", code="key_kind")
    return key


def dump_ed25519_private_key(key: Ed25519PrivateKey, password: bytes | None = None) -> bytes:
    """PKCS#8 PEM, encrypted with the password when one is given."""
    protection = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, protection
    )


def ed25519_sign(key: Ed25519PrivateKey, data: bytes) -> bytes:
    return key.sign(data)


def ed25519_verify(key: Ed25519PublicKey, signature: bytes, data: bytes) -> None:
    """Return nothing if ``signature`` is the key's over ``data``; raise SignatureInvalid."""
    try:
        key.verify(signature, data)
    except InvalidSignature:
        raise SignatureInvalid("the Ed25519 signature does not verify") from None


# tsa ---------------------------------------------------------------------------------------
# CMS (RFC 5652) signatures as RFC 3161 tokens carry them: DER-encoded ECDSA, or RSA PKCS#1
# v1.5 (what every time-stamp verifier accepts). Verifying takes any EC or RSA key, because an
# external TSA's key is not ours to choose.

_CMS_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}


def cms_signature_algorithm(key: PrivateKey) -> str:
    """The asn1crypto name of the algorithm ``cms_sign`` uses with this key."""
    return "sha256_ecdsa" if isinstance(key, ec.EllipticCurvePrivateKey) else "sha256_rsa"


def cms_sign(key: PrivateKey, data: bytes) -> bytes:
    """ECDSA with SHA-256 (DER ``Ecdsa-Sig-Value``) or RSA PKCS#1 v1.5 with SHA-256."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def cms_verify(cert: x509.Certificate, signature: bytes, data: bytes, hash_name: str) -> None:
    """Return nothing if the certificate's key signed ``data``; raise SignatureInvalid."""
    algorithm = _CMS_HASHES.get(hash_name)
    if algorithm is None:
        raise SignatureInvalid(f"unsupported digest {hash_name}", code="signature_algorithm")
    key = cert.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        else:
            raise SignatureInvalid("the signer's key is neither EC nor RSA", code="key_kind")
    except InvalidSignature:
        raise SignatureInvalid("the signature does not verify") from None
