"""The trust store: which CAs bidroom recognises (CA mutual recognition, 互认), and path validation.

A trust store is a folder::

    roots/*.pem           trust anchors (self-signed CA certificates; a file may hold several)
    intermediates/*.pem   issuing CAs offered for path building (never anchors themselves)
    crls/*.crl            CRLs, DER; older ones may stay, for validation at past times
    changes.jsonl         one line per change: version, time, action, fingerprint, subject, digest

Its ``version`` is the number of changes ever made (it grows with every change, removals too)
and its ``digest`` is a SHA-256 over what it holds (equal contents, equal digests).

Validation (``verify_certificate``) happens AT A GIVEN TIME, with revocation, and fails hard:
if the status of any certificate of the path cannot be known (no CRL from its issuer, only
stale CRLs, or only CRLs its issuer did not sign) the certificate is refused.

Why cryptography's verifier rather than pyhanko-certvalidator: path building and the RFC 5280
profile checks come from ``cryptography.x509.verification`` (pyca's Rust verifier, already a
dependency, strict and maintained), and the part it lacks, revocation, is a few lines here
because bidroom's CRLs are local files, never fetched. pyhanko-certvalidator would do CRLs too
but brings asn1crypto, oscrypto (unmaintained), aiohttp and certifi, and a second X.509 object
model beside cryptography's. No new dependency was added.

The verifier answers one string on failure; to give each failure its own code, the leaf's period
and usage are checked first, and a failed path is diagnosed by walking it again
(``_diagnose``): no issuer by name (unknown_issuer), issuers by name but none whose key signed
the child (bad_chain_signature), an issuer out of its period (cert_expired / not yet valid).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ca import primitives
from ca.errors import (
    BadChainSignature,
    CertificateError,
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    RevocationUnknown,
    UnknownIssuer,
    WrongKeyUsage,
)
from ca.pki import is_uscc
from ca.primitives import EcPublicKey

MAX_DEPTH = 8
# Prefixes of organizationIdentifier that carry a USCC: ours, and ETSI EN 319 412-1's form.
USCC_PREFIXES = ("USCC:", "NTRCN-")


class Usage(StrEnum):
    """What the holder's key is about to be used for."""

    SIGN = "sign"  # login, signing commands and bid headers: digitalSignature
    WRAP = "wrap"  # a bid's data key wrapped to it: keyAgreement (EC) / keyEncipherment (RSA)


@dataclass(frozen=True)
class Holder:
    """Who a certificate identifies. The registry of roles is keyed by fingerprint and USCC."""

    name: str
    organisation: str | None
    uscc: str | None
    fingerprint: str  # SHA-256 of the certificate's DER, lowercase hex


@dataclass(frozen=True)
class Verified:
    path: tuple[x509.Certificate, ...]  # the holder's certificate first, the root last
    holder: Holder


@dataclass(frozen=True)
class Recognised:
    """One version of a trust store's contents; ``verify`` is a pure function of it."""

    roots: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...]
    version: int = 0

    @property
    def digest(self) -> str:
        return contents_digest(self.roots, self.intermediates, self.crls)


def fingerprint_hex(cert: x509.Certificate) -> str:
    return primitives.fingerprint(cert).hex()


def crl_fingerprint(crl: x509.CertificateRevocationList) -> str:
    return hashlib.sha256(primitives.crl_der(crl)).hexdigest()


def contents_digest(
    roots: Iterable[x509.Certificate],
    intermediates: Iterable[x509.Certificate],
    crls: Iterable[x509.CertificateRevocationList],
) -> str:
    lines = [f"root {fingerprint_hex(c)}" for c in roots]
    lines += [f"intermediate {fingerprint_hex(c)}" for c in intermediates]
    lines += [f"crl {crl_fingerprint(c)}" for c in crls]
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


# the holder --------------------------------------------------------------------------------


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    if not values:
        return None
    value = values[0].value
    return value if isinstance(value, str) else value.decode()


def _uscc(identifier: str | None) -> str | None:
    prefix = next((p for p in USCC_PREFIXES if identifier and identifier.startswith(p)), None)
    if identifier is None or prefix is None:
        return None
    code = identifier.removeprefix(prefix)
    if not is_uscc(code):
        raise CertificateError(
            f"the certificate carries a malformed USCC {code!r}", code="bad_identity"
        )
    return code


