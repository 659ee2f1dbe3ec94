"""A tendering world for in-process tests: a CA with its people, the app on a pinned clock, and
the HTTP steps a bidder, a custodian and the chair take (publish, register, upload, sign).

Everything is real: the trust store and CRLs, the built-in TSA (its clock pinned with the app's),
sealed envelopes, tus uploads, signatures by the holders' keys.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import httpx2 as httpx
from cryptography import x509
from starlette.testclient import TestClient

from bidroom import signed, timestamps, tokens
from bidroom.app import create_app
from bidroom.db import migrate
from bidroom.room import RoomType
from bidroom.settings import load_settings
from bidroom.store import Store, create_engine
from ca import envelope, handoff, login, lot_key, pki, shares
from ca import primitives as p
from ca.trust import TrustStore

KEY = "tendering-secret-" + "s" * 40
T0 = datetime.now(UTC).replace(microsecond=0)
DEADLINE = T0 + timedelta(days=21)
TUS = {"Tus-Resumable": "1.0.0"}
CUSTODIANS = ("代理机构", "公证处", "平台运营")


@dataclass
class Person:
    name: str
    role: str
    key: p.PrivateKey
    cert: x509.Certificate
    chain: list[x509.Certificate]
    subject: str
    # The certificate's O for a person of an organisation; None for an organisation's own
    # certificate (USCC-bearing, its O its name).
    organisation: str | None = None
    # A session bound to a revoked certificate ends (session_revoked): a revoked person's
    # tokens are unbound, as the operator's are, to reach the checks behind the session's.
    bound: bool = True

    def der(self) -> bytes:
        return self.cert.public_bytes(p.serialization_der())

    def token(self, role: str | None = None) -> str:
        """A session token for this person (their own role unless ``role``), minted at T0, with
        the organisation their certificate names and bound to their certificate (as login puts
        them in the session: tokens.mint, login's own function)."""
        organisation = self.organisation or self.name
        identity = tokens.Identity(
            self.subject,
            self.name,
            (role or self.role,),
            None,
            organisation,
            tokens.bound(self.cert) if self.bound else None,  # as login binds it
        )
        return tokens.mint(identity, KEY, T0, timedelta(days=60))

    def headers(self, role: str | None = None) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token(role)}"}

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


async def sign_in(http: httpx.AsyncClient, person: Person) -> dict[str, Any]:
    """Certificate login through the node ``http`` talks to: challenge, signature, session."""
    challenge = (await http.post("/api/login/challenge")).json()
    message = login.signed_message(challenge["origin"], challenge["challenge"])
    body = {
        "challenge": challenge["challenge"],
        "certificate": base64.b64encode(person.der()).decode(),
        "chain": [
            base64.b64encode(c.public_bytes(p.serialization_der())).decode() for c in person.chain
        ],
        "signature": base64.b64encode(p.sign(person.key, message)).decode(),
    }
    done = await http.post("/api/login", json=body)
    assert done.status_code == 200, done.text
    session: dict[str, Any] = done.json()
    return session


@dataclass
class World:
    trust: Path
    people: dict[str, Person]
    issuer: pki.CertificateAuthority | None = None  # the CA that issued the people's certificates


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


def make_world(
    folder: Path,
    cast: Iterable[tuple[str, ...]] = PEOPLE,
    revoked: Iterable[str] = ("吊销",),
) -> World:
    """A root and sub CA with fresh CRLs, one certificate per (name, role) of ``cast``: an
    organisation's own (USCC-bearing, O = the name); or, for (name, role, organisation), a
    person's of that organisation (O, no USCC; registry subject ``cert:<fingerprint>``). The
    certificates of ``revoked`` are revoked."""
    root = pki.create_root("舟山市数字证书根CA", T0 - timedelta(days=30))
    sub = pki.create_intermediate(root, "舟山市数字证书二级CA", T0 - timedelta(days=30))
    people: dict[str, Person] = {}
    for n, (name, role, *of) in enumerate(cast):
        if of:
            identity = pki.Identity(name, of[0])
            key, cert = pki.issue_with_key(sub, identity, T0 - timedelta(days=1))
            subject = f"cert:{p.fingerprint(cert).hex()}"
            people[name] = Person(name, role, key, cert, [sub.cert], subject, of[0])
            continue
        code = uscc(f"91330900MA2B0{n:04d}")
        key, cert = pki.issue_with_key(sub, pki.Identity(name, name, code), T0 - timedelta(days=1))
        people[name] = Person(name, role, key, cert, [sub.cert], f"uscc:{code}")
    for name in revoked:
        sub = pki.revoke(sub, people[name].cert.serial_number, T0 - timedelta(hours=1))
        people[name].bound = False
    root, root_crl = pki.publish_crl(root, T0 - timedelta(minutes=5), timedelta(days=60))
    sub, sub_crl = pki.publish_crl(sub, T0 - timedelta(minutes=5), timedelta(days=60))
    store = TrustStore(folder)
    store.add_root(root.cert, T0)
    store.add_intermediate(sub.cert, T0)
    for crl in (root_crl, sub_crl):
        store.add_crl(crl, T0)
    return World(folder, people, sub)


