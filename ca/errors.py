"""Every error ca/ raises. Each carries a stable code and the evidence a person can act on.

    CryptoError (code, message, detail)
    ├── KeyFileError           a key file cannot be read, or is of a kind bidroom does not use
    ├── SignatureInvalid       a signature does not verify under the claimed key
    ├── HpkeError              HPKE could not open (wrong recipient, altered ciphertext)
    ├── EnvelopeError          a sealed bid is malformed or was tampered with
    │   └── (codes: envelope_header, envelope_truncated, envelope_chunk, envelope_signature ...)
    └── ShareError             a key share is wrong, missing, or there are too few

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
