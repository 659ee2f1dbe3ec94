"""A bid at receipt: intact, for this lot, signed by a certificate valid and unrevoked then."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ca import envelope, pki, receipt
from ca import primitives as p
from ca.errors import CertificateError, EnvelopeError
from ca.trust import TrustStore

T0 = datetime(2026, 11, 1, tzinfo=UTC)
LOT = "ZJ-ZS-2026-0417/1"


@pytest.fixture(scope="module")
def setting(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = pki.create_root("演示根CA", T0 - timedelta(days=60))
    sub = pki.create_intermediate(root, "演示二级CA", T0 - timedelta(days=60))
    identity = pki.Identity("六横海洁", "六横海洁环境服务有限公司")
    good_key, good = pki.issue_with_key(sub, identity, T0 - timedelta(days=30))
    bad_key, bad = pki.issue_with_key(sub, identity, T0 - timedelta(days=30))
    sub = pki.revoke(sub, bad.serial_number, T0 - timedelta(days=1))
    root, root_crl = pki.publish_crl(root, T0)
    sub, sub_crl = pki.publish_crl(sub, T0)
    store = TrustStore(tmp_path_factory.mktemp("trust"))
    store.add_root(root.cert, T0)
    store.add_intermediate(sub.cert, T0)
    store.add_crl(root_crl, T0)
    store.add_crl(sub_crl, T0)
    opening = p.generate_ec_key()

    def seal(key: p.PrivateKey, cert: object) -> bytes:
        out = io.BytesIO()
        sealer = envelope.Sealer(cert.public_bytes(p.serialization_der()), key)  # type: ignore[attr-defined]
        envelope.seal(
            io.BytesIO(os.urandom(5000)),
            out,
            lot=LOT,
            sealer=sealer,
            opening_key=opening.public_key(),
        )
        return out.getvalue()

    return {
        "store": store,
        "good": seal(good_key, good),
        "revoked": seal(bad_key, bad),
        "opening": opening,
    }


def test_a_good_bid_is_accepted_with_its_holder(setting: dict) -> None:
    accepted = receipt.check_bid(
        io.BytesIO(setting["good"]), LOT, setting["store"], T0 + timedelta(hours=1)
    )
    assert accepted.holder.organisation == "六横海洁环境服务有限公司"
    assert accepted.proof.plaintext_size == 5000


def test_a_bid_signed_with_a_revoked_certificate_is_refused(setting: dict) -> None:
    with pytest.raises(CertificateError) as caught:
        receipt.check_bid(
            io.BytesIO(setting["revoked"]), LOT, setting["store"], T0 + timedelta(hours=1)
        )
    assert caught.value.code == "cert_revoked"


def test_a_bid_for_another_lot_is_refused(setting: dict) -> None:
    with pytest.raises(EnvelopeError) as caught:
        receipt.check_bid(
            io.BytesIO(setting["good"]), "OTHER/2", setting["store"], T0 + timedelta(hours=1)
        )
    assert caught.value.code == "envelope_lot"


def test_revocation_is_judged_at_the_time_of_receipt(setting: dict, tmp_path: Path) -> None:
    before = T0 - timedelta(days=2)
    with pytest.raises(CertificateError) as caught:
        receipt.check_bid(io.BytesIO(setting["revoked"]), LOT, setting["store"], before)
    assert caught.value.code == "revocation_unknown", "no CRL in force then: hard fail"


def test_a_bid_the_custodians_could_not_open_is_refused_at_receipt(setting: dict) -> None:
    """Sealed to another opening key, the lot's quorum remedy could never open it."""
    at = T0 + timedelta(hours=1)
    lot_key = setting["opening"].public_key()
    accepted = receipt.check_bid(
        io.BytesIO(setting["good"]), LOT, setting["store"], at, opening_key=lot_key
    )
    assert accepted.proof.plaintext_size == 5000
    with pytest.raises(EnvelopeError) as refused:
        receipt.check_bid(
            io.BytesIO(setting["good"]),
            LOT,
            setting["store"],
            at,
            opening_key=p.generate_ec_key().public_key(),
        )
    assert refused.value.code == "envelope_opening_key"
