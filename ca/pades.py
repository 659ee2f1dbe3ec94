"""PAdES signatures on PDFs (电子签名): the experts sign the evaluation report in turn.

Signing (``sign``): one signature per call, appended as an incremental update, so every earlier
signature still covers exactly the revision it signed. Each is a PAdES baseline signature
(SubFilter ETSI.CAdES.detached, SHA-256) with an RFC 3161 signature time-stamp from our TSA:
``PadesTimeStamper`` adapts any ``ca.tsa.Timestamper`` (the built-in ``LocalStamper`` or the
HTTP ``TsaClient``) to pyHanko's ``TimeStamper``, and every token it hands over has already been
verified by ca.tsa (imprint, nonce, signature, trust).

Who holds the key: ``sign`` takes a pyHanko ``Signer``. ``key_signer`` makes one from a private
key object and its certificate (tests, the demo, a server-side key). In production the expert's
browser or token holds the key: a remote or HSM signer plugs in as its own ``Signer`` subclass
(``async_sign_raw`` sends the digest to the holder and returns the signature;
``pyhanko.sign.pkcs11.PKCS11Signer`` already does this for PKCS#11 tokens), and nothing here
changes.

Checking (``inspect`` and ``verify_signatures``): pyHanko's validation against the roots one
trusts for signers and for TSAs, with the CRLs one holds (never fetched) and revocation
required for the signers' paths. ``inspect`` returns each signature's evidence;
``verify_signatures`` raises ``PdfSignatureError`` at the first signature that does not hold.

pyHanko itself uses cryptography's hazmat layer; this module only hands it objects, and so does
not widen the fence of ca.primitives.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from asn1crypto import cms, crl, keys, pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.general import SigningError
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner, Signer, SimpleSigner
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import PdfSignatureStatus
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from ca import primitives as p
from ca import tsa
from ca.errors import PdfSignatureError
from ca.primitives import PrivateKey

DIGEST = "sha256"
# bidroom's holder certificates carry digitalSignature; qualified ones add nonRepudiation.
SIGNER_USAGE = KeyUsageConstraints(
    key_usage={"digital_signature", "non_repudiation"}, match_all_key_usages=False
)


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    """The seam: cryptography's certificate as the asn1crypto object pyHanko works with."""
    return asn1_x509.Certificate.load(cert.public_bytes(p.serialization_der()))


# signing -----------------------------------------------------------------------------------


class PadesTimeStamper(TimeStamper):
    """pyHanko's TimeStamper over a ca.tsa Timestamper (built-in or external TSA)."""

    def __init__(self, stamper: tsa.Timestamper):
        # the stamper makes and checks its own nonce
        super().__init__(include_nonce=False)  # type: ignore[no-untyped-call]
        self.stamper = stamper

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> cms.ContentInfo:
        try:
            stamp = await self.stamper.stamp(tsa.Digest(md_algorithm, message_digest))
        except ValueError as exc:  # a digest algorithm ca.tsa does not take
            raise PdfSignatureError(str(exc), code="pdf_sign_failed") from exc
        return cms.ContentInfo.load(stamp.token)


def key_signer(
    key: PrivateKey, cert: x509.Certificate, chain: Sequence[x509.Certificate] = ()
) -> Signer:
    """A pyHanko Signer over a key held here (the certificate's chain is embedded)."""
    _, _, der = pem.unarmor(p.dump_private_key(key))
    return SimpleSigner(
        signing_cert=_asn1(cert),
        signing_key=keys.PrivateKeyInfo.load(der),
        cert_registry=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
            [_asn1(c) for c in chain]
        ),
    )


async def sign(
    pdf: bytes,
    signer: Signer,
    timestamper: TimeStamper,
    *,
    field: str,
    name: str | None = None,
    reason: str | None = None,
) -> bytes:
    """``pdf`` with one more signature, in a new signature field ``field``, time-stamped."""
    meta = PdfSignatureMetadata(
        field_name=field,
        md_algorithm=DIGEST,
        subfilter=SigSeedSubFilter.PADES,
        name=name,
        reason=reason,
    )
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        pdf_signer = PdfSigner(meta, signer, timestamper=timestamper)
        out = await pdf_signer.async_sign_pdf(writer, output=io.BytesIO())
    except (PdfError, SigningError) as exc:
        raise PdfSignatureError(
            f"cannot sign the PDF: {exc}", code="pdf_sign_failed", detail={"field": field}
        ) from exc
    return bytes(out.getvalue())


