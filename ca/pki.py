"""Certificate authorities: roots, intermediates, holder certificates, revocation and CRLs.

Pure functions over frozen values: the time is always a parameter, a CA is an immutable value
(``revoke`` and ``publish_crl`` return a new one), nothing here reads a clock or a file. The
CLI persists what these return (keys through ``primitives.dump_pkcs12`` / ``dump_private_key``).

What identifies a holder (证书持有人) in a certificate bidroom issues:

- CN: the person's or organisation's name;
- O: the organisation (单位名称), when there is one;
- organizationIdentifier (OID 2.5.4.97): ``USCC:`` followed by the 18-character unified social
  credit code (统一社会信用代码, GB 32100-2015, check character verified). We chose
  organizationIdentifier over serialNumber because 2.5.4.97 is the attribute defined for an
  organisation's registered identifier (ETSI EN 319 412-1); serialNumber is commonly the
  person's own number (e.g. an ID card number) in Chinese personal certificates.

The certificate says who the holder is, never what the holder may do: roles (bidder, expert,
supervisor ...) live in the platform's registry, keyed by the certificate fingerprint and the USCC.

Profiles: CAs get BasicConstraints (critical; intermediates pathLen 0), KeyUsage keyCertSign +
cRLSign (critical), SKI and AKI. Holders get BasicConstraints CA:FALSE, KeyUsage digitalSignature
plus keyAgreement (EC) or keyEncipherment (RSA), because bids are wrapped to the holder's key,
and EKU clientAuth. A CRL distribution point URL is added when the issuing CA has one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Literal

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ca import primitives
from ca.errors import CertificateError, KeyFileError
from ca.primitives import EcPublicKey, PrivateKey, PublicKey

KeyKind = Literal["ec", "rsa"]

USCC_PREFIX = "USCC:"
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

ROOT_LIFETIME = dt.timedelta(days=20 * 365)
INTERMEDIATE_LIFETIME = dt.timedelta(days=10 * 365)
HOLDER_LIFETIME = dt.timedelta(days=2 * 365)
CRL_LIFETIME = dt.timedelta(days=7)


# holder identity ---------------------------------------------------------------------------


def uscc_check_char(first17: str) -> str:
    """The 18th character of a unified social credit code (GB 32100-2015, mod 31)."""
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_CHARS[(31 - total % 31) % 31]


def is_uscc(code: str) -> bool:
    """Whether ``code`` is a well-formed 统一社会信用代码 with a correct check character."""
    if len(code) != 18 or any(c not in USCC_CHARS for c in code):
        return False
    return uscc_check_char(code[:17]) == code[17]


@dataclass(frozen=True)
class Identity:
    """Who a certificate is issued to, as vetted by the registration desk (not the CSR)."""

    name: str
    organisation: str | None = None
    uscc: str | None = None

    def __post_init__(self) -> None:
        if self.uscc is not None and not is_uscc(self.uscc):
            raise CertificateError(
                f"{self.uscc!r} is not a valid unified social credit code",
                code="bad_uscc",
                detail={"uscc": self.uscc},
            )


def identity_name(identity: Identity) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN")]
    if identity.organisation:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, identity.organisation))
    if identity.uscc:
        value = USCC_PREFIX + identity.uscc
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, value))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, identity.name))
    return x509.Name(attributes)


# certificate authorities -------------------------------------------------------------------


@dataclass(frozen=True)
class Revocation:
    serial: int
    at: dt.datetime
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA's certificate and key, where it publishes its CRL, and what it has revoked."""

    cert: x509.Certificate
    key: PrivateKey
    crl_url: str | None = None
    revoked: tuple[Revocation, ...] = ()
    crl_number: int = 0


def generate_key(kind: KeyKind) -> PrivateKey:
    return primitives.generate_ec_key() if kind == "ec" else primitives.generate_rsa_key()


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _holder_usage(key: PublicKey) -> x509.KeyUsage:
    ec = isinstance(key, EcPublicKey)
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not ec,
        data_encipherment=False,
        key_agreement=ec,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _base(
    subject: x509.Name, issuer: x509.Name, key: PublicKey, at: dt.datetime, until: dt.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(at)
        .not_valid_after(until)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key), critical=False)
    )


def _issued_by(builder: x509.CertificateBuilder, ca: CertificateAuthority) -> x509.Certificate:
    """Add the issuer-dependent extensions (AKI, CRL distribution point) and sign."""
    ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
    )
    if ca.crl_url:
        builder = builder.add_extension(_crl_points(ca.crl_url), critical=False)
    return primitives.sign_certificate(builder, ca.key)


def _crl_points(url: str) -> x509.CRLDistributionPoints:
    point = x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)
    return x509.CRLDistributionPoints([point])


