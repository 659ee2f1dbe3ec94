"""The app in process (Starlette TestClient, SQLite): HTTP endpoints and the room directory."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from bidroom import audit, receipts, tokens
from bidroom.app import create_app
from bidroom.db import migrate
from bidroom.errors import NotMigrated
from bidroom.room import Actor, Command
from bidroom.settings import load_settings
from bidroom.store import create_engine
from ca import checkpoint, merkle

KEY = "app-secret-" + "s" * 40


def bearer(role: str) -> dict[str, str]:
    identity = tokens.Identity(f"{role}-1", role, (role,))
    token = tokens.mint(identity, KEY, datetime.now(UTC), timedelta(hours=1))
    return {"authorization": f"Bearer {token}"}


def migrated(path: Path) -> str:
    url = f"sqlite+aiosqlite:///{path}"

    async def run() -> None:
        engine = create_engine(url)
        await migrate(engine)
        await engine.dispose()

    asyncio.run(run())
    return url


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(
        database_url=migrated(tmp_path / "b.db"),
        secret_key=KEY,
        node_id="test-node",
        var_dir=tmp_path,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "node": "test-node"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "checks": {"database": "ok", "broker": "ok"}}


def test_metrics_speak_prometheus(client: TestClient) -> None:
    body = client.get("/metrics").text
    for name in (
        "bidroom_connections",
        "bidroom_rooms",
        "bidroom_events_appended_total",
        "bidroom_queue_drops_total",
        "bidroom_commands_total",
    ):
        assert name in body


def test_staff_create_rooms_and_anyone_lists_them(client: TestClient) -> None:
    body = {"id": "lot-1", "kind": "meeting", "title": "开标会", "config": {"roles": ["chair"]}}
    created = client.post("/api/rooms", json=body, headers=bearer("chair"))
    assert created.status_code == 201
    assert created.json()["title"] == "开标会"
    listed = client.get("/api/rooms").json()
    assert [r["id"] for r in listed] == ["lot-1"]
    assert "config" not in listed[0], "a room's configuration is not public"
    again = client.post("/api/rooms", json=body, headers=bearer("chair"))
    assert (again.status_code, again.json()["code"]) == (409, "room_exists")


def test_watchers_read_a_rooms_whole_history_a_page_at_a_time(client: TestClient) -> None:
    body = {"id": "lot-1", "kind": "meeting", "title": "开标会", "config": {}}
    assert client.post("/api/rooms", json=body, headers=bearer("chair")).status_code == 201
    hub = client.app.state.hub  # type: ignore[attr-defined]
    chair = Actor("chair-1", "王敏", "chair")
    client.portal.call(hub.execute, "lot-1", Command("meeting.open"), chair, None)  # type: ignore[union-attr]
    for n in range(3):
        announce = Command("meeting.announce", {"text": f"第{n}条"})
        client.portal.call(hub.execute, "lot-1", announce, chair, None)  # type: ignore[union-attr]
    history = client.get("/api/rooms/lot-1/events", headers=bearer("supervisor")).json()
    assert [e["seq"] for e in history["events"]] == [1, 2, 3, 4]
    assert history["events"][0]["name"] == "meeting.opened"
    later = client.get("/api/rooms/lot-1/events?after=2", headers=bearer("chair")).json()
    assert [e["data"]["text"] for e in later["events"]] == ["第1条", "第2条"]
    refused = client.get("/api/rooms/lot-1/events", headers=bearer("bidder"))
    assert (refused.status_code, refused.json()["code"]) == (403, "not_allowed")
    assert client.get("/api/rooms/lot-1/events").status_code == 401
    missing = client.get("/api/rooms/nope/events", headers=bearer("chair"))
    assert (missing.status_code, missing.json()["code"]) == (404, "room_not_found")
    bad = client.get("/api/rooms/lot-1/events?after=-1", headers=bearer("chair"))
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_args")


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        ({}, {"id": "x", "kind": "meeting", "title": "t"}, 401, "token_missing"),
        (
            {"authorization": "Bearer junk"},
            {"id": "x", "kind": "meeting", "title": "t"},
            401,
            "token_invalid",
        ),
        (bearer("bidder"), {"id": "x", "kind": "meeting", "title": "t"}, 403, "not_allowed"),
        (bearer("chair"), {"id": "../etc", "kind": "meeting", "title": "t"}, 422, "invalid_args"),
        (
            bearer("chair"),
            {"id": "x", "kind": "meeting", "title": "t", "extra": 1},
            422,
            "invalid_args",
        ),
        (bearer("chair"), {"id": "x", "kind": "auction", "title": "t"}, 422, "unknown_kind"),
    ],
)
def test_bad_room_requests_get_a_code(
    client: TestClient, headers: dict[str, str], body: dict[str, object], status: int, code: str
) -> None:
    answer = client.post("/api/rooms", json=body, headers=headers)
    assert (answer.status_code, answer.json()["code"]) == (status, code)
    assert client.get("/api/rooms").json() == []


def test_the_app_will_not_start_on_an_unmigrated_database(tmp_path: Path) -> None:
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}",
        secret_key=KEY,
        var_dir=tmp_path,
    )
    with pytest.raises(NotMigrated), TestClient(create_app(settings)):
        pass


def test_serve_never_hands_out_demo_keys(client: TestClient) -> None:
    assert client.get("/api/demo/people").status_code == 404
    assert client.get("/api/demo/people/bidder-1").status_code == 404


def test_the_room_page_is_served(client: TestClient) -> None:
    page = client.get("/room.html")
    assert page.status_code == 200 and 'lang="zh-CN"' in page.text


def test_the_audit_log_is_served_with_proofs_that_verify(client: TestClient) -> None:
    body = {"id": "lot-1", "kind": "meeting", "title": "开标会", "config": {"roles": ["chair"]}}
    assert client.post("/api/rooms", json=body, headers=bearer("chair")).status_code == 201
    token = bearer("chair")["authorization"].split()[1]
    with client.websocket_connect("/ws") as socket:
        socket.send_json({"type": "hello", "token": token, "room": "lot-1"})
        socket.send_json({"type": "command", "id": "c1", "name": "meeting.open"})
        while socket.receive_json().get("id") != "c1":
            pass
    assert client.get("/api/audit/checkpoint").status_code == 404, "nothing signed yet"
    client.portal.call(client.app.state.audit.integrate)  # type: ignore[attr-defined,union-attr]
    latest = client.get("/api/audit/checkpoint").json()
    cp = checkpoint.parse_and_verify(
        latest["note"], latest["verifier_key"], origin=latest["origin"]
    )
    assert latest["timestamp"], "every checkpoint is timestamped"
    assert client.get(f"/api/audit/entries?start=0&end={cp.size}").status_code == 401
    bidder = client.get(f"/api/audit/entries?start=0&end={cp.size}", headers=bearer("bidder"))
    assert bidder.status_code == 403, "who did what is for supervisors"
    chair = client.get(f"/api/audit/entries?start=0&end={cp.size}", headers=bearer("chair"))
    assert chair.status_code == 403, "the log spans every organisation's tenders"
    entries = client.get(
        f"/api/audit/entries?start=0&end={cp.size}", headers=bearer("supervisor")
    ).json()
    assert [audit.decode(e["entry"].encode()).action for e in entries][:2] == [
        "room.presence.joined",
        "room.meeting.opened",
    ]
    for e in entries:
        proof = client.get(f"/api/audit/proof/inclusion?index={e['index']}&size={cp.size}")
        path = [base64.b64decode(h) for h in proof.json()["proof"]]
        merkle.verify_inclusion(bytes.fromhex(e["leaf"]), e["index"], cp.size, path, cp.root)
    assert client.get("/api/audit/receipt?index=1", headers=bearer("bidder")).status_code == 403
    receipt = client.get("/api/audit/receipt?index=1", headers=bearer("supervisor")).json()
    proven = receipts.check(receipt, latest["verifier_key"])
    assert proven.entry.action == "room.meeting.opened" and proven.size == cp.size
    bad = client.get("/api/audit/proof/inclusion?index=99&size=1")
    assert (bad.status_code, bad.json()["code"]) == (422, "audit_index_out_of_range")
