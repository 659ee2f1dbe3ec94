"""Certificate login, and the signature check every consequential command reuses.

    1. The server issues a challenge: a nonce, the origin it is for and an expiry, MACed with the
       server's key (stateless, so any node can check it).
    2. The holder's device signs ``signed_message(origin, challenge)`` with the certificate key,
       which never leaves the device.
    3. The server checks the challenge (MAC, expiry, origin), the certificate path at this moment
       (trust store, revocation: hard fail) and the signature; the caller then records the nonce
       as used (a replay is refused) and looks the holder up in the platform's own registry.

Time is a parameter; ``verify_*`` functions raise and never return False.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509

from ca import primitives as p
from ca.envelope import canonical
from ca.errors import CryptoError, SignatureInvalid
from ca.trust import Holder, TrustStore, Usage

LOGIN_PREFIX = b"bidroom login v1\n"
ACTION_PREFIX = b"bidroom action v1\n"
NONCE_BYTES = 32


class LoginError(CryptoError):
    code = "login_failed"


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Challenge:
    nonce: str
    origin: str
    expires: int


def issue_challenge(
    key: bytes, origin: str, now: datetime, ttl: timedelta, nonce: bytes | None = None
) -> str:
    """A challenge token: base64url(JSON {n, o, e}) "." base64url(HMAC-SHA256)."""
    claims = {
        "n": _b64u(nonce or os.urandom(NONCE_BYTES)),
        "o": origin,
        "e": int((now + ttl).timestamp()),
    }
    payload = _b64u(json.dumps(claims, sort_keys=True, separators=(",", ":")).encode())
    return f"{payload}.{_b64u(_mac(key, payload))}"


def _mac(key: bytes, payload: str) -> bytes:
    return hmac.new(key, b"bidroom challenge\n" + payload.encode(), hashlib.sha256).digest()


def read_challenge(token: str, key: bytes, origin: str, now: datetime) -> Challenge:
    """The challenge in ``token`` if it is ours, unexpired and for ``origin``; else LoginError."""
    payload, _, mac = token.partition(".")
    try:
        if not hmac.compare_digest(_unb64u(mac), _mac(key, payload)):
            raise ValueError("not our MAC")
        claims = json.loads(_unb64u(payload))
        challenge = Challenge(str(claims["n"]), str(claims["o"]), int(claims["e"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise LoginError("the login challenge is not ours", code="challenge_invalid") from exc
    if now.timestamp() >= challenge.expires:
        raise LoginError(
            "the login challenge has expired; ask for a new one", code="challenge_expired"
        )
    if challenge.origin != origin:
        raise LoginError(
            "the login challenge was issued for another site",
            code="challenge_origin",
            detail={"origin": challenge.origin},
        )
    return challenge


def signed_message(origin: str, challenge: str) -> bytes:
    """What the holder signs to log in: the site and the challenge, so neither can be moved."""
    return LOGIN_PREFIX + origin.encode() + b"\n" + challenge.encode()


def load_chain(
    certificate: bytes, chain: Sequence[bytes]
) -> tuple[x509.Certificate, list[x509.Certificate]]:
    try:
        return (
            x509.load_der_x509_certificate(certificate),
            [x509.load_der_x509_certificate(c) for c in chain],
        )
    except ValueError as exc:
        raise LoginError("a certificate cannot be read", code="cert_unreadable") from exc


def verify_signed(
    store: TrustStore,
    certificate: bytes,
    chain: Sequence[bytes],
    message: bytes,
    signature: bytes,
    at: datetime,
) -> Holder:
    """The holder who signed ``message``: a valid path at ``at`` and a signature by its key.

    Used for login and for every consequential command (decrypt, confirm, score, sign).
    """
    cert, intermediates = load_chain(certificate, chain)
    verified = store.verify_certificate(cert, intermediates, at, Usage.SIGN)
    try:
        p.verify_signature(p.accept_public_key(cert.public_key()), signature, message)
    except SignatureInvalid as exc:
        raise LoginError(
            "the signature is not by this certificate's key", code="signature_invalid"
        ) from exc
    return verified.holder


def action_message(action: str, fields: Mapping[str, Any]) -> bytes:
    """The bytes a holder signs for the signed action ``action`` with ``fields`` (docs/opening.md
    "Signed actions"; ``action`` itself is a field): the prefix, then canonical JSON."""
    return ACTION_PREFIX + canonical({**fields, "action": action})


def holder_keys(holder: Holder) -> list[str]:
    """The registry keys of a holder, most stable first: the organisation's USCC survives a
    certificate renewal; the certificate fingerprint names one certificate exactly."""
    keys = [f"uscc:{holder.uscc}"] if holder.uscc else []
    return [*keys, f"cert:{holder.fingerprint}"]
