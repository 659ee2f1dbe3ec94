"""The demo: the island sanitation tender, published, with three sealed bids, and one sign-in
link per demo person, so that a newcomer can walk a whole opening alone; and a second tender
whose opening has already taken place, so that they can walk its evaluation at once.

What the seed makes (once; a restart keeps everything and the opening continues):
- the demo CA and its people (bidroom.demo_pki): a chair, three bidders, a supervisor, three
  key custodians and eight evaluation experts, each with a role in the registry;
- the expert database's pool snapshot (``<var>/demo-pki/expert-pool.json``, the demo's
  BIDROOM_EXPERT_POOL): the eight experts, their home cities and specialties;
- tender ZJ-ZS-2026-0392, lot 1, opened two hours before the first start and its record
  published (bidroom.demo_opening drives it through the real app), and its evaluation session,
  ready for the chair to draw the committee;
- tender ZJ-ZS-2026-0417, lot 1, published by the chair: the opening is ``opening_in`` after
  the start, the lot's opening key split 2-of-3 among the custodians, K drawn live from 0-5 %;
- a bid from each bidder, sealed with their demo key and received like any upload (trusted
  time, checks, audit receipt). A bidder may seal a new version in the browser before the
  deadline; it replaces the demo's.

Both lots are evaluated by a committee of five at three venues (3 + 1 + 1), drawn by home city
from the pool.

The people sign in with certificates of the demo CA; the demo, and only the demo, serves their
keys to the login page (one click per person).
"""

from __future__ import annotations

import base64
import io
import ipaddress
import json
import secrets
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

from cryptography import x509
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bidroom import (
    audit_api,
    blobs,
    committee,
    demo_opening,
    demo_pki,
    owners,
    signed,
    tender_api,
    tenders,
    timestamps,
    tokens,
    uploads,
)
from bidroom.errors import ConfigError
from bidroom.settings import Settings
from bidroom.store import Store
from bidroom.tender_store import LotRecord, TenderRecord, TenderStore
from ca import envelope, lot_key
from ca import primitives as p

TENDER_NUMBER = "ZJ-ZS-2026-0417"
TENDER_TITLE = "六横岛环卫一体化服务项目"
OPENED_NUMBER = "ZJ-ZS-2026-0392"  # the tender whose opening took place before the first start
OPENED_TITLE = "虾峙镇环卫一体化服务项目"
OPENED_AGO = timedelta(hours=2)  # its deadline, before the first start
CHAIR = "chair"
POOL_FILE = "expert-pool.json"
VENUES = {"舟山": "舟山主会场", "普陀": "普陀分会场", "岱山": "岱山分会场"}  # by home city
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class DemoBid:
    person: str
    price: str
    duration_days: int
    project_manager: str
    guarantee: str  # amount offered; the lot requires 50000.00
    rate: str  # the bidder's unit prices: BILL's reference ones times this
    crew: int  # workers and vehicles the technical part proposes
    vehicles: int


BIDS = (
    DemoBid("bidder-1", "3650000.00", 365, "张海涛", "50000.00", "1.00", 86, 21),
    # short guarantee: the sheet's check shows it
    DemoBid("bidder-2", "3712500.00", 360, "刘晓燕", "30000.00", "0.97", 92, 18),
    DemoBid("bidder-3", "3598000.00", 365, "黄志明", "50000.00", "1.03", 78, 24),
)
# The opened tender's bids: under its ceiling, guarantees in order, no pattern among the prices.
OPENED_BIDS = (
    DemoBid("bidder-1", "2856000.00", 365, "张海涛", "50000.00", "1.00", 64, 15),
    DemoBid("bidder-2", "2793500.00", 365, "刘晓燕", "50000.00", "0.97", 70, 13),
    DemoBid("bidder-3", "2911800.00", 360, "黄志明", "50000.00", "1.03", 58, 17),
)
# The bill of quantities (工程量清单) each bid prices: item, quantity, reference unit price. The
# last item (vehicles and equipment) takes what the others leave of the bid's price.
BILL = (
    ("01 道路清扫保洁（万平方米·年）", "86.5", "12800.00"),
    ("02 生活垃圾收集清运（吨）", "9800", "95.00"),
    ("03 公厕保洁（座·年）", "24", "9500.00"),
    ("04 海滩及河道保洁（公里·年）", "18.6", "16000.00"),
    ("05 环卫车辆及设备投入（项）", "1", None),
)


