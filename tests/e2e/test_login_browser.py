"""Certificate login in a real browser against `bidroom demo`: what a holder would do.

Debian's chromium drives web/login.html (web/js/login.js, pkcs.js, keystore.js) through
Playwright; the server is `python -m bidroom demo --port 0` with its demo CA, so every login is
checked for real (challenge, chain, revocation, signature, registry). Like the room test, a
missing chromium fails the test: a browser test that skips proves nothing.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import pytest
from cryptography import x509
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect

from ca import login, pki
from ca import primitives as p
from ca.trust import TrustStore

ROOM = r"opening-[0-9a-f]{32}-1"  # the demo lot's opening room
TITLE = "六横岛环卫一体化服务项目 第1标段（六横镇）"
BIDDER_ORG = "六横海洁环境服务有限公司"
TIMEOUT_MS = 15_000
STARTUP_S = 180
PASSWORD = "证书密码-2026"
# Refusals the scenario provokes on purpose show up as failed requests in the console.
EXPECTED_REFUSAL = re.compile(
    r"Failed to load resource: the server responded with a status of 40[13]"
)

RECORD_FIELDS = (
    "certificate chain id kind name notAfter organisation organisationId sign storedAt unwrap"
)
KEY_CHECK = """async () => {
  const keystore = await import("/js/keystore.js");
  const records = await keystore.list();
  const out = [];
  for (const r of records) {
    const exports = [];
    for (const key of [r.sign, r.unwrap]) {
      for (const format of ["pkcs8", "jwk"]) {
        try {
          await crypto.subtle.exportKey(format, key);
          exports.push(`${format} exported`);
        } catch (error) {
          exports.push(error.name);
        }
      }
    }
    out.push({
      id: r.id, kind: r.kind, organisation: r.organisation,
      sign: [r.sign instanceof CryptoKey, r.sign.extractable, r.sign.algorithm.name, r.sign.usages],
      unwrap: [r.unwrap instanceof CryptoKey, r.unwrap.extractable, r.unwrap.algorithm.name],
      exports, fields: Object.keys(r).sort(),
      signs: (await keystore.sign(r, new Uint8Array([1, 2, 3]))).length,
    });
  }
  return out;
}"""


@dataclass
class Demo:
    """`bidroom demo` in a subprocess: its base URL, var folder and printed sign-in links."""

    var: Path
    extra: tuple[str, ...] = ()  # more `bidroom demo` arguments, e.g. ("--opening-in", "1")
    process: subprocess.Popen[str] | None = None
    port: int = 0
    log: list[str] = field(default_factory=list)
    pump: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith("BIDROOM_")}

    def start(self) -> Demo:
        self.process = subprocess.Popen(
            [
                sys.executable,
                *("-m", "bidroom", "demo", "--port", "0", "--var", str(self.var)),
                *self.extra,
            ],
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        listening = threading.Event()
        self.pump = threading.Thread(target=self._read, args=(listening,), daemon=True)
        self.pump.start()
        if not listening.wait(STARTUP_S):
            self.stop()
            pytest.fail("bidroom demo did not start:\n" + "".join(self.log[-30:]))
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        pytest.fail("bidroom demo never became ready:\n" + "".join(self.log[-30:]))

    def _read(self, listening: threading.Event) -> None:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)
            found = re.search(r'"listening".*"port": (\d+)', line)
            if found and not listening.is_set():
                self.port = int(found.group(1))
                listening.set()

    def room(self) -> str:
        """The demo lot's opening room, as the chair's printed link names it (the demo's other
        opening took place before the start)."""
        found = re.search(r"login\.html\?demo=chair&room=(\S+)", "".join(self.log))
        assert found, "".join(self.log)
        return found.group(1)

    def link(self, person: str) -> str:
        text = "".join(self.log)
        found = re.search(rf"(http://\S+/login\.html\?demo={person}&room=\S+)", text)
        assert found, text
        return found.group(1)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.pump is not None:
            self.pump.join(10)
        if self.process.stderr is not None:
            self.process.stderr.close()

    def grant(self, cert: x509.Certificate, chain: list[x509.Certificate], name: str) -> str:
        """Give a new holder the bidder role with the registry CLI, as an operator would."""
        trust = TrustStore(self.var / "trust")
        holder = trust.verify_certificate(cert, chain, datetime.now(UTC)).holder
        key = login.holder_keys(holder)[0]
        env = {
            **self.env(),
            "BIDROOM_DATABASE_URL": f"sqlite+aiosqlite:///{self.var / 'bidroom.db'}",
        }
        grant = ["registry", "grant", key, "--role", "bidder", "--name", name]
        done = subprocess.run(
            [sys.executable, "-m", "bidroom", *grant],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return key

    def issue(
        self, identity: pki.Identity, kind: pki.KeyKind
    ) -> tuple[p.PrivateKey, x509.Certificate, x509.Certificate]:
        """A new holder certificate from the demo's sub-CA: key, certificate, the sub-CA's."""
        folder = self.var / "demo-pki"
        sub_cert = x509.load_pem_x509_certificate((folder / "sub.crt.pem").read_bytes())
        sub = pki.CertificateAuthority(
            sub_cert, p.load_private_key((folder / "sub.key.pem").read_bytes())
        )
        key, cert = pki.issue_with_key(
            sub, identity, datetime.now(UTC) - timedelta(minutes=5), kind=kind
        )
        return key, cert, sub_cert


class Console:
    """Page errors and console errors, bar the refusals a test provokes on purpose."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not EXPECTED_REFUSAL.search(message.text):
            self.errors.append(message.text)


