"""The opening's shell, in process: a whole opening over HTTP on a pinned clock, and every
refusal the shell makes before the core sees a step (a wrong data key, another signer, a share
that is not the committed one, a sheet before all are settled, a record that changed)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from envelopes import forge
from opened import GRACE, PRICES, Opening, at_the_window, bids_in, ok
from starlette.testclient import TestClient
from tendering import (
    DEADLINE,
    T0,
    Clock,
    World,
    bid_archive,
    publish,
    running_app,
    seal,
    share_body,
    upload,
)

from bidroom import opening, receipts
from bidroom.room import Actor, Command
from ca import envelope, handoff, shares
from ca import primitives as p


@pytest.fixture
def client(tmp_path: Path, world: World, database_url: str, clock: Clock) -> Iterator[TestClient]:
    # The background clock is slowed right down: the test ticks it itself, at chosen times.
    yield from running_app(world, database_url, tmp_path, clock, clock_seconds=3600)


def test_a_whole_opening_one_bid_opened_by_the_custodians_quorum(
    client: TestClient, world: World, clock: Clock
) -> None:
    o = at_the_window(client, world, clock)
    assert o.hand_over("海洁").status_code == 200
    assert o.hand_over("蓝天").status_code == 200
    ok(o.command("opening.report_failure", "绿源", cause="network_fault", **own_word(o, "绿源")))
    o.tick()  # no bid is still sealed: the clock closes the window at once
    assert o.state().phase == "settling"

    ok(
        o.command(
            "opening.request_quorum", "王敏", bidders=[o.person("绿源").subject], reason="网络故障"
        )
    )
    first = o.submit_share("代理机构")
    assert first.status_code == 200 and first.json()["opened"] == []
    second = o.submit_share("公证处")
    assert second.status_code == 200, second.json()
    assert second.json()["opened"] == [o.person("绿源").subject]
    assert o.state().bids[o.person("绿源").subject].status == "quorum_opened"

    sheet = o.post("sheet", "王敏", {})
    assert sheet.status_code == 200, sheet.json()
    rows = {r["name"]: r for r in o.state().sheet["rows"]}
    assert {n: rows[n]["fields"]["price"] for n in PRICES} == PRICES
    assert rows["绿源"]["over_ceiling"] is True and rows["海洁"]["over_ceiling"] is False
    assert {r["guarantee_check"] for r in rows.values()} == {"ok"}
    assert rows["绿源"]["status"] == "quorum_opened"

    ok(o.command("opening.object", "蓝天", text="绿源报价超过最高投标限价，请记录。"))
    [objection] = o.state().objections
    ok(
        o.command(
            "opening.answer", "王敏", objection=objection.seq, text="已记录，由评标委员会评审。"
        )
    )
    ok(o.command("opening.generate_record", "王敏"))
    assert o.confirm("海洁", "confirm").status_code == 200
    assert o.confirm("蓝天", "dissent", "对唱标无异议，但保留对绿源报价的意见。").status_code == 200
    o.tick()
    assert o.state().phase == "record", "绿源 may still confirm"
    clock.at += timedelta(minutes=31)
    o.tick()  # 绿源 stayed silent: by the lot's rule, silence is consent
    assert o.state().record.deemed == {o.person("绿源").subject: "confirmed"}

    chair = o.person("王敏")
    digest = o.state().record.digest
    fields = {"room": o.room, "digest": digest}
    signed = o.post(
        "countersign", "王敏", {"digest": digest, **chair.signed("opening.countersign", fields)}
    )
    assert signed.status_code == 200, signed.json()
    assert o.client.get(f"/api/openings/{o.room}/record").json()["code"] == "record_not_published"
    published = o.post("publish", "王敏", {})
    assert published.status_code == 200, published.json()

    record = o.client.get(f"/api/openings/{o.room}/record").json()
    assert record["digest"] == digest
    assert record["confirmations"][o.person("蓝天").subject]["opinion"] == "dissent"
    proofs = record["published"]["proofs"]
    assert [x["name"] for x in proofs][:2] == [
        "opening.sheet_published",
        "opening.record_generated",
    ]
    verifier = o.client.app.state.audit.verifier  # type: ignore[attr-defined]
    # the record carries what its receipts are checked against: the log's key, the TSA's roots
    assert record["audit"]["verifier_key"] == str(verifier)
    roots = [x509.load_pem_x509_certificate(pem.encode()) for pem in record["audit"]["tsa_roots"]]
    assert roots == o.client.app.state.timestamper.trust  # type: ignore[attr-defined]
    for proof in proofs:
        proven = receipts.check(proof["receipt"], str(verifier), roots)
        assert proven.time is not None
        assert proven.entry.room == o.room and proven.entry.seq == proof["seq"]
        assert proven.entry.salt is not None, "the record's steps are public, salts and all"


def test_the_shell_refuses_a_wrong_key_another_signer_and_a_step_out_of_turn(
    client: TestClient, world: World, clock: Clock
) -> None:
    o = bids_in(client, world, clock)
    early = o.hand_over("海洁")
    assert (early.status_code, early.json()["code"]) == (404, "no_bid"), "bids not fixed yet"
    for name in PRICES:
        ok(o.command("opening.sign_in", name))
    clock.at = DEADLINE + GRACE
    o.tick()
    before = o.hand_over("海洁")
    assert (before.status_code, before.json()["code"]) == (409, "wrong_phase")
    ok(o.command("opening.start_window", "王敏"))

    wrong = o.hand_over("海洁", data_key=bytes(32))
    assert (wrong.status_code, wrong.json()["code"]) == (422, "bad_data_key")
    other = o.hand_over("海洁", signer="蓝天")
    assert (other.status_code, other.json()["code"]) == (403, "signer_mismatch")
    handed = o.hand_over("海洁")
    assert handed.status_code == 200, handed.json()
    retried = o.post("decrypt", "海洁", o.last_body)
    assert retried.json() == handed.json(), "a retry of the same request is applied once"
    again = o.hand_over("海洁")
    assert (again.status_code, again.json()["code"]) == (409, "already_settled")
    assert o.state().bids[o.person("海洁").subject].status == "decrypted"

    sheet = o.post("sheet", "王敏", {})
    assert (sheet.status_code, sheet.json()["code"]) == (409, "wrong_phase")
    clock.at += timedelta(minutes=31)
    o.tick()
    assert o.state().phase == "settling"
    late = o.hand_over("蓝天")
    assert (late.status_code, late.json()["code"]) == (409, "wrong_phase")
    sheet = o.post("sheet", "王敏", {})
    assert (sheet.status_code, sheet.json()["code"]) == (409, "not_all_settled")
    by_bidder = o.post("sheet", "海洁", {})
    assert (by_bidder.status_code, by_bidder.json()["code"]) == (403, "not_allowed")

    ok(o.command("opening.request_quorum", "王敏", bidders=[o.person("蓝天").subject], reason="x"))
    bad = o.submit_share("代理机构", mnemonic="academic acid acrobat romp " * 5)
    assert (bad.status_code, bad.json()["code"]) == (422, "share_commitment_mismatch")
    not_theirs = o.post(
        "share",
        "海洁",
        {
            "index": 1,
            "commitment": "0" * 64,
            "sealed_share": "x" * 30,
            **o.person("海洁").signed("opening.share", {}),
        },
    )
    assert not_theirs.status_code == 403
    assert o.state().quorum.shares == {}, "nothing refused was recorded"


def test_the_clock_finishes_a_quorum_whose_node_stopped_after_the_kth_share(
    client: TestClient, world: World, clock: Clock
) -> None:
    o = at_the_window(client, world, clock)
    for name in ("海洁", "蓝天"):
        assert o.hand_over(name).status_code == 200
    clock.at += timedelta(minutes=31)
    o.tick()
    b3 = o.person("绿源").subject
    ok(o.command("opening.request_quorum", "王敏", bidders=[b3], reason="未解密"))
    assert o.submit_share("代理机构").json()["opened"] == []
    # The second share is recorded, but its node stops before it combines the key.
    custodian = o.person("公证处")
    got = client.get(f"/api/lots/{o.lot['id']}/share", headers=custodian.headers())
    share = shares.import_share(got.content, custodian.key)
    commitment = shares.commitment_digest(share).hex()
    point = client.get(f"/api/openings/{o.room}/key").json()["public_key"]
    sealed = share_body(custodian, o.room, point, share)["sealed_share"]
    args = {
        "custodian": custodian.subject,
        "index": share.index,
        "commitment": commitment,
        "sealed_share": sealed,
    }
    hub = client.app.state.hub  # type: ignore[attr-defined]
    actor = Actor(custodian.subject, custodian.name, "custodian")
    recorded = client.portal.call(  # type: ignore[union-attr]
        hub.execute, o.room, Command("opening.share_submitted", args), actor, None
    )
    assert recorded["ok"] and o.state().bids[b3].status == "failed"
    o.tick()
    assert o.state().bids[b3].status == "quorum_opened"


def unreadable_archives() -> dict[str, bytes]:
    """Bids no sheet can read: a second bid.json, and a bid.json whose deflate data is broken."""
    twice = io.BytesIO()
    with zipfile.ZipFile(twice, "w") as archive:
        archive.writestr("bid.json", json.dumps({"price": "1.00"}))
        with pytest.warns(UserWarning, match="Duplicate name"):
            archive.writestr("bid.json", json.dumps({"price": "2.00"}))
    broken = io.BytesIO()
    with zipfile.ZipFile(broken, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bid.json", json.dumps({"price": "3.00", "pad": "x" * 4000}))
    data = bytearray(broken.getvalue())
    data[60:80] = bytes(20)  # inside the compressed member
    return {"蓝天": twice.getvalue(), "绿源": bytes(data)}


def test_a_bid_whose_form_cannot_be_read_is_shown_so_and_never_stops_the_sheet(
    client: TestClient, world: World, clock: Clock
) -> None:
    o = at_the_window(client, world, clock, unreadable_archives())
    for name in PRICES:
        assert o.hand_over(name).status_code == 200
    o.tick()
    sheet = o.post("sheet", "王敏", {})
    assert sheet.status_code == 200, sheet.json()
    rows = {r["name"]: r for r in o.state().sheet["rows"]}
    assert rows["海洁"]["fields"]["price"] == PRICES["海洁"] and rows["海洁"]["form_error"] is None
    assert rows["蓝天"]["form_error"] == "form_duplicate" and rows["蓝天"]["fields"] == {}
    assert rows["绿源"]["form_error"] in ("form_not_zip", "form_unreadable")


def test_the_draw_is_revealed_from_its_sealed_copy_when_the_chairs_browser_lost_the_seed(
    client: TestClient, world: World, clock: Clock
) -> None:
    chair = world.people["王敏"]
    lot = publish(client, world, chair, method="benchmark", k_range=["0.00", "0.05", "0.01"])
    o = Opening(client, world, clock, lot)
    clock.at = T0 + timedelta(days=1)
    for name, price in PRICES.items():
        data = seal(world.people[name], lot, bid_archive(lot["id"], price))
        assert upload(client, lot, world.people[name], data)["status"] == "accepted"
        o.sealed[name] = data
    clock.at = DEADLINE + GRACE
    o.tick()
    seed = bytes(range(32))
    commitment = hashlib.sha256(seed).hexdigest()
    point = client.get(f"/api/openings/{o.room}/key").json()["public_key"]
    room_public = p.ec_from_point(base64.b64decode(point))
    sealed_seed = handoff.seal_key(room_public, o.room, commitment, seed)
    ok(o.command("opening.commit_draw", "王敏", commitment=commitment, sealed_seed=sealed_seed))
    too_soon = o.post("reveal", "王敏", {})
    assert (too_soon.status_code, too_soon.json()["code"]) == (409, "wrong_phase")
    ok(o.command("opening.start_window", "王敏"))
    for name in PRICES:
        assert o.hand_over(name).status_code == 200
    o.tick()
    assert o.post("sheet", "王敏", {}).status_code == 200
    by_bidder = o.post("reveal", "海洁", {})
    assert (by_bidder.status_code, by_bidder.json()["code"]) == (403, "not_allowed")
    revealed = o.post("reveal", "王敏", {})
    assert revealed.status_code == 200, revealed.json()
    draw = o.state()
    assert draw.seed == seed.hex() and draw.fixed is not None
    # no bidder contributed: K from the seed and the input fixed at the window's start
    assert draw.k == opening.draw_k_v2(
        seed.hex(), lot["id"], ["0.00", "0.05", "0.01"], draw.fixed["digest"], {}
    )


def test_the_clock_loads_only_openings_whose_deadline_has_come_within_its_horizon(
    client: TestClient, world: World, clock: Clock
) -> None:
    lot = publish(client, world, world.people["王敏"])
    o = Opening(client, world, clock, lot)
    hub = client.app.state.hub  # type: ignore[attr-defined]
    o.tick()
    assert lot["room"] not in hub.rooms, "before its deadline, an opening is not loaded"
    clock.at = DEADLINE + timedelta(days=15)
    o.tick()
    assert lot["room"] not in hub.rooms, "an opening past the horizon is left alone"
    clock.at = DEADLINE + GRACE
    o.tick()
    assert o.state().phase == "bids_fixed" and o.state().bids == {}


def large_archive(lot: str, price: str) -> bytes:
    """A real-size bid: the form and an incompressible annex, over 1 MiB (two chunks)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(
            "bid.json", zipfile.ZipFile(io.BytesIO(bid_archive(lot, price))).read("bid.json")
        )
        archive.writestr("技术标.pdf", os.urandom(envelope.CHUNK + 4096))
    return out.getvalue()