def evaluation_section(tenderer: str) -> dict[str, Any]:
    """The lots' evaluation, frozen at publication (K excepted: the opening draws it): price 50
    points by benchmark deviation, three subjective technical items, one objective item; a
    committee of five drawn from the pool's 环境卫生 experts by home city, 3 + 1 + 1, none of
    the ``tenderer``'s (招标人) or a bidder's."""
    return {
        "params": {
            "price": {
                "method": "benchmark",
                "full": "50",
                "e_high": "1.0",
                "e_low": "0.5",
                "trim": "drop_max_min",
                "trim_from": 5,
            },
            "items": [
                {"id": "服务方案", "max": "20", "kind": "subjective", "part": "technical"},
                {"id": "人员配备", "max": "10", "kind": "subjective", "part": "technical"},
                {"id": "设备", "max": "10", "kind": "subjective", "part": "technical"},
                {"id": "类似业绩", "max": "10", "kind": "objective", "part": "commercial"},
            ],
            "rounding": {"mode": "half_up", "places": 2},
            "tie_breakers": ["lower_price", "higher_technical", "earlier_receipt"],
            "candidates": 3,
            "threshold": "0.30",
        },
        "criteria": [
            {"id": "资格", "text": "投标人资格符合招标文件要求（营业执照、资质证书）"},
            {"id": "保证金", "text": "投标保证金按要求提交"},
            {"id": "签章", "text": "投标文件按要求签署、盖章"},
            {"id": "报价", "text": "投标报价不超过最高限价，且唯一"},
        ],
        "review_rule": "majority",
        "anonymous_technical": True,
        "venues": [
            {"venue": VENUES["舟山"], "seats": 3, "cities": ["舟山"]},
            {"venue": VENUES["普陀"], "seats": 1, "cities": ["普陀"]},
            {"venue": VENUES["岱山"], "seats": 1, "cities": ["岱山"]},
        ],
        "signing_minutes": 60,
        "specialties": ["环境卫生"],
        "tenderer": tenderer,
        # No local_city exclusion: the demo's experts all live in Zhoushan.
    }


def tender_spec(folder: Path, deadline: datetime) -> dict[str, Any]:
    """The live tender: its opening ``deadline`` is minutes after the demo's first start."""
    lot = _lot(folder, "第1标段（六横镇）", "3800000.00", deadline, "舟山市普陀区六横镇人民政府")
    return {"number": TENDER_NUMBER, "title": TENDER_TITLE, "lots": [lot]}


def opened_tender_spec(folder: Path, deadline: datetime) -> dict[str, Any]:
    """The tender opened before the demo's first start (bidroom.demo_opening)."""
    lot = _lot(folder, "第1标段（虾峙镇）", "2960000.00", deadline, "舟山市普陀区虾峙镇人民政府")
    return {"number": OPENED_NUMBER, "title": OPENED_TITLE, "lots": [lot]}


def _lot(
    folder: Path, title: str, ceiling: str, deadline: datetime, tenderer: str
) -> dict[str, Any]:
    custodians = [
        (folder / f"{person.id}.crt.pem").read_text()
        for person in demo_pki.PEOPLE
        if person.role == "custodian"
    ]
    return {
        "number": "1",
        "title": title,
        "ceiling_price": ceiling,
        "deadline": deadline.isoformat(),
        "sheet_fields": ["price", "duration_days", "quality", "project_manager", "guarantee"],
        "guarantee": {"required": True, "amount": "50000.00"},
        "window_minutes": 15,
        "method": "benchmark",
        "k_range": ["0.00", "0.05", "0.01"],
        "remedy": "quorum",
        "custodians": custodians,
        "k": 2,
        "record": {"confirm_minutes": 10, "silence": "consent"},
        "max_bid_bytes": 200 * 1024 * 1024,
        "evaluation": evaluation_section(tenderer),
    }


