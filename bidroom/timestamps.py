"""Trusted time in the app: ``POST /tsa`` (the built-in TSA over HTTP, RFC 3161 §3.4), and the
choice made at start between the built-in TSA and external ones. The rules are in ca.tsa.

With no BIDROOM_TSA_URL (the embedded default, the demo, the tests) the built-in TSA signs
(bidroom.builtin_tsa: its folder, BIDROOM_TSA_DIR, by default ``<var>/tsa``, made at first
start), for the platform itself (``app.state.timestamper``) and over ``POST /tsa`` for anyone.

With BIDROOM_TSA_URL (production, an accredited TSA) and optionally BIDROOM_TSA_FALLBACK_URL,
``POST /tsa`` answers 404 and the timestamper is a ``ca.tsa.TsaClient`` that trusts the roots in
BIDROOM_TSA_ROOTS (a PEM file), or else the platform's trust store.

Either way the CPU work (the built-in TSA's answer, every token's check) runs in the node's
worker process (bidroom.worker), never on the event loop's thread.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from bidroom import throttle
from bidroom.api import error
from bidroom.builtin_tsa import BuiltinStamper, BuiltinTsa, builtin
from bidroom.errors import ConfigError
from bidroom.settings import Settings
from ca import primitives as p
from ca import tsa
from ca.errors import TimestampError
from ca.trust import TrustStore

log = logging.getLogger(__name__)

MAX_QUERY = 64 * 1024  # a TimeStampReq is about 100 bytes; anything near this is not one
KEY_INFO = b"bidroom tsa key password v1"
# POST /tsa is open to anyone, and its answers share the time worker with the platform's own
# stamps (a bid's receipt is stamped when the worker reaches it): per node, at most this many
# public answers wait there at once (the rest are 503 tsa_busy, never queued) ...
PUBLIC_AT_ONCE = 2
# ... and one client network gets this many a minute (429 tsa_rate_limited).
PUBLIC_PER_MINUTE = 60


@dataclass
class PublicLimits:
    """What POST /tsa may take of a node: requests by client network, answers at once."""

    by_network: throttle.Buckets = field(
        default_factory=lambda: throttle.Buckets(PUBLIC_PER_MINUTE)
    )
    waiting: int = 0


# POST /tsa ---------------------------------------------------------------------------------


async def endpoint(request: Request) -> Response:
    """RFC 3161 over HTTP: a DER TimeStampReq in, a DER TimeStampResp out (also rejections)."""
    authority: BuiltinStamper | None = getattr(request.app.state, "tsa", None)
    if authority is None:
        return error(404, "tsa_external", "this platform time-stamps with an external TSA")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != tsa.QUERY_TYPE:
        return error(415, "tsa_media_type", f"send the request as {tsa.QUERY_TYPE}")
    limits: PublicLimits = request.app.state.tsa_public
    net = throttle.network(request.client.host if request.client else "unknown")
    wait = limits.by_network.take(net, time.monotonic())
    if wait:
        refused = error(429, "tsa_rate_limited", f"at most {PUBLIC_PER_MINUTE} a minute")
        refused.headers["Retry-After"] = str(wait)
        return refused
    query = await _body(request, MAX_QUERY)
    if query is None:
        return error(413, "tsa_too_large", f"a time-stamp request is at most {MAX_QUERY} bytes")
    if limits.waiting >= PUBLIC_AT_ONCE:
        busy = error(503, "tsa_busy", "the TSA is answering others: ask again in a second")
        busy.headers["Retry-After"] = "1"
        return busy
    limits.waiting += 1
    try:
        answer = await authority.respond(query)
    except TimestampError as exc:
        return error(503, exc.code, exc.message)
    finally:
        limits.waiting -= 1
    return Response(answer, media_type=tsa.REPLY_TYPE)


async def _body(request: Request, limit: int) -> bytes | None:
    """The request body, or None if it is over ``limit`` (read no further than that)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return None
    except ClientDisconnect:
        return None
    return bytes(body)


# the choice at start -----------------------------------------------------------------------


def open_timestamping(
    settings: Settings, now: datetime | None = None, *, worker: Executor | None = None
) -> tuple[BuiltinStamper | None, tsa.Timestamper]:
    """The built-in TSA (None with an external one) and the timestamper the platform uses,
    which make and check tokens on ``worker`` (the node's worker process; None: the loop's
    default threads, for a command run once)."""
    now = now or tsa.system_clock()
    if settings.tsa_url is None:
        if settings.tsa_fallback_url:
            raise ConfigError("BIDROOM_TSA_FALLBACK_URL is set without BIDROOM_TSA_URL")
        password = key_password(settings)
        authority, root = builtin(settings.tsa_folder, now, password)  # made, checked, locked
        where = BuiltinTsa(str(settings.tsa_folder), password)
        stamper = BuiltinStamper(where, authority.cert, root, worker)
        return stamper, stamper
    urls = [settings.tsa_url, *filter(None, [settings.tsa_fallback_url])]
    trust = _external_trust(settings)
    return None, tsa.TsaClient(urls, trust, settings.tsa_timeout_seconds, executor=worker)


def pinned(settings: Settings, clock: Callable[[], datetime]) -> tsa.LocalStamper:
    """The built-in TSA in this process, reading ``clock`` (the demo's and the tests' time
    travel: the TSA's genTime follows the rooms' pinned clock)."""
    authority, root = builtin(settings.tsa_folder, tsa.system_clock(), key_password(settings))
    moved = tsa.TimeStampAuthority(authority.cert, authority.key, authority.chain, clock=clock)
    return tsa.LocalStamper(moved, [root])


def _external_trust(settings: Settings) -> tsa.Trust:
    if settings.tsa_roots is None:
        return TrustStore(settings.trust_root)
    try:
        return x509.load_pem_x509_certificates(settings.tsa_roots.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"BIDROOM_TSA_ROOTS: cannot read {settings.tsa_roots}: {exc}") from exc


def key_password(settings: Settings) -> bytes:
    """The password of the built-in TSA's key file, derived with HKDF from BIDROOM_TSA_SECRET, a
    secret of its own (docs/operations.md "The built-in TSA's key"): a copy of the var folder
    alone does not give the key away, nor does the session key."""
    if settings.tsa_secret is None:
        raise ConfigError("BIDROOM_TSA_SECRET is not set: the built-in TSA's key is locked by it")
    secret = settings.tsa_secret.get_secret_value().encode()
    derived = p.hkdf_expand(p.hkdf_extract(b"", secret), KEY_INFO, 32)
    return base64.urlsafe_b64encode(derived)  # text, should an operator ever need openssl
