"""An opening driven as the pages would drive it, in process: the tests of the opening's shell
and of the evaluation (whose input is a published opening record) share it."""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from starlette.testclient import TestClient
from tendering import (
    DEADLINE,
    T0,
    Clock,
    Person,
    World,
    bid_archive,
    publish,
    seal,
    share_body,
    upload,
)

from bidroom import openings
from bidroom.room import Actor, Command
from ca import envelope, handoff, shares
from ca import primitives as p

Plain = Mapping[str, bytes | Callable[[str], bytes]]  # a bidder's plaintext, or one made for a lot
GRACE = timedelta(seconds=30)  # BIDROOM_FIX_GRACE_SECONDS' default
PRICES = {"海洁": "3650000.00", "蓝天": "3720000.50", "绿源": "3900000.00"}


class Opening:
    """One lot's opening, driven as the pages would drive it."""

    def __init__(self, client: TestClient, world: World, clock: Clock, lot: dict[str, Any]):
        self.client, self.world, self.clock, self.lot = client, world, clock, lot
        self.room = lot["room"]
        self.sealed: dict[str, bytes] = {}
        self.last_body: dict[str, Any] = {}

    def person(self, name: str) -> Person:
        return self.world.people[name]

    def tick(self) -> None:
        state = self.client.app.state  # type: ignore[attr-defined]
        self.client.portal.call(openings.tick, state, self.clock.at)  # type: ignore[union-attr]

    def command(self, name: str, who: str, **args: Any) -> dict[str, Any]:
        """A WebSocket command, as the edge passes it to the hub."""
        person = self.person(who)
        actor = Actor(person.subject, person.name, person.role, None, person.name)
        hub = self.client.app.state.hub  # type: ignore[attr-defined]
        outcome: dict[str, Any] = self.client.portal.call(  # type: ignore[union-attr]
            hub.execute, self.room, Command(name, args), actor, None
        )
        return outcome

    def state(self) -> Any:
        hub = self.client.app.state.hub  # type: ignore[attr-defined]
        live = self.client.portal.call(hub.room, self.room)  # type: ignore[union-attr]
        return openings.part(live)

    def post(self, path: str, who: str, body: dict[str, Any]) -> Any:
        person = self.person(who)
        return self.client.post(
            f"/api/openings/{self.room}/{path}", json=body, headers=person.headers()
        )

    def hand_over(self, who: str, data_key: bytes | None = None, signer: str | None = None) -> Any:
        """The bidder's browser: unwrap the data key, seal it to the room, sign, post."""
        person = self.person(who)
        sealed = self.sealed[who]
        digest = hashlib.sha256(sealed).hexdigest()
        header = envelope.read_header(io.BytesIO(sealed))
        key = data_key or envelope.unwrap_with(header, person.key)
        point = self.client.get(f"/api/openings/{self.room}/key").json()["public_key"]
        room_public = p.ec_from_point(base64.b64decode(point))
        sealed_key = handoff.seal_key(room_public, self.room, digest, key)
        fields = {"room": self.room, "envelope": digest, "sealed_key": sealed_key}
        signature = self.person(signer or who).signed("opening.decrypt", fields)
        self.last_body = {"envelope": digest, "sealed_key": sealed_key, **signature}
        return self.post("decrypt", who, self.last_body)

    def submit_share(self, who: str, mnemonic: str | None = None) -> Any:
        person = self.person(who)
        got = self.client.get(f"/api/lots/{self.lot['id']}/share", headers=person.headers())
        assert got.status_code == 200, got.json()
        share = shares.import_share(got.content, person.key)
        point = self.client.get(f"/api/openings/{self.room}/key").json()["public_key"]
        return self.post("share", who, share_body(person, self.room, point, share, mnemonic))

    def confirm(self, who: str, opinion: str, text: str = "", digest: str | None = None) -> Any:
        digest = digest or self.state().record.digest
        fields = {"room": self.room, "digest": digest, "opinion": opinion, "text": text}
        body = {"digest": digest, "opinion": opinion, "text": text}
        return self.post(
            "confirm", who, {**body, **self.person(who).signed("opening.confirm", fields)}
        )


def ok(outcome: dict[str, Any]) -> dict[str, Any]:
    assert outcome["ok"], outcome
    return outcome


def bids_in(
    client: TestClient,
    world: World,
    clock: Clock,
    plain: Plain | None = None,
    **spec: Any,
) -> Opening:
    """The lot published (``spec`` overrides its fields) and each bidder's bid uploaded
    (``plain`` overrides a plaintext)."""
    chair = world.people["王敏"]
    lot = publish(client, world, chair, **spec)
    opening = Opening(client, world, clock, lot)
    clock.at = T0 + timedelta(days=1)
    for name, price in PRICES.items():
        given = (plain or {}).get(name)
        archive = given(lot["id"]) if callable(given) else given or bid_archive(lot["id"], price)
        data = seal(world.people[name], lot, archive)
        assert upload(client, lot, world.people[name], data)["status"] == "accepted"
        opening.sealed[name] = data
    return opening


def at_the_window(
    client: TestClient,
    world: World,
    clock: Clock,
    plain: Plain | None = None,
    **spec: Any,
) -> Opening:
    opening = bids_in(client, world, clock, plain, **spec)
    for name in PRICES:
        ok(opening.command("opening.sign_in", name))
    clock.at = DEADLINE + timedelta(seconds=1)
    opening.tick()
    assert opening.state().phase == "signing_in", "a bid stamped in time may still be recorded"
    clock.at = DEADLINE + GRACE
    opening.tick()
    assert opening.state().phase == "bids_fixed" and len(opening.state().bids) == 3
    ok(opening.command("opening.start_window", "王敏"))
    return opening
