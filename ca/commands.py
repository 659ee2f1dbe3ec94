"""`bidroom bid|key|ca ...`: offline work on files for bidders, custodians and CA operators.

    bidroom bid seal BID --lot LOT --lot-file LOT.json --trust DIR --owner ORG --key KEY -o OUT
    bidroom bid seal BID --lot LOT --cert CERT --key KEY --opening-key PUB -o OUT   (unchecked)
    bidroom bid open ENVELOPE --key KEY -o OUT
    bidroom bid verify ENVELOPE
    bidroom key share KEY -k K --custodian NAME=CERT ... --lot LOT -o DIR
    bidroom key open SHARE_FILE --key KEY -o SHARE.json
    bidroom key combine SHARE.json ... --commitments FILE --public-key PUB -o KEY
    bidroom ca init-root|init-intermediate|issue|revoke|crl|trust ...   (ca.ca_commands)

This module runs `bid` and holds the file loaders the others share; `key` is ca.key_commands,
`ca` is ca.ca_commands, their arguments ca.command_line: each command imports only its own
(sealing a bid loads neither the CA nor the key shares). Keys are PKCS#8 PEM (encrypted or not)
or PKCS#12; a password comes from BIDROOM_KEY_PASSWORD or is asked for on the terminal. Nothing
here talks to the network. Long work shows a progress bar; errors are one line (bidroom.cli
prints them).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from cryptography import x509
from tqdm import tqdm

from ca import envelope
from ca import primitives as p
from ca.errors import KeyFileError

PASSWORD_ENV = "BIDROOM_KEY_PASSWORD"
T = TypeVar("T")


def _password(path: Path) -> bytes | None:
    if PASSWORD_ENV in os.environ:
        return os.environ[PASSWORD_ENV].encode()
    if sys.stdin.isatty():
        return getpass.getpass(f"password for {path.name}: ").encode() or None
    return None


def load_key(path: Path) -> tuple[p.PrivateKey, x509.Certificate | None]:
    """A private key (and its certificate, from PKCS#12) from a file."""
    data = read_file(path)
    if path.suffix.lower() in (".p12", ".pfx"):
        key, cert, _chain = p.load_pkcs12(data, _password(path))
        return key, cert
    try:
        return p.load_private_key(data), None
    except KeyFileError:
        return p.load_private_key(data, _password(path)), None


def pem_or_der(path: Path, pem: Callable[[bytes], T], der: Callable[[bytes], T]) -> T:
    """Read a file in PEM or DER; ValueError if it is neither."""
    data = read_file(path)
    return pem(data) if data.lstrip().startswith(b"-----") else der(data)


def load_certificate(path: Path) -> x509.Certificate:
    try:
        return pem_or_der(path, x509.load_pem_x509_certificate, x509.load_der_x509_certificate)
    except ValueError as exc:
        raise KeyFileError(f"{path} is not a certificate", code="cert_unreadable") from exc


def load_public_key(path: Path) -> p.PublicKey:
    data = read_file(path)
    if b"CERTIFICATE" in data:
        return p.load_public_der(p.public_der(load_certificate(path).public_key()))  # type: ignore[arg-type]
    return p.load_public_pem(data)


def read_file(path: Path) -> bytes:
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
    lot, opening = _sealing_target(args)
    src = _open_for_reading(args.bid)
    update, bar = _progress(os.fstat(src.fileno()).st_size, "sealing")
    with bar, src, _replacing(args.output) as dst:
        trailer = envelope.seal(
            src,
            dst,
            lot=lot,
            sealer=envelope.Sealer(_der(cert), key),
            opening_key=opening,
            client={"tool": "bidroom-cli"},
            progress=update,
        )
    print(
        f"sealed {trailer['plaintext_size']} bytes for lot {lot} into {args.output}; "
        f"body SHA-256 {trailer['body_digest']}"
    )
    if args.lot_file is None:
        print(
            "warning: a bare --opening-key was not checked against the chair's signature; "
            "seal with --lot-file and --trust (docs/opening.md 'The signed lot key')",
            file=sys.stderr,
        )


def _sealing_target(args: argparse.Namespace) -> tuple[str, p.EcPublicKey]:
    """The lot id and the key to seal to: from a lot file whose key statement the tender's chair
    signed (checked against the sealer's own trust store, now), or a bare key, with a warning."""
    if args.lot_file is None:
        opening = load_public_key(args.opening_key)
        if not isinstance(opening, p.EcPublicKey):
            raise KeyFileError("a lot's opening key is a P-256 key", code="key_kind")
        return args.lot, opening
    # the lot's check needs the trust store's path validation; a bare key does not load it
    from ca import lot_key
    from ca.lot_key import LotKeyError
    from ca.trust import TrustStore

    if args.trust is None or not args.trust.is_dir():
        raise KeyFileError(
            "--lot-file needs --trust, the folder of your own trust store "
            "(bidroom ca trust add-root / add-crl)",
            code="trust_missing",
        )
    try:
        doc = json.loads(read_file(args.lot_file))
    except ValueError as exc:  # not UTF-8, not JSON, a number too long to read
        raise LotKeyError("the lot file is not JSON", code="lot_key_malformed") from exc
    lot = doc.get("lot", doc) if isinstance(doc, dict) else None
    if not isinstance(lot, dict):
        raise LotKeyError("the lot file holds no lot", code="lot_key_malformed")
    if args.lot != lot.get("id"):
        raise LotKeyError(
            f"the lot file is for lot {lot.get('id')}, not {args.lot}",
            code="lot_key_malformed",
            detail={"lot": lot.get("id")},
        )
    signer = lot_key.verify(lot, TrustStore(args.trust), datetime.now(UTC), args.owner)
    print(
        f"lot {lot['id']}: opening key {lot['key_fingerprint']} signed by {signer.name} "
        f"({signer.organisation}), checked against {args.trust}",
        file=sys.stderr,
    )
    return str(lot["id"]), lot_key.opening_key(lot)


def bid_open(args: argparse.Namespace) -> None:
    """One pass: open_to checks every chunk and then the trailer's digest and signature, and
    hands the plaintext over (renamed from a partial file) only if all of it verified."""
    key, _ = load_key(args.key)
    src = _open_for_reading(args.envelope)
    update, bar = _progress(_opened_size_about(os.fstat(src.fileno()).st_size), "opening")
    with bar, src:
        opened = envelope.open_to(src, args.output, key, progress=update)
        bar.total = opened.plaintext_size  # the estimate was a little high
        bar.refresh()
    print(
        f"opened the bid for lot {opened.header.lot} into {args.output} "
        f"({opened.plaintext_size} bytes, signature verified)"
    )


def _opened_size_about(size: int) -> int:
    """About what an envelope of ``size`` bytes opens to, for the progress bar: less the chunk
    records' heads and tags (its header and trailer make the estimate a few KiB high)."""
    return size * envelope.CHUNK // (envelope.CHUNK + 5 + p.GCM_TAG)


@contextlib.contextmanager
def _replacing(target: Path) -> Iterator[BinaryIO]:
    """envelope.replacing, with a folder that cannot be written to as a one-line error."""
    with contextlib.ExitStack() as stack:
        try:
            out = stack.enter_context(envelope.replacing(target))
        except OSError as exc:
            raise KeyFileError(
                f"cannot write {target}: {exc.strerror}", code="file_unwritable"
            ) from exc
        yield out


def _open_for_reading(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as exc:
        raise KeyFileError(f"cannot read {path}: {exc.strerror}", code="file_unreadable") from exc


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
