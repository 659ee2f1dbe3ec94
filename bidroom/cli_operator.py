"""The operator's commands (serve, migrate, demo, token, registry, tender, audit, an audited
trust-store change): the ones that read the ``BIDROOM_*`` settings and need the server's stack.
bidroom.cli imports this module only when one of them runs."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import getpass
import json
import logging
import os
import secrets
import socket
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from cryptography import x509
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import State
from tqdm import tqdm

from bidroom import (
    audit,
    audit_api,
    audit_bundle,
    audit_key,
    builtin_tsa,
    db,
    demo,
    demo_pki,
    logs,
    owners,
    receipts,
    tender_api,
    tenders,
    timestamps,
    tokens,
)
from bidroom.app import create_app
from bidroom.audit_log import AuditLog
from bidroom.cli import handler, in_range
from bidroom.errors import BidroomError, ConfigError, NotFound, TenderError
from bidroom.settings import Settings, load_settings
from bidroom.store import Store, close_engine, create_engine
from bidroom.tender_store import TenderRecord, TenderStore
from ca import checkpoint, tsa
from ca import primitives as p
from ca.errors import AuditError
from ca.trust import TrustStore
from signaling.aiortc_backend import discovered_addresses

log = logging.getLogger("bidroom")


def step(number: int, total: int, text: str) -> None:
    print(f"[{number}/{total}] {text}", file=sys.stderr, flush=True)


T = TypeVar("T")


async def _with_engine(settings: Settings, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    engine = create_engine(settings.database_url)
    try:
        return await work(engine)
    finally:
        await close_engine(engine)


def migrate(settings: Settings) -> None:
    _prepare_sqlite(settings.database_url)
    before, after = asyncio.run(_with_engine(settings, db.migrate))
    if before == after:
        print(f"database already at migration {after}", file=sys.stderr)
    else:
        print(f"database migrated from {before or 'empty'} to {after}", file=sys.stderr)


async def _audit_continues(settings: Settings, engine: AsyncEngine) -> None:
    """Refuse to start (one line, before listening) when the log cannot go on under this
    node's key and origin, or its database is older than its witness (bidroom.audit_log)."""
    await audit_api.open_log(engine, settings, None).start()


def _prepare_sqlite(url: str) -> None:
    db.prepare_sqlite(url)  # its folder 0700 if new, the file 0600


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
    settings.require_secrets()
    limit_malloc_arenas()
    asyncio.run(_with_engine(settings, db.ensure_migrated))
    asyncio.run(_with_engine(settings, lambda engine: _audit_continues(settings, engine)))
    if settings.tsa_url is None:  # the built-in TSA opens with its secret, or nothing starts:
        # a one-line refusal here, not a traceback from the app's start (a changed secret)
        builtin_tsa.builtin(
            settings.tsa_folder, datetime.now(UTC), timestamps.key_password(settings)
        )
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
        forwarded_allow_ips=settings.trusted_proxies,  # none by default: X-Forwarded-* ignored
    )
    log.info("listening", extra={"url": settings.base_url, "port": port})
    uvicorn.Server(config).run(sockets=[sock])


M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)
MALLOC_ARENAS = 2


def limit_malloc_arenas() -> None:
    """Hold glibc to two malloc arenas unless ``MALLOC_ARENA_MAX`` says otherwise.

    glibc gives threads arenas of their own as they contend (up to eight per core); the media
    stack's threads (aiortc, PyAV's codecs) then grow a node's memory several-fold without a
    leak (docs/operations.md, "Memory"). The environment variable is read only at process start;
    mallopt applies to every arena made after it, which is all the threads' arenas."""
    if "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, MALLOC_ARENAS)


# The demo's secrets, one a purpose, each made at its first start and kept in its folder (the
# demo is one laptop; a platform keeps its secrets out of var/: docs/operations.md).
DEMO_SECRETS = {
    "secret_key": "secret.key",
    "room_secret": "room-secret.key",
    "report_secret": "report-secret.key",
    "tsa_secret": "tsa-secret.key",
}


def _demo_secret(file: Path) -> str:
    if not file.exists():
        file.write_text(secrets.token_urlsafe(48))
        file.chmod(0o600)
    return file.read_text().strip()


