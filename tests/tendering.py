"""A tendering world for in-process tests: a CA with its people, the app on a pinned clock, and
the HTTP steps a bidder, a custodian and the chair take (publish, register, upload, sign).

Everything is real: the trust store and CRLs, the built-in TSA (its clock pinned with the app's),
sealed envelopes, tus uploads, signatures by the holders' keys.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from starlette.testclient import TestClient

from bidroom import signed, tokens
from bidroom.app import create_app
from bidroom.db import migrate
from bidroom.settings import load_settings
from bidroom.store import Store, create_engine
from ca import envelope, pki, tsa
from ca import primitives as p
from ca.trust import TrustStore

KEY = "tendering-secret-" + "s" * 40
T0 = datetime.now(UTC).replace(microsecond=0)
DEADLINE = T0 + timedelta(days=21)
TUS = {"Tus-Resumable": "1.0.0"}


@dataclass
class Person:
    name: str
    role: str
    key: p.PrivateKey
    cert: x509.Certificate
    chain: list[x509.Certificate]
    subject: str

    def der(self) -> bytes:
        return self.cert.public_bytes(p.serialization_der())

    def headers(self, role: str | None = None) -> dict[str, str]:
        identity = tokens.Identity(self.subject, self.name, (role or self.role,), None, self.name)
        token = tokens.mint(identity, KEY, T0, timedelta(days=60))
        return {"authorization": f"Bearer {token}"}

    def signed(self, action: str, fields: dict[str, Any]) -> dict[str, Any]:
        """The signature fields of a signed action (docs/opening.md "Signed actions")."""
        signature = p.sign(self.key, signed.action_message(action, fields))
        return {
            "certificate": base64.b64encode(self.der()).decode(),
            "chain": [
                base64.b64encode(c.public_bytes(p.serialization_der())).decode() for c in self.chain
            ],
            "signature": base64.b64encode(signature).decode(),
        }


@dataclass
class World:
    trust: Path
    people: dict[str, Person]


def uscc(body: str) -> str:
    return body + pki.uscc_check_char(body)


PEOPLE = (
    ("海洁", "bidder"),
    ("蓝天", "bidder"),
    ("绿源", "bidder"),
    ("吊销", "bidder"),
    ("王敏", "chair"),
    ("代理机构", "custodian"),
    ("公证处", "custodian"),
    ("平台运营", "custodian"),
)


def make_world(folder: Path) -> World:
    """A root and sub CA, one certificate per person (USCC-bearing), 吊销's revoked."""
    root = pki.create_root("舟山市数字证书根CA", T0 - timedelta(days=30))
    sub = pki.create_intermediate(root, "舟山市数字证书二级CA", T0 - timedelta(days=30))
    people: dict[str, Person] = {}
    for n, (name, role) in enumerate(PEOPLE):
        code = uscc(f"91330900MA2B0Y1Q{n}")
        key, cert = pki.issue_with_key(sub, pki.Identity(name, name, code), T0 - timedelta(days=1))
        people[name] = Person(name, role, key, cert, [sub.cert], f"uscc:{code}")
    sub = pki.revoke(sub, people["吊销"].cert.serial_number, T0 - timedelta(hours=1))
    root, root_crl = pki.publish_crl(root, T0 - timedelta(minutes=5), timedelta(days=60))
    sub, sub_crl = pki.publish_crl(sub, T0 - timedelta(minutes=5), timedelta(days=60))
    store = TrustStore(folder)
    store.add_root(root.cert, T0)
    store.add_intermediate(sub.cert, T0)
    for crl in (root_crl, sub_crl):
        store.add_crl(crl, T0)
    return World(folder, people)


