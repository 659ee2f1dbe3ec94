"""ICE servers from settings, with short-lived TURN credentials (coturn's REST API format).

coturn (``use-auth-secret`` + ``static-auth-secret``) accepts a username ``"<expiry>:<user>"``
(expiry in Unix seconds) with the credential ``base64(HMAC-SHA1(secret, username))``, so the
platform mints credentials without talking to the TURN server, and a leaked one expires on its
own. None are configured by default: then the list is empty and peers use host candidates only.
Time comes in as a parameter.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class IceServer:
    """One entry of RTCConfiguration.iceServers."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"urls": list(self.urls)}
        if self.username is not None:
            body |= {"username": self.username, "credential": self.credential}
        return body


def turn_credentials(secret: str, participant: str, now: int, ttl: int) -> tuple[str, str]:
    """The (username, credential) pair coturn's REST API expects, valid until ``now + ttl``."""
    username = f"{now + ttl}:{participant}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers(
    stun: Sequence[str],
    turn: Sequence[str],
    secret: str | None,
    participant: str,
    now: int,
    ttl: int,
) -> list[IceServer]:
    """STUN servers as they are; TURN servers with credentials for ``participant``."""
    servers = [IceServer(tuple(stun))] if stun else []
    if turn:
        if secret is None:
            raise ValueError("TURN servers need the shared secret (BIDROOM_TURN_SECRET)")
        username, credential = turn_credentials(secret, participant, now, ttl)
        servers.append(IceServer(tuple(turn), username, credential))
    return servers
