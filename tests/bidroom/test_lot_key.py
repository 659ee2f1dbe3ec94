"""The operator cannot swap a lot's opening key under the sealers (issue 14, the review's
critical finding), on a real node and through the bidder's own command line.

The attack: the platform makes a lot's opening key at publication and the database then serves
it. An operator who writes its own P-256 key (and that key's fingerprint) into the ``lot`` row
gets every later bid sealed to a key it holds, the upload check agrees (it compares with the
same row), and it reads the bids before the opening. Now the tender's chair signs the lot's
public parts with their own certificate key before any bid is taken, and a sealer seals only
to a key so signed, checked against trust roots it holds itself: the swapped key, whatever
signature the operator puts beside it, is refused before a byte is sealed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from nodes import Node, bidroom, solo
from starlette.testclient import TestClient
from tendering import (
    KEY,
    PEOPLE,
    T0,
    TUS,
    Clock,
    Person,
    World,
    bid_archive,
    grant_roles,
    key_signature,
    make_world,
    publish,
    tender_body,
    upload_to,
)

from ca import lot_key, pki, shares
from ca import primitives as p
from ca.errors import CryptoError
from ca.trust import TrustStore

WAIT = 60.0


@dataclass
class Site:
    node: Node
    world: World
    folder: Path

    @property
    def database(self) -> Path:
        return self.folder / "b.db"

    def person(self, name: str) -> Person:
        return self.world.people[name]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """make_world's people, another organisation's chair (李雷) and a colleague of the chair
    王敏 (李明: a person's certificate of the same organisation, so an owner too)."""
    cast = (*PEOPLE, ("李雷", "chair"), ("李明", "chair", "王敏"))
    return make_world(tmp_path_factory.mktemp("trust"), cast)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, world: World) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("lot-key")
    asyncio.run(grant_roles(f"sqlite+aiosqlite:///{folder / 'b.db'}", world))
    node = solo(
        folder,
        BIDROOM_SECRET_KEY=KEY,
        BIDROOM_TRUST_DIR=str(world.trust),
        BIDROOM_MIN_BID_DAYS="0",
    )
    try:
        yield Site(node, world, folder)
    finally:
        node.stop()


def published(site: Site, number: str) -> dict[str, Any]:
    """The chair 王敏 creates and publishes a tender; its lot, not yet signed."""
    chair = site.person("王敏").headers()
    body = {**tender_body(site.world), "number": number}
    made = httpx.post(f"{site.node.url}/api/tenders", json=body, headers=chair, timeout=WAIT)
    assert made.status_code == 201, made.text
    path = f"{site.node.url}/api/tenders/{made.json()['tender']['id']}/publish"
    done = httpx.post(path, headers=chair, timeout=WAIT)
    assert done.status_code == 200, done.text
    lot: dict[str, Any] = done.json()["tender"]["lots"][0]
    return lot


def sign(site: Site, lot: dict[str, Any], who: str, signer: str | None = None) -> httpx.Response:
    """``who``'s session posts a signature of ``lot``'s statement by ``signer``'s key."""
    body = key_signature(lot, site.person(signer or who))
    path = f"{site.node.url}/api/lots/{lot['id']}/key-signature"
    return httpx.post(path, json=body, headers=site.person(who).headers(), timeout=WAIT)


def served(site: Site, lot: str) -> dict[str, Any]:
    got = httpx.get(f"{site.node.url}/api/lots/{lot}", timeout=WAIT)
    assert got.status_code == 200, got.text
    found: dict[str, Any] = got.json()["lot"]
    return found


def refusal(answer: httpx.Response) -> tuple[int, str]:
    return answer.status_code, answer.json()["code"]


def start_upload(site: Site, lot: str, who: Person) -> httpx.Response:
    httpx.post(f"{site.node.url}/api/lots/{lot}/registrations", headers=who.headers())
    headers = {**who.headers(), **TUS, "Upload-Length": "1000"}
    return httpx.post(f"{site.node.url}/api/lots/{lot}/uploads", headers=headers, timeout=WAIT)


