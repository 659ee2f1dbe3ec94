"""PAdES signatures on PDFs (电子签名): the experts sign the evaluation report in turn.

Signing (``sign``): one signature per call, appended as an incremental update, so every earlier
signature still covers exactly the revision it signed. Each is a PAdES baseline signature
(SubFilter ETSI.CAdES.detached, SHA-256) with an RFC 3161 signature time-stamp from our TSA:
``PadesTimeStamper`` adapts any ``ca.tsa.Timestamper`` (the built-in ``LocalStamper`` or the
HTTP ``TsaClient``) to pyHanko's ``TimeStamper``, and every token it hands over has already been
verified by ca.tsa (imprint, nonce, signature, trust).

Who holds the key: ``sign`` takes a pyHanko ``Signer``. ``key_signer`` makes one from a private
key object and its certificate (tests, the demo, a server-side key; a PKCS#11 token plugs in as
``pyhanko.sign.pkcs11.PKCS11Signer``).

Remote signing (``prepare`` and ``finish``): the expert's key never leaves the browser
(web/js/keystore.js), so signing is cut in two HTTP round trips and no process keeps anything in
between. ``prepare`` writes the new revision with the space for the signature reserved, and
returns the bytes the holder signs (the DER of the CMS signed attributes, which carry the digest
of that revision) and a ``state``: plain bytes the server keeps (blob store) or hands back.
``finish`` takes the state and the holder's signature, checks the signature under the
certificate's key before anything is embedded, asks the TSA for the signature time-stamp, and
fills the reserved space. The state is checked for consistency (its revision still has the
digest its signed attributes carry), not authenticated: whoever hands it back is the caller's
to trust, and ``inspect`` says who signed. A state from an older revision finishes that older
revision; the caller compares digests. The pyHanko seam is its interrupted-signing API
(``PdfSigner.async_digest_doc_for_signing``, ``ExternalSigner``,
``PdfTBSDocument.async_finish_signing``).

Signature values ``finish`` takes: ECDSA P-256 as WebCrypto gives it (raw r||s, 64 bytes) or DER;
RSA as RSASSA-PSS (SHA-256, MGF1-SHA-256, 32-byte salt: what the keystore's RSA keys make) or
PKCS#1 v1.5, told apart by which one verifies. Error codes of this module (``PdfSignatureError``):
pdf_sign_failed, pdf_state_invalid, signature_invalid, and those of ``verify_signatures`` below.

Checking (``inspect`` and ``verify_signatures``): pyHanko's validation against the roots one
trusts for signers and for TSAs, with the CRLs one holds (never fetched) and revocation
required for the signers' paths. ``inspect`` returns each signature's evidence;
``verify_signatures`` raises ``PdfSignatureError`` at the first signature that does not hold.

pyHanko itself uses cryptography's hazmat layer; this module only hands it objects, and so does
not widen the fence of ca.primitives.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from asn1crypto import algos, cms, crl, keys, pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.general import (
    SigningError,
    as_signing_certificate_v2,
    find_unique_cms_attribute,
)
from pyhanko.sign.signers import (
    ExternalSigner,
    PdfSignatureMetadata,
    PdfSigner,
    Signer,
    SimpleSigner,
)
from pyhanko.sign.signers.pdf_byterange import PreparedByteRangeDigest
from pyhanko.sign.signers.pdf_signer import PdfTBSDocument
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import PdfSignatureStatus
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from ca import primitives as p
from ca import tsa
from ca.errors import CryptoError, PdfSignatureError, SignatureInvalid
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


def _metadata(field: str, name: str | None, reason: str | None) -> PdfSignatureMetadata:
    return PdfSignatureMetadata(
        field_name=field,
        md_algorithm=DIGEST,
        subfilter=SigSeedSubFilter.PADES,
        name=name,
        reason=reason,
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
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        pdf_signer = PdfSigner(_metadata(field, name, reason), signer, timestamper=timestamper)
        out = await pdf_signer.async_sign_pdf(writer, output=io.BytesIO())
    except (PdfError, SigningError) as exc:
        raise PdfSignatureError(
            f"cannot sign the PDF: {exc}", code="pdf_sign_failed", detail={"field": field}
        ) from exc
    return bytes(out.getvalue())


# remote signing ----------------------------------------------------------------------------

_STATE = b"bidroom pades state 1\n"
# Space kept for the CMS, in DER bytes (the PDF holds it as hex, twice as long): the
# certificates, the signed attributes and signature value, and the TSA's token (ours is about
# 1.6 KB with its chain; an external TSA may embed a longer one).
_SIGNATURE_ROOM = 2_048
_TOKEN_ROOM = 8_192
# RSASSA-PSS as WebCrypto's RSA-PSS makes it with web/js/keystore.js's parameters.
_PSS = algos.RSASSAPSSParams(
    {
        "hash_algorithm": {"algorithm": DIGEST},
        "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": DIGEST}},
        "salt_length": 32,
    }
)
_MALFORMED = (ValueError, TypeError, KeyError, IndexError)  # asn1crypto's, on bytes it can't read


@dataclass(frozen=True)
class Prepared:
    """What the holder signs, and what ``finish`` needs besides their signature."""

    to_sign: bytes  # DER of the CMS signed attributes: the holder signs these bytes (SHA-256)
    state: bytes  # the prepared revision (the space for the signature reserved) and the above


@dataclass(frozen=True)
class Finished:
    pdf: bytes  # the PDF with the new signature, an incremental revision
    cms: bytes  # the CMS SignedData (DER) embedded
    timestamp: bytes  # the RFC 3161 signature time-stamp token (DER) from the TSA


def _bad_state(why: str) -> PdfSignatureError:
    return PdfSignatureError(
        f"the prepared signature cannot be finished: {why}; prepare it again",
        code="pdf_state_invalid",
    )


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(p.serialization_der())


def _frame(parts: Sequence[bytes]) -> bytes:
    return _STATE + b"".join(len(part).to_bytes(8, "big") + part for part in parts)


def _unframe(state: bytes) -> list[bytes]:
    if not state.startswith(_STATE):
        raise _bad_state("not a state made by prepare")
    parts, at = [], len(_STATE)
    while at < len(state):
        size = int.from_bytes(state[at : at + 8], "big")
        if at + 8 + size > len(state):
            raise _bad_state("the state is truncated")
        parts.append(state[at + 8 : at + 8 + size])
        at += 8 + size
    return parts


@dataclass(frozen=True)
class _Pending:
    """A prepared signature: the revision with ``pdf[start:end]`` reserved (``<00...>``)."""

    pdf: bytes
    start: int
    end: int
    signed_attrs: bytes  # DER
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]

    def to_bytes(self) -> bytes:
        certs = [_der(c) for c in (self.certificate, *self.chain)]
        ends = [n.to_bytes(8, "big") for n in (self.start, self.end)]
        return _frame([self.pdf, *ends, self.signed_attrs, *certs])

    @classmethod
    def from_bytes(cls, state: bytes) -> _Pending:
        parts = _unframe(state)
        if len(parts) < 5:
            raise _bad_state("parts of the state are missing")
        pdf, start, end, attrs, *certs = parts
        try:
            loaded = [x509.load_der_x509_certificate(c) for c in certs]
        except ValueError as exc:
            raise _bad_state("a certificate in it cannot be read") from exc
        found = cls(pdf, _int(start), _int(end), attrs, loaded[0], tuple(loaded[1:]))
        found.check()
        return found

    def digest(self) -> bytes:
        """The revision's digest over its /ByteRange: everything but the reserved space."""
        return hashlib.sha256(self.pdf[: self.start] + self.pdf[self.end :]).digest()

    def check(self) -> None:
        """The space is still free, and the signed attributes are this revision's and signer's."""
        space = self.pdf[self.start : self.end]
        if len(space) < 2 or space != b"<" + b"0" * (len(space) - 2) + b">":
            raise _bad_state("the space reserved for the signature is not where it was")
        try:
            attrs = cms.CMSAttributes.load(self.signed_attrs)
            digest = find_unique_cms_attribute(attrs, "message_digest").native
            ess = find_unique_cms_attribute(attrs, "signing_certificate_v2").dump()
        except _MALFORMED as exc:
            raise _bad_state("its signed attributes cannot be read") from exc
        if digest != self.digest():
            raise _bad_state("the revision does not have the digest its attributes carry")
        if ess != as_signing_certificate_v2(_asn1(self.certificate)).dump():
            raise _bad_state("the signed attributes name another certificate")

    def reserved(self) -> PreparedByteRangeDigest:
        return PreparedByteRangeDigest(self.digest(), self.start, self.end)


