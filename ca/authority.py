"""A certificate authority kept in a folder: what ``bidroom ca`` operates.

``ca.pki`` computes (pure values, time a parameter); this module keeps a CA's state on disk::

    <folder>/
        ca.pem          the CA's certificate
        ca.key.pem      its private key, PKCS#8 PEM encrypted with the CA password (mode 0600);
                        unencrypted only for a CA created explicitly as an unprotected demo CA
        chain.pem       its issuers' certificates, nearest first (empty for a root)
        state.json      name, key kind, CRL URL, whether the key is protected, the revocation
                        list and the last CRL number
        crl.der         the latest CRL (what ``GET /ca/<folder name>.crl`` serves)
        crls/<n>.crl    every CRL published, by CRL number
        issued.jsonl    append-only issuance log: one line per certificate this CA signed
                        (time, serial, subject, fingerprint, not_after, kind); never key material

Serial numbers are written as lowercase hexadecimal (as ``openssl x509 -serial`` prints them,
lowercased). Changes to ``state.json`` hold an exclusive lock on ``<folder>/.lock``; files are
replaced atomically, so a reader (the HTTP CRL endpoint) never sees half a CRL.

The password comes from the caller (``bidroom ca`` reads BIDROOM_CA_PASSWORD or asks); nothing
here reads a clock: every function that records something takes the time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from ca import pki
from ca import primitives as p
from ca.errors import (
    CertificateError,
    CertificateExpired,
    CertificateNotYetValid,
    CryptoError,
    KeyFileError,
)
from ca.pki import CertificateAuthority, Identity, KeyKind, Revocation

PASSWORD_ENV = "BIDROOM_CA_PASSWORD"

CERT_FILE = "ca.pem"
KEY_FILE = "ca.key.pem"
CHAIN_FILE = "chain.pem"
STATE_FILE = "state.json"
CRL_FILE = "crl.der"
CRL_ARCHIVE = "crls"
LOG_FILE = "issued.jsonl"
LOCK_FILE = ".lock"

STATE_VERSION = 1


# serial numbers ----------------------------------------------------------------------------


def serial_hex(serial: int) -> str:
    return format(serial, "x")


def parse_serial(text: str) -> int:
    """A serial number as written by bidroom or openssl: hex, optionally ``0x`` or colons."""
    cleaned = text.strip().lower().removeprefix("0x").replace(":", "")
    try:
        value = int(cleaned, 16)
    except ValueError:
        raise CryptoError(
            f"{text!r} is not a serial number (hexadecimal, as `bidroom ca issue` prints it)",
            code="bad_serial",
        ) from None
    if value <= 0:
        raise CryptoError("a serial number is positive", code="bad_serial")
    return value


# files -------------------------------------------------------------------------------------


def _write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 and ``data``; never overwrite an existing file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(
            f"{path} exists already; bidroom never overwrites a key file", code="file_exists"
        ) from None
    except OSError as exc:
        raise KeyFileError(f"cannot write {path}: {exc.strerror}", code="file_unwritable") from exc
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(path, 0o600)  # in case the file system ignored the mode given at creation


def _read(path: Path, code: str = "ca_missing") -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CryptoError(f"cannot read {path}: {exc.strerror}", code=code) from exc


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold the CA folder's lock: one change to its state at a time."""
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


# state -------------------------------------------------------------------------------------


def _state_doc(
    ca: CertificateAuthority, name: str, kind: KeyKind, protected: bool
) -> dict[str, Any]:
    return {
        "version": STATE_VERSION,
        "name": name,
        "kind": kind,
        "protected": protected,
        "crl_url": ca.crl_url,
        "crl_number": ca.crl_number,
        "revoked": _revoked_doc(ca.revoked),
    }


def _revoked_doc(revoked: tuple[Revocation, ...]) -> list[dict[str, str]]:
    return [
        {"serial": serial_hex(r.serial), "at": r.at.isoformat(), "reason": r.reason.value}
        for r in revoked
    ]


def read_state(folder: Path) -> dict[str, Any]:
    data = _read(folder / STATE_FILE)
    try:
        state = json.loads(data)
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise ValueError("unknown state version")
        return state
    except ValueError as exc:
        raise CryptoError(f"{folder / STATE_FILE} is damaged: {exc}", code="ca_state") from exc


def _save_state(folder: Path, state: dict[str, Any]) -> None:
    data = json.dumps(state, ensure_ascii=False, indent=2).encode() + b"\n"
    _write_atomically(folder / STATE_FILE, data)