def seal_cli(
    site: Site, tmp: Path, lot: dict[str, Any], who: Person, trust: Path, owner: str = "王敏"
) -> Any:
    """The bidder's own tool: `bidroom bid seal --lot-file --trust --owner` with their key, their
    roots and the tenderer as its notice names it (王敏's organisation, in this world)."""
    (tmp / "lot.json").write_text(json.dumps({"lot": lot}, ensure_ascii=False))
    (tmp / "bid.zip").write_bytes(bid_archive(lot["id"], "3650000.00"))
    (tmp / "key.pem").write_bytes(p.dump_private_key(who.key))
    (tmp / "cert.pem").write_bytes(p.certificate_pem(who.cert))
    out = tmp / "bid.env"
    out.unlink(missing_ok=True)
    args = ("--key", str(tmp / "key.pem"), "--cert", str(tmp / "cert.pem"), "-o", str(out))
    ran = bidroom(
        "bid", "seal", str(tmp / "bid.zip"), "--lot", lot["id"],
        "--lot-file", str(tmp / "lot.json"), "--trust", str(trust), "--owner", owner,
        *args, env={},
    )  # fmt: skip
    return ran, out


def bidders_roots(site: Site, tmp: Path) -> Path:
    """The bidder's own trust store: the CA's root and CRLs, copied out of the platform's."""
    own = tmp / "my-roots"
    shutil.copytree(site.world.trust, own)
    return own


def swap(site: Site, lot: str, key: p.EcPrivateKey, signature: dict[str, Any] | None) -> None:
    """The operator's edit: its own key (and that key's fingerprint) in the lot row, and,
    if given, its own signature beside it; the node keeps running."""
    public = key.public_key()
    with sqlite3.connect(site.database) as db:
        db.execute(
            "UPDATE lot SET opening_key = ?, key_fingerprint = ?, key_signature = COALESCE(?, "
            "key_signature) WHERE id = ?",
            (
                p.public_der(public),
                shares.key_fingerprint(public).hex(),
                None if signature is None else json.dumps(signature),
                lot,
            ),
        )


def test_no_bid_is_taken_until_an_owner_signs_the_lot_key_with_their_own_key(
    site: Site,
) -> None:
    lot = published(site, "ZJ-ZS-2026-0501")
    assert lot["key_signature"] is None
    bidder = site.person("海洁")
    assert refusal(start_upload(site, lot["id"], bidder)) == (409, "lot_key_unsigned")

    # who may not sign: a bidder, another organisation's chair, the chair's session carrying
    # someone else's key (what an operator's minted token can do), a signature over other bytes
    assert refusal(sign(site, lot, "海洁")) == (403, "not_allowed")
    assert refusal(sign(site, lot, "李雷")) == (403, "not_your_tender")
    assert refusal(sign(site, lot, "王敏", signer="平台运营")) == (403, "signer_mismatch")
    other = {**lot, "opening_key": served(site, lot["id"])["opening_key"][:-8] + "AAAAAAA="}
    forged = {**key_signature(other, site.person("王敏"))}
    answer = httpx.post(
        f"{site.node.url}/api/lots/{lot['id']}/key-signature",
        json=forged,
        headers=site.person("王敏").headers(),
        timeout=WAIT,
    )
    assert refusal(answer) == (403, "signature_invalid")
    assert served(site, lot["id"])["key_signature"] is None

    # the owner signs: once, logged, and the lot now takes bids
    signed = sign(site, lot, "王敏")
    assert signed.status_code == 200, signed.text
    shown = signed.json()["lot"]["key_signature"]
    assert shown["signer"]["name"] == "王敏" and shown["signed_at"]
    assert refusal(sign(site, lot, "王敏")) == (409, "lot_key_signed")
    assert start_upload(site, lot["id"], bidder).status_code == 201
    holder = lot_key.verify(served(site, lot["id"]), TrustStore(site.world.trust), T0, ["王敏"])
    assert holder.name == "王敏"


