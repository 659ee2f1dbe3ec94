"""The decryption hand-off: a data key sealed to one room and one envelope, and the envelope
opened with it (or with the data key the custodians' quorum recovers)."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest
from certs import certificate
from envelopes import split

from ca import envelope, handoff
from ca import primitives as p
from ca.errors import EnvelopeError

SECRET = b"a platform secret of 32 or more bytes!!"
ROOM = "opening-ZJ-ZS-2026-0417-1"
LOT = "ZJ-ZS-2026-0417-1"


@pytest.fixture(scope="module")
def bidder() -> envelope.Sealer:
    key = p.generate_ec_key()
    return envelope.Sealer(certificate(key, "六横海洁环境服务有限公司"), key)


@pytest.fixture(scope="module")
def opening_key() -> p.EcPrivateKey:
    return p.generate_ec_key()


@pytest.fixture(scope="module")
def plain() -> bytes:
    return os.urandom(3 * envelope.CHUNK + 123)


@pytest.fixture(scope="module")
def sealed(plain: bytes, bidder: envelope.Sealer, opening_key: p.EcPrivateKey) -> bytes:
    out = io.BytesIO()
    envelope.seal(
        io.BytesIO(plain), out, lot=LOT, sealer=bidder, opening_key=opening_key.public_key()
    )
    return out.getvalue()


def test_every_node_derives_the_same_room_key_and_each_room_its_own() -> None:
    one, again = handoff.room_key(SECRET, ROOM), handoff.room_key(SECRET, ROOM)
    other = handoff.room_key(SECRET, ROOM + "-2")
    assert handoff.public_point(one) == handoff.public_point(again)
    assert handoff.public_point(one) != handoff.public_point(other)
    assert handoff.public_point(handoff.room_key(b"another secret" * 3, ROOM)) != (
        handoff.public_point(one)
    )


def test_the_bidder_hands_over_the_data_key_and_the_room_opens_the_bid(
    sealed: bytes, bidder: envelope.Sealer, plain: bytes, tmp_path: Path
) -> None:
    header = envelope.read_header(io.BytesIO(sealed))
    data_key = envelope.unwrap_with(header, bidder.key)  # in the bidder's browser
    digest = hashlib.sha256(sealed).hexdigest()
    room = handoff.room_key(SECRET, ROOM)
    handed = handoff.seal_key(room.public_key(), ROOM, digest, data_key)

    opened = handoff.open_key(room, ROOM, digest, handed)
    envelope.check_data_key(io.BytesIO(sealed), opened)
    target = tmp_path / "bid.zip"
    envelope.open_with_data_key(io.BytesIO(sealed), target, opened)
    assert target.read_bytes() == plain


def test_a_sealed_key_moved_to_another_room_or_envelope_does_not_open(
    sealed: bytes, bidder: envelope.Sealer
) -> None:
    data_key = envelope.unwrap_with(envelope.read_header(io.BytesIO(sealed)), bidder.key)
    room = handoff.room_key(SECRET, ROOM)
    handed = handoff.seal_key(room.public_key(), ROOM, "a" * 64, data_key)
    with pytest.raises(handoff.HandoffError) as moved:
        handoff.open_key(room, ROOM, "b" * 64, handed)
    assert moved.value.code == "bad_sealed_key"
    other = handoff.room_key(SECRET, "opening-other")
    with pytest.raises(handoff.HandoffError):
        handoff.open_key(other, "opening-other", "a" * 64, handed)
    with pytest.raises(handoff.HandoffError):
        handoff.open_key(room, ROOM, "a" * 64, "bm90IGEga2V5IGF0IGFsbA==")


def test_a_wrong_data_key_is_refused_at_the_first_chunk(sealed: bytes) -> None:
    with pytest.raises(EnvelopeError) as wrong:
        envelope.check_data_key(io.BytesIO(sealed), os.urandom(32))
    assert wrong.value.code == "envelope_wrong_key"
    with pytest.raises(EnvelopeError):
        envelope.check_data_key(io.BytesIO(sealed), b"short")


def test_the_quorum_key_unwraps_the_same_data_key(
    sealed: bytes, bidder: envelope.Sealer, opening_key: p.EcPrivateKey
) -> None:
    header = envelope.read_header(io.BytesIO(sealed))
    assert envelope.unwrap_with(header, opening_key) == envelope.unwrap_with(header, bidder.key)
    with pytest.raises(EnvelopeError) as stranger:
        envelope.unwrap_with(header, p.generate_ec_key())
    assert stranger.value.code == "envelope_wrong_recipient"


def test_opening_with_a_data_key_still_catches_tampering(
    sealed: bytes, bidder: envelope.Sealer, tmp_path: Path
) -> None:
    data_key = envelope.unwrap_with(envelope.read_header(io.BytesIO(sealed)), bidder.key)
    head, records, trailer = split(sealed)
    dropped = head + records[0] + records[2] + records[3] + trailer
    target = tmp_path / "bid.zip"
    with pytest.raises(EnvelopeError) as caught:
        envelope.open_with_data_key(io.BytesIO(dropped), target, data_key)
    assert caught.value.code == "envelope_chunk_dropped"
    assert not target.exists() and not list(tmp_path.glob("bid.zip*.partial"))