def _int(data: bytes) -> int:
    if len(data) != 8:
        raise _bad_state("an offset in it is malformed")
    return int.from_bytes(data, "big")


def _holder_key(cert: x509.Certificate) -> p.PublicKey:
    try:
        return p.accept_public_key(cert.public_key())
    except CryptoError as exc:
        raise PdfSignatureError(str(exc), code="pdf_sign_failed") from exc


def _external(
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate],
    value: bytes | None = None,
    mechanism: algos.SignedDigestAlgorithm | None = None,
) -> ExternalSigner:
    """pyHanko's signer that signs nothing: it embeds ``value`` (and the chain) in the CMS."""
    return ExternalSigner(
        signing_cert=_asn1(cert),
        cert_registry=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
            [_asn1(c) for c in chain]
        ),
        signature_value=value,
        signature_mechanism=mechanism,
    )


def _room(cert: x509.Certificate, chain: Sequence[x509.Certificate]) -> int:
    certs = sum(len(_der(c)) for c in (cert, *chain))
    return 2 * (certs + _SIGNATURE_ROOM + _TOKEN_ROOM)


async def prepare(
    pdf: bytes,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate] = (),
    *,
    field: str,
    name: str | None = None,
    reason: str | None = None,
) -> Prepared:
    """The first half of a remote signature on ``pdf`` in a new field ``field``.

    The certificate and ``chain`` are embedded in the CMS as ``key_signer`` embeds them.
    """
    _holder_key(certificate)
    signer, output = _external(certificate, chain), io.BytesIO()
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        pdf_signer = PdfSigner(_metadata(field, name, reason), signer)
        reserved, _, _ = await pdf_signer.async_digest_doc_for_signing(
            writer, bytes_reserved=_room(certificate, chain), output=output
        )
        attrs = await signer.signed_attrs(reserved.document_digest, DIGEST, use_pades=True)
    except (PdfError, SigningError) as exc:
        raise PdfSignatureError(
            f"cannot prepare the signature: {exc}", code="pdf_sign_failed", detail={"field": field}
        ) from exc
    to_sign = bytes(attrs.dump())
    pending = _Pending(
        bytes(output.getvalue()),
        reserved.reserved_region_start,
        reserved.reserved_region_end,
        to_sign,
        certificate,
        tuple(chain),
    )
    return Prepared(to_sign=to_sign, state=pending.to_bytes())


