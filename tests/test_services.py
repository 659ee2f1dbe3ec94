"""The service fixtures give real Redis and PostgreSQL servers, restartable and isolated."""

from __future__ import annotations

import asyncpg
import pytest
import redis.asyncio as aioredis
from services import RunningService, asyncpg_dsn, create_database, drop_database

pytestmark = pytest.mark.services


async def test_redis_url_stores_and_returns_a_value(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.set("bidroom:test:greeting", "开标")
        assert await client.get("bidroom:test:greeting") == "开标".encode()
    finally:
        await client.aclose()


async def test_redis_restart_keeps_the_same_url_working(redis_server: RunningService) -> None:
    url_before = redis_server.url
    before = aioredis.Redis.from_url(url_before)
    try:
        await before.set("bidroom:test:before-restart", "1")
    finally:
        await before.aclose()
    redis_server.restart()
    assert redis_server.url == url_before
    after = aioredis.Redis.from_url(url_before)
    try:
        # Nothing is persisted: the restarted server is empty but answers on the same URL.
        assert await after.get("bidroom:test:before-restart") is None
        await after.set("bidroom:test:after-restart", "2")
        assert await after.get("bidroom:test:after-restart") == b"2"
    finally:
        await after.aclose()


async def test_redis_comes_back_after_a_crash(redis_server: RunningService) -> None:
    redis_server.kill()
    assert not redis_server.running
    redis_server.start()
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        assert await client.ping()
    finally:
        await client.aclose()


async def test_postgres_url_answers_select_version(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+asyncpg://")
    connection = await asyncpg.connect(asyncpg_dsn(postgres_url))
    try:
        assert (await connection.fetchval("select version()")).startswith("PostgreSQL")
        assert await connection.fetchval("select current_database()") != "bidroom"
    finally:
        await connection.close()


async def _tables_in(url: str) -> set[str]:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await connection.fetch("select tablename from pg_tables where schemaname='public'")
        return {row["tablename"] for row in rows}
    finally:
        await connection.close()


async def _create_table(url: str, name: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute(f"create table {name} (id int primary key)")
    finally:
        await connection.close()


_seen_databases: list[str] = []


@pytest.mark.parametrize("run", [1, 2])
async def test_each_test_gets_a_fresh_empty_database(postgres_url: str, run: int) -> None:
    assert postgres_url not in _seen_databases
    _seen_databases.append(postgres_url)
    assert await _tables_in(postgres_url) == set()
    await _create_table(postgres_url, f"left_by_run_{run}")


async def test_two_created_databases_are_distinct(postgres_url: str) -> None:
    other_url = create_database(postgres_url)
    try:
        assert other_url != postgres_url
        await _create_table(postgres_url, "only_here")
        assert await _tables_in(postgres_url) == {"only_here"}
        assert await _tables_in(other_url) == set()
    finally:
        drop_database(postgres_url, other_url)