async def test_an_operator_who_swaps_the_lot_key_in_the_database_gets_nothing_sealed_to_it(
    site: Site, tmp_path: Path
) -> None:
    lot = published(site, "ZJ-ZS-2026-0502")
    assert sign(site, lot, "王敏").status_code == 200
    bidder = site.person("蓝天")
    roots = bidders_roots(site, tmp_path)

    # the legitimate path: the bidder's tool checks the chair's signature and seals; it uploads
    ran, sealed = seal_cli(site, tmp_path, served(site, lot["id"]), bidder, roots)
    assert ran.returncode == 0, ran.stderr
    assert "王敏" in ran.stderr and sealed.exists()
    async with httpx.AsyncClient(timeout=WAIT) as http:
        await upload_to(http, site.node.url, lot["id"], bidder, sealed.read_bytes())

    # 1. the operator writes its own key into the row: served as the lot's key, and refused
    operator = p.generate_ec_key()
    swap(site, lot["id"], operator, None)
    shown = served(site, lot["id"])
    assert shown["opening_key"] == base64.b64encode(p.public_der(operator.public_key())).decode()
    ran, sealed = seal_cli(site, tmp_path, shown, bidder, roots)
    assert ran.returncode != 0 and "signature_invalid" in ran.stderr, ran.stderr
    assert not sealed.exists(), "nothing was sealed to the operator's key"

    # 2. ... and signs it with a key of its own making that names the owning organisation:
    # the bidder's roots do not know the operator's CA
    fake_root = pki.create_root("运营自建CA", T0 - timedelta(days=1))
    owner = site.person("王敏")
    fake_key, fake_cert = pki.issue_with_key(
        fake_root, pki.Identity("王敏", "王敏", owner.subject.removeprefix("uscc:")), T0
    )
    impostor = Person("王敏", "chair", fake_key, fake_cert, [], owner.subject, None)
    swap(site, lot["id"], operator, {**key_signature(shown, impostor), "signer": {}})
    ran, sealed = seal_cli(site, tmp_path, served(site, lot["id"]), bidder, roots)
    assert ran.returncode != 0 and "unknown_issuer" in ran.stderr, ran.stderr
    assert not sealed.exists()

    # 3. ... or with a real certificate it holds (its own staff's, a custodian's), after
    # writing that holder into the tender's owners: what the platform serves as the owner is
    # its word; the bidder checks the signer against the tenderer its notice names
    custodian = site.person("平台运营")
    with sqlite3.connect(site.database) as db:
        (raw,) = db.execute("SELECT owner FROM tender WHERE id = ?", (lot["tender"],)).fetchone()
        owner = json.loads(raw)
        owner["chairs"] = [*owner["chairs"], custodian.subject]
        db.execute("UPDATE tender SET owner = ? WHERE id = ?", (json.dumps(owner), lot["tender"]))
    rewritten = served(site, lot["id"])
    assert custodian.subject in rewritten["owner"]["chairs"]
    swap(site, lot["id"], operator, {**key_signature(rewritten, custodian), "signer": {}})
    ran, sealed = seal_cli(site, tmp_path, served(site, lot["id"]), bidder, roots)
    assert ran.returncode != 0 and "lot_key_signer" in ran.stderr, ran.stderr
    assert not sealed.exists()


def test_a_lot_file_without_a_signature_or_without_the_bidders_roots_seals_nothing(
    site: Site, tmp_path: Path
) -> None:
    lot = published(site, "ZJ-ZS-2026-0503")
    bidder = site.person("绿源")
    ran, sealed = seal_cli(site, tmp_path, served(site, lot["id"]), bidder, site.world.trust)
    assert ran.returncode != 0 and "lot_key_unsigned" in ran.stderr, ran.stderr
    assert not sealed.exists()
    assert sign(site, lot, "王敏").status_code == 200
    empty = tmp_path / "no-roots"
    empty.mkdir()
    ran, sealed = seal_cli(site, tmp_path, served(site, lot["id"]), bidder, empty)
    assert ran.returncode != 0, ran.stderr
    assert not sealed.exists()


