"""Receiving a bid: trusted time decides the deadline; every outcome is in the audit log."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime, timedelta

import pytest
from envelopes import forge
from sqlalchemy import select

from bidroom import bids, builtin_tsa, receipts
from bidroom.audit_log import AuditLog
from bidroom.store import AUDIT, Store
from ca import envelope, pki, tsa
from ca import primitives as p
from ca.trust import TrustStore

T0 = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
DEADLINE = T0 + timedelta(hours=1)
LOT = bids.Lot("ZJ-ZS-2026-0417/1", DEADLINE)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = pki.create_root("根CA", T0 - timedelta(days=30))
    sub = pki.create_intermediate(root, "二级CA", T0 - timedelta(days=30))
    who = pki.Identity("六横海洁环境服务有限公司", "六横海洁环境服务有限公司")
    good_key, good = pki.issue_with_key(sub, who, T0 - timedelta(days=10))
    bad_key, bad = pki.issue_with_key(sub, who, T0 - timedelta(days=10))
    sub = pki.revoke(sub, bad.serial_number, T0 - timedelta(days=1))
    root, root_crl = pki.publish_crl(root, T0 - timedelta(hours=2))
    sub, sub_crl = pki.publish_crl(sub, T0 - timedelta(hours=2))
    folder = tmp_path_factory.mktemp("world")
    store = TrustStore(folder / "trust")
    store.add_root(root.cert, T0)
    store.add_intermediate(sub.cert, T0)
    store.add_crl(root_crl, T0)
    store.add_crl(sub_crl, T0)
    authority, tsa_root = builtin_tsa.builtin(folder / "tsa", T0, b"test tsa password")
    opening = p.generate_ec_key()

    def sealed(key: p.PrivateKey, cert: object) -> bytes:
        out = io.BytesIO()
        der = cert.public_bytes(p.serialization_der())  # type: ignore[attr-defined]
        envelope.seal(
            io.BytesIO(os.urandom(3000)),
            out,
            lot=LOT.id,
            sealer=envelope.Sealer(der, key),
            opening_key=opening.public_key(),
        )
        return out.getvalue()

    sealer = envelope.Sealer(good.public_bytes(p.serialization_der()), good_key)
    return {
        "trust": store,
        "tsa": authority,
        "tsa_root": tsa_root,
        "good": sealed(good_key, good),
        # signed by a good certificate, but cut into 1-byte chunks (docs/envelope.md)
        "one_byte_chunks": forge(sealer, opening.public_key(), [b"1", b"2", b"3"], lot=LOT.id),
        "revoked": sealed(bad_key, bad),
    }


def stamper_at(world: dict, at: datetime) -> tsa.LocalStamper:
    authority = world["tsa"]
    pinned = tsa.TimeStampAuthority(
        authority.cert, authority.key, authority.chain, clock=lambda: at
    )
    return tsa.LocalStamper(pinned, [world["tsa_root"]])


def log_for(store: Store) -> AuditLog:
    return AuditLog(
        store.engine,
        "bidroom.test/audit",
        p.ed25519_from_seed(b"\x09" * 32),
        lambda: datetime.now(UTC),
    )


async def actions(store: Store) -> list[str]:
    async with store.engine.connect() as conn:
        return [r.action for r in (await conn.execute(select(AUDIT).order_by(AUDIT.c.id))).all()]


async def test_a_bid_in_time_is_received_with_a_receipt_that_verifies(
    store: Store, world: dict
) -> None:
    log = log_for(store)
    stamper = stamper_at(world, DEADLINE - timedelta(minutes=1))
    got = await bids.receive(
        store, log, stamper, world["trust"], LOT, io.BytesIO(world["good"]), "uscc:uploader"
    )
    assert got["received_at"] == (DEADLINE - timedelta(minutes=1)).isoformat()
    proven = receipts.check(got["audit"], str(log.verifier))
    assert proven.entry.action == "bid.received" and proven.entry.room == LOT.id
    assert proven.entry.objects["envelope"] == got["envelope_sha256"]
    assert "六横" not in got["audit"]["entry"], "the log names the certificate, not the bid"


async def test_a_bid_after_the_deadline_by_trusted_time_is_refused_and_recorded(
    store: Store, world: dict
) -> None:
    late = stamper_at(world, DEADLINE + timedelta(seconds=1))
    with pytest.raises(bids.BidRefused) as caught:
        await bids.receive(
            store,
            log_for(store),
            late,
            world["trust"],
            LOT,
            io.BytesIO(world["good"]),
            "uscc:uploader",
        )
    assert caught.value.code == "bid_late"
    assert await actions(store) == ["bid.refused.bid_late"]


async def test_a_bid_signed_with_a_revoked_certificate_is_refused_and_recorded(
    store: Store, world: dict
) -> None:
    stamper = stamper_at(world, DEADLINE - timedelta(minutes=5))
    with pytest.raises(bids.BidRefused) as caught:
        await bids.receive(
            store,
            log_for(store),
            stamper,
            world["trust"],
            LOT,
            io.BytesIO(world["revoked"]),
            "uscc:uploader",
        )
    assert caught.value.code == "cert_revoked"
    assert await actions(store) == ["bid.refused.cert_revoked"]


async def test_a_bid_outside_the_envelope_rules_is_refused_at_upload_and_recorded(
    store: Store, world: dict
) -> None:
    """The upload check is the strict reader: a bid in 1-byte chunks is refused, with its code."""
    stamper = stamper_at(world, DEADLINE - timedelta(minutes=5))
    with pytest.raises(bids.BidRefused) as caught:
        await bids.receive(
            store,
            log_for(store),
            stamper,
            world["trust"],
            LOT,
            io.BytesIO(world["one_byte_chunks"]),
            "uscc:uploader",
        )
    assert caught.value.code == "envelope_chunk_short"
    assert await actions(store) == ["bid.refused.envelope_chunk_short"]
