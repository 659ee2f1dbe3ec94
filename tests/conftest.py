"""Shared fixtures. Each group below is self-contained; add new groups after the last one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest
from nodes import NODE_SECRETS

# tests/ has no __init__.py: pytest puts this directory on sys.path, so `services` imports.
from services import (
    PostgresService,
    RunningService,
    create_database,
    drop_database,
    start_postgres,
    start_redis,
)

# -- The node's secrets ---------------------------------------------------------------------
# Each purpose has a secret of its own (bidroom.settings.SECRETS, docs/operations.md). The tests
# give the session key (BIDROOM_SECRET_KEY) where they mint tokens with it; the others come from
# the environment set here, which in-process apps read and the nodes and CLIs the tests start
# inherit. A test of a missing secret takes it out of the environment it passes.
for _name, _value in NODE_SECRETS.items():
    os.environ.setdefault(_name, _value)

# -- Redis -----------------------------------------------------------------------------------
# A real server, never a mock: BIDROOM_TEST_REDIS_URL when set, else a throwaway redis-server.
# A test that must restart or kill Redis asks for `redis_server`, which is always throwaway.


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """A throwaway `redis-server` for the whole session; `.restart()` keeps its URL."""
    service = start_redis(tmp_path_factory.mktemp("redis"))
    yield service
    service.close()


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    """URL of the Redis the tests share: BIDROOM_TEST_REDIS_URL, else redis_server's URL."""
    external = os.environ.get("BIDROOM_TEST_REDIS_URL")
    if external:
        return external
    server: RunningService = request.getfixturevalue("redis_server")
    return server.url


# -- PostgreSQL ------------------------------------------------------------------------------
# One server per session (BIDROOM_TEST_DATABASE_URL when set, else a throwaway one) and a fresh
# empty database per test.


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresService]:
    """A throwaway PostgreSQL server for the whole session (initdb + postgres, free port)."""
    service = start_postgres(tmp_path_factory.mktemp("postgres"))
    yield service
    service.close()


@pytest.fixture(scope="session")
def postgres_server_url(request: pytest.FixtureRequest) -> str:
    """URL of an existing database on the session's server, used to create the others."""
    external = os.environ.get("BIDROOM_TEST_DATABASE_URL")
    if external:
        return external
    server: PostgresService = request.getfixturevalue("postgres_server")
    return server.url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """SQLAlchemy async URL of a fresh, empty database for this test alone."""
    url = create_database(postgres_server_url)
    yield url
    if os.environ.get("BIDROOM_TEST_DATABASE_URL"):
        drop_database(postgres_server_url, url)  # a throwaway server goes away whole


# -- The audit log's key ---------------------------------------------------------------------
# Every process the tests start (nodes, the CLI) and every in-process app opens the audit log's
# encrypted key with a passphrase (bidroom.audit_key); by default the whole session shares one
# key file, as a platform's nodes do. A test of the key's own handling sets its own.

_AUDIT_KEY_DIR = tempfile.mkdtemp(prefix="bidroom-audit-key-")
os.environ.setdefault("BIDROOM_AUDIT_KEY_PASSPHRASE", "test audit passphrase " + "y" * 20)
os.environ.setdefault("BIDROOM_AUDIT_KEY_FILE", os.path.join(_AUDIT_KEY_DIR, "log-key.pem"))
