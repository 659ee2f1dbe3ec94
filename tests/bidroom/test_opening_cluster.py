"""An opening served by two real nodes over one PostgreSQL and one Redis.

Both nodes run the opening clock; bidders upload, hand over their keys and custodians submit
their shares on either node; the chair asks for the sheet on the other. Whatever node does what,
each step of the opening is recorded exactly once, in one order that both nodes' clients see.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from client import TIMEOUT, RoomClient
from nodes import Node
from tendering import (
    KEY,
    Person,
    World,
    bid_archive,
    hand_over_to,
    lot_body,
    make_world,
    seal,
    share_body,
    sign_key_async,
    upload_to,
)

from bidroom import opening
from bidroom.db import migrate
from bidroom.store import Store, create_engine
from ca import shares

pytestmark = pytest.mark.services

PRICES = {"海洁": "3650000.00", "蓝天": "3720000.50", "绿源": "3598000.00"}
ONCE = (
    "opening.bids_fixed",
    "opening.count_published",
    "opening.window_started",
    "opening.window_closed",
    "opening.quorum_opened",
    "opening.sheet_published",
)


@pytest.fixture
async def cluster(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> AsyncIterator[tuple[World, Node, Node]]:
    world = make_world(tmp_path / "trust")
    engine = create_engine(postgres_url)
    await migrate(engine)
    store = Store(engine)
    for person in world.people.values():
        await store.grant(person.subject, person.name, [person.role], datetime.now(UTC))
    await engine.dispose()
    base = {
        "BIDROOM_DATABASE_URL": postgres_url,
        "BIDROOM_REDIS_URL": redis_url,
        "BIDROOM_SECRET_KEY": KEY,
        "BIDROOM_TRUST_DIR": str(world.trust),
        "BIDROOM_VAR_DIR": str(tmp_path / "var"),  # shared: the blob store and the TSA
        "BIDROOM_MIN_BID_DAYS": "0",
        "BIDROOM_CLOCK_SECONDS": "0.2",
        "BIDROOM_FIX_GRACE_SECONDS": "1",
        "BIDROOM_COMMANDS_PER_SECOND": "1000",
    }
    a = Node({**base, "BIDROOM_NODE_ID": "node-a"})
    b = Node({**base, "BIDROOM_NODE_ID": "node-b"})
    await asyncio.to_thread(a.start)  # first, alone: it makes the built-in TSA both share
    try:
        await asyncio.to_thread(b.start)
        yield world, a, b
    finally:
        await asyncio.gather(asyncio.to_thread(a.stop), asyncio.to_thread(b.stop))


async def submit_share(
    http: httpx.AsyncClient, node: Node, room: str, lot: str, who: Person
) -> dict[str, Any]:
    got = await http.get(f"{node.url}/api/lots/{lot}/share", headers=who.headers())
    share = shares.import_share(got.content, who.key)
    point = (await http.get(f"{node.url}/api/openings/{room}/key")).json()["public_key"]
    body = share_body(who, room, point, share)
    done = await http.post(
        f"{node.url}/api/openings/{room}/share", json=body, headers=who.headers()
    )
    assert done.status_code == 200, done.text
    answer: dict[str, Any] = done.json()
    return answer


async def test_an_opening_on_two_nodes_records_each_step_once(
    cluster: tuple[World, Node, Node],
) -> None:
    world, a, b = cluster
    people = world.people
    chair = people["王敏"]
    deadline = datetime.now(UTC) + timedelta(seconds=40)
    body = {
        "number": "ZJ-ZS-2026-0417",
        "title": "六横岛环卫一体化服务项目",
        "lots": [
            lot_body(
                world,
                ("代理机构", "公证处", "平台运营"),
                deadline=deadline.isoformat(),
                window_minutes=5,
            )
        ],
    }
    async with httpx.AsyncClient(timeout=30) as http:
        made = await http.post(f"{a.url}/api/tenders", json=body, headers=chair.headers())
        tender = made.json()["tender"]
        published = await http.post(
            f"{a.url}/api/tenders/{tender['id']}/publish", headers=chair.headers()
        )
        assert published.status_code == 200, published.text
        lot = published.json()["tender"]["lots"][0]
        lot = await sign_key_async(http, lot, chair.headers(), chair, a.url)
        room = lot["room"]
        sealed = {}
        for n, (name, price) in enumerate(PRICES.items()):
            sealed[name] = seal(people[name], lot, bid_archive(lot["id"], price))
            await upload_to(http, (a, b)[n % 2].url, lot["id"], people[name], sealed[name])

        watcher = await RoomClient.connect(a.ws_url, token_for(chair), room, name="chair@a")
        other = await RoomClient.connect(b.ws_url, token_for(people["海洁"]), room, name="海洁@b")
        # both nodes' clocks find the deadline; the bids are fixed once
        await watcher.event("opening.count_published", timeout=TIMEOUT + 45)
        assert (await watcher.command("opening.start_window"))["type"] == "ack"
        await other.event("opening.window_started")
        await hand_over_to(http, a.url, room, people["海洁"], sealed["海洁"])
        await hand_over_to(http, b.url, room, people["蓝天"], sealed["蓝天"])
        # The chair's attack (issue 14): fail the last bidder as its own fault, so that the clock
        # closes the window early and the bid is revoked. Refused; a cause that is not the
        # bidder's fault is taken, but keeps the window open for the bidder.
        blamed = await watcher.command(
            "opening.report_failure", {"bidder": people["绿源"].subject, "cause": "bidder_key_lost"}
        )
        assert (blamed["type"], blamed["code"]) == ("error", "cause_blames_bidder"), blamed
        reported = await watcher.command(
            "opening.report_failure", {"bidder": people["绿源"].subject, "cause": "network_fault"}
        )
        assert reported["type"] == "ack", reported
        early = await watcher.command("opening.close_window")
        assert (early["type"], early["code"]) == ("error", "window_open"), early
        # The bidder reports its own failure: with every bid settled by its bidder, it closes.
        third = await RoomClient.connect(b.ws_url, token_for(people["绿源"]), room, name="绿源@b")
        # ... but only in its own word: a session alone (the operator can mint one) does not
        # make the report, nor does a signature by another key.
        unsigned = await third.command("opening.report_failure", {"cause": "bidder_key_lost"})
        assert (unsigned["type"], unsigned["code"]) == ("error", "signature_required"), unsigned
        fields = {"room": room, "cause": "ca_fault"}
        forged = people["绿源"].signed("opening.report_failure", fields)
        forged["signature"] = people["海洁"].signed("opening.report_failure", fields)["signature"]
        refused = await third.command("opening.report_failure", {"cause": "ca_fault", **forged})
        assert refused["type"] == "error", refused
        own = people["绿源"].signed("opening.report_failure", fields)
        failed = await third.command("opening.report_failure", {"cause": "ca_fault", **own})
        assert failed["type"] == "ack", failed
        await watcher.event("opening.window_closed")
        asked = await watcher.command(
            "opening.request_quorum", {"bidders": [people["绿源"].subject], "reason": "CA 故障"}
        )
        assert asked["type"] == "ack", asked
        await submit_share(http, a, room, lot["id"], people["代理机构"])
        await submit_share(http, b, room, lot["id"], people["公证处"])
        await watcher.event("opening.quorum_opened")
        sheet = await http.post(f"{b.url}/api/openings/{room}/sheet", headers=chair.headers())
        assert sheet.status_code == 200, sheet.text
        shown = await other.event("opening.sheet_published")
        await watcher.event("opening.sheet_published")

    prices = {r["name"]: r["fields"]["price"] for r in shown["data"]["rows"]}
    assert sorted(prices.values()) == sorted(PRICES.values())
    names = [f["name"] for f in watcher.events()]
    for step in ONCE:
        assert names.count(step) == 1, (step, names)
    assert watcher.seqs() == sorted(set(watcher.seqs())), "one order, no repeats"
    for client in (watcher, other, third):
        await client.close()


def token_for(person: Person) -> str:
    return person.headers()["authorization"].removeprefix("Bearer ")


def k_from_record(draw: dict[str, Any], lot: str) -> Decimal:
    """K v2 from the record's draw section alone, as docs/opening.md gives it: what an auditor
    writes, independent of bidroom.opening."""

    def canonical(value: Any) -> bytes:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    revealed = {c["bidder"]: c["value"] for c in draw["contributions"] if c["value"] is not None}
    for c in draw["contributions"]:  # each value is the one committed at sign-in
        assert c["value"] is None or sha256(bytes.fromhex(c["value"])) == c["commitment"]
    assert sha256(bytes.fromhex(draw["seed"])) == draw["commitment"]
    committed = {c["bidder"]: c["commitment"] for c in draw["contributions"]}
    fixed = {"lot": lot, "commitment": draw["commitment"], "contributions": committed}
    preimage = b"bidroom K input v2\n" + canonical({**fixed, "at": draw["fixed"]["at"]})
    assert sha256(preimage) == draw["fixed"]["digest"], "the fixed input is what it says"
    body = {
        "lot": lot,
        "range": draw["range"],
        "seed": draw["seed"],
        "fixed": draw["fixed"]["digest"],
        "contributions": revealed,
    }
    n = int(sha256(b"bidroom K v2\n" + canonical(body)), 16)
    low, high, step = (Decimal(v) for v in draw["range"])
    return low + n % (int((high - low) / step) + 1) * step


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_k_is_drawn_on_two_nodes_from_the_chair_and_the_bidders_and_the_chair_cannot_aim(
    cluster: tuple[World, Node, Node],
) -> None:
    """Issue 14 §4. The chair grinds its seed until K v1 would be the value it wants, as it did
    in the browser, and commits it; two bidders sign in with their contributions' commitments
    and reveal them in the window (each unseen by anyone else until the sheet); the third signs
    in with one and does not reveal it: absent from the formula. K is recomputed from the record
    by a few independent lines, and depends on what the bidders brought, not on the seed alone."""
    world, a, b = cluster
    people = world.people
    chair = people["王敏"]
    k_range = ["0.00", "0.05", "0.005"]
    deadline = datetime.now(UTC) + timedelta(seconds=45)
    lot_spec = lot_body(
        world,
        ("代理机构", "公证处", "平台运营"),
        deadline=deadline.isoformat(),
        window_minutes=5,
        method="benchmark",
        k_range=k_range,
    )
    body = {"number": "ZJ-ZS-2026-0418", "title": "基准价法项目", "lots": [lot_spec]}
    values = {name: os.urandom(32) for name in PRICES}
    async with httpx.AsyncClient(timeout=30) as http:
        made = await http.post(f"{a.url}/api/tenders", json=body, headers=chair.headers())
        tender = made.json()["tender"]
        published = await http.post(
            f"{a.url}/api/tenders/{tender['id']}/publish", headers=chair.headers()
        )
        assert published.status_code == 200, published.text
        lot = published.json()["tender"]["lots"][0]
        lot = await sign_key_async(http, lot, chair.headers(), chair, a.url)
        room = lot["room"]
        sealed = {}
        for n, (name, price) in enumerate(PRICES.items()):
            sealed[name] = seal(people[name], lot, bid_archive(lot["id"], price))
            await upload_to(http, (a, b)[n % 2].url, lot["id"], people[name], sealed[name])

        # the bidders sign in before the deadline, each with their contribution's commitment
        clients = {}
        for n, name in enumerate(PRICES):
            node = (b, a)[n % 2]
            clients[name] = await RoomClient.connect(
                node.ws_url, token_for(people[name]), room, name=f"bidder{n}"
            )
            commitment = {"contribution": sha256(values[name])}
            unsigned = await clients[name].command("opening.sign_in", commitment)
            assert (unsigned["type"], unsigned["code"]) == ("error", "signature_required")
            own = people[name].signed("opening.sign_in", {"room": room, **commitment})
            signed = await clients[name].command("opening.sign_in", {**commitment, **own})
            assert signed["type"] == "ack", signed
        again = await clients["海洁"].command("opening.sign_in", {"contribution": "f" * 64})
        assert (again["type"], again["code"]) == ("error", "already_signed_in")
        watcher = await RoomClient.connect(a.ws_url, token_for(chair), room, name="chair@a")
        await watcher.event("opening.count_published", timeout=TIMEOUT + 50)

        # The chair's attack: a seed whose v1 K is the highest step, found by trying seeds.
        low, high, step = (Decimal(v) for v in k_range)
        wanted = high
        ground = next(
            seed
            for seed in (
                hashlib.sha256(bytes([i, j])).digest() for i in range(256) for j in range(8)
            )
            if opening.draw_k(seed, lot["id"], low, high, step) == wanted
        )
        committed = await watcher.command("opening.commit_draw", {"commitment": sha256(ground)})
        assert committed["type"] == "ack", committed
        assert (await watcher.command("opening.start_window"))["type"] == "ack"
        await clients["海洁"].event("opening.window_started")
        late = await watcher.command("opening.commit_draw", {"commitment": "e" * 64})
        assert (late["type"], late["code"]) == ("error", "wrong_phase")

        for name in ("海洁", "蓝天"):  # 绿源 keeps theirs
            shown = await clients[name].command(
                "opening.reveal_contribution", {"value": values[name].hex()}
            )
            assert shown["type"] == "ack", shown
            await clients[name].event("opening.contribution_revealed")
        for n, name in enumerate(PRICES):
            await hand_over_to(http, (a, b)[n % 2].url, room, people[name], sealed[name])
        await watcher.event("opening.window_closed", timeout=TIMEOUT + 5)
        # nobody but its bidder has seen a contribution, nor has the room's history
        history = await http.get(f"{b.url}/api/rooms/{room}/events", headers=chair.headers())
        for frames in (
            watcher.events(),
            clients["绿源"].events(),
            history.json()["events"],
        ):
            assert not [f for f in frames if f["name"] == "opening.contribution_revealed"]
        for name, client in clients.items():
            mine = [f for f in client.events() if f["name"] == "opening.contribution_revealed"]
            assert [f["data"]["bidder"] for f in mine] == [people[name].subject for _ in mine], (
                "each bidder saw their own reveal only"
            )
        assert values["海洁"].hex() not in json.dumps(clients["蓝天"].frames)

        sheet = await http.post(f"{b.url}/api/openings/{room}/sheet", headers=chair.headers())
        assert sheet.status_code == 200, sheet.text
        await watcher.event("opening.sheet_published")
        too_late = await clients["绿源"].command(
            "opening.reveal_contribution", {"value": values["绿源"].hex()}
        )
        assert (too_late["type"], too_late["code"]) == ("error", "wrong_phase")
        # after the sheet everyone gets a fresh snapshot with the revealed values
        fresh = await clients["绿源"].wait_for(
            lambda f: f["type"] == "snapshot" and f["state"]["opening"]["phase"] == "sheet"
        )
        listed = fresh["state"]["opening"]["draw"]["contributions"]
        assert {c["bidder"]: c["value"] for c in listed} == {
            people["海洁"].subject: values["海洁"].hex(),
            people["蓝天"].subject: values["蓝天"].hex(),
            people["绿源"].subject: None,
        }
        revealed = await watcher.command("opening.reveal_draw", {"seed": ground.hex()})
        assert revealed["type"] == "ack", revealed
        drawn = await clients["蓝天"].event("opening.draw_revealed")
        assert drawn["data"]["absent"] == [people["绿源"].subject]
        assert (await watcher.command("opening.generate_record"))["type"] == "ack"
        generated = await clients["绿源"].event("opening.record_generated")

    draw = generated["data"]["document"]["draw"]
    k = k_from_record(draw, lot["id"])
    assert str(k) == draw["k"] == drawn["data"]["k"], "anyone recomputes K from the record"
    assert draw["formula"] == "bidroom K v2"
    # The ground seed did not settle K: the same seed and fixed input with other contributions
    # from the bidders give other values (K is uniform to a chair who cannot know them).
    others = {
        k_from_record(
            {**draw, "contributions": [{**c, "value": None} for c in draw["contributions"]]},
            lot["id"],
        ),
        *(
            k_from_record(
                _with_value(draw, lot["id"], people["海洁"].subject, os.urandom(32)), lot["id"]
            )
            for _ in range(12)
        ),
    }
    assert len(others) >= 3, others
    for client in (watcher, *clients.values()):
        await client.close()


def _with_value(draw: dict[str, Any], lot: str, bidder: str, value: bytes) -> dict[str, Any]:
    """The draw as if ``bidder`` had committed and revealed ``value``; the fixed input made
    again for it (the attacker's what-if, not a record)."""
    contributions = [
        {**c, "value": value.hex(), "commitment": sha256(value)} if c["bidder"] == bidder else c
        for c in draw["contributions"]
    ]
    committed = {c["bidder"]: c["commitment"] for c in contributions}
    fixed = {
        "lot": lot,
        "commitment": draw["commitment"],
        "contributions": committed,
        "at": draw["fixed"]["at"],
    }
    text = json.dumps(fixed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = sha256(b"bidroom K input v2\n" + text.encode())
    return {**draw, "contributions": contributions, "fixed": {**draw["fixed"], "digest": digest}}
