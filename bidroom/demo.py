"""The demo tender (the island sanitation project) and one sign-in link per demo person.

The people sign in with certificates of a demo CA (bidroom.demo_pki); the demo, and only the
demo, serves their keys to the login page so that a newcomer can sign in with one click.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bidroom import demo_pki
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


async def seed(engine: AsyncEngine, settings: Settings, now: datetime | None = None) -> list[str]:
    """Create the demo room, the demo CA and people if missing; one 'role name link' per person.

    Each link opens the login page, which signs in with that person's demo key in one click.
    """
    now = now or datetime.now(UTC)
    store = Store(engine)
    if await store.room(ROOM_ID) is None:
        starts = (now + timedelta(minutes=5)).isoformat()
        config = {**CONFIG, "starts_at": starts}
        await store.create_room(RoomRecord(ROOM_ID, "meeting", TITLE, config, now))
    folder = pki_folder(settings)
    demo_pki.create(folder, settings.trust_root, now)
    await demo_pki.register(folder, settings.trust_root, store, now)
    return [
        f"  {person.role:<10} {person.name}（{person.organisation}）\n"
        f"    {settings.base_url}/login.html?demo={person.id}&room={ROOM_ID}"
        for person in demo_pki.PEOPLE
    ]


def pki_folder(settings: Settings) -> Path:
    return settings.var_dir / "demo-pki"


async def people(request: Request) -> Response:
    return JSONResponse(demo_pki.people(request.app.state.demo_dir))


async def person(request: Request) -> Response:
    files = demo_pki.identity_files(request.app.state.demo_dir, request.path_params["id"])
    if files is None:
        return JSONResponse({"code": "not_found", "message": "no such demo person"}, 404)
    return JSONResponse(files)
