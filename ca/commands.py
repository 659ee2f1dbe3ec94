"""`bidroom bid|key|ca ...`: offline work on files for bidders, custodians and CA operators.

    bidroom bid seal BID --lot LOT --cert CERT --key KEY --opening-key PUB -o OUT
    bidroom bid open ENVELOPE --key KEY -o OUT
    bidroom bid verify ENVELOPE
    bidroom key share KEY -k K --custodian NAME=CERT ... --lot LOT -o DIR
    bidroom key open SHARE_FILE --key KEY -o SHARE.json
    bidroom key combine SHARE.json ... --commitments FILE --public-key PUB -o KEY
    bidroom ca init-root|init-intermediate|issue|revoke|crl|trust ...   (see "# ca" below)

Keys are PKCS#8 PEM (encrypted or not) or PKCS#12; a password comes from BIDROOM_KEY_PASSWORD
or is asked for on the terminal. Nothing here talks to the network. Long work shows a progress
bar; errors are one line (bidroom.cli prints them).
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509
from tqdm import tqdm

from ca import authority, envelope, pki, shares, trust
from ca import primitives as p
from ca.errors import CertificateError, CryptoError, KeyFileError

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
    data = _read(path)
    if path.suffix.lower() in (".p12", ".pfx"):
        key, cert, _chain = p.load_pkcs12(data, _password(path))
        return key, cert
    try:
        return p.load_private_key(data), None
    except KeyFileError:
        return p.load_private_key(data, _password(path)), None


def _pem_or_der(path: Path, pem: Callable[[bytes], T], der: Callable[[bytes], T]) -> T:
    """Read a file in PEM or DER; ValueError if it is neither."""
    data = _read(path)
    return pem(data) if data.lstrip().startswith(b"-----") else der(data)


def load_certificate(path: Path) -> x509.Certificate:
    try:
        return _pem_or_der(path, x509.load_pem_x509_certificate, x509.load_der_x509_certificate)
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
        return shares.Share.from_plain(json.loads(_read(path)))
    except ValueError as exc:
        raise CryptoError(f"{path} is not an opened share", code="share_file") from exc


# wiring ------------------------------------------------------------------------------------


def register(sub: Any) -> None:
    """Add the `bid`, `key` and `ca` command groups to bidroom's argument parser."""
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

    _register_ca(sub)


# ca ----------------------------------------------------------------------------------------
#
#   bidroom ca init-root NAME [--kind ec|rsa] --dir DIR [--crl-url URL] [--unprotected]
#   bidroom ca init-intermediate NAME --parent DIR --dir DIR [--kind ec|rsa] [--crl-url URL]
#   bidroom ca issue --ca DIR --name N [--org O] [--uscc CODE]
#                    (--csr FILE | --out-p12 FILE | --out-key FILE) --out-cert FILE
#   bidroom ca revoke --ca DIR (CERTFILE | --serial HEX) [--reason REASON]
#   bidroom ca crl --ca DIR
#   bidroom ca trust add-root|add-intermediate|add-crl FILE --store DIR
#   bidroom ca trust list --store DIR
#
# A CA's password comes from BIDROOM_CA_PASSWORD (a parent CA's from BIDROOM_CA_PARENT_PASSWORD,
# else BIDROOM_CA_PASSWORD) or is asked for on the terminal; a generated holder key's password
# from BIDROOM_KEY_PASSWORD or the terminal. Folder layout: ca/authority.py.

CA_PARENT_PASSWORD_ENV = "BIDROOM_CA_PARENT_PASSWORD"
REVOCATION_REASONS = [
    r.value
    for r in x509.ReasonFlags
    if r not in (x509.ReasonFlags.unspecified, x509.ReasonFlags.remove_from_crl)
]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _secret(envs: tuple[str, ...], prompt: str, *, confirm: bool = False) -> bytes | None:
    """The first non-empty variable of ``envs``, else asked on a terminal, else None."""
    for env in envs:
        if os.environ.get(env):
            return os.environ[env].encode()
    if not sys.stdin.isatty():
        return None
    first = getpass.getpass(f"{prompt}: ")
    if first and confirm and getpass.getpass(f"{prompt} (again): ") != first:
        raise KeyFileError("the two passwords differ", code="password_mismatch")
    return first.encode() or None


def _load_ca(folder: Path) -> pki.CertificateAuthority:
    password = None
    if authority.is_protected(folder):
        password = _secret((authority.PASSWORD_ENV,), f"password of the CA in {folder}")
    return authority.load(folder, password)