def holder_of(cert: x509.Certificate) -> Holder:
    """The identity in a holder certificate: CN, O, USCC and the certificate's fingerprint."""
    name = _attribute(cert.subject, NameOID.COMMON_NAME)
    if not name:
        raise CertificateError("the certificate names no holder (no CN)", code="bad_identity")
    return Holder(
        name=name,
        organisation=_attribute(cert.subject, NameOID.ORGANIZATION_NAME),
        uscc=_uscc(_attribute(cert.subject, NameOID.ORGANIZATION_IDENTIFIER)),
        fingerprint=fingerprint_hex(cert),
    )


# checks ------------------------------------------------------------------------------------


def _evidence(cert: x509.Certificate) -> dict[str, Any]:
    return {"subject": cert.subject.rfc4514_string(), "fingerprint": fingerprint_hex(cert)}


def _period_error(cert: x509.Certificate, at: dt.datetime) -> CertificateError | None:
    detail = {
        **_evidence(cert),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "at": at.isoformat(),
    }
    if at < cert.not_valid_before_utc:
        return CertificateNotYetValid(f"{detail['subject']} is not valid yet", detail=detail)
    if at > cert.not_valid_after_utc:
        return CertificateExpired(f"{detail['subject']} has expired", detail=detail)
    return None


def _extension(cert: x509.Certificate, kind: type[Any]) -> Any:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _usage_allowed(cert: x509.Certificate, usage: Usage) -> bool:
    eku = _extension(cert, x509.ExtendedKeyUsage)
    ku: x509.KeyUsage | None = _extension(cert, x509.KeyUsage)
    if eku is None or ExtendedKeyUsageOID.CLIENT_AUTH not in eku or ku is None:
        return False
    if usage is Usage.SIGN:
        return ku.digital_signature
    if isinstance(cert.public_key(), EcPublicKey):
        return ku.key_agreement
    return ku.key_encipherment


def _check_usage(cert: x509.Certificate, usage: Usage) -> None:
    if not _usage_allowed(cert, usage):
        raise WrongKeyUsage(
            f"this certificate's key may not be used to {usage.value} (key usage / clientAuth)",
            detail={**_evidence(cert), "usage": usage.value},
        )


def _signed(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


# path building -----------------------------------------------------------------------------

_EE_POLICY = verification.ExtensionPolicy.webpki_defaults_ee().may_be_present(
    x509.SubjectAlternativeName, verification.Criticality.AGNOSTIC, None
)  # holder certificates name a person or an organisation, not a host: no SAN needed


def _build_path(
    trust: Recognised, cert: x509.Certificate, pool: list[x509.Certificate], at: dt.datetime
) -> tuple[x509.Certificate, ...]:
    if not trust.roots:
        raise UnknownIssuer("the trust store recognises no CA", detail=_evidence(cert))
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store(list(trust.roots)))
        .time(at)
        .max_chain_depth(MAX_DEPTH)
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(), ee_policy=_EE_POLICY
        )
        .build_client_verifier()
    )
    try:
        return tuple(verifier.verify(cert, pool).chain)
    except verification.VerificationError as exc:
        raise _diagnose(cert, [*pool, *trust.roots], trust.roots, at, str(exc)) from exc


def _diagnose(
    cert: x509.Certificate,
    pool: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    at: dt.datetime,
    reason: str,
) -> CertificateError:
    """Name why the verifier found no path, walking up the first correctly signed issuers."""
    current = cert
    for _ in range(MAX_DEPTH):
        named = [c for c in pool if c.subject == current.issuer and c != current]
        if not named:
            return UnknownIssuer(
                f"no recognised CA issued {current.subject.rfc4514_string()}",
                detail={**_evidence(current), "issuer": current.issuer.rfc4514_string()},
            )
        issuer = next((c for c in named if _signed(current, c)), None)
        if issuer is None:
            return BadChainSignature(
                f"{current.issuer.rfc4514_string()} did not sign "
                f"{current.subject.rfc4514_string()}",
                detail=_evidence(current),
            )
        error = _period_error(issuer, at)
        if error is not None:
            return error
        if issuer in roots:
            break
        current = issuer
    return CertificateError(f"the chain is not acceptable: {reason}", detail=_evidence(cert))


# revocation --------------------------------------------------------------------------------


def _crl_signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    usage: x509.KeyUsage | None = _extension(issuer, x509.KeyUsage)
    if usage is None or not usage.crl_sign:
        return False
    return crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]


