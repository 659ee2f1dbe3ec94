"""Uploads and withdrawals under attack or failure: one completion per upload on any number of
nodes, unexpected failures that do not leave an upload stuck, a cap on unfinished uploads and
their removal after the deadline, and withdrawals that never reach the TSA with junk nor replay
against a later identical upload (docs/opening.md "Bids")."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient
from tendering import (
    DEADLINE,
    T0,
    TUS,
    Clock,
    Person,
    World,
    publish,
    register,
    seal,
    send,
    start,
)

from bidroom import uploads
from bidroom.errors import StoreError
from bidroom.store import AUDIT
from bidroom.tender_store import LotRecord

MAX = 60_000


def state(client: TestClient) -> Any:
    return client.app.state  # type: ignore[attr-defined]


def bidding(client: TestClient, world: World, clock: Clock, *names: str) -> dict[str, Any]:
    """A lot a day into its bidding period, every one of ``names`` registered for it."""
    lot = publish(client, world, world.people["王敏"], max_bid_bytes=MAX)
    clock.at = T0 + timedelta(days=1)
    for name in names:
        register(client, lot, world.people[name])
    return lot


def sealed(person: Person, lot: dict[str, Any]) -> bytes:
    return seal(person, lot, os.urandom(20_000))


def started(client: TestClient, lot: dict[str, Any], who: Person, length: int) -> str:
    created = start(client, lot, who, length)
    assert created.status_code == 201, created.json()
    url: str = created.headers["location"]
    return url


def status(client: TestClient, url: str, who: Person) -> dict[str, Any]:
    got = client.get(url, headers=who.headers())
    assert got.status_code == 200, got.text
    body: dict[str, Any] = got.json()
    return body


def mine(client: TestClient, lot: dict[str, Any], who: Person) -> list[dict[str, Any]]:
    got = client.get(f"/api/lots/{lot['id']}/bids/mine", headers=who.headers())
    assert got.status_code == 200, got.json()
    bids: list[dict[str, Any]] = got.json()["bids"]
    return bids


def actions(client: TestClient) -> list[str]:
    async def read() -> list[str]:
        async with state(client).store.engine.connect() as conn:
            rows = (await conn.execute(select(AUDIT.c.action).order_by(AUDIT.c.id))).all()
        return [row.action for row in rows]

    return client.portal.call(read)  # type: ignore[union-attr]


def upload_files(client: TestClient) -> list[str]:
    folder = Path(state(client).settings.var_dir) / "uploads"
    return sorted(p.name for p in folder.iterdir())


class Stamper:
    """The app's timestamper, counted; ``hold`` keeps the first stamp waiting until released,
    ``fail`` makes the first stamp raise it."""

    def __init__(self, inner: Any, hold: bool = False, fail: Exception | None = None):
        self.inner = inner
        self.hold = hold
        self.fail = fail
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def stamp(self, message: Any) -> Any:
        self.calls += 1
        if self.calls == 1:
            self.entered.set()
            if self.hold:
                await anyio.to_thread.run_sync(self.release.wait)
            if self.fail is not None:
                raise self.fail
        return await self.inner.stamp(message)


def stamper(client: TestClient, **kwargs: Any) -> Stamper:
    counted = Stamper(state(client).timestamper, **kwargs)
    state(client).timestamper = counted
    return counted


class OtherNodes(set[str]):
    """``uploads_busy`` as it looks to a request that reached another node: never busy."""

    def add(self, element: str) -> None:
        pass


# one completion ----------------------------------------------------------------------------


def test_an_upload_completes_once_even_when_another_node_sends_an_empty_patch_meanwhile(
    client: TestClient, world: World, clock: Clock
) -> None:
    lot = bidding(client, world, clock, "海洁")
    bidder = world.people["海洁"]
    data = sealed(bidder, lot)
    url = started(client, lot, bidder, len(data))
    state(client).uploads_busy = OtherNodes()
    gate = stamper(client, hold=True)
    with ThreadPoolExecutor(1) as pool:
        last = pool.submit(send, client, url, bidder, 0, data)
        try:
            assert gate.entered.wait(30), "the completion asks the TSA"
            again = send(client, url, bidder, len(data), b"")
            assert again.status_code == 409, "not completed a second time"
            assert again.json()["code"] == "upload_completing"
            gone = client.delete(url, headers={**bidder.headers(), **TUS})
            assert (gone.status_code, gone.json()["code"]) == (409, "upload_completing")
            head = client.head(url, headers={**bidder.headers(), **TUS})
            assert head.status_code == 200
            assert head.headers["upload-offset"] == str(len(data))
            assert status(client, url, bidder)["status"] == "completing"
        finally:
            gate.release.set()
        assert last.result().status_code == 204, last.result().text
    assert gate.calls == 1, "one time-stamp"
    assert status(client, url, bidder)["status"] == "accepted"
    assert [(b["version"], b["status"]) for b in mine(client, lot, bidder)] == [(1, "current")]
    assert actions(client).count("bid.received") == 1
    finished = send(client, url, bidder, len(data), b"")
    assert (finished.status_code, finished.json()["code"]) == (409, "upload_finished")


def test_a_completion_that_fails_unexpectedly_can_be_retried_with_an_empty_patch(
    client: TestClient, world: World, clock: Clock
) -> None:
    lot = bidding(client, world, clock, "海洁")
    bidder = world.people["海洁"]
    data = sealed(bidder, lot)
    url = started(client, lot, bidder, len(data))
    gate = stamper(client, fail=StoreError("the TSA is unreachable"))
    failed = send(client, url, bidder, 0, data)
    assert (failed.status_code, failed.json()["code"]) == (503, "store_unavailable")
    shown = status(client, url, bidder)
    assert (shown["status"], shown["offset"]) == ("uploading", len(data))
    retried = send(client, url, bidder, len(data), b"")
    assert retried.status_code == 204, retried.text
    assert gate.calls == 2
    assert status(client, url, bidder)["status"] == "accepted"
    assert [b["version"] for b in mine(client, lot, bidder)] == [1]
    assert upload_files(client) == []


def test_a_completion_that_fails_after_the_bytes_moved_on_ends_as_failed(
    client: TestClient, world: World, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    lot = bidding(client, world, clock, "海洁")
    bidder = world.people["海洁"]
    data = sealed(bidder, lot)
    url = started(client, lot, bidder, len(data))

    async def unavailable(bid: Any) -> Any:
        raise StoreError("database unavailable")

    monkeypatch.setattr(state(client).tenders, "record_bid", unavailable)
    failed = send(client, url, bidder, 0, data)
    assert failed.status_code == 503
    monkeypatch.undo()
    shown = status(client, url, bidder)
    assert (shown["status"], shown["error"]["code"]) == ("failed", "upload_failed")
    again = send(client, url, bidder, len(data), b"")
    assert (again.status_code, again.json()["code"]) == (409, "upload_finished")
    assert mine(client, lot, bidder) == []
    fresh = started(client, lot, bidder, len(data))
    assert send(client, fresh, bidder, 0, data).status_code == 204, "uploading again works"


# disk --------------------------------------------------------------------------------------


def test_a_bidder_holds_at_most_max_open_uploads_unfinished_uploads_per_lot(
    client: TestClient, world: World, clock: Clock
) -> None:
    lot = bidding(client, world, clock, "海洁", "蓝天")
    bidder, other = world.people["海洁"], world.people["蓝天"]
    assert state(client).settings.max_open_uploads == 2
    data = sealed(bidder, lot)
    first = started(client, lot, bidder, MAX)
    second = started(client, lot, bidder, len(data))
    assert send(client, second, bidder, 0, data[:1000]).status_code == 204
    third = start(client, lot, bidder, MAX)
    assert (third.status_code, third.json()["code"]) == (409, "too_many_uploads")
    assert third.json()["detail"] == {"max": 2}
    assert len(upload_files(client)) == 2, "a refused creation leaves no file"
    started(client, lot, other, MAX)  # per bidder
    assert client.delete(first, headers={**bidder.headers(), **TUS}).status_code == 204
    replacement = started(client, lot, bidder, MAX)
    assert start(client, lot, bidder, MAX).status_code == 409
    assert send(client, second, bidder, 1000, data[1000:]).status_code == 204
    assert status(client, second, bidder)["status"] == "accepted"
    assert start(client, lot, bidder, MAX).status_code == 201, "a finished upload frees a slot"
    assert status(client, replacement, bidder)["status"] == "uploading"


def test_unfinished_uploads_are_swept_once_the_deadline_has_passed(
    client: TestClient, world: World, clock: Clock
) -> None:
    lot = bidding(client, world, clock, "海洁", "蓝天")
    bidder, other = world.people["海洁"], world.people["蓝天"]
    data = sealed(bidder, lot)
    done = started(client, lot, bidder, len(data))
    assert send(client, done, bidder, 0, data).status_code == 204
    half = started(client, lot, bidder, len(data))
    assert send(client, half, bidder, 0, data[:5000]).status_code == 204
    theirs = started(client, lot, other, MAX)
    later = started(client, lot, other, MAX)
    assert len(upload_files(client)) == 3
    record: LotRecord = client.portal.call(state(client).tenders.lot, lot["id"])  # type: ignore[union-attr]
    before = clock.at
    assert client.portal.call(uploads.sweep, state(client), record, before) == 0  # type: ignore[union-attr]
    assert len(upload_files(client)) == 3, "nothing is swept before the deadline"

    clock.at = DEADLINE + timedelta(seconds=1)
    assert client.portal.call(uploads.sweep, state(client), record, clock.at) == 3  # type: ignore[union-attr]
    assert upload_files(client) == []
    for url, who in ((half, bidder), (theirs, other), (later, other)):
        assert client.head(url, headers={**who.headers(), **TUS}).status_code == 404
    assert status(client, done, bidder)["status"] == "accepted", "finished uploads stay"
    assert [b["status"] for b in mine(client, lot, bidder)] == ["current"]


def test_a_post_to_a_closed_lot_sweeps_its_unfinished_uploads(
    client: TestClient, world: World, clock: Clock
) -> None:
    lot = bidding(client, world, clock, "海洁")
    bidder = world.people["海洁"]
    url = started(client, lot, bidder, MAX)
    clock.at = DEADLINE + timedelta(seconds=1)
    closed = start(client, lot, bidder, MAX)
    assert (closed.status_code, closed.json()["code"]) == (409, "deadline_passed")
    assert upload_files(client) == []
    assert client.head(url, headers={**bidder.headers(), **TUS}).status_code == 404


# withdrawals -------------------------------------------------------------------------------


def withdrawal(person: Person, lot: dict[str, Any], envelope: Any, version: Any) -> dict[str, Any]:
    fields = {"lot": lot["id"], "envelope": envelope, "version": version}
    return {**fields, **person.signed("bid.withdraw", fields)}


def withdraw_url(lot: dict[str, Any]) -> str:
    return f"/api/lots/{lot['id']}/bids/mine/withdraw"


def test_a_withdrawal_of_junk_or_of_another_bid_never_reaches_the_tsa(
    client: TestClient, world: World, clock: Clock
) -> None:
    lot = bidding(client, world, clock, "海洁")
    bidder = world.people["海洁"]
    data = sealed(bidder, lot)
    assert send(client, started(client, lot, bidder, len(data)), bidder, 0, data).status_code == 204
    [bid] = mine(client, lot, bidder)
    digest = bid["envelope_sha256"]
    counted = stamper(client)
    junk = [
        (None, 1),
        ("../../etc/passwd", 1),
        ("x" * 100_000, 1),
        (digest.upper(), 1),
        (digest + "\n", 1),
        (digest[:-1], 1),
        (digest, None),
        (digest, "1"),
        (digest, True),
        (digest, 0),
    ]
    for envelope, version in junk:
        body = withdrawal(bidder, lot, envelope, version)
        refused = client.post(withdraw_url(lot), json=body, headers=bidder.headers())
        assert (refused.status_code, refused.json()["code"]) == (422, "invalid_args"), envelope
    for envelope, version in (("0" * 64, 1), (digest, 2)):
        body = withdrawal(bidder, lot, envelope, version)
        refused = client.post(withdraw_url(lot), json=body, headers=bidder.headers())
        assert (refused.status_code, refused.json()["code"]) == (404, "bid_not_found")
    assert counted.calls == 0, "no time-stamp for a withdrawal that cannot succeed"
    assert mine(client, lot, bidder)[0]["status"] == "current"
    assert "bid.withdrawn" not in actions(client)


def test_a_withdrawal_signature_does_not_withdraw_a_later_identical_upload(
    client: TestClient, world: World, clock: Clock
) -> None:
    lot = bidding(client, world, clock, "海洁")
    bidder = world.people["海洁"]
    data = sealed(bidder, lot)
    assert send(client, started(client, lot, bidder, len(data)), bidder, 0, data).status_code == 204
    digest = mine(client, lot, bidder)[0]["envelope_sha256"]
    signed = withdrawal(bidder, lot, digest, 1)
    done = client.post(withdraw_url(lot), json=signed, headers=bidder.headers())
    assert done.status_code == 200, done.json()
    assert done.json()["bid"]["status"] == "withdrawn"

    assert send(client, started(client, lot, bidder, len(data)), bidder, 0, data).status_code == 204
    latest = mine(client, lot, bidder)[0]
    assert (latest["version"], latest["envelope_sha256"], latest["status"]) == (
        2,
        digest,
        "current",
    )
    replayed = client.post(withdraw_url(lot), json=signed, headers=bidder.headers())
    assert (replayed.status_code, replayed.json()["code"]) == (404, "bid_not_found")
    forged = {**signed, "version": 2}  # the signature covers the version
    refused = client.post(withdraw_url(lot), json=forged, headers=bidder.headers())
    assert (refused.status_code, refused.json()["code"]) == (403, "signature_invalid")
    assert mine(client, lot, bidder)[0]["status"] == "current"
    fresh = client.post(
        withdraw_url(lot), json=withdrawal(bidder, lot, digest, 2), headers=bidder.headers()
    )
    assert fresh.status_code == 200 and fresh.json()["bid"]["version"] == 2
    assert actions(client).count("bid.withdrawn") == 2
