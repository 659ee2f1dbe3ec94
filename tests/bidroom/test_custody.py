"""Who holds a lot's opening key (issue 14 §3), through a real server: the whole app, its
lifespan run, served by uvicorn on port 0, its clock pinned (tests/tendering.py) so that the
deadline passes when the test says so.

The attack: the chair publishes a lot whose two custodians are the chair and a colleague of the
same trading centre, k = 2, and the two fetch their shares before the deadline to read a bid.
Refused at each step: the custody policy at publication, the share before the deadline; and a
bidder of a custodian's organisation cannot register for the lot.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from nodes import serving
from starlette.applications import Starlette
from tendering import (
    DEADLINE,
    KEY,
    T0,
    Clock,
    Person,
    World,
    grant_roles,
    lot_body,
    make_world,
    sign_in,
    sign_key_async,
)

from bidroom import audit, timestamps
from bidroom.app import create_app
from bidroom.settings import load_settings
from ca import shares

CENTRE = "舟山市公共资源交易中心"
OPERATOR = "bidroom 平台运营方"
EASTPORT = "东港城市服务集团有限公司"
AGENCY = "舟山海天招标代理有限公司"
CAST = (
    ("王敏", "chair", CENTRE),
    ("孙丽", "custodian", CENTRE),  # the chair's colleague
    ("郑洁", "custodian", OPERATOR),  # the platform operator's staff (an insider organisation)
    ("吴刚", "custodian", "舟山市公证处"),
    ("钱明", "custodian", "舟山市发展和改革委员会"),
    ("陈静", "custodian", EASTPORT),  # of a company that will want to bid
    ("赵磊", "supervisor", "舟山市财政局"),
    (EASTPORT, "bidder"),  # the company's own certificate: USCC, O = its name
    ("六横海洁环境服务有限公司", "bidder"),
    ("李娜", "chair", AGENCY),  # the agency's staff, assigned to chair the tender
    ("周代", "custodian", AGENCY),
    ("冯清", "bidder", CENTRE),  # a bidder's certificate naming the trading centre
    (AGENCY, "chair"),  # the agency's own certificate: USCC, O = its name
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("trust"), cast=CAST, revoked=())


@dataclass
class Server:
    app: Starlette
    url: str
    clock: Clock


@pytest.fixture
async def server(world: World, database_url: str, tmp_path: Path) -> AsyncIterator[Server]:
    """The app over ``database_url``, every person granted their role, the platform operator
    an insider organisation; its integrator slowed to once an hour (the test integrates)."""
    await grant_roles(database_url, world)
    settings = load_settings(
        database_url=database_url,
        secret_key=KEY,
        trust_dir=world.trust,
        var_dir=tmp_path,
        insider_organisations=[OPERATOR],
        audit_seconds=3600.0,
    )
    app = create_app(settings)
    clock = Clock(T0)
    async with app.router.lifespan_context(app), serving(app) as url:
        app.state.hub.clock = clock
        app.state.timestamper = timestamps.pinned(settings, clock)
        yield Server(app, url, clock)


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        yield client


def tender(world: World, custodians: tuple[str, ...], k: int = 2) -> dict[str, Any]:
    return {
        "number": "ZJ-ZS-2026-0417",
        "title": "六横岛环卫一体化服务项目",
        "lots": [lot_body(world, custodians, k=k)],
    }


async def publish(
    http: httpx.AsyncClient, world: World, custodians: tuple[str, ...], k: int = 2
) -> httpx.Response:
    """The chair 王敏 creates the tender and publishes it: the publication's answer."""
    chair = world.people["王敏"].headers()
    made = await http.post("/api/tenders", json=tender(world, custodians, k), headers=chair)
    assert made.status_code == 201, made.text
    return await http.post(f"/api/tenders/{made.json()['tender']['id']}/publish", headers=chair)


async def published(http: httpx.AsyncClient, world: World, custodians: tuple[str, ...]) -> Any:
    done = await publish(http, world, custodians)
    assert done.status_code == 200, done.text
    chair = world.people["王敏"]
    return await sign_key_async(http, done.json()["tender"]["lots"][0], chair.headers(), chair)


def refusal(answer: httpx.Response) -> tuple[int, str]:
    return answer.status_code, answer.json()["code"]