def test_an_owner_replaces_a_signature_whose_certificate_lapsed_and_only_then(
    client: TestClient, world: World, clock: Clock
) -> None:
    """A sealer checks the signer's path at the moment of sealing, so a chair's certificate
    revoked (or expired) during bidding would leave every careful sealer nothing to seal to:
    the chair could shut them out by having their own certificate revoked. Another owner then
    signs the same statement again; while a signature holds, nobody replaces it."""
    chair, colleague = world.people["王敏"], world.people["李明"]
    lot = publish(client, world, chair)
    path = f"/api/lots/{lot['id']}/key-signature"
    again = client.post(path, json=key_signature(lot, colleague), headers=colleague.headers())
    assert (again.status_code, again.json()["code"]) == (409, "lot_key_signed")

    # the chair's certificate is revoked an hour in; the CA's new CRL reaches the trust store
    assert world.issuer is not None
    later = T0 + timedelta(hours=2)
    revoked = pki.revoke(world.issuer, chair.cert.serial_number, T0 + timedelta(hours=1))
    _, crl = pki.publish_crl(revoked, T0 + timedelta(hours=1, minutes=1), timedelta(days=60))
    TrustStore(world.trust).add_crl(crl, later)
    clock.at = later
    served_lot = client.get(f"/api/lots/{lot['id']}").json()["lot"]
    with pytest.raises(CryptoError) as refused:
        lot_key.verify(served_lot, TrustStore(world.trust), later, ["王敏"])
    assert refused.value.code == "cert_revoked"

    answer = client.post(path, json=key_signature(lot, chair), headers=chair.headers())
    assert (answer.status_code, answer.json()["code"]) == (401, "session_revoked")
    replaced = client.post(path, json=key_signature(lot, colleague), headers=colleague.headers())
    assert replaced.status_code == 200, replaced.text
    holder = lot_key.verify(replaced.json()["lot"], TrustStore(world.trust), later, ["王敏"])
    assert holder.name == "李明"
    assert replaced.json()["lot"]["opening_key"] == lot["opening_key"], "the same key, re-signed"
    third = client.post(path, json=key_signature(lot, colleague), headers=colleague.headers())
    assert (third.status_code, third.json()["code"]) == (409, "lot_key_signed")


def test_a_chair_is_not_led_to_sign_a_key_written_into_the_row_after_publication(
    site: Site,
) -> None:
    """The operator's other way round: swap the key before the chair signs (or clear the
    signature after, so the chair's page offers to sign again). The chair signs only the key the
    publication logged (``lot.key_split``, checkpointed and time-stamped with the rest)."""
    lot = published(site, "ZJ-ZS-2026-0504")
    swap(site, lot["id"], p.generate_ec_key(), None)
    answer = sign(site, {**lot, **served(site, lot["id"])}, "王敏")
    assert refusal(answer) == (409, "lot_key_mismatch"), answer.text
    assert served(site, lot["id"])["key_signature"] is None

    lot = published(site, "ZJ-ZS-2026-0505")
    assert sign(site, lot, "王敏").status_code == 200
    with sqlite3.connect(site.database) as db:
        db.execute("UPDATE lot SET key_signature = NULL WHERE id = ?", (lot["id"],))
    swap(site, lot["id"], p.generate_ec_key(), None)
    answer = sign(site, served(site, lot["id"]), "王敏")
    assert refusal(answer) == (409, "lot_key_mismatch"), answer.text


