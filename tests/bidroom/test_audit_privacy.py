"""The public audit proofs no longer tell who signed in (issue 14 §5), on a real node.

Inclusion proofs are public and their first hash is a neighbouring leaf. Before salts, a sign-in's
leaf was a hash of guessable fields (the company's public USCC, the action, the room, a small seq,
a time to the microsecond): a competitor confirmed "company X signed in" by hashing guesses. Now
every leaf commits to its entry with 32 random bytes the platform keeps. The attacker here is the
strongest one: given every field of the entry but the salt, exactly, and a grid around the ones
it could only estimate. No guess matches a public leaf; the same grid with the salt (as the
entry's subject and the auditor have it) matches the entry's leaf.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest
from client import RoomClient
from nodes import SECRET, Node, solo
from tendering import Person, World, grant_roles, make_world, publish_body, tender_body

from bidroom import audit, receipts, tokens
from ca import checkpoint, merkle

WAIT = 60.0  # a generous bound on what a busy machine's node takes


def token(person: Person) -> str:
    identity = tokens.Identity(  # bound to the certificate, as login binds it
        person.subject, person.name, (person.role,), None, person.name, tokens.bound(person.cert)
    )
    return tokens.mint(identity, SECRET, datetime.now(UTC), timedelta(hours=1))


def bearer(person: Person) -> dict[str, str]:
    return {"authorization": f"Bearer {token(person)}"}


@dataclass
class Site:
    node: Node
    world: World
    room: str

    def person(self, name: str) -> Person:
        return self.world.people[name]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A node with a published lot, before its deadline, for which three bidders registered."""
    folder = tmp_path_factory.mktemp("privacy")
    world = make_world(folder / "trust")
    asyncio.run(grant_roles(f"sqlite+aiosqlite:///{folder / 'b.db'}", world))
    node = solo(
        folder,
        BIDROOM_TRUST_DIR=str(world.trust),
        BIDROOM_MIN_BID_DAYS="0",
        BIDROOM_AUDIT_SECONDS="0.2",
    )
    try:
        with httpx.Client(base_url=node.url, timeout=WAIT) as client:
            lot = publish_body(
                client,  # type: ignore[arg-type]
                tender_body(world),
                bearer(world.people["王敏"]),
                world.people["王敏"],
            )
            for name in ("海洁", "蓝天", "绿源"):
                done = client.post(
                    f"/api/lots/{lot['id']}/registrations", headers=bearer(world.people[name])
                )
                assert done.status_code in (200, 201), done.text
        yield Site(node, world, lot["room"])
    finally:
        node.stop()


async def sign_in(site: Site, name: str) -> int:
    """``name`` signs in to the opening (签到) over the room's WebSocket; the event's seq."""
    client = await RoomClient.connect(
        site.node.ws_url, token(site.person(name)), site.room, name=name
    )
    try:
        await client.welcome()
        reply = await client.command("opening.sign_in")
        assert reply["type"] == "ack", reply
        event = await client.event("opening.signed_in")
        seq: int = event["seq"]
        return seq
    finally:
        await client.socket.close()


def until(what: str, probe: Any) -> Any:
    """Poll ``probe`` until it returns something; fail after WAIT (the integrator runs every
    0.2 s: this waits on that condition, never a fixed time)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        found = probe()
        if found is not None:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{what} within {WAIT} s")


def own_receipt(client: httpx.Client, site: Site, name: str, seq: int) -> dict[str, Any]:
    """The receipt of ``name``'s event ``seq``, asked by ``name``, once it is integrated."""

    def probe() -> dict[str, Any] | None:
        got = client.get(
            "/api/audit/receipt",
            params={"room": site.room, "seq": seq},
            headers=bearer(site.person(name)),
        )
        if got.status_code == 404 and got.json()["code"] == "audit_not_yet":
            return None
        assert got.status_code == 200, got.text
        answer: dict[str, Any] = got.json()
        return answer

    found: dict[str, Any] = until("the sign-in's receipt", probe)
    return found


def public_leaves(client: httpx.Client, beyond: int) -> tuple[dict[str, Any], set[bytes]]:
    """What anyone gets without a token: the latest checkpoint (once it covers ``beyond``) and
    every leaf hash the inclusion proofs give out (proof[0] of entry j is the leaf of j ^ 1)."""

    def probe() -> dict[str, Any] | None:
        got = client.get("/api/audit/checkpoint")
        return got.json() if got.status_code == 200 and got.json()["size"] > beyond else None

    latest: dict[str, Any] = until(f"a public checkpoint beyond entry {beyond}", probe)
    size = latest["size"]
    leaves = set()
    for index in range(size):
        got = client.get("/api/audit/proof/inclusion", params={"index": index, "size": size})
        assert got.status_code == 200, got.text
        proof = [base64.b64decode(h) for h in got.json()["proof"]]
        if index ^ 1 < size:
            leaves.add(proof[0])
    return latest, leaves


def guesses(truth: audit.Entry, size: int, salt: str | None) -> set[bytes]:
    """Leaf hashes of every entry the grid spans: the right actor, action, room and objects,
    every index of the log, seq 1 to 20, the time to the microsecond within ±30 µs, as a
    version-1 entry (no salt) or, given ``salt``, as the version-2 entry with it."""
    found = set()
    for index in range(size):
        for seq in range(1, 21):
            for micro in range(-30, 31):
                guess = replace(
                    truth,
                    index=index,
                    seq=seq,
                    at=truth.at + timedelta(microseconds=micro),
                    salt=salt,
                )
                found.add(merkle.leaf_hash(audit.encode(guess)))
    return found