async def test_the_chair_cannot_publish_a_lot_its_own_side_can_open(
    http: httpx.AsyncClient, world: World
) -> None:
    # the chair and a colleague of the same trading centre, 2 shares needed
    chair_and_colleague = await publish(http, world, ("王敏", "孙丽"))
    assert refusal(chair_and_colleague) == (422, "custodian_is_chair")
    assert chair_and_colleague.json()["detail"]["custodian"]["name"] == "王敏"
    # the colleague and the platform operator's staff, with a notary: 2 insiders of 3, k = 2
    two_insiders = await publish(http, world, ("孙丽", "郑洁", "吴刚"))
    assert refusal(two_insiders) == (422, "custodian_not_independent")
    insiders = two_insiders.json()["detail"]["insiders"]
    assert [(c["name"], c["organisation"]) for c in insiders] == [
        ("孙丽", CENTRE),
        ("郑洁", OPERATOR),
    ]
    assert (await http.get("/api/tenders")).json() == [], "nothing was published"
    # the policy followed: one insider, the notary and another authority
    lot = await published(http, world, ("孙丽", "吴刚", "钱明"))
    shown = (await http.get(f"/api/lots/{lot['id']}")).json()["lot"]  # anyone may look
    assert [
        (c["name"], c["organisation"], c["index"], c["insider"]) for c in shown["custodians"]
    ] == [
        ("孙丽", CENTRE, 1, True),
        ("吴刚", "舟山市公证处", 2, False),
        ("钱明", "舟山市发展和改革委员会", 3, False),
    ]
    assert shown["k"] == 2 and "BEGIN CERTIFICATE" not in str(shown)


async def test_a_share_is_served_only_after_the_deadline_and_every_fetch_is_audited(
    http: httpx.AsyncClient, world: World, server: Server
) -> None:
    lot = await published(http, world, ("孙丽", "吴刚", "钱明"))
    url = f"/api/lots/{lot['id']}/share"
    colleague, notary = world.people["孙丽"], world.people["吴刚"]
    server.clock.at = DEADLINE - timedelta(hours=1)  # an hour before the deadline
    for custodian in (colleague, notary):
        early = await http.get(url, headers=custodian.headers())
        assert refusal(early) == (409, "share_not_yet"), early.text
        assert datetime.fromisoformat(early.json()["detail"]["deadline"]) == DEADLINE
    server.clock.at = DEADLINE + timedelta(minutes=1)
    got = await http.get(url, headers=notary.headers())
    assert got.status_code == 200, got.text
    share = shares.import_share(got.content, notary.key)
    assert share.custodian == notary.subject and share.index == 2
    # what a supervisor reads in the audit log
    await server.app.state.audit.integrate()
    size = (await http.get("/api/audit/checkpoint")).json()["size"]
    supervisor = world.people["赵磊"].headers()
    answer = await http.get(f"/api/audit/entries?start=0&end={size}", headers=supervisor)
    assert answer.status_code == 200, answer.text
    found = [audit.decode(e["entry"].encode()) for e in answer.json()]
    about = [
        (e.actor, e.action, e.at, dict(e.objects))
        for e in found
        if e.room == lot["room"] and e.action.startswith("lot.share_")
    ]
    assert about == [
        (colleague.subject, "lot.share_refused", DEADLINE - timedelta(hours=1), {}),
        (notary.subject, "lot.share_refused", DEADLINE - timedelta(hours=1), {}),
        (
            notary.subject,
            "lot.share_fetched",
            DEADLINE + timedelta(minutes=1),
            {"share": hashlib.sha256(got.content).hexdigest()},
        ),
    ]


async def test_a_bidder_whose_organisation_holds_a_share_cannot_register(
    http: httpx.AsyncClient, world: World, server: Server
) -> None:
    lot = await published(http, world, ("孙丽", "吴刚", "陈静"))
    server.clock.at = T0 + timedelta(days=1)
    url = f"/api/lots/{lot['id']}/registrations"
    refused = await http.post(url, headers=world.people[EASTPORT].headers())
    assert refusal(refused) == (403, "bidder_is_custodian")
    assert refused.json()["detail"]["custodian"]["name"] == "陈静"
    created = await http.post(
        f"/api/lots/{lot['id']}/uploads",
        headers={
            **world.people[EASTPORT].headers(),
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "9",
        },
    )
    assert refusal(created) == (403, "not_registered"), "no registration, no bid"
    other = await http.post(url, headers=world.people["六横海洁环境服务有限公司"].headers())
    assert other.status_code == 201, other.text


