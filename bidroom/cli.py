"""The ``bidroom`` command: serve, demo, migrate, token, tender, audit, evaluation recompute, and
the bidder's, custodians' and CA operators' work on files (bid, key, ca). Errors are one line,
never a traceback.

Building the argument tree imports nothing heavy, and each command imports only what it runs
(``run`` names its handler as ``module:function``): `bidroom bid seal` loads the sealing code, not
the server, the evaluation or the media stack. Only the operator's commands (bidroom.cli_operator)
read the ``BIDROOM_*`` settings; the offline and client commands need none.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bidroom.errors import BidroomError, ConfigError, NotFound
from bidroom.roles import ROLES
from ca import command_line
from ca.errors import CryptoError

if TYPE_CHECKING:
    import httpx2 as httpx

DESCRIPTION = (
    "The bidroom command: run a node or the demo, operate it (migrate, token, tender, registry, "
    "audit), recompute an evaluation, and seal, open, verify, upload or withdraw bids, share "
    "opening keys and run CAs. Errors are one line, never a traceback."
)
Handler = Callable[[argparse.Namespace], None]
OPERATOR = "bidroom.cli_operator:run"
# bidroom.tus_client's budget, spelt here so that building the arguments imports no HTTP client.
UPLOAD_RETRY_DEFAULT = "BIDROOM_UPLOAD_RETRY_SECONDS or 300"
DEMO_FORCE_NETWORK = "--i-know-this-serves-private-keys"  # bidroom.demo.FORCE_NETWORK


def handler(run: str | Handler) -> Handler:
    """The function a command runs; a ``module:function`` name is imported only now."""
    if callable(run):
        return run
    module, _, name = run.partition(":")
    found: Handler = getattr(importlib.import_module(module), name)
    return found


def in_range(value: float, name: str, low: float, high: float) -> float:
    """``value`` if it is a finite number from ``low`` to ``high``; else a one-line error
    (code ``invalid_args``): argparse takes -1, nan, inf and 1e300 for an int or a float."""
    if not low <= value <= high:  # nan compares false
        raise ConfigError(f"{name} is a number from {low:g} to {high:g}", code="invalid_args")
    return value


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
    from tqdm import tqdm

    from bidroom import tus_client

    token = _session_token(args)
    if not args.chunk_mib > 0:
        raise ConfigError("--chunk-mib is a positive number", code="usage")
    in_range(args.chunk_mib, "--chunk-mib", 0, 1024)
    if args.retry_for is not None:
        in_range(args.retry_for, "--retry-for", 0, 7 * 24 * 3600)
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
        retry_for=tus_client.retry_budget() if args.retry_for is None else args.retry_for,
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
    import base64

    import httpx2 as httpx

    from bidroom import signed, tus_client
    from ca import commands
    from ca import primitives as p

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
    from bidroom import tus_client

    answer = tus_client.send(client, "GET", url)
    if answer.status_code != 200:
        raise tus_client.refusal(answer)
    for bid in answer.json()["bids"]:
        if bid["status"] == "current" and envelope in (None, bid["envelope_sha256"]):
            return str(bid["envelope_sha256"]), int(bid["version"])
    named = f" with envelope {envelope}" if envelope else ""
    raise NotFound(f"you have no current bid{named} on this lot", code="bid_not_found")


def _add_bid_commands(top: Any) -> None:
    """`bid upload` and `bid withdraw`, next to the offline `bid` commands of ca.commands; `bid
    seal` checks the bid's form first (bidroom.sealing)."""
    group = top.choices["bid"]
    [bid] = [a for a in group._actions if isinstance(a, argparse._SubParsersAction)]
    seal = bid.choices["seal"]
    seal.add_argument(
        "--no-form-check",
        action="store_true",
        help="seal the file as it is: do not check first that it is a bid archive whose form "
        "(bid.json) names this lot and a price above 0.00",
    )
    seal.set_defaults(run="bidroom.sealing:bid_seal")
    up = bid.add_parser("upload", help="upload a sealed bid to a lot (tus; resumes)")
    up.add_argument("envelope", type=Path)
    up.add_argument("--lot", required=True, help="the lot id (<tender id>-<lot number>)")
    up.add_argument("--url", required=True, help="the platform, e.g. https://bidroom.example")
    up.add_argument("--token-file", type=Path, help=f"the session token (else {TOKEN_ENV})")
    up.add_argument(
        "--receipt", type=Path, help="where to write the receipt (ENVELOPE.receipt.json)"
    )
    up.add_argument("--chunk-mib", type=float, default=4.0, help="MiB per PATCH (default 4)")
    up.add_argument(
        "--retry-for",
        type=float,
        metavar="SECONDS",
        help="how long a lost link is waited for without progress "
        f"(default {UPLOAD_RETRY_DEFAULT})",
    )
    up.set_defaults(run=bid_upload)
    out = bid.add_parser("withdraw", help="withdraw your current bid on a lot (signed)")
    out.add_argument("--lot", required=True)
    out.add_argument("--url", required=True)
    out.add_argument("--key", type=Path, required=True, help="your key (PEM or PKCS#12)")
    out.add_argument("--cert", type=Path, help="your certificate (if not in the PKCS#12)")
    out.add_argument("--envelope", help="the bid's SHA-256 (default: your current bid)")
    out.add_argument("--token-file", type=Path, help=f"the session token (else {TOKEN_ENV})")
    out.set_defaults(run=bid_withdraw)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="bidroom", description=DESCRIPTION)
    sub = top.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run a node, configured by BIDROOM_* variables")
    sub.add_parser("migrate", help="apply database migrations")
    demo_cmd = sub.add_parser("demo", help="run the demo on the embedded default (SQLite, ./var)")
    demo_cmd.add_argument("--host", default="127.0.0.1", help="loopback unless forced")
    demo_cmd.add_argument(
        DEMO_FORCE_NETWORK, action="store_true", help="let --host be a network address"
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
    token = sub.add_parser(
        "token", help="mint an unbound session token (it signs nothing: people sign in)"
    )
    token.add_argument("subject")
    token.add_argument("--role", action="append", required=True, choices=sorted(ROLES))
    token.add_argument("--name")
    token.add_argument("--venue")
    token.add_argument("--organisation")
    token.add_argument("--ttl", type=int, help="seconds")
    registry = sub.add_parser("registry", help="which roles certificate holders have")
    actions = registry.add_subparsers(dest="action", required=True)
    grant = actions.add_parser("grant", help="give a holder roles (replaces earlier ones)")
    grant.add_argument("holder", help="uscc:<统一社会信用代码> or cert:<sha256 fingerprint>")
    grant.add_argument("--role", action="append", required=True, choices=sorted(ROLES))
    grant.add_argument("--name", required=True)
    actions.add_parser("list", help="list holders and their roles")
    tender_cmd = sub.add_parser("tender", help="tenders: create a draft, publish it, list them")
    tender_actions = tender_cmd.add_subparsers(dest="action", required=True)
    create = tender_actions.add_parser("create", help="a draft from a JSON file (docs/opening.md)")
    create.add_argument("file", type=Path)
    create.add_argument(
        "--organisation",
        help="the owning organisation (its chairs' certificate O): they alone chair it",
    )
    create.add_argument(
        "--chair",
        action="append",
        default=[],
        help="a chair (registry subject) who may chair it too; repeatable",
    )
    publish = tender_actions.add_parser("publish", help="freeze a draft and open its lots")
    publish.add_argument("id")
    tender_actions.add_parser("list", help="every tender, drafts included")
    audit_cmd = sub.add_parser("audit", help="the audit log: integrate, export, verify, receipts")
    audit_actions = audit_cmd.add_subparsers(dest="action", required=True)
    audit_actions.add_parser("integrate", help="number pending entries and sign a checkpoint")
    export = audit_actions.add_parser(
        "export",
        help="write a bundle to check offline (every entry with its salt: for auditors only)",
    )
    export.add_argument("folder", type=Path)
    check = audit_actions.add_parser(
        "verify", help="check a bundle offline against the log's published key and TSA roots"
    )
    check.add_argument("folder", type=Path)
    check.add_argument(
        "--verifier-key", help="the log's published key (GET /.well-known/bidroom-audit.json)"
    )
    check.add_argument(
        "--tsa-roots",
        type=Path,
        help="PEM roots of the time-stamping authority (GET /.well-known/bidroom-tsa-roots.pem)",
    )
    check.add_argument(
        "--trust-bundle-keys",
        action="store_true",
        help="take the key and roots not given from the bundle itself (proves only that it "
        "agrees with itself; the output says so)",
    )
    receipt = audit_actions.add_parser("receipt", help="the receipt of one entry")
    receipt.add_argument("index", help="the entry's index, a whole number from 0")
    receipt.add_argument("-o", "--output", type=Path, required=True)
    proof = audit_actions.add_parser("check-receipt", help="verify a receipt offline")
    proof.add_argument("receipt", type=Path)
    proof.add_argument("--verifier-key", required=True, help="the log's published key")
    proof.add_argument("--tsa-roots", type=Path, help="PEM roots of the time-stamping authority")
    key_cmd = audit_actions.add_parser("key", help="the log's signing key: create, show, rotate")
    key_actions = key_cmd.add_subparsers(dest="key_action", required=True)
    made = key_actions.add_parser(
        "create", help="a new encrypted key file (BIDROOM_AUDIT_KEY_FILE, its passphrase)"
    )
    made.add_argument(
        "--legacy",
        action="store_true",
        help="store the key an older release derived (BIDROOM_AUDIT_KEY, else the secret key)",
    )
    key_actions.add_parser("show", help="print the verifier key to publish")
    rotate = key_actions.add_parser(
        "rotate", help="hand the log on to a new key: a statement signed by the old and the new"
    )
    rotate.add_argument("--to", type=Path, required=True, help="the new key file (made if new)")
    rotate.add_argument("--origin", help="the new origin (default: the current one)")
    evaluation_cmd = sub.add_parser("evaluation", help="evaluations: recompute a summary")
    evaluation_actions = evaluation_cmd.add_subparsers(dest="action", required=True)
    recompute = evaluation_actions.add_parser(
        "recompute", help="the whole computation from a record, a summary or a room's log"
    )
    recompute.add_argument("file", type=Path)
    recompute.add_argument(
        "--check", type=Path, metavar="SUMMARY.json", help="exit 2 if it differs from this one"
    )
    recompute.set_defaults(run="bidroom.cli_evaluation:evaluation_recompute")
    command_line.register(sub)
    _add_bid_commands(sub)
    return top


def _chosen(args: argparse.Namespace) -> str | Handler:
    """The handler of the command parsed into ``args``; the operator's commands share one."""
    audited = args.command == "ca" and getattr(args, "trust_action", "").startswith("add")
    if "run" not in args or (audited and not args.no_audit):
        return OPERATOR
    run: str | Handler = args.run
    return run


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        handler(_chosen(args))(args)
    except (BidroomError, CryptoError) as exc:
        print(f"bidroom: {exc.message} ({exc.code})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `bidroom ... | head`: the reader is gone; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # exit's flush too
        return 128 + signal.SIGPIPE
    return 0


if __name__ == "__main__":
    sys.exit(main())
