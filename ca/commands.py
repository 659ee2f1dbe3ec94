"""`bidroom bid ...` and `bidroom key ...`: offline work on files for bidders and custodians.

    bidroom bid seal BID --lot LOT --cert CERT --key KEY --opening-key PUB -o OUT
    bidroom bid open ENVELOPE --key KEY -o OUT
    bidroom bid verify ENVELOPE
    bidroom key share KEY -k K --custodian NAME=CERT ... --lot LOT -o DIR
    bidroom key open SHARE_FILE --key KEY -o SHARE.json
    bidroom key combine SHARE.json ... --commitments FILE --public-key PUB -o KEY

Keys are PKCS#8 PEM (encrypted or not) or PKCS#12; a password comes from BIDROOM_KEY_PASSWORD
or is asked for on the terminal. Nothing here talks to the network. Long work shows a progress
bar; errors are one line (bidroom.cli prints them).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from tqdm import tqdm

from ca import envelope, shares
from ca import primitives as p
from ca.errors import CryptoError, KeyFileError

PASSWORD_ENV = "BIDROOM_KEY_PASSWORD"


def _password(path: Path) -> bytes | None:
    if PASSWORD_ENV in os.environ:
        return os.environ[PASSWORD_ENV].encode()
    if sys.stdin.isatty():
        return getpass.getpass(f"password for {path.name}: ").encode() or None
    return None


def load_key(path: Path) -> tuple[p.PrivateKey, x509.Certificate | None]:
    """A private key (and its certificate, from PKCS#12) from a file."""
    data = _read(path)
    if path.suffix.lower() in (".p12", ".pfx"):
        key, cert, _chain = p.load_pkcs12(data, _password(path))
        return key, cert
    try:
        return p.load_private_key(data), None
    except KeyFileError:
        return p.load_private_key(data, _password(path)), None


def load_certificate(path: Path) -> x509.Certificate:
    data = _read(path)
    try:
        if data.lstrip().startswith(b"-----"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise KeyFileError(f"{path} is not a certificate", code="cert_unreadable") from exc


def load_public_key(path: Path) -> p.PublicKey:
    data = _read(path)
    if b"CERTIFICATE" in data:
        return p.load_public_der(p.public_der(load_certificate(path).public_key()))  # type: ignore[arg-type]
    return p.load_public_pem(data)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read {path}: {exc.strerror}", code="file_unreadable") from exc


def _progress(total: int, label: str) -> tuple[Callable[[int], None], Any]:
    bar = tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=label,
        disable=None,
        file=sys.stderr,
    )
    return bar.update, bar


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(p.serialization_der())


# bid ---------------------------------------------------------------------------------------


def bid_seal(args: argparse.Namespace) -> None:
    key, bundled = load_key(args.key)
    cert = load_certificate(args.cert) if args.cert else bundled
    if cert is None:
        raise KeyFileError(
            "give --cert, or a PKCS#12 key file that holds the certificate", code="cert_missing"
        )
    opening = load_public_key(args.opening_key)
    if not isinstance(opening, p.EcPublicKey):
        raise KeyFileError("a lot's opening key is a P-256 key", code="key_kind")
    update, bar = _progress(args.bid.stat().st_size, "sealing")
    with bar, args.bid.open("rb") as src, args.output.open("wb") as dst:
        trailer = envelope.seal(
            src,
            dst,
            lot=args.lot,
            sealer=envelope.Sealer(_der(cert), key),
            opening_key=opening,
            client={"tool": "bidroom-cli"},
            progress=update,
        )
    print(
        f"sealed {trailer['plaintext_size']} bytes for lot {args.lot} into {args.output}; "
        f"body SHA-256 {trailer['body_digest']}"
    )


def bid_open(args: argparse.Namespace) -> None:
    key, _ = load_key(args.key)
    with args.envelope.open("rb") as src:
        header = envelope.read_header(src)
    verified = envelope.verify(args.envelope.open("rb"))
    update, bar = _progress(verified.plaintext_size, "opening")
    with bar, args.envelope.open("rb") as src:
        envelope.open_to(src, args.output, key, progress=update)
    print(
        f"opened the bid for lot {header.lot} into {args.output} "
        f"({verified.plaintext_size} bytes, signature verified)"
    )


def bid_verify(args: argparse.Namespace) -> None:
    with args.envelope.open("rb") as src:
        verified = envelope.verify(src)
    cert = x509.load_der_x509_certificate(verified.header.bidder_cert)
    print(
        json.dumps(
            {
                "lot": verified.header.lot,
                "bidder": cert.subject.rfc4514_string(),
                "bidder_certificate_sha256": p.fingerprint(cert).hex(),
                "plaintext_size": verified.plaintext_size,
                "chunks": verified.chunk_count,
                "body_sha256": verified.body_digest,
                "signature": "valid",
            },
            ensure_ascii=False,
            indent=2,
        )
    )


# key ---------------------------------------------------------------------------------------


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
    share = shares.Share.from_file(_read(args.share_file), key)
    plain = {
        "lot_id": share.lot_id,
        "key_fingerprint": share.key_fingerprint.hex(),
        "custodian": share.custodian,
        "index": share.index,
        "k": share.k,
        "n": share.n,
        "mnemonic": share.mnemonic,
    }
    fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(plain, out, ensure_ascii=False)
    print(
        f"share {share.index} of {share.n} for lot {share.lot_id} written to {args.output} "
        "(keep it offline; hand it in only at a quorum opening)"
    )


def key_combine(args: argparse.Namespace) -> None:
    given = [_plain_share(path) for path in args.shares]
    commitments = [shares.Commitment.from_dict(c) for c in json.loads(_read(args.commitments))]
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
        doc = json.loads(_read(path))
        return shares.Share(
            doc["lot_id"],
            bytes.fromhex(doc["key_fingerprint"]),
            doc["custodian"],
            int(doc["index"]),
            int(doc["k"]),
            int(doc["n"]),
            doc["mnemonic"],
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise CryptoError(f"{path} is not an opened share", code="share_file") from exc


# wiring ------------------------------------------------------------------------------------


def register(sub: Any) -> None:
    """Add the `bid` and `key` command groups to bidroom's argument parser."""
    bid = sub.add_parser("bid", help="seal, open and verify bids (offline)").add_subparsers(
        dest="action", required=True
    )
    seal = bid.add_parser("seal", help="seal a bid file for a lot")
    seal.add_argument("bid", type=Path)
    seal.add_argument("--lot", required=True)
    seal.add_argument("--key", type=Path, required=True, help="your key (PEM or PKCS#12)")
    seal.add_argument("--cert", type=Path, help="your certificate (if not in the PKCS#12)")
    seal.add_argument("--opening-key", type=Path, required=True, help="the lot's opening key")
    seal.add_argument("-o", "--output", type=Path, required=True)
    seal.set_defaults(run=bid_seal)
    opener = bid.add_parser("open", help="open a sealed bid with your key")
    opener.add_argument("envelope", type=Path)
    opener.add_argument("--key", type=Path, required=True)
    opener.add_argument("-o", "--output", type=Path, required=True)
    opener.set_defaults(run=bid_open)
    check = bid.add_parser("verify", help="check a sealed bid's integrity and signer, no key")
    check.add_argument("envelope", type=Path)
    check.set_defaults(run=bid_verify)

    key = sub.add_parser("key", help="opening-key shares for custodians").add_subparsers(
        dest="action", required=True
    )
    split = key.add_parser("share", help="split an opening key k-of-n among custodians")
    split.add_argument("key", type=Path)
    split.add_argument("-k", type=int, required=True)
    split.add_argument("--custodian", action="append", required=True, help="NAME=CERTIFICATE")
    split.add_argument("--lot", required=True)
    split.add_argument("-o", "--output", type=Path, required=True)
    split.set_defaults(run=key_share)
    mine = key.add_parser("open", help="open your share file with your key")
    mine.add_argument("share_file", type=Path)
    mine.add_argument("--key", type=Path, required=True)
    mine.add_argument("-o", "--output", type=Path, required=True)
    mine.set_defaults(run=key_open)
    join = key.add_parser("combine", help="rebuild an opening key from k opened shares")
    join.add_argument("shares", type=Path, nargs="+")
    join.add_argument("--commitments", type=Path, required=True)
    join.add_argument("--public-key", type=Path, required=True)
    join.add_argument("-o", "--output", type=Path, required=True)
    join.set_defaults(run=key_combine)
