"""The ``bidroom`` command: serve, demo, migrate, token. Errors are one line, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import uvicorn
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bidroom import db, demo, logs, tokens
from bidroom.app import create_app
from bidroom.errors import BidroomError, ConfigError
from bidroom.settings import Settings, load_settings
from bidroom.store import Store, create_engine
from ca import commands
from ca.errors import CryptoError

log = logging.getLogger("bidroom")


def step(number: int, total: int, text: str) -> None:
    print(f"[{number}/{total}] {text}", file=sys.stderr, flush=True)


T = TypeVar("T")


async def _with_engine(settings: Settings, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    engine = create_engine(settings.database_url)
    try:
        return await work(engine)
    finally:
        await engine.dispose()


def migrate(settings: Settings) -> None:
    _prepare_sqlite(settings.database_url)
    before, after = asyncio.run(_with_engine(settings, db.migrate))
    if before == after:
        print(f"database already at migration {after}", file=sys.stderr)
    else:
        print(f"database migrated from {before or 'empty'} to {after}", file=sys.stderr)


def _prepare_sqlite(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(
    settings: Settings, sock: socket.socket | None = None, demo_dir: Path | None = None
) -> None:
    """Run one node until interrupted. Refuses to start on an unmigrated database."""
    if settings.secret_key is None:
        raise ConfigError("BIDROOM_SECRET_KEY is not set (32 or more random characters)")
    asyncio.run(_with_engine(settings, db.ensure_migrated))
    sock = sock or _bind(settings.host, settings.port)
    port = sock.getsockname()[1]
    settings = settings.model_copy(update={"port": port})
    config = uvicorn.Config(
        create_app(settings, demo_dir),
        log_config=None,
        lifespan="on",
        ws="websockets-sansio",
        ws_max_size=4 * settings.max_frame_bytes,
        ws_per_message_deflate=False,
        ws_ping_interval=None,
        timeout_graceful_shutdown=5,
        proxy_headers=True,
    )
    log.info("listening", extra={"url": settings.base_url, "port": port})
    uvicorn.Server(config).run(sockets=[sock])


def _demo_settings(args: argparse.Namespace) -> Settings:
    var = Path(args.var).resolve()
    var.mkdir(parents=True, exist_ok=True)
    key_file = var / "secret.key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(48))
        key_file.chmod(0o600)
    return load_settings(
        database_url=f"sqlite+aiosqlite:///{var / 'bidroom.db'}",
        redis_url=None,
        secret_key=key_file.read_text().strip(),
        host=args.host,
        port=args.port,
        var_dir=var,
    )


def run_demo(args: argparse.Namespace) -> None:
    step(1, 4, f"preparing {args.var}")
    settings = _demo_settings(args)
    sock = _bind(settings.host, settings.port)
    settings = settings.model_copy(update={"port": sock.getsockname()[1]})
    step(2, 4, "migrating the embedded database (SQLite)")
    migrate(settings)
    step(3, 4, "seeding the demo tender, the demo CA and its people")
    links = asyncio.run(_with_engine(settings, lambda e: demo.seed(e, settings)))
    step(4, 4, f"starting bidroom on {settings.base_url}")
    print(
        "\n演示入口 / demo sign-in (one per person; one click signs in with the demo key):",
        file=sys.stderr,
    )
    for line in links:
        print(line, file=sys.stderr)
    print(file=sys.stderr, flush=True)
    serve(settings, sock, demo.pki_folder(settings))


def mint_token(args: argparse.Namespace, settings: Settings) -> None:
    if settings.secret_key is None:
        raise ConfigError("BIDROOM_SECRET_KEY is not set")
    identity = tokens.Identity(
        args.subject, args.name or args.subject, tuple(args.role), args.venue, args.organisation
    )
    ttl = timedelta(seconds=args.ttl or settings.token_ttl_seconds)
    print(tokens.mint(identity, settings.secret_key.get_secret_value(), datetime.now(UTC), ttl))


async def registry(args: argparse.Namespace, engine: AsyncEngine) -> None:
    """The platform's registry: the certificate says who; the registry says which roles."""
    await db.ensure_migrated(engine)
    store = Store(engine)
    if args.action == "grant":
        if not args.holder.startswith(("uscc:", "cert:")):
            raise ConfigError("a holder is uscc:<code> or cert:<fingerprint>")
        await store.grant(args.holder, args.name, args.role, datetime.now(UTC))
        print(f"{args.holder} ({args.name}): {', '.join(sorted(set(args.role)))}")
        return
    for holder, name, roles in await store.holders():
        print(f"{holder}\t{name}\t{','.join(roles)}")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="bidroom", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run a node, configured by BIDROOM_* variables")
    sub.add_parser("migrate", help="apply database migrations")
    demo_cmd = sub.add_parser("demo", help="run the demo on the embedded default (SQLite, ./var)")
    demo_cmd.add_argument("--host", default="127.0.0.1")
    demo_cmd.add_argument("--port", type=int, default=8000)
    demo_cmd.add_argument("--var", default="./var", help="where the demo keeps its data")
    token = sub.add_parser("token", help="mint a session token (until certificate login lands)")
    token.add_argument("subject")
    token.add_argument("--role", action="append", required=True, choices=sorted(tokens.ROLES))
    token.add_argument("--name")
    token.add_argument("--venue")
    token.add_argument("--organisation")
    token.add_argument("--ttl", type=int, help="seconds")
    registry = sub.add_parser("registry", help="which roles certificate holders have")
    actions = registry.add_subparsers(dest="action", required=True)
    grant = actions.add_parser("grant", help="give a holder roles (replaces earlier ones)")
    grant.add_argument("holder", help="uscc:<统一社会信用代码> or cert:<sha256 fingerprint>")
    grant.add_argument("--role", action="append", required=True, choices=sorted(tokens.ROLES))
    grant.add_argument("--name", required=True)
    actions.add_parser("list", help="list holders and their roles")
    commands.register(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings()
        logs.configure(settings.log_level, settings.node_id)
        if args.command == "serve":
            serve(settings)
        elif args.command == "migrate":
            migrate(settings)
        elif args.command == "demo":
            run_demo(args)
        elif args.command == "token":
            mint_token(args, settings)
        elif args.command == "registry":
            asyncio.run(_with_engine(settings, lambda engine: registry(args, engine)))
        else:
            args.run(args)
    except (BidroomError, CryptoError) as exc:
        print(f"bidroom: {exc.message} ({exc.code})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
