"""A tus 1.0.0 client for `bidroom bid upload` (docs/opening.md "Bids"; web/js/tus.js does the
same in the browser):

    OPTIONS  <base>/api/lots/<lot>/uploads        Tus-Max-Size: refused here before any byte goes
    POST     <base>/api/lots/<lot>/registrations  register for the lot (200 if already)
    POST     <base>/api/lots/<lot>/uploads        Upload-Length -> Location, kept in the state file
    HEAD     <upload>                             the server's offset, to resume from
    PATCH    <upload>                             chunks (4 MiB), streamed from the file
    GET      <upload>                             the outcome: accepted (the bid) or refused

The state file (``ENVELOPE.upload.json``: url, the envelope's SHA-256, lot, length) makes a
second run after an interruption resume the same upload instead of starting over; it is removed
once the server has decided. A network error, a 409 ``offset_mismatch`` or ``upload_busy``
(or a 502/503/504) asks HEAD for the offset and goes on, a few times with growing pauses.
Refusals are UploadError with the server's stable code.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx2 as httpx

from bidroom.errors import BidroomError

VERSION = "1.0.0"
CHUNK = 4 << 20
BLOCK = 64 << 10  # what is read from the file at a time while a PATCH streams
RETRIES = (0.5, 1.0, 2.0, 4.0)  # pauses before each new try after a failure
RETRY_CODES = frozenset(
    {"network", "offset_mismatch", "upload_busy", "http_502", "http_503", "http_504"}
)
POLL = (0.1, 0.2, 0.4, 0.8, 1.0)
POLL_LIMIT = 120.0
TIMEOUT = httpx.Timeout(120.0, connect=10.0)  # the last PATCH waits for the envelope's check


class UploadError(BidroomError):
    code = "upload_failed"
    status = 0  # the HTTP status of a server's refusal; 0 for one made here


@dataclass
class Upload:
    """One envelope going to one lot; ``run()`` returns the server's GET <upload> answer."""

    base: str
    lot: str
    path: Path
    token: str
    chunk: int = CHUNK
    progress: Callable[[int, int], None] = lambda sent, total: None
    say: Callable[[str], None] = lambda text: None
    transport: httpx.BaseTransport | None = None  # tests put a faulty link here

    def __post_init__(self) -> None:
        self.base = self.base.rstrip("/") + "/"
        self.state_file = self.path.with_name(self.path.name + ".upload.json")
        self.url = ""
        self.offset = 0
        self.length = 0
        self.sha256 = ""

    def run(self) -> dict[str, Any]:
        self.length, self.sha256 = _digest(self.path)
        headers = {"Authorization": f"Bearer {self.token}", "Tus-Resumable": VERSION}
        with httpx.Client(headers=headers, timeout=TIMEOUT, transport=self.transport) as client:
            self.client = client
            self._check_size()
            if not self._resume():
                self._create()
            self._send()
            outcome = self._outcome()
        self.state_file.unlink(missing_ok=True)
        if outcome.get("status") != "accepted":
            error = outcome.get("error") or {}
            raise UploadError(
                str(error.get("message") or "the server refused the bid"),
                code=str(error.get("code") or "bid_refused"),
                detail=error.get("detail") or {},
            )
        return outcome

    # steps ---------------------------------------------------------------------------------

    def _lot_url(self, tail: str) -> str:
        return urljoin(self.base, f"api/lots/{self.lot}/{tail}")

    def _check_size(self) -> None:
        answer = self._request("OPTIONS", self._lot_url("uploads"))
        if answer.status_code not in (200, 204):
            raise refusal(answer)
        limit = answer.headers.get("tus-max-size", "")
        if limit.isdigit() and self.length > int(limit):
            raise UploadError(
                f"the envelope is {self.length} bytes; this lot takes at most {limit}",
                code="upload_too_large",
                detail={"max": int(limit), "length": self.length},
            )
        if self.length == 0:
            raise UploadError("the envelope is empty", code="upload_too_large")

    def _resume(self) -> bool:
        """Go on with the upload the state file remembers, if it is this envelope's."""
        try:
            saved = json.loads(self.state_file.read_text())
            url, sha256, lot = str(saved["url"]), str(saved["sha256"]), str(saved["lot"])
        except (OSError, ValueError, KeyError, TypeError):
            return False
        url = urljoin(self.base, urlsplit(url).path)  # the upload, on the server asked now
        if sha256 != self.sha256 or lot != self.lot:
            self._forget(url)  # another envelope (or lot) since: that upload is of no use
            return False
        offset = self._head(url)
        if offset is None:
            self.state_file.unlink(missing_ok=True)
            return False
        self.url, self.offset = url, offset
        self.say(f"resuming the upload at byte {offset} of {self.length}")
        return True

    def _forget(self, url: str) -> None:
        with contextlib.suppress(UploadError):
            self._request("DELETE", url)  # termination; the server drops stale ones anyway
        self.state_file.unlink(missing_ok=True)

    def _create(self) -> None:
        registered = self._request("POST", self._lot_url("registrations"))
        if registered.status_code not in (200, 201):
            raise refusal(registered)
        made = self._request(
            "POST", self._lot_url("uploads"), headers={"Upload-Length": str(self.length)}
        )
        if made.status_code != 201 or not made.headers.get("location"):
            raise refusal(made)
        self.url, self.offset = urljoin(self.base, made.headers["location"]), 0
        state = {
            "url": self.url,
            "sha256": self.sha256,
            "lot": self.lot,
            "length": self.length,
            "created": datetime.now(UTC).isoformat(),
        }
        self.state_file.write_text(json.dumps(state, indent=2))

    def _head(self, url: str) -> int | None:
        """The server's offset; None when the upload is gone or not ours (404/403/410)."""
        answer = self._request("HEAD", url)
        if answer.status_code in (403, 404, 410):
            return None
        if answer.status_code != 200:
            raise refusal(answer)
        offset = answer.headers.get("upload-offset", "")
        if answer.headers.get("upload-length") != str(self.length):
            return None
        if not offset.isdigit() or int(offset) > self.length:
            raise UploadError("the server's Upload-Offset is not usable", code="upload_offset")
        return int(offset)

    def _send(self) -> None:
        failures = 0
        self.progress(self.offset, self.length)
        while self.offset < self.length:
            try:
                self._patch()
                failures = 0
            except UploadError as exc:
                if exc.code == "upload_finished":
                    return  # the last PATCH's answer was lost: the outcome tells
                if exc.code not in RETRY_CODES:
                    if exc.status in (404, 410, 422):  # decided (or gone): nothing to resume
                        self.state_file.unlink(missing_ok=True)
                    raise
                if failures >= len(RETRIES):
                    raise UploadError(
                        f"the upload stopped at byte {self.offset} of {self.length} "
                        f"({exc.message}); run the command again to resume",
                        code="upload_interrupted",
                        detail={"offset": self.offset},
                    ) from exc
                self.say(f"{exc.message}: trying again from the server's offset")
                time.sleep(RETRIES[failures])
                failures += 1
                self._resync()

    def _resync(self) -> None:
        """Ask HEAD where the server is; still offline, PATCH again from where we think."""
        try:
            offset = self._head(self.url)
        except UploadError:
            return
        if offset is None:
            self.state_file.unlink(missing_ok=True)
            raise UploadError("the server no longer has this upload", code="upload_gone")
        self.offset = offset
        self.progress(self.offset, self.length)

    def _patch(self) -> None:
        size = min(self.chunk, self.length - self.offset)
        answer = self._request(
            "PATCH",
            self.url,
            headers={
                "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": str(self.offset),
                "Content-Length": str(size),
            },
            content=_read(self.path, self.offset, size),
        )
        if answer.status_code != 204:
            raise refusal(answer)
        offset = answer.headers.get("upload-offset", "")
        if not offset.isdigit() or not self.offset < int(offset) <= self.length:
            raise UploadError("the server's Upload-Offset is not usable", code="upload_offset")
        self.offset = int(offset)
        self.progress(self.offset, self.length)

    def _outcome(self) -> dict[str, Any]:
        """GET <upload> until the server has decided (it has, unless an answer was lost)."""
        started = time.monotonic()
        for i in range(1 << 30):
            answer = self._request("GET", self.url, headers={"Accept": "application/json"})
            if answer.status_code != 200:
                raise refusal(answer)
            status: dict[str, Any] = answer.json()
            if status.get("status") != "uploading":
                return status
            if time.monotonic() - started > POLL_LIMIT:
                break
            time.sleep(POLL[min(i, len(POLL) - 1)])
        raise UploadError(
            "the server has not decided on the upload yet; run the command again",
            code="upload_unconfirmed",
        )

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return send(self.client, method, url, **kwargs)


