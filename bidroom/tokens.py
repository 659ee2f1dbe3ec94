"""Session tokens: signed (HMAC-SHA256 JWT), expiring, holding the subject and its roles.

Certificate login (bidroom.login) mints a token BOUND to the certificate it was issued for (the
``cert`` claim: the certificate's SHA-256 fingerprint, its issuer's name and its serial): a
signed action must be signed with that certificate (bidroom.signed), and the certificate's
revocation ends the session (bidroom.revocation). The operator's ``bidroom token`` mints
unbound tokens: good for reading and unsigned commands, refused on every signed action
(``session_unbound``). A token issued more than :data:`CLOCK_SKEW` in the future is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from bidroom.errors import AuthError
from bidroom.roles import ROLES as ROLES

ISSUER = "bidroom"
ALGORITHM = "HS256"
# How far in the future a token's iat may lie (the nodes' clocks drift apart a little); beyond
# it the token is refused: token_not_yet_valid.
CLOCK_SKEW = timedelta(seconds=60)
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class Bound:
    """The certificate a session was issued for: enough to recognise it in a signed action
    (its fingerprint) and in a CRL (its issuer's name and its serial)."""

    fingerprint: str  # SHA-256 of the certificate's DER, lowercase hex
    issuer: str  # SHA-256 of the DER of the certificate's issuer Name, lowercase hex
    serial: str  # the certificate's serial number, lowercase hex

    def claim(self) -> dict[str, str]:
        return {"sha256": self.fingerprint, "issuer": self.issuer, "serial": self.serial}


def bound(certificate: x509.Certificate) -> Bound:
    """The binding of a session to ``certificate`` (what login puts into the token)."""
    return Bound(
        hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest(),
        issuer_digest(certificate.issuer),
        format(certificate.serial_number, "x"),
    )


def issuer_digest(name: x509.Name) -> str:
    return hashlib.sha256(name.public_bytes()).hexdigest()


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a verified token speaks for, and in which roles."""

    subject: str
    name: str
    roles: tuple[str, ...]
    venue: str | None = None
    organisation: str | None = None
    certificate: Bound | None = None  # None: an unbound token (`bidroom token`)


def mint(identity: Identity, key: str, now: datetime, ttl: timedelta) -> str:
    unknown = set(identity.roles) - ROLES
    if unknown or not identity.roles:
        raise AuthError(f"unknown roles {sorted(unknown)}", code="bad_roles")
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": identity.subject,
        "name": identity.name,
        "roles": list(identity.roles),
        "venue": identity.venue,
        "org": identity.organisation,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    if identity.certificate is not None:
        claims["cert"] = identity.certificate.claim()
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def verify(token: str, key: str, now: datetime) -> Identity:
    """The identity a token holds; AuthError (code token_expired / token_not_yet_valid /
    token_invalid) otherwise."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={
                "require": ["exp", "iat", "sub", "iss"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.PyJWTError as exc:
        raise AuthError("the session token is not valid", code="token_invalid") from exc
    if claims["exp"] <= now.timestamp():
        raise AuthError("the session token has expired; sign in again", code="token_expired")
    if not isinstance(claims["iat"], int) or claims["iat"] > (now + CLOCK_SKEW).timestamp():
        raise AuthError(
            "the session token was issued in the future; sign in again",
            code="token_not_yet_valid",
        )
    roles = claims.get("roles")
    if not isinstance(roles, list) or not _is_roles(roles):
        raise AuthError("the session token holds no roles", code="token_invalid")
    return Identity(
        str(claims["sub"]),
        str(claims.get("name") or claims["sub"]),
        tuple(roles),
        claims.get("venue"),
        claims.get("org"),
        _bound(claims.get("cert")),
    )


def _bound(claim: Any) -> Bound | None:
    if claim is None:
        return None
    fields = ("sha256", "issuer", "serial")
    if not isinstance(claim, dict) or set(claim) != set(fields):
        raise AuthError("the session token's certificate is malformed", code="token_invalid")
    values = [claim[f] for f in fields]
    if not all(isinstance(v, str) and v and set(v) <= _HEX for v in values):
        raise AuthError("the session token's certificate is malformed", code="token_invalid")
    return Bound(*values)


def _is_roles(roles: object) -> bool:
    return isinstance(roles, list) and bool(roles) and all(r in ROLES for r in roles)


def role_for(identity: Identity, wanted: str | None, allowed: Sequence[str]) -> str | None:
    """The role an identity acts in, in a room: the one asked for, or its first allowed one."""
    if wanted is not None:
        return wanted if wanted in identity.roles else None
    return next((r for r in identity.roles if r in allowed), identity.roles[0])
