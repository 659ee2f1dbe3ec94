"""The built-in TSA: its folder, made at first start, and the stamper that signs with it in the
node's worker process (bidroom.worker), outside the event loop's thread and its GIL.

Its folder (BIDROOM_TSA_DIR, by default ``<var>/tsa``)::

    root.pem      the built-in TSA's own root CA: what a verifier trusts
                  (``openssl ts -verify -data FILE -in TOKEN -token_in -CAfile root.pem``);
                  its key is discarded once it has certified the TSA
    tsa.pem       the TSA certificate (EKU timeStamping, critical), valid five years
    tsa.key.pem   the TSA key, PKCS#8 PEM encrypted with a password derived from
                  BIDROOM_TSA_SECRET (HKDF; a secret of its own), mode 0600; a key left
                  unencrypted by an older version is encrypted in place at start
    chain.pem     optional: intermediates between tsa.pem and root.pem, nearest first

To sign with a TSA certificate of the platform's own CA (``ca.tsa.issue_tsa_certificate``),
put these files there before the first start (the key unencrypted: it is encrypted at start).
Once tsa.pem has expired, or the secret key has changed, the app refuses to start; move the
folder aside (keep it: its root.pem verifies the old tokens) and a new one is made.

Answering and checking take 13-60 ms of CPU each, nearly all of it in asn1crypto's pure Python,
which holds the GIL: on a thread of the node's own process it still stalls the event loop (24 ms
at p99, bench/loop.py). So the node hands it to its worker process: the process loads the TSA
from this folder once (``BuiltinTsa``: the folder and its key file's password, all it is given)
and answers from then on; the key never crosses the pipe. This module is what that process
imports, so it imports nothing of the web app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from cryptography import x509

from bidroom.errors import ConfigError, WorkerUnavailable
from ca import pki, tsa
from ca import primitives as p
from ca.authority import write_private
from ca.errors import CryptoError, TimestampError

log = logging.getLogger(__name__)

A = TypeVar("A")
T = TypeVar("T")
ROOT_FILE, CERT_FILE, KEY_FILE, CHAIN_FILE = "root.pem", "tsa.pem", "tsa.key.pem", "chain.pem"


@dataclass(frozen=True)
class BuiltinTsa:
    """Where a process finds the built-in TSA: its folder and its key file's password."""

    folder: str
    password: bytes = field(repr=False)


# in the worker process: the TSA loaded once per folder --------------------------------------

_loaded: dict[BuiltinTsa, tuple[tsa.TimeStampAuthority, x509.Certificate]] = {}


def _authority(where: BuiltinTsa) -> tuple[tsa.TimeStampAuthority, x509.Certificate]:
    """The TSA the node made or checked at start: loaded, never made here (a folder moved
    aside meanwhile must not give the node a TSA its own trust does not know)."""
    found = _loaded.get(where)
    if found is None:
        found = _loaded[where] = _load(Path(where.folder), tsa.system_clock(), where.password)
    return found


def respond(where: BuiltinTsa, query: bytes) -> bytes:
    """The TSA's DER answer to a DER TimeStampReq (blocking: the worker runs it)."""
    return _authority(where)[0].respond(query)


def stamp(where: BuiltinTsa, message: tsa.Message) -> tsa.Stamp:
    """A verified time-stamp over ``message`` (blocking: the worker runs it)."""
    authority, root = _authority(where)
    return tsa.LocalStamper(authority, [root]).stamp_blocking(message)


# in the node ---------------------------------------------------------------------------------


class BuiltinStamper:
    """The platform's Timestamper with the built-in TSA, and the answerer of ``POST /tsa``.

    ``worker`` runs the TSA's work: the node's worker process (bidroom.worker.Worker), or None
    for the loop's default threads (a command run once, where a stall harms nobody). A worker
    that died twice under one call is a TimestampError (``tsa_unavailable``), as an external
    TSA out of reach is.
    """

    def __init__(
        self,
        where: BuiltinTsa,
        cert: x509.Certificate,
        root: x509.Certificate,
        worker: Executor | None = None,
    ):
        self.where, self.cert, self.worker = where, cert, worker
        self.trust = [root]  # what verifies its tokens (the report's checks read it)

    async def stamp(self, message: tsa.Message) -> tsa.Stamp:
        return await self._run(stamp, message)

    async def respond(self, query: bytes) -> bytes:
        return await self._run(respond, query)

    async def _run(self, work: Callable[[BuiltinTsa, A], T], argument: A) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.worker, work, self.where, argument)
        except WorkerUnavailable as exc:
            raise TimestampError(exc.message, code="tsa_unavailable", detail=exc.detail) from exc


