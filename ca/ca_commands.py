"""`bidroom ca ...`: certificate authorities kept in folders (ca.authority), and the trust store."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from cryptography import x509

from ca import authority, pki, trust
from ca import primitives as p
from ca.commands import PASSWORD_ENV, load_certificate, pem_or_der, read_file
from ca.errors import CertificateError, KeyFileError

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
        return pem_or_der(path, x509.load_pem_x509_csr, x509.load_der_x509_csr)
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
    data = read_file(path)
    if not data.lstrip().startswith(b"-----"):
        return [load_certificate(path)]
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise KeyFileError(f"{path} holds no certificate", code="cert_unreadable") from exc


def _load_crl(path: Path) -> x509.CertificateRevocationList:
    data = read_file(path)
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
