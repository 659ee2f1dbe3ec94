"""The expert's half of a remote PAdES signature (web/js/pades.js) against ca.pades, in Debian's
chromium.

Python prepares the report's new revision (ca.pades.prepare); the page signs ``to_sign`` with
a key imported into the keystore, stored in IndexedDB and loaded back, as an expert's browser
holds it (web/js/keystore.js); Python finishes with the built-in TSA's time-stamp
(ca.pades.finish). The PDF must hold for pyHanko (ca.pades.verify_signatures) and for poppler's
pdfsig. The modules are served as plain files from web/. Missing chromium fails.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import subprocess
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest
from browser import CHROMIUM, checked, chromium_page, require_chromium
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fpdf import FPDF
from playwright.sync_api import Page

from ca import pades, pki, tsa
from ca import primitives as p
from ca.errors import PdfSignatureError

TIMEOUT_MS = 30_000
WEB = Path(__file__).resolve().parents[2] / "web"
T0 = datetime(2026, 4, 17, 1, 30, tzinfo=UTC)
MEMBERS: dict[str, pki.KeyKind] = {"李明": "ec", "张华": "ec", "王芳": "rsa"}
T = TypeVar("T")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass(frozen=True)
class Member:
    key: p.PrivateKey
    cert: x509.Certificate

    def page(self) -> dict[str, str]:
        """What the page imports: the PKCS#8 key, its kind and the certificate."""
        der = self.key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        kind = "P-256" if isinstance(self.key, p.EcPrivateKey) else "RSA"
        cert = self.cert.public_bytes(serialization.Encoding.DER)
        return {"pkcs8": b64(der), "kind": kind, "cert": b64(cert)}


@dataclass(frozen=True)
class World:
    sub: pki.CertificateAuthority
    members: dict[str, Member]
    stamper: pades.PadesTimeStamper
    trust: pades.Trust


@pytest.fixture(scope="module")
def world() -> World:
    """A root and a sub CA with fresh CRLs, the members' keys, and the built-in TSA."""
    root = pki.create_root("舟山市数字证书根CA", T0 - timedelta(days=30))
    sub = pki.create_intermediate(root, "舟山市数字证书二级CA", T0 - timedelta(days=30))
    members = {
        name: Member(
            *pki.issue_with_key(sub, pki.Identity(name), T0 - timedelta(days=1), kind=kind)
        )
        for name, kind in {**MEMBERS, "外人": "ec"}.items()
    }
    root, root_crl = pki.publish_crl(root, T0 - timedelta(minutes=5), timedelta(days=60))
    sub, sub_crl = pki.publish_crl(sub, T0 - timedelta(minutes=5), timedelta(days=60))
    tsa_root = pki.create_root("bidroom 时间戳根CA", T0 - timedelta(days=30))
    platform = pki.create_intermediate(tsa_root, "bidroom 平台CA", T0 - timedelta(days=30))
    tsa_key, tsa_cert = tsa.issue_tsa_certificate(platform, T0 - timedelta(days=30))
    authority = tsa.TimeStampAuthority(tsa_cert, tsa_key, [platform.cert], clock=lambda: T0)
    stamper = pades.PadesTimeStamper(tsa.LocalStamper(authority, [tsa_root.cert]))
    trust = pades.Trust(
        roots=[root.cert],
        tsa_roots=[tsa_root.cert],
        intermediates=[sub.cert, platform.cert],
        crls=[p.crl_der(root_crl), p.crl_der(sub_crl)],
        at=T0 + timedelta(minutes=1),
    )
    return World(sub, members, stamper, trust)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def origin() -> Iterator[str | None]:
    """web/ over HTTP on 127.0.0.1 (a secure context: WebCrypto and IndexedDB are there)."""
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