# the folder ----------------------------------------------------------------------------------


def builtin(
    folder: Path, now: datetime, password: bytes
) -> tuple[tsa.TimeStampAuthority, x509.Certificate]:
    """The built-in TSA from ``folder`` (made first if missing) and the root that certifies it;
    ``password`` locks its key file."""
    if not password:
        raise ValueError("the built-in TSA's key needs a password")
    if not (folder / CERT_FILE).exists():
        _create(folder, now, password)
    try:
        return _load(folder, now, password)
    except (OSError, ValueError, CryptoError) as exc:
        raise ConfigError(f"the built-in TSA in {folder} is unusable: {exc}") from exc


def _create(folder: Path, now: datetime, password: bytes) -> None:
    """Write a new root and TSA into a private folder, then rename it into place (atomic: of
    nodes starting together on one var folder, one wins and the others use its TSA)."""
    start = now - timedelta(days=1)  # tolerate a clock set a little behind
    root = pki.create_root("bidroom 内置时间戳根CA", start)
    key, cert = tsa.issue_tsa_certificate(root, start)
    folder.parent.mkdir(parents=True, exist_ok=True)
    draft = folder.with_name(f".{folder.name}.{os.getpid()}.draft")
    shutil.rmtree(draft, ignore_errors=True)
    draft.mkdir(mode=0o700)
    (draft / ROOT_FILE).write_bytes(p.certificate_pem(root.cert))
    (draft / CERT_FILE).write_bytes(p.certificate_pem(cert))
    write_private(draft / KEY_FILE, p.dump_private_key(key, password))
    try:
        draft.rename(folder)
    except OSError:
        shutil.rmtree(draft, ignore_errors=True)  # made by another node meanwhile
        return
    log.info("built-in TSA created", extra={"folder": str(folder)})


def _load(
    folder: Path, now: datetime, password: bytes
) -> tuple[tsa.TimeStampAuthority, x509.Certificate]:
    cert = x509.load_pem_x509_certificate((folder / CERT_FILE).read_bytes())
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise ConfigError(
            f"the built-in TSA certificate {folder / CERT_FILE} is valid only from "
            f"{cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}: move "
            f"{folder} aside (keep it: it verifies the old tokens) and restart to make a new one"
        )
    chain_file = folder / CHAIN_FILE
    chain = x509.load_pem_x509_certificates(chain_file.read_bytes()) if chain_file.exists() else []
    root = x509.load_pem_x509_certificate((folder / ROOT_FILE).read_bytes())
    data = (folder / KEY_FILE).read_bytes()
    locked = _encrypted(data)
    key = _unlock(folder, data, password) if locked else p.load_private_key(data)
    authority = tsa.TimeStampAuthority(cert, key, chain)  # the key must be its certificate's
    if not locked:
        _encrypt_in_place(folder / KEY_FILE, key, password)
    return authority, root


def _encrypted(pem: bytes) -> bool:
    """Whether a PEM key file is encrypted (PKCS#8, or the traditional Proc-Type header)."""
    return pem.lstrip().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") or (
        b"Proc-Type: 4,ENCRYPTED" in pem
    )


def _unlock(folder: Path, pem: bytes, password: bytes) -> p.PrivateKey:
    try:
        return p.load_private_key(pem, password)
    except CryptoError as exc:
        raise ConfigError(
            f"the built-in TSA's key {folder / KEY_FILE} does not open with the password derived "
            f"from BIDROOM_TSA_SECRET: was that secret changed? Restore it, or move {folder} "
            "aside (keep it: its root.pem verifies the old tokens) and restart to make a new TSA"
        ) from exc


def _encrypt_in_place(path: Path, key: p.PrivateKey, password: bytes) -> None:
    """Replace a key file an older version left unencrypted by its encrypted form (atomic: a
    node starting meanwhile reads one or the other, both usable). If the folder is read-only
    the TSA still runs, and says so."""
    draft = path.with_name(f".{path.name}.{os.getpid()}.draft")
    try:
        draft.unlink(missing_ok=True)  # left by a start that died here
        write_private(draft, p.dump_private_key(key, password))
        os.replace(draft, path)
    except (OSError, CryptoError) as exc:
        with contextlib.suppress(OSError):
            draft.unlink(missing_ok=True)
        reason = getattr(exc, "message", None) or str(exc)
        log.warning(
            "the built-in TSA key stays unencrypted", extra={"path": str(path), "error": reason}
        )
        return
    log.info("the built-in TSA key is now encrypted", extra={"path": str(path)})