def _new_ca_password(args: argparse.Namespace) -> bytes | None:
    if args.unprotected:
        print(
            "bidroom: warning: the CA key is stored UNENCRYPTED (demo only)",
            file=sys.stderr,
        )
        return None
    return _secret(
        (authority.PASSWORD_ENV,), f"new password for the CA key in {args.dir}", confirm=True
    )


def _describe(ca: pki.CertificateAuthority, folder: Path) -> str:
    cert = ca.cert
    return (
        f"{cert.subject.rfc4514_string()} in {folder}: certificate {folder / authority.CERT_FILE} "
        f"(SHA-256 {p.fingerprint(cert).hex()}, valid until "
        f"{cert.not_valid_after_utc:%Y-%m-%d}), CRL {authority.crl_path(folder)}"
    )


def ca_init_root(args: argparse.Namespace) -> None:
    password = _new_ca_password(args)
    ca = authority.create_root(
        args.dir, args.name, args.kind, _now(), password, args.crl_url, unprotected=args.unprotected
    )
    print(f"root CA {_describe(ca, args.dir)}")


def ca_init_intermediate(args: argparse.Namespace) -> None:
    parent_password = None
    if authority.is_protected(args.parent):
        parent_password = _secret(
            (CA_PARENT_PASSWORD_ENV, authority.PASSWORD_ENV),
            f"password of the parent CA in {args.parent}",
        )
    parent = authority.load(args.parent, parent_password)  # unlocked before anything is made
    password = _new_ca_password(args)
    ca = authority.create_intermediate(
        args.dir,
        args.parent,
        args.name,
        args.kind,
        _now(),
        password,
        parent_password,
        args.crl_url,
        unprotected=args.unprotected,
    )
    issuer = parent.cert.subject.rfc4514_string()
    print(f"intermediate CA {_describe(ca, args.dir)}, issued by {issuer}")


def _load_csr(path: Path) -> x509.CertificateSigningRequest:
    try:
        return _pem_or_der(path, x509.load_pem_x509_csr, x509.load_der_x509_csr)
    except ValueError as exc:
        raise CertificateError(f"{path} is not a CSR", code="csr_invalid") from exc


