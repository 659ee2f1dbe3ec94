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
once the server has decided. A network error, a 409 ``offset_mismatch`` or ``upload_busy``, a
408 ``body_timeout`` (the server gave up on a PATCH that stalled) or a 502/503/504 waits and
tries again, each time asking HEAD for the server's offset first and sending from there, never
from its own count (the server keeps every byte that reached it). An island's link drops for
seconds to minutes: the pauses grow (0.5 s doubling, capped at 15 s, jittered) and the upload
gives up only after ``retry_for`` seconds (default 300, or BIDROOM_UPLOAD_RETRY_SECONDS) without
the server taking a byte. Refusals are UploadError with the server's stable code.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
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
RETRY_ENV = "BIDROOM_UPLOAD_RETRY_SECONDS"
RETRY_FOR = 300.0  # seconds without progress before giving up
BACKOFF = (0.5, 15.0)  # the first pause and the longest
RETRY_CODES = frozenset(
    {
        "network",
        "offset_mismatch",
        "upload_busy",
        "body_timeout",
        "http_502",
        "http_503",
        "http_504",
    }
)
POLL = (0.1, 0.2, 0.4, 0.8, 1.0)
POLL_LIMIT = 120.0
TIMEOUT = httpx.Timeout(120.0, connect=10.0)  # the last PATCH waits for the envelope's check


class UploadError(BidroomError):
    code = "upload_failed"
    status = 0  # the HTTP status of a server's refusal; 0 for one made here


def retry_budget(environ: dict[str, str] | None = None) -> float:
    """BIDROOM_UPLOAD_RETRY_SECONDS, else RETRY_FOR; a bad value is a usage error."""
    text = (os.environ if environ is None else environ).get(RETRY_ENV, "").strip()
    if not text:
        return RETRY_FOR
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < 1e7:
        raise UploadError(f"{RETRY_ENV} is a number of seconds, not {text!r}", code="usage")
    return seconds


def backoff(attempt: int) -> float:
    """The pause before try ``attempt`` (0, 1, ...): doubling up to BACKOFF's cap, the upper
    half jittered so that clients cut off together do not all come back in the same instant."""
    first, cap = BACKOFF
    ceiling: float = min(cap, first * 2.0 ** min(attempt, 32))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


@dataclass
class Patience:
    """How long a troubled link is waited for: ``retry_for`` seconds since the last progress."""

    retry_for: float
    sleep: Callable[[float], None] = time.sleep
    attempt: int = 0
    since: float | None = None  # when the trouble began; None while things go well

    def progressed(self) -> None:
        self.attempt, self.since = 0, None

    def wait(self, error: UploadError) -> float:
        """Pause before the next try, or raise ``error`` once the budget is spent."""
        now = time.monotonic()
        if self.since is None:
            self.since = now
        pause = backoff(self.attempt)
        if now + pause - self.since > self.retry_for:
            raise error
        self.attempt += 1
        self.sleep(pause)
        return pause


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
    retry_for: float = RETRY_FOR  # seconds without progress before giving up

    def __post_init__(self) -> None:
        self.base = self.base.rstrip("/") + "/"
        self.state_file = self.path.with_name(self.path.name + ".upload.json")
        self.url = ""
        self.offset = 0
        self.length = 0
        self.sha256 = ""
        self.patience = Patience(self.retry_for)

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
            self._request("DELETE", url, patient=False)  # the server drops stale ones anyway
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
        self.progress(self.offset, self.length)
        while self.offset < self.length:
            try:
                self._patch()
                self.patience.progressed()
            except UploadError as exc:
                if exc.code == "upload_finished":
                    return  # the last PATCH's answer was lost: the outcome tells
                if exc.code not in RETRY_CODES:
                    if exc.status in (404, 410, 422):  # decided (or gone): nothing to resume
                        self.state_file.unlink(missing_ok=True)
                    raise
                self._pause(exc)
                self._resync()

    def _pause(self, exc: UploadError) -> None:
        """Wait before the next try; UploadError ``upload_interrupted`` once out of patience."""
        given_up = UploadError(
            f"the upload stopped at byte {self.offset} of {self.length}: no progress for "
            f"{self.retry_for:g} s ({exc.message}); run the command again to resume",
            code="upload_interrupted",
            detail={"offset": self.offset},
        )
        with _cause(exc):
            pause = self.patience.wait(given_up)
        self.say(f"{exc.message}: trying again in {pause:.1f} s")

    def _resync(self) -> None:
        """Ask HEAD where the server is (waiting on the link as long as patience lasts): the
        next PATCH starts there, never at our own count."""
        while True:
            try:
                offset = self._head(self.url)
                break
            except UploadError as exc:
                if exc.code not in RETRY_CODES:
                    raise
                self._pause(exc)
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

    def _request(
        self, method: str, url: str, patient: bool = True, **kwargs: Any
    ) -> httpx.Response:
        """One request; a lost link is waited for (but a PATCH goes back to _send, which asks
        HEAD first). A lost answer to the creating POST leaves an orphan the server sweeps."""
        while True:
            try:
                answer = send(self.client, method, url, **kwargs)
            except UploadError as exc:
                if not patient or method == "PATCH":
                    raise
                self._pause(exc)
                continue
            if method not in ("HEAD", "PATCH"):  # a step done; a PATCH counts in _send
                self.patience.progressed()
            return answer


@contextlib.contextmanager
def _cause(exc: BaseException) -> Iterator[None]:
    """Raise what the block raises ``from exc``."""
    try:
        yield
    except UploadError as given_up:
        raise given_up from exc


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
