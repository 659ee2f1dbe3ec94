"""Certificate login over HTTP: a challenge, then a signed answer, then a session token.

    POST /api/login/challenge              -> {"challenge", "origin", "expires_at"}
    POST /api/login {"challenge", "certificate", "chain", "signature"}   (base64 DER / bytes)
                                           -> {"token", "expires_at", "holder", "roles"}

Login answers are rate-limited per client network before anything is read (``429
login_rate_limited`` with Retry-After, ``detail.scope`` "address"); answers that fail are also
counted per certificate and network, and past that budget a failure is answered 429 (scope
"certificate") instead of 401. A valid answer is never refused for its certificate: certificates
are public, and a competitor holding a copy must not be able to lock its holder out
(bidroom.throttle). The certificate checks run on a worker thread, at most
``VERIFYING_AT_ONCE`` at a time, so a flood of logins never holds the node's event loop.

The rules live in ca.login (challenge, path, signature) and in the platform's registry (roles);
this module only decodes, calls and answers. Every refusal has a stable code.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bidroom import audit, tokens
from bidroom.api import error, invalid
from bidroom.settings import Settings
from bidroom.throttle import LoginLimits, network
from ca import login
from ca.errors import CertificateError, CryptoError
from ca.trust import TrustStore

MAX_CHAIN = 5
VERIFYING_AT_ONCE = 2  # certificate checks in flight per node; more logins wait their turn


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    challenge: str = Field(min_length=10, max_length=512)
    certificate: str = Field(min_length=10, max_length=16384)
    chain: list[Annotated[str, Field(max_length=16384)]] = Field(
        default_factory=list, max_length=MAX_CHAIN
    )
    signature: str = Field(min_length=10, max_length=2048)


def _secret(settings: Settings) -> bytes:
    assert settings.secret_key is not None, "the app refuses to start without a secret key"
    return settings.secret_key.get_secret_value().encode()


def _origin(request: Request) -> str | None:
    """The origin a challenge is for: the platform's own; a browser's Origin must match it."""
    settings: Settings = request.app.state.settings
    mine = settings.base_url
    sent = request.headers.get("origin")
    return mine if sent in (None, mine) else None


async def challenge(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    origin = _origin(request)
    if origin is None:
        return error(403, "challenge_origin", "this site does not issue challenges for that origin")
    now = request.app.state.hub.clock()
    ttl = timedelta(seconds=settings.login_challenge_seconds)
    token = login.issue_challenge(_secret(settings), origin, now, ttl)
    return JSONResponse(
        {"challenge": token, "origin": origin, "expires_at": (now + ttl).isoformat()}
    )


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CryptoError("a field is not base64", code="invalid_args") from exc


async def answer(request: Request) -> Response:
    net = network(request.client.host if request.client else "unknown")
    limits: LoginLimits = request.app.state.login_limits
    refused = _throttled(limits.by_address.take(net, time.monotonic()), "address")
    if refused is not None:
        return refused
    try:
        body = Answer.model_validate_json(await request.body())
    except ValidationError as exc:
        return error(422, "invalid_args", "invalid login", invalid(exc))
    origin = _origin(request)
    if origin is None:
        return error(403, "challenge_origin", "the login comes from another site")
    try:
        return await _login(request, body, origin)
    except (CertificateError, CryptoError) as exc:
        failed = f"{_fingerprint(body.certificate)} {net}"
        refused = _throttled(limits.by_certificate.take(failed, time.monotonic()), "certificate")
        if refused is not None:
            return refused
        detail = _public(exc.detail) if isinstance(exc, CertificateError) else {}
        return error(401, exc.code, exc.message, detail)


async def _login(request: Request, body: Answer, origin: str) -> Response:
    state = request.app.state
    settings: Settings = state.settings
    now: datetime = state.hub.clock()
    issued = login.read_challenge(body.challenge, _secret(settings), origin, now)
    certificate, chain = _b64(body.certificate), [_b64(c) for c in body.chain]
    message, signature = login.signed_message(origin, body.challenge), _b64(body.signature)
    async with state.login_verifying:  # path and signature: CPU, off the loop, bounded
        holder = await asyncio.to_thread(
            login.verify_signed,
            TrustStore(settings.trust_root),
            certificate,
            chain,
            message,
            signature,
            now,
        )
    expires = datetime.fromtimestamp(issued.expires, UTC)
    if not await state.store.use_nonce(issued.nonce, expires, now):
        return error(401, "challenge_replayed", "this challenge was answered before")
    known = await state.store.roles_of(login.holder_keys(holder))
    if known is None or not known[1]:
        return error(
            403,
            "holder_unknown",
            "the platform has given this holder no role",
            {"holder": login.holder_keys(holder)},
        )
    subject, roles = known
    await state.store.signed_in(subject, holder.organisation)
    await state.store.record(
        [
            audit.Entry(
                now,
                subject,
                "auth.login",
                objects={
                    "certificate": holder.fingerprint,
                    "challenge": audit.digest(body.challenge.encode()),
                },
            )
        ]
    )
    ttl = timedelta(seconds=settings.token_ttl_seconds)
    bound = tokens.bound(login.load_chain(certificate, [])[0])  # the session's certificate
    identity = tokens.Identity(subject, holder.name, tuple(roles), None, holder.organisation, bound)
    token = tokens.mint(identity, settings.secret_key.get_secret_value(), now, ttl)  # type: ignore[union-attr]
    return JSONResponse(
        {
            "token": token,
            "expires_at": (now + ttl).isoformat(),
            "roles": roles,
            "holder": {
                "subject": subject,
                "name": holder.name,
                "organisation": holder.organisation,
                "uscc": holder.uscc,
                "fingerprint": holder.fingerprint,
            },
        }
    )


def _fingerprint(certificate: str) -> str:
    """The bucket's key: the SHA-256 of the certificate's DER (of the text if it is not base64,
    which the login then refuses anyway)."""
    try:
        der = base64.b64decode(certificate, validate=True)
    except (binascii.Error, ValueError):
        der = certificate.encode()
    return hashlib.sha256(der).hexdigest()


def _throttled(wait: int, scope: str) -> Response | None:
    """429 when a bucket is empty: a flood of logins (from one address, or for one
    certificate) must not take the node's time from the people in its rooms."""
    if not wait:
        return None
    response = error(
        429,
        "login_rate_limited",
        f"too many login attempts from this {scope}: try again in {wait} s",
        {"scope": scope, "retry_after": wait},
    )
    response.headers["retry-after"] = str(wait)
    return response


def _public(detail: Any) -> dict[str, Any]:
    """Evidence a refused holder may see: plain values only."""
    return {k: v for k, v in dict(detail).items() if isinstance(v, str | int | None)}
