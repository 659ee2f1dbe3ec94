"""The evaluation's shell over HTTP, in process, on SQLite and PostgreSQL: a session opened from a
published opening, the committee drawn from the pool and seated by signed sign-in, a conflict and
its replacement, the pre-check over the decrypted bids, a signed clarification, the scores, the
report issued and signed by every member in turn (PAdES, each signature time-stamped), and the
signed PDF checked by pyHanko and by poppler's pdfsig."""

from __future__ import annotations

import base64
import contextlib
import io
import itertools
import json
import os
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from opened import PRICES, Opening, Plain, at_the_window, ok
from signers import pdfsig
from starlette.testclient import TestClient
from tendering import (
    KEY,
    PEOPLE,
    Clock,
    Person,
    World,
    bid_form,
    make_world,
    running_app,
    signed_command,
)

from bidroom import cli, committee, evaluation, evaluations, signed
from bidroom.room import Actor, Command
from ca import pades
from ca import primitives as p

SPECIALTY = "环境卫生"
MAIN, PUTUO, DAISHAN = "舟山主会场", "普陀分会场", "岱山分会场"
CITY = {MAIN: "舟山", PUTUO: "普陀", DAISHAN: "岱山"}
EXPERTS = {  # name -> venue (home city): 4 + 2 + 2, a spare at every venue
    "钱一": MAIN,
    "钱二": MAIN,
    "钱三": MAIN,
    "钱四": MAIN,
    "孙一": PUTUO,
    "孙二": PUTUO,
    "李一": DAISHAN,
    "李二": DAISHAN,
}
CAST = (*PEOPLE, *((name, "expert") for name in EXPERTS), ("赵磊", "supervisor"))
CRITERIA = [{"id": "资格", "text": "资格符合要求"}, {"id": "保证金", "text": "保证金符合要求"}]
ITEMS = [
    {"id": "方案", "max": "40", "kind": "subjective", "part": "technical"},
    {"id": "人员", "max": "20", "kind": "subjective", "part": "technical"},
    {"id": "业绩", "max": "10", "kind": "objective", "part": "commercial"},
]
EVALUATION = {
    "params": {
        "price": {"method": "low_price", "weight": "0.30", "category": "services"},
        "items": ITEMS,
        "candidates": 2,
    },
    "criteria": CRITERIA,
    "review_rule": "majority",
    "anonymous_technical": True,
    "venues": [
        {"venue": MAIN, "seats": 3, "cities": ["舟山"]},
        {"venue": PUTUO, "seats": 1, "cities": ["普陀"]},
        {"venue": DAISHAN, "seats": 1, "cities": ["岱山"]},
    ],
    "specialties": [SPECIALTY],
    "tenderer": "舟山市环境卫生管理处",
}


ROOM_TYPE = evaluation.room_type()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("trust"), cast=CAST)


def pool_file(world: World, folder: Path) -> Path:
    experts = [
        committee.Expert(
            world.people[name].subject,
            name,
            frozenset({SPECIALTY}),
            f"{name}咨询有限公司",
            CITY[venue],
        )
        for name, venue in EXPERTS.items()
    ]
    path = folder / "pool.json"
    path.write_text(json.dumps(committee.pool_json(experts), ensure_ascii=False))
    return path


@pytest.fixture
def client(tmp_path: Path, world: World, database_url: str, clock: Clock) -> Iterator[TestClient]:
    pool = pool_file(world, tmp_path)
    yield from running_app(
        world, database_url, tmp_path, clock, clock_seconds=3600, expert_pool=pool
    )


def published(
    client: TestClient, world: World, clock: Clock, plain: Plain | None = None
) -> Opening:
    """A lot with an evaluation section, opened and its record published (``plain``: some
    bidders' plaintexts)."""
    o = at_the_window(client, world, clock, plain, evaluation=EVALUATION)
    for name in PRICES:
        assert o.hand_over(name).status_code == 200
    o.tick()
    assert o.post("sheet", "王敏", {}).status_code == 200
    ok(o.command("opening.generate_record", "王敏"))
    for name in PRICES:
        assert o.confirm(name, "confirm").status_code == 200
    o.tick()
    chair = o.person("王敏")
    digest = o.state().record.digest
    fields = {"room": o.room, "digest": digest}
    body = {"digest": digest, **chair.signed("opening.countersign", fields)}
    countersigned = o.post("countersign", "王敏", body)
    assert countersigned.status_code == 200, countersigned.json()
    assert o.post("publish", "王敏", {}).status_code == 200
    return o


