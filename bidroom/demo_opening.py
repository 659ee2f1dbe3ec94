"""The demo's completed opening (已开标): one lot's whole opening driven through the real app, in
process, before the demo's server starts, so that its evaluation can be tried at once.

Every step goes where a person's browser or the platform's clock would send it: the chair
creates and publishes the tender (HTTP); each bidder signs in with their certificate, registers,
uploads a sealed bid over tus, signs in to the opening (签到) and hands over their data key,
signed; the clock (``openings.tick``) fixes the bids and closes the window and the
confirmations; the chair commits the draw of K, starts the window, asks for the sheet (唱标),
reveals K, answers an objection, generates the record, countersigns and publishes it. Nothing is
written around the app.

Time. Publication refuses a deadline in the past, the bids must be time-stamped before the
deadline and they are fixed a grace after it. So the opening runs in the past, on a pinned clock
that the hub and the built-in TSA both follow, as the tests pin them (tests/tendering.py): the
tender published ``BIDDING`` before its deadline, the bids received an hour before it, each later
step ``STEP`` after the one before, the record published long before the demo starts. Nothing
waits. Only the audit log's checkpoints keep real time (they are made after the entries they
cover); the demo CA (bidroom.demo_pki) and the built-in TSA (bidroom.timestamps) are in force
from a day before the first start.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx

import bidroom.app  # the module only: bidroom.app imports bidroom.demo, which imports this one
from bidroom import demo_pki, evaluations, openings, signed, timestamps
from bidroom.errors import BidroomError
from bidroom.room import Actor, Command
from bidroom.settings import Settings
from bidroom.store import Store
from bidroom.tender_store import LotRecord
from ca import envelope, handoff, login, lot_key
from ca import primitives as p
from ca.trust import TrustStore

BIDDING = timedelta(hours=4)  # from publication to the deadline
STEP = timedelta(minutes=2)  # from one step of the opening to the next
TUS = {"Tus-Resumable": "1.0.0"}
# Each bidder uploads from their own office (documentation addresses, RFC 5737): one address
# shared by every bid would be a collusion signal in the evaluation's pre-check.
ADDRESSES = {"bidder-1": "198.51.100.23", "bidder-2": "203.0.113.61", "bidder-3": "192.0.2.147"}


@dataclass(frozen=True, slots=True)
class Bid:
    """A demo bidder's bid: who, and the plaintext (a ZIP, bid.json first) for a lot id."""

    person: str
    plaintext: Callable[[str], bytes]


class Clock:
    """The pinned clock: the hub and the built-in TSA read it; the driver moves it."""

    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


