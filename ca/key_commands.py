"""`bidroom key ...`: a lot's opening key split among custodians, a share opened, k shares
combined (ca.shares does the work; the files are read as ca.commands reads them)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from cryptography import x509

from ca import primitives as p
from ca import shares
from ca.commands import load_certificate, load_key, load_public_key, read_file
from ca.errors import CryptoError, KeyFileError


def key_share(args: argparse.Namespace) -> None:
    key, _ = load_key(args.key)
    if not isinstance(key, p.EcPrivateKey):
        raise KeyFileError("a lot's opening key is a P-256 key", code="key_kind")
    names, certs = zip(*(_custodian(c) for c in args.custodian), strict=True)
    made, commitments = shares.split(key, args.k, len(names), list(names), args.lot)
    args.output.mkdir(parents=True, exist_ok=True)
    for share, cert in zip(made, certs, strict=True):
        (args.output / f"share-{share.index}-{_safe(share.custodian)}.json").write_bytes(
            share.to_file(cert)
        )
    record = [c.to_dict() for c in commitments]
    (args.output / "commitments.json").write_text(json.dumps(record, ensure_ascii=False, indent=2))
    print(f"{args.k}-of-{len(names)} shares for lot {args.lot} written to {args.output}")


def _custodian(spec: str) -> tuple[str, x509.Certificate]:
    name, sep, cert = spec.partition("=")
    if not sep or not name or not cert:
        raise CryptoError(f"--custodian takes NAME=CERTIFICATE, not {spec!r}", code="usage")
    return name, load_certificate(Path(cert))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)[:40]


def key_open(args: argparse.Namespace) -> None:
    key, _ = load_key(args.key)
    share = shares.Share.from_file(read_file(args.share_file), key)
    plain = share.to_plain()
    fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(plain, out, ensure_ascii=False)
    print(
        f"share {share.index} of {share.n} for lot {share.lot_id} written to {args.output} "
        "(keep it offline; hand it in only at a quorum opening)"
    )


def key_combine(args: argparse.Namespace) -> None:
    given = [_plain_share(path) for path in args.shares]
    commitments = [shares.Commitment.from_dict(c) for c in json.loads(read_file(args.commitments))]
    public = load_public_key(args.public_key)
    if not isinstance(public, p.EcPublicKey):
        raise KeyFileError("a lot's opening key is a P-256 key", code="key_kind")
    key = shares.combine(given, commitments, public)
    fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(p.dump_private_key(key))
    print(f"the opening key of lot {given[0].lot_id} is rebuilt in {args.output}")


def _plain_share(path: Path) -> shares.Share:
    try:
        return shares.Share.from_plain(json.loads(read_file(path)))
    except ValueError as exc:
        raise CryptoError(f"{path} is not an opened share", code="share_file") from exc