def _current_crl(
    issuer: x509.Certificate, crls: Iterable[x509.CertificateRevocationList], at: dt.datetime
) -> x509.CertificateRevocationList:
    """The issuer's latest CRL in force at ``at``; RevocationUnknown if there is none."""
    detail = {**_evidence(issuer), "at": at.isoformat()}
    named = [c for c in crls if c.issuer == issuer.subject]
    if not named:
        raise RevocationUnknown(
            f"no CRL from {issuer.subject.rfc4514_string()}", detail={**detail, "why": "no_crl"}
        )
    signed = [c for c in named if _crl_signed_by(c, issuer)]
    if not signed:
        why = {**detail, "why": "crl_signature"}
        raise RevocationUnknown(
            f"no CRL signed by the key of {issuer.subject.rfc4514_string()}", detail=why
        )
    # A CRL without nextUpdate is never in force (RFC 5280 requires the field).
    current = [c for c in signed if c.last_update_utc <= at < (c.next_update_utc or at)]
    if not current:
        why = {**detail, "why": "crl_stale"}
        raise RevocationUnknown(
            f"no CRL of {issuer.subject.rfc4514_string()} is in force at that time", detail=why
        )
    return max(current, key=lambda c: c.last_update_utc)


def _check_revocation(
    path: Sequence[x509.Certificate],
    crls: Iterable[x509.CertificateRevocationList],
    at: dt.datetime,
) -> None:
    for child, issuer in itertools.pairwise(path):
        entry = _current_crl(issuer, crls, at).get_revoked_certificate_by_serial_number(
            child.serial_number
        )
        if entry is not None and entry.revocation_date_utc <= at:
            detail = {**_evidence(child), "revoked_at": entry.revocation_date_utc.isoformat()}
            raise CertificateRevoked(f"{detail['subject']} was revoked by its CA", detail=detail)


def latest_crls(trust: Recognised) -> list[x509.CertificateRevocationList]:
    """Of each CA the store holds (root or intermediate), the latest CRL (by thisUpdate) it
    signed: what a node checks a session's certificate against (bidroom.revocation). A CRL that
    no held CA certificate signed counts for nothing; whether it is still in force does not
    matter here (a stale CRL still says what was revoked)."""
    latest: dict[bytes, x509.CertificateRevocationList] = {}
    for crl in trust.crls:
        issuers = [c for c in (*trust.roots, *trust.intermediates) if c.subject == crl.issuer]
        if not any(_crl_signed_by(crl, issuer) for issuer in issuers):
            continue
        name = crl.issuer.public_bytes()
        held = latest.get(name)
        if held is None or crl.last_update_utc > held.last_update_utc:
            latest[name] = crl
    return list(latest.values())


def verify(
    trust: Recognised,
    cert: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    at: dt.datetime,
    usage: Usage,
) -> Verified:
    """The path and holder of ``cert`` at ``at`` for ``usage``, or a CertificateError."""
    if at.tzinfo is None:
        raise ValueError("validation time must be timezone-aware")
    if (error := _period_error(cert, at)) is not None:
        raise error
    _check_usage(cert, usage)
    path = _build_path(trust, cert, [*intermediates, *trust.intermediates], at)
    _check_revocation(path, trust.crls, at)
    return Verified(path, holder_of(cert))


# the folder --------------------------------------------------------------------------------


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _read_certs(folder: Path) -> tuple[x509.Certificate, ...]:
    certs: list[x509.Certificate] = []
    try:
        for file in sorted(folder.glob("*.pem")):
            certs += x509.load_pem_x509_certificates(file.read_bytes())
    except ValueError as exc:
        raise CertificateError(f"unreadable certificate in {folder}", code="trust_store") from exc
    return tuple(certs)


def _read_crls(folder: Path) -> tuple[x509.CertificateRevocationList, ...]:
    try:
        return tuple(x509.load_der_x509_crl(f.read_bytes()) for f in sorted(folder.glob("*.crl")))
    except ValueError as exc:
        raise CertificateError(f"unreadable CRL in {folder}", code="trust_store") from exc