def new_page(browser: Browser) -> tuple[Page, Console]:
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    return page, Console(page)


def stored_keys(page: Page) -> list[dict[str, object]]:
    return page.evaluate(KEY_CHECK)  # type: ignore[no-any-return]


def assert_non_extractable(record: dict[str, object], kind: str) -> None:
    unwrap = "ECDH" if kind == "P-256" else "RSA-OAEP"
    sign = "ECDSA" if kind == "P-256" else "RSA-PSS"
    assert record["kind"] == kind
    assert record["sign"] == [True, False, sign, ["sign"]], record
    assert record["unwrap"] == [True, False, unwrap], record
    # WebCrypto refuses to export a non-extractable key, in any format.
    assert record["exports"] == ["InvalidAccessError"] * 4, record
    # The record holds CryptoKeys and certificates; no key bytes were stored beside them.
    assert record["fields"] == sorted(RECORD_FIELDS.split())
    assert record["signs"] == (64 if kind == "P-256" else 256)


def in_the_room(page: Page, organisation: str) -> None:
    expect(page).to_have_url(re.compile(r"/opening\.html\?room=" + ROOM + "$"))
    expect(page.get_by_test_id("connection")).to_have_attribute("data-status", "online")
    expect(page.locator("#title")).to_have_text(TITLE)
    expect(page.locator("#me")).to_contain_text(organisation)
    expect(page.locator("#me")).to_contain_text("投标人")


def test_a_demo_link_signs_in_with_one_click_and_keeps_the_key_unexportable(
    demo: Demo, browser: Browser
) -> None:
    page, console = new_page(browser)
    page.goto(demo.link("bidder-1"))
    expect(page.locator("#demo-person")).to_contain_text("李海")
    expect(page.locator("#demo-person")).to_contain_text(BIDDER_ORG)
    expect(page.locator("#upload")).to_be_hidden()
    page.get_by_role("button", name="一键登录").click()
    in_the_room(page, BIDDER_ORG)
    assert "token" not in page.url

    [record] = stored_keys(page)
    assert_non_extractable(record, "P-256")
    assert record["organisation"] == BIDDER_ORG

    # A returning holder: the stored certificate signs in with one click (no room: stays here).
    page.goto(f"{demo.url}/login.html")
    stored = page.locator("#stored-list li")
    expect(stored).to_have_count(1)
    expect(stored).to_contain_text(BIDDER_ORG)
    # Replay: the page is handed the challenge it already answered; the server refuses it.
    answered: list[str] = []

    def same_challenge(route: Route) -> None:
        if not answered:
            answered.append(route.fetch().text())
        route.fulfill(status=200, content_type="application/json", body=answered[0])

    page.route("**/api/login/challenge", same_challenge)
    page.get_by_role("button", name="使用已保存的证书登录").click()
    expect(page.locator("#done-who")).to_have_text(f"已登录：{BIDDER_ORG}")
    expect(page.locator("#done-roles")).to_have_text("角色：投标人")
    page.get_by_role("button", name="使用已保存的证书登录").click()
    error = page.locator("#login-error")
    expect(error).to_contain_text("challenge_replayed")
    expect(error).to_contain_text("该登录请求已被使用过")
    expect(page.locator("#done")).to_be_hidden()
    page.click("#lang")
    expect(error).to_contain_text("This sign-in challenge was used before")
    page.click("#lang")
    page.unroute("**/api/login/challenge")

    # Forgetting the stored certificate deletes its keys from this browser.
    page.get_by_role("button", name=re.compile("从本浏览器删除")).click()
    expect(page.locator("#stored")).to_be_hidden()
    assert stored_keys(page) == []
    assert not console.errors, console.errors
    page.context.close()


