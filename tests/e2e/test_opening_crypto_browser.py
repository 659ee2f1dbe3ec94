"""The opening's browser crypto (web/js/handoff.js, shares.js, actions.js, opening.js) against
the Python reference, in Debian's chromium.

Each side does its half with real keys: Python seals an envelope (ca.envelope.seal) and the page
unwraps the same data key as ca.envelope.unwrap; the page seals the data key to the room's key
and ca.hpke.open_ opens it; the page signs an action and ca.primitives.verify_signature checks it
over the bytes Python builds; Python exports a key share (ca.shares) and the page opens it, with
the same commitment; the page recomputes K as bidroom.opening.draw_k. The modules are served as
plain files from web/ (no node needed: they only call WebCrypto). Missing chromium fails.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from browser import checked, chromium_page, require_chromium, web_origin
from certs import certificate
from cryptography.hazmat.primitives import serialization
from playwright.sync_api import Page

from bidroom import opening
from bidroom.opening import draw_k
from bidroom.room import SYSTEM, Actor, Command, Event
from ca import envelope, handoff, hpke, shares
from ca import primitives as p

TIMEOUT_MS = 30_000
LOT = "浙舟-ZS-2026-0417/1"
ROOM = "opening-lot-7"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


class Holder:
    """A certificate key as both sides need it: Python's key and what the page imports."""

    def __init__(self, key: p.PrivateKey, name: str):
        self.key = key
        self.cert = certificate(key, name)

    @property
    def kind(self) -> str:
        return "P-256" if isinstance(self.key, p.EcPrivateKey) else "RSA"

    def page(self) -> dict[str, str]:
        der = self.key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return {"pkcs8": b64(der), "cert": b64(self.cert), "kind": self.kind}


@pytest.fixture(scope="module")
def holders() -> dict[str, Holder]:
    return {
        "ec": Holder(p.generate_ec_key(), "六横海洁环境服务有限公司"),
        "rsa": Holder(p.generate_rsa_key(), "东港城市服务集团有限公司"),
        "other": Holder(p.generate_ec_key(), "另一家公司"),
    }


@pytest.fixture(scope="module")
def origin() -> Iterator[str | None]:
    yield from web_origin()


SETUP = """async () => {
  const [H, S, A, K, B, O] = await Promise.all([
    import("/js/handoff.js"), import("/js/shares.js"), import("/js/actions.js"),
    import("/js/keystore.js"), import("/js/bytes.js"), import("/js/opening.js")]);
  const record = async ({pkcs8, cert, kind}) => ({
    ...(await K.importPrivateKey(B.fromBase64(pkcs8), kind)),
    certificate: B.fromBase64(cert), chain: [B.fromBase64(cert)]});
  window.T = {H, S, A, K, B, O, record};
  return typeof H.unwrapDataKey === "function" && typeof S.openShareFile === "function";
}"""


@pytest.fixture(scope="module")
def session(origin: str | None) -> Iterator[tuple[Page, list[str]] | None]:
    if origin is None:
        yield None
        return
    with chromium_page(TIMEOUT_MS) as (page, errors):
        page.goto(origin + "/css/app.css")
        assert page.evaluate(SETUP) is True
        yield page, errors


@pytest.fixture
def browser_page(session: tuple[Page, list[str]] | None) -> Iterator[Page | None]:
    yield from checked(session)


def ready(browser_page: Page | None) -> Page:
    """The test's page; fails (never skips) when chromium is missing."""
    require_chromium()
    assert browser_page is not None
    return browser_page


def sealed(holder: Holder, opening: p.EcPrivateKey) -> bytes:
    out = io.BytesIO()
    envelope.seal(
        io.BytesIO("投标文件 bid.json".encode() * 100),
        out,
        lot=LOT,
        sealer=envelope.Sealer(holder.cert, holder.key),
        opening_key=opening.public_key(),
    )
    return out.getvalue()


def python_data_key(data: bytes, key: p.PrivateKey) -> bytes:
    header = envelope.read_header(io.BytesIO(data))
    [entry] = [e for e in header.recipients if e["to"] == "bidder"]
    return envelope.unwrap(entry, key, header.binding())