class Session:
    """One evaluation session, driven as its pages drive it."""

    def __init__(self, client: TestClient, world: World, room: str):
        self.client, self.world, self.room = client, world, room
        self.venue: dict[str, str] = {}

    def person(self, name: str) -> Person:
        return self.world.people[name]

    def post(self, path: str, who: str, body: dict[str, Any] | None = None) -> Any:
        return self.client.post(
            f"/api/evaluations/{self.room}/{path}",
            json=body or {},
            headers=self.person(who).headers(),
        )

    def command(self, name: str, who: str, **args: Any) -> dict[str, Any]:
        """A WebSocket command as the edge passes it to the hub; an expert's act signed with
        their key as their page signs it (the shell's check of it: test_an_operators_token_..)."""
        person = self.person(who)
        actor = Actor(person.subject, who, person.role, self.venue.get(who), who)
        hub = self.client.app.state.hub  # type: ignore[attr-defined]
        checked = signed_command(person, ROOM_TYPE, self.room, name, args)
        outcome: dict[str, Any] = self.client.portal.call(  # type: ignore[union-attr]
            hub.execute, self.room, Command(name, checked), actor, None
        )
        return outcome

    def state(self) -> Any:
        hub = self.client.app.state.hub  # type: ignore[attr-defined]
        return evaluations.part(self.client.portal.call(hub.room, self.room))  # type: ignore[union-attr]

    def sign_in(self, who: str, venue: str | None = None) -> Any:
        venue = venue or EXPERTS[who]
        fields = {"room": self.room, "venue": venue}
        body = {"venue": venue, **self.person(who).signed("evaluation.sign_in", fields)}
        answer = self.post("sign-in", who, body)
        if answer.status_code == 200:
            self.venue[who] = venue
        return answer

    def elect_the_first(self) -> list[str]:
        """No member declares a conflict and all elect the first as leader: the members."""
        ok(self.command("evaluation.open_declarations", "王敏"))
        members = self.members()
        for name in members:
            ok(self.command("evaluation.declare", name, declaration="none"))
        for name in members:
            ok(
                self.command(
                    "evaluation.vote", name, candidate=self.person(members[0]).subject, round=1
                )
            )
        return members

    def name_of(self, subject: str) -> str:
        return next(n for n, p_ in self.world.people.items() if p_.subject == subject)

    def members(self) -> list[str]:
        return [self.name_of(s) for s in self.state().members]

    def shown(self, bidder: str) -> str:
        state = self.state()
        return state.spec.labels.get(bidder, bidder) if state.anonymous else bidder

    def sign_report(self, who: str) -> Any:
        """The browser's part: sign the prepared attributes with the key it holds (raw r||s,
        as WebCrypto gives it); then the server finishes the PAdES signature."""
        person = self.person(who)
        der = person.cert.public_bytes(p.serialization_der())
        prepared = self.post("report/prepare", who, {"certificate": base64.b64encode(der).decode()})
        assert prepared.status_code == 200, prepared.json()
        to_sign = base64.b64decode(prepared.json()["to_sign"])
        raw = p.sign(person.key, to_sign)  # ECDSA as raw r||s, as keystore.js gives it
        body = {"token": prepared.json()["token"], "signature": base64.b64encode(raw).decode()}
        return self.post("report/sign", who, body)


def opened_session(
    client: TestClient, world: World, clock: Clock, plain: Plain | None = None
) -> tuple[Opening, Session]:
    o = published(client, world, clock, plain)
    clock.at += timedelta(hours=1)
    created = client.post(
        f"/api/lots/{o.lot['id']}/evaluations", json={}, headers=o.person("王敏").headers()
    )
    assert created.status_code == 201, created.json()
    return o, Session(client, world, created.json()["room"])


def seated(
    client: TestClient, world: World, clock: Clock, plain: Plain | None = None
) -> tuple[Opening, Session]:
    o, s = opened_session(client, world, clock, plain)
    drawn = s.post("draw", "王敏")
    assert drawn.status_code == 200, drawn.json()
    for name in EXPERTS:
        s.sign_in(name)
    assert len(s.members()) == 5
    return o, s


def test_a_session_opens_only_from_a_published_record_and_one_at_a_time(
    client: TestClient, world: World, clock: Clock
) -> None:
    o = at_the_window(client, world, clock, evaluation=EVALUATION)
    chair = o.person("王敏").headers()
    url = f"/api/lots/{o.lot['id']}/evaluations"
    early = client.post(url, json={}, headers=chair)
    assert early.status_code == 409 and early.json()["code"] == "record_unpublished"
    bidder = client.post(url, json={}, headers=o.person("海洁").headers())
    assert bidder.status_code == 403
    assert client.post("/api/lots/nope/evaluations", json={}, headers=chair).status_code == 404


