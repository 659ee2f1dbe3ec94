"""`bidroom demo` leaves the evaluation ready to try: its seed (real SQLite, PKI, TSA and app, the
opening driven in process) publishes the record of a tender opened before the start, writes the
expert database's pool of the demo experts and opens the lot's evaluation session."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from bidroom import cli_operator, committee, demo, demo_pki, evaluation, receipts, tenders
from bidroom.app import create_app
from bidroom.db import migrate
from bidroom.settings import Settings
from bidroom.store import create_engine

EVALUATION_LINK = re.compile(r"login\.html\?demo=(\S+)&next=%2Fevaluation\.html%3Froom%3D(\S+)")


@dataclass
class Seeded:
    settings: Settings
    links: list[str]
    again: list[str]  # the links a restart prints

    @property
    def folder(self) -> Path:
        return demo.pki_folder(self.settings)


async def seed_twice(settings: Settings) -> tuple[list[str], list[str]]:
    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        return await demo.seed(engine, settings), await demo.seed(engine, settings)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    var = tmp_path_factory.mktemp("demo") / "var"
    settings = cli_operator._demo_settings(
        argparse.Namespace(var=str(var), host="127.0.0.1", port=0)
    )
    first, again = asyncio.run(seed_twice(settings))
    return Seeded(settings, first, again)


@pytest.fixture(scope="module")
def client(seeded: Seeded) -> Iterator[TestClient]:
    with TestClient(create_app(seeded.settings)) as client:
        yield client


def opened_lot(client: TestClient) -> dict[str, Any]:
    listed = client.get("/api/tenders").json()
    [tender] = [t for t in listed if t["number"] == demo.OPENED_NUMBER]
    [lot] = tender["lots"]
    return dict(lot)


def evaluation_links(lines: list[str]) -> dict[str, str]:
    return dict(EVALUATION_LINK.findall("\n".join(lines)))


def test_the_opened_tenders_record_is_published_with_every_bid_opened_and_confirmed(
    client: TestClient,
) -> None:
    lot = opened_lot(client)
    record = client.get(f"/api/openings/{lot['room']}/record").json()
    document = record["document"]
    prices = sorted(row["fields"]["price"] for row in document["sheet"]["rows"])
    assert prices == sorted(bid.price for bid in demo.OPENED_BIDS)
    assert not any(row["over_ceiling"] for row in document["sheet"]["rows"])
    assert {bid["status"] for bid in document["bids"]} == {"decrypted"}
    assert document["draw"]["k"] is not None, "K was drawn and revealed (a benchmark lot)"
    assert document["draw"]["formula"] == "bidroom K v2"
    revealed = [c for c in document["draw"]["contributions"] if c["revealed"]]
    assert len(revealed) == 3, "each bidder's contribution went into K"
    assert len(document["objections"]) == 1 and document["objections"][0]["answer"]
    assert [c["opinion"] for c in record["confirmations"].values()] == ["confirm"] * 3
    assert record["countersigned"]["chair"]
    opened_at = datetime.fromisoformat(document["times"]["scheduled"])
    assert opened_at < datetime.now(UTC), "the opening took place before the demo started"
    verifier = client.app.state.audit.verifier  # type: ignore[attr-defined]
    for proof in record["published"]["proofs"]:
        proven = receipts.check(proof["receipt"], str(verifier), None)
        assert proven.entry.room == lot["room"]


def test_the_expert_pool_names_each_demo_expert_by_their_certificate_subject(
    seeded: Seeded,
) -> None:
    path = seeded.settings.expert_pool
    assert path is not None and path == demo.pool_file(seeded.settings.var_dir)
    data = json.loads(path.read_text())
    assert (data["format"], data["v"]) == (committee.POOL_FORMAT, 1)
    pool = [committee.Expert.from_json(e) for e in data["experts"]]
    experts = [x for x in demo_pki.PEOPLE if x.role == "expert"]
    assert {e.id for e in pool} == {demo_pki.subject_of(seeded.folder, x.id) for x in experts}
    assert Counter(e.city for e in pool) == {"舟山": 4, "普陀": 2, "岱山": 2}
    parties = {x.organisation for x in demo_pki.PEOPLE if x.role != "expert"}
    assert not {e.organisation for e in pool} & parties
    assert all(e.specialties == {"环境卫生"} for e in pool)


def test_the_pool_fills_every_venue_and_has_a_replacement_at_each(
    client: TestClient, seeded: Seeded
) -> None:
    lot = opened_lot(client)
    section = tenders.Evaluation.model_validate(lot["evaluation"])
    data = json.loads(Path(str(seeded.settings.expert_pool)).read_text())
    pool = [committee.Expert.from_json(e) for e in data["experts"]]
    request = committee.Request(
        lot=lot["id"],
        seats=tuple(committee.Seats(v.venue, v.seats, frozenset(v.cities)) for v in section.venues),
        specialties=frozenset(section.specialties),
        tenderer=section.tenderer,
        bidders=frozenset(x.organisation for x in demo_pki.PEOPLE if x.role == "bidder"),
        on=datetime.now(UTC).date(),
    )
    drawn = committee.draw(pool, request, os.urandom(32))
    by_venue = Counter(seat.venue for seat in drawn.seats())
    assert by_venue == {"舟山主会场": 3, "普陀分会场": 1, "岱山分会场": 1}
    for venue in by_venue:
        seat = next(s for s in drawn.seats() if s.venue == venue)
        replaced = committee.replace_seat(drawn, seat.seat, os.urandom(32))
        assert replaced.replacements[-1].venue == venue


def test_the_evaluation_session_waits_for_the_chair_to_draw_the_committee(
    client: TestClient, seeded: Seeded
) -> None:
    links = evaluation_links(seeded.links)
    experts = [f"expert-{n}" for n in range(1, 9)]
    bidders = ["bidder-1", "bidder-2", "bidder-3"]
    assert sorted(links) == sorted(["chair", "supervisor", *bidders, *experts])
    [room] = set(links.values())
    hub = client.app.state.hub  # type: ignore[attr-defined]
    live = client.portal.call(hub.room, room)  # type: ignore[union-attr]
    assert live.record.kind == evaluation.KIND
    assert live.record.config["lot_id"] == opened_lot(client)["id"]
    assert live.kind.part_state(live.state, "evaluation").phase == "forming"


def test_a_restart_makes_nothing_new_and_prints_the_same_links(
    client: TestClient, seeded: Seeded
) -> None:
    assert seeded.again == seeded.links
    kinds = Counter(r["kind"] for r in client.get("/api/rooms").json())
    assert kinds == {"opening": 2, "evaluation": 1}