UNWRAP = """async ({holder, envelope, other}) => {
  const {H, B, record} = window.T;
  const blob = new Blob([B.fromBase64(envelope)]);
  const mine = await record(holder);
  const fromBlob = B.toHex(await H.unwrapDataKey(blob, mine));
  // only the header travels: a Response read up to the preamble's end, the rest cancelled
  const header = await H.headerFromResponse(new Response(blob));
  const fromHeader = B.toHex(await H.unwrapDataKey(header, mine));
  let refused = null;
  try {
    await H.unwrapDataKey(header, await record(other));
  } catch (error) {
    refused = error.code;
  }
  return {fromBlob, fromHeader, refused};
}"""


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_the_page_unwraps_the_data_key_python_sealed(
    browser_page: Page | None, holders: dict[str, Holder], kind: str
) -> None:
    page = ready(browser_page)
    holder, opening = holders[kind], p.generate_ec_key()
    data = sealed(holder, opening)
    got = page.evaluate(
        UNWRAP,
        {"holder": holder.page(), "envelope": b64(data), "other": holders["other"].page()},
    )
    expected = python_data_key(data, holder.key).hex()
    assert got == {
        "fromBlob": expected,
        "fromHeader": expected,
        "refused": "envelope_wrong_recipient",
    }


SEAL = """async ({point, room, envelope, key}) => {
  const {H, B} = window.T;
  return H.sealToRoom(B.fromHex(key), point, room, envelope);
}"""


def test_python_opens_the_hand_off(browser_page: Page | None) -> None:
    page = ready(browser_page)
    room_key = hpke.derive_key_pair(hashlib.sha256(b"room key for the test").digest())
    data_key, digest = bytes(range(32)), hashlib.sha256(b"envelope").hexdigest()
    point = b64(p.ec_point(room_key.public_key()))
    sealed_key = unb64(
        page.evaluate(
            SEAL, {"point": point, "room": ROOM, "envelope": digest, "key": data_key.hex()}
        )
    )
    enc, ct = sealed_key[:65], sealed_key[65:]
    aad = envelope.canonical({"room": ROOM, "envelope": digest})
    assert hpke.open_(enc, room_key, b"bidroom handoff v1", aad, ct) == data_key
    other_room = envelope.canonical({"room": "opening-other", "envelope": digest})
    with pytest.raises(hpke.HpkeError):
        hpke.open_(enc, room_key, b"bidroom handoff v1", other_room, ct)


SIGN = """async ({holder, action, fields}) => {
  const {A, record} = window.T;
  const mine = await record(holder);
  return {signature: await A.signAction(mine, action, fields),
          body: await A.signedBody(mine, action, fields)};
}"""


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_a_signed_action_verifies_over_the_bytes_python_builds(
    browser_page: Page | None, holders: dict[str, Holder], kind: str
) -> None:
    page = ready(browser_page)
    holder = holders[kind]
    fields = {
        "room": ROOM,
        "digest": "ab" * 32,
        "opinion": "dissent",
        "text": '报价一栏有误："1,234"',
    }
    got = page.evaluate(
        SIGN, {"holder": holder.page(), "action": "opening.confirm", "fields": fields}
    )
    message = b"bidroom action v1\n" + envelope.canonical({"action": "opening.confirm", **fields})
    public = p.accept_public_key(holder.key.public_key())
    p.verify_signature(public, unb64(got["signature"]), message)
    body = got["body"]
    p.verify_signature(public, unb64(body.pop("signature")), message)
    assert body == {
        "digest": fields["digest"],
        "opinion": "dissent",
        "text": fields["text"],
        "certificate": b64(holder.cert),
        "chain": [b64(holder.cert)],
    }


