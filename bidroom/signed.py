"""Signed actions over HTTP (docs/opening.md "Signed actions"): a consequential action carries
a signature by the holder's certificate key, checked at the server's time.

    message = "bidroom action v1\\n" + canonical_json({"action": ..., "room" or "lot": ..., ...})
    body    = {...fields, "certificate": <DER b64>, "chain": [<DER b64>...], "signature": <b64>}

The session must be bound to a certificate (certificate login; 403 ``session_unbound`` for a
token `bidroom token` minted), the signing certificate must be that one (403
``session_certificate_mismatch``), valid and unrevoked at the server's time (ca's codes:
``cert_revoked``, ...), and its registry subject the session's subject (403 ``signer_mismatch``,
checked before the certificate: another holder is named as such).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bidroom.errors import NotAllowed, TenderError
from ca import login
from ca.errors import CryptoError
from ca.login import action_message
from ca.trust import Holder, TrustStore

if TYPE_CHECKING:  # a bidder's `bid withdraw` signs with action_message: no store, no settings
    from bidroom.settings import Settings
    from bidroom.store import Store
    from bidroom.tokens import Identity

MAX_CHAIN = 5
__all__ = ["action_message", "verify_action"]


def _b64(value: Any, name: str) -> bytes:
    if not isinstance(value, str):
        raise TenderError(f"{name} is base64 text", code="invalid_args", detail={"field": name})
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TenderError(
            f"{name} is not base64", code="invalid_args", detail={"field": name}
        ) from exc


def _verified(
    trust_root: Path,
    certificate: bytes,
    intermediates: list[bytes],
    message: bytes,
    signature: bytes,
    now: datetime,
) -> Holder:
    return login.verify_signed(
        TrustStore(trust_root), certificate, intermediates, message, signature, now
    )


async def verify_action(
    settings: Settings,
    store: Store,
    identity: Identity,
    body: Mapping[str, Any],
    action: str,
    fields: Mapping[str, Any],
    now: datetime,
) -> Holder:
    """The holder who signed ``action`` over ``fields`` with the certificate the session is
    bound to; they must be the session's subject.

    A session not bound to a certificate raises NotAllowed ``session_unbound`` (before anything
    else is read); a refused certificate or signature NotAllowed with ca's code (cert_revoked,
    signature_invalid, ...: the path and its revocation are checked at ``now``); another holder
    than the session's ``signer_mismatch``; the session's holder signing with another certificate
    than the session's (a renewed one, say) ``session_certificate_mismatch``.
    """
    if identity.certificate is None:
        raise NotAllowed(
            "this session was not opened by signing in with a certificate: sign in with your "
            "certificate to sign",
            code="session_unbound",
        )
    chain = body.get("chain") or []
    if not isinstance(chain, list) or len(chain) > MAX_CHAIN:
        raise TenderError(f"chain is a list of at most {MAX_CHAIN}", code="invalid_args")
    certificate = _b64(body.get("certificate"), "certificate")
    intermediates = [_b64(c, "chain") for c in chain]
    signature = _b64(body.get("signature"), "signature")
    try:
        # Reading the trust store's files, the chain and the signature: off the event loop.
        holder = await asyncio.to_thread(
            _verified,
            settings.trust_root,
            certificate,
            intermediates,
            action_message(action, fields),
            signature,
            now,
        )
    except CryptoError as exc:
        raise NotAllowed(exc.message, code=exc.code) from exc
    known = await store.roles_of(login.holder_keys(holder))
    if known is None or known[0] != identity.subject:
        raise NotAllowed(
            "the signature is by another holder than the one signed in",
            code="signer_mismatch",
            detail={"signer": known[0] if known else None},
        )
    if holder.fingerprint != identity.certificate.fingerprint:
        raise NotAllowed(
            "the signature is by another certificate than the one this session was opened with",
            code="session_certificate_mismatch",
            detail={"signer": holder.fingerprint, "session": identity.certificate.fingerprint},
        )
    return holder
