"""Small certificate helpers the tests and benchmarks share (tests/ is on their import path)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.x509.oid import NameOID

from ca import primitives as p


def certificate(key: p.PrivateKey, name: str) -> bytes:
    """A self-signed certificate (DER): the envelope binds it; its path is ca.trust's business."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime(2026, 1, 1, tzinfo=UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=3650))
    )
    return p.sign_certificate(builder, key).public_bytes(p.serialization_der())