@pytest.mark.parametrize("size", ["one chunk", "over 1 MiB"])
def test_a_bid_only_its_bidder_can_open_is_their_fault_when_the_custodians_open_it(
    size: str, client: TestClient, world: World, clock: Clock, tmp_path: Path
) -> None:
    """绿源 seals a bid whose opening-key entry carries the right key id but wraps another data
    key: upload accepts it (it checks "addressed to", it cannot check "opens"), only 绿源 can open
    it. 绿源 then does not decrypt and reports a network fault (withdrawn, no fault of theirs, if
    it stood); the custodians open: the record names the bid as 绿源's fault, revoked at once,
    with the evidence, and the chair cannot turn it back into a withdrawal. The evidence's code
    is ``envelope_wrong_key`` for a real-size bid (several chunks) as for a one-chunk one: never
    a swapped preamble, which would read as the platform's tampering."""
    o = bids_in(client, world, clock)
    green = o.person("绿源")
    opening_key = p.load_public_der(base64.b64decode(o.lot["opening_key"]))
    assert isinstance(opening_key, p.EcPublicKey)
    if size == "one chunk":
        archive = bid_archive(o.lot["id"], PRICES["绿源"])
    else:
        archive = large_archive(o.lot["id"], PRICES["绿源"])
        assert len(archive) > envelope.CHUNK
    chunks = [archive[i : i + envelope.CHUNK] for i in range(0, len(archive), envelope.CHUNK)]
    sealer = envelope.Sealer(green.der(), green.key)
    only_mine = forge(
        sealer, opening_key, chunks, lot=o.lot["id"], opening_data_key=bytes(range(32))
    )
    assert upload(client, o.lot, green, only_mine)["status"] == "accepted"  # a new version
    envelope.open_to(io.BytesIO(only_mine), tmp_path / "mine.zip", green.key)
    assert (tmp_path / "mine.zip").read_bytes() == archive, "its bidder can open it"

    for name in PRICES:
        ok(o.command("opening.sign_in", name))
    clock.at = DEADLINE + GRACE
    o.tick()
    assert o.state().bids[green.subject].envelope == hashlib.sha256(only_mine).hexdigest()
    ok(o.command("opening.start_window", "王敏"))
    for name in ("海洁", "蓝天"):
        assert o.hand_over(name).status_code == 200
    ok(o.command("opening.report_failure", "绿源", cause="network_fault", **own_word(o, "绿源")))
    o.tick()
    assert o.state().phase == "settling"

    ok(o.command("opening.request_quorum", "王敏", bidders=[green.subject], reason="网络故障"))
    assert o.submit_share("代理机构").json()["opened"] == []
    second = o.submit_share("公证处")
    assert second.status_code == 200, second.json()
    assert second.json()["opened"] == [], "the custodians' key does not open this bid"

    state = o.state()
    bid = state.bids[green.subject]
    assert (bid.status, bid.cause, bid.reported_by) == (
        "revoked",
        "bidder_entry_mismatch",
        "custodians",
    )
    assert state.quorum is None, "the request is over: nothing is left waiting for shares"
    evidence = state.quorums[-1].refused[green.subject]
    assert evidence["entry"] == envelope.key_id(opening_key)
    assert evidence["envelope"] == hashlib.sha256(only_mine).hexdigest()
    assert evidence["code"] == "envelope_wrong_key"

    # the chair cannot correct it into a fault of nobody's (withdrawn) after the window
    corrected = o.command(
        "opening.report_failure", "王敏", bidder=green.subject, cause="network_fault"
    )
    assert not corrected["ok"] and o.state().bids[green.subject].status == "revoked"

    sheet = o.post("sheet", "王敏", {})
    assert sheet.status_code == 200, sheet.json()
    rows = {r["name"]: r for r in o.state().sheet["rows"]}
    assert rows["绿源"]["status"] == "revoked" and rows["绿源"]["fields"] == {}
    assert rows["海洁"]["fields"]["price"] == PRICES["海洁"]
    ok(o.command("opening.generate_record", "王敏"))
    document = o.state().record.document
    [named] = [b for b in document["bids"] if b["bidder"] == green.subject]
    assert (named["status"], named["cause"], named["reported_by"]) == (
        "revoked",
        "bidder_entry_mismatch",
        "custodians",
    )
    assert document["quorum"][-1]["refused"][green.subject]["entry"] == evidence["entry"]
    assert document["quorum"][-1]["refused"][green.subject]["code"] == "envelope_wrong_key"