def test_a_pkcs12_file_and_its_password_sign_in(
    demo: Demo, browser: Browser, tmp_path: Path
) -> None:
    uscc = "91330903MA2C8D4E5"
    identity = pki.Identity(
        "舟山蓝海清洁有限公司", "舟山蓝海清洁有限公司", uscc + pki.uscc_check_char(uscc)
    )
    key, cert, sub = demo.issue(identity, "rsa")
    demo.grant(cert, [sub], "舟山蓝海清洁有限公司")
    p12 = tmp_path / "holder.p12"
    p12.write_bytes(p.dump_pkcs12("holder", key, cert, [sub], PASSWORD.encode()))

    page, console = new_page(browser)
    # The room without a session offers the certificate login, which brings the holder back.
    room = demo.room()
    page.goto(f"{demo.url}/opening.html?room={room}")
    page.get_by_role("link", name="使用数字证书登录").click()
    expect(page).to_have_url(f"{demo.url}/login.html?room={room}")
    # Without ?demo the demo server's people are offered as one-click choices.
    expect(page.locator("#demo-people li")).to_have_count(16)  # bidroom.demo_pki.PEOPLE
    page.set_input_files("#key-file", p12)
    page.fill("#password", "not the password")
    page.click("#signin")
    expect(page.locator("#login-error")).to_contain_text("密码错误")
    expect(page.locator("#login-error")).to_contain_text("wrong_password")
    page.fill("#password", PASSWORD)
    page.click("#signin")
    in_the_room(page, "舟山蓝海清洁有限公司")
    [record] = stored_keys(page)
    assert_non_extractable(record, "RSA")
    assert record["id"] == p.fingerprint(cert).hex()
    assert not console.errors, console.errors
    page.context.close()


def test_an_encrypted_pkcs8_key_with_a_certificate_file_signs_in(
    demo: Demo, browser: Browser, tmp_path: Path
) -> None:
    identity = pki.Identity("张伟", "东港城市服务集团有限公司")
    key, cert, sub = demo.issue(identity, "ec")
    demo.grant(cert, [sub], "张伟（东港城市服务集团有限公司）")
    key_file = tmp_path / "holder.key.pem"
    key_file.write_bytes(p.dump_private_key(key, PASSWORD.encode()))
    assert b"ENCRYPTED PRIVATE KEY" in key_file.read_bytes()
    cert_file = tmp_path / "holder.cer"  # DER
    cert_file.write_bytes(cert.public_bytes(p.serialization_der()))

    page, console = new_page(browser)
    page.goto(f"{demo.url}/login.html")
    page.set_input_files("#key-file", key_file)
    page.click("#signin")
    expect(page.locator("#login-error")).to_contain_text("password_required")
    page.fill("#password", PASSWORD)
    page.click("#signin")
    expect(page.locator("#login-error")).to_contain_text("certificate_required")
    page.set_input_files("#cert-file", cert_file)
    page.fill("#password", PASSWORD)
    page.click("#signin")
    expect(page.locator("#done-who")).to_have_text("已登录：张伟（东港城市服务集团有限公司）")
    session = page.evaluate("JSON.parse(sessionStorage.getItem('bidroom.session'))")
    assert session["roles"] == ["bidder"]
    assert session["holder"]["organisation"] == "东港城市服务集团有限公司"
    [record] = stored_keys(page)
    assert_non_extractable(record, "P-256")
    assert not console.errors, console.errors
    page.context.close()