class TrustStore:
    """A trust-store folder, read at construction; every change is written and logged."""

    def __init__(self, folder: Path):
        self.folder = folder
        for sub in ("roots", "intermediates", "crls"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        self.log = folder / "changes.jsonl"
        self.recognised = self._load()

    def _load(self) -> Recognised:
        version = len(self.changes())
        return Recognised(
            roots=_read_certs(self.folder / "roots"),
            intermediates=_read_certs(self.folder / "intermediates"),
            crls=_read_crls(self.folder / "crls"),
            version=version,
        )

    @property
    def version(self) -> int:
        return self.recognised.version

    @property
    def digest(self) -> str:
        return self.recognised.digest

    def changes(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def verify_certificate(
        self,
        cert: x509.Certificate,
        intermediates: Sequence[x509.Certificate],
        at: dt.datetime,
        usage: Usage = Usage.SIGN,
    ) -> Verified:
        """``verify`` against the store's current contents."""
        return verify(self.recognised, cert, intermediates, at, usage)

    def add_root(self, cert: x509.Certificate, at: dt.datetime) -> int:
        """Recognise a root CA; returns the new version (unchanged if already there)."""
        _require_ca(cert)
        if not _signed(cert, cert):
            raise CertificateError("a root must be self-signed", code="not_a_ca")
        return self._add_cert("roots", cert, at)

    def add_intermediate(self, cert: x509.Certificate, at: dt.datetime) -> int:
        _require_ca(cert)
        return self._add_cert("intermediates", cert, at)

    def add_crl(self, crl: x509.CertificateRevocationList, at: dt.datetime) -> int:
        """Keep a CRL; whether it is signed and current is judged at each validation."""
        fingerprint = crl_fingerprint(crl)
        path = self.folder / "crls" / f"{fingerprint}.crl"
        if path.exists():
            return self.version
        _write_atomically(path, primitives.crl_der(crl))
        return self._logged(at, "add_crl", fingerprint, crl.issuer.rfc4514_string())

    def remove(self, fingerprint: str, at: dt.datetime) -> int:
        """Stop recognising the CA certificate (or keeping the CRL) with this fingerprint."""
        for file in self._files():
            subject = _remove_from(file, fingerprint)
            if subject is not None:
                return self._logged(at, f"remove_{file.parent.name}", fingerprint, subject)
        raise CertificateError(f"{fingerprint} is not in the trust store", code="not_in_store")

    def _files(self) -> list[Path]:
        roots, intermediates = self.folder / "roots", self.folder / "intermediates"
        crls = self.folder / "crls"
        return [*roots.glob("*.pem"), *intermediates.glob("*.pem"), *crls.glob("*.crl")]

    def _add_cert(self, kind: str, cert: x509.Certificate, at: dt.datetime) -> int:
        fingerprint = fingerprint_hex(cert)
        held = self.recognised.roots if kind == "roots" else self.recognised.intermediates
        if cert in held:
            return self.version
        _write_atomically(
            self.folder / kind / f"{fingerprint}.pem", primitives.certificate_pem(cert)
        )
        action = "add_root" if kind == "roots" else "add_intermediate"
        return self._logged(at, action, fingerprint, cert.subject.rfc4514_string())

    def _logged(self, at: dt.datetime, action: str, fingerprint: str, subject: str) -> int:
        """Reload the folder after a change and append the change to the log."""
        self.recognised = replace(self._load(), version=self.version + 1)
        entry = {
            "version": self.version,
            "time": at.isoformat(),
            "action": action,
            "fingerprint": fingerprint,
            "subject": subject,
            "digest": self.digest,
        }
        with self.log.open("a", encoding="utf-8") as log:
            log.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return self.version


def _require_ca(cert: x509.Certificate) -> None:
    constraints: x509.BasicConstraints | None = _extension(cert, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        raise CertificateError(
            f"{cert.subject.rfc4514_string()} is not a CA certificate",
            code="not_a_ca",
            detail=_evidence(cert),
        )


def _remove_from(file: Path, fingerprint: str) -> str | None:
    """Drop the item from ``file`` (rewriting or deleting it); its subject, or None if absent."""
    if file.suffix == ".crl":
        crl = x509.load_der_x509_crl(file.read_bytes())
        if crl_fingerprint(crl) != fingerprint:
            return None
        file.unlink()
        return crl.issuer.rfc4514_string()
    certs = x509.load_pem_x509_certificates(file.read_bytes())
    keep = [c for c in certs if fingerprint_hex(c) != fingerprint]
    if len(keep) == len(certs):
        return None
    if keep:
        _write_atomically(file, b"".join(primitives.certificate_pem(c) for c in keep))
    else:
        file.unlink()
    return next(c for c in certs if fingerprint_hex(c) == fingerprint).subject.rfc4514_string()