def _demo_settings(args: argparse.Namespace) -> Settings:
    var = Path(args.var).resolve()
    var.mkdir(parents=True, exist_ok=True)
    if (var / "tsa").exists() and not (var / DEMO_SECRETS["tsa_secret"]).exists():
        # a demo folder from before the TSA had a secret of its own: its key does not open with
        # a new one; kept aside (its root.pem verifies the old tokens), a new TSA is made
        aside = var / f"tsa.before-{datetime.now(UTC):%Y%m%dT%H%M%S}"
        (var / "tsa").rename(aside)
        print(f"the demo's built-in TSA now has a secret of its own: old TSA kept in {aside}")
    return load_settings(
        database_url=f"sqlite+aiosqlite:///{var / 'bidroom.db'}",
        redis_url=None,
        **{name: _demo_secret(var / file) for name, file in DEMO_SECRETS.items()},
        audit_key_passphrase=os.environ.get("BIDROOM_AUDIT_KEY_PASSPHRASE")
        or _demo_secret(var / "audit-passphrase"),
        host=args.host,
        port=args.port,
        var_dir=var,
        min_bid_days=0,  # the demo's opening is minutes away, not the law's 20 days
        fix_grace_seconds=3,  # its bids are small: checked in well under a second
        expert_pool=demo.pool_file(var),  # written by the seed: the demo experts
        insider_organisations=list(demo_pki.INSIDERS),  # the custody policy's insiders
        **_demo_media(),
    )


def _demo_media() -> dict[str, Any]:
    """The demo's recorder offers loopback too, so that a browser on the same laptop reaches
    it with no network at all (aioice leaves 127.0.0.1 out); BIDROOM_MEDIA_ADDRESSES wins."""
    if "BIDROOM_MEDIA_ADDRESSES" in os.environ:
        return {}
    return {"media_addresses": [*discovered_addresses(), "127.0.0.1"]}


def run_demo(args: argparse.Namespace) -> None:
    in_range(args.opening_in, "--opening-in", 0, 7 * 24 * 60)  # minutes: at most a week
    in_range(args.port, "--port", 0, 65535)
    demo.guard_host(args.host, args.i_know_this_serves_private_keys)
    step(1, 4, f"preparing {args.var}")
    settings = _demo_settings(args)
    sock = _bind(settings.host, settings.port)
    settings = settings.model_copy(update={"port": sock.getsockname()[1]})
    step(2, 4, "migrating the embedded database (SQLite)")
    migrate(settings)
    step(3, 4, "seeding the demo tender, the demo CA and its people")
    opening_in = timedelta(minutes=args.opening_in)
    links = asyncio.run(
        _with_engine(settings, lambda e: demo.seed(e, settings, opening_in=opening_in))
    )
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
    if args.ttl is not None:
        in_range(args.ttl, "--ttl", 1, 366 * 24 * 3600)  # seconds: a year at most
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


async def tender_command(args: argparse.Namespace, settings: Settings, engine: AsyncEngine) -> None:
    """Tenders on the database directly, as the operator: create (draft), publish, list."""
    await db.ensure_migrated(engine)
    state = State({"settings": settings, "store": Store(engine), "tenders": TenderStore(engine)})
    now, operator = datetime.now(UTC), f"operator:{getpass.getuser()}"
    if args.action == "create":
        spec = tenders.parse_tender(args.file.read_bytes(), settings.max_bid_bytes)
        if not args.organisation and not args.chair:
            raise TenderError(
                "a tender needs its owners: --organisation and/or --chair",
                code="owner_required",
            )
        record = TenderRecord(
            uuid.uuid4().hex,
            spec.number,
            spec.title,
            "draft",
            spec.frozen(),
            operator,
            now,
            None,
            owners.owner(args.organisation, owners.parse_chairs(args.chair)),
        )
        await state.tenders.create_tender(record, now)
        print(record.id)
    elif args.action == "publish":
        tender = await state.tenders.tender(args.id)
        if tender is None:
            raise NotFound(f"no tender {args.id}", code="tender_not_found")
        await tender_api.publish(state, tender, operator, now)
        for lot in await state.tenders.lots_of(tender.id):
            print(f"{lot.id}\t{lot.room}\t{lot.deadline.isoformat()}\t{lot.key_fingerprint}")
        print(
            "each lot takes bids once one of the tender's chairs signs its key in tenders.html "
            "(docs/opening.md 'The signed lot key')",
            file=sys.stderr,
        )
    else:
        for tender in await state.tenders.tenders(published_only=False):
            print(f"{tender.id}\t{tender.status}\t{tender.number}\t{tender.title}")


def audit_command(args: argparse.Namespace, settings: Settings) -> None:
    """`bidroom audit ...`: the offline ones need no database."""
    if args.action == "verify":
        verify_bundle(args)
    elif args.action == "check-receipt":
        check_receipt(args)
    elif args.action == "key" and args.key_action != "rotate":
        audit_key_command(args, settings)
    else:
        asyncio.run(_with_engine(settings, lambda engine: _audit_online(args, settings, engine)))


def _whole(text: str, name: str) -> int:
    """A whole number from 0 given on the command line; else a one-line error."""
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise ConfigError(f"{name} is a whole number from 0, not {text!r}", code="invalid_args")
    return int(text)


