"""Tenders, lots and bids over HTTP, in process: a real trust store and CA, the built-in TSA on a
pinned clock, sealed envelopes, tus uploads in chunks (one cut off and resumed), withdrawals."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient
from tendering import (
    DEADLINE,
    KEY,
    T0,
    TUS,
    Clock,
    Person,
    World,
    grant_roles,
    publish_body,
    register,
    seal,
    send,
    start,
)
from tendering import tender_body as one_lot_tender

from bidroom import tokens
from bidroom.store import AUDIT
from ca import login, shares
from ca import primitives as p

MAX = 60_000
CUSTODIANS = ("代理机构", "公证处")


CHAIR = tokens.Identity("staff:chair", "开标主持人", ("chair",))


def chair() -> dict[str, str]:
    token = tokens.mint(CHAIR, KEY, T0, timedelta(days=60))
    return {"authorization": f"Bearer {token}"}


def tender_body(world: World, **lot: Any) -> dict[str, Any]:
    """A one-lot tender, custodians 2-of-2, bids of at most MAX bytes."""
    lot = {"sheet_fields": ["price", "duration_days"], "max_bid_bytes": MAX, **lot}
    return one_lot_tender(world, CUSTODIANS, **lot)


def published(client: TestClient, world: World) -> dict[str, Any]:
    wang = world.people["王敏"]
    return publish_body(client, tender_body(world), wang.headers(), wang)


def bidding(
    client: TestClient, world: World, clock: Clock, *names: str
) -> tuple[dict[str, Any], list[Person]]:
    """A published lot a day into its bidding period, and ``names``, each registered for it."""
    lot = published(client, world)
    clock.at = T0 + timedelta(days=1)
    people = [world.people[name] for name in names]
    for person in people:
        register(client, lot, person)
    return lot, people


def sealed(person: Person, lot: dict[str, Any], size: int = 20_000) -> bytes:
    return seal(person, lot, os.urandom(size))


def started(client: TestClient, lot: dict[str, Any], who: Person, length: int) -> str:
    """A new upload's URL."""
    created = start(client, lot, who, length)
    assert created.status_code == 201, created.json()
    url: str = created.headers["location"]
    return url


def upload(
    client: TestClient, lot: dict[str, Any], who: Person, data: bytes, chunk: int = 7000
) -> Any:
    """Upload ``data`` in PATCHes of ``chunk`` bytes; the last PATCH's response."""
    url = started(client, lot, who, len(data))
    last = None
    for at in range(0, len(data), chunk):
        last = send(client, url, who, at, data[at : at + chunk])
        if last.status_code != 204:
            return last
    assert last is not None
    return last


def envelope_url(lot: dict[str, Any]) -> str:
    return f"/api/lots/{lot['id']}/bids/mine/envelope"


def mine(client: TestClient, lot: dict[str, Any], who: Person) -> list[dict[str, Any]]:
    got = client.get(f"/api/lots/{lot['id']}/bids/mine", headers=who.headers())
    assert got.status_code == 200, got.json()
    bids: list[dict[str, Any]] = got.json()["bids"]
    return bids


async def audit_actions(client: TestClient) -> list[Any]:
    async with client.app.state.store.engine.connect() as conn:  # type: ignore[attr-defined]
        return list((await conn.execute(select(AUDIT).order_by(AUDIT.c.id))).all())


# tenders and lots --------------------------------------------------------------------------


def test_a_published_lot_gives_each_custodian_a_share_that_opens_with_their_key(
    client: TestClient, world: World, clock: Clock
) -> None:
    lot = published(client, world)
    assert lot["room"] == f"opening-{lot['id']}"
    assert [c["subject"] for c in lot["custodians"]] == [
        world.people["代理机构"].subject,
        world.people["公证处"].subject,
    ]
    clock.at = DEADLINE + timedelta(minutes=1)  # a share is served after the deadline only
    opened = []
    for name in CUSTODIANS:
        person = world.people[name]
        got = client.get(f"/api/lots/{lot['id']}/share", headers=person.headers())
        assert got.status_code == 200
        assert got.headers["content-type"] == "application/json"
        share = shares.import_share(got.content, person.key)
        assert (
            share.custodian == person.subject
            and share.key_fingerprint.hex() == lot["key_fingerprint"]
        )
        opened.append(share)
    bidder = world.people["海洁"]
    refused = client.get(f"/api/lots/{lot['id']}/share", headers=bidder.headers())
    assert (refused.status_code, refused.json()["code"]) == (404, "share_not_found")
    [split] = [r for r in client.portal.call(audit_actions, client) if r.action == "lot.key_split"]
    assert split.room_id == lot["room"] and split.actor == world.people["王敏"].subject
    assert split.objects["opening_key"] == lot["key_fingerprint"]
    for share in opened:
        digest = shares.commitment_digest(share).hex()
        assert split.objects[f"share-{share.index}"] == digest
    room = client.get("/api/rooms").json()
    assert [r["id"] for r in room] == [lot["room"]]


