"""The ``bidroom`` command: serve, demo, migrate, token, evaluation recompute. Errors are one line,
never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import base64
import getpass
import json
import logging
import os
import secrets
import socket
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx2 as httpx
import uvicorn
from cryptography import x509
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import State
from tqdm import tqdm

from bidroom import (
    audit,
    audit_api,
    audit_bundle,
    db,
    demo,
    logs,
    receipts,
    scoring,
    signed,
    tender_api,
    tenders,
    timestamps,
    tokens,
    tus_client,
)
from bidroom.app import create_app
from bidroom.audit_log import AuditLog
from bidroom.errors import BidroomError, ConfigError, NotFound
from bidroom.settings import Settings, load_settings
from bidroom.store import Store, create_engine
from bidroom.tender_store import TenderRecord, TenderStore
from ca import commands, tsa
from ca import primitives as p
from ca.errors import CryptoError
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
        await engine.dispose()


def migrate(settings: Settings) -> None:
    _prepare_sqlite(settings.database_url)
    before, after = asyncio.run(_with_engine(settings, db.migrate))
    if before == after:
        print(f"database already at migration {after}", file=sys.stderr)
    else:
        print(f"database migrated from {before or 'empty'} to {after}", file=sys.stderr)


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
        forwarded_allow_ips=settings.trusted_proxies,  # none by default: X-Forwarded-* ignored
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
        min_bid_days=0,  # the demo's opening is minutes away, not the law's 20 days
        fix_grace_seconds=3,  # its bids are small: checked in well under a second
        expert_pool=demo.pool_file(var),  # written by the seed: the demo experts
        **_demo_media(),
    )


def _demo_media() -> dict[str, Any]:
    """The demo's recorder offers loopback too, so that a browser on the same laptop reaches
    it with no network at all (aioice leaves 127.0.0.1 out); BIDROOM_MEDIA_ADDRESSES wins."""
    if "BIDROOM_MEDIA_ADDRESSES" in os.environ:
        return {}
    return {"media_addresses": [*discovered_addresses(), "127.0.0.1"]}


def run_demo(args: argparse.Namespace) -> None:
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
        record = TenderRecord(
            uuid.uuid4().hex, spec.number, spec.title, "draft", spec.frozen(), operator, now, None
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
    else:
        for tender in await state.tenders.tenders(published_only=False):
            print(f"{tender.id}\t{tender.status}\t{tender.number}\t{tender.title}")


def audit_command(args: argparse.Namespace, settings: Settings) -> None:
    """`bidroom audit ...`: the offline ones need no database."""
    if args.action == "verify":
        verify_bundle(args.folder)
    elif args.action == "check-receipt":
        check_receipt(args)
    else:
        asyncio.run(_with_engine(settings, lambda engine: _audit_online(args, settings, engine)))


async def _audit_online(args: argparse.Namespace, settings: Settings, engine: AsyncEngine) -> None:
    await db.ensure_migrated(engine)
    _, stamper = timestamps.open_timestamping(settings)
    log = audit_api.open_log(engine, settings, stamper)
    if args.action == "integrate":
        signed = await log.integrate()
        print(f"checkpoint {signed.size} signed" if signed else "nothing new to integrate")
    elif args.action == "export":
        await _export(log, settings, args.folder)
    elif args.action == "receipt":
        made = await receipts.make(log, args.index)
        args.output.write_text(json.dumps(made, ensure_ascii=False, indent=2))
        print(f"receipt of entry {args.index} written to {args.output}")


async def _export(log: AuditLog, settings: Settings, folder: Path) -> None:
    latest = await log.latest()
    pems = {
        name: (settings.tsa_folder / source).read_bytes()
        for name, source in (("tsa-roots.pem", "root.pem"), ("tsa-chain.pem", "chain.pem"))
        if (settings.tsa_folder / source).exists()
    }
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


def _token_check(folder: Path) -> audit_bundle.TokenCheck | None:
    """How a bundle's timestamps are checked: against the TSA roots it carries, if any."""
    roots_file, chain_file = folder / "tsa-roots.pem", folder / "tsa-chain.pem"
    if not roots_file.exists():
        return None
    roots = x509.load_pem_x509_certificates(roots_file.read_bytes())
    chain = x509.load_pem_x509_certificates(chain_file.read_bytes()) if chain_file.exists() else []

    def check(token: bytes, note: bytes) -> None:
        tsa.verify_token(token, note, roots, intermediates=chain)

    return check