SETUP = """async () => {
  const [P, K, B] = await Promise.all([
    import("/js/pades.js"), import("/js/keystore.js"), import("/js/bytes.js")]);
  // as the key-import page does: import non-extractable, store in IndexedDB, load when signing
  const stored = async ({pkcs8, kind, cert}) => {
    const certificate = B.fromBase64(cert);
    const id = await K.fingerprint(certificate);
    const keys = await K.importPrivateKey(B.fromBase64(pkcs8), kind);
    await K.save({id, ...keys, certificate, chain: [certificate], storedAt: "2026-04-17"});
    return K.load(id);
  };
  window.T = {P, stored};
  return typeof P.signPrepared === "function";
}"""

SIGN = """async ({member, toSign}) => {
  const {P, stored} = window.T;
  return P.signPrepared(await stored(member), toSign);
}"""


@pytest.fixture(scope="module")
def session(origin: str | None) -> Iterator[tuple[Page, list[str]] | None]:
    if origin is None:
        yield None
        return
    with chromium_page(TIMEOUT_MS) as (page, errors):
        page.goto(origin + "/css/app.css")
        assert page.evaluate(SETUP) is True
        yield page, errors


@pytest.fixture
def browser_page(session: tuple[Page, list[str]] | None) -> Iterator[Page | None]:
    yield from checked(session)


def ready(browser_page: Page | None) -> Page:
    """The test's page; fails (never skips) when chromium is missing."""
    require_chromium()
    assert browser_page is not None
    return browser_page


def report() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=14)
    pdf.cell(text="Evaluation report ZSCG-2026-017, lot 1")
    return bytes(pdf.output())


def pdfsig(pdf: bytes, tmp_path: Path) -> str:
    """poppler's own check of the signatures (integrity; trust is pyHanko's part)."""
    path = tmp_path / "signed.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(["pdfsig", "-nocert", str(path)], capture_output=True, check=False)
    return done.stdout.decode() + done.stderr.decode()


def python(coroutine: Coroutine[Any, Any, T]) -> T:
    """Python's half, in a thread of its own: Playwright's sync API keeps a loop in this one."""
    with ThreadPoolExecutor(1) as worker:
        return worker.submit(asyncio.run, coroutine).result()


def signed_in_the_browser(
    page: Page, world: World, pdf: bytes, name: str, seat: int, holder: str | None = None
) -> bytes:
    """Python prepares, the page signs with ``holder``'s stored key (``name``'s by default),
    Python finishes."""
    member = world.members[name]
    prepared = python(
        pades.prepare(pdf, member.cert, [world.sub.cert], field=f"expert-{seat}", name=name)
    )
    signer = world.members[holder or name].page()
    signature = page.evaluate(SIGN, {"member": signer, "toSign": b64(prepared.to_sign)})
    finished = python(
        pades.finish(prepared.state, base64.b64decode(signature, validate=True), world.stamper)
    )
    return finished.pdf


def test_members_sign_the_report_in_turn_from_their_browsers(
    browser_page: Page | None, world: World, tmp_path: Path
) -> None:
    page = ready(browser_page)
    pdf = report()
    for seat, name in enumerate(MEMBERS, start=1):
        pdf = signed_in_the_browser(page, world, pdf, name, seat)
    found = python(pades.verify_signatures(pdf, world.trust, expected=3))
    assert [s.field for s in found] == ["expert-1", "expert-2", "expert-3"]
    assert [name in s.signer for s, name in zip(found, MEMBERS, strict=True)] == [True] * 3
    assert all(s.timestamped_at == T0 for s in found)
    checked = pdfsig(pdf, tmp_path)
    assert checked.count("Signature is Valid.") == 3, checked


def test_a_signature_from_another_members_key_is_refused(
    browser_page: Page | None, world: World
) -> None:
    page = ready(browser_page)
    with pytest.raises(PdfSignatureError) as caught:
        signed_in_the_browser(page, world, report(), "李明", 1, holder="外人")
    assert caught.value.code == "signature_invalid"
