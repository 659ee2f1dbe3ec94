"""What the platform checks when a sealed bid arrives, before it accepts it (不见面开标 收标).

The envelope must be intact, in the exact format, and signed (ca.envelope.verify, no key
needed), be for the lot it is uploaded to and addressed to its opening key, and its signer's
certificate must have a valid, unrevoked path at the time of receipt (ca.trust). Nothing here
can read the bid, nor tell whether an entry opens it (see :func:`check_bid`).
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

    What is checked here, without any key: the envelope is intact and follows the format exactly
    (ca.envelope.verify, strict), is signed by its certificate's key, and its first entry is for
    that key; given the lot's ``opening_key``, its second entry is *addressed* to that key.

    What is not, and cannot be: that either entry *opens* the bid. Only the holder of a private
    key can unwrap an entry, and the platform holds neither (the opening key does not exist
    before the custodians combine it). A bidder can therefore seal a bid whose opening-key entry
    wraps another data key; it is found out when the custodians open it, and is then the
    bidder's fault (docs/opening.md "What upload checks")."""
    proof = envelope.verify(source)
    if proof.header.lot != lot:
        raise EnvelopeError(
            f"the bid is sealed for lot {proof.header.lot}, not {lot}",
            code="envelope_lot",
            detail={"sealed_for": proof.header.lot},
        )
    signer = x509.load_der_x509_certificate(proof.header.bidder_cert)
    bidder_entry, opening_entry = proof.header.recipients
    if bidder_entry["key"] != envelope.key_id(p.accept_public_key(signer.public_key())):
        raise EnvelopeError(  # ca.envelope.verify refuses it already; said here too
            "the data key is not wrapped to the bidder's own certificate key",
            code="envelope_bidder_key",
        )
    if opening_key is not None and opening_entry["key"] != envelope.key_id(opening_key):
        raise EnvelopeError(
            "the data key is not wrapped to this lot's opening key",
            code="envelope_opening_key",
        )
    verified = store.verify_certificate(signer, chain or [], received_at, Usage.SIGN)
    return Accepted(verified.holder, proof)
