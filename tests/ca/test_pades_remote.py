"""Remote PAdES signing (ca.pades.prepare / finish): the key stays with its holder, who signs
the prepared bytes as WebCrypto would; the server finishes with our TSA's time-stamp. Each PDF
is checked as a reader would, by pyHanko (ca.pades.inspect) and by poppler's pdfsig."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asn1crypto import cms
from cryptography import x509
from fpdf import FPDF
from signers import Member, pdfsig, signers

from ca import pades, pki, tsa
from ca import primitives as p
from ca.errors import PdfSignatureError

T0 = datetime(2026, 4, 17, 1, 30, tzinfo=UTC)
MEMBERS: dict[str, pki.KeyKind] = {"李明": "ec", "张华": "ec", "王芳": "rsa"}


class CountingStamper:
    """The built-in TSA, counting the time-stamps it was asked for."""

    def __init__(self, inner: tsa.Timestamper):
        self.inner, self.asked = inner, 0

    async def stamp(self, message: tsa.Message) -> tsa.Stamp:
        self.asked += 1
        return await self.inner.stamp(message)


@dataclass(frozen=True)
class World:
    sub: pki.CertificateAuthority
    members: dict[str, Member]
    stamper: CountingStamper
    trust: pades.Trust
    tsa_trust: list[x509.Certificate]

    def timestamper(self) -> pades.PadesTimeStamper:
        return pades.PadesTimeStamper(self.stamper)


@pytest.fixture(scope="module")
def world() -> World:
    """The committee members' keys under a CA with fresh CRLs, and the built-in TSA."""
    made = signers(T0, {**MEMBERS, "外人": "ec"})
    return World(made.sub, made.members, CountingStamper(made.stamper), made.trust, made.tsa_roots)


def report() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=14)
    pdf.cell(text="Evaluation report ZSCG-2026-017, lot 1")
    return bytes(pdf.output())


def browser_sign(member: Member, to_sign: bytes) -> bytes:
    """What web/js/keystore.js's sign gives: ECDSA as raw r||s, or RSA-PSS (salt 32)."""
    return p.sign(member.key, to_sign)


def cms_sign(member: Member, to_sign: bytes) -> bytes:
    """What a token or another client may give: ECDSA as DER, or RSA PKCS#1 v1.5."""
    return p.cms_sign(member.key, to_sign)


async def signed(
    world: World,
    pdf: bytes,
    name: str,
    seat: int,
    how: Callable[[Member, bytes], bytes] = browser_sign,
) -> pades.Finished:
    member = world.members[name]
    prepared = await pades.prepare(
        pdf, member.cert, [world.sub.cert], field=f"expert-{seat}", name=name
    )
    return await pades.finish(prepared.state, how(member, prepared.to_sign), world.timestamper())


def tsa_imprint(cms_der: bytes) -> tsa.Digest:
    """The signature time-stamp's imprint: the hash of the signature value."""
    info = cms.ContentInfo.load(cms_der)["content"]["signer_infos"][0]
    return tsa.Digest("sha256", hashlib.sha256(info["signature"].native).digest())


@pytest.mark.parametrize(
    ("name", "how"),
    [("李明", browser_sign), ("李明", cms_sign), ("王芳", browser_sign), ("王芳", cms_sign)],
    ids=["ecdsa-raw", "ecdsa-der", "rsa-pss", "rsa-pkcs1v15"],
)
async def test_a_signature_made_in_two_halves_holds(
    world: World, tmp_path: Path, name: str, how: Callable[[Member, bytes], bytes]
) -> None:
    finished = await signed(world, report(), name, 1, how)
    (status,) = await pades.inspect(finished.pdf, world.trust)
    assert status.holds, status.summary
    assert (status.field, status.timestamped_at) == ("expert-1", T0)
    assert name in status.signer
    assert finished.cms.hex().upper().encode() in finished.pdf
    info = tsa.verify_token(finished.timestamp, tsa_imprint(finished.cms), world.tsa_trust)
    assert info.gen_time == T0
    checked = pdfsig(finished.pdf, tmp_path)
    assert checked.count("Signature is Valid.") == 1, checked


