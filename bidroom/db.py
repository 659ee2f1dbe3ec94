"""Schema migrations (Alembic) and the check that keeps ``serve`` off an unmigrated database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from bidroom.errors import NotMigrated, StoreError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Any = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "bidroom ships at least one migration"
    return head


async def current_revision(engine: AsyncEngine) -> str | None:
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"cannot reach the database: {_reason(exc)}") from exc


async def migrate(engine: AsyncEngine) -> tuple[str | None, str]:
    """Apply every pending migration; returns (revision before, revision after)."""
    before = await current_revision(engine)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "head"))
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"migration failed: {_reason(exc)}") from exc
    return before, head_revision()


async def ensure_migrated(engine: AsyncEngine) -> None:
    current, head = await current_revision(engine), head_revision()
    if current != head:
        raise NotMigrated(
            f"the database is at migration {current or 'none'}, this bidroom needs {head}: "
            "run `bidroom migrate` first"
        )


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