def verify_bundle(folder: Path) -> None:
    head = audit_bundle.manifest(folder)
    check = _token_check(folder)
    with tqdm(
        total=head["size"], unit=" entries", desc="verifying", disable=None, file=sys.stderr
    ) as bar:
        report = audit_bundle.verify(folder, check, bar.update)
    stamped = f", {report.timestamps} timestamps" if check else " (timestamps not checked)"
    print(f"verified: {report.entries} entries, {report.checkpoints} checkpoints{stamped}")


def check_receipt(args: argparse.Namespace) -> None:
    receipt = json.loads(args.receipt.read_text())
    roots = x509.load_pem_x509_certificates(args.tsa_roots.read_bytes()) if args.tsa_roots else None
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
    args.run(args)
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


TOKEN_ENV = "BIDROOM_TOKEN"
MIB = 1 << 20


def _session_token(args: argparse.Namespace) -> str:
    """The session token: from --token-file, else BIDROOM_TOKEN (never the command line).
    Also quiets the HTTP client's request log: a client command's stderr is for its user."""
    for name in ("httpx2", "httpcore", "httpcore2"):
        logging.getLogger(name).setLevel(logging.WARNING)
    token: str
    if args.token_file is not None:
        try:
            token = args.token_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"cannot read {args.token_file}: {exc.strerror}", code="token_missing"
            ) from exc
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise ConfigError(
            f"give your session token in {TOKEN_ENV} or --token-file FILE", code="token_missing"
        )
    return token


def bid_upload(args: argparse.Namespace) -> None:
    """Upload a sealed bid over tus, resuming an interrupted upload of the same envelope."""
    token = _session_token(args)
    if not args.chunk_mib > 0:
        raise ConfigError("--chunk-mib is a positive number", code="usage")
    bar = tqdm(
        total=None,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc="uploading",
        disable=None,
        file=sys.stderr,
    )

    def progress(sent: int, total: int) -> None:
        bar.total = total
        bar.update(sent - bar.n)

    upload = tus_client.Upload(
        args.url,
        args.lot,
        args.envelope,
        token,
        chunk=max(1, int(args.chunk_mib * MIB)),
        progress=progress,
        say=lambda text: tqdm.write(text, file=sys.stderr),
    )
    with bar:
        outcome = upload.run()
    bid = outcome["bid"]
    receipt = bid["receipt"]
    target = args.receipt or args.envelope.with_name(args.envelope.name + ".receipt.json")
    target.write_text(json.dumps(receipt, ensure_ascii=False, indent=2))
    print(
        f"bid version {bid['version']} for lot {args.lot} received at {receipt['received_at']}; "
        f"envelope SHA-256 {receipt['envelope_sha256']}; receipt written to {target}"
    )


def bid_withdraw(args: argparse.Namespace) -> None:
    """Withdraw my current bid (撤回): action bid.withdraw signed with my certificate key."""
    token = _session_token(args)
    key, bundled = commands.load_key(args.key)
    cert = commands.load_certificate(args.cert) if args.cert else bundled
    if cert is None:
        raise ConfigError(
            "give --cert, or a PKCS#12 key file that holds the certificate", code="cert_missing"
        )
    base = args.url.rstrip("/") + f"/api/lots/{args.lot}/bids/mine"
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(headers=headers, timeout=tus_client.TIMEOUT) as client:
        envelope, version = _current_bid(client, base, args.envelope)
        fields = {"lot": args.lot, "envelope": envelope, "version": version}
        signature = p.sign(key, signed.action_message("bid.withdraw", fields))
        body: dict[str, Any] = {
            **fields,
            "certificate": base64.b64encode(cert.public_bytes(p.serialization_der())).decode(),
            "chain": [],  # the platform's trust store holds the intermediates
            "signature": base64.b64encode(signature).decode(),
        }
        answer = tus_client.send(client, "POST", base + "/withdraw", json=body)
    if answer.status_code != 200:
        raise tus_client.refusal(answer)
    bid = answer.json()["bid"]
    print(f"bid version {bid['version']} for lot {args.lot} ({envelope}) is {bid['status']}")