SHARE = """async ({holder, file, tampered, roomKey}) => {
  const {S, record} = window.T;
  const mine = await record(holder);
  const share = await S.openShareFile(file, mine);
  const codes = [];
  for (const bad of [tampered, "{}", "not json"]) {
    try {
      await S.openShareFile(bad, mine);
    } catch (error) {
      codes.push(error.code);
    }
  }
  return {share, commitment: await S.shareCommitment(share), codes,
          body: await S.shareBody(mine, "opening-lot-7", share, roomKey)};
}"""


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_the_page_opens_a_share_file_python_exported(
    browser_page: Page | None, holders: dict[str, Holder], kind: str
) -> None:
    page = ready(browser_page)
    holder = holders[kind]
    parts, commitments = shares.split(
        p.generate_ec_key(), 2, 3, ["舟山市公共资源交易中心", "监督局", "公证处"], LOT
    )
    share = parts[1]
    file = share.to_file(p.load_public_der(p.public_der(holder.key.public_key())))
    doc = json.loads(file)
    doc["custodian"] = "公证处 (altered)"  # recipient still matches; the aad does not
    room_key = handoff.room_key(b"a platform secret of thirty-two bytes", ROOM)
    got = page.evaluate(
        SHARE,
        {
            "holder": holder.page(),
            "file": file.decode(),
            "tampered": json.dumps(doc),
            "roomKey": handoff.public_point(room_key),
        },
    )
    assert got["share"] == share.to_plain()
    assert got["commitment"] == commitments[1].digest.hex()
    assert got["codes"] == ["share_file_open", "share_file", "share_file"]
    body = got["body"]
    assert "mnemonic" not in body, "a share never travels in clear"
    signed = {"room": ROOM, "index": 2, "commitment": got["commitment"]}
    signed["sealed_share"] = body["sealed_share"]
    message = b"bidroom action v1\n" + envelope.canonical({"action": "opening.share", **signed})
    p.verify_signature(
        p.accept_public_key(holder.key.public_key()), unb64(body["signature"]), message
    )
    opened = handoff.open_share(room_key, ROOM, got["commitment"], body["sealed_share"])
    assert (opened, body["index"]) == (share.mnemonic, 2)


def test_a_share_file_for_another_custodian_is_refused_by_name(
    browser_page: Page | None, holders: dict[str, Holder]
) -> None:
    page = ready(browser_page)
    parts, _ = shares.split(p.generate_ec_key(), 2, 2, ["甲", "乙"], LOT)
    file = parts[0].to_file(p.load_public_der(p.public_der(holders["ec"].key.public_key())))
    code = page.evaluate(
        """async ({holder, file}) => {
          try { await window.T.S.openShareFile(file, await window.T.record(holder)); }
          catch (error) { return [error.code, error.detail.custodian]; }
        }""",
        {"holder": holders["other"].page(), "file": file.decode()},
    )
    assert code == ["share_file_recipient", "甲"]


DRAW = """async ({seed, lot, range}) => window.T.O.drawK(window.T.B.fromHex(seed), lot, range)"""
DRAW_V2 = """async (inputs) => window.T.O.drawKv2(inputs)"""


@pytest.mark.parametrize(
    "k_range", [("0.00", "0.05", "0.01"), ("0.00", "0.05", "0.005"), ("0.020", "0.030", "0.001")]
)
def test_the_page_recomputes_k_as_the_core_draws_it(
    browser_page: Page | None, k_range: tuple[str, str, str]
) -> None:
    page = ready(browser_page)
    for i in range(8):
        seed = hashlib.sha256(f"seed {i}".encode()).digest()
        expected = draw_k(seed, LOT, *(Decimal(v) for v in k_range))
        got = page.evaluate(DRAW, {"seed": seed.hex(), "lot": LOT, "range": list(k_range)})
        assert Decimal(got) == expected
        assert got == str(expected)


# the page's fold (web/js/opening.js) against the core's (bidroom/opening.py) ------------------
#
# The core decides a whole opening; every participant's page folds the events it may see on top
# of the snapshot it got when it joined. At each step its state must equal what a reload (a fresh
# snapshot) shows: a late joiner and a live watcher see the same room.

T0 = datetime(2026, 12, 20, 1, 30, tzinfo=UTC)
SEED = bytes(range(32))
WATCHING = {
    "chair": Actor("u-chair", "王主持", "chair"),
    "supervisor": Actor("u-sup", "李监督", "supervisor"),
    "b1": Actor("b1", "六横海洁", "bidder"),
    "b3": Actor("b3", "舟山保洁", "bidder"),
    "custodian": Actor("c1", "公证处", "custodian"),
}


def _config() -> dict[str, Any]:
    commitments = [
        {"index": i, "custodian": c, "digest": f"{i:02x}" * 32, "k": 2}
        for i, c in ((1, "c1"), (2, "c2"), (3, "c3"))
    ]
    return {
        "lot": "lot-1",
        "title": "第1标段",
        "tender": "ZJ-ZS-2026-0417",
        "starts_at": T0.isoformat(),
        "window_minutes": 30,
        "remedy": "quorum",
        "commitments": commitments,
        "k": 2,
        "k_range": ["0.00", "0.05", "0.01"],
        "record": {"confirm_minutes": 30, "silence": "consent"},
        "ceiling_price": "3800000.00",
        "guarantee": {"required": True, "amount": "50000.00"},
        "sheet_fields": ["price", "duration_days", "guarantee"],
    }