class Clock:
    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def running_app(
    world: World, database_url: str, var: Path, clock: Clock, **settings: Any
) -> Iterator[TestClient]:
    """The app on ``database_url`` with every person granted their role, its clock pinned."""

    async def prepare() -> None:
        engine = create_engine(database_url)
        await migrate(engine)
        store = Store(engine)
        for person in world.people.values():
            await store.grant(person.subject, person.name, [person.role], T0)
        await engine.dispose()

    asyncio.run(prepare())
    config = load_settings(
        database_url=database_url,
        secret_key=KEY,
        trust_dir=world.trust,
        var_dir=var,
        public_url="http://testserver",
        **settings,
    )
    with TestClient(create_app(config)) as client:
        state = client.app.state  # type: ignore[attr-defined]
        state.hub.clock = clock
        authority = state.tsa
        pinned = tsa.TimeStampAuthority(authority.cert, authority.key, authority.chain, clock=clock)
        state.timestamper = tsa.LocalStamper(pinned, [state.timestamper.trust[0]])
        yield client


def lot_body(world: World, custodians: tuple[str, ...], **lot: Any) -> dict[str, Any]:
    return {
        "number": "1",
        "title": "第1标段",
        "ceiling_price": "3800000.00",
        "deadline": DEADLINE.isoformat(),
        "sheet_fields": ["price", "duration_days", "project_manager", "guarantee"],
        "guarantee": {"required": True, "amount": "50000.00"},
        "window_minutes": 30,
        "method": "low_price",
        "remedy": "quorum",
        "custodians": [p.certificate_pem(world.people[n].cert).decode() for n in custodians],
        "k": 2,
        "record": {"confirm_minutes": 30, "silence": "consent"},
        "max_bid_bytes": 50 * 1024 * 1024,
        **lot,
    }


def publish(client: TestClient, world: World, chair: Person, **lot: Any) -> dict[str, Any]:
    """Create and publish a one-lot tender; the published lot."""
    custodians = ("代理机构", "公证处", "平台运营")
    body = {
        "number": "ZJ-ZS-2026-0417",
        "title": "六横岛环卫一体化服务项目",
        "lots": [lot_body(world, custodians, **lot)],
    }
    made = client.post("/api/tenders", json=body, headers=chair.headers())
    assert made.status_code == 201, made.json()
    tender = made.json()["tender"]
    done = client.post(f"/api/tenders/{tender['id']}/publish", headers=chair.headers())
    assert done.status_code == 200, done.json()
    published: dict[str, Any] = done.json()["tender"]["lots"][0]
    return published


def bid_archive(lot: str, price: str, **form: Any) -> bytes:
    """A bid's plaintext: a ZIP whose first member is the bid form."""
    doc = {
        "format": "bidroom-bid-form",
        "version": 1,
        "lot": lot,
        "price": price,
        "duration_days": 365,
        "project_manager": "张工",
        "guarantee": {
            "kind": "bank",
            "issuer": "中国银行舟山分行",
            "number": "BG-2026-001",
            "amount": "50000.00",
            "payer": "投标人本单位",
        },
        **form,
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("bid.json", json.dumps(doc, ensure_ascii=False))
        archive.writestr("技术标.pdf", os.urandom(4096))
    return out.getvalue()


def seal(person: Person, lot: dict[str, Any], plain: bytes) -> bytes:
    out = io.BytesIO()
    opening = p.load_public_der(base64.b64decode(lot["opening_key"]))
    assert isinstance(opening, p.EcPublicKey)
    envelope.seal(
        io.BytesIO(plain),
        out,
        lot=lot["id"],
        sealer=envelope.Sealer(person.der(), person.key),
        opening_key=opening,
    )
    return out.getvalue()


def upload(client: TestClient, lot: dict[str, Any], who: Person, data: bytes) -> Any:
    """Register (if needed) and upload ``data`` in one tus PATCH; the upload's outcome."""
    client.post(f"/api/lots/{lot['id']}/registrations", headers=who.headers())
    created = client.post(
        f"/api/lots/{lot['id']}/uploads",
        headers={**who.headers(), **TUS, "Upload-Length": str(len(data))},
    )
    assert created.status_code == 201, created.json()
    url = created.headers["location"]
    sent = client.patch(
        url,
        content=data,
        headers={
            **who.headers(),
            **TUS,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert sent.status_code == 204, sent.text
    return client.get(url, headers=who.headers()).json()
