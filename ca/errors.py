"""Every error ca/ raises. Each carries a stable code and the evidence a person can act on.

    CryptoError (code, message, detail)
    ├── KeyFileError           a key file cannot be read, or is of a kind bidroom does not use
    ├── SignatureInvalid       a signature does not verify under the claimed key
    ├── HpkeError              HPKE could not open (wrong recipient, altered ciphertext)
    ├── EnvelopeError          a sealed bid is malformed or was tampered with
    │   └── (codes, docs/envelope.md "Errors": envelope_header, envelope_header_field,
    │        envelope_base64, envelope_bidder_key, envelope_version, envelope_truncated,
    │        envelope_chunk_short, envelope_chunk_empty, envelope_wrong_recipient,
    │        envelope_header_mismatch, envelope_chunk_altered, envelope_chunk_dropped,
    │        envelope_chunk_repeated, envelope_chunk_reordered, envelope_chunk_final,
    │        envelope_trailer, envelope_body_digest, envelope_signature, envelope_wrong_key;
    │        at upload also envelope_lot, envelope_opening_key)
    ├── ShareError             a key share is wrong, missing, or there are too few
    │   └── (codes: share_commitment_mismatch, share_too_few, share_duplicate, share_other_lot,
    │        share_other_key, share_uncommitted, share_malformed, share_key_mismatch,
    │        share_commitments, share_split, share_file, share_file_recipient, share_file_open)
    ├── TimestampError         an RFC 3161 time-stamp is refused, or no TSA could give one
    │   └── (codes: tsa_malformed, tsa_bad_signature, tsa_untrusted, tsa_imprint_mismatch,
    │        tsa_nonce_mismatch, tsa_policy_mismatch, tsa_rejected, tsa_unavailable)
    ├── PdfSignatureError      a PDF's PAdES signatures cannot be made or do not hold
    ├── AuditError             the audit log's proofs or checkpoints do not hold
    │   └── (codes: audit_index_out_of_range, audit_hash_malformed, audit_inclusion_invalid,
    │        audit_consistency_invalid, audit_note_malformed, audit_note_unknown_key,
    │        audit_note_signature, audit_key_malformed, audit_checkpoint_malformed,
    │        audit_checkpoint_origin, audit_checkpoint_rollback, audit_fork,
    │        audit_rotation_malformed, audit_rotation_chain, audit_rotation_root; the verifier's
    │        audit_key_required, audit_tsa_roots_required, audit_tsa_roots_missing,
    │        audit_no_checkpoint, audit_timestamp, audit_entry_uncovered, audit_bundle_short;
    │        a node's audit_key_continuity, audit_rollback)
    └── CertificateError       a certificate, its chain or a CA input is not accepted
        │   (base codes: chain_invalid, csr_invalid, bad_uscc, bad_identity, not_a_ca)
        ├── UnknownIssuer          unknown_issuer: no path to a recognised root
        ├── CertificateExpired     cert_expired: a certificate of the path ended before `at`
        ├── CertificateNotYetValid cert_not_yet_valid: a certificate starts after `at`
        ├── CertificateRevoked     cert_revoked: on its issuer's CRL, revoked at or before `at`
        ├── RevocationUnknown      revocation_unknown: no usable CRL (none, stale, badly signed)
        ├── WrongKeyUsage          wrong_key_usage: the key may not be used for this purpose
        └── BadChainSignature      bad_chain_signature: an issuer's key did not sign the child

``verify_*`` functions never return False: they return nothing or raise one of these.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class CryptoError(Exception):
    code = "crypto"

    def __init__(
        self, message: str, *, code: str | None = None, detail: Mapping[str, Any] | None = None
    ):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.detail: Mapping[str, Any] = dict(detail or {})

    def __str__(self) -> str:
        return self.message


class KeyFileError(CryptoError):
    code = "key_unreadable"


class SignatureInvalid(CryptoError):
    code = "signature_invalid"


class HpkeError(CryptoError):
    code = "hpke_open_failed"


class EnvelopeError(CryptoError):
    code = "envelope_invalid"


class ShareError(CryptoError):
    code = "share_invalid"


class TimestampError(CryptoError):
    """A time-stamp token or a TSA's answer that is not accepted; ``code`` says which check."""

    code = "tsa_malformed"


class CertificateError(CryptoError):
    code = "chain_invalid"


class UnknownIssuer(CertificateError):
    code = "unknown_issuer"


class CertificateExpired(CertificateError):
    code = "cert_expired"


class CertificateNotYetValid(CertificateError):
    code = "cert_not_yet_valid"


class CertificateRevoked(CertificateError):
    code = "cert_revoked"


class RevocationUnknown(CertificateError):
    code = "revocation_unknown"


class WrongKeyUsage(CertificateError):
    code = "wrong_key_usage"


class BadChainSignature(CertificateError):
    code = "bad_chain_signature"


class AuditError(CryptoError):
    """The audit log (Merkle tree, signed checkpoints) does not prove what it claims.

    ``code`` says which check failed; ``detail`` holds the sizes, indices or key names involved.
    """

    code = "audit_invalid"


class PdfSignatureError(CryptoError):
    """A signed PDF (PAdES, ca.pades) that cannot be signed or whose signatures do not hold.

    Codes: pdf_unreadable, pdf_sign_failed, pdf_unsigned, pdf_signature_broken (the bytes no
    longer match), pdf_signer_untrusted, pdf_signer_revoked, pdf_timestamp_invalid,
    pdf_modified (a later revision changed more than signatures); for a signature made in two
    halves (ca.pades.prepare / finish): signature_invalid (the holder's signature does not verify
    over the prepared attributes), pdf_state_invalid (the prepared state is not one prepare made).
    ``detail`` names the field.
    """

    code = "pdf_signature_invalid"