def test_drafts_are_staff_only_and_publication_freezes_the_tender(
    client: TestClient, world: World
) -> None:
    made = client.post("/api/tenders", json=tender_body(world), headers=chair()).json()["tender"]
    assert made["status"] == "draft"
    assert client.get("/api/tenders").json() == []
    assert client.get(f"/api/tenders/{made['id']}").status_code == 404
    edited = client.put(
        f"/api/tenders/{made['id']}", json=tender_body(world, title="第一标段"), headers=chair()
    )
    assert edited.json()["tender"]["lots"][0]["title"] == "第一标段"
    bidder = world.people["海洁"].headers()
    denied = client.post("/api/tenders", json=tender_body(world), headers=bidder)
    assert (denied.status_code, denied.json()["code"]) == (403, "not_allowed")
    assert client.post(f"/api/tenders/{made['id']}/publish", headers=chair()).status_code == 200
    listed = client.get("/api/tenders").json()
    assert [t["status"] for t in listed] == ["published"]
    again = client.put(f"/api/tenders/{made['id']}", json=tender_body(world), headers=chair())
    assert (again.status_code, again.json()["code"]) == (409, "tender_frozen")


def test_publication_refuses_a_short_bidding_period_and_an_unusable_custodian(
    client: TestClient, world: World
) -> None:
    soon = tender_body(world, deadline=(T0 + timedelta(days=19)).isoformat())
    made = client.post("/api/tenders", json=soon, headers=chair()).json()["tender"]
    refused = client.post(f"/api/tenders/{made['id']}/publish", headers=chair())
    assert (refused.status_code, refused.json()["code"]) == (422, "deadline_too_soon")
    revoked = p.certificate_pem(world.people["吊销"].cert).decode()
    body = tender_body(world)
    body["lots"][0]["custodians"][1] = revoked
    made = client.post("/api/tenders", json=body, headers=chair()).json()["tender"]
    refused = client.post(f"/api/tenders/{made['id']}/publish", headers=chair())
    assert (refused.status_code, refused.json()["code"]) == (422, "cert_revoked")
    assert client.get("/api/tenders").json() == [], "nothing was published"
    bad = client.post("/api/tenders", json=tender_body(world, k=3), headers=chair())
    assert (bad.status_code, bad.json()["code"]) == (422, "k_out_of_range")


@pytest.mark.parametrize(
    ("lot", "code"),
    [
        # 0.00 + n x 0.03 never draws the published 0.05 (docs/opening.md "The draw of K")
        ({"method": "benchmark", "k_range": ["0.00", "0.05", "0.03"]}, "k_range_invalid"),
        ({"method": "benchmark", "k_range": ["0.95", "0.99", "0.01"]}, "k_range_invalid"),
        ({"ceiling_price": "1E+6"}, "money_invalid"),  # bidroom.money's one format
        ({"ceiling_price": " 3800000.00 "}, "money_invalid"),
        ({"guarantee": {"required": True, "amount": "50000.005"}}, "money_invalid"),
    ],
)
def test_a_k_range_off_its_step_and_money_out_of_format_are_refused(
    client: TestClient, world: World, lot: dict[str, Any], code: str
) -> None:
    refused = client.post("/api/tenders", json=tender_body(world, **lot), headers=chair())
    assert (refused.status_code, refused.json()["code"]) == (422, code)


# bids --------------------------------------------------------------------------------------