async def test_three_members_sign_in_turn_and_every_signature_holds(
    world: World, tmp_path: Path
) -> None:
    pdf = report()
    for seat, name in enumerate(MEMBERS, start=1):
        pdf = (await signed(world, pdf, name, seat)).pdf
    found = await pades.verify_signatures(pdf, world.trust, expected=3)
    assert [s.field for s in found] == ["expert-1", "expert-2", "expert-3"]
    assert [name in s.signer for s, name in zip(found, MEMBERS, strict=True)] == [True] * 3
    checked = pdfsig(pdf, tmp_path)
    assert checked.count("Signature is Valid.") == 3, checked


async def test_the_state_is_kept_as_a_file_and_finished_from_it(
    world: World, tmp_path: Path
) -> None:
    """Nothing is kept in memory between the halves: the state alone (a blob) finishes."""
    member = world.members["张华"]
    prepared = await pades.prepare(report(), member.cert, [world.sub.cert], field="expert-1")
    blob = tmp_path / "pending.state"
    blob.write_bytes(prepared.state)
    signature = browser_sign(member, prepared.to_sign)
    finished = await pades.finish(blob.read_bytes(), signature, world.timestamper())
    (status,) = await pades.inspect(finished.pdf, world.trust)
    assert status.holds, status.summary


async def test_a_state_from_an_older_revision_finishes_that_revision(world: World) -> None:
    """Two members prepared on the same revision: the second to finish does not contain the
    first's signature (the server sees it: its digest is not the latest revision's)."""
    first, second = world.members["李明"], world.members["张华"]
    pdf = report()
    early = await pades.prepare(pdf, first.cert, [world.sub.cert], field="expert-1")
    late = await pades.prepare(pdf, second.cert, [world.sub.cert], field="expert-2")
    done = await pades.finish(early.state, browser_sign(first, early.to_sign), world.timestamper())
    stale = await pades.finish(late.state, browser_sign(second, late.to_sign), world.timestamper())
    assert [s.field for s in await pades.inspect(done.pdf, world.trust)] == ["expert-1"]
    assert [s.field for s in await pades.inspect(stale.pdf, world.trust)] == ["expert-2"]


def _other_key(world: World, to_sign: bytes) -> bytes:
    return browser_sign(world.members["外人"], to_sign)


def _flipped(world: World, to_sign: bytes) -> bytes:
    good = browser_sign(world.members["李明"], to_sign)
    return good[:10] + bytes([good[10] ^ 1]) + good[11:]


def _other_bytes(world: World, to_sign: bytes) -> bytes:
    return browser_sign(world.members["李明"], to_sign + b"\x00")


@pytest.mark.parametrize(
    "forge",
    [_other_key, _flipped, _other_bytes, lambda world, to_sign: b"", lambda w, t: b"\x30" * 64],
    ids=["other-key", "flipped-bit", "other-bytes", "empty", "garbage"],
)
async def test_a_wrong_signature_is_refused_before_anything_is_embedded(
    world: World, forge: Callable[[World, bytes], bytes]
) -> None:
    prepared = await pades.prepare(
        report(), world.members["李明"].cert, [world.sub.cert], field="expert-1"
    )
    asked = world.stamper.asked
    with pytest.raises(PdfSignatureError) as caught:
        await pades.finish(prepared.state, forge(world, prepared.to_sign), world.timestamper())
    assert caught.value.code == "signature_invalid"
    assert world.stamper.asked == asked, "no time-stamp is asked for a refused signature"


@pytest.mark.parametrize(
    "spoil",
    [
        lambda state: b"",
        lambda state: b"not a state at all",
        lambda state: state[: len(state) // 2],
        lambda state: state + b"\x00" * 3,
        lambda state: state.replace(b"<0000", b"<1000", 1),
        lambda state: state.replace(b"/Type", b"/Typf", 1),
    ],
    ids=["empty", "garbage", "truncated", "trailing", "space-filled", "revision-changed"],
)
async def test_a_spoilt_state_is_refused(world: World, spoil: Callable[[bytes], bytes]) -> None:
    member = world.members["李明"]
    prepared = await pades.prepare(report(), member.cert, [world.sub.cert], field="expert-1")
    signature = browser_sign(member, prepared.to_sign)
    with pytest.raises(PdfSignatureError) as caught:
        await pades.finish(spoil(prepared.state), signature, world.timestamper())
    assert caught.value.code == "pdf_state_invalid"


async def test_an_unreadable_pdf_cannot_be_prepared(world: World) -> None:
    with pytest.raises(PdfSignatureError) as caught:
        await pades.prepare(b"%PDF-1.7 not really", world.members["李明"].cert, field="expert-1")
    assert caught.value.code == "pdf_sign_failed"