SIG = {"signature": "s" * 20, "certificate": "c" * 20}
B1_VALUE = bytes(range(100, 132))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _script() -> list[tuple[str, Actor, dict[str, Any], timedelta]]:
    """The opening, command by command: (name, actor, args, time after T0)."""
    chair, b1 = WATCHING["chair"], WATCHING["b1"]
    bids = [
        {"bidder": f"b{i}", "name": n, "envelope": f"{i:x}" * 64}
        for i, n in ((1, "六横海洁"), (2, "东港城服"), (3, "舟山保洁"), (4, "岱山环卫"))
    ]
    forms = {
        "b1": {
            "price": "3650000.00",
            "duration_days": 365,
            "guarantee": {"kind": "bank", "amount": "50000.00"},
        },
        "b3": {"price": "3900000.00", "duration_days": 300, "guarantee": None},
    }
    minute = timedelta(minutes=1)
    steps: list[tuple[str, Actor, dict[str, Any], timedelta]] = [
        ("opening.sign_in", b1, {"contribution": sha256(B1_VALUE), **SIG}, -10 * minute),
        ("opening.fix_bids", SYSTEM, {"bids": bids}, 0 * minute),
        ("opening.commit_draw", chair, {"commitment": hashlib.sha256(SEED).hexdigest()}, minute),
        # after the deadline, before the window; b3 never reveals theirs (absent from K)
        ("opening.sign_in", WATCHING["b3"], {"contribution": sha256(b"b3" * 16), **SIG}, minute),
        ("opening.start_window", chair, {}, minute),
        ("opening.reveal_contribution", b1, {"value": B1_VALUE.hex()}, minute),
        ("opening.decrypted", b1, {"sealed_key": "k" * 20, **SIG}, 2 * minute),
        (
            "opening.report_failure",
            Actor("b2", "", "bidder"),
            {"cause": "network_fault", **SIG},
            3 * minute,
        ),
        # the chair's word for b4, who never acts: the bid stays b4's to the window's end
        ("opening.report_failure", chair, {"bidder": "b4", "cause": "network_fault"}, 3 * minute),
        ("opening.object", b1, {"text": "二号投标人的网络故障是否属实？"}, 4 * minute),
        ("opening.close_window", SYSTEM, {}, 40 * minute),
        (
            "opening.request_quorum",
            chair,
            {"bidders": ["b3"], "reason": "平台日志显示证书正常"},
            41 * minute,
        ),
        (
            "opening.share_submitted",
            WATCHING["custodian"],
            {"custodian": "c1", "index": 1, "commitment": "01" * 32, "sealed_share": "x" * 20},
            42 * minute,
        ),
        (
            "opening.share_submitted",
            Actor("c2", "", "custodian"),
            {"custodian": "c2", "index": 2, "commitment": "02" * 32, "sealed_share": "x" * 20},
            43 * minute,
        ),
        (
            "opening.quorum_opened",
            SYSTEM,
            {"bidder": "b3", "sealed_key": "q" * 20, "shares": [1, 2]},
            43 * minute,
        ),
        ("opening.settle_failures", chair, {}, 44 * minute),
        ("opening.publish_sheet", chair, {"rows": "SHEET"}, 45 * minute),
        (
            "opening.answer",
            chair,
            {"objection": "OBJECTION", "text": "已核实平台日志"},
            46 * minute,
        ),
        ("opening.reveal_draw", chair, {"seed": SEED.hex()}, 47 * minute),
        ("opening.generate_record", chair, {}, 48 * minute),
        (
            "opening.confirm_record",
            b1,
            {"opinion": "dissent", "text": "报价一栏应为含税价", **SIG},
            50 * minute,
        ),
        ("opening.close_confirmations", SYSTEM, {}, 90 * minute),
        ("opening.countersign", chair, dict(SIG), 91 * minute),
        ("opening.publish_record", chair, {"checkpoint": "note", "proofs": []}, 92 * minute),
    ]
    steps.insert(0, ("__forms__", SYSTEM, forms, 0 * minute))
    return steps