def _current_bid(client: httpx.Client, url: str, envelope: str | None) -> tuple[str, int]:
    """(envelope SHA-256, version) of my current bid, which must be ``envelope`` if given: the
    withdrawal signs both, so that it cannot be replayed against a later identical upload."""
    answer = tus_client.send(client, "GET", url)
    if answer.status_code != 200:
        raise tus_client.refusal(answer)
    for bid in answer.json()["bids"]:
        if bid["status"] == "current" and envelope in (None, bid["envelope_sha256"]):
            return str(bid["envelope_sha256"]), int(bid["version"])
    named = f" with envelope {envelope}" if envelope else ""
    raise NotFound(f"you have no current bid{named} on this lot", code="bid_not_found")


def _add_bid_commands(top: Any) -> None:
    """`bid upload` and `bid withdraw`, next to the offline `bid` commands of ca.commands."""
    group = top.choices["bid"]
    [bid] = [a for a in group._actions if isinstance(a, argparse._SubParsersAction)]
    up = bid.add_parser("upload", help="upload a sealed bid to a lot (tus; resumes)")
    up.add_argument("envelope", type=Path)
    up.add_argument("--lot", required=True, help="the lot id (<tender id>-<lot number>)")
    up.add_argument("--url", required=True, help="the platform, e.g. https://bidroom.example")
    up.add_argument("--token-file", type=Path, help=f"the session token (else {TOKEN_ENV})")
    up.add_argument(
        "--receipt", type=Path, help="where to write the receipt (ENVELOPE.receipt.json)"
    )
    up.add_argument("--chunk-mib", type=float, default=4.0, help="MiB per PATCH (default 4)")
    up.set_defaults(run=bid_upload)
    out = bid.add_parser("withdraw", help="withdraw your current bid on a lot (signed)")
    out.add_argument("--lot", required=True)
    out.add_argument("--url", required=True)
    out.add_argument("--key", type=Path, required=True, help="your key (PEM or PKCS#12)")
    out.add_argument("--cert", type=Path, help="your certificate (if not in the PKCS#12)")
    out.add_argument("--envelope", help="the bid's SHA-256 (default: your current bid)")
    out.add_argument("--token-file", type=Path, help=f"the session token (else {TOKEN_ENV})")
    out.set_defaults(run=bid_withdraw)