def _revocations(state: dict[str, Any]) -> tuple[Revocation, ...]:
    try:
        return tuple(
            Revocation(
                int(r["serial"], 16),
                dt.datetime.fromisoformat(r["at"]),
                x509.ReasonFlags(r["reason"]),
            )
            for r in state["revoked"]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CryptoError("the CA's revocation list is damaged", code="ca_state") from exc


def _log_issued(folder: Path, cert: x509.Certificate, at: dt.datetime, kind: str) -> None:
    entry = {
        "time": at.isoformat(),
        "serial": serial_hex(cert.serial_number),
        "subject": cert.subject.rfc4514_string(),
        "fingerprint": p.fingerprint(cert).hex(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "kind": kind,
    }
    fd = os.open(folder / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    with os.fdopen(fd, "a", encoding="utf-8") as log:
        log.write(json.dumps(entry, ensure_ascii=False) + "\n")
        log.flush()
        os.fsync(log.fileno())


def issued(folder: Path) -> list[dict[str, Any]]:
    """The issuance log, oldest first."""
    path = folder / LOG_FILE
    if not path.exists():
        return []
    lines = _read(path).decode("utf-8").splitlines()
    try:
        return [json.loads(line) for line in lines if line.strip()]
    except ValueError as exc:
        raise CryptoError(f"{path} is damaged", code="ca_state") from exc


# creating ----------------------------------------------------------------------------------


def _check_protection(password: bytes | None, unprotected: bool) -> None:
    if password is not None and not password:  # dump_private_key would not encrypt
        raise KeyFileError("an empty password protects nothing", code="password_missing")
    if password is None and not unprotected:
        raise KeyFileError(
            f"a CA key is stored encrypted: set {PASSWORD_ENV} (or create an unprotected "
            "demo CA explicitly)",
            code="password_missing",
        )
    if password is not None and unprotected:
        raise KeyFileError("a password was given for an unprotected CA", code="usage")


def _prepare(folder: Path) -> None:
    if (folder / CERT_FILE).exists() or (folder / KEY_FILE).exists():
        raise CryptoError(f"{folder} holds a CA already", code="ca_exists")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    (folder / CRL_ARCHIVE).mkdir(exist_ok=True)


def _store(
    folder: Path,
    ca: CertificateAuthority,
    chain: list[x509.Certificate],
    *,
    name: str,
    kind: KeyKind,
    password: bytes | None,
    at: dt.datetime,
) -> CertificateAuthority:
    """Write a new CA's files, then publish its first (empty) CRL."""
    write_private(folder / KEY_FILE, p.dump_private_key(ca.key, password))
    _write_atomically(folder / CHAIN_FILE, b"".join(p.certificate_pem(c) for c in chain))
    _save_state(folder, _state_doc(ca, name, kind, password is not None))
    _write_atomically(folder / CERT_FILE, p.certificate_pem(ca.cert))
    return publish_crl(folder, ca, at)


def create_root(
    folder: Path,
    name: str,
    kind: KeyKind,
    at: dt.datetime,
    password: bytes | None,
    crl_url: str | None = None,
    *,
    unprotected: bool = False,
    lifetime: dt.timedelta = pki.ROOT_LIFETIME,
) -> CertificateAuthority:
    """A new self-signed root CA in ``folder`` (created; refused if it holds a CA already)."""
    _check_protection(password, unprotected)
    _prepare(folder)
    ca = pki.create_root(name, at, kind=kind, lifetime=lifetime, crl_url=crl_url)
    _log_issued(folder, ca.cert, at, "root")
    return _store(folder, ca, [], name=name, kind=kind, password=password, at=at)


def create_intermediate(
    folder: Path,
    parent_folder: Path,
    name: str,
    kind: KeyKind,
    at: dt.datetime,
    password: bytes | None,
    parent_password: bytes | None,
    crl_url: str | None = None,
    *,
    unprotected: bool = False,
    lifetime: dt.timedelta = pki.INTERMEDIATE_LIFETIME,
) -> CertificateAuthority:
    """A new issuing CA in ``folder``, certified by the CA in ``parent_folder``."""
    _check_protection(password, unprotected)
    parent = load(parent_folder, parent_password)
    _check_period(parent.cert, at)
    if folder.resolve() == parent_folder.resolve():
        raise CryptoError("the intermediate needs a folder of its own", code="ca_exists")
    _prepare(folder)
    ca = pki.create_intermediate(parent, name, at, kind=kind, lifetime=lifetime, crl_url=crl_url)
    _log_issued(parent_folder, ca.cert, at, "ca")
    chain = [parent.cert, *load_chain(parent_folder)]
    return _store(folder, ca, chain, name=name, kind=kind, password=password, at=at)


# loading -----------------------------------------------------------------------------------


def load_certificate(folder: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(_read(folder / CERT_FILE))
    except ValueError as exc:
        raise CryptoError(f"{folder / CERT_FILE} is not a certificate", code="ca_state") from exc


def load_chain(folder: Path) -> list[x509.Certificate]:
    """The CA's issuers, nearest first (empty for a root)."""
    data = _read(folder / CHAIN_FILE)
    if not data.strip():
        return []
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise CryptoError(f"{folder / CHAIN_FILE} is damaged", code="ca_state") from exc


def require(folder: Path) -> None:
    """Refuse (ca_missing) a folder that holds no CA."""
    if not (folder / CERT_FILE).is_file() or not (folder / STATE_FILE).is_file():
        raise CryptoError(f"{folder} holds no CA (no {CERT_FILE})", code="ca_missing")


def is_protected(folder: Path) -> bool:
    """Whether the CA's key is encrypted (it is unless created as an unprotected demo CA)."""
    require(folder)
    return bool(read_state(folder).get("protected", True))


def load(folder: Path, password: bytes | None) -> CertificateAuthority:
    """The CA in ``folder`` as a ``pki`` value (certificate, key, CRL URL, revocations)."""
    require(folder)
    state = read_state(folder)
    cert = load_certificate(folder)
    protected = bool(state.get("protected", True))
    if protected and password is None:
        raise KeyFileError(
            f"the key of the CA in {folder} is encrypted: set {PASSWORD_ENV}",
            code="password_missing",
        )
    try:
        key = p.load_private_key(_read(folder / KEY_FILE), password if protected else None)
    except KeyFileError as exc:
        raise KeyFileError(
            f"cannot unlock the key of the CA in {folder} (wrong password?)",
            code="key_unreadable",
        ) from exc
    if p.public_der(key.public_key()) != p.public_der(cert.public_key()):  # type: ignore[arg-type]
        raise KeyFileError(f"{folder}: the key is not the certificate's", code="ca_key_mismatch")
    return CertificateAuthority(
        cert=cert,
        key=key,
        crl_url=state.get("crl_url"),
        revoked=_revocations(state),
        crl_number=int(state.get("crl_number", 0)),
    )


def _check_period(cert: x509.Certificate, at: dt.datetime) -> None:
    subject = cert.subject.rfc4514_string()
    if at < cert.not_valid_before_utc:
        raise CertificateNotYetValid(f"the CA {subject} is not valid yet")
    if at >= cert.not_valid_after_utc:
        raise CertificateExpired(f"the CA {subject} has expired")


# issuing -----------------------------------------------------------------------------------


def issue_from_csr(
    folder: Path,
    ca: CertificateAuthority,
    csr: x509.CertificateSigningRequest,
    identity: Identity,
    at: dt.datetime,
    lifetime: dt.timedelta = pki.HOLDER_LIFETIME,
) -> x509.Certificate:
    """Certify the CSR's key for ``identity`` (vetted by the desk); logged before returned."""
    _check_period(ca.cert, at)
    cert = pki.issue_from_csr(ca, csr, identity, at, lifetime)
    _log_issued(folder, cert, at, "holder")
    return cert


def issue_with_key(
    folder: Path,
    ca: CertificateAuthority,
    identity: Identity,
    at: dt.datetime,
    kind: KeyKind = "ec",
    lifetime: dt.timedelta = pki.HOLDER_LIFETIME,
) -> tuple[p.PrivateKey, x509.Certificate]:
    """A new key and its certificate; the caller protects the key (PKCS#12, encrypted PEM)."""
    _check_period(ca.cert, at)
    key, cert = pki.issue_with_key(ca, identity, at, kind=kind, lifetime=lifetime)
    _log_issued(folder, cert, at, "holder")
    return key, cert


# revoking and publishing -------------------------------------------------------------------


def issued_here(ca: CertificateAuthority, cert: x509.Certificate) -> bool:
    if cert.issuer != ca.cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca.cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def revoke(
    folder: Path,
    ca: CertificateAuthority,
    target: int | x509.Certificate,
    at: dt.datetime,
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified,
) -> CertificateAuthority:
    """Put a certificate (by serial, or itself) on the CA's revocation list; publish separately.

    A serial must be in the issuance log; a certificate must be signed by this CA.
    Revoking twice changes nothing.
    """
    if isinstance(target, x509.Certificate):
        if not issued_here(ca, target):
            raise CertificateError(
                f"{target.subject.rfc4514_string()} was not issued by this CA",
                code="not_issued_here",
                detail={"issuer": target.issuer.rfc4514_string()},
            )
        serial = target.serial_number
    else:
        serial = target
        if serial_hex(serial) not in {entry.get("serial") for entry in issued(folder)}:
            raise CertificateError(
                f"this CA never issued serial {serial_hex(serial)}",
                code="unknown_serial",
                detail={"serial": serial_hex(serial)},
            )
    with _locked(folder):
        state = read_state(folder)
        current = replace(ca, revoked=_revocations(state))
        revoked = pki.revoke(current, serial, at, reason)
        state["revoked"] = _revoked_doc(revoked.revoked)
        _save_state(folder, state)
    return revoked


def publish_crl(
    folder: Path,
    ca: CertificateAuthority,
    at: dt.datetime,
    lifetime: dt.timedelta = pki.CRL_LIFETIME,
) -> CertificateAuthority:
    """Sign the next CRL, write it to ``crl.der`` (and ``crls/<n>.crl``); the updated CA."""
    with _locked(folder):
        state = read_state(folder)
        current = replace(
            ca, revoked=_revocations(state), crl_number=int(state.get("crl_number", 0))
        )
        published, crl = pki.publish_crl(current, at, lifetime)
        state["crl_number"] = published.crl_number
        _save_state(folder, state)  # numbered first: a crash may skip a number, never reuse one
        der = p.crl_der(crl)
        (folder / CRL_ARCHIVE).mkdir(exist_ok=True)
        _write_atomically(folder / CRL_ARCHIVE / f"{published.crl_number}.crl", der)
        _write_atomically(folder / CRL_FILE, der)
    return published


def crl_path(folder: Path) -> Path:
    return folder / CRL_FILE
