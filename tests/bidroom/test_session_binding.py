"""A session is bound to the certificate it was signed in with (issue 15 §1), attacked through a
real `bidroom serve`: an operator's `bidroom token` signs nothing, over HTTP (the lot key's
signature) or over the WebSocket (a bidder's signed sign-in), while the same person's
certificate session does; a certificate revoked ends the sessions minted before (a request, a
WebSocket hello, a command on a socket already open); a token issued in the future is refused.
And signed.verify_action itself: the revocation at that moment, and the session's certificate."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from client import RoomClient
from nodes import SECRET, Node, bidroom, solo
from tendering import (
    PEOPLE,
    T0,
    Person,
    World,
    grant_roles,
    key_signature,
    lot_body,
    make_world,
    sign_in,
)

from bidroom import signed, tokens
from bidroom.db import migrate
from bidroom.errors import NotAllowed
from bidroom.settings import load_settings
from bidroom.store import Store, create_engine
from ca import pki
from ca import primitives as p

CUSTODIANS = ("代理机构", "公证处", "平台运营")
CAST = (*PEOPLE, ("红叶", "bidder"))  # 红叶's certificate is revoked mid-test


@dataclass
class Platform:
    node: Node
    world: World
    lot: dict[str, Any]  # published, its key not signed yet
    env: dict[str, str]  # the node's: the CLI records in its database

    def operator_token(self, name: str) -> str:
        """What an operator holding the node's secret mints for ``name``: `bidroom token`."""
        who = self.world.people[name]
        done = bidroom(
            "token",
            who.subject,
            "--role",
            who.role,
            "--name",
            who.name,
            "--organisation",
            who.name,
            env={"BIDROOM_SECRET_KEY": SECRET},
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    async def login_async(self, name: str) -> str:
        """Certificate login through the node: the token it answers."""
        async with httpx.AsyncClient(base_url=self.node.url, timeout=30) as http:
            session = await sign_in(http, self.world.people[name])
        return str(session["token"])

    def login(self, name: str) -> str:
        return asyncio.run(self.login_async(name))


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    folder = tmp_path_factory.mktemp("binding")
    world = make_world(folder / "trust", CAST)
    url = f"sqlite+aiosqlite:///{folder / 'b.db'}"
    asyncio.run(grant_roles(url, world))
    node = solo(  # the database in folder / "b.db", as granted above
        folder,
        BIDROOM_TRUST_DIR=str(world.trust),
        BIDROOM_MIN_BID_DAYS="0",
        BIDROOM_VAR_DIR=str(folder / "var"),
    )
    try:
        yield Platform(node, world, _publish(node, world, node.env), node.env)
    finally:
        node.stop()


def _publish(node: Node, world: World, env: dict[str, str]) -> dict[str, Any]:
    """A benchmark lot (its bidders commit contributions to K at sign-in), published by the
    chair with an operator's token: publication is not a signed action."""
    deadline = (datetime.now(UTC) + timedelta(minutes=30)).replace(microsecond=0).isoformat()
    lot = lot_body(
        world,
        CUSTODIANS,
        deadline=deadline,
        method="benchmark",
        k_range=["0.00", "0.05", "0.01"],
    )
    body = {"number": "ZJ-ZS-2026-0419", "title": "会话绑定", "lots": [lot]}
    chair = Platform(node, world, {}, env).operator_token("王敏")
    made = httpx.post(node.url + "/api/tenders", json=body, headers=bearer(chair))
    assert made.status_code == 201, made.text
    tender = made.json()["tender"]["id"]
    done = httpx.post(f"{node.url}/api/tenders/{tender}/publish", headers=bearer(chair))
    assert done.status_code == 200, done.text
    published: dict[str, Any] = done.json()["tender"]["lots"][0]
    return published


def signed_sign_in(person: Person, room: str) -> dict[str, Any]:
    """A bidder's sign-in committing a contribution to K, signed with their certificate key."""
    contribution = hashlib.sha256(secrets.token_bytes(32)).hexdigest()
    fields = {"room": room, "contribution": contribution}
    return {"contribution": contribution, **person.signed("opening.sign_in", fields)}


def test_an_operators_token_signs_nothing_and_a_certificate_session_of_the_same_person_does(
    platform: Platform,
) -> None:
    lot, people = platform.lot, platform.world.people
    path = f"{platform.node.url}/api/lots/{lot['id']}/key-signature"
    body = key_signature(lot, people["王敏"])  # a real signature by the chair's own key

    minted = platform.operator_token("王敏")
    refused = httpx.post(path, json=body, headers=bearer(minted))
    assert (refused.status_code, refused.json()["code"]) == (403, "session_unbound")
    served = httpx.get(f"{platform.node.url}/api/lots/{lot['id']}").json()["lot"]
    assert served.get("key_signature") is None

    done = httpx.post(path, json=body, headers=bearer(platform.login("王敏")))
    assert done.status_code == 200, done.text

    async def over_the_socket() -> None:
        room, bidder = lot["room"], people["海洁"]
        unbound = await RoomClient.connect(
            platform.node.ws_url, platform.operator_token("海洁"), room, name="minted"
        )
        await unbound.welcome()  # reading and unsigned commands: an operator's token may
        refused = await unbound.command("opening.sign_in", signed_sign_in(bidder, room))
        assert refused["type"] == "error" and refused["code"] == "session_unbound", refused
        await unbound.close()

        bound = await RoomClient.connect(
            platform.node.ws_url, await platform.login_async("海洁"), room, name="login"
        )
        await bound.welcome()
        passed = await bound.command("opening.sign_in", signed_sign_in(bidder, room))
        assert passed["type"] == "ack", passed
        await bound.close()

    asyncio.run(over_the_socket())


def test_a_revoked_certificate_ends_the_sessions_minted_before(
    platform: Platform, tmp_path: Path
) -> None:
    lot, person = platform.lot, platform.world.people["红叶"]
    token = platform.login("红叶")
    mine = f"{platform.node.url}/api/lots/{lot['id']}/bids/mine"
    assert httpx.get(mine, headers=bearer(token)).status_code == 200

    async def revoke_while_connected() -> None:
        room = lot["room"]
        open_socket = await RoomClient.connect(platform.node.ws_url, token, room, name="before")
        await open_socket.welcome()

        # the CA revokes the certificate; its CRL reaches the trust store (the operator's CLI)
        assert platform.world.issuer is not None
        now = datetime.now(UTC).replace(microsecond=0)
        issuer = pki.revoke(platform.world.issuer, person.cert.serial_number, now)
        issuer, crl = pki.publish_crl(issuer, now, timedelta(days=30))
        platform.world.issuer = issuer
        file = tmp_path / "sub.crl"
        file.write_bytes(p.crl_der(crl))
        store = str(platform.world.trust)
        added = bidroom("ca", "trust", "add-crl", str(file), "--store", store, env=platform.env)
        assert added.returncode == 0, added.stderr

        refused = httpx.get(mine, headers=bearer(token))
        assert (refused.status_code, refused.json()["code"]) == (401, "session_revoked")
        again = await RoomClient.connect(platform.node.ws_url, token, room, name="after")
        assert await again.wait_closed() == (4001, "session_revoked")

        command = {"type": "command", "id": "after", "name": "opening.sign_in", "args": {}}
        await open_socket.send(command)
        assert await open_socket.wait_closed() == (4001, "session_revoked")

    asyncio.run(revoke_while_connected())

    async def login_again() -> int:
        async with httpx.AsyncClient(base_url=platform.node.url, timeout=30) as http:
            with pytest.raises(AssertionError, match="cert_revoked"):
                await sign_in(http, person)
        return 0

    asyncio.run(login_again())


def test_a_token_issued_in_the_future_is_refused(platform: Platform) -> None:
    person = platform.world.people["绿源"]
    who = tokens.Identity(
        person.subject, person.name, ("bidder",), None, person.name, tokens.bound(person.cert)
    )
    now = datetime.now(UTC)
    future = tokens.mint(who, SECRET, now + timedelta(minutes=5), timedelta(hours=8))
    skewed = tokens.mint(who, SECRET, now + tokens.CLOCK_SKEW / 2, timedelta(hours=8))
    mine = f"{platform.node.url}/api/lots/{platform.lot['id']}/bids/mine"
    refused = httpx.get(mine, headers=bearer(future))
    assert (refused.status_code, refused.json()["code"]) == (401, "token_not_yet_valid")
    assert httpx.get(mine, headers=bearer(skewed)).status_code == 200

    async def hello() -> tuple[int | None, str]:
        client = await RoomClient.connect(platform.node.ws_url, future, platform.lot["room"])
        return await client.wait_closed()

    assert asyncio.run(hello()) == (4001, "token_not_yet_valid")


def test_verify_action_checks_the_sessions_certificate_and_its_revocation_then(
    tmp_path: Path,
) -> None:
    """In process, the function every signed action calls: a session bound to a revoked
    certificate (whose session check the caller would have done already) is refused by the
    path check at ``now``; another certificate of the same holder (a renewal: the same USCC) is
    not the session's; an unbound session is refused before anything is read."""
    world = make_world(tmp_path / "trust")
    url = f"sqlite+aiosqlite:///{tmp_path / 'v.db'}"
    asyncio.run(grant_roles(url, world))
    settings = load_settings(database_url=url, secret_key=SECRET, trust_dir=world.trust)
    good, revoked = world.people["海洁"], world.people["吊销"]
    assert world.issuer is not None
    renewed_key, renewed = pki.issue_with_key(
        world.issuer, pki.Identity(good.name, good.name, good.subject.removeprefix("uscc:")), T0
    )
    renewal = Person(good.name, good.role, renewed_key, renewed, good.chain, good.subject)
    fields = {"room": "r", "cause": "bidder_absent"}

    def session(person: Person, bound: Person | None) -> tokens.Identity:
        binding = tokens.bound(bound.cert) if bound else None
        return tokens.Identity(person.subject, person.name, ("bidder",), None, None, binding)

    async def check(who: tokens.Identity, signer: Person) -> str:
        engine = create_engine(url)
        try:
            await migrate(engine)
            body = signer.signed("opening.report_failure", fields)
            await signed.verify_action(
                settings, Store(engine), who, body, "opening.report_failure", fields, T0
            )
            return "ok"
        except NotAllowed as exc:
            return exc.code
        finally:
            await engine.dispose()

    assert asyncio.run(check(session(good, good), good)) == "ok"
    assert asyncio.run(check(session(revoked, revoked), revoked)) == "cert_revoked"
    assert asyncio.run(check(session(good, None), good)) == "session_unbound"
    assert asyncio.run(check(session(good, good), renewal)) == "session_certificate_mismatch"
    assert asyncio.run(check(session(good, renewal), good)) == "session_certificate_mismatch"
    assert asyncio.run(check(session(good, good), world.people["蓝天"])) == "signer_mismatch"