def test_the_committee_is_drawn_sealed_and_each_expert_signs_in_at_their_own_venue(
    client: TestClient, world: World, clock: Clock
) -> None:
    o, s = opened_session(client, world, clock)
    again = client.post(
        f"/api/lots/{o.lot['id']}/evaluations", json={}, headers=o.person("王敏").headers()
    )
    assert again.status_code == 409 and again.json()["code"] == "session_open"
    assert s.post("draw", "钱一").json()["code"] == "not_allowed"
    assert s.sign_in("钱一").json()["code"] == "no_draw"
    drawn = s.post("draw", "王敏")
    assert drawn.status_code == 200, drawn.json()
    assert s.post("draw", "王敏").json()["code"] == "wrong_phase"
    state = s.state()
    assert [seat.status for seat in state.seats] == ["sealed"] * 5
    assert all(seat.expert is None for seat in state.seats), "identities are sealed"
    assert state.sealed_draw and "钱" not in state.sealed_draw

    elsewhere = {
        name: s.sign_in(name, DAISHAN if EXPERTS[name] != DAISHAN else MAIN) for name in EXPERTS
    }
    codes = {r.json()["code"] for r in elsewhere.values()}
    assert codes == {"wrong_venue", "not_drawn"}, "a seat is taken only at its own venue"
    assert all(x.status == "sealed" for x in s.state().seats)
    results = {name: s.sign_in(name) for name in EXPERTS}
    seated_names = [n for n, r in results.items() if r.status_code == 200]
    refused = {n: r.json()["code"] for n, r in results.items() if r.status_code != 200}
    assert len(seated_names) == 5 and set(refused.values()) == {"not_drawn"}
    assert [EXPERTS[n] for n in s.members()].count(MAIN) == 3
    # another's signature, or a seat at the wrong venue, is refused
    spare_main = next(n for n in refused if EXPERTS[n] == MAIN)
    assert s.sign_in(spare_main).json()["code"] == "not_drawn"
    first = s.members()[0]
    assert s.sign_in(first).json()["code"] == "already_seated"
    fields = {"room": s.room, "venue": MAIN}
    forged = {"venue": MAIN, **s.person("海洁").signed("evaluation.sign_in", fields)}
    assert s.post("sign-in", first, forged).json()["code"] == "signer_mismatch"


