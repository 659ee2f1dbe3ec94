"""The demo tender (the island sanitation project) and one sign-in link per role.

Until certificate login lands, the links carry session tokens minted by bidroom.tokens.mint,
in the URL fragment (never sent to the server, never in its access log).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from bidroom import tokens
from bidroom.settings import Settings
from bidroom.store import RoomRecord, Store

ROOM_ID = "demo-liuheng-sanitation-lot1"
TITLE = "六横岛环卫一体化服务项目 第1标段 开标会"
CONFIG = {
    "title": TITLE,
    "roles": ["chair", "bidder", "supervisor", "public"],
    "tender": "ZJ-ZS-2026-0417",
    "lot": "1",
}

PEOPLE = (
    tokens.Identity("demo-chair", "王敏（主持人）", ("chair",), "主场", "舟山市公共资源交易中心"),
    tokens.Identity(
        "demo-bidder-1", "李海（投标人）", ("bidder",), None, "六横海洁环境服务有限公司"
    ),
    tokens.Identity(
        "demo-bidder-2", "陈静（投标人）", ("bidder",), None, "东港城市服务集团有限公司"
    ),
    tokens.Identity(
        "demo-bidder-3", "周涛（投标人）", ("bidder",), None, "普陀绿源环卫工程有限公司"
    ),
    tokens.Identity("demo-supervisor", "赵磊（监督人）", ("supervisor",), None, "舟山市财政局"),
)


async def seed(engine: AsyncEngine, settings: Settings, now: datetime | None = None) -> list[str]:
    """Create the demo room if it is missing; return one 'role  name  link' line per person."""
    now = now or datetime.now(UTC)
    store = Store(engine)
    if await store.room(ROOM_ID) is None:
        starts = (now + timedelta(minutes=5)).isoformat()
        config = {**CONFIG, "starts_at": starts}
        await store.create_room(RoomRecord(ROOM_ID, "meeting", TITLE, config, now))
    assert settings.secret_key is not None
    key = settings.secret_key.get_secret_value()
    lines = []
    for person in PEOPLE:
        token = tokens.mint(person, key, now, timedelta(hours=12))
        link = f"{settings.base_url}/room.html?room={ROOM_ID}#token={token}"
        lines.append(f"  {person.roles[0]:<10} {person.name}\n    {link}")
    return lines