def send(client: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One request; a failed link is UploadError ``network`` (retried where it may be)."""
    try:
        return client.request(method, url, **kwargs)
    except httpx.TransportError as exc:
        raise UploadError(
            f"cannot reach {urlsplit(url).netloc}: {exc or type(exc).__name__}", code="network"
        ) from exc


def refusal(answer: httpx.Response) -> UploadError:
    """The server's error body (``{code, message, detail}``) as UploadError, else the status."""
    try:
        body = answer.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    fallback = "upload_too_large" if answer.status_code == 413 else f"http_{answer.status_code}"
    error = UploadError(
        str(body.get("message") or answer.reason_phrase or "refused"),
        code=str(body.get("code") or fallback),
        detail=body.get("detail") or {},
    )
    error.status = answer.status_code
    return error


def _digest(path: Path) -> tuple[int, str]:
    sha, size = hashlib.sha256(), 0
    try:
        with path.open("rb") as source:
            while block := source.read(1 << 20):
                sha.update(block)
                size += len(block)
    except OSError as exc:
        raise UploadError(f"cannot read {path}: {exc.strerror}", code="file_unreadable") from exc
    return size, sha.hexdigest()


def _read(path: Path, offset: int, size: int) -> Iterator[bytes]:
    """``size`` bytes of ``path`` from ``offset``, a block at a time (never the whole file)."""
    with path.open("rb") as source:
        source.seek(offset)
        while size > 0:
            block = source.read(min(BLOCK, size))
            if not block:
                raise UploadError(f"{path} changed while uploading", code="file_changed")
            size -= len(block)
            yield block