def test_a_whole_evaluation_from_the_draw_to_the_report_signed_by_every_member(
    client: TestClient, world: World, clock: Clock, tmp_path: Path
) -> None:
    o, s = seated(client, world, clock)
    ok(s.command("evaluation.open_declarations", "王敏"))
    members = s.members()
    conflicted = next(n for n in members if EXPERTS[n] == MAIN)
    bidder = o.person("海洁").subject
    ok(s.command("evaluation.declare", conflicted, declaration="conflict", bidders=[bidder],
                 reason="曾在该公司任职"))  # fmt: skip
    seat = next(x.seat for x in s.state().seats if x.status == "vacated")
    assert s.post("replace", members[-1], {"seat": seat}).json()["code"] == "not_allowed"
    replaced = s.post("replace", "王敏", {"seat": seat})
    assert replaced.status_code == 200, replaced.json()
    spare = next(n for n in EXPERTS if EXPERTS[n] == MAIN and n not in members)
    assert s.sign_in(spare).status_code == 200, "the replacement signs in at the seat"
    assert s.sign_in(conflicted).json()["code"] == "not_drawn", "who left does not come back"
    members = s.members()
    assert conflicted not in members and spare in members
    undeclared = {x.expert for x in s.state().seats if x.declaration is None}
    for name in members:
        if s.person(name).subject in undeclared:
            ok(s.command("evaluation.declare", name, declaration="none"))
    leader = members[0]
    for name in members:
        ok(s.command("evaluation.vote", name, candidate=s.person(leader).subject, round=1))
    assert s.state().leader == s.person(leader).subject

    checked = s.post("precheck", "王敏")
    assert checked.status_code == 200, checked.json()
    assert s.state().precheck is not None
    ok(s.command("evaluation.start_preliminary", leader))
    label = s.shown(o.person("海洁").subject)
    assert label in ("A", "B", "C"), "the technical part is anonymous"
    url = f"/api/evaluations/{s.room}/bids"
    seen = client.get(f"{url}/{label}", headers=s.person(leader).headers()).json()
    assert seen["anonymous"] is True and "form" not in seen, "no name, price or guarantee"
    watched = client.get(f"{url}/{label}", headers=s.person("赵磊").headers()).json()
    assert watched["form"]["price"] == PRICES["海洁"]
    assert client.get(f"{url}/{label}", headers=o.person("海洁").headers()).status_code == 403
    assert client.get(f"{url}/Z", headers=s.person(leader).headers()).json()["code"] == "no_bid"
    bidders = [b.bidder for b in s.state().spec.bids]
    for name in members:
        verdicts = [
            {"bidder": b, "criterion": c["id"], "passed": True, "reason": ""}
            for b in bidders
            for c in CRITERIA
        ]
        ok(s.command("evaluation.submit_review", name, verdicts=verdicts))
    assert s.state().phase == "scoring"

    # a clarification: drafted, approved, answered signed before its deadline
    lvhai = o.person("蓝天").subject
    deadline = (clock.at + timedelta(minutes=30)).isoformat()
    ok(s.command("evaluation.draft_question", leader, bidder=s.shown(lvhai),
                 text="请说明人员配备。", deadline=deadline))  # fmt: skip
    ok(s.command("evaluation.approve_question", "赵磊", question="Q1"))
    text = "项目经理持证上岗，驻场 6 人。"
    fields = {"room": s.room, "question": "Q1", "text": text}
    body = {"question": "Q1", "text": text}
    forged = {**body, **o.person("海洁").signed("evaluation.answer_question", fields)}
    assert s.post("answer", "蓝天", forged).json()["code"] == "signer_mismatch"
    signed = {**body, **o.person("蓝天").signed("evaluation.answer_question", fields)}
    assert s.post("answer", "蓝天", signed).status_code == 200
    ok(s.command("evaluation.close_clarification", leader))
    assert s.state().phase == "scoring"

    # the scores: one member far from the others on one bid
    outlier = members[-1]
    for name in members:
        for b in bidders:
            plan = "5" if (name == outlier and b == bidders[0]) else "16"
            scores = {"方案": "32", "人员": plan, "业绩": "8"}
            ok(s.command("evaluation.submit_sheet", name, bid=s.shown(b), scores=scores))
    assert s.state().phase == "deviations"
    [flag] = s.state().open_flags()
    assert flag["kind"] == "abnormal"
    assert s.command("evaluation.summarise", leader)["code"] == "flags_open"
    reason = "该投标人人员方案缺少驻场安排"
    ok(s.command("evaluation.explain", outlier, flag=flag["key"], reason=reason))
    ok(s.command("evaluation.summarise", leader))
    summary = client.get(f"/api/evaluations/{s.room}/summary", headers=s.person("赵磊").headers())
    assert summary.status_code == 200
    (tmp_path / "summary.json").write_text(json.dumps(summary.json(), ensure_ascii=False))
    recomputed = subprocess.run(
        [sys.executable, "-m", "bidroom", "evaluation", "recompute", str(tmp_path / "summary.json"),
         "--check", str(tmp_path / "summary.json")],
        capture_output=True, check=False,
    )  # fmt: skip
    assert recomputed.returncode == 0, recomputed.stderr.decode()
    # the record names the committee: a recomputation catches a member who never scored
    roster = summary.json()["record"]["committee"]
    assert sorted(roster) == sorted(s.person(name).subject for name in members)
    [top] = [r for r in summary.json()["computation"]["ranking"] if r["rank"] == 1]
    # 海洁's lowest price is worth 0.57 more points than 蓝天's, but the explained outlier costs
    # 海洁 2.2 points of 人员 (a reason keeps a score; it does not drop it)
    assert top["bidder"] == o.person("蓝天").subject
    ok(s.command("evaluation.dissent", members[1], reason="对第一名的人员评分有保留意见"))

    assert s.post("report", members[1]).json()["code"] == "not_leader"
    issued = s.post("report", leader)
    assert issued.status_code == 200, issued.json()
    der = base64.b64encode(s.person("赵磊").der()).decode()
    assert s.post("report/prepare", "赵磊", {"certificate": der}).json()["code"] == "not_allowed"
    mine = base64.b64encode(s.person(members[1]).der()).decode()
    assert s.post("report/prepare", leader, {"certificate": mine}).json()["code"] == (
        "signer_mismatch"
    )
    for name in members:
        signed_ = s.sign_report(name)
        assert signed_.status_code == 200, signed_.json()
    state = s.state()
    assert state.phase == "signed" and state.report.closed["deemed"] == []

    pdf = client.get(f"/api/evaluations/{s.room}/report.pdf", headers=s.person("赵磊").headers())
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf.content)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True)
    shown = "".join(text.stdout.decode().split())  # table cells wrap lines
    assert reason in shown, "the outlier's written reason is in the signed report"
    assert "对第一名的人员评分有保留意见" in shown, "and the dissent"
    signers = shown.split("附可信时间戳）：")[1]
    assert conflicted not in signers and all(name in signers for name in members)
    assert f"{conflicted}" in shown and "回避" in shown, "who left is named, as having left"
    words = " ".join(text.stdout.decode().split())  # a table cell by cell, row after row
    for name in members:  # each member's own sheet, which their signature binds
        for b in bidders:
            plan = "5" if (name == outlier and b == bidders[0]) else "16"
            row = (name, s.state().spec.bid(b).name, "32", plan, "8", str(40 + int(plan)))
            assert " ".join(row) in words, row
    trust = evaluations.report_trust(client.app.state)  # type: ignore[attr-defined]
    portal = client.portal  # type: ignore[attr-defined]
    found = portal.call(pades.verify_signatures, pdf.content, trust, 5)
    assert all(f.timestamp_ok for f in found)
    assert sorted(next(n for n in members if n in f.signer) for f in found) == sorted(members)
    assert pdfsig(pdf.content, tmp_path).count("Signature is Valid") == 5