def _readings(key: p.PublicKey, signature: bytes) -> list[tuple[str, bytes]]:
    """What ``signature`` may be, as (mechanism, value as CMS carries it)."""
    if isinstance(key, p.RsaPublicKey):
        return [("rsassa_pss", signature), ("sha256_rsa", signature)]
    raw = [algos.DSASignature.from_p1363(signature).dump()] if len(signature) == 64 else []
    return [("sha256_ecdsa", der) for der in (*raw, signature)]


def _verified(
    cert: x509.Certificate, signature: bytes, to_sign: bytes
) -> tuple[algos.SignedDigestAlgorithm, bytes]:
    """The mechanism and CMS value of ``signature``, once it verifies over ``to_sign``."""
    key = _holder_key(cert)
    for mechanism, value in _readings(key, signature):
        try:
            if mechanism == "rsassa_pss":
                p.verify_signature(key, value, to_sign)
            else:
                p.cms_verify(cert, value, to_sign, DIGEST)
        except SignatureInvalid:
            continue
        params = {"parameters": _PSS} if mechanism == "rsassa_pss" else {}
        return algos.SignedDigestAlgorithm({"algorithm": mechanism, **params}), value
    raise PdfSignatureError(
        "the signature does not verify under the certificate's key over the prepared bytes",
        code="signature_invalid",
        detail={"signer": cert.subject.rfc4514_string(), "length": len(signature)},
    )


def _timestamp(signed: cms.ContentInfo) -> bytes:
    info = signed["content"]["signer_infos"][0]
    return bytes(
        find_unique_cms_attribute(info["unsigned_attrs"], "signature_time_stamp_token").dump()
    )