def _until(ca: CertificateAuthority, at: dt.datetime, lifetime: dt.timedelta) -> dt.datetime:
    """No certificate outlives its issuer."""
    return min(at + lifetime, ca.cert.not_valid_after_utc)


def create_root(
    name: str,
    at: dt.datetime,
    *,
    kind: KeyKind = "ec",
    lifetime: dt.timedelta = ROOT_LIFETIME,
    crl_url: str | None = None,
) -> CertificateAuthority:
    """A self-signed root CA (根证书) with a new key."""
    key = generate_key(kind)
    subject = identity_name(Identity(name))
    public = key.public_key()
    builder = (
        _base(subject, subject, public, at, at + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
    )
    return CertificateAuthority(primitives.sign_certificate(builder, key), key, crl_url)


def create_intermediate(
    parent: CertificateAuthority,
    name: str,
    at: dt.datetime,
    *,
    kind: KeyKind = "ec",
    lifetime: dt.timedelta = INTERMEDIATE_LIFETIME,
    crl_url: str | None = None,
) -> CertificateAuthority:
    """An issuing CA (中级证书) under ``parent``; it may issue only holder certificates."""
    key = generate_key(kind)
    until = _until(parent, at, lifetime)
    builder = (
        _base(identity_name(Identity(name)), parent.cert.subject, key.public_key(), at, until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(), critical=True)
    )
    return CertificateAuthority(_issued_by(builder, parent), key, crl_url)


def issue(
    ca: CertificateAuthority,
    key: PublicKey,
    identity: Identity,
    at: dt.datetime,
    lifetime: dt.timedelta = HOLDER_LIFETIME,
) -> x509.Certificate:
    """A holder certificate (a person's or an organisation's) for ``key``."""
    builder = (
        _base(identity_name(identity), ca.cert.subject, key, at, _until(ca, at, lifetime))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_holder_usage(key), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    )
    return _issued_by(builder, ca)


def issue_from_csr(
    ca: CertificateAuthority,
    csr: x509.CertificateSigningRequest,
    identity: Identity,
    at: dt.datetime,
    lifetime: dt.timedelta = HOLDER_LIFETIME,
) -> x509.Certificate:
    """Certify the CSR's key for ``identity``; the CSR's own subject is not trusted."""
    if not csr.is_signature_valid:
        raise CertificateError("the CSR is not signed by its key", code="csr_invalid")
    try:
        key = primitives.accept_public_key(csr.public_key())
    except KeyFileError as exc:
        raise CertificateError(str(exc), code="csr_invalid") from exc
    return issue(ca, key, identity, at, lifetime)


def issue_with_key(
    ca: CertificateAuthority,
    identity: Identity,
    at: dt.datetime,
    *,
    kind: KeyKind = "ec",
    lifetime: dt.timedelta = HOLDER_LIFETIME,
) -> tuple[PrivateKey, x509.Certificate]:
    """A new key and its certificate; the caller protects the key (PKCS#12, encrypted PEM)."""
    key = generate_key(kind)
    return key, issue(ca, key.public_key(), identity, at, lifetime)


# revocation --------------------------------------------------------------------------------


def revoke(
    ca: CertificateAuthority,
    serial: int,
    at: dt.datetime,
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified,
) -> CertificateAuthority:
    """The CA with ``serial`` on its revocation list (吊销); revoking twice changes nothing."""
    if any(r.serial == serial for r in ca.revoked):
        return ca
    return replace(ca, revoked=(*ca.revoked, Revocation(serial, at, reason)))


def _entry(revocation: Revocation) -> x509.RevokedCertificate:
    builder = (
        x509.RevokedCertificateBuilder()
        .serial_number(revocation.serial)
        .revocation_date(revocation.at)
    )
    if revocation.reason != x509.ReasonFlags.unspecified:
        builder = builder.add_extension(x509.CRLReason(revocation.reason), critical=False)
    return builder.build()


def publish_crl(
    ca: CertificateAuthority, at: dt.datetime, lifetime: dt.timedelta = CRL_LIFETIME
) -> tuple[CertificateAuthority, x509.CertificateRevocationList]:
    """The next CRL (thisUpdate ``at``, nextUpdate ``at + lifetime``) and the CA that numbered it.

    Serialise it with ``primitives.crl_der``.
    """
    number = ca.crl_number + 1
    ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(at)
        .next_update(at + lifetime)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    )
    for revocation in ca.revoked:
        builder = builder.add_revoked_certificate(_entry(revocation))
    return replace(ca, crl_number=number), primitives.sign_crl(builder, ca.key)


def csr_for(key: PrivateKey, name: str) -> x509.CertificateSigningRequest:
    """A CSR over ``key`` (what a holder's own tool sends to the registration desk)."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(identity_name(Identity(name)))
    return primitives.sign_csr(builder, key)