def _script_with_a_refusal() -> list[tuple[str, Actor, dict[str, Any], timedelta]]:
    """The same opening, the custodians asked for b3 and b4: b4's entry does not open its bid
    (``opening.quorum_refused``: revoked at once, docs/opening.md "What upload checks")."""
    steps = []
    for name, actor, args, after in _script():
        if name == "opening.request_quorum":
            args = {**args, "bidders": ["b3", "b4"]}
        steps.append((name, actor, args, after))
        if name == "opening.quorum_opened":
            refused = {
                "bidder": "b4",
                "shares": [1, 2],
                "entry": "ab" * 32,
                "envelope": "4" * 64,
                "code": "envelope_wrong_key",
            }
            steps.append(("opening.quorum_refused", SYSTEM, refused, after))
    return steps


def _run_core(
    script: list[tuple[str, Actor, dict[str, Any], timedelta]] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, dict[str, Any]]]]:
    """Every event (as frames), and after each, every watcher's snapshot and visible seqs."""
    kind = opening.room_type()
    state = kind.initial(_config())
    frames: list[dict[str, Any]] = []
    checkpoints: list[dict[str, dict[str, Any]]] = []
    seq = 0
    steps = _script() if script is None else script
    forms = steps.pop(0)[2]
    for name, actor, args, after in steps:
        part = state[1]
        if args.get("rows") == "SHEET":
            args = {"rows": opening.sheet_rows(part.bids.values(), forms, _config())}
        if args.get("objection") == "OBJECTION":
            args = {**args, "objection": part.objections[0].seq}
        outcome = kind.decide(state, Command(name, args), actor, T0 + after)
        assert isinstance(outcome, list), (name, outcome)
        for event in outcome:
            seq += 1
            at = T0 + after
            recorded = Event(event.name, event.data, seq, at, actor)
            state = kind.apply(state, recorded)
            frame = {
                "seq": seq,
                "name": event.name,
                "data": json.loads(json.dumps(event.data)),
                "actor": actor.to_json(),
                "at": at.isoformat(),
                "seen": [],
            }
            frame["seen"] = [w for w, a in WATCHING.items() if kind.visible(state, recorded, a)]
            frames.append(frame)
        checkpoints.append(
            {
                w: {
                    "seq": seq,
                    "state": json.loads(json.dumps(kind.snapshot(state, a), default=str)),
                }
                for w, a in WATCHING.items()
            }
        )
    return frames, checkpoints


FOLD = """async ({first, frames, checkpoints, me, subject, reveals}) => {
  const {O} = window.T;
  const view = (s) => ({
    phase: s.phase, count: s.count,
    bids: Object.fromEntries(
      Object.values(s.bids).map((b) => [b.bidder, [b.status, b.cause, b.reported_by]])),
    signedIn: [...s.signedIn].sort(), decision: s.decision && s.decision.decision,
    windowEnds: s.windowEnds, quorum: s.quorum && [s.quorum.bidders, s.quorum.pending],
    shares: s.shares.map((x) => x.index).sort(), sheet: s.sheet && s.sheet.rows.length,
    draw: s.draw, objections: s.objections.map((o) => [o.seq, o.text, o.answer && o.answer.text]),
    record: s.record && s.record.digest,
    confirmations: Object.fromEntries(
      Object.entries(s.confirmations).map(([b, c]) => [b, c.opinion])),
    deemed: s.deemed, countersigned: Boolean(s.countersigned), published: Boolean(s.published),
  });
  // the page: a bidder adds their own bid from bids/mine (withOwnBid); after an event of the
  // room type's reveals, the server sends a fresh snapshot (here: the one after that command)
  const role = first.role;
  const own = (s) => (role === "bidder" ? O.withOwnBid(s, subject, "e".repeat(64)) : s);
  let live = own(O.fromSnapshot(first.state, subject, role));
  let last = first.seq;
  const out = [];
  for (const point of checkpoints) {
    const batch = frames.filter((f) => f.seq > last && f.seq <= point.seq && f.seen.includes(me));
    live = batch.some((f) => reveals.includes(f.name))
      ? own(O.fromSnapshot(point.state, subject, role))
      : batch.reduce((s, f) => own(O.apply(s, f)), live);
    last = point.seq;
    const reload = O.fromSnapshot(point.state, subject, role);
    out.push({seq: point.seq, live: view(live), reload: view(reload),
              tasks: O.tasks(live, {subject, role}, Date.parse("2026-12-20T02:00:00Z"))});
  }
  return out;
}"""


