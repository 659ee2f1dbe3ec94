"""Certificate login in process: a real trust store, real certificates, the real app."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from starlette.testclient import TestClient

from bidroom import audit, tokens
from bidroom.app import create_app
from bidroom.db import migrate
from bidroom.settings import load_settings
from bidroom.store import Store, create_engine
from ca import login, pki
from ca import primitives as p
from ca.trust import TrustStore

KEY = "login-secret-" + "s" * 40
ORIGIN = "http://testserver"
NOW = datetime.now(UTC)
USCC = "91330900MA2A0X1P2W"


@dataclass
class Holder:
    key: p.PrivateKey
    cert: x509.Certificate
    chain: list[x509.Certificate]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(p.serialization_der())


@dataclass
class World:
    bidder: Holder
    revoked: Holder
    stranger: Holder
    unregistered: Holder


def _uscc(body: str) -> str:
    return body + pki.uscc_check_char(body)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[World, Path]:
    folder = tmp_path_factory.mktemp("trust")
    root = pki.create_root("舟山市数字证书根CA", NOW - timedelta(days=30))
    sub = pki.create_intermediate(root, "舟山市数字证书二级CA", NOW - timedelta(days=30))
    issued = NOW - timedelta(days=1)

    def holder(name: str, uscc: str | None, ca: pki.CertificateAuthority = sub) -> Holder:
        key, cert = pki.issue_with_key(ca, pki.Identity(name, name, uscc), issued)
        return Holder(key, cert, [ca.cert])

    bidder = holder("六横海洁环境服务有限公司", _uscc("91330900MA2A0X1P2"))
    revoked = holder("被吊销的公司", _uscc("91330900MA2A0X1P3"))
    unregistered = holder("未登记的公司", _uscc("91330900MA2A0X1P4"))
    other_root = pki.create_root("别处的根CA", NOW - timedelta(days=30))
    stranger = holder("外省公司", _uscc("91330900MA2A0X1P5"), other_root)
    sub = pki.revoke(sub, revoked.cert.serial_number, NOW - timedelta(hours=1))
    root, root_crl = pki.publish_crl(root, NOW - timedelta(minutes=5))
    sub, sub_crl = pki.publish_crl(sub, NOW - timedelta(minutes=5))
    store = TrustStore(folder)
    store.add_root(root.cert, NOW)
    store.add_intermediate(sub.cert, NOW)
    for crl in (root_crl, sub_crl):
        store.add_crl(crl, NOW)
    return World(bidder, revoked, stranger, unregistered), folder


@pytest.fixture
def client(tmp_path: Path, world: tuple[World, Path]) -> Iterator[TestClient]:
    holders, trust = world
    url = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"

    async def prepare() -> None:
        engine = create_engine(url)
        await migrate(engine)
        bidder = TrustStore(trust).verify_certificate(
            holders.bidder.cert, holders.bidder.chain, NOW
        )
        [by_uscc, _by_cert] = login.holder_keys(bidder.holder)
        await Store(engine).grant(by_uscc, bidder.holder.name, ["bidder"], NOW)
        await engine.dispose()

    asyncio.run(prepare())
    settings = load_settings(
        database_url=url, secret_key=KEY, trust_dir=trust, public_url=ORIGIN, var_dir=tmp_path
    )
    with TestClient(create_app(settings)) as client:
        yield client


def answer(
    client: TestClient,
    holder: Holder,
    *,
    challenge: str | None = None,
    signer: p.PrivateKey | None = None,
    origin: str = ORIGIN,
) -> dict:
    if challenge is None:
        challenge = client.post("/api/login/challenge").json()["challenge"]
    signature = p.sign(signer or holder.key, login.signed_message(origin, challenge))
    body = {
        "challenge": challenge,
        "certificate": b64(der(holder.cert)),
        "chain": [b64(der(c)) for c in holder.chain],
        "signature": b64(signature),
    }
    response = client.post("/api/login", json=body, headers={"origin": ORIGIN})
    return {"status": response.status_code, **response.json()}


def test_a_registered_holder_logs_in_with_the_registry_s_roles(
    client: TestClient, world: tuple[World, Path]
) -> None:
    result = answer(client, world[0].bidder)
    assert result["status"] == 200, result
    assert result["roles"] == ["bidder"]
    assert result["holder"]["uscc"] == "91330900MA2A0X1P2" + pki.uscc_check_char(
        "91330900MA2A0X1P2"
    )
    client.portal.call(client.app.state.audit.integrate)  # type: ignore[attr-defined,union-attr]
    watcher = tokens.mint(
        tokens.Identity("sup", "监督", ("supervisor",)), KEY, NOW, timedelta(hours=1)
    )
    logged = client.get(
        "/api/audit/entries?start=0&end=10", headers={"authorization": f"Bearer {watcher}"}
    ).json()
    login_entry = audit.decode(logged[-1]["entry"].encode())
    assert (login_entry.action, login_entry.actor) == ("auth.login", result["holder"]["subject"])
    assert login_entry.objects["certificate"] == result["holder"]["fingerprint"]
    identity = tokens.verify(result["token"], KEY, datetime.now(UTC))
    assert identity.subject == result["holder"]["subject"] and identity.roles == ("bidder",)
    assert identity.name == "六横海洁环境服务有限公司"


def test_a_challenge_answered_twice_is_a_replay(
    client: TestClient, world: tuple[World, Path]
) -> None:
    challenge = client.post("/api/login/challenge").json()["challenge"]
    assert answer(client, world[0].bidder, challenge=challenge)["status"] == 200
    again = answer(client, world[0].bidder, challenge=challenge)
    assert (again["status"], again["code"]) == (401, "challenge_replayed")


def test_expired_forged_and_cross_origin_challenges_are_refused(
    client: TestClient, world: tuple[World, Path]
) -> None:
    secret = KEY.encode()
    now = datetime.now(UTC)  # the server's clock is the real one; NOW was the module's import
    old = login.issue_challenge(secret, ORIGIN, now - timedelta(minutes=10), timedelta(minutes=2))
    assert answer(client, world[0].bidder, challenge=old)["code"] == "challenge_expired"
    forged = login.issue_challenge(b"not-our-key" * 4, ORIGIN, now, timedelta(minutes=2))
    assert answer(client, world[0].bidder, challenge=forged)["code"] == "challenge_invalid"
    elsewhere = login.issue_challenge(secret, "https://phish.example", now, timedelta(minutes=2))
    assert answer(client, world[0].bidder, challenge=elsewhere)["code"] == "challenge_origin"
    cross = client.post("/api/login/challenge", headers={"origin": "https://phish.example"})
    assert (cross.status_code, cross.json()["code"]) == (403, "challenge_origin")


def test_a_signature_for_another_site_or_by_another_key_is_refused(
    client: TestClient, world: tuple[World, Path]
) -> None:
    signed_elsewhere = answer(client, world[0].bidder, origin="https://phish.example")
    assert signed_elsewhere["code"] == "signature_invalid"
    by_stranger = answer(client, world[0].bidder, signer=world[0].stranger.key)
    assert by_stranger["code"] == "signature_invalid"


def test_certificates_the_platform_must_not_accept(
    client: TestClient, world: tuple[World, Path]
) -> None:
    holders = world[0]
    assert answer(client, holders.revoked)["code"] == "cert_revoked"
    assert answer(client, holders.stranger)["code"] == "unknown_issuer"
    assert answer(client, holders.unregistered) == {
        "status": 403,
        "code": "holder_unknown",
        "message": "the platform has given this holder no role",
        "detail": {
            "holder": login.holder_keys(
                TrustStore(world[1])
                .verify_certificate(holders.unregistered.cert, holders.unregistered.chain, NOW)
                .holder
            )
        },
    }