def test_a_bid_uploaded_in_chunks_is_received_with_a_receipt(
    client: TestClient, world: World, clock: Clock
) -> None:
    lot = published(client, world)
    bidder = world.people["海洁"]
    clock.at = T0 + timedelta(days=1)
    data = sealed(bidder, lot)
    refused = start(client, lot, bidder, len(data))
    assert (refused.status_code, refused.json()["code"]) == (403, "not_registered")
    register(client, lot, bidder)
    again = client.post(f"/api/lots/{lot['id']}/registrations", headers=bidder.headers())
    assert again.status_code == 200
    options = client.options(f"/api/lots/{lot['id']}/uploads")
    assert options.status_code == 204 and options.headers["tus-max-size"] == str(MAX)
    assert options.headers["tus-extension"] == "creation,termination"
    done = upload(client, lot, bidder, data)
    assert done.status_code == 204 and done.headers["upload-offset"] == str(len(data))
    [bid] = mine(client, lot, bidder)
    digest = hashlib.sha256(data).hexdigest()
    assert (bid["version"], bid["status"], bid["envelope_sha256"]) == (1, "current", digest)
    assert bid["received_at"] == clock.at.isoformat() and bid["size"] == len(data)
    assert bid["receipt"]["audit"]["entry"]
    fetched = client.get(envelope_url(lot), headers=bidder.headers())
    assert fetched.content == data
    blob = Path(client.app.state.settings.var_dir) / "blobs" / "sha256" / digest[:2] / digest  # type: ignore[attr-defined]
    assert blob.read_bytes() == data
    assert list((blob.parents[2].parent / "uploads").iterdir()) == [], "no upload file is left"
    denied = client.get(envelope_url(lot), headers=chair())
    assert (denied.status_code, denied.json()["code"]) == (403, "not_allowed")


def test_an_upload_cut_off_resumes_where_the_server_says(
    client: TestClient, world: World, clock: Clock
) -> None:
    lot, [bidder] = bidding(client, world, clock, "海洁")
    data = sealed(bidder, lot)
    url = started(client, lot, bidder, len(data))
    head = bidder.headers()
    status = client.portal.call(cut_off, client, url, head, data[:15_000], 9_000)
    assert status == 204
    asked = client.head(url, headers={**head, **TUS})
    assert asked.status_code == 200 and asked.headers["cache-control"] == "no-store"
    offset = int(asked.headers["upload-offset"])
    assert offset == 9_000 and asked.headers["upload-length"] == str(len(data))
    stale = send(client, url, bidder, 0, data[:100])
    assert (stale.status_code, stale.json()["code"]) == (409, "offset_mismatch")
    assert send(client, url, bidder, offset, data[offset:]).status_code == 204
    state = client.get(url, headers=head).json()
    assert state["status"] == "accepted" and state["bid"]["version"] == 1


