"""The expert's half of a remote PAdES signature (web/js/pades.js) against ca.pades, in Debian's
chromium.

Python prepares the report's new revision (ca.pades.prepare); the page signs ``to_sign`` with
a key imported into the keystore, stored in IndexedDB and loaded back, as an expert's browser
holds it (web/js/keystore.js); Python finishes with the built-in TSA's time-stamp
(ca.pades.finish). The PDF must hold for pyHanko (ca.pades.verify_signatures) and for poppler's
pdfsig. The modules are served as plain files from web/. Missing chromium fails.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
from browser import checked, chromium_page, in_a_thread, require_chromium, web_origin
from cryptography.hazmat.primitives import serialization
from fpdf import FPDF
from playwright.sync_api import Page
from signers import Member, pdfsig, signers

from ca import pades, pki
from ca import primitives as p
from ca.errors import PdfSignatureError

TIMEOUT_MS = 30_000
T0 = datetime(2026, 4, 17, 1, 30, tzinfo=UTC)
MEMBERS: dict[str, pki.KeyKind] = {"李明": "ec", "张华": "ec", "王芳": "rsa"}
T = TypeVar("T")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def page_key(member: Member) -> dict[str, str]:
    """What the page imports: the PKCS#8 key, its kind and the certificate."""
    der = member.key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    kind = "P-256" if isinstance(member.key, p.EcPrivateKey) else "RSA"
    cert = member.cert.public_bytes(serialization.Encoding.DER)
    return {"pkcs8": b64(der), "kind": kind, "cert": b64(cert)}


@dataclass(frozen=True)
class World:
    sub: pki.CertificateAuthority
    members: dict[str, Member]
    stamper: pades.PadesTimeStamper
    trust: pades.Trust


@pytest.fixture(scope="module")
def world() -> World:
    """The members' keys under a CA with fresh CRLs, and the built-in TSA."""
    made = signers(T0, {**MEMBERS, "外人": "ec"})
    return World(made.sub, made.members, pades.PadesTimeStamper(made.stamper), made.trust)


@pytest.fixture(scope="module")
def origin() -> Iterator[str | None]:
    yield from web_origin()


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


def signed_in_the_browser(
    page: Page, world: World, pdf: bytes, name: str, seat: int, holder: str | None = None
) -> bytes:
    """Python prepares, the page signs with ``holder``'s stored key (``name``'s by default),
    Python finishes."""
    member = world.members[name]
    prepared = in_a_thread(
        pades.prepare(pdf, member.cert, [world.sub.cert], field=f"expert-{seat}", name=name)
    )
    signer = page_key(world.members[holder or name])
    signature = page.evaluate(SIGN, {"member": signer, "toSign": b64(prepared.to_sign)})
    finished = in_a_thread(
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
    found = in_a_thread(pades.verify_signatures(pdf, world.trust, expected=3))
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