# checking ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureStatus:
    """What pyHanko found for one signature: the evidence, not only a verdict."""

    field: str
    signer: str  # the signer certificate's subject, RFC 4514
    intact: bool  # the signed bytes are unchanged
    valid: bool  # the signature verifies under the certificate's key
    trusted: bool  # the certificate chains to a trusted root, not revoked
    revoked: bool
    timestamped_at: dt.datetime | None  # the TSA's genTime, if the time-stamp holds
    timestamp_ok: bool
    changes_allowed: bool  # later revisions only add signatures or fill forms (DocMDP)
    summary: str

    @property
    def holds(self) -> bool:
        return (
            self.intact
            and self.valid
            and self.trusted
            and self.timestamp_ok
            and self.changes_allowed
        )


@dataclass(frozen=True)
class Trust:
    """What a reader of the report trusts: signer roots, TSA roots, and the CRLs at hand."""

    roots: Sequence[x509.Certificate]
    tsa_roots: Sequence[x509.Certificate]
    intermediates: Sequence[x509.Certificate] = ()
    crls: Sequence[bytes] = ()  # DER
    at: dt.datetime | None = None  # validation time; now when None

    def signer_context(self) -> ValidationContext:
        return ValidationContext(
            trust_roots=[_asn1(c) for c in self.roots],
            other_certs=[_asn1(c) for c in self.intermediates],
            crls=[crl.CertificateList.load(d) for d in self.crls],
            moment=self.at,
            allow_fetching=False,
            revocation_mode="require",
        )

    def tsa_context(self) -> ValidationContext:
        # bidroom's TSA certificates carry no CRL distribution point (see ca.tsa).
        return ValidationContext(
            trust_roots=[_asn1(c) for c in self.tsa_roots],
            other_certs=[_asn1(c) for c in self.intermediates],
            crls=[crl.CertificateList.load(d) for d in self.crls],
            moment=self.at,
            allow_fetching=False,
            revocation_mode="soft-fail",
        )


def _status(field: str, found: PdfSignatureStatus) -> SignatureStatus:
    stamp = found.timestamp_validity
    stamped_at = (
        stamp.timestamp if stamp and stamp.intact and stamp.valid and stamp.trusted else None
    )
    return SignatureStatus(
        field=field,
        signer=found.signing_cert.subject.human_friendly,
        intact=found.intact,
        valid=found.valid,
        trusted=found.trusted,
        revoked=found.revoked,
        timestamped_at=stamped_at,
        timestamp_ok=stamped_at is not None,
        changes_allowed=found.docmdp_ok is not False,
        summary=found.summary(),
    )


async def inspect(pdf: bytes, trust: Trust) -> list[SignatureStatus]:
    """Every signature of ``pdf``, in signing order, as pyHanko's validation judges it."""
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        embedded = list(reader.embedded_signatures)
    except (PdfError, ValueError) as exc:
        raise PdfSignatureError(f"cannot read the PDF: {exc}", code="pdf_unreadable") from exc
    found: list[SignatureStatus] = []
    for sig in embedded:
        status = await async_validate_pdf_signature(
            sig,
            signer_validation_context=trust.signer_context(),
            ts_validation_context=trust.tsa_context(),
            key_usage_settings=SIGNER_USAGE,
        )
        found.append(_status(sig.field_name, status))
    return found


def _refusal(status: SignatureStatus) -> tuple[str, str]:
    if not (status.intact and status.valid):
        return "pdf_signature_broken", "the signed bytes were changed, or the signature is forged"
    if status.revoked:
        return "pdf_signer_revoked", "the signer's certificate is revoked"
    if not status.trusted:
        return "pdf_signer_untrusted", "the signer's certificate does not chain to a trusted root"
    if not status.timestamp_ok:
        return "pdf_timestamp_invalid", "the signature's time-stamp is missing or not trusted"
    return "pdf_modified", "a later revision changed more than signatures and form fields"


async def verify_signatures(
    pdf: bytes, trust: Trust, expected: int | None = None
) -> list[SignatureStatus]:
    """The signatures, if all hold (and there are ``expected`` of them); else raise."""
    found = await inspect(pdf, trust)
    if not found or (expected is not None and len(found) != expected):
        detail: dict[str, Any] = {"found": len(found), "expected": expected}
        raise PdfSignatureError(
            "the PDF does not carry the signatures expected", code="pdf_unsigned", detail=detail
        )
    for status in found:
        if not status.holds:
            code, text = _refusal(status)
            raise PdfSignatureError(
                f"{status.field} ({status.signer}): {text}",
                code=code,
                detail={"field": status.field, "signer": status.signer, "why": status.summary},
            )
    return found