async def cut_off(
    client: TestClient, url: str, head: dict[str, str], data: bytes, sent: int
) -> int:
    """A PATCH whose connection drops after ``sent`` of the declared bytes."""
    headers = {
        **head,
        **TUS,
        "upload-offset": "0",
        "content-type": "application/offset+octet-stream",
        "content-length": str(len(data)),
    }
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PATCH",
        "scheme": "http",
        "path": url,
        "raw_path": url.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    messages = [
        {"type": "http.request", "body": data[: sent // 2], "more_body": True},
        {"type": "http.request", "body": data[sent // 2 : sent], "more_body": True},
        {"type": "http.disconnect"},
    ]
    answers: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def record(message: dict[str, Any]) -> None:
        answers.append(message)

    await client.app(scope, receive, record)
    return int(answers[0]["status"])


def test_size_limits_and_the_protocol_version(
    client: TestClient, world: World, clock: Clock
) -> None:
    lot, [bidder] = bidding(client, world, clock, "海洁")
    big = start(client, lot, bidder, MAX + 1)
    assert (big.status_code, big.json()["code"]) == (413, "upload_too_large")
    assert big.headers["tus-resumable"] == "1.0.0"
    url = started(client, lot, bidder, 100)
    over = send(client, url, bidder, 0, b"x" * 101)
    assert over.status_code == 413
    old = client.head(url, headers={**bidder.headers(), "Tus-Resumable": "0.2.2"})
    assert old.status_code == 412
    tus = {**bidder.headers(), **TUS}
    plain = client.patch(url, content=b"x", headers={**tus, "Upload-Offset": "0"})
    assert plain.status_code == 415
    assert client.delete(url, headers=tus).status_code == 204
    assert client.head(url, headers=tus).status_code == 404


def test_refused_envelopes_leave_no_current_bid(
    client: TestClient, world: World, clock: Clock
) -> None:
    lot, [bidder, other, revoked] = bidding(client, world, clock, "海洁", "蓝天", "吊销")
    data = bytearray(sealed(bidder, lot))
    data[len(data) // 2] ^= 0x01
    tampered = upload(client, lot, bidder, bytes(data))
    assert tampered.status_code == 422 and tampered.json()["code"].startswith("envelope_")
    by_revoked = upload(client, lot, revoked, sealed(revoked, lot))
    assert (by_revoked.status_code, by_revoked.json()["code"]) == (422, "cert_revoked")
    for_me = sealed(bidder, lot)
    by_other = upload(client, lot, other, for_me)
    assert (by_other.status_code, by_other.json()["code"]) == (422, "signer_mismatch")
    for person in (bidder, other, revoked):
        assert mine(client, lot, person) == []
    uploads = Path(client.app.state.settings.var_dir) / "uploads"  # type: ignore[attr-defined]
    assert list(uploads.iterdir()) == []
    actions = [r.action for r in client.portal.call(audit_actions, client)]
    assert "bid.refused.cert_revoked" in actions and "bid.refused.signer_mismatch" in actions


def test_the_deadline_closes_uploads_by_server_time_and_by_trusted_time(
    client: TestClient, world: World, clock: Clock
) -> None:
    lot = published(client, world)
    bidder = world.people["海洁"]
    clock.at = DEADLINE - timedelta(minutes=1)
    register(client, lot, bidder)
    data = sealed(bidder, lot)
    url = started(client, lot, bidder, len(data))
    assert send(client, url, bidder, 0, data[:1000]).status_code == 204
    clock.at = DEADLINE + timedelta(seconds=1)
    late = send(client, url, bidder, 1000, data[1000:])
    assert (late.status_code, late.json()["code"]) == (422, "bid_late")
    assert client.get(url, headers=bidder.headers()).json()["error"]["code"] == "bid_late"
    closed = start(client, lot, bidder, len(data))
    assert (closed.status_code, closed.json()["code"]) == (409, "deadline_passed")
    assert mine(client, lot, bidder) == []


def withdrawal(person: Person, lot: dict[str, Any], digest: str, version: int) -> dict[str, Any]:
    fields = {"lot": lot["id"], "envelope": digest, "version": version}
    return {**fields, **person.signed("bid.withdraw", fields)}


def test_new_versions_replace_and_a_signed_withdrawal_works_only_before_the_deadline(
    client: TestClient, world: World, clock: Clock
) -> None:
    lot, [bidder] = bidding(client, world, clock, "海洁")
    other = world.people["蓝天"]  # not registered: they only sign
    first, second = sealed(bidder, lot), sealed(bidder, lot)
    assert upload(client, lot, bidder, first).status_code == 204
    assert upload(client, lot, bidder, second).status_code == 204
    versions = mine(client, lot, bidder)
    assert [(b["version"], b["status"]) for b in versions] == [(2, "current"), (1, "replaced")]
    digest = versions[0]["envelope_sha256"]
    url = f"/api/lots/{lot['id']}/bids/mine/withdraw"
    by_other = client.post(url, json=withdrawal(other, lot, digest, 2), headers=bidder.headers())
    assert (by_other.status_code, by_other.json()["code"]) == (403, "signer_mismatch")
    done = client.post(url, json=withdrawal(bidder, lot, digest, 2), headers=bidder.headers())
    assert done.status_code == 200 and done.json()["bid"]["status"] == "withdrawn"
    fetched = client.get(envelope_url(lot), headers=bidder.headers())
    assert fetched.status_code == 404
    assert upload(client, lot, bidder, first).status_code == 204, "a later upload is possible"
    latest = mine(client, lot, bidder)[0]
    assert (latest["version"], latest["status"]) == (3, "current")
    clock.at = DEADLINE + timedelta(seconds=1)
    late = client.post(
        url,
        json=withdrawal(bidder, lot, latest["envelope_sha256"], latest["version"]),
        headers=bidder.headers(),
    )
    assert (late.status_code, late.json()["code"]) == (409, "deadline_passed")
    assert mine(client, lot, bidder)[0]["status"] == "current"
    actions = [r.action for r in client.portal.call(audit_actions, client)]
    assert actions.count("bid.withdrawn") == 1 and actions.count("bid.received") == 3


def test_nobody_else_sees_or_touches_my_bids_and_uploads(
    client: TestClient, world: World, clock: Clock
) -> None:
    lot, [bidder, other] = bidding(client, world, clock, "海洁", "蓝天")
    data = sealed(bidder, lot)
    url = started(client, lot, bidder, len(data))
    theirs = other.headers()
    assert client.head(url, headers={**theirs, **TUS}).status_code == 404
    assert client.get(url, headers=theirs).status_code == 404
    assert send(client, url, other, 0, data).status_code == 404
    assert client.delete(url, headers={**theirs, **TUS}).status_code == 404
    assert send(client, url, bidder, 0, data).status_code == 204
    assert mine(client, lot, other) == []
    assert client.get(envelope_url(lot), headers=theirs).status_code == 404
    assert client.get(f"/api/lots/{lot['id']}/bids/mine").status_code == 401


def test_the_opening_shell_reads_the_lot_and_its_current_bids(
    client: TestClient, world: World, clock: Clock
) -> None:
    lot, [bidder] = bidding(client, world, clock, "海洁")
    data = sealed(bidder, lot)
    assert upload(client, lot, bidder, data).status_code == 204
    tenders = client.app.state.tenders  # type: ignore[attr-defined]
    record = client.portal.call(tenders.lot, lot["id"])
    assert record.room == lot["room"] and record.deadline == DEADLINE
    assert base64.b64encode(record.opening_key).decode() == lot["opening_key"]
    assert len(record.commitments) == 2 and record.spec["k"] == 2
    [current] = client.portal.call(tenders.current_bids, lot["id"])
    assert (current.bidder, current.envelope_sha256) == (
        bidder.subject,
        hashlib.sha256(data).hexdigest(),
    )
    assert [x.id for x in client.portal.call(tenders.published_lots)] == [lot["id"]]
    custodian = world.people["公证处"]
    assert client.portal.call(tenders.share_file, lot["id"], custodian.subject)
    assert login.holder_keys  # the registry subject is what the shell compares


def test_staff_create_and_publish_a_tender_from_the_command_line(
    tmp_path: Path, world: World
) -> None:
    from nodes import bidroom

    env = {
        "BIDROOM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'b.db'}",
        "BIDROOM_SECRET_KEY": KEY,
        "BIDROOM_TRUST_DIR": str(world.trust),
        "BIDROOM_VAR_DIR": str(tmp_path),
    }
    # migrated, the custodians granted (test_cli runs `migrate` and `registry grant` themselves)
    asyncio.run(grant_roles(env["BIDROOM_DATABASE_URL"], world))
    spec = tmp_path / "tender.json"
    spec.write_text(json.dumps(tender_body(world), ensure_ascii=False))
    ownerless = bidroom("tender", "create", str(spec), env=env)
    assert ownerless.returncode == 2 and "(owner_required)" in ownerless.stderr
    created = bidroom("tender", "create", str(spec), "--organisation", "王敏", env=env)
    assert created.returncode == 0, created.stderr
    tender_id = created.stdout.strip()
    assert bidroom("tender", "list", env=env).stdout.split("\t")[:2] == [tender_id, "draft"]
    done = bidroom("tender", "publish", tender_id, env=env)
    assert done.returncode == 0, done.stderr
    lot_id, room, deadline, _fingerprint = done.stdout.strip().split("\t")
    assert (lot_id, room) == (f"{tender_id}-1", f"opening-{tender_id}-1")
    assert datetime.fromisoformat(deadline) == DEADLINE
    again = bidroom("tender", "publish", tender_id, env=env)
    assert again.returncode == 2 and "(tender_frozen)" in again.stderr
    spec.write_text(json.dumps(tender_body(world, window_minutes=1)))
    bad = bidroom("tender", "create", str(spec), "--chair", "uscc:x", env=env)
    assert bad.returncode == 2 and "(window_out_of_range)" in bad.stderr
