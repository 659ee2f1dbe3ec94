"""Issue 14 §2 through a real `bidroom serve` on port 0: the chair and the supervisor try to read
prices during the decryption window, before the sheet, and a chair of another organisation
tries to act on a tender that is not theirs. Every attempt is refused; the tender's own chair
still runs the opening.

The attacks, as they were made against the demo:
- the chair creates its own evaluation room over the live opening (``POST /api/rooms``) and
  reads a decrypted bid through it;
- the operator, holding the database, writes an evaluation session into it by hand, named and
  configured as a real one would be, and the chair and the supervisor read through it;
- the chair opens a session before the record is published;
- another trading centre's chair watches the opening, asks for its history and the sheet.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from client import TIMEOUT, RoomClient
from nodes import Node, solo, write_room
from tendering import (
    KEY,
    PEOPLE,
    Person,
    World,
    bid_archive,
    grant_roles,
    hand_over_to,
    lot_body,
    make_world,
    seal,
    sign_key_async,
    upload_to,
)

CAST = (*PEOPLE, ("李雷", "chair"), ("周监", "supervisor"))
PRICES = {"海洁": "3650000.00", "蓝天": "3720000.50", "绿源": "3900000.00"}


@dataclass
class Window:
    """A live opening in its decryption window, one bid decrypted (its key handed over)."""

    node: Node
    world: World
    lot: dict[str, Any]
    chair: RoomClient

    def person(self, name: str) -> Person:
        return self.world.people[name]

    @property
    def room(self) -> str:
        return str(self.lot["room"])


@pytest.fixture
async def window(tmp_path: Path) -> AsyncIterator[Window]:
    world = make_world(tmp_path / "trust", CAST)
    database = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"
    await grant_roles(database, world)
    node = await asyncio.to_thread(
        solo,
        tmp_path,
        BIDROOM_SECRET_KEY=KEY,  # the key Person.token() mints with
        BIDROOM_TRUST_DIR=str(world.trust),
        BIDROOM_VAR_DIR=str(tmp_path / "var"),
        BIDROOM_MIN_BID_DAYS="0",
        BIDROOM_CLOCK_SECONDS="0.2",
        BIDROOM_FIX_GRACE_SECONDS="1",
    )
    chair = world.people["王敏"]
    try:
        async with httpx.AsyncClient(base_url=node.url, timeout=TIMEOUT) as http:
            deadline = datetime.now(UTC) + timedelta(seconds=40)
            custodians = ("代理机构", "公证处", "平台运营")
            lot_spec = lot_body(world, custodians, deadline=deadline.isoformat(), window_minutes=5)
            body = {"number": "ZJ-ZS-2026-0417", "title": "六横岛环卫", "lots": [lot_spec]}
            made = await http.post("/api/tenders", json=body, headers=chair.headers())
            assert made.status_code == 201, made.text
            tender = made.json()["tender"]["id"]
            foreign = await http.post(
                f"/api/tenders/{tender}/publish", headers=world.people["李雷"].headers()
            )  # a draft is its owners' only: another centre's chair does not even see it
            assert (foreign.status_code, foreign.json()["code"]) == (404, "tender_not_found")
            done = await http.post(f"/api/tenders/{tender}/publish", headers=chair.headers())
            assert done.status_code == 200, done.text
            lot = await sign_key_async(
                http, done.json()["tender"]["lots"][0], chair.headers(), chair
            )
            sealed = {}
            for name, price in PRICES.items():
                sealed[name] = seal(world.people[name], lot, bid_archive(lot["id"], price))
                await upload_to(http, node.url, lot["id"], world.people[name], sealed[name])
            watcher = await RoomClient.connect(
                node.ws_url, chair.token(), lot["room"], name="chair"
            )
            await watcher.event("opening.count_published", timeout=TIMEOUT + 45)
            started = await watcher.command("opening.start_window")
            assert started["type"] == "ack", started
            await watcher.event("opening.window_started")
            await hand_over_to(http, node.url, lot["room"], world.people["海洁"], sealed["海洁"])
            await watcher.event("opening.bid_decrypted")
            yield Window(node, world, lot, watcher)
            await watcher.close()
    finally:
        await asyncio.to_thread(node.stop)


def session_config(w: Window, session: int) -> dict[str, Any]:
    """An evaluation session's config as the operator would forge it: the lot, its opening,
    the session number, the owners, one decrypted bid."""
    bidder = w.person("海洁").subject
    return {
        "lot": w.lot["id"],
        "lot_id": w.lot["id"],
        "opening_room": w.room,
        "session": session,
        "title": "第1标段",
        "owner": {"organisation": "王敏", "chairs": [w.person("王敏").subject]},
        "bids": [{"bidder": bidder, "name": "海洁", "price": "3650000.00", "status": "decrypted"}],
        "criteria": [{"id": "资格", "text": "资格"}],
        "params": {
            "price": {"method": "low_price", "weight": "0.30", "category": "services"},
            "items": [{"id": "方案", "max": "40"}],
        },
        "venues": [{"venue": "舟山主会场", "seats": 1}],
    }


async def test_no_insider_reads_a_price_during_the_decryption_window(window: Window) -> None:
    w = window
    chair, supervisor = w.person("王敏"), w.person("周监")
    bidder = w.person("海洁").subject
    async with httpx.AsyncClient(base_url=w.node.url, timeout=TIMEOUT) as http:
        # 1. The room directory makes meetings only: no evaluation (nor opening) of one's own.
        for kind in ("evaluation", "opening"):
            body = {"id": f"mine-{kind}", "kind": kind, "title": "评标", "config": {}}
            body["config"] = session_config(w, 1) if kind == "evaluation" else {}
            got = await http.post("/api/rooms", json=body, headers=chair.headers())
            assert (got.status_code, got.json()["code"]) == (403, "room_kind_reserved"), got.text
            got = await http.post("/api/rooms", json=body, headers=supervisor.headers())
            assert got.status_code == 403, got.text
        # 2. A session from the live opening: refused until its record is published.
        got = await http.post(
            f"/api/lots/{w.lot['id']}/evaluations", json={}, headers=chair.headers()
        )
        assert (got.status_code, got.json()["code"]) == (409, "record_unpublished"), got.text
        # 3. The operator's forgeries, written into the database: a session named as the real
        #    one would be reads nothing before the record; any other reads nothing ever.
        for room in (f"{w.room}-evaluation-1", "eval-by-hand"):
            await asyncio.to_thread(
                write_room,
                w.node.env["BIDROOM_DATABASE_URL"],
                room,
                "evaluation",
                "评标",
                session_config(w, 1),
            )
        for room, code in (
            (f"{w.room}-evaluation-1", "record_unpublished"),
            ("eval-by-hand", "session_not_real"),
        ):
            for reader in (chair, supervisor):
                got = await http.get(
                    f"/api/evaluations/{room}/bids/{bidder}", headers=reader.headers()
                )
                assert (got.status_code, got.json()["code"]) == (409, code), (room, got.text)
                assert "3650000" not in got.text
        # Nothing was read, so the supervisor's list of reads is empty.
        reads = await http.get(f"/api/lots/{w.lot['id']}/reads", headers=supervisor.headers())
        assert reads.status_code == 200 and reads.json()["reads"] == [], reads.text
        bidders_view = await http.get(
            f"/api/lots/{w.lot['id']}/reads", headers=w.person("蓝天").headers()
        )
        assert bidders_view.status_code == 403, bidders_view.text


async def test_a_chair_of_another_organisation_acts_on_no_part_of_the_tender(
    window: Window,
) -> None:
    w = window
    other = w.person("李雷")
    async with httpx.AsyncClient(base_url=w.node.url, timeout=TIMEOUT) as http:
        # It cannot take the id of the lot's first evaluation session for a meeting, which
        # would leave the owners' POST /api/lots/{lot}/evaluations a room_exists for ever.
        squat = {"id": f"{w.room}-evaluation-1", "kind": "meeting", "title": "会议"}
        taken = await http.post("/api/rooms", json=squat, headers=other.headers())
        assert (taken.status_code, taken.json()["code"]) == (403, "room_id_reserved"), taken.text
        history = await http.get(f"/api/rooms/{w.room}/events", headers=other.headers())
        assert (history.status_code, history.json()["code"]) == (403, "not_your_tender")
        sheet = await http.post(f"/api/openings/{w.room}/sheet", headers=other.headers())
        assert (sheet.status_code, sheet.json()["code"]) == (403, "not_your_tender"), sheet.text
        sessions = await http.post(
            f"/api/lots/{w.lot['id']}/evaluations", json={}, headers=other.headers()
        )
        assert (sessions.status_code, sessions.json()["code"]) == (403, "not_your_tender")
        reads = await http.get(f"/api/lots/{w.lot['id']}/reads", headers=other.headers())
        assert (reads.status_code, reads.json()["code"]) == (403, "not_your_tender")
    # Joining the opening as its chair is refused: the socket closes with the code.
    intruder = await RoomClient.connect(w.node.ws_url, other.token(), w.room, name="李雷")
    code, reason = await intruder.wait_closed()
    assert (code, reason) == (4003, "not_your_tender")
    assert any(
        f.get("code") == "not_your_tender" for f in intruder.frames if f["type"] == "error"
    ), intruder.frames
    # The tender's own chair still chairs: closing the window early is refused only because a
    # bid is still sealed, not because of who asks.
    early = await w.chair.command("opening.close_window")
    assert (early["type"], early["code"]) == ("error", "window_open"), early
