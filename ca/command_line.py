"""The argument tree of `bidroom bid|key|ca ...` (ca.commands runs them).

Building it imports nothing but argparse: `bidroom --help` and every other command build the whole
tree, and the handlers (cryptography, the CA, the envelope) are imported only when one runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

# x509.ReasonFlags' values that a revocation may give (tests/ca/test_commands.py checks them)
REVOCATION_REASONS = [
    "keyCompromise",
    "cACompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "certificateHold",
    "privilegeWithdrawn",
    "aACompromise",
]


def register(sub: Any) -> None:
    """Add the `bid`, `key` and `ca` command groups to bidroom's argument parser."""
    bid = sub.add_parser("bid", help="seal, open and verify bids (offline)").add_subparsers(
        dest="action", required=True
    )
    seal = bid.add_parser("seal", help="seal a bid file for a lot")
    seal.add_argument("bid", type=Path)
    seal.add_argument("--lot", required=True, help="the lot's id")
    seal.add_argument("--key", type=Path, required=True, help="your key (PEM or PKCS#12)")
    seal.add_argument("--cert", type=Path, help="your certificate (if not in the PKCS#12)")
    target = seal.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--lot-file",
        type=Path,
        help="the lot as the platform serves it (GET /api/lots/LOT): its key is sealed to only "
        "if the tender's chair signed it, checked against --trust",
    )
    target.add_argument(
        "--opening-key", type=Path, help="a bare opening key (unchecked: prefer --lot-file)"
    )
    seal.add_argument(
        "--trust", type=Path, help="your own trust store's folder (`bidroom ca trust add-root`)"
    )
    seal.add_argument(
        "--owner",
        action="append",
        default=[],
        help="with --lot-file: the tenderer (or its agency) as the published notice names it, "
        "an organisation's name or uscc:<code>; repeat for each; the key's signer must be one",
    )
    seal.add_argument("-o", "--output", type=Path, required=True)
    seal.set_defaults(run="ca.commands:bid_seal")
    opener = bid.add_parser("open", help="open a sealed bid with your key")
    opener.add_argument("envelope", type=Path)
    opener.add_argument("--key", type=Path, required=True)
    opener.add_argument("-o", "--output", type=Path, required=True)
    opener.set_defaults(run="ca.commands:bid_open")
    check = bid.add_parser("verify", help="check a sealed bid's integrity and signer, no key")
    check.add_argument("envelope", type=Path)
    check.set_defaults(run="ca.commands:bid_verify")

    key = sub.add_parser("key", help="opening-key shares for custodians").add_subparsers(
        dest="action", required=True
    )
    split = key.add_parser("share", help="split an opening key k-of-n among custodians")
    split.add_argument("key", type=Path)
    split.add_argument("-k", type=int, required=True)
    split.add_argument("--custodian", action="append", required=True, help="NAME=CERTIFICATE")
    split.add_argument("--lot", required=True)
    split.add_argument("-o", "--output", type=Path, required=True)
    split.set_defaults(run="ca.key_commands:key_share")
    mine = key.add_parser("open", help="open your share file with your key")
    mine.add_argument("share_file", type=Path)
    mine.add_argument("--key", type=Path, required=True)
    mine.add_argument("-o", "--output", type=Path, required=True)
    mine.set_defaults(run="ca.key_commands:key_open")
    join = key.add_parser("combine", help="rebuild an opening key from k opened shares")
    join.add_argument("shares", type=Path, nargs="+")
    join.add_argument("--commitments", type=Path, required=True)
    join.add_argument("--public-key", type=Path, required=True)
    join.add_argument("-o", "--output", type=Path, required=True)
    join.set_defaults(run="ca.key_commands:key_combine")

    _register_ca(sub)


