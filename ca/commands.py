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
import contextlib
import datetime as dt
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

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
    src = _open_for_reading(args.bid)
    update, bar = _progress(os.fstat(src.fileno()).st_size, "sealing")
    with bar, src, _replacing(args.output) as dst:
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