def test_a_bid_whose_entry_opens_it_is_still_opened_by_the_custodians(
    client: TestClient, world: World, clock: Clock
) -> None:
    """The legitimate path beside it: a hand-sealed bid whose entries agree opens by quorum."""
    o = bids_in(client, world, clock)
    green = o.person("绿源")
    opening_key = p.load_public_der(base64.b64decode(o.lot["opening_key"]))
    assert isinstance(opening_key, p.EcPublicKey)
    archive = bid_archive(o.lot["id"], PRICES["绿源"])
    good = forge(envelope.Sealer(green.der(), green.key), opening_key, [archive], lot=o.lot["id"])
    assert upload(client, o.lot, green, good)["status"] == "accepted"
    for name in PRICES:
        ok(o.command("opening.sign_in", name))
    clock.at = DEADLINE + GRACE
    o.tick()
    ok(o.command("opening.start_window", "王敏"))
    for name in ("海洁", "蓝天"):
        assert o.hand_over(name).status_code == 200
    clock.at += timedelta(minutes=31)
    o.tick()
    ok(o.command("opening.request_quorum", "王敏", bidders=[green.subject], reason="未解密"))
    o.submit_share("代理机构")
    assert o.submit_share("公证处").json()["opened"] == [green.subject]
    assert o.state().bids[green.subject].status == "quorum_opened"


def own_word(o: Opening, who: str) -> dict[str, object]:
    """The signature a bidder's page adds to their own failure report (opening.SIGNED)."""
    fields = {"room": o.room, "cause": "network_fault"}
    return o.person(who).signed("opening.report_failure", fields)