def _register_ca(sub: Any) -> None:
    """The `ca` command group: run CAs kept in folders, and keep the trust store."""
    ca = sub.add_parser(
        "ca", help="certificate authorities (roots, intermediates, issuing, CRLs), trust store"
    ).add_subparsers(dest="action", required=True)

    def new_ca(name: str, help: str) -> argparse.ArgumentParser:
        cmd: argparse.ArgumentParser = ca.add_parser(name, help=help)
        cmd.add_argument("name", help="the CA's name (the CN of its certificate)")
        cmd.add_argument("--kind", choices=["ec", "rsa"], default="ec", help="key kind (ec)")
        cmd.add_argument("--dir", type=Path, required=True, help="the new CA's folder")
        cmd.add_argument("--crl-url", help="where its CRL is published (put in what it issues)")
        cmd.add_argument(
            "--unprotected",
            action="store_true",
            help="demo only: store the CA key unencrypted",
        )
        return cmd

    new_ca("init-root", "create a self-signed root CA in a folder").set_defaults(
        run="ca.ca_commands:ca_init_root"
    )
    inter = new_ca("init-intermediate", "create an issuing CA under a parent CA")
    inter.add_argument("--parent", type=Path, required=True, help="the parent CA's folder")
    inter.set_defaults(run="ca.ca_commands:ca_init_intermediate")

    issue = ca.add_parser("issue", help="issue a holder certificate (from a CSR or a new key)")
    issue.add_argument("--ca", type=Path, required=True, help="the issuing CA's folder")
    issue.add_argument("--name", required=True, help="the holder's name (CN), as vetted")
    issue.add_argument("--org", help="the organisation (O)")
    issue.add_argument("--uscc", help="the organisation's unified social credit code")
    source = issue.add_mutually_exclusive_group(required=True)
    source.add_argument("--csr", type=Path, help="certify the key of this CSR (PEM or DER)")
    source.add_argument("--out-p12", type=Path, help="generate a key; write it as PKCS#12")
    source.add_argument("--out-key", type=Path, help="generate a key; write it as PKCS#8 PEM")
    issue.add_argument("--kind", choices=["ec", "rsa"], default="ec", help="generated key kind")
    issue.add_argument("--out-cert", type=Path, required=True, help="the certificate (PEM)")
    issue.set_defaults(run="ca.ca_commands:ca_issue")

    revoke = ca.add_parser("revoke", help="put a certificate on the CA's revocation list")
    revoke.add_argument("--ca", type=Path, required=True)
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("certificate", type=Path, nargs="?", help="the certificate file")
    which.add_argument("--serial", help="its serial number (hex, as `issue` printed it)")
    revoke.add_argument("--reason", choices=REVOCATION_REASONS, default="unspecified")
    revoke.set_defaults(run="ca.ca_commands:ca_revoke")

    crl = ca.add_parser("crl", help="publish a fresh CRL into the CA's folder")
    crl.add_argument("--ca", type=Path, required=True)
    crl.set_defaults(run="ca.ca_commands:ca_crl")

    store = ca.add_parser("trust", help="the trust store: recognised CAs and their CRLs")
    actions = store.add_subparsers(dest="trust_action", required=True)
    for action, help in (
        ("add-root", "recognise a root CA (a PEM file may hold several)"),
        ("add-intermediate", "offer an issuing CA for path building"),
        ("add-crl", "keep a CRL (DER or PEM)"),
    ):
        add = actions.add_parser(action, help=help)
        add.add_argument("file", type=Path)
        add.add_argument("--store", type=Path, required=True, help="the trust store's folder")
        add.add_argument(
            "--no-audit",
            action="store_true",
            help="do not record the change in the platform's audit log "
            "(a folder prepared away from any platform database)",
        )
        add.set_defaults(run="ca.ca_commands:ca_trust_add")
    listing = actions.add_parser("list", help="what the trust store holds (JSON)")
    listing.add_argument("--store", type=Path, required=True)
    listing.set_defaults(run="ca.ca_commands:ca_trust_list")