async def _audit_online(args: argparse.Namespace, settings: Settings, engine: AsyncEngine) -> None:
    await db.ensure_migrated(engine)
    if args.action == "key":  # rotate
        await _rotate(args, settings, engine)
        return
    signs = args.action == "integrate"
    stamper = timestamps.open_timestamping(settings)[1] if signs else None
    log = audit_api.open_log(engine, settings, stamper, create=signs)
    if args.action == "integrate":
        signed = await log.integrate()
        print(f"checkpoint {signed.size} signed" if signed else "nothing new to integrate")
    elif args.action == "export":
        await _export(log, settings, args.folder)
    elif args.action == "receipt":
        index = _whole(args.index, "the entry's index")
        made = await receipts.make(log, index)
        args.output.write_text(json.dumps(made, ensure_ascii=False, indent=2))
        print(f"receipt of entry {index} written to {args.output}")


def audit_key_command(args: argparse.Namespace, settings: Settings) -> None:
    """`bidroom audit key create|show`: the log's key file, encrypted with its passphrase."""
    origin = audit_api.log_origin(settings)
    if args.key_action == "create":
        seed = os.environ.get("BIDROOM_AUDIT_KEY")
        key = audit_key.legacy(settings, seed) if args.legacy else p.generate_ed25519_key()
        path = audit_key.key_path(settings)
        audit_key.write(path, key, audit_key.passphrase(settings))
        print(f"audit key written to {path} (encrypted); its verifier key:", file=sys.stderr)
    else:
        key = audit_key.load(settings, create=False)
    print(checkpoint.verifier_key(origin, key))


async def _rotate(args: argparse.Namespace, settings: Settings, engine: AsyncEngine) -> None:
    """`bidroom audit key rotate --to FILE`: the log goes on under the key in FILE (made if
    new, with the same passphrase), named ``--origin`` (default: the current origin)."""
    log = audit_api.open_log(engine, settings, None, create=False)
    password = audit_key.passphrase(settings)
    if not args.to.exists():
        audit_key.write(args.to, p.generate_ed25519_key(), password)
    new_key = audit_key.load(settings.model_copy(update={"audit_key_file": args.to}), False)
    origin = args.origin or log.origin
    rotation = await log.rotate(new_key, origin)
    then = f"BIDROOM_AUDIT_KEY_FILE={args.to}"
    if origin != log.origin:
        then += f" and BIDROOM_AUDIT_ORIGIN={origin}"
    print(
        f"rotation signed at checkpoint {rotation.size}: from {rotation.old} to {rotation.new}. "
        f"Now set {then} on every node, restart them, and publish the new key.",
        file=sys.stderr,
    )
    print(rotation.new)


async def _export(log: AuditLog, settings: Settings, folder: Path) -> None:
    latest = await log.latest()
    pems = {
        name: (settings.tsa_folder / source).read_bytes()
        for name, source in (("tsa-roots.pem", "root.pem"), ("tsa-chain.pem", "chain.pem"))
        if (settings.tsa_folder / source).exists()
    }
    if settings.tsa_url is not None and settings.tsa_roots is not None:
        pems = {"tsa-roots.pem": settings.tsa_roots.read_bytes()}  # an external TSA's roots
    with tqdm(
        total=latest.size if latest else 0,
        unit=" entries",
        desc="exporting",
        disable=None,
        file=sys.stderr,
    ) as bar:
        size = await audit_bundle.export(
            log, folder, datetime.now(UTC).isoformat(), bar.update, pems
        )
    print(f"{size} entries and their checkpoints exported to {folder}")


def _roots(path: Path, what: str) -> list[x509.Certificate]:
    """PEM certificates from ``path``; one or more, else a one-line error."""
    try:
        roots = x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise AuditError(
            f"cannot read TSA roots from {what} {path}", code="audit_tsa_roots_missing"
        ) from exc
    return roots


