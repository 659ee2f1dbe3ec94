"""The demo: the island sanitation tender, published, with three sealed bids, and one sign-in
link per demo person, so that a newcomer can walk a whole opening alone.

What the seed makes (once; a restart keeps everything and the opening continues):
- the demo CA and its people (bidroom.demo_pki): a chair, three bidders, a supervisor and three
  key custodians, each with a role in the registry;
- tender ZJ-ZS-2026-0417, lot 1, published by the chair: the opening is ``opening_in`` after
  the start, the lot's opening key split 2-of-3 among the custodians, K drawn live from 0-5 %;
- a bid from each bidder, sealed with their demo key and received like any upload (trusted
  time, checks, audit receipt). A bidder may seal a new version in the browser before the
  deadline; it replaces the demo's.

The people sign in with certificates of the demo CA; the demo, and only the demo, serves their
keys to the login page (one click per person).
"""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bidroom import audit_api, blobs, demo_pki, tender_api, tenders, timestamps, uploads
from bidroom.settings import Settings
from bidroom.store import Store
from bidroom.tender_store import LotRecord, TenderRecord, TenderStore
from ca import envelope
from ca import primitives as p

TENDER_NUMBER = "ZJ-ZS-2026-0417"
TENDER_TITLE = "六横岛环卫一体化服务项目"
CHAIR = "chair"


@dataclass(frozen=True, slots=True)
class DemoBid:
    person: str
    price: str
    duration_days: int
    project_manager: str
    guarantee: str  # amount offered; the lot requires 50000.00


BIDS = (
    DemoBid("bidder-1", "3650000.00", 365, "张海涛", "50000.00"),
    DemoBid("bidder-2", "3712500.00", 360, "刘晓燕", "30000.00"),  # short: the check shows it
    DemoBid("bidder-3", "3598000.00", 365, "黄志明", "50000.00"),
)


def tender_spec(folder: Path, deadline: datetime) -> dict[str, Any]:
    custodians = [
        (folder / f"{person.id}.crt.pem").read_text()
        for person in demo_pki.PEOPLE
        if person.role == "custodian"
    ]
    # The lot's evaluation, frozen at publication (K excepted: the opening draws it): price 50
    # points by benchmark deviation, three subjective technical items, one objective item.
    evaluation: dict[str, Any] = {
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
            {"venue": "舟山主会场", "seats": 3},
            {"venue": "普陀分会场", "seats": 1},
            {"venue": "岱山分会场", "seats": 1},
        ],
        "signing_minutes": 60,
    }
    return {
        "number": TENDER_NUMBER,
        "title": TENDER_TITLE,
        "lots": [
            {
                "number": "1",
                "title": "第1标段（六横镇）",
                "ceiling_price": "3800000.00",
                "deadline": deadline.isoformat(),
                "sheet_fields": [
                    "price",
                    "duration_days",
                    "quality",
                    "project_manager",
                    "guarantee",
                ],
                "guarantee": {"required": True, "amount": "50000.00"},
                "window_minutes": 15,
                "method": "benchmark",
                "k_range": ["0.00", "0.05", "0.01"],
                "remedy": "quorum",
                "custodians": custodians,
                "k": 2,
                "record": {"confirm_minutes": 10, "silence": "consent"},
                "max_bid_bytes": 200 * 1024 * 1024,
                "evaluation": evaluation,
            }
        ],
    }


def bid_archive(lot: str, bid: DemoBid, organisation: str) -> bytes:
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
            "number": f"BG-2026-{bid.person[-1]}0417",
            "amount": bid.guarantee,
            "payer": organisation,
        },
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("bid.json", json.dumps(form, ensure_ascii=False, indent=2))
        archive.writestr("商务标.txt", f"{organisation}\n投标报价：{bid.price} 元\n")
        archive.writestr("技术标.txt", "环卫一体化服务方案（演示）\n" * 200)
    return out.getvalue()


async def seed(
    engine: AsyncEngine,
    settings: Settings,
    now: datetime | None = None,
    opening_in: timedelta = timedelta(minutes=10),
) -> list[str]:
    """Make the demo (once) and return one 'role name link' block per person."""
    now = now or datetime.now(UTC)
    store = Store(engine)
    folder = pki_folder(settings)
    demo_pki.create(folder, settings.trust_root, now)
    await demo_pki.register(folder, settings.trust_root, store, now)
    state = _state(engine, settings, store)
    lot = await _published_lot(state) or await _publish(state, folder, now + opening_in, now)
    return links(settings, lot)


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


async def _published_lot(state: SimpleNamespace) -> LotRecord | None:
    for tender in await state.tenders.tenders(published_only=True):
        if tender.number == TENDER_NUMBER:
            [lot] = await state.tenders.lots_of(tender.id)
            return lot  # type: ignore[no-any-return]
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
    )
    await state.tenders.create_tender(record, now)
    await tender_api.publish(state, record, chair, now)  # type: ignore[arg-type]
    [lot] = await state.tenders.lots_of(record.id)
    await _seal_bids(state, folder, lot)
    return lot  # type: ignore[no-any-return]


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


def links(settings: Settings, lot: LotRecord) -> list[str]:
    """One block per person: who they are and the link that signs them in where they work."""
    base = settings.base_url
    lines = []
    for person in demo_pki.PEOPLE:
        room = f"{base}/login.html?demo={person.id}&room={lot.room}"
        who = f"  {person.role:<10} {person.name}（{person.organisation}）"
        block = f"{who}\n    开标室 opening: {room}"
        if person.role == "bidder":
            bid_page = quote(f"/bid.html?lot={lot.id}", safe="")
            block += f"\n    投标 bid: {base}/login.html?demo={person.id}&next={bid_page}"
        if person.role == "chair":
            block += f"\n    项目 tenders: {base}/login.html?demo={person.id}&next=%2Ftenders.html"
        lines.append(block)
    lines.append(f"  public     公告 notices: {base}/public.html")
    return lines


def pki_folder(settings: Settings) -> Path:
    return settings.var_dir / "demo-pki"


async def people(request: Request) -> Response:
    return JSONResponse(demo_pki.people(request.app.state.demo_dir))


async def person(request: Request) -> Response:
    files = demo_pki.identity_files(request.app.state.demo_dir, request.path_params["id"])
    if files is None:
        return JSONResponse({"code": "not_found", "message": "no such demo person"}, 404)
    return JSONResponse(files)