def test_the_clock_seals_a_session_suspended_past_four_hours_and_a_new_one_may_open(
    client: TestClient, world: World, clock: Clock
) -> None:
    o, s = seated(client, world, clock)
    clock.at += timedelta(minutes=10)  # the session is under way: a fault now is "during"
    ok(s.command("evaluation.suspend", "王敏", reason="主会场网络中断"))
    url = f"/api/lots/{o.lot['id']}/evaluations"
    chair = o.person("王敏").headers()
    assert client.post(url, json={}, headers=chair).json()["code"] == "session_open"
    state = client.app.state  # type: ignore[attr-defined]
    portal = client.portal  # type: ignore[attr-defined]
    clock.at += timedelta(hours=4)
    portal.call(evaluations.tick, state, clock.at)
    assert s.state().phase == "suspended", "exactly at the limit is within it"
    clock.at += timedelta(seconds=1)
    portal.call(evaluations.tick, state, clock.at)
    portal.call(evaluations.tick, state, clock.at)  # each step once, whichever node ticks
    assert s.state().phase == "sealed"
    assert s.state().sealed["reason"]
    listed = client.get(url, headers=chair).json()["sessions"]
    assert [x["phase"] for x in listed] == ["sealed"]
    again = client.post(url, json={}, headers=chair)
    assert again.status_code == 201 and again.json()["room"].endswith("-evaluation-2")
    new = Session(client, world, again.json()["room"])
    assert new.state().phase == "forming" and new.state().seats == ()


def priced(
    lot: str, price: str, unit_prices: list[str], payer: str, extra: str | None = None
) -> bytes:
    """A bid whose archive holds a priced bill (price-list.json) beside its form; ``extra``
    puts a field the bill's format does not have on each line."""
    lines = [
        {
            "code": f"0{n + 1}",
            "quantity": "10",
            "unit_price": u,
            "line_total": f"{Decimal(u) * 10:.2f}",
        }
        | ({"name": extra} if extra else {})
        for n, u in enumerate(unit_prices)
    ]
    stated = f"{sum(Decimal(x['line_total']) for x in lines):.2f}"
    guarantee = {"kind": "bank", "issuer": "中国银行舟山分行", "number": f"BG-{price}",
                 "amount": "50000.00", "payer": payer}  # fmt: skip
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        form = bid_form(lot, price, guarantee=guarantee)
        archive.writestr("bid.json", json.dumps(form, ensure_ascii=False))
        archive.writestr("price-list.json", json.dumps({"lines": lines, "stated_total": stated}))
        archive.writestr("technical/施工组织设计.pdf", b"%PDF-1.4 ...")
    return out.getvalue()


def test_the_pre_check_reads_the_decrypted_bids_and_shows_collusion_signs_as_evidence(
    client: TestClient, world: World, clock: Clock
) -> None:
    same = ["1000.00", "2000.00", "3000.00", "4000.00", "5000.00", "6000.00"]
    plain: Plain = {
        "海洁": lambda lot: priced(lot, PRICES["海洁"], same, "舟山海通担保有限公司"),
        "蓝天": lambda lot: priced(lot, PRICES["蓝天"], same, "舟山海通担保有限公司"),
        "绿源": lambda lot: priced(lot, PRICES["绿源"], same[:2], "绿源自有", extra="名称"),
    }
    o, s = seated(client, world, clock, plain)
    members = s.elect_the_first()
    assert s.post("precheck", members[0]).json()["code"] == "not_allowed"
    assert s.post("precheck", "王敏").status_code == 200
    findings = s.state().precheck["findings"]
    kinds = {f["kind"] for f in findings}
    assert {"same_guarantee_payer", "identical_unit_prices"} <= kinds, kinds
    pair = {o.person("海洁").subject, o.person("蓝天").subject}
    assert all(set(f["bids"]) == pair for f in findings if f["kind"] == "same_guarantee_payer")
    [unreadable] = [f for f in findings if f["kind"] == "price_list_unreadable"]
    assert unreadable["bids"] == [o.person("绿源").subject], "one bidder's file stops nothing"
    assert s.state().phase == "prechecked", "evidence for people, never a rejection"
    assert s.post("precheck", "王敏").json()["code"] == "leader_needed"
    # A member opens one bid's documents: by label, the technical list only (暗标).
    shown = s.shown(o.person("海洁").subject)
    view = client.get(
        f"/api/evaluations/{s.room}/bids/{shown}", headers=s.person(members[0]).headers()
    )
    assert view.status_code == 200 and view.json()["anonymous"] is True, view.json()
    # Every plaintext read is on the record: the sheet's, the pre-check's and the member's.
    reads = client.get(f"/api/lots/{o.lot['id']}/reads", headers=o.person("王敏").headers())
    assert reads.status_code == 200, reads.json()
    seen = [(r["reader"], r["part"], r["room"]) for r in reads.json()["reads"]]
    chair, member = o.person("王敏").subject, s.person(members[0]).subject
    assert seen == [(chair, "sheet", o.room)] * 3 + [(chair, "precheck", s.room)] * 3 + [
        (member, "technical", s.room)
    ], seen
    envelopes = {r["envelope"] for r in reads.json()["reads"]}
    assert envelopes == {b.envelope for b in o.state().bids.values()}
    refused = client.get(f"/api/lots/{o.lot['id']}/reads", headers=o.person("海洁").headers())
    assert (refused.status_code, refused.json()["code"]) == (403, "not_allowed")


