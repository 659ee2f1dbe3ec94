"""The evaluation report: rendered in Chinese, signed by each expert in turn (PAdES with our
TSA's time-stamps), and checked as a reader would, by pyHanko and by poppler's pdfsig."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from signers import pdfsig

from bidroom import report
from bidroom.errors import ReportError
from ca import pades, pki, tsa
from ca import primitives as p
from ca.errors import PdfSignatureError

T0 = datetime.now(UTC).replace(microsecond=0)
EXPERTS = ("李明", "张华", "王芳")
REVOKED = "赵强"

MODEL = {
    "tender": "ZSCG-2026-017",
    "lot": "1",
    "title": "六横岛环卫一体化服务项目",
    "created_at": "2026-04-17T09:30:00+00:00",
    "committee": {
        "leader": "李明",
        "seats": [
            {"seat": "A1", "venue": "主会场（舟山）", "expert": "李明"},
            {"seat": "B1", "venue": "副会场（宁波）", "expert": "张华", "note": "替补"},
            {"seat": "C1", "venue": "副会场（台州）", "expert": "王芳"},
        ],
    },
    "reviews": [
        {"bidder": "海洁环境", "passed": True},
        {"bidder": "蓝天保洁", "passed": False, "reasons": ["投标保证金金额不足"]},
    ],
    "items": [{"id": "T1", "name": "技术方案"}, {"id": "T2", "name": "服务承诺"}],
    "scores": [
        {
            "bidder": "海洁环境",
            "price": "1234567.00",
            "price_score": "28.50",
            "items": {"T1": "40.00", "T2": "18.33"},
            "total": "86.83",
        }
    ],
    "ranking": [{"rank": 1, "bidder": "海洁环境", "total": "86.83"}],
    "recommended": ["海洁环境"],
    "flags": [
        {
            "expert": "张华",
            "bidder": "海洁环境",
            "item": "T1",
            "kind": "偏离均值超过30%",
            "resolution": "已重新评分",
        }
    ],
    "clarifications": [
        {"bidder": "海洁环境", "question": "请说明车辆配置", "answer": "配置压缩车6辆"}
    ],
    "dissent": [{"expert": "王芳", "text": "对技术方案评分保留意见"}],
}


def extract_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True)
    return done.stdout.decode()


# rendering ---------------------------------------------------------------------------------


def test_the_report_renders_in_chinese_and_reads_back(tmp_path: Path) -> None:
    pdf = report.render(report.Report.model_validate(MODEL))
    text = extract_text(pdf, tmp_path)
    for phrase in ("评标报告", "六横岛环卫一体化服务项目", "投标保证金金额不足", "已重新评分"):
        assert phrase in text
    assert "推荐中标候选人（按顺序）：海洁环境" in text
    assert "对技术方案评分保留意见" in text


def test_each_members_own_sheet_is_in_the_report_so_their_signature_binds_it(
    tmp_path: Path,
) -> None:
    """Issue 15: the report held only the committee's aggregate per item, so a member's PAdES
    signature bound nothing they scored. Each member's own sheet, per bid and item, is in it."""
    own = {  # member -> bidder -> (技术方案, 服务承诺, 合计): numbers no aggregate has
        "李明": {"海洁环境": ("41.5", "18", "59.5"), "蓝天保洁": ("33.25", "17", "50.25")},
        "张华": {"海洁环境": ("38.75", "19.5", "58.25"), "蓝天保洁": ("30.5", "16", "46.5")},
        "王芳": {"海洁环境": ("39.75", "17.5", "57.25"), "蓝天保洁": ("31", "15.5", "46.5")},
    }
    sheets = [
        {"expert": e, "bidder": b, "items": {"T1": t1, "T2": t2}, "total": total}
        for e, per_bid in own.items()
        for b, (t1, t2, total) in per_bid.items()
    ]
    text = extract_text(
        report.render(report.Report.model_validate({**MODEL, "sheets": sheets})), tmp_path
    )
    assert "各评标专家评分表" in text
    table = " ".join(text.split())  # pdftotext gives a table cell by cell, row after row
    for expert, per_bid in own.items():
        for bidder, numbers in per_bid.items():
            assert " ".join((expert, bidder, *numbers)) in table, (expert, bidder)