def _read_json(path: Path) -> Any:
    """A JSON document, or the events of a JSON-lines log (one event a line)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BidroomError(f"cannot read {path}: {exc.strerror}", code="unreadable") from exc
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError as exc:
        raise BidroomError(f"{path} is not JSON: {exc}", code="record_invalid") from exc


def evaluation_record(data: Any) -> Any:
    """The scoring record in a file: the record itself (bidroom.scoring's format), a summary
    ({record, computation}, the data of ``evaluation.summarised``), or a room's event log (a
    list of events, or {"events": [...]}) whose last ``evaluation.summarised`` holds it."""
    if isinstance(data, dict) and "events" in data:
        data = data["events"]
    if isinstance(data, list):
        summaries = [
            e.get("data") or {}
            for e in data
            if isinstance(e, dict) and e.get("name") == "evaluation.summarised"
        ]
        if not summaries or "record" not in summaries[-1]:
            raise BidroomError("the log holds no summary with a record", code="record_invalid")
        return summaries[-1]["record"]
    if isinstance(data, dict) and data.get("format") != scoring.RECORD_FORMAT and "record" in data:
        return data["record"]
    return data


def _difference(left: Any, right: Any, where: str = "") -> str | None:
    """Where two JSON values first differ (a path like ``ranking[0].bidder``), or None."""
    if isinstance(left, dict) and isinstance(right, dict):
        for key in sorted(set(left) | set(right), key=str):
            if key not in left or key not in right:
                return f"{where}.{key}".lstrip(".")
            found = _difference(left[key], right[key], f"{where}.{key}")
            if found is not None:
                return found.lstrip(".")
        return None
    if isinstance(left, list) and isinstance(right, list):
        if len(left) != len(right):
            return f"{where} (length {len(left)} vs {len(right)})".lstrip(".")
        for n, (a, b) in enumerate(zip(left, right, strict=True)):
            found = _difference(a, b, f"{where}[{n}]")
            if found is not None:
                return found.lstrip(".")
        return None
    return None if left == right else (where.lstrip(".") or "the whole")


def evaluation_recompute(args: argparse.Namespace) -> None:
    """Recompute an evaluation's summary from its record; with --check, compare it."""
    computation = scoring.recompute(evaluation_record(_read_json(args.file)))
    print(json.dumps(computation, ensure_ascii=False, indent=2))
    if args.check is None:
        return
    recorded = _read_json(args.check)
    if isinstance(recorded, dict) and "computation" in recorded:
        recorded = recorded["computation"]  # a summary: {record, computation}
    where = _difference(computation, recorded)
    if where is not None:
        raise BidroomError(
            f"the recomputed summary differs from {args.check} at {where}",
            code="summary_mismatch",
        )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="bidroom", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run a node, configured by BIDROOM_* variables")
    sub.add_parser("migrate", help="apply database migrations")
    demo_cmd = sub.add_parser("demo", help="run the demo on the embedded default (SQLite, ./var)")
    demo_cmd.add_argument("--host", default="127.0.0.1", help="loopback unless forced")
    demo_cmd.add_argument(
        demo.FORCE_NETWORK, action="store_true", help="let --host be a network address"
    )
    demo_cmd.add_argument("--port", type=int, default=8000)
    demo_cmd.add_argument("--var", default="./var", help="where the demo keeps its data")
    demo_cmd.add_argument(
        "--opening-in",
        type=float,
        default=10.0,
        metavar="MINUTES",
        help="minutes from the first start to the demo lot's deadline = opening (default 10)",
    )
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
    tender_cmd = sub.add_parser("tender", help="tenders: create a draft, publish it, list them")
    tender_actions = tender_cmd.add_subparsers(dest="action", required=True)
    create = tender_actions.add_parser("create", help="a draft from a JSON file (docs/opening.md)")
    create.add_argument("file", type=Path)
    publish = tender_actions.add_parser("publish", help="freeze a draft and open its lots")
    publish.add_argument("id")
    tender_actions.add_parser("list", help="every tender, drafts included")
    audit_cmd = sub.add_parser("audit", help="the audit log: integrate, export, verify, receipts")
    audit_actions = audit_cmd.add_subparsers(dest="action", required=True)
    audit_actions.add_parser("integrate", help="number pending entries and sign a checkpoint")
    export = audit_actions.add_parser("export", help="write a bundle to check offline")
    export.add_argument("folder", type=Path)
    check = audit_actions.add_parser("verify", help="check a bundle offline")
    check.add_argument("folder", type=Path)
    receipt = audit_actions.add_parser("receipt", help="the receipt of one entry")
    receipt.add_argument("index", type=int)
    receipt.add_argument("-o", "--output", type=Path, required=True)
    proof = audit_actions.add_parser("check-receipt", help="verify a receipt offline")
    proof.add_argument("receipt", type=Path)
    proof.add_argument("--verifier-key", required=True, help="the log's published key")
    proof.add_argument("--tsa-roots", type=Path, help="PEM roots of the time-stamping authority")
    evaluation_cmd = sub.add_parser("evaluation", help="evaluations: recompute a summary")
    evaluation_actions = evaluation_cmd.add_subparsers(dest="action", required=True)
    recompute = evaluation_actions.add_parser(
        "recompute", help="the whole computation from a record, a summary or a room's log"
    )
    recompute.add_argument("file", type=Path)
    recompute.add_argument(
        "--check", type=Path, metavar="SUMMARY.json", help="exit 2 if it differs from this one"
    )
    recompute.set_defaults(run=evaluation_recompute)
    commands.register(sub)
    _add_bid_commands(sub)
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
        elif args.command == "audit":
            audit_command(args, settings)
        elif args.command == "tender":
            asyncio.run(
                _with_engine(settings, lambda engine: tender_command(args, settings, engine))
            )
        elif args.command == "registry":
            asyncio.run(_with_engine(settings, lambda engine: registry(args, engine)))
        elif (
            args.command == "ca"
            and getattr(args, "trust_action", "").startswith("add")
            and (not args.no_audit)
        ):
            record_trust_change(args, settings)
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