def test_when_no_bid_passes_the_failed_tenders_report_is_issued_and_signed(
    client: TestClient, world: World, clock: Clock
) -> None:
    _, s = seated(client, world, clock)
    members = s.elect_the_first()
    assert s.post("precheck", "王敏").status_code == 200
    ok(s.command("evaluation.start_preliminary", members[0]))
    for name in members:
        verdicts = [
            {"bidder": b.bidder, "criterion": c["id"], "passed": c["id"] != "资格", "reason": ""}
            | ({"reason": "资格证书过期"} if c["id"] == "资格" else {})
            for b in s.state().spec.bids
            for c in CRITERIA
        ]
        ok(s.command("evaluation.submit_review", name, verdicts=verdicts))
    assert s.state().phase == "summary"
    summary = client.get(f"/api/evaluations/{s.room}/summary", headers=s.person("赵磊").headers())
    assert summary.json()["reason"] == "no_bid_passed"
    issued = s.post("report", members[0])
    assert issued.status_code == 200, issued.json()
    assert s.sign_report(members[1]).status_code == 200


@contextlib.contextmanager
def worker_stopped(client: TestClient) -> Iterator[None]:
    """The app's worker process for documents frozen (SIGSTOP) until the block ends."""
    pid = client.app.state.document_worker.submit(os.getpid).result()  # type: ignore[attr-defined]
    assert pid != os.getpid()
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_the_report_is_rendered_and_signed_in_the_worker_process_while_rooms_are_served(
    client: TestClient, world: World, clock: Clock
) -> None:
    """Issuing the report (rendering) and a member's signature (preparing, finishing, checking
    every signature) wait for the worker process, and the node answers meanwhile: with the
    worker stopped they do not complete, /readyz does; once it goes on, they do."""
    _, s = seated(client, world, clock)
    members = s.elect_the_first()
    assert s.post("precheck", "王敏").status_code == 200
    ok(s.command("evaluation.start_preliminary", members[0]))
    for name in members:
        verdicts = [
            {"bidder": b.bidder, "criterion": c["id"], "passed": False, "reason": "资格证书过期"}
            for b in s.state().spec.bids
            for c in CRITERIA
        ]
        ok(s.command("evaluation.submit_review", name, verdicts=verdicts))
    with ThreadPoolExecutor(1) as caller:
        for step in (lambda: s.post("report", members[0]), lambda: s.sign_report(members[1])):
            with worker_stopped(client):
                pending = caller.submit(step)
                assert client.get("/readyz").status_code == 200  # the loop serves meanwhile
                assert not futures_wait([pending], timeout=0.5).done, "done without the worker"
            assert pending.result(timeout=60).status_code == 200
    assert len(s.state().report.signatures) == 1


def frame_of(socket: Any, kind: str, subject: str | None = None, **fields: Any) -> dict[str, Any]:
    """The next frame of ``kind`` (with ``fields``, about ``subject``) on a test socket."""
    while True:
        frame: dict[str, Any] = socket.receive_json()
        if frame["type"] != kind or any(frame.get(k) != v for k, v in fields.items()):
            continue
        if subject is None or frame.get("peer", {}).get("subject") == subject:
            return frame