def bid_archive(lot: str, bid: DemoBid, organisation: str, tender: str = TENDER_NUMBER) -> bytes:
    """A demo bid's plaintext: the bid form first, then its documents."""
    form = {
        "format": "bidroom-bid-form",
        "version": 1,
        "lot": lot,
        "price": bid.price,
        "duration_days": bid.duration_days,
        "quality": "合格",
        "project_manager": bid.project_manager,
        "guarantee": {
            "kind": "bank",
            "issuer": "中国银行舟山分行",
            "number": f"BG-2026-{bid.person[-1]}{tender[-4:]}",
            "amount": bid.guarantee,
            "payer": organisation,
        },
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("bid.json", json.dumps(form, ensure_ascii=False, indent=2))
        archive.writestr("price-list.json", json.dumps(price_list(bid), ensure_ascii=False))
        archive.writestr("商务标.txt", f"{organisation}\n投标报价：{bid.price} 元\n")
        # The technical part names no bidder: the committee reviews it anonymously (暗标).
        for name, text in technical_part(bid).items():
            archive.writestr(f"technical/{name}.txt", text)
    return out.getvalue()


def price_list(bid: DemoBid) -> dict[str, Any]:
    """The bid's priced bill (price-list.json, docs/evaluation.md), adding up to its price."""
    lines: list[dict[str, str]] = []
    left = Decimal(bid.price)
    for code, quantity, reference in BILL:
        unit = (Decimal(reference) * Decimal(bid.rate)).quantize(CENT) if reference else left
        total = (Decimal(quantity) * unit).quantize(CENT, ROUND_HALF_UP)
        left -= total
        line = {
            "code": code,
            "quantity": quantity,
            "unit_price": f"{unit}",
            "line_total": f"{total}",
        }
        lines.append(line)
    return {"lines": lines, "stated_total": bid.price}


def technical_part(bid: DemoBid) -> dict[str, str]:
    return {
        "服务方案": "环卫一体化服务方案：道路清扫、垃圾收运、公厕与海滩保洁（演示）\n" * 40,
        "人员配备": f"拟投入作业人员 {bid.crew} 人，项目经理 1 人，安全员 2 人（演示）\n",
        "设备": f"拟投入环卫车辆及设备 {bid.vehicles} 台（套）（演示）\n",
    }


@dataclass(frozen=True, slots=True)
class Opened:
    """The tender opened before the first start: its lot and its evaluation session's room."""

    lot: LotRecord
    evaluation: str


async def seed(
    engine: AsyncEngine,
    settings: Settings,
    now: datetime | None = None,
    opening_in: timedelta = timedelta(minutes=10),
) -> list[str]:
    """Make the demo (once) and return one 'role name link' block per person."""
    now = now or datetime.now(UTC)
    settings.var_dir.chmod(0o700)  # the demo people's keys, the TSA's, the database: ours only
    store = Store(engine)
    folder = pki_folder(settings)
    demo_pki.create(folder, settings.trust_root, now)
    await demo_pki.register(folder, settings.trust_root, store, now)
    write_pool(folder, pool_file(settings.var_dir))
    opened = await _opened(settings, store, TenderStore(engine), now)
    state = _state(engine, settings, store)
    lot = await _published_lot(state.tenders, TENDER_NUMBER) or await _publish(
        state, folder, now + opening_in, now
    )
    return links(settings, lot, opened)


def pool_file(var_dir: Path) -> Path:
    """The demo's expert pool snapshot (its BIDROOM_EXPERT_POOL)."""
    return var_dir / "demo-pki" / POOL_FILE


def expert_pool(folder: Path) -> list[committee.Expert]:
    """The expert database's entries of the demo experts, each under their certificate subject."""
    return [
        committee.Expert(
            id=_subject(folder, person.id),
            name=person.name,
            specialties=frozenset(person.specialties),
            organisation=person.organisation,
            city=person.city or "",
        )
        for person in demo_pki.PEOPLE
        if person.role == "expert"
    ]


def write_pool(folder: Path, path: Path) -> None:
    pool = committee.pool_json(expert_pool(folder))
    path.write_text(json.dumps(pool, ensure_ascii=False, indent=2))


async def _opened(
    settings: Settings, store: Store, tender_store: TenderStore, now: datetime
) -> Opened:
    """The opened tender (its opening run once, through the app in process) and its evaluation
    session (opened once)."""
    lot = await _published_lot(tender_store, OPENED_NUMBER)
    room = None if lot is None else await demo_opening.evaluation_room(store, lot.id)
    if lot is not None and room is not None:
        return Opened(lot, room)
    folder = pki_folder(settings)
    async with demo_opening.platform(settings, folder, now) as platform:
        if lot is None:
            spec = opened_tender_spec(folder, now - OPENED_AGO)
            lot = await demo_opening.run(platform, spec, CHAIR, _opened_bids())
        room = await demo_opening.open_evaluation(platform, lot.id, CHAIR, now)
    return Opened(lot, room)


def _opened_bids() -> list[demo_opening.Bid]:
    def plaintext(bid: DemoBid) -> Callable[[str], bytes]:
        organisation = demo_pki.person(bid.person).organisation
        return lambda lot: bid_archive(lot, bid, organisation, OPENED_NUMBER)

    return [demo_opening.Bid(bid.person, plaintext(bid)) for bid in OPENED_BIDS]


def _state(engine: AsyncEngine, settings: Settings, store: Store) -> SimpleNamespace:
    """What publishing and receiving need, as the app's lifespan would make it."""
    _, stamper = timestamps.open_timestamping(settings)
    log = audit_api.open_log(engine, settings, stamper)
    return SimpleNamespace(
        settings=settings,
        store=store,
        tenders=TenderStore(engine),
        blobs=blobs.BlobStore(blobs.root(settings)),
        audit=log,
        timestamper=stamper,
    )


async def _published_lot(tender_store: TenderStore, number: str) -> LotRecord | None:
    for tender in await tender_store.tenders(published_only=True):
        if tender.number == number:
            [lot] = await tender_store.lots_of(tender.id)
            return lot
    return None


async def _publish(
    state: SimpleNamespace, folder: Path, deadline: datetime, now: datetime
) -> LotRecord:
    chair = _subject(folder, CHAIR)
    spec = tenders.parse_tender(tender_spec(folder, deadline), state.settings.max_bid_bytes)
    record = TenderRecord(
        secrets.token_hex(16),
        spec.number,
        spec.title,
        "draft",
        spec.model_dump(mode="json"),
        chair,
        now,
        None,
        owners.owner(demo_pki.person(CHAIR).organisation, [chair]),
    )
    await state.tenders.create_tender(record, now)
    person = demo_pki.person(CHAIR)
    publisher = tenders.Publisher(chair, person.name, person.organisation)
    await tender_api.publish(state, record, chair, now, publisher)  # type: ignore[arg-type]
    [lot] = await state.tenders.lots_of(record.id)
    await _sign_key(state, folder, record, lot, now)
    [lot] = await state.tenders.lots_of(record.id)
    await _seal_bids(state, folder, lot)
    return lot  # type: ignore[no-any-return]


async def _sign_key(
    state: SimpleNamespace, folder: Path, tender: TenderRecord, lot: LotRecord, now: datetime
) -> None:
    """The chair signs the lot's key statement, as their browser would after publishing."""
    person = demo_pki.person(CHAIR)
    served = tender_api.lot_public(tender.id, lot.spec, lot, tender.owners)
    message = signed.action_message(lot_key.ACTION, lot_key.statement(served))
    key = p.load_private_key((folder / f"{CHAIR}.key.pem").read_bytes())
    body = {
        "certificate": base64.b64encode(demo_pki.certificate_der(folder, CHAIR)).decode(),
        "chain": [base64.b64encode(c).decode() for c in demo_pki.chain_der(folder)],
        "signature": base64.b64encode(p.sign(key, message)).decode(),
    }
    certificate = x509.load_der_x509_certificate(demo_pki.certificate_der(folder, CHAIR))
    who = tokens.Identity(
        tender.created_by,
        person.name,
        ("chair",),
        None,
        person.organisation,
        tokens.bound(certificate),  # as certificate login binds the chair's session
    )
    await tender_api.accept_key_signature(state, lot, who, body, now)  # type: ignore[arg-type]


def _subject(folder: Path, person_id: str) -> str:
    return demo_pki.subject_of(folder, person_id)


async def _seal_bids(state: SimpleNamespace, folder: Path, lot: LotRecord) -> None:
    opening_key = p.load_public_der(lot.opening_key)
    assert isinstance(opening_key, p.EcPublicKey)
    incoming = state.settings.var_dir / "uploads"
    incoming.mkdir(parents=True, exist_ok=True)
    for bid in BIDS:
        person = demo_pki.person(bid.person)
        key = p.load_private_key((folder / f"{bid.person}.key.pem").read_bytes())
        sealer = envelope.Sealer(demo_pki.certificate_der(folder, bid.person), key)
        subject = _subject(folder, bid.person)
        await state.tenders.register(
            lot.id, subject, person.organisation, person.organisation, datetime.now(UTC)
        )
        path = incoming / f"demo-{bid.person}"
        with path.open("wb") as target:
            envelope.seal(
                io.BytesIO(bid_archive(lot.id, bid, person.organisation)),
                target,
                lot=lot.id,
                sealer=sealer,
                opening_key=opening_key,
                client={"tool": "bidroom demo"},
            )
        await uploads.accept(state, lot, path, subject, "127.0.0.1")


def links(settings: Settings, lot: LotRecord, opened: Opened | None = None) -> list[str]:
    """One block per person: who they are and the links that sign them in where they work."""
    lines = [_links_of(settings.base_url, person, lot, opened) for person in demo_pki.PEOPLE]
    lines.append(f"  public     公告 notices: {settings.base_url}/public.html")
    return lines


def _links_of(base: str, person: demo_pki.DemoPerson, lot: LotRecord, opened: Opened | None) -> str:
    sign_in = f"{base}/login.html?demo={person.id}"
    block = [f"  {person.role:<10} {person.name}（{person.organisation}）"]
    if person.role != "expert":
        block.append(f"    开标室 opening: {sign_in}&room={lot.room}")
    if person.role == "bidder":
        bid_page = quote(f"/bid.html?lot={lot.id}", safe="")
        block.append(f"    投标 bid: {sign_in}&next={bid_page}")
    if person.role == "chair":
        block.append(f"    项目 tenders: {sign_in}&next=%2Ftenders.html")
    if opened is not None and person.role != "custodian":
        page = quote(f"/evaluation.html?room={opened.evaluation}", safe="")
        block.append(f"    评标室 evaluation ({OPENED_NUMBER}): {sign_in}&next={page}")
    if person.role == "expert":
        block.append(f"    会场 venue, if drawn: {VENUES[str(person.city)]}（{person.city}）")
    return "\n".join(block)


FORCE_NETWORK = "--i-know-this-serves-private-keys"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (a name other than localhost may
    resolve anywhere: not loopback)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def guard_host(host: str, forced: bool) -> None:
    """The demo hands every demo person's private key to anyone who asks, without login (the
    one-click sign-in): it listens on loopback only, unless the operator says they know."""
    if is_loopback(host):
        return
    if not forced:
        raise ConfigError(
            f"--host {host} would hand every demo person's private key, without login, to "
            f"anyone who reaches it: the demo listens on loopback only (127.0.0.1, ::1, "
            f"localhost); add {FORCE_NETWORK} to serve it on {host} anyway"
        )
    line = "!" * 78
    print(
        f"{line}\nWARNING: the demo on {host} serves EVERY demo person's PRIVATE KEY, without "
        f"login,\nto anyone who can reach this address. Demo data only; never real people.\n{line}",
        file=sys.stderr,
        flush=True,
    )


def pki_folder(settings: Settings) -> Path:
    return settings.var_dir / "demo-pki"


async def people(request: Request) -> Response:
    return JSONResponse(demo_pki.people(request.app.state.demo_dir))


async def person(request: Request) -> Response:
    files = demo_pki.identity_files(request.app.state.demo_dir, request.path_params["id"])
    if files is None:
        return JSONResponse({"code": "not_found", "message": "no such demo person"}, 404)
    return JSONResponse(files)
