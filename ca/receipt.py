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
) -> Accepted:
    """Accept a sealed bid for ``lot`` received at ``received_at``, or raise a typed error."""
    proof = envelope.verify(source)
    if proof.header.lot != lot:
        raise EnvelopeError(
            f"the bid is sealed for lot {proof.header.lot}, not {lot}",
            code="envelope_lot",
            detail={"sealed_for": proof.header.lot},
        )
    signer = x509.load_der_x509_certificate(proof.header.bidder_cert)
    verified = store.verify_certificate(signer, chain or [], received_at, Usage.SIGN)
    return Accepted(verified.holder, proof)
