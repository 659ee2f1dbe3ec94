"""What every browser test needs: Debian's chromium, its flags, and a clear failure (never a
skip) when the machine cannot run the test."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import shutil
import subprocess
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
WEB = Path(__file__).resolve().parents[2] / "web"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# WebRTC between pages on one machine: a fake camera and microphone granted without a prompt,
# and host candidates on 127.0.0.1 (no mDNS names for the local addresses).
MEDIA_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
T = TypeVar("T")
CJK_FONT = re.compile(r"wqy|cjk|droidsansfallback|uming|ukai|sourcehan", re.IGNORECASE)


def require_chromium() -> None:
    """Fail (never skip) when chromium is missing, naming what to install."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium", pytrace=False)


def require_browser() -> None:
    """Chromium and a font with Chinese glyphs (pages are read in screenshots and by people)."""
    require_chromium()
    if not has_chinese_font():
        pytest.fail(
            "no font with Chinese glyphs (fc-list :lang=zh is empty): "
            "apt-get install fonts-wqy-microhei",
            pytrace=False,
        )


def has_chinese_font() -> bool:
    """fc-list's answer; without fc-list (package fontconfig), a known CJK font file on disk."""
    fc_list = shutil.which("fc-list")
    if fc_list is not None:
        done = subprocess.run(
            [fc_list, ":lang=zh", "family"], capture_output=True, text=True, timeout=30, check=False
        )
        return bool(done.stdout.strip())
    roots = [Path("/usr/share/fonts"), Path("/usr/local/share/fonts")]
    return any(
        CJK_FONT.search(font.name) for root in roots if root.is_dir() for font in root.rglob("*")
    )


@contextlib.contextmanager
def launched(*extra: str) -> Iterator[Browser]:
    """Debian's chromium under Playwright, with CHROMIUM_ARGS and ``extra``; closed after."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *extra])
        try:
            yield browser
        finally:
            browser.close()


def person_page(browser: Browser, who: str, timeout_ms: int) -> tuple[Page, list[str]]:
    """A context of its own for one person, as a user in the island city has it (zh-CN,
    Asia/Shanghai), and its page; page errors are kept, named by ``who``."""
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"{who}: {error}"))
    return page, errors


@contextlib.contextmanager
def chromium_page(timeout_ms: int) -> Iterator[tuple[Page, list[str]]]:
    """One headless chromium page, and the errors it reports (page errors, console errors)."""
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(timeout_ms)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on(
                "console",
                lambda message: errors.append(message.text) if message.type == "error" else None,
            )
            yield page, errors
        finally:
            browser.close()


def checked(session: tuple[Page, list[str]] | None) -> Iterator[Page | None]:
    """A shared session's page for one test, failing the test on any browser error; None
    without chromium (the test then fails in its own check, not in set-up)."""
    if session is None:
        yield None
        return
    page, errors = session
    errors.clear()
    yield page
    assert not errors, "browser errors:\n" + "\n".join(errors)


def in_a_thread(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run async Python beside Playwright's sync API, which keeps a loop in this thread."""
    with ThreadPoolExecutor(1) as worker:
        return worker.submit(asyncio.run, coroutine).result()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def web_origin() -> Iterator[str | None]:
    """A module fixture's body: web/ served over HTTP on 127.0.0.1 (a secure context: WebCrypto
    and IndexedDB are there), or None without chromium (the tests then fail in require_chromium)."""
    if not CHROMIUM.is_file():
        yield None
        return
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(WEB)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def errors_of(page: Page, expected: re.Pattern[str]) -> list[str]:
    """The page's errors and console errors from now on, bar those ``expected`` (refusals a
    test provokes on purpose show up as failed requests in the console)."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda m: (
            errors.append(m.text) if m.type == "error" and not expected.search(m.text) else None
        ),
    )
    return errors