class Platform:
    """The app in process on a pinned clock, and each demo person's session in it."""

    def __init__(self, app: Any, folder: Path, clock: Clock, exits: AsyncExitStack):
        self.app, self.folder, self.clock, self.exits = app, folder, clock, exits
        self.clients: dict[str, httpx.AsyncClient] = {}
        self.sessions: dict[str, dict[str, Any]] = {}  # person -> the login's answer

    @property
    def state(self) -> Any:
        return self.app.state

    def key(self, who: str) -> p.PrivateKey:
        return p.load_private_key((self.folder / f"{who}.key.pem").read_bytes())

    def signature(self, who: str, message: bytes) -> dict[str, Any]:
        """The certificate, chain and signature fields a signed body carries."""
        return {
            "certificate": base64.b64encode(demo_pki.certificate_der(self.folder, who)).decode(),
            "chain": [base64.b64encode(c).decode() for c in demo_pki.chain_der(self.folder)],
            "signature": base64.b64encode(p.sign(self.key(who), message)).decode(),
        }

    def signed(self, who: str, action: str, fields: dict[str, Any]) -> dict[str, Any]:
        """A signed action's fields (docs/opening.md "Signed actions"), as the browser signs it."""
        return self.signature(who, signed.action_message(action, fields))

    async def client(self, who: str) -> httpx.AsyncClient:
        if who not in self.clients:
            address = (ADDRESSES.get(who, "127.0.0.1"), 50000)
            transport = httpx.ASGITransport(app=self.app, client=address)
            base = self.state.settings.base_url
            made = httpx.AsyncClient(transport=transport, base_url=base, timeout=60)
            self.clients[who] = await self.exits.enter_async_context(made)
        return self.clients[who]

    async def sign_in(self, who: str) -> None:
        """Certificate login, as the login page does it: challenge, signature, token."""
        http = await self.client(who)
        issued = _ok("login challenge", await http.post("/api/login/challenge"))
        message = login.signed_message(issued["origin"], issued["challenge"])
        answer = {"challenge": issued["challenge"], **self.signature(who, message)}
        self.sessions[who] = _ok("login", await http.post("/api/login", json=answer))

    def subject(self, who: str) -> str:
        return str(self.sessions[who]["holder"]["subject"])

    def headers(self, who: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.sessions[who]['token']}"}

    async def post(self, step: str, who: str, path: str, body: Any = None) -> Any:
        http = await self.client(who)
        return _ok(step, await http.post(path, json=body or {}, headers=self.headers(who)))

    async def command(self, room: str, who: str, name: str, **args: Any) -> None:
        """A WebSocket command, as the edge hands it to the hub."""
        holder, role = self.sessions[who]["holder"], self.sessions[who]["roles"][0]
        actor = Actor(holder["subject"], holder["name"], role, None, holder.get("organisation"))
        outcome = await self.state.hub.execute(room, Command(name, args), actor, None)
        if not outcome["ok"]:
            raise _failed(name, outcome)

    async def tick(self) -> None:
        await openings.tick(self.state, self.clock.at)

    def later(self, step: timedelta = STEP) -> None:
        self.clock.at += step

    async def opening(self, room: str) -> Any:
        return openings.part(await self.state.hub.room(room))


def _ok(step: str, response: httpx.Response) -> Any:
    if response.status_code >= 300:
        json = "json" in response.headers.get("content-type", "")
        raise _failed(step, response.json() if json else {"message": response.text})
    return response.json() if response.content else None


def _failed(step: str, refusal: dict[str, Any]) -> BidroomError:
    """A step the platform refused: a bug of the demo (one line from `bidroom demo`)."""
    code, message = refusal.get("code"), refusal.get("message")
    return BidroomError(f"the demo opening's {step} was refused: {message} ({code})", code=code)


@asynccontextmanager
async def platform(settings: Settings, folder: Path, start: datetime) -> AsyncIterator[Platform]:
    """The app on the demo's database and var folder, its lifespan run, its clock pinned at
    ``start``. Its own opening clock is slowed right down: the driver ticks it itself."""
    app = bidroom.app.create_app(settings.model_copy(update={"clock_seconds": 24 * 3600.0}))
    async with AsyncExitStack() as exits, app.router.lifespan_context(app):
        requests = logging.getLogger("httpx2")  # a line per in-process request: noise here
        exits.callback(requests.setLevel, requests.level)
        requests.setLevel(logging.WARNING)
        clock = Clock(start)
        state = app.state
        state.hub.clock = clock
        state.timestamper = timestamps.pinned(state.settings, clock)
        yield Platform(app, folder, clock, exits)


# the opening, step by step -----------------------------------------------------------------