async def finish(state: bytes, signature: bytes, timestamper: TimeStamper) -> Finished:
    """The second half: the holder's ``signature`` over ``prepare``'s ``to_sign``, embedded
    with the signature time-stamp of ``timestamper``, once it verifies."""
    pending = _Pending.from_bytes(state)
    mechanism, value = _verified(pending.certificate, signature, pending.signed_attrs)
    signer = _external(pending.certificate, pending.chain, value, mechanism)
    attrs = cms.CMSAttributes.load(pending.signed_attrs)
    output = io.BytesIO(pending.pdf)
    try:
        signed = await signer.async_sign_prescribed_attributes(
            DIGEST, attrs, timestamper=timestamper
        )
        await PdfTBSDocument.async_finish_signing(output, pending.reserved(), signed)
    except (PdfError, SigningError) as exc:
        raise PdfSignatureError(
            f"cannot finish the signature: {exc}", code="pdf_sign_failed"
        ) from exc
    return Finished(pdf=output.getvalue(), cms=bytes(signed.dump()), timestamp=_timestamp(signed))


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

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Sent to a worker process as DER (cryptography's certificates do not pickle)."""
        ders = [
            [_der(c) for c in certs] for certs in (self.roots, self.tsa_roots, self.intermediates)
        ]
        return _trust_of_der, (*ders, tuple(self.crls), self.at)

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


def _trust_of_der(
    roots: list[bytes],
    tsa_roots: list[bytes],
    intermediates: list[bytes],
    crls: tuple[bytes, ...],
    at: dt.datetime | None,
) -> Trust:
    load = x509.load_der_x509_certificate
    return Trust(
        [load(d) for d in roots],
        [load(d) for d in tsa_roots],
        [load(d) for d in intermediates],
        crls,
        at,
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


# blocking and picklable: for a worker process ---------------------------------------------
#
# pyHanko's work is pure Python (asn1crypto, the PDF writer and reader): tens of milliseconds
# a signature, and checking a report checks all its signatures. A server runs these in its
# worker process (bidroom.worker), where each runs its own event loop; their arguments cross
# as bytes (a Trust sends itself as DER).


def prepare_blocking(
    pdf: bytes,
    certificate: bytes,
    chain: Sequence[bytes],
    field: str,
    name: str | None,
    reason: str | None,
) -> Prepared:
    """``prepare``, the certificate and its chain given as DER."""
    load = x509.load_der_x509_certificate
    return asyncio.run(
        prepare(
            pdf, load(certificate), [load(c) for c in chain], field=field, name=name, reason=reason
        )
    )


def inspect_blocking(pdf: bytes, trust: Trust) -> list[SignatureStatus]:
    """``inspect``."""
    return asyncio.run(inspect(pdf, trust))


class _Stamped(TimeStamper):
    """pyHanko's TimeStamper answering with a token fetched beforehand, for ``digest`` alone."""

    def __init__(self, token: bytes, digest: bytes):
        super().__init__(include_nonce=False)  # type: ignore[no-untyped-call]
        self.token, self.digest = token, digest

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> cms.ContentInfo:
        if md_algorithm != DIGEST or message_digest != self.digest:
            raise PdfSignatureError(
                "the time-stamp was fetched for other bytes than the signature's",
                code="pdf_sign_failed",
            )
        return cms.ContentInfo.load(self.token)


def finish_blocking(state: bytes, signature: bytes, token: bytes, digest: bytes) -> Finished:
    """``finish`` with the signature time-stamp ``token`` fetched beforehand (over ``digest``,
    the SHA-256 of the signature value as CMS carries it)."""
    return asyncio.run(finish(state, signature, _Stamped(token, digest)))


async def finish_on(
    worker: Executor | None, state: bytes, signature: bytes, stamper: tsa.Timestamper
) -> Finished:
    """``finish`` with pyHanko's work on ``worker`` (a server's worker process; None: the
    loop's default threads): the holder's signature checked and time-stamped here (the stamper
    does its own work where it does it), the CMS and the PDF revision made there."""
    pending = _Pending.from_bytes(state)
    _, value = _verified(pending.certificate, signature, pending.signed_attrs)
    digest = hashlib.sha256(value).digest()
    stamp = await stamper.stamp(tsa.Digest(DIGEST, digest))
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        worker, finish_blocking, state, signature, stamp.token, digest
    )