@pytest.mark.parametrize("refusal", [False, True], ids=["opened", "refused"])
@pytest.mark.parametrize("watcher", list(WATCHING))
def test_the_live_fold_shows_what_a_reload_shows(
    browser_page: Page | None, watcher: str, refusal: bool
) -> None:
    page = ready(browser_page)
    frames, checkpoints = _run_core(_script_with_a_refusal() if refusal else None)
    actor = WATCHING[watcher]
    mine = [c[watcher] for c in checkpoints]
    first = {**mine[0], "role": actor.role}
    got = page.evaluate(
        FOLD,
        {
            "first": first,
            "frames": frames,
            "checkpoints": mine[1:],
            "me": watcher,
            "subject": actor.subject,
            "reveals": sorted(opening.REVEALS),
        },
    )
    for step in got:
        assert step["live"] == step["reload"], f"after seq {step['seq']}"
    assert got[-1]["reload"]["phase"] == "published"
    if refusal and watcher in ("chair", "supervisor"):
        assert got[-1]["live"]["bids"]["b4"] == ["revoked", "bidder_entry_mismatch", "custodians"]
    draw = got[-1]["reload"]["draw"]
    assert [(c["bidder"], c["value"]) for c in draw["contributions"]] == [
        ("b1", B1_VALUE.hex()),
        ("b3", None),
    ]
    # the page verifies K from what the record shows, as anyone would (docs/opening.md)
    verified = page.evaluate(
        "async ({draw, lot}) => window.T.O.verifyDraw(draw, lot)", {"draw": draw, "lot": "lot-1"}
    )
    assert verified["ok"] is True and verified["k"] == draw["k"]
    lied = {**draw, "k": "0.99"}
    assert (
        page.evaluate(
            "async ({draw, lot}) => window.T.O.verifyDraw(draw, lot)",
            {"draw": lied, "lot": "lot-1"},
        )["ok"]
        is False
    )


# what each page asks its user to do, after the command at that step of _script()
TASKS = {
    "chair": {
        1: {"commit_draw"},
        2: {"start_window"},
        3: {"start_window"},
        10: {"request_quorum", "settle_failures", "answer"},
        14: {"request_quorum", "settle_failures", "answer"},
        15: {"publish_sheet", "answer"},
        16: {"reveal_draw", "answer"},
        18: {"generate_record"},
        21: {"countersign"},
        22: {"publish"},
    },
    "b1": {4: {"decrypt"}, 5: {"decrypt"}, 19: {"confirm"}},
    "custodian": {11: {"submit_share"}},
}


@pytest.mark.parametrize("watcher", list(TASKS))
def test_each_page_names_the_next_step(browser_page: Page | None, watcher: str) -> None:
    page = ready(browser_page)
    frames, checkpoints = _run_core()
    actor = WATCHING[watcher]
    mine = [c[watcher] for c in checkpoints]
    got = page.evaluate(
        FOLD,
        {
            "first": {**mine[0], "role": actor.role},
            "frames": frames,
            "checkpoints": mine[1:],
            "me": watcher,
            "subject": actor.subject,
            "reveals": sorted(opening.REVEALS),
        },
    )
    tasks = [set(step["tasks"]) for step in got]
    for at, expected in TASKS[watcher].items():
        assert tasks[at - 1] == expected, f"after step {at}"
    assert tasks[-1] == set()


@pytest.mark.parametrize("k_range", [("0.00", "0.05", "0.01"), ("0.020", "0.030", "0.001")])
def test_the_page_recomputes_k_v2_as_the_core_draws_it(
    browser_page: Page | None, k_range: tuple[str, str, str]
) -> None:
    page = ready(browser_page)
    for i in range(6):
        seed = sha256(f"seed {i}".encode())
        fixed = sha256(f"fixed {i}".encode())
        values = {f"uscc:b{j}": sha256(f"value {i} {j}".encode()) for j in range(i % 3)}
        values["uscc:中文"] = sha256(b"non-ascii bidder keys sort and encode as the core's")
        expected = opening.draw_k_v2(seed, LOT, list(k_range), fixed, values)
        inputs = {
            "lot": LOT,
            "range": list(k_range),
            "seed": seed,
            "fixed": fixed,
            "contributions": values,
        }
        assert page.evaluate(DRAW_V2, inputs) == str(expected)