async def test_an_assigned_chair_publishes_under_the_owners_insiders_and_owners_bid_not(
    http: httpx.AsyncClient, world: World
) -> None:
    """The agency's chair, assigned to the trading centre's tender, publishes it with one
    custodian of each of the two: both are insiders (the owning organisation counts as well as
    the publisher's), k = 2, refused. And nobody of the owning organisation bids on it."""
    agent = world.people["李娜"]
    tender_id = await assigned_to(http, world, agent, ("孙丽", "周代"))
    answer = await http.post(f"/api/tenders/{tender_id}/publish", headers=agent.headers())
    assert refusal(answer) == (422, "custodian_not_independent"), answer.text
    insiders = {c["name"] for c in answer.json()["detail"]["insiders"]}
    assert insiders == {"孙丽", "周代"}
    # with the notary in the agency's place: one insider of two, published by the agency
    fixed = await http.put(
        f"/api/tenders/{tender_id}",
        json=tender(world, ("孙丽", "吴刚")),
        headers=agent.headers(),
    )
    assert fixed.status_code == 200, fixed.text
    done = await http.post(f"/api/tenders/{tender_id}/publish", headers=agent.headers())
    assert done.status_code == 200, done.text
    lot = done.json()["tender"]["lots"][0]
    own = await http.post(
        f"/api/lots/{lot['id']}/registrations", headers=world.people["冯清"].headers()
    )
    assert refusal(own) == (403, "bidder_is_owner"), own.text
    other = await http.post(
        f"/api/lots/{lot['id']}/registrations",
        headers=world.people["六横海洁环境服务有限公司"].headers(),
    )
    assert other.status_code in (200, 201), other.text


async def assigned_to(
    http: httpx.AsyncClient, world: World, agent: Person, custodians: tuple[str, ...]
) -> str:
    """The trading centre's chair 王敏 drafts a tender with ``custodians`` and assigns
    ``agent`` to chair it too: the tender's id."""
    chair = world.people["王敏"]
    made = await http.post("/api/tenders", json=tender(world, custodians), headers=chair.headers())
    assert made.status_code == 201, made.text
    tender_id: str = made.json()["tender"]["id"]
    assigned = await http.put(
        f"/api/tenders/{tender_id}/chairs",
        json={"chairs": [agent.subject]},
        headers=chair.headers(),
    )
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["tender"]["owner"]["chairs"] == sorted([chair.subject, agent.subject])
    return tender_id


@pytest.mark.parametrize("assigned", ["李娜", AGENCY])
async def test_an_assigned_chairs_organisation_is_an_insider_once_known(
    http: httpx.AsyncClient, world: World, assigned: str
) -> None:
    """The trading centre's chair assigns the agency's chair (a person's certificate: no USCC)
    and publishes with one custodian of each: the agency, which may chair the tender, is as much
    inside as the centre, so k = 2 is refused. Its organisation is what its chair signed in
    with: before the agency's chair ever signed in, publication cannot tell, and says so. The
    same whether the agency is assigned by its staff's certificate (李娜, ``cert:``) or its
    own (``uscc:``): its staff's certificates name it by O alone."""
    chair, agent = world.people["王敏"], world.people[assigned]
    tender_id = await assigned_to(http, world, agent, ("孙丽", "周代"))
    publish_path = f"/api/tenders/{tender_id}/publish"
    unknown = await http.post(publish_path, headers=chair.headers())
    assert refusal(unknown) == (422, "chair_organisation_unknown"), unknown.text
    assert unknown.json()["detail"]["chairs"] == [agent.subject]

    await sign_in(http, agent)
    answer = await http.post(publish_path, headers=chair.headers())
    assert refusal(answer) == (422, "custodian_not_independent"), answer.text
    assert {c["name"] for c in answer.json()["detail"]["insiders"]} == {"孙丽", "周代"}

    # with the notary in the agency's place: published
    fixed = await http.put(
        f"/api/tenders/{tender_id}", json=tender(world, ("孙丽", "吴刚")), headers=chair.headers()
    )
    assert fixed.status_code == 200, fixed.text
    done = await http.post(publish_path, headers=chair.headers())
    assert done.status_code == 200, done.text