def test_an_expert_seated_joins_the_media_and_one_who_leaves_the_committee_is_hung_up_on(
    client: TestClient, world: World, clock: Clock
) -> None:
    o, s = opened_session(client, world, clock)
    assert s.post("draw", "王敏").status_code == 200
    chair = s.person("王敏")
    hello = {"type": "hello", "room": s.room}
    with client.websocket_connect("/ws") as chair_socket:
        chair_socket.send_json({**hello, "token": chair.token()})
        assert frame_of(chair_socket, "media")["present"] == []
        for name in EXPERTS:  # the first drawn expert (the draw is sealed)
            expert = s.person(name)
            with client.websocket_connect("/ws") as socket:
                socket.send_json({**hello, "token": expert.token()})
                # Not seated: they reach nobody, and nobody is told they came.
                assert frame_of(socket, "media")["present"] == []
                if s.sign_in(name).status_code != 200:
                    continue
                # Seated: a fresh media frame (they offer to everyone there), and the chair
                # hears they joined.
                media = frame_of(socket, "media")
                assert [p["subject"] for p in media["present"]] == [chair.subject]
                frame_of(chair_socket, "peer", expert.subject, event="joined")
                for other in EXPERTS:
                    s.sign_in(other)  # the rest of the committee, so declarations may open

                # Leaving the committee (a conflict): both sides are told to hang up.
                ok(s.command("evaluation.open_declarations", "王敏"))
                bidder = o.person("海洁").subject
                ok(s.command("evaluation.declare", name, declaration="conflict",
                             bidders=[bidder], reason="曾在该公司任职"))  # fmt: skip
                frame_of(chair_socket, "peer", expert.subject, event="left")
                frame_of(socket, "peer", chair.subject, event="left")
                return
    raise AssertionError("no expert was drawn")


