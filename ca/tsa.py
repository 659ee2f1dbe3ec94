"""Trusted time (可信时间戳): RFC 3161 time-stamp tokens, made and checked.

Three parts, from pure to networked:

- ``TimeStampAuthority``: the built-in TSA. Bytes in (a DER TimeStampReq), bytes out (a DER
  TimeStampResp): no socket, no clock of its own (``clock`` comes in), so tests pin time. Its
  certificate comes from ``issue_tsa_certificate``: critical EKU timeStamping alone, key usage
  digitalSignature + nonRepudiation, as RFC 3161 §2.3 and OpenSSL's timestamp-sign purpose ask.
- ``verify_token``: checks a token (a DER ContentInfo, as ``openssl ts -verify -token_in``
  reads) against the data it should cover and the TSA roots one trusts. It returns the token's
  ``TimestampInfo`` or raises ``TimestampError`` with a code naming the failed check; it never
  returns False.
- ``TsaClient``: asks one TSA over HTTP (RFC 3161 §3.4), verifies the answer against its own
  request (imprint, nonce) and the trust given, and falls back to the next URL on any failure,
  so one TSA's outage cannot block a deadline.

Tokens: SignedData v3 over a TSTInfo, signed attributes content-type, signing-time,
message-digest and signingCertificateV2 (ESSCertIDv2, RFC 5816), ECDSA or RSA PKCS#1 v1.5 with
SHA-256. asn1crypto builds the structures and encodes every SET OF sorted (DER), which
rfc3161-client checks strictly. genTime is whole seconds with an accuracy of one second; the
serial number is 159 random bits (unique without shared state, within RFC 3161's 160 bits).

Checks, in order, each with its code: the token parses (tsa_malformed); its signer's
certificate is known, the message digest matches the TSTInfo, the signature verifies and
ESSCertIDv2 names that certificate (tsa_bad_signature); the certificate chains to a trusted
root at genTime with EKU timeStamping critical (tsa_untrusted, judged by rfc3161-client); the
imprint is over the data given (tsa_imprint_mismatch); the nonce and policy are the expected
ones (tsa_nonce_mismatch, tsa_policy_mismatch). Revocation of TSA certificates is not checked.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

import httpx2 as httpx
import rfc3161_client
from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID

from ca import pki
from ca import primitives as p
from ca.errors import CryptoError, KeyFileError, SignatureInvalid, TimestampError
from ca.pki import CertificateAuthority, KeyKind
from ca.primitives import PrivateKey
from ca.trust import Recognised, TrustStore

log = logging.getLogger(__name__)

# bidroom's TSA policy: an OID under 2.25 (a UUID, ITU-T X.667), since no arc is registered.
POLICY = "2.25.282883781993772958155573763427730125301"
QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
MAX_REPLY = 256 * 1024
TSA_LIFETIME = dt.timedelta(days=5 * 365)
ACCURACY_SECONDS = 1
MAX_DEPTH = 8

HASHES: dict[str, Callable[[bytes], Any]] = {
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}

Clock: TypeAlias = Callable[[], dt.datetime]
Trust: TypeAlias = TrustStore | Recognised | Sequence[x509.Certificate]


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def random_nonce() -> int:
    return secrets.randbits(64) | 1 << 63  # 64 bits, never shorter


@dataclass(frozen=True)
class Digest:
    """A message imprint: the hash of the data being time-stamped, and which hash."""

    algorithm: str  # sha256, sha384 or sha512
    value: bytes

    def __post_init__(self) -> None:
        hasher = HASHES.get(self.algorithm)
        if hasher is None or len(self.value) != hasher(b"").digest_size:
            raise ValueError(f"not a {self.algorithm} digest")

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, HASHES[algorithm](data).digest())


Message: TypeAlias = bytes | Digest  # the data itself, or its digest


@dataclass(frozen=True)
class TimestampInfo:
    """What a verified token says: when (genTime), which TSA, under which policy."""

    gen_time: dt.datetime
    serial: int
    tsa: str  # the TSA certificate's subject, RFC 4514
    tsa_fingerprint: str  # SHA-256 of its certificate, hex
    policy: str
    digest: Digest
    nonce: int | None
    accuracy: dt.timedelta | None


@dataclass(frozen=True)
class Stamp:
    token: bytes  # DER ContentInfo (SignedData over TSTInfo): what to keep beside the data
    info: TimestampInfo


class TimeStampResp(tsp.TimeStampResp):  # type: ignore[misc]
    """RFC 3161's TimeStampResp: asn1crypto's omits OPTIONAL from timeStampToken, which a
    rejection leaves out."""

    _fields = [  # noqa: RUF012  (asn1crypto's declaration style)
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


# the TSA's certificate ---------------------------------------------------------------------


def _tsa_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def issue_tsa_certificate(
    ca: CertificateAuthority,
    at: dt.datetime,
    *,
    name: str = "bidroom 时间戳服务",
    kind: KeyKind = "ec",
    lifetime: dt.timedelta = TSA_LIFETIME,
) -> tuple[PrivateKey, x509.Certificate]:
    """A new TSA key and its certificate from ``ca`` (EKU timeStamping, critical)."""
    key = pki.generate_key(kind)
    identity = pki.identity_name(pki.Identity(name))
    until = min(at + lifetime, ca.cert.not_valid_after_utc)
    builder = (
        pki._base(identity, ca.cert.subject, key.public_key(), at, until)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_tsa_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
    )
    return key, pki._issued_by(builder, ca)


# requests ----------------------------------------------------------------------------------


def _digest(message: Message, algorithm: str = "sha256") -> Digest:
    return message if isinstance(message, Digest) else Digest.of(message, algorithm)


def request(
    message: Message,
    nonce: int | None = None,
    cert_req: bool = True,
    *,
    policy: str | None = None,
) -> bytes:
    """A DER TimeStampReq for the data (hashed with SHA-256) or for a digest."""
    digest = _digest(message)
    fields: dict[str, Any] = {
        "version": "v1",
        "message_imprint": {
            "hash_algorithm": {"algorithm": digest.algorithm},
            "hashed_message": digest.value,
        },
        "cert_req": cert_req,
    }
    if policy is not None:
        fields["req_policy"] = policy
    if nonce is not None:
        fields["nonce"] = nonce
    return bytes(tsp.TimeStampReq(fields).dump())


# the authority -----------------------------------------------------------------------------


class _Refusal(Exception):
    """A request the TSA answers with status rejection and this PKIFailureInfo bit."""

    def __init__(self, failure: str, text: str):
        super().__init__(text)
        self.failure, self.text = failure, text


def _cert_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(p.serialization_der())


def _is_tsa_certificate(cert: x509.Certificate) -> bool:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return False
    return eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]


class TimeStampAuthority:
    """The built-in TSA: ``respond`` turns a DER TimeStampReq into a DER TimeStampResp.

    ``respond`` is blocking work (13 ms or more of DER encoding and signing): call it on a
    worker thread, never on the event loop. It may run on several threads at once: what it
    shares is immutable (certificates, key, DER bytes); ``clock`` and ``serials`` must be
    thread-safe too (the defaults are). asn1crypto objects parse lazily, mutating themselves on
    first read, so each answer loads its own from the DER kept here.
    """

    def __init__(
        self,
        cert: x509.Certificate,
        key: PrivateKey,
        chain: Sequence[x509.Certificate] = (),
        policy_oid: str = POLICY,
        clock: Clock = system_clock,
        serials: Callable[[], int] = x509.random_serial_number,
    ):
        if not _is_tsa_certificate(cert):
            raise TimestampError(
                "the certificate is not a TSA certificate (critical EKU timeStamping only)",
                code="tsa_certificate",
                detail={"subject": cert.subject.rfc4514_string()},
            )
        public = cert.public_key()
        if p.public_der(key.public_key()) != p.public_der(public):  # type: ignore[arg-type]
            raise KeyFileError("the TSA key is not its certificate's", code="ca_key_mismatch")
        self.cert, self.key, self.chain = cert, key, tuple(chain)
        self.policy, self.clock, self.serials = policy_oid, clock, serials
        self._ders = tuple(_cert_der(c) for c in (cert, *self.chain))

    def respond(self, request_der: bytes) -> bytes:
        """Grant a time-stamp token, or answer a rejection with the PKIFailureInfo bit."""
        try:
            req = self._accept(request_der)
            now = self._now()
        except _Refusal as refusal:
            return _rejection(refusal)
        return bytes(
            TimeStampResp({"status": {"status": "granted"}, **self._token(req, now)}).dump()
        )

    def _accept(self, der: bytes) -> tsp.TimeStampReq:
        try:
            return self._checked(der)
        except _Refusal:
            raise
        except Exception as exc:  # asn1crypto fails on hostile DER in whatever way it likes
            why = f"{type(exc).__name__}: {exc}"[:200]
            raise _Refusal("bad_data_format", f"not a DER TimeStampReq ({why})") from exc

    def _checked(self, der: bytes) -> tsp.TimeStampReq:
        req = tsp.TimeStampReq.load(der, strict=True)
        req.native  # noqa: B018  (asn1crypto parses lazily: this parses it all, now)
        if req["version"].native != "v1":
            raise _Refusal("bad_request", "only TimeStampReq version 1 is known")
        imprint = req["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        if algorithm not in HASHES:
            raise _Refusal("bad_alg", f"unsupported hash algorithm {algorithm}")
        if len(imprint["hashed_message"].native) != HASHES[algorithm](b"").digest_size:
            raise _Refusal("bad_data_format", f"the imprint is not a {algorithm} digest")
        if req["req_policy"].native not in (None, self.policy):
            raise _Refusal("unaccepted_policy", f"this TSA time-stamps under {self.policy} only")
        if req["extensions"].native:
            raise _Refusal("unaccepted_extensions", "this TSA accepts no request extensions")
        return req

    def _now(self) -> dt.datetime:
        now = self.clock().astimezone(dt.UTC).replace(microsecond=0)
        if not self.cert.not_valid_before_utc <= now <= self.cert.not_valid_after_utc:
            raise _Refusal("system_failure", "the TSA's certificate is not valid now")
        return now

    def _token(self, req: tsp.TimeStampReq, now: dt.datetime) -> dict[str, Any]:
        certs = [asn1_x509.Certificate.load(der) for der in self._ders]  # this answer's own
        tst_info = tsp.TSTInfo(self._tst_fields(req, now, certs[0]))
        info = tst_info.dump()
        signed = cms.SignedData(
            {
                "version": "v3",
                "digest_algorithms": [{"algorithm": "sha256"}],
                "encap_content_info": {"content_type": "tst_info", "content": tst_info},
                "signer_infos": [self._signer_info(info, now, certs[0])],
                **({"certificates": certs} if req["cert_req"].native else {}),
            }
        )
        return {"time_stamp_token": {"content_type": "signed_data", "content": signed}}

    def _tst_fields(
        self, req: tsp.TimeStampReq, now: dt.datetime, mine: asn1_x509.Certificate
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "version": "v1",
            "policy": self.policy,
            "message_imprint": req["message_imprint"],
            "serial_number": self.serials(),
            "gen_time": now,
            "accuracy": {"seconds": ACCURACY_SECONDS},
            "tsa": asn1_x509.GeneralName(name="directory_name", value=mine.subject),
        }
        if req["nonce"].native is not None:
            fields["nonce"] = req["nonce"].native
        return fields

    def _signer_info(
        self, info: bytes, now: dt.datetime, mine: asn1_x509.Certificate
    ) -> cms.SignerInfo:
        attrs = cms.CMSAttributes(
            [
                {"type": "content_type", "values": ["tst_info"]},
                {"type": "signing_time", "values": [cms.Time(name="utc_time", value=now)]},
                {"type": "message_digest", "values": [hashlib.sha256(info).digest()]},
                {"type": "signing_certificate_v2", "values": [_ess_cert_id(mine)]},
            ]
        )
        return cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier(
                    name="issuer_and_serial_number",
                    value={"issuer": mine.issuer, "serial_number": mine.serial_number},
                ),
                "digest_algorithm": {"algorithm": "sha256"},
                "signed_attrs": attrs,
                "signature_algorithm": {"algorithm": p.cms_signature_algorithm(self.key)},
                "signature": p.cms_sign(self.key, attrs.dump()),
            }
        )


def _ess_cert_id(cert: asn1_x509.Certificate) -> dict[str, Any]:
    """SigningCertificateV2 with one ESSCertIDv2 (SHA-256, the default, so not encoded)."""
    issuer = asn1_x509.GeneralName(name="directory_name", value=cert.issuer)
    return {
        "certs": [
            {
                "cert_hash": hashlib.sha256(cert.dump()).digest(),
                "issuer_serial": {"issuer": [issuer], "serial_number": cert.serial_number},
            }
        ]
    }


def _rejection(refusal: _Refusal) -> bytes:
    status = {
        "status": "rejection",
        "status_string": [refusal.text],
        "fail_info": {refusal.failure},
    }
    return bytes(TimeStampResp({"status": status}).dump())


# reading answers ---------------------------------------------------------------------------


def token_of(response_der: bytes) -> bytes:
    """The token of a granted TimeStampResp; TimestampError tsa_rejected / tsa_malformed."""
    try:
        response = TimeStampResp.load(response_der, strict=True)
        status = response["status"].native
        token = response["time_stamp_token"]
    except (ValueError, TypeError, OverflowError) as exc:
        raise TimestampError(f"not a TimeStampResp: {exc}", code="tsa_malformed") from exc
    if status["status"] not in ("granted", "granted_with_mods"):
        detail = {
            "status": status["status"],
            "fail_info": sorted(status["fail_info"] or ()),
            "text": list(status["status_string"] or ()),
        }
        text = "; ".join(detail["text"]) or ", ".join(detail["fail_info"]) or "no reason given"
        raise TimestampError(f"the TSA refused: {text}", code="tsa_rejected", detail=detail)
    if not isinstance(token, cms.ContentInfo):
        raise TimestampError("a granted TimeStampResp without a token", code="tsa_malformed")
    # The token's bytes as the TSA sent them: never parsed here, so dump() copies them out.
    # (Reading .native first would make asn1crypto re-encode the whole token, ~0.1 s, and turn
    # any BER into DER.) verify_token parses it in full and names any damage tsa_malformed.
    return bytes(token.dump())


# verifying ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Parsed:
    signed: cms.SignedData
    signer: cms.SignerInfo
    info: tsp.TSTInfo
    content: bytes  # the TSTInfo's DER, as signed


def _malformed(message: str, **detail: Any) -> TimestampError:
    return TimestampError(message, code="tsa_malformed", detail=detail)


def _parse(token: bytes) -> _Parsed:
    try:
        outer = cms.ContentInfo.load(token, strict=True)
        outer.native  # noqa: B018  (parse everything now, so damage shows here)
    except (ValueError, TypeError, OverflowError) as exc:
        raise _malformed(f"the token does not parse: {exc}") from exc
    if outer["content_type"].native != "signed_data":
        raise _malformed("the token is not CMS SignedData")
    signed = outer["content"]
    encap = signed["encap_content_info"]
    if encap["content_type"].native != "tst_info" or not isinstance(
        encap["content"].parsed, tsp.TSTInfo
    ):
        raise _malformed("the token does not carry a TSTInfo")
    if len(signed["signer_infos"]) != 1:
        raise _malformed("a token has exactly one signer", signers=len(signed["signer_infos"]))
    signer = signed["signer_infos"][0]
    if not signer["signed_attrs"].native:
        raise _malformed("the signer has no signed attributes")
    return _Parsed(signed, signer, encap["content"].parsed, bytes(encap["content"].contents))


def _attribute(signer: cms.SignerInfo, name: str) -> Any:
    """The single value of a signed attribute, or None."""
    for attr in signer["signed_attrs"]:
        if attr["type"].native == name:
            if len(attr["values"]) != 1:
                raise _malformed(f"the {name} attribute has {len(attr['values'])} values")
            return attr["values"][0]
    return None


def _issued_as(cert: asn1_x509.Certificate, sid: cms.SignerIdentifier) -> bool:
    if sid.name == "subject_key_identifier":
        return bool(cert.key_identifier == sid.chosen.native)
    return bool(
        cert.issuer == sid.chosen["issuer"]
        and cert.serial_number == sid.chosen["serial_number"].native
    )


def _embedded(parsed: _Parsed) -> list[x509.Certificate]:
    """The certificates the token carries (untrusted: candidates for the path only)."""
    try:
        return [
            x509.load_der_x509_certificate(c.chosen.dump())
            for c in parsed.signed["certificates"] or ()
            if c.name == "certificate"
        ]
    except ValueError as exc:
        raise _malformed(f"a certificate in the token does not parse: {exc}") from exc


def _signer_cert(parsed: _Parsed, pool: Sequence[x509.Certificate]) -> x509.Certificate:
    for cert in pool:
        if _issued_as(asn1_x509.Certificate.load(_cert_der(cert)), parsed.signer["sid"]):
            return cert
    raise TimestampError(
        "the token names a signer whose certificate is neither in it nor given "
        "(request with certReq, or pass the TSA certificate)",
        code="tsa_untrusted",
    )


def _bad_signature(message: str, cert: x509.Certificate) -> TimestampError:
    subject = cert.subject.rfc4514_string()
    return TimestampError(message, code="tsa_bad_signature", detail={"tsa": subject})


def _signature_hash(signer: cms.SignerInfo) -> str:
    algorithm = signer["signature_algorithm"]
    if algorithm.signature_algo not in ("ecdsa", "rsassa_pkcs1v15"):
        raise _malformed(f"unsupported signature algorithm {algorithm['algorithm'].native}")
    try:
        return str(algorithm.hash_algo)
    except ValueError:  # rsaEncryption alone: the digest algorithm says the hash
        return str(signer["digest_algorithm"]["algorithm"].native)


def _check_signature(parsed: _Parsed, cert: x509.Certificate) -> None:
    signer = parsed.signer
    digest_name = signer["digest_algorithm"]["algorithm"].native
    if digest_name not in HASHES:
        raise _malformed(f"unsupported digest algorithm {digest_name}")
    if (
        _attribute(signer, "content_type") is None
        or _attribute(signer, "content_type").native != "tst_info"
    ):
        raise _malformed("the signed content-type attribute is not id-ct-TSTInfo")
    declared = _attribute(signer, "message_digest")
    if declared is None or declared.native != HASHES[digest_name](parsed.content).digest():
        raise _bad_signature("the TSTInfo is not the one that was signed", cert)
    signed_attrs = signer["signed_attrs"].untag().dump()
    try:
        p.cms_verify(cert, signer["signature"].native, signed_attrs, _signature_hash(signer))
    except SignatureInvalid as exc:
        raise _bad_signature("the TSA's signature does not verify", cert) from exc
    _check_ess(signer, cert)


def _check_ess(signer: cms.SignerInfo, cert: x509.Certificate) -> None:
    """RFC 5816/2634: the signed attributes name the signing certificate by hash."""
    der = _cert_der(cert)
    v2 = _attribute(signer, "signing_certificate_v2")
    v1 = _attribute(signer, "signing_certificate")
    if v2 is not None:
        first = v2["certs"][0]
        algorithm = first["hash_algorithm"]["algorithm"].native
        if algorithm not in HASHES:
            raise _malformed(f"ESSCertIDv2 uses an unsupported hash {algorithm}")
        expected = HASHES[algorithm](der).digest()
    elif v1 is not None:
        first, expected = v1["certs"][0], hashlib.sha1(der).digest()
    else:
        raise _malformed("no signingCertificate(V2) attribute names the TSA certificate")
    if first["cert_hash"].native != expected:
        raise _bad_signature("the signed attributes name another certificate", cert)


def _anchors(
    trust: Trust, extra: Sequence[x509.Certificate]
) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    if isinstance(trust, TrustStore):
        trust = trust.recognised
    if isinstance(trust, Recognised):
        return list(trust.roots), [*trust.intermediates, *extra]
    return list(trust), list(extra)


def _only_time_stamping(
    policy: verification.Policy, cert: x509.Certificate, eku: x509.ExtendedKeyUsage
) -> None:
    if list(eku) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise ValueError("a TSA certificate's only extended key usage is timeStamping")


# RFC 3161 §2.3: the TSA certificate's EKU is timeStamping alone, critical; it names no host.
_TSA_POLICY = (
    verification.ExtensionPolicy.webpki_defaults_ee()
    .may_be_present(x509.SubjectAlternativeName, verification.Criticality.AGNOSTIC, None)
    .require_present(x509.ExtendedKeyUsage, verification.Criticality.CRITICAL, _only_time_stamping)
)


def _check_chain(
    cert: x509.Certificate, at: dt.datetime, trust: Trust, extra: Sequence[x509.Certificate]
) -> list[x509.Certificate]:
    """The TSA certificate's path to a trusted root at ``at`` (genTime), leaf first.

    cryptography's verifier decides: only ``roots`` are anchors, intermediates are candidates.
    """
    roots, intermediates = _anchors(trust, extra)
    detail = {"tsa": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string()}
    if not roots:
        raise TimestampError("no TSA root is trusted", code="tsa_untrusted", detail=detail)
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store(roots))
        .time(at)
        .max_chain_depth(MAX_DEPTH)
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(), ee_policy=_TSA_POLICY
        )
        .build_client_verifier()
    )
    try:
        return list(verifier.verify(cert, intermediates).chain)
    except verification.VerificationError as exc:
        why = {**detail, "why": str(exc)}
        raise TimestampError(
            f"the TSA is not trusted: {exc}", code="tsa_untrusted", detail=why
        ) from exc


def _second_opinion(token: bytes, path: list[x509.Certificate], imprint: bytes) -> None:
    """rfc3161-client (OpenSSL's PKCS7_verify) checks the token again, given only the path
    already validated: it treats every certificate it is given as trusted, so it must never
    see an unvalidated one (a self-signed TSA certificate would then vouch for itself)."""
    wrapped = TimeStampResp(
        {"status": {"status": "granted"}, "time_stamp_token": cms.ContentInfo.load(token)}
    ).dump()
    try:
        response = rfc3161_client.decode_timestamp_response(wrapped)
        builder = rfc3161_client.VerifierBuilder(
            tsa_certificate=path[0], intermediates=path[1:-1], roots=path[-1:]
        )
        builder.build().verify(response, imprint)
    except (ValueError, rfc3161_client.VerificationError) as exc:
        detail = {"tsa": path[0].subject.rfc4514_string(), "why": str(exc)}
        raise TimestampError(
            f"rfc3161-client refuses the token: {exc}", code="tsa_untrusted", detail=detail
        ) from exc


def _check_request(
    info: TimestampInfo, message: Message, nonce: int | None, policy: str | None
) -> None:
    expected = _digest(message, info.digest.algorithm)
    if expected != info.digest:
        raise TimestampError(
            "the time-stamp is over other data",
            code="tsa_imprint_mismatch",
            detail={"token": info.digest.value.hex(), "expected": expected.value.hex()},
        )
    if nonce is not None and info.nonce != nonce:
        raise TimestampError(
            "the token does not echo our nonce",
            code="tsa_nonce_mismatch",
            detail={"token": info.nonce, "expected": nonce},
        )
    if policy is not None and info.policy != policy:
        raise TimestampError(
            "the token is under another policy",
            code="tsa_policy_mismatch",
            detail={"token": info.policy, "expected": policy},
        )


def _info(parsed: _Parsed, cert: x509.Certificate) -> TimestampInfo:
    tst = parsed.info
    accuracy = tst["accuracy"].native
    imprint = tst["message_imprint"]
    try:
        digest = Digest(
            imprint["hash_algorithm"]["algorithm"].native, imprint["hashed_message"].native
        )
    except ValueError as exc:
        raise _malformed(f"the token's imprint: {exc}") from exc
    return TimestampInfo(
        gen_time=tst["gen_time"].native.astimezone(dt.UTC),
        serial=tst["serial_number"].native,
        tsa=cert.subject.rfc4514_string(),
        tsa_fingerprint=p.fingerprint(cert).hex(),
        policy=tst["policy"].native,
        digest=digest,
        nonce=tst["nonce"].native,
        accuracy=_accuracy(accuracy),
    )


def _accuracy(accuracy: dict[str, int | None] | None) -> dt.timedelta | None:
    if accuracy is None:
        return None
    return dt.timedelta(
        seconds=accuracy.get("seconds") or 0,
        milliseconds=accuracy.get("millis") or 0,
        microseconds=accuracy.get("micros") or 0,
    )


def verify_token(
    token: bytes,
    message: Message,
    trust: Trust,
    *,
    intermediates: Sequence[x509.Certificate] = (),
    nonce: int | None = None,
    policy: str | None = None,
) -> TimestampInfo:
    """What ``token`` says, if it is a trusted TSA's time-stamp over ``message``; else raise.

    ``message`` is the data (hashed with the token's algorithm) or its ``Digest``. ``trust`` is
    a TrustStore, one of its versions, or the trusted roots; ``intermediates`` also lets a token
    made without certReq be checked, by passing the TSA certificate. The TSA's certificate must
    be valid at genTime (RFC 3161's rule), not necessarily now.
    """
    parsed = _parse(token)
    pool = [*_embedded(parsed), *intermediates]
    cert = _signer_cert(parsed, [*pool, *_anchors(trust, ())[1]])
    _check_signature(parsed, cert)
    info = _info(parsed, cert)
    path = _check_chain(cert, info.gen_time, trust, pool)
    _second_opinion(token, path, info.digest.value)
    _check_request(info, message, nonce, policy)
    return info


# the seam: a built-in TSA and external ones behind one interface ---------------------------


class Timestamper(Protocol):
    """What the audit log needs: a verified time-stamp over some data.

    Making and checking a token is 15-60 ms of CPU (DER, signatures, path building): the
    implementations do it on an ``executor``, so that a time-stamp never stalls the event loop
    and every room it serves. None is the loop's default threads; as asn1crypto is pure Python
    and holds the GIL, a thread still makes the loop wait for it, so a server gives them a
    process of its own (bidroom.worker; ``TsaClient`` sends it only picklable arguments, see
    ``accept``).
    """

    async def stamp(self, message: Message) -> Stamp: ...


class LocalStamper:
    """The built-in TSA called in process (the embedded default and the tests)."""

    def __init__(self, tsa: TimeStampAuthority, trust: Trust, executor: Executor | None = None):
        self.tsa, self.trust, self.executor = tsa, trust, executor

    async def stamp(self, message: Message) -> Stamp:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self.stamp_blocking, message)

    def stamp_blocking(self, message: Message) -> Stamp:
        """``stamp`` on the calling thread: for a worker thread or a script, never the loop."""
        nonce = random_nonce()
        token = token_of(self.tsa.respond(request(message, nonce)))
        return Stamp(token, verify_token(token, message, self.trust, nonce=nonce))


def _failure(url: str, exc: Exception) -> dict[str, str]:
    if isinstance(exc, CryptoError):
        return {"url": url, "code": exc.code, "message": exc.message}
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return {"url": url, "code": "tsa_timeout", "message": "no answer in time"}
    return {"url": url, "code": "tsa_unreachable", "message": str(exc) or type(exc).__name__}


class TsaClient:
    """RFC 3161 over HTTP to external TSAs, in order: the first valid token wins.

    Every answer is verified (imprint, nonce, policy when one is asked, signature, trust). A
    TSA that times out, fails, refuses or answers an invalid token is logged and the next one
    is asked; when all fail, one TimestampError (tsa_unavailable) names each failure.
    """

    def __init__(
        self,
        urls: Sequence[str],
        trust: Trust,
        timeout: float = 10.0,
        *,
        intermediates: Sequence[x509.Certificate] = (),
        policy: str | None = None,
        nonces: Callable[[], int] = random_nonce,
        transport: httpx.AsyncBaseTransport | None = None,
        executor: Executor | None = None,
    ):
        if not urls:
            raise ValueError("a TsaClient needs at least one TSA URL")
        self.urls, self.trust, self.timeout = tuple(urls), trust, timeout
        self.intermediates, self.policy, self.nonces = tuple(intermediates), policy, nonces
        self._transport, self.executor = transport, executor

    async def stamp(self, message: Message) -> Stamp:
        digest = _digest(message)
        failures: list[dict[str, str]] = []
        for url in self.urls:
            try:
                nonce = self.nonces()
                async with asyncio.timeout(self.timeout):  # the TSA's answer; not our checking
                    reply = await self._ask(url, digest, nonce)
                roots, intermediates = self._trust_der()
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(
                    self.executor, accept, reply, digest, nonce, roots, intermediates, self.policy
                )
            except (CryptoError, httpx.HTTPError, TimeoutError) as exc:
                failures.append(_failure(url, exc))
                failed = failures[-1]
                extra = {"url": url, "code": failed["code"], "reason": failed["message"]}
                log.warning("time-stamping failed", extra=extra)
        text = "; ".join(f"{f['url']}: {f['message']} ({f['code']})" for f in failures)
        raise TimestampError(
            f"no TSA gave a valid time-stamp: {text}",
            code="tsa_unavailable",
            detail={"failures": failures},
        )

    async def _ask(self, url: str, digest: Digest, nonce: int) -> bytes:
        query = request(digest, nonce, policy=self.policy)
        async with httpx.AsyncClient(timeout=self.timeout, transport=self._transport) as client:
            return await _post(client, url, query)

    def _trust_der(self) -> tuple[list[bytes], list[bytes]]:
        roots, intermediates = _anchors(self.trust, self.intermediates)
        return [_cert_der(c) for c in roots], [_cert_der(c) for c in intermediates]


def accept(
    reply: bytes,
    digest: Digest,
    nonce: int,
    roots: Sequence[bytes],
    intermediates: Sequence[bytes] = (),
    policy: str | None = None,
) -> Stamp:
    """The verified token of a TSA's answer to a request for ``digest`` with ``nonce``, the
    trust given as DER certificates: blocking, and picklable, so that a worker process (which
    shares no objects with its caller) can run it."""
    token = token_of(reply)
    info = verify_token(
        token,
        digest,
        [x509.load_der_x509_certificate(der) for der in roots],
        intermediates=[x509.load_der_x509_certificate(der) for der in intermediates],
        nonce=nonce,
        policy=policy,
    )
    return Stamp(token, info)


async def _post(client: httpx.AsyncClient, url: str, query: bytes) -> bytes:
    headers = {"content-type": QUERY_TYPE, "accept": REPLY_TYPE}
    async with client.stream("POST", url, content=query, headers=headers) as response:
        if response.status_code != 200:
            raise TimestampError(f"HTTP {response.status_code}", code="tsa_unreachable")
        media = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != REPLY_TYPE:
            raise _malformed(f"the answer is {media or 'untyped'}, not {REPLY_TYPE}")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_REPLY:
                raise _malformed(f"the answer exceeds {MAX_REPLY} bytes")
        return bytes(body)