def test_the_same_report_gives_the_same_bytes() -> None:
    model = report.Report.model_validate(MODEL)
    assert report.render(model) == report.render(model)
    assert b"D:20260417093000" in report.render(model)  # the creation date is the report's


def test_fifty_items_and_a_hundred_bidders_fit_on_a4(tmp_path: Path) -> None:
    """The score table is split into tables of a few item columns each, all on A4."""
    items = [{"id": f"T{n}", "name": f"评分{n:02d}"} for n in range(1, 51)]
    bidders = [f"舟山第{n:03d}建设公司" for n in range(1, 101)]
    scores = [
        {
            "bidder": bidder,
            "price": "4123456.78",
            "price_score": "28.50",
            "items": {item["id"]: "1.25" for item in items}
            | ({"T50": "7.77"} if bidder == bidders[-1] else {}),
            "total": "91.00",
        }
        for bidder in bidders
    ]
    reviews = [{"bidder": bidder, "passed": True} for bidder in bidders]
    ranking = [{"rank": n + 1, "bidder": b, "total": "91.00"} for n, b in enumerate(bidders)]
    model = {**MODEL, "items": items, "scores": scores, "reviews": reviews, "ranking": ranking}
    text = extract_text(report.render(report.Report.model_validate(model)), tmp_path)
    assert "评分50" in text and "舟山第100建设公司" in text and "7.77" in text
    assert "评分项 49–50（共 50 项）" in text


def test_a_layout_fpdf2_cannot_do_is_a_report_error() -> None:
    """A table row taller than a page (here a resolution of 6,000 characters)."""
    flag = {**MODEL["flags"][0], "resolution": "专家书面说明理由" * 750}  # type: ignore[index]
    with pytest.raises(ReportError) as caught:
        report.render(report.Report.model_validate({**MODEL, "flags": [flag]}))
    assert caught.value.code == "report_render_failed"
    assert caught.value.detail["tender"] == "ZSCG-2026-017"


def test_a_missing_font_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(report, "_fontconfig", lambda family: None)
    with pytest.raises(ReportError) as caught:
        report.find_cjk_font([tmp_path / "none.ttc"])
    assert caught.value.code == "report_font_missing"
    assert "fonts-wqy-microhei" in caught.value.message


# signing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    key: p.PrivateKey
    cert: x509.Certificate


@dataclass(frozen=True)
class World:
    root: pki.CertificateAuthority
    sub: pki.CertificateAuthority
    crls: tuple[bytes, ...]
    experts: dict[str, Holder]
    stamper: pades.PadesTimeStamper
    tsa_root: x509.Certificate
    tsa_chain: tuple[x509.Certificate, ...]

    def trust(self) -> pades.Trust:
        return pades.Trust(
            roots=[self.root.cert],
            tsa_roots=[self.tsa_root],
            intermediates=[self.sub.cert, *self.tsa_chain],
            crls=self.crls,
        )

    async def signed_by(self, pdf: bytes, name: str, seat: int) -> bytes:
        holder = self.experts[name]
        signer = pades.key_signer(holder.key, holder.cert, [self.sub.cert])
        return await pades.sign(pdf, signer, self.stamper, field=f"expert-{seat}", name=name)


