"""ca.lot_key's pure checks of a served lot's key (the sealer's steps 1 and 2 of docs/opening.md
"The signed lot key"); the signature, path and owner checks run against a real node in
tests/bidroom/test_lot_key.py."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from ca import lot_key, shares
from ca import primitives as p
from ca.trust import Holder, TrustStore

# SubjectPublicKeyInfo of a P-256 key, up to the BIT STRING of a 33-byte compressed point
COMPRESSED_SPKI = bytes.fromhex("3039301306072a8648ce3d020106082a8648ce3d030107032200")


def lot_with(der: bytes, fingerprint: str) -> dict[str, Any]:
    return {
        "id": "L-1",
        "opening_key": base64.b64encode(der).decode(),
        "key_fingerprint": fingerprint,
    }


def test_the_key_is_read_only_as_published_and_must_match_its_fingerprint() -> None:
    key = p.generate_ec_key().public_key()
    fingerprint = shares.key_fingerprint(key).hex()
    assert lot_key.opening_key(lot_with(p.public_der(key), fingerprint)) == key

    point = key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    compressed = COMPRESSED_SPKI + point
    assert p.load_public_der(compressed) == key, "the same key, another encoding"
    with pytest.raises(lot_key.LotKeyError) as refused:
        lot_key.opening_key(lot_with(compressed, fingerprint))
    assert refused.value.code == "lot_key_malformed"

    other = shares.key_fingerprint(p.generate_ec_key().public_key()).hex()
    for wrong in (other, fingerprint.upper()):
        with pytest.raises(lot_key.LotKeyError) as refused:
            lot_key.opening_key(lot_with(p.public_der(key), wrong))
        assert refused.value.code == "lot_key_mismatch"


def test_an_unsigned_or_incomplete_lot_is_refused_before_any_certificate(tmp_path: Any) -> None:
    key = p.generate_ec_key().public_key()
    lot = lot_with(p.public_der(key), shares.key_fingerprint(key).hex())
    store = TrustStore(tmp_path)
    with pytest.raises(lot_key.LotKeyError) as refused:
        lot_key.verify({**lot, "key_signature": None}, store, datetime.now(UTC), ["王敏"])
    assert refused.value.code == "lot_key_unsigned"
    with pytest.raises(lot_key.LotKeyError) as refused:
        lot_key.statement(lot)
    assert refused.value.code == "lot_key_malformed"
    assert set(refused.value.detail["missing"]) == {
        "tender", "owner", "deadline", "k", "custodians", "commitments"
    }  # fmt: skip


def test_the_owners_a_sealer_names_match_as_certificates_name_them() -> None:
    fingerprint = "ab" * 32
    company = Holder("海天招标代理", "舟山海天招标代理有限公司", "91330900MA2B000017", fingerprint)
    staff = Holder("李娜", "舟山海天招标代理有限公司", None, "cd" * 32)
    for given in (
        "舟山海天招标代理有限公司",
        " 舟山海天招标代理 有限公司 ",
        "uscc:91330900MA2B000017",
        "USCC:91330900ma2b000017",
        f"cert:{fingerprint}",
        f"CERT:{fingerprint.upper()}",
    ):
        assert lot_key.signer_is([given], company), given
    assert lot_key.signer_is(["舟山海天招标代理有限公司"], staff)
    assert not lot_key.signer_is(["uscc:91330900MA2B000017"], staff), "a person names no USCC"
    for given in ("舟山市公共资源交易中心", "uscc:", "cert:", "", f"cert:{'cd' * 32}"):
        assert not lot_key.signer_is([given], company), given


def test_a_sealer_who_names_no_owner_seals_nothing(tmp_path: Any) -> None:
    key = p.generate_ec_key().public_key()
    lot = lot_with(p.public_der(key), shares.key_fingerprint(key).hex())
    for named in ([], ["", "  "]):
        with pytest.raises(lot_key.LotKeyError) as refused:
            lot_key.verify(lot, TrustStore(tmp_path), datetime.now(UTC), named)
        assert refused.value.code == "lot_key_owner_missing"