def key_split_row(site: Site, room: str) -> tuple[int, Any]:
    """The publication's ``lot.key_split`` entry: its row id and its index (None until the log
    has taken it)."""
    with sqlite3.connect(site.database) as db:
        row = db.execute(
            "SELECT id, idx FROM audit_entry WHERE room_id = ? AND action = 'lot.key_split'",
            (room,),
        ).fetchone()
    return row  # type: ignore[no-any-return]


def test_a_key_split_entry_rewritten_after_the_log_took_it_leads_no_chair_to_sign(
    site: Site,
) -> None:
    """The operator rewrites the logged fingerprint as well as the row, once the entry is in
    the log, and clears the signature so the chair's page offers to sign again: the entry no
    longer encodes to the leaf it was logged with, and the chair is not led to sign."""
    lot = published(site, "ZJ-ZS-2026-0601")
    assert sign(site, lot, "王敏").status_code == 200
    deadline = time.monotonic() + WAIT
    while key_split_row(site, lot["room"])[1] is None:  # integrated: its leaf is stored
        assert time.monotonic() < deadline, "the log never took the publication's entry"
        time.sleep(0.2)
    row_id, _ = key_split_row(site, lot["room"])
    operator = p.generate_ec_key()
    swap(site, lot["id"], operator, None)
    fingerprint = shares.key_fingerprint(operator.public_key()).hex()
    with sqlite3.connect(site.database) as db:
        db.execute("UPDATE lot SET key_signature = NULL WHERE id = ?", (lot["id"],))
        (raw,) = db.execute("SELECT objects FROM audit_entry WHERE id = ?", (row_id,)).fetchone()
        objects = {**json.loads(raw), "opening_key": fingerprint}
        db.execute("UPDATE audit_entry SET objects = ? WHERE id = ?", (json.dumps(objects), row_id))
    answer = sign(site, served(site, lot["id"]), "王敏")
    assert refusal(answer) == (409, "lot_key_mismatch"), answer.text


def test_lots_whose_numbers_share_a_prefix_are_each_signed_against_their_own_entry(
    site: Site,
) -> None:
    """Lot "1"'s room id is a prefix of lot "10"'s: each lot compares with its own entry."""
    chair = site.person("王敏").headers()
    first = tender_body(site.world)["lots"][0]
    body = {
        **tender_body(site.world),
        "number": "ZJ-ZS-2026-0602",
        "lots": [
            {**first, "number": "10", "title": "第10标段"},
            {**first, "number": "1", "title": "第1标段"},
        ],
    }
    made = httpx.post(f"{site.node.url}/api/tenders", json=body, headers=chair, timeout=WAIT)
    assert made.status_code == 201, made.text
    path = f"{site.node.url}/api/tenders/{made.json()['tender']['id']}/publish"
    done = httpx.post(path, headers=chair, timeout=WAIT)
    assert done.status_code == 200, done.text
    lots = {lot["number"]: lot for lot in done.json()["tender"]["lots"]}
    assert sign(site, lots["10"], "王敏").status_code == 200
    assert sign(site, lots["1"], "王敏").status_code == 200


def test_a_stored_signature_that_is_no_signature_is_served_refused_and_replaced(
    site: Site, tmp_path: Path
) -> None:
    lot = published(site, "ZJ-ZS-2026-0603")
    with sqlite3.connect(site.database) as db:
        db.execute("UPDATE lot SET key_signature = ? WHERE id = ?", ('"garbage"', lot["id"]))
    shown = served(site, lot["id"])
    assert shown["key_signature"] == "garbage"
    ran, sealed = seal_cli(site, tmp_path, shown, site.person("绿源"), site.world.trust)
    assert ran.returncode != 0 and "lot_key_unsigned" in ran.stderr, ran.stderr
    assert not sealed.exists()
    answer = sign(site, lot, "王敏")
    assert answer.status_code == 200, answer.text
    assert answer.json()["lot"]["key_signature"]["signer"]["name"] == "王敏"
