"""Trusted time in the app: ``POST /tsa`` (the built-in TSA over HTTP, RFC 3161 §3.4), and the
choice made at start between the built-in TSA and external ones. The rules are in ca.tsa.

With no BIDROOM_TSA_URL (the embedded default, the demo, the tests) the built-in TSA signs, in
process for the platform itself (``app.state.timestamper``) and over ``POST /tsa`` for anyone.
Its folder (BIDROOM_TSA_DIR, by default ``<var>/tsa``) is made at first start::

    root.pem      the built-in TSA's own root CA: what a verifier trusts
                  (``openssl ts -verify -data FILE -in TOKEN -token_in -CAfile root.pem``);
                  its key is discarded once it has certified the TSA
    tsa.pem       the TSA certificate (EKU timeStamping, critical), valid five years
    tsa.key.pem   the TSA key, PKCS#8 PEM encrypted with a password derived from
                  BIDROOM_SECRET_KEY (HKDF, as the audit log's key is), mode 0600; a key left
                  unencrypted by an older version is encrypted in place at start
    chain.pem     optional: intermediates between tsa.pem and root.pem, nearest first

To sign with a TSA certificate of the platform's own CA (``ca.tsa.issue_tsa_certificate``),
put these files there before the first start (the key unencrypted: it is encrypted at start).
Once tsa.pem has expired, or the secret key has changed, the app refuses to start; move the
folder aside (keep it: its root.pem verifies the old tokens) and a new one is made.

Answering takes 13 ms or more of CPU: ``POST /tsa`` and the stamper run the TSA on a worker
thread, never on the event loop.

With BIDROOM_TSA_URL (production, an accredited TSA) and optionally BIDROOM_TSA_FALLBACK_URL,
``POST /tsa`` answers 404 and the timestamper is a ``ca.tsa.TsaClient`` that trusts the roots in
BIDROOM_TSA_ROOTS (a PEM file), or else the platform's trust store.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import shutil
from concurrent.futures import Executor
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from bidroom.api import error
from bidroom.errors import ConfigError
from bidroom.settings import Settings
from ca import pki, tsa
from ca import primitives as p
from ca.authority import write_private
from ca.errors import CryptoError
from ca.trust import TrustStore

log = logging.getLogger(__name__)

MAX_QUERY = 64 * 1024  # a TimeStampReq is about 100 bytes; anything near this is not one
KEY_INFO = b"bidroom tsa key password v1"
ROOT_FILE, CERT_FILE, KEY_FILE, CHAIN_FILE = "root.pem", "tsa.pem", "tsa.key.pem", "chain.pem"


# POST /tsa ---------------------------------------------------------------------------------


async def endpoint(request: Request) -> Response:
    """RFC 3161 over HTTP: a DER TimeStampReq in, a DER TimeStampResp out (also rejections)."""
    authority: tsa.TimeStampAuthority | None = getattr(request.app.state, "tsa", None)
    if authority is None:
        return error(404, "tsa_external", "this platform time-stamps with an external TSA")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != tsa.QUERY_TYPE:
        return error(415, "tsa_media_type", f"send the request as {tsa.QUERY_TYPE}")
    query = await _body(request, MAX_QUERY)
    if query is None:
        return error(413, "tsa_too_large", f"a time-stamp request is at most {MAX_QUERY} bytes")
    executor: Executor | None = getattr(request.app.state, "tsa_executor", None)  # None: default
    answer = await asyncio.get_running_loop().run_in_executor(executor, authority.respond, query)
    return Response(answer, media_type=tsa.REPLY_TYPE)


async def _body(request: Request, limit: int) -> bytes | None:
    """The request body, or None if it is over ``limit`` (read no further than that)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return None
    except ClientDisconnect:
        return None
    return bytes(body)


# the choice at start -----------------------------------------------------------------------


def open_timestamping(
    settings: Settings, now: datetime | None = None, *, executor: Executor | None = None
) -> tuple[tsa.TimeStampAuthority | None, tsa.Timestamper]:
    """The built-in TSA (None with an external one) and the timestamper the platform uses,
    which makes and checks tokens on ``executor``'s threads (None: the loop's default)."""
    now = now or tsa.system_clock()
    if settings.tsa_url is None:
        if settings.tsa_fallback_url:
            raise ConfigError("BIDROOM_TSA_FALLBACK_URL is set without BIDROOM_TSA_URL")
        authority, root = builtin(settings.tsa_folder, now, key_password(settings))
        return authority, tsa.LocalStamper(authority, [root], executor)
    urls = [settings.tsa_url, *filter(None, [settings.tsa_fallback_url])]
    trust = _external_trust(settings)
    return None, tsa.TsaClient(urls, trust, settings.tsa_timeout_seconds, executor=executor)


def _external_trust(settings: Settings) -> tsa.Trust:
    if settings.tsa_roots is None:
        return TrustStore(settings.trust_root)
    try:
        return x509.load_pem_x509_certificates(settings.tsa_roots.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"BIDROOM_TSA_ROOTS: cannot read {settings.tsa_roots}: {exc}") from exc


def key_password(settings: Settings) -> bytes:
    """The password of the built-in TSA's key file, derived from BIDROOM_SECRET_KEY with HKDF
    (the audit log's key is too): every node of a platform already shares that secret, the demo
    needs nothing more, and a copy of the var folder alone does not give the key away."""
    if settings.secret_key is None:
        raise ConfigError("BIDROOM_SECRET_KEY is not set: the built-in TSA's key is locked by it")
    secret = settings.secret_key.get_secret_value().encode()
    derived = p.hkdf_expand(p.hkdf_extract(b"", secret), KEY_INFO, 32)
    return base64.urlsafe_b64encode(derived)  # text, should an operator ever need openssl


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
            f"from BIDROOM_SECRET_KEY: was the secret key changed? Restore it, or move {folder} "
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
