"""What the platform checks when a sealed bid arrives, before it accepts it (不见面开标 收标).

The envelope must be intact and signed (ca.envelope.verify, no key needed), be for the lot it
is uploaded to, and its signer's certificate must have a valid, unrevoked path at the time of
receipt (ca.trust). Nothing here can read the bid.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from cryptography import x509

from ca import envelope
from ca import primitives as p
from ca.errors import EnvelopeError
from ca.trust import Holder, TrustStore, Usage


@dataclass(frozen=True, slots=True)
class Accepted:
    holder: Holder
    proof: envelope.Verified


def check_bid(
    source: BinaryIO,
    lot: str,
    store: TrustStore,
    received_at: datetime,
    chain: list[x509.Certificate] | None = None,
    opening_key: p.PublicKey | None = None,
) -> Accepted:
    """Accept a sealed bid for ``lot`` received at ``received_at``, or raise a typed error.

    Its data key must be wrapped to the bidder's own certificate key (they decrypt at the
    opening) and, given the lot's ``opening_key``, to that key too (the custodians' remedy):
    a bid that one of them could not open is refused now, not discovered at the opening."""
    proof = envelope.verify(source)
    if proof.header.lot != lot:
        raise EnvelopeError(
            f"the bid is sealed for lot {proof.header.lot}, not {lot}",
            code="envelope_lot",
            detail={"sealed_for": proof.header.lot},
        )
    signer = x509.load_der_x509_certificate(proof.header.bidder_cert)
    keys = {entry.get("key") for entry in proof.header.recipients}
    if envelope.key_id(p.accept_public_key(signer.public_key())) not in keys:
        raise EnvelopeError(
            "the data key is not wrapped to the bidder's own certificate key",
            code="envelope_bidder_key",
        )
    if opening_key is not None and envelope.key_id(opening_key) not in keys:
        raise EnvelopeError(
            "the data key is not wrapped to this lot's opening key",
            code="envelope_opening_key",
        )
    verified = store.verify_certificate(signer, chain or [], received_at, Usage.SIGN)
    return Accepted(verified.holder, proof)