@pytest.fixture(scope="module")
def world() -> World:
    """A root and sub CA with fresh CRLs (one expert revoked), and the built-in TSA."""
    root = pki.create_root("舟山市数字证书根CA", T0 - timedelta(days=30))
    sub = pki.create_intermediate(root, "舟山市数字证书二级CA", T0 - timedelta(days=30))
    experts = {
        name: Holder(*pki.issue_with_key(sub, pki.Identity(name), T0 - timedelta(days=1)))
        for name in (*EXPERTS, REVOKED)
    }
    sub = pki.revoke(sub, experts[REVOKED].cert.serial_number, T0 - timedelta(hours=1))
    root, root_crl = pki.publish_crl(root, T0 - timedelta(minutes=5), timedelta(days=60))
    sub, sub_crl = pki.publish_crl(sub, T0 - timedelta(minutes=5), timedelta(days=60))
    tsa_root = pki.create_root("bidroom 时间戳根CA", T0 - timedelta(days=30))
    platform = pki.create_intermediate(tsa_root, "bidroom 平台CA", T0 - timedelta(days=30))
    tsa_key, tsa_cert = tsa.issue_tsa_certificate(platform, T0 - timedelta(days=30))
    authority = tsa.TimeStampAuthority(tsa_cert, tsa_key, [platform.cert], clock=lambda: T0)
    stamper = pades.PadesTimeStamper(tsa.LocalStamper(authority, [tsa_root.cert]))
    crls = (p.crl_der(root_crl), p.crl_der(sub_crl))
    return World(root, sub, crls, experts, stamper, tsa_root.cert, (platform.cert,))


async def signed_by_all(world: World) -> bytes:
    pdf = report.render(report.Report.model_validate(MODEL))
    for seat, name in enumerate(EXPERTS, start=1):
        pdf = await world.signed_by(pdf, name, seat)
    return pdf


async def test_three_experts_sign_in_turn_and_every_signature_holds(
    world: World, tmp_path: Path
) -> None:
    pdf = await signed_by_all(world)
    found = await pades.verify_signatures(pdf, world.trust(), expected=3)
    assert [s.field for s in found] == ["expert-1", "expert-2", "expert-3"]
    assert all(s.timestamped_at == T0 for s in found)
    assert [name in s.signer for s, name in zip(found, EXPERTS, strict=True)] == [True] * 3
    checked = pdfsig(pdf, tmp_path)
    assert checked.count("Signature is Valid.") == 3, checked
    assert "李明" in extract_text(pdf, tmp_path)


async def test_a_changed_byte_breaks_the_signatures(world: World, tmp_path: Path) -> None:
    pdf = await signed_by_all(world)
    at = pdf.index(b"D:20260417093000") + 2  # inside the first revision, covered by all three
    changed = pdf[:at] + b"3" + pdf[at + 1 :]
    with pytest.raises(PdfSignatureError) as caught:
        await pades.verify_signatures(changed, world.trust(), expected=3)
    assert caught.value.code == "pdf_signature_broken"
    checked = pdfsig(changed, tmp_path)
    assert "Signature is Valid." not in checked, checked


async def test_a_revoked_certificate_is_refused(world: World) -> None:
    pdf = report.render(report.Report.model_validate(MODEL))
    pdf = await world.signed_by(pdf, REVOKED, 1)
    (status,) = await pades.inspect(pdf, world.trust())
    assert status.intact and status.valid and status.revoked and not status.trusted
    with pytest.raises(PdfSignatureError) as caught:
        await pades.verify_signatures(pdf, world.trust())
    assert caught.value.code == "pdf_signer_revoked"


async def test_an_unknown_root_is_not_trusted(world: World) -> None:
    pdf = await world.signed_by(report.render(report.Report.model_validate(MODEL)), "李明", 1)
    stranger = pki.create_root("别处的根CA", T0 - timedelta(days=1))
    trust = pades.Trust(
        roots=[stranger.cert], tsa_roots=[world.tsa_root], intermediates=[world.sub.cert]
    )
    with pytest.raises(PdfSignatureError) as caught:
        await pades.verify_signatures(pdf, trust)
    assert caught.value.code == "pdf_signer_untrusted"


def test_pdfsig_is_installed() -> None:
    assert shutil.which("pdfsig"), "install poppler-utils (.ci/run does)"


async def test_without_crls_the_signers_are_not_trusted(world: World) -> None:
    """Revocation is required for the signers' paths: no CRL at hand, no trust."""
    pdf = await world.signed_by(report.render(report.Report.model_validate(MODEL)), "李明", 1)
    trust = pades.Trust(
        roots=[world.root.cert], tsa_roots=[world.tsa_root], intermediates=[world.sub.cert]
    )
    with pytest.raises(PdfSignatureError) as caught:
        await pades.verify_signatures(pdf, trust)
    assert caught.value.code == "pdf_signer_untrusted"