class Clock:
    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


async def grant_roles(database_url: str, world: World) -> None:
    """Migrate the database and grant every person their role in the registry."""
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        store = Store(engine)
        for person in world.people.values():
            await store.grant(person.subject, person.name, [person.role], T0)
    finally:
        await engine.dispose()


def running_app(
    world: World, database_url: str, var: Path, clock: Clock, **settings: Any
) -> Iterator[TestClient]:
    """The app on ``database_url`` with every person granted their role, its clock pinned."""
    asyncio.run(grant_roles(database_url, world))
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
        state.timestamper = timestamps.pinned(state.settings, clock)
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


def tender_body(
    world: World, custodians: tuple[str, ...] = CUSTODIANS, **lot: Any
) -> dict[str, Any]:
    """A one-lot tender; ``lot`` overrides lot_body's fields."""
    return {
        "number": "ZJ-ZS-2026-0417",
        "title": "六横岛环卫一体化服务项目",
        "lots": [lot_body(world, custodians, **lot)],
    }


def publish_body(
    client: TestClient, body: dict[str, Any], headers: dict[str, str], chair: Person
) -> dict[str, Any]:
    """Create and publish the tender ``body`` (as ``headers``' staff, who is ``chair``) and sign
    its first lot's key statement: that lot, as served once signed."""
    made = client.post("/api/tenders", json=body, headers=headers)
    assert made.status_code == 201, made.json()
    tender = made.json()["tender"]
    done = client.post(f"/api/tenders/{tender['id']}/publish", headers=headers)
    assert done.status_code == 200, done.json()
    return sign_key(client, done.json()["tender"]["lots"][0], headers, chair)


def key_signature(lot: dict[str, Any], chair: Person) -> dict[str, Any]:
    """The body of ``POST /api/lots/{lot}/key-signature``: ``chair`` signs the lot's statement."""
    return chair.signed(lot_key.ACTION, lot_key.statement(lot))


def sign_key(
    client: TestClient, lot: dict[str, Any], headers: dict[str, str], chair: Person
) -> dict[str, Any]:
    """The chair signs the published ``lot``'s key statement; the lot as served then."""
    path = f"/api/lots/{lot['id']}/key-signature"
    done = client.post(path, json=key_signature(lot, chair), headers=headers)
    assert done.status_code == 200, done.json()
    signed_lot: dict[str, Any] = done.json()["lot"]
    return signed_lot


async def sign_key_async(
    http: httpx.AsyncClient,
    lot: dict[str, Any],
    headers: dict[str, str],
    chair: Person,
    base: str = "",
) -> dict[str, Any]:
    """:func:`sign_key` through an async client (to the node at ``base``, if it has none)."""
    path = f"{base}/api/lots/{lot['id']}/key-signature"
    done = await http.post(path, json=key_signature(lot, chair), headers=headers)
    assert done.status_code == 200, done.text
    signed_lot: dict[str, Any] = done.json()["lot"]
    return signed_lot


def publish(client: TestClient, world: World, chair: Person, **lot: Any) -> dict[str, Any]:
    """Create and publish a one-lot tender with its key signed; the published lot."""
    return publish_body(client, tender_body(world, **lot), chair.headers(), chair)


