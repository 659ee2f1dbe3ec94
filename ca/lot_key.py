"""A lot's signed key statement: what the publishing chair signs and every sealer checks
(docs/opening.md "The signed lot key").

The platform makes a lot's opening key at publication; the database then serves it to every
sealer. Without more, an operator who replaces the key in the database gets bids sealed to a key
it holds. So the tender's own chair signs the lot's public parts in their browser, with their
certificate key, as a signed action (``lot.sign_key``), and a sealer seals only to a key so
signed:

    message = "bidroom action v1\\n" + canonical({"action": "lot.sign_key", **statement(lot)})

The statement is made from the served lot's own fields (:data:`FIELDS`), so the key a sealer
seals to is the key that was signed. :func:`verify` is the sealer's whole check, with what the
sealer holds itself: its trust roots (the signer's certificate path at the moment of sealing)
and the tender's owner as the published notice names it (:func:`signer_is`), since everything
the platform serves, the statement's ``owner`` included, is the platform's word. Pure apart
from the trust store's files.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ca import primitives as p
from ca import shares
from ca.errors import CryptoError
from ca.login import action_message, holder_keys, verify_signed
from ca.organisations import organisation_keys
from ca.trust import Holder, TrustStore

ACTION = "lot.sign_key"
# the fields of a served lot the chair signs (docs/opening.md "The signed lot key")
FIELDS = (
    "id",
    "tender",
    "owner",
    "deadline",
    "opening_key",
    "key_fingerprint",
    "k",
    "custodians",
    "commitments",
)
MAX_CHAIN = 5


class LotKeyError(CryptoError):
    """A lot's key statement that a sealer must not seal to. Codes: lot_key_unsigned (no
    signature), lot_key_malformed (a field missing or of the wrong shape), lot_key_mismatch
    (the fingerprint is not the key's), lot_key_signer (the signer is none of the owners the
    sealer named), lot_key_owner_missing (the sealer named none); the certificate path and
    signature keep ca's codes (cert_revoked, unknown_issuer, signature_invalid, ...)."""

    code = "lot_key_invalid"


def statement(lot: Mapping[str, Any]) -> dict[str, Any]:
    """The fields the chair signs, from the served lot (``GET /api/lots/{lot}``'s ``lot``)."""
    missing = [name for name in FIELDS if name not in lot]
    if missing:
        raise LotKeyError(
            f"the lot lacks {', '.join(missing)}",
            code="lot_key_malformed",
            detail={"missing": missing},
        )
    return {name: lot[name] for name in FIELDS}


def message(lot: Mapping[str, Any]) -> bytes:
    """The exact bytes the chair's key signs for ``lot``."""
    try:
        return action_message(ACTION, statement(lot))
    except (TypeError, ValueError) as exc:  # a lone surrogate, a value JSON cannot write
        raise LotKeyError(
            "the lot's statement cannot be written as canonical JSON", code="lot_key_malformed"
        ) from exc


def opening_key(lot: Mapping[str, Any]) -> p.EcPublicKey:
    """The lot's opening key, once its fingerprint agrees with it (``lot_key_mismatch``)."""
    try:
        der = base64.b64decode(str(lot["opening_key"]), validate=True)
        key = p.load_public_der(der)
    except (KeyError, binascii.Error, ValueError, CryptoError) as exc:
        raise LotKeyError("the lot's opening key is unreadable", code="lot_key_malformed") from exc
    if not isinstance(key, p.EcPublicKey) or p.public_der(key) != der:
        # one encoding only: the SubjectPublicKeyInfo of the uncompressed point, as published
        raise LotKeyError(
            "a lot's opening key is a P-256 key, its point uncompressed", code="lot_key_malformed"
        )
    if shares.key_fingerprint(key).hex() != lot.get("key_fingerprint"):
        raise LotKeyError(
            "the lot's key fingerprint is not its opening key's",
            code="lot_key_mismatch",
            detail={"key_fingerprint": lot.get("key_fingerprint")},
        )
    return key


def signer_owns(owner: Any, holder: Holder) -> bool:
    """Whether ``holder`` is one of the tender's ``owner`` (``{"organisation", "chairs"}``): a
    chair assigned by registry subject (``uscc:<code>`` or ``cert:<fingerprint>``, which the
    certificate gives), or a holder of the owning organisation (its O, compared as
    ca.organisations compares names). The server's rule, against the owners it holds."""
    if not isinstance(owner, Mapping):
        return False
    chairs = owner.get("chairs") or ()
    if isinstance(chairs, Sequence) and set(holder_keys(holder)) & set(chairs):
        return True
    organisation = owner.get("organisation")
    theirs = organisation_keys(organisation if isinstance(organisation, str) else None, None)
    return bool(theirs & organisation_keys(holder.organisation, None))


def signer_is(expected: Sequence[str], holder: Holder) -> bool:
    """Whether ``holder`` is one of the owners a sealer ``expected`` from outside the platform
    (the published tender notice): each ``uscc:<code>`` or ``cert:<fingerprint>`` (a registry
    subject), or an organisation's name, compared with the certificate's O and USCC as
    ca.organisations compares them."""
    mine = organisation_keys(holder.organisation, holder.uscc)
    for given in expected:
        kind, _, rest = given.strip().partition(":")
        if kind.lower() == "cert" and rest:
            named = rest.strip().lower() == holder.fingerprint
        elif kind.lower() == "uscc" and rest:
            named = bool(organisation_keys(None, rest.strip()) & mine)
        else:
            named = bool(organisation_keys(given, None) & mine)
        if named:
            return True
    return False


def _b64(value: Any, name: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise LotKeyError(f"{name} is not base64", code="lot_key_malformed") from exc


def verify(
    lot: Mapping[str, Any], trust: TrustStore, at: datetime, expected: Sequence[str]
) -> Holder:
    """The owner who signed ``lot``'s key statement, checked against ``trust`` at ``at`` (the
    moment of sealing) and against the owners the sealer ``expected`` (:func:`signer_is`: never
    the served ``owner``, which is the platform's word); raises LotKeyError or ca's
    certificate and signature errors."""
    if not [given for given in expected if given.strip()]:
        raise LotKeyError(
            "name the tender's owner as its notice does (an organisation, or uscc:<code>)",
            code="lot_key_owner_missing",
        )
    signed = lot.get("key_signature")
    if not isinstance(signed, Mapping):
        raise LotKeyError(
            "the lot's opening key is not signed by its tender's chair: do not seal to it",
            code="lot_key_unsigned",
            detail={"lot": lot.get("id")},
        )
    opening_key(lot)
    chain = signed.get("chain") or []
    if not isinstance(chain, list) or len(chain) > MAX_CHAIN:
        raise LotKeyError("the signature's chain is malformed", code="lot_key_malformed")
    holder = verify_signed(
        trust,
        _b64(signed.get("certificate"), "certificate"),
        [_b64(c, "chain") for c in chain],
        message(lot),
        _b64(signed.get("signature"), "signature"),
        at,
    )
    if not signer_is(expected, holder):
        raise LotKeyError(
            f"{holder.name} ({holder.organisation}) is none of the owners you named",
            code="lot_key_signer",
            detail={"signer": holder.name, "organisation": holder.organisation},
        )
    return holder