async def run(
    platform: Platform, spec: dict[str, Any], chair: str, bids: Sequence[Bid]
) -> LotRecord:
    """Publish ``spec`` (one lot) as ``chair`` and take its opening to a published record."""
    deadline = datetime.fromisoformat(spec["lots"][0]["deadline"])
    platform.clock.at = deadline - BIDDING
    await platform.sign_in(chair)
    lot = await _publish(platform, chair, spec)
    platform.clock.at = deadline - timedelta(hours=1)
    sealed = {bid.person: await _bid(platform, lot, bid) for bid in bids}
    platform.clock.at = deadline - timedelta(minutes=10)
    # on a lot that draws K, each bidder's browser commits its contribution at the sign-in
    values = {who: secrets.token_bytes(32) for who in sealed} if lot.get("k_range") else {}
    for who in sealed:
        given = {"contribution": hashlib.sha256(values[who]).hexdigest()} if values else {}
        if given:  # the commitment is the bidder's own word: signed, as their page signs it
            given |= platform.signed(who, "opening.sign_in", {"room": lot["room"], **given})
        await platform.command(lot["room"], who, "opening.sign_in", **given)
    platform.clock.at = deadline + timedelta(seconds=platform.state.settings.fix_grace_seconds)
    await platform.tick()  # the bids are fixed
    await _window(platform, lot, chair, sealed, values)
    await _sheet(platform, lot, chair, [bid.person for bid in bids])
    await _record(platform, lot, chair, sealed)
    found: LotRecord | None = await platform.state.tenders.lot(lot["id"])
    assert found is not None
    return found


async def _publish(platform: Platform, chair: str, spec: dict[str, Any]) -> dict[str, Any]:
    made = await platform.post("tender", chair, "/api/tenders", spec)
    tender = made["tender"]["id"]
    done = await platform.post("publication", chair, f"/api/tenders/{tender}/publish")
    published = done["tender"]["lots"][0]
    # the chair signs the lot's key statement in their browser: no bid is taken before
    body = platform.signed(chair, lot_key.ACTION, lot_key.statement(published))
    path = f"/api/lots/{published['id']}/key-signature"
    lot: dict[str, Any] = (await platform.post("key signature", chair, path, body))["lot"]
    return lot


async def _bid(platform: Platform, lot: dict[str, Any], bid: Bid) -> bytes:
    """The bidder's tool seals the bid to the lot's opening key; the bid page uploads it."""
    who = bid.person
    await platform.sign_in(who)
    # the bidder's tool seals only to a key the tenderer signed, by its own trust roots and the
    # tenderer as the notice names it (the demo's trading centre)
    tenderer = [demo_pki.person("chair").organisation]
    lot_key.verify(lot, TrustStore(platform.state.settings.trust_root), platform.clock(), tenderer)
    opening_key = lot_key.opening_key(lot)
    sealer = envelope.Sealer(demo_pki.certificate_der(platform.folder, who), platform.key(who))
    out = io.BytesIO()
    envelope.seal(
        io.BytesIO(bid.plaintext(lot["id"])),
        out,
        lot=lot["id"],
        sealer=sealer,
        opening_key=opening_key,
        client={"tool": "bidroom demo"},
    )
    data = out.getvalue()
    await platform.post("registration", who, f"/api/lots/{lot['id']}/registrations")
    await _upload(platform, who, lot["id"], data)
    return data