class Socket:
    """A WebSocket in the room (a page's connection): commands, each answered by its ack or
    error frame. Command ids are unique across sockets (a retry's id gets the first answer)."""

    ids = itertools.count(1)

    def __init__(self, socket: Any):
        self.socket = socket

    def command(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        ident = f"c{next(self.ids)}"
        self.socket.send_json({"type": "command", "id": ident, "name": name, "args": args})
        while True:
            frame: dict[str, Any] = self.socket.receive_json()
            if frame["type"] in ("ack", "error") and frame.get("id") == ident:
                return frame


@contextlib.contextmanager
def socket_of(s: Session, token: str) -> Iterator[Socket]:
    with s.client.websocket_connect("/ws") as socket:
        socket.send_json({"type": "hello", "token": token, "room": s.room})
        yield Socket(socket)


def minted(subject: str, name: str, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> str:
    """A session token for ``subject`` as the operator mints one: `bidroom token` with the
    platform's secret, no certificate involved."""
    monkeypatch.setenv("BIDROOM_SECRET_KEY", KEY)
    capsys.readouterr()
    argv = ["token", subject, "--role", "expert", "--name", name, "--ttl", str(60 * 86400)]
    assert cli.main(argv) == 0
    token: str = capsys.readouterr().out.strip()
    return token


def events_of(s: Session) -> list[Any]:
    hub = s.client.app.state.hub  # type: ignore[attr-defined]
    found: list[Any] = s.client.portal.call(hub.store.events, s.room)  # type: ignore[union-attr]
    return found


def checked_offline(s: Session, event: Any) -> bytes:
    """An act's event checked as an outside auditor would, from the event alone: the action and
    fields it keeps with the room are the message; the signature verifies under the certificate
    kept. The certificate's DER."""
    fields = {k: v for k, v in event.data["signed"].items() if k != "action"}
    message = signed.action_message(event.data["signed"]["action"], {**fields, "room": s.room})
    der = base64.b64decode(event.data["certificate"])
    key = p.accept_public_key(x509.load_der_x509_certificate(der).public_key())
    p.verify_signature(key, base64.b64decode(event.data["signature"]), message)
    return der


P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def spellings_of(signature: str) -> list[str]:
    """A raw ECDSA P-256 signature (r || s, base64) as recorded, as (r, n - s), and with the
    spare low bit of its last base64 character flipped: three spellings, each valid."""
    raw = base64.b64decode(signature, validate=True)
    r, s_ = raw[:32], int.from_bytes(raw[32:], "big")
    mirrored = base64.b64encode(r + (P256_ORDER - s_).to_bytes(32, "big")).decode()
    body = signature.rstrip("=")
    last = B64[B64.index(body[-1]) ^ 1]
    repadded = body[:-1] + last + "=" * (len(signature) - len(body))
    assert base64.b64decode(repadded, validate=True) == raw and repadded != signature
    return [signature, mirrored, repadded]


def test_an_operators_token_makes_no_experts_act_and_the_experts_own_signature_does(
    client: TestClient,
    world: World,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 15: with a token minted from BIDROOM_SECRET_KEY a seated expert's declaration and
    score sheet were recorded under their name. Over the real WebSocket: unsigned, signed by
    another holder, or signed by another key under the expert's certificate, each is refused and
    nothing is recorded, whether sent with the operator's token (bound to no certificate) or in
    the expert's own session taken over; the expert's own signature is taken, and kept with the
    event, and never again however it is re-spelled."""
    _, s = seated(client, world, clock)
    seatings = [e for e in events_of(s) if e.name == "evaluation.expert_seated"]
    assert len(seatings) == 5, "each sign-in keeps its signature, checked offline here"
    for seating in seatings:
        assert checked_offline(s, seating) == s.person(s.name_of(seating.data["expert"])).der()
    ok(s.command("evaluation.open_declarations", "王敏"))
    target, other = s.members()[:2]
    expert = s.person(target)
    token = minted(expert.subject, target, monkeypatch, capsys)
    declare = {"declaration": "none", "bidders": [], "reason": ""}
    fields = {"room": s.room, **declare}
    by_other = s.person(other).signed("evaluation.declare", fields)
    wrong_key = {**expert.signed("evaluation.declare", fields), "signature": by_other["signature"]}
    revoked = s.person("吊销").signed("evaluation.declare", fields)  # its certificate is revoked
    recorded = len(events_of(s))
    with socket_of(s, token) as operator:
        refusals = [
            operator.command("evaluation.declare", {**declare, **extra})
            for extra in ({}, by_other, wrong_key, revoked)
        ]
    # the operator's token is bound to no certificate: no signed act passes with it at all
    assert [(r["type"], r["code"]) for r in refusals] == [
        ("error", "signature_required"),
        ("error", "session_unbound"),
        ("error", "session_unbound"),
        ("error", "session_unbound"),
    ], refusals
    with socket_of(s, expert.token()) as stolen:  # the expert's own session, taken over
        refusals = [
            stolen.command("evaluation.declare", {**declare, **extra})
            for extra in ({}, by_other, wrong_key, revoked)
        ]
    assert [(r["type"], r["code"]) for r in refusals] == [
        ("error", "signature_required"),
        ("error", "signer_mismatch"),
        ("error", "signature_invalid"),
        ("error", "cert_revoked"),
    ], refusals
    declared = [e for e in events_of(s)[recorded:] if e.name == "evaluation.declared"]
    assert declared == [] and all(x.declaration is None for x in s.state().seats)

    with socket_of(s, expert.token()) as own:
        args = signed_command(expert, ROOM_TYPE, s.room, "evaluation.declare", declare)
        answer = own.command("evaluation.declare", args)
        assert answer["type"] == "ack", answer
    [event] = [e for e in events_of(s) if e.name == "evaluation.declared"]
    assert checked_offline(s, event) == expert.der()
    assert event.data["signed"] == {"action": "evaluation.declare", **declare}
    # The event's signature replayed in the expert's session: as recorded, as (r, n - s), which
    # verifies too, and with the spare bits of its last base64 character set (the same bytes):
    # each is the recorded signature (the review's finding: the last two were taken).
    again = {k: event.data[k] for k in ("signature", "certificate")}
    with socket_of(s, expert.token()) as stolen:
        replays = [
            stolen.command("evaluation.declare", {**declare, **again, "signature": spelling})
            for spelling in spellings_of(str(again["signature"]))
        ]
    assert [r["code"] for r in replays] == ["signature_reused"] * 3, replays
    assert len([e for e in events_of(s) if e.name == "evaluation.declared"]) == 1

    for name in s.members()[1:]:
        ok(s.command("evaluation.declare", name, declaration="none"))
    for name in s.members():
        ok(s.command("evaluation.vote", name, candidate=expert.subject, round=1))
    assert s.post("precheck", "王敏").status_code == 200
    ok(s.command("evaluation.start_preliminary", target))
    bidders = [b.bidder for b in s.state().spec.bids]
    verdicts = [
        {"bidder": b, "criterion": c["id"], "passed": True, "reason": ""}
        for b in bidders
        for c in CRITERIA
    ]
    for name in s.members():
        ok(s.command("evaluation.submit_review", name, verdicts=verdicts))
    assert s.state().phase == "scoring"
    sheet = {"bid": s.shown(bidders[0]), "scores": {"方案": "32", "人员": "16", "业绩": "8"}}
    sheet_fields = {"room": s.room, **sheet, "total": None}
    forged = s.person(other).signed("evaluation.submit_sheet", sheet_fields)
    with socket_of(s, token) as operator:
        refusals = [
            operator.command("evaluation.submit_sheet", {**sheet, **extra})
            for extra in ({}, forged)
        ]
    assert [r["code"] for r in refusals] == ["signature_required", "session_unbound"]
    assert s.state().sheets == {}, "nothing recorded"
    with socket_of(s, expert.token()) as own:
        args = signed_command(expert, ROOM_TYPE, s.room, "evaluation.submit_sheet", sheet)
        assert own.command("evaluation.submit_sheet", args)["type"] == "ack"
    [scored] = [e for e in events_of(s) if e.name == "evaluation.sheet_submitted"]
    assert checked_offline(s, scored) == expert.der()
    assert scored.data["scores"] == sheet["scores"] == scored.data["signed"]["scores"]
    assert list(s.state().sheets) == [(expert.subject, bidders[0])]