def verify_bundle(args: argparse.Namespace) -> None:
    """`bidroom audit verify DIR --verifier-key K --tsa-roots PEM`: against what the platform
    published. What is not given is taken from the bundle only with --trust-bundle-keys, and
    the output says so."""
    folder: Path = args.folder
    head = audit_bundle.manifest(folder)
    from_bundle = []
    key = args.verifier_key
    if key is None:
        if not args.trust_bundle_keys:
            raise AuditError(
                "give --verifier-key: the log's key as the platform publishes it "
                "(GET /.well-known/bidroom-audit.json), not the bundle's own copy, which proves "
                "nothing (or --trust-bundle-keys to check only that the bundle agrees with itself)",
                code="audit_key_required",
            )
        key = str(head.get("verifier_key", ""))
        from_bundle.append("verifier key")
    roots_file = args.tsa_roots
    if roots_file is None:
        if not args.trust_bundle_keys:
            raise AuditError(
                "give --tsa-roots: the time-stamping authority's root certificates as published "
                "(GET /.well-known/bidroom-tsa-roots.pem), not the bundle's own copy (or "
                "--trust-bundle-keys)",
                code="audit_tsa_roots_required",
            )
        roots_file = folder / "tsa-roots.pem"
        from_bundle.append("TSA roots")
        if not roots_file.exists():
            raise AuditError(
                "the bundle has no tsa-roots.pem: its timestamps cannot be checked",
                code="audit_tsa_roots_missing",
            )
    roots = _roots(roots_file, "the file")
    chain_file = folder / "tsa-chain.pem"  # intermediates: untrusted, they must chain to a root
    chain = _roots(chain_file, "the bundle's") if chain_file.exists() else []

    def check(token: bytes, note: bytes) -> None:
        tsa.verify_token(token, note, roots, intermediates=chain)

    with tqdm(
        total=head.get("size") if isinstance(head.get("size"), int) else None,
        unit=" entries",
        desc="verifying",
        disable=None,
        file=sys.stderr,
    ) as bar:
        report = audit_bundle.verify(folder, check, bar.update, verifier_key=key)
    events = (
        f", {report.events} room events"
        if report.events is not None
        else " (room events not checked: a bundle older than version 3 carries none)"
    )
    print(
        f"verified: {report.entries} entries, {report.checkpoints} checkpoints, "
        f"{report.timestamps} timestamps{events}"
    )
    if len(report.keys) > 1:
        print(f"under keys (rotated): {' -> '.join(report.keys)}")
    if from_bundle:
        print(
            f"WARNING: the {' and the '.join(from_bundle)} came from the bundle itself "
            "(--trust-bundle-keys), not from what the platform published: this shows only that "
            "the bundle agrees with itself"
        )


def check_receipt(args: argparse.Namespace) -> None:
    """`bidroom audit check-receipt FILE --verifier-key K --tsa-roots PEM`."""
    try:
        receipt = json.loads(args.receipt.read_text())
    except (OSError, ValueError) as exc:
        raise AuditError(f"cannot read the receipt {args.receipt}", code="audit_receipt") from exc
    if not isinstance(receipt, dict):
        raise AuditError("not a version-1 or version-2 bidroom receipt", code="audit_receipt")
    if args.tsa_roots is None:
        raise AuditError(
            "give --tsa-roots: the time-stamping authority's roots as published "
            "(GET /.well-known/bidroom-tsa-roots.pem); without them the receipt's time proves "
            "nothing",
            code="audit_tsa_roots_required",
        )
    roots = _roots(args.tsa_roots, "the file")
    proven = receipts.check(receipt, args.verifier_key, roots)
    when = f", timestamped {proven.time.isoformat()}" if proven.time else ""
    print(
        f"entry {proven.entry.index} ({proven.entry.action}) is in the log of size "
        f"{proven.size}{when}"
    )


def record_trust_change(args: argparse.Namespace, settings: Settings) -> None:
    """Change the trust store, then record each change in the audit log (a trust-store change
    is a consequential event); the change stands even if the database cannot be reached."""
    before = len(TrustStore(args.store).changes())
    handler(args.run)(args)
    made = TrustStore(args.store).changes()[before:]
    if not made:
        return
    operator = f"operator:{getpass.getuser()}"
    entries = [
        audit.Entry(
            datetime.now(UTC),
            operator,
            f"trust.{change['action']}",
            objects={"certificate": str(change["fingerprint"])},
        )
        for change in made
    ]

    async def record(engine: AsyncEngine) -> None:
        await db.ensure_migrated(engine)
        await Store(engine).record(entries)

    try:
        asyncio.run(_with_engine(settings, record))
    except BidroomError as exc:
        print(
            f"bidroom: the change was made but not recorded in the audit log: {exc.message} "
            "(record it, or use --no-audit for a folder no platform database records)",
            file=sys.stderr,
        )
        raise SystemExit(3) from exc
    print(f"{len(entries)} change(s) recorded in the audit log")


def run(args: argparse.Namespace) -> None:
    """Read the settings, log as the server does, and run the operator's command ``args``."""
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
    elif args.command == "audit":
        audit_command(args, settings)
    elif args.command == "tender":
        asyncio.run(_with_engine(settings, lambda engine: tender_command(args, settings, engine)))
    elif args.command == "registry":
        asyncio.run(_with_engine(settings, lambda engine: registry(args, engine)))
    else:
        record_trust_change(args, settings)
