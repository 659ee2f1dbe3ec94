"""Session tokens: signed (HMAC-SHA256 JWT), expiring, holding the subject and its roles.

Certificate login (ca/) will be the only issuer in production; until it lands, the demo and the
tests mint tokens through :func:`mint`, the same function login will call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from bidroom.errors import AuthError
from bidroom.roles import ROLES as ROLES

ISSUER = "bidroom"
ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a verified token speaks for, and in which roles."""

    subject: str
    name: str
    roles: tuple[str, ...]
    venue: str | None = None
    organisation: str | None = None


def mint(identity: Identity, key: str, now: datetime, ttl: timedelta) -> str:
    unknown = set(identity.roles) - ROLES
    if unknown or not identity.roles:
        raise AuthError(f"unknown roles {sorted(unknown)}", code="bad_roles")
    claims = {
        "iss": ISSUER,
        "sub": identity.subject,
        "name": identity.name,
        "roles": list(identity.roles),
        "venue": identity.venue,
        "org": identity.organisation,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def verify(token: str, key: str, now: datetime) -> Identity:
    """The identity a token holds; AuthError (code token_expired / token_invalid) otherwise."""
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
    roles = claims.get("roles")
    if not isinstance(roles, list) or not _is_roles(roles):
        raise AuthError("the session token holds no roles", code="token_invalid")
    return Identity(
        str(claims["sub"]),
        str(claims.get("name") or claims["sub"]),
        tuple(roles),
        claims.get("venue"),
        claims.get("org"),
    )


def _is_roles(roles: object) -> bool:
    return isinstance(roles, list) and bool(roles) and all(r in ROLES for r in roles)


def role_for(identity: Identity, wanted: str | None, allowed: Sequence[str]) -> str | None:
    """The role an identity acts in, in a room: the one asked for, or its first allowed one."""
    if wanted is not None:
        return wanted if wanted in identity.roles else None
    return next((r for r in identity.roles if r in allowed), identity.roles[0])