def bid_form(lot: str, price: str, **form: Any) -> dict[str, Any]:
    """A bid form (bid.json) for ``lot`` at ``price``; ``form`` overrides its fields."""
    return {
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


def bid_archive(lot: str, price: str, **form: Any) -> bytes:
    """A bid's plaintext: a ZIP whose first member is the bid form."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("bid.json", json.dumps(bid_form(lot, price, **form), ensure_ascii=False))
        archive.writestr("技术标.pdf", os.urandom(4096))
    return out.getvalue()


def seal_to(person: Person, lot: dict[str, Any], source: BinaryIO, target: BinaryIO) -> None:
    """Seal ``source`` by ``person`` to the lot's opening key, into ``target``."""
    opening = p.load_public_der(base64.b64decode(lot["opening_key"]))
    assert isinstance(opening, p.EcPublicKey)
    envelope.seal(
        source,
        target,
        lot=lot["id"],
        sealer=envelope.Sealer(person.der(), person.key),
        opening_key=opening,
    )


def seal(person: Person, lot: dict[str, Any], plain: bytes) -> bytes:
    out = io.BytesIO()
    seal_to(person, lot, io.BytesIO(plain), out)
    return out.getvalue()


def register(client: TestClient, lot: dict[str, Any], who: Person) -> None:
    done = client.post(f"/api/lots/{lot['id']}/registrations", headers=who.headers())
    assert done.status_code in (200, 201), done.json()


def start(client: TestClient, lot: dict[str, Any], who: Person, length: int) -> Any:
    """tus creation: the response (its location is the upload's URL)."""
    return client.post(
        f"/api/lots/{lot['id']}/uploads",
        headers={**who.headers(), **TUS, "Upload-Length": str(length)},
    )


def send(client: TestClient, url: str, who: Person, offset: int, data: bytes) -> Any:
    """One tus PATCH of ``data`` at ``offset``: the response."""
    return client.patch(
        url,
        content=data,
        headers={
            **who.headers(),
            **TUS,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
        },
    )


def upload(client: TestClient, lot: dict[str, Any], who: Person, data: bytes) -> Any:
    """Register (if needed) and upload ``data`` in one tus PATCH; the upload's outcome."""
    register(client, lot, who)
    created = start(client, lot, who, len(data))
    assert created.status_code == 201, created.json()
    url = created.headers["location"]
    sent = send(client, url, who, 0, data)
    assert sent.status_code == 204, sent.text
    return client.get(url, headers=who.headers()).json()


def share_body(
    person: Person, room: str, room_point: str, share: shares.Share, mnemonic: str | None = None
) -> dict[str, Any]:
    """A custodian's POST /api/openings/{room}/share: the share sealed to the room in their
    browser (``room_point`` is GET /api/openings/{room}/key's public key), signed."""
    commitment = shares.commitment_digest(share).hex()
    public = p.ec_from_point(base64.b64decode(room_point))
    sealed = handoff.seal_share(public, room, commitment, mnemonic or share.mnemonic)
    fields = {"room": room, "index": share.index, "commitment": commitment, "sealed_share": sealed}
    return {
        "index": share.index,
        "commitment": commitment,
        "sealed_share": sealed,
        **person.signed("opening.share", fields),
    }


# through a live node (a `bidroom serve` process, or the app served on port 0) ---------------


async def upload_to(http: httpx.AsyncClient, base: str, lot: str, who: Person, data: bytes) -> None:
    """Register ``who`` for ``lot`` and upload ``data`` over tus to the node at ``base``."""
    await http.post(f"{base}/api/lots/{lot}/registrations", headers=who.headers())
    created = await http.post(
        f"{base}/api/lots/{lot}/uploads",
        headers={**who.headers(), **TUS, "Upload-Length": str(len(data))},
    )
    assert created.status_code == 201, created.text
    url = base + created.headers["location"]
    headers = {**who.headers(), **TUS, "Content-Type": "application/offset+octet-stream"}
    sent = await http.patch(url, content=data, headers={**headers, "Upload-Offset": "0"})
    assert sent.status_code == 204, sent.text
    assert (await http.get(url, headers=who.headers())).json()["status"] == "accepted"


async def hand_over_to(
    http: httpx.AsyncClient, base: str, room: str, who: Person, sealed: bytes
) -> None:
    """``who`` decrypts in the window, as their page does: the data key sealed to the room,
    the signed action posted to the node at ``base``."""
    digest = hashlib.sha256(sealed).hexdigest()
    data_key = envelope.unwrap_with(envelope.read_header(io.BytesIO(sealed)), who.key)
    point = (await http.get(f"{base}/api/openings/{room}/key")).json()["public_key"]
    sealed_key = handoff.seal_key(p.ec_from_point(base64.b64decode(point)), room, digest, data_key)
    fields = {"room": room, "envelope": digest, "sealed_key": sealed_key}
    body = {"envelope": digest, "sealed_key": sealed_key, **who.signed("opening.decrypt", fields)}
    done = await http.post(f"{base}/api/openings/{room}/decrypt", json=body, headers=who.headers())
    assert done.status_code == 200, done.text


def signed_command(
    person: Person, kind: RoomType[Any], room: str, name: str, args: Mapping[str, Any]
) -> dict[str, Any]:
    """A WebSocket command's arguments as a page sends them: checked by the room type's edge
    contract and, for a command it signs (its ``signed``: an expert's act, a bidder's own
    failure report), with ``person``'s signature over ``room`` and the fields covered, as the
    argument values the shell rebuilds them from (docs/opening.md "Signed actions"). Arguments
    that carry a signature already, or ``signature=None`` (unsigned), are left as given."""
    covered = kind.signed.get(name)
    if covered is None or "signature" in args:
        return dict(args)
    checked = kind.arguments[name].model_validate(dict(args)).model_dump(mode="json")
    fields = {"room": room, **{field: checked[field] for field in covered}}
    return {**checked, **person.signed(name, fields)}