async def _upload(platform: Platform, who: str, lot: str, data: bytes) -> None:
    """One tus upload: creation, one PATCH, the outcome."""
    http, auth = await platform.client(who), platform.headers(who)
    length = {"Upload-Length": str(len(data))}
    created = await http.post(f"/api/lots/{lot}/uploads", headers={**auth, **TUS, **length})
    _ok("upload", created)
    url = created.headers["location"]
    patch = {"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    _ok("upload", await http.patch(url, content=data, headers={**auth, **TUS, **patch}))
    outcome = _ok("upload", await http.get(url, headers=auth))
    if outcome["status"] != "accepted":
        raise _failed(f"bid by {who}", outcome.get("error") or {"message": outcome["status"]})


async def _window(
    platform: Platform,
    lot: dict[str, Any],
    chair: str,
    sealed: dict[str, bytes],
    values: dict[str, bytes],
) -> None:
    """The chair commits the draw of K and starts the window; each bidder's page reveals their
    contribution to K and hands over their data key; with no bid still sealed, the clock closes
    the window."""
    room = lot["room"]
    platform.later()
    seed = secrets.token_bytes(32)  # drawn in the chair's browser
    commitment = hashlib.sha256(seed).hexdigest()
    sealed_seed = handoff.seal_key(await _room_key(platform, room), room, commitment, seed)
    await platform.command(
        room, chair, "opening.commit_draw", commitment=commitment, sealed_seed=sealed_seed
    )
    platform.later()
    await platform.command(room, chair, "opening.start_window")
    for who, data in sealed.items():
        platform.later()
        if who in values:
            await platform.command(
                room, who, "opening.reveal_contribution", value=values[who].hex()
            )
        await _hand_over(platform, room, who, data)
    await platform.tick()


async def _room_key(platform: Platform, room: str) -> p.EcPublicKey:
    http = await platform.client("public")
    point = _ok("room key", await http.get(f"/api/openings/{room}/key"))["public_key"]
    return p.ec_from_point(base64.b64decode(point))


async def _hand_over(platform: Platform, room: str, who: str, data: bytes) -> None:
    """The bidder's browser unwraps the data key, seals it to the room and signs the hand-over."""
    digest = hashlib.sha256(data).hexdigest()
    key = envelope.unwrap_with(envelope.read_header(io.BytesIO(data)), platform.key(who))
    sealed_key = handoff.seal_key(await _room_key(platform, room), room, digest, key)
    fields = {"room": room, "envelope": digest, "sealed_key": sealed_key}
    body = {"envelope": digest, "sealed_key": sealed_key}
    signature = platform.signed(who, "opening.decrypt", fields)
    await platform.post("hand-over", who, f"/api/openings/{room}/decrypt", {**body, **signature})


async def _sheet(platform: Platform, lot: dict[str, Any], chair: str, bidders: list[str]) -> None:
    """The sheet to every screen, K revealed, one objection answered."""
    room = lot["room"]
    platform.later()
    await platform.post("sheet", chair, f"/api/openings/{room}/sheet")
    platform.later()
    await platform.post("reveal", chair, f"/api/openings/{room}/reveal")
    platform.later()
    objector = bidders[1]
    text = "请评标委员会核查各投标人拟派项目经理的注册证书是否在有效期内。"
    await platform.command(room, objector, "opening.object", text=text)
    [objection] = (await platform.opening(room)).objections
    platform.later()
    answer = "已记录，提交评标委员会在初步评审中核查。"
    await platform.command(room, chair, "opening.answer", objection=objection.seq, text=answer)


async def _record(
    platform: Platform, lot: dict[str, Any], chair: str, sealed: dict[str, bytes]
) -> None:
    """The record generated, confirmed by every bidder, countersigned and published."""
    room = lot["room"]
    platform.later()
    await platform.command(room, chair, "opening.generate_record")
    digest = (await platform.opening(room)).record.digest
    for who in sealed:
        platform.later()
        fields = {"room": room, "digest": digest, "opinion": "confirm", "text": ""}
        body = {"digest": digest, "opinion": "confirm", "text": ""}
        signature = platform.signed(who, "opening.confirm", fields)
        await platform.post("confirmation", who, f"/api/openings/{room}/confirm", body | signature)
    await platform.tick()  # every bidder has answered: the confirmations close
    platform.later()
    signature = platform.signed(chair, "opening.countersign", {"room": room, "digest": digest})
    countersign = {"digest": digest, **signature}
    await platform.post("countersignature", chair, f"/api/openings/{room}/countersign", countersign)
    platform.later()
    await platform.post("publication of the record", chair, f"/api/openings/{room}/publish")


# the evaluation session --------------------------------------------------------------------


async def open_evaluation(platform: Platform, lot: str, chair: str, now: datetime) -> str:
    """The chair opens the evaluation session of ``lot`` at ``now``: its room."""
    platform.clock.at = now
    await platform.sign_in(chair)
    return await evaluations.open_session(platform.state, lot, platform.subject(chair), now)


async def evaluation_room(store: Store, lot: str) -> str | None:
    """The lot's newest evaluation session's room, if one was opened."""
    rooms = [r for r in await store.rooms() if r.kind == "evaluation"]
    ours = [r for r in rooms if r.config.get("lot_id") == lot]
    return max(ours, key=lambda r: int(r.config.get("session", 0))).id if ours else None