def _write_public(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise KeyFileError(f"cannot write {path}: {exc.strerror}", code="file_unwritable") from exc


def ca_issue(args: argparse.Namespace) -> None:
    identity = pki.Identity(args.name, args.org, args.uscc)
    key_out: Path | None = args.out_p12 or args.out_key
    key_password = None
    if key_out is not None:
        if key_out.exists():
            raise KeyFileError(f"{key_out} exists already", code="file_exists")
        if not key_out.parent.is_dir():
            raise KeyFileError(f"no folder {key_out.parent}", code="file_unwritable")
        key_password = _secret((PASSWORD_ENV,), f"new password for {key_out.name}", confirm=True)
        if key_password is None:
            raise KeyFileError(
                f"a generated key is stored encrypted: set {PASSWORD_ENV}",
                code="password_missing",
            )
    if not args.out_cert.parent.is_dir():
        raise KeyFileError(f"no folder {args.out_cert.parent}", code="file_unwritable")
    csr = _load_csr(args.csr) if args.csr else None
    ca = _load_ca(args.ca)
    at = _now()
    if csr is not None:
        cert = authority.issue_from_csr(args.ca, ca, csr, identity, at)
        where = ""
    else:
        assert key_out is not None and key_password is not None
        key, cert = authority.issue_with_key(args.ca, ca, identity, at, kind=args.kind)
        if args.out_p12:
            chain = [ca.cert, *authority.load_chain(args.ca)]
            data = p.dump_pkcs12(identity.name, key, cert, chain, key_password)
        else:
            data = p.dump_private_key(key, key_password)
        authority.write_private(key_out, data)
        where = f"; key in {key_out} (password-protected, mode 0600)"
    _write_public(args.out_cert, p.certificate_pem(cert))
    print(
        f"issued {cert.subject.rfc4514_string()} serial {authority.serial_hex(cert.serial_number)} "
        f"(SHA-256 {p.fingerprint(cert).hex()}, valid until "
        f"{cert.not_valid_after_utc:%Y-%m-%d}); certificate in {args.out_cert}{where}"
    )


def ca_revoke(args: argparse.Namespace) -> None:
    ca = _load_ca(args.ca)
    target: int | x509.Certificate = (
        load_certificate(args.certificate)
        if args.certificate
        else authority.parse_serial(args.serial)
    )
    serial = target if isinstance(target, int) else target.serial_number
    already = any(r.serial == serial for r in ca.revoked)
    authority.revoke(args.ca, ca, target, _now(), x509.ReasonFlags(args.reason))
    state = "was already revoked" if already else f"is revoked ({args.reason})"
    print(
        f"serial {authority.serial_hex(serial)} {state}; "
        f"publish the CRL: bidroom ca crl --ca {args.ca}"
    )


def ca_crl(args: argparse.Namespace) -> None:
    ca = _load_ca(args.ca)
    at = _now()
    published = authority.publish_crl(args.ca, ca, at)
    until = at + pki.CRL_LIFETIME
    where = f" (served at {published.crl_url})" if published.crl_url else ""
    print(
        f"CRL number {published.crl_number} ({len(published.revoked)} revoked, next update "
        f"{until:%Y-%m-%d %H:%M} UTC) written to {authority.crl_path(args.ca)}{where}"
    )


def _certificates(path: Path) -> list[x509.Certificate]:
    data = _read(path)
    if not data.lstrip().startswith(b"-----"):
        return [load_certificate(path)]
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise KeyFileError(f"{path} holds no certificate", code="cert_unreadable") from exc


def _load_crl(path: Path) -> x509.CertificateRevocationList:
    data = _read(path)
    try:
        if data.lstrip().startswith(b"-----"):
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise CertificateError(f"{path} is not a CRL", code="crl_unreadable") from exc


def ca_trust_add(args: argparse.Namespace) -> None:
    store = trust.TrustStore(args.store)
    before, at = store.version, _now()
    if args.trust_action == "add-crl":
        store.add_crl(_load_crl(args.file), at)
    else:
        add = store.add_root if args.trust_action == "add-root" else store.add_intermediate
        for cert in _certificates(args.file):
            add(cert, at)
    change = "unchanged" if store.version == before else f"now at version {store.version}"
    print(f"trust store {args.store} {change} (digest {store.digest})")


def _cert_entry(cert: x509.Certificate) -> dict[str, Any]:
    return {
        "subject": cert.subject.rfc4514_string(),
        "fingerprint": trust.fingerprint_hex(cert),
        "not_after": cert.not_valid_after_utc.isoformat(),
    }


def _crl_entry(crl: x509.CertificateRevocationList) -> dict[str, Any]:
    try:
        number: int | None = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        number = None
    return {
        "issuer": crl.issuer.rfc4514_string(),
        "number": number,
        "this_update": crl.last_update_utc.isoformat(),
        "next_update": crl.next_update_utc.isoformat() if crl.next_update_utc else None,
        "revoked": len(crl),
        "fingerprint": trust.crl_fingerprint(crl),
    }


def ca_trust_list(args: argparse.Namespace) -> None:
    if not args.store.is_dir():
        raise CertificateError(f"no trust store at {args.store}", code="trust_store")
    store = trust.TrustStore(args.store)
    held = store.recognised
    report = {
        "store": str(args.store),
        "version": store.version,
        "digest": store.digest,
        "roots": [_cert_entry(c) for c in held.roots],
        "intermediates": [_cert_entry(c) for c in held.intermediates],
        "crls": [_crl_entry(c) for c in held.crls],
    }
    print(json.dumps(report, ensure_ascii=False, indent=2))


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

    new_ca("init-root", "create a self-signed root CA in a folder").set_defaults(run=ca_init_root)
    inter = new_ca("init-intermediate", "create an issuing CA under a parent CA")
    inter.add_argument("--parent", type=Path, required=True, help="the parent CA's folder")
    inter.set_defaults(run=ca_init_intermediate)

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
    issue.set_defaults(run=ca_issue)

    revoke = ca.add_parser("revoke", help="put a certificate on the CA's revocation list")
    revoke.add_argument("--ca", type=Path, required=True)
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("certificate", type=Path, nargs="?", help="the certificate file")
    which.add_argument("--serial", help="its serial number (hex, as `issue` printed it)")
    revoke.add_argument("--reason", choices=REVOCATION_REASONS, default="unspecified")
    revoke.set_defaults(run=ca_revoke)

    crl = ca.add_parser("crl", help="publish a fresh CRL into the CA's folder")
    crl.add_argument("--ca", type=Path, required=True)
    crl.set_defaults(run=ca_crl)

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
        add.set_defaults(run=ca_trust_add)
    listing = actions.add_parser("list", help="what the trust store holds (JSON)")
    listing.add_argument("--store", type=Path, required=True)
    listing.set_defaults(run=ca_trust_list)