def test_a_competitor_cannot_confirm_from_public_proofs_who_signed_in(site: Site) -> None:
    hai_jie = site.person("海洁")
    seq = asyncio.run(sign_in(site, "海洁"))
    with httpx.Client(base_url=site.node.url, timeout=WAIT) as client:
        receipt = own_receipt(client, site, "海洁", seq)
        target = receipt["index"]
        # Another entry after it, so that the sign-in's leaf has a right neighbour whose public
        # proof begins with it (the attacker's source).
        asyncio.run(sign_in(site, "蓝天"))
        latest, leaves = public_leaves(client, target + 1)

        # The attacker knows every field but the salt: who (a public USCC), what, where, the
        # event's hash (of {"bidder": <USCC>}), and the grid spans index, seq and time.
        known = audit.Entry(
            audit.decode(receipt["entry"].encode()).at,
            hai_jie.subject,
            "room.opening.signed_in",
            site.room,
            None,
            {
                "event": audit.digest({"bidder": hai_jie.subject}),
                # the hash of the actor object (name, role, organisation: all public) too
                "actor": audit.decode(receipt["entry"].encode()).objects["actor"],
            },
        )
        confirmed = len(guesses(known, latest["size"], None) & leaves)
        assert confirmed == 0, f"{confirmed} guess(es) matched a public leaf: sign-in confirmed"

        # The same grid with the salt, as the subject and the auditor have it, finds the entry:
        # the grid was right; only the salt was missing.
        salt = audit.decode(receipt["entry"].encode()).salt
        assert salt is not None and audit.SALT.fullmatch(salt)
        matched = guesses(known, latest["size"], salt) & leaves
        assert matched == {bytes.fromhex(receipt["leaf"])}


def test_the_subject_checks_its_own_sign_in_and_no_other_bidder_may(site: Site) -> None:
    lv_yuan, hai_jie = site.person("绿源"), site.person("海洁")
    seq = asyncio.run(sign_in(site, "绿源"))
    with httpx.Client(base_url=site.node.url, timeout=WAIT) as client:
        receipt = own_receipt(client, site, "绿源", seq)
        latest = client.get("/api/audit/checkpoint").json()
        proven = receipts.check(receipt, latest["verifier_key"])
        assert (proven.entry.actor, proven.entry.action, proven.entry.seq) == (
            lv_yuan.subject,
            "room.opening.signed_in",
            seq,
        )
        assert proven.entry.salt is not None, "the subject gets its entry's salt"
        # Its inclusion, also against the public proof of the latest checkpoint.
        cp = checkpoint.parse_and_verify(latest["note"], latest["verifier_key"])
        proof = client.get(
            "/api/audit/proof/inclusion", params={"index": receipt["index"], "size": cp.size}
        ).json()["proof"]
        leaf = merkle.leaf_hash(receipt["entry"].encode())
        path = [base64.b64decode(h) for h in proof]
        merkle.verify_inclusion(leaf, receipt["index"], cp.size, path, cp.root)

        # Its own entries, all of them, each with its salt: it finds the sign-in among them.
        mine = client.get("/api/audit/mine", headers=bearer(lv_yuan))
        assert mine.status_code == 200, mine.text
        own = [audit.decode(e["entry"].encode()) for e in mine.json()]
        assert {e.actor for e in own} == {lv_yuan.subject} and all(e.salt for e in own)
        assert receipt["entry"] in [e["entry"] for e in mine.json()]
        theirs = client.get("/api/audit/mine", headers=bearer(hai_jie)).json()
        assert receipt["entry"] not in [e["entry"] for e in theirs]
        assert client.get("/api/audit/mine").status_code == 401

        # Another bidder asking for it, by event or by index, is refused; so is no one. By
        # event, another's entry is answered as a missing one is: no one counts a room's events
        # (its sign-ins) by asking for seq after seq.
        answers = {
            "room": ((404, "audit_not_yet"), {"room": site.room, "seq": seq}),
            "index": ((403, "not_allowed"), {"index": receipt["index"]}),
        }
        for expected, params in answers.values():
            other = client.get("/api/audit/receipt", params=params, headers=bearer(hai_jie))
            assert (other.status_code, other.json()["code"]) == expected, other.text
            nobody = client.get("/api/audit/receipt", params=params)
            assert (nobody.status_code, nobody.json()["code"]) == (401, "token_missing")
            assert receipt["entry"] not in other.text + nobody.text
        # Numbers too large for the database are bad input, not a 500.
        for path, params in (
            ("/api/audit/receipt", {"room": site.room, "seq": str(10**30)}),
            ("/api/audit/mine", {"start": str(10**30)}),
            ("/api/audit/proof/inclusion", {"index": str(10**30), "size": "1"}),
        ):
            huge = client.get(path, params=params, headers=bearer(hai_jie))
            assert (huge.status_code, huge.json()["code"]) == (422, "invalid_args"), huge.text
        absent = {"room": site.room, "seq": 10_000}
        missing = client.get("/api/audit/receipt", params=absent, headers=bearer(hai_jie))
        by_room = client.get(
            "/api/audit/receipt", params=answers["room"][1], headers=bearer(hai_jie)
        )
        assert missing.json()["code"] == by_room.json()["code"] == "audit_not_yet"
        assert missing.status_code == by_room.status_code == 404
        # Nor are the entries (with their salts) for bidders or the public.
        span = {"start": 0, "end": cp.size}
        assert client.get("/api/audit/entries", params=span).status_code == 401
        refused = client.get("/api/audit/entries", params=span, headers=bearer(hai_jie))
        assert (refused.status_code, refused.json()["code"]) == (403, "not_allowed")
