"""Tenders, bids and public notices in a real browser against `bidroom demo` (real server).

Debian's chromium drives web/tenders.html, web/bid.html and web/public.html through
Playwright. The chair publishes a tender whose custodians are the demo notary and commission; a
demo bidder registers, seals in the browser (zip.js -> envelope.js) and uploads with tus.js;
the envelope the server stored opens in Python with the bidder's key (ca.envelope.open_to) to
the ZIP whose bid.json holds the typed price. A cut upload resumes after a reload; withdrawal is
a signed action. zip.js is checked on its own against Python's zipfile. Missing chromium fails.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import zipfile
from decimal import Decimal
from pathlib import Path

import httpx2 as httpx
import pytest
from browser import errors_of
from cryptography import x509
from envelopes import split
from playwright.sync_api import Browser, Page, Request, Route, expect
from pydantic_core import PydanticCustomError
from test_login_browser import Demo, new_page

from bidroom import tenders
from ca import envelope
from ca import primitives as p

MiB = 1 << 20
PRICE = "3650000"
TENDER_NUMBER = "ZJ-ZS-2026-0417"
TENDER_TITLE = "六横岛环卫一体化服务项目"
BIDDER_ORG = "六横海洁环境服务有限公司"
# Refusals a scenario provokes on purpose (a cut PATCH, a not-yet-published record) show up as
# failed requests in the console.
EXPECTED = re.compile(r"Failed to load resource|net::ERR_FAILED|net::ERR_ABORTED")


def person(demo: Demo, who: str) -> dict[str, object]:
    answer = httpx.get(f"{demo.url}/api/demo/people/{who}", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def sign_in(page: Page, demo: Demo, who: str) -> None:
    page.goto(f"{demo.url}/login.html?demo={who}")
    page.get_by_role("button", name="一键登录").click()
    expect(page.locator("#done")).to_be_visible()


def token_of(page: Page) -> str:
    return page.evaluate("JSON.parse(sessionStorage.getItem('bidroom.session')).token")  # type: ignore[no-any-return]


# zip.js -------------------------------------------------------------------------------------

ZIP_MEMBERS = """async () => {
  const {zip} = await import("/js/zip.js");
  const big = new Uint8Array(3 * 1024 * 1024 + 17);
  for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
  const members = [
    {name: "资格证明/营业执照.pdf", data: new Blob([big.subarray(0, 1000), big.subarray(1000)])},
    {name: "空文件.txt", data: new Uint8Array(0)},
    {name: "bid.json", data: JSON.stringify({format: "bidroom-bid-form", price: "3650000.00",
                                             project_manager: "张三"})},
  ];
  const blob = await zip(members, {date: new Date(2026, 11, 20, 9, 30, 14)});
  const B = await import("/js/bytes.js");
  const refused = [];
  for (const bad of [[{name: "a", data: ""}, {name: "a", data: ""}], [{name: "../x", data: ""}],
                     [{name: "/abs", data: ""}], [{name: "a\\\\b", data: ""}]]) {
    try { await zip(bad); refused.push("accepted"); } catch (e) { refused.push(e.code); }
  }
  return {zip: B.toBase64(new Uint8Array(await blob.arrayBuffer())), big: B.toBase64(big),
          type: blob.type, refused};
}"""


def test_a_zip_made_by_zip_js_opens_with_python_zipfile(demo: Demo, browser: Browser) -> None:
    page, _ = new_page(browser)
    errors = errors_of(page, EXPECTED)
    page.goto(f"{demo.url}/css/app.css")
    made = page.evaluate(ZIP_MEMBERS)
    data = base64.b64decode(made["zip"])
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None  # every member's CRC-32 checks
    assert archive.namelist() == ["bid.json", "资格证明/营业执照.pdf", "空文件.txt"]
    for info in archive.infolist():
        assert info.compress_type == zipfile.ZIP_STORED
        assert info.flag_bits & 0x800  # UTF-8 names
        assert info.date_time == (2026, 12, 20, 9, 30, 14)
    assert json.loads(archive.read("bid.json")) == {
        "format": "bidroom-bid-form",
        "price": "3650000.00",
        "project_manager": "张三",
    }
    assert archive.read("资格证明/营业执照.pdf") == base64.b64decode(made["big"])
    assert archive.read("空文件.txt") == b""
    assert made["type"] == "application/zip"
    assert made["refused"] == ["zip_duplicate", "zip_name", "zip_name", "zip_name"]
    assert not errors, errors
    page.context.close()


# the whole path: publish, register, seal, upload, receipt, resume, withdraw -------------------


def publish_tender(demo: Demo, browser: Browser) -> dict[str, object]:
    """The chair creates and publishes a one-lot tender through tenders.html; the lot."""
    # two custodians of two organisations outside the trading centre (the custody policy)
    custodians = [person(demo, who)["certificate_pem"] for who in ("custodian-2", "custodian-3")]
    page, _ = new_page(browser)
    errors = errors_of(page, EXPECTED)
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, demo, "chair")
    page.goto(f"{demo.url}/tenders.html")
    expect(page.locator("#next-step")).to_have_text("选择项目查看，或新建项目。")
    page.get_by_role("button", name="新建项目").click()
    page.fill("#t-number", TENDER_NUMBER)
    page.fill("#t-title", TENDER_TITLE)
    page.fill("#l0-ceiling_price", "3800000")
    page.fill("#l0-g-amount", "50000")
    page.fill("#l0-custodians", "\n".join(str(c) for c in custodians))
    expect(page.locator("[data-custodian-count]")).to_have_text("已填写 2 个证书")
    check_the_benchmark_shown(page)
    page.get_by_role("button", name="保存草稿").click()
    expect(page.locator("#next-step")).to_have_text("草稿已保存。核对无误后可发布。")
    expect(page.locator("#viewer .badge").first).to_have_text("草稿")
    # the draft, before publication, says what its range means
    expect(page.locator("#viewer [data-benchmark]")).to_have_text(DEFAULT_MEANING)
    page.get_by_role("button", name="发布").click()
    expect(page.locator("#next-step")).to_contain_text("已发布")
    card = page.locator("#viewer .lot-card")
    fingerprint = card.locator("[data-fingerprint]")
    expect(fingerprint).to_have_text(re.compile(r"^[0-9a-f]{16,}$"))
    expect(card.locator(".custodians li")).to_have_count(2)
    # publishing signed the lot's key statement with the chair's own key, in this browser
    expect(card.locator('[data-key-signed="yes"]')).to_contain_text("王敏")
    expect(card.get_by_role("link", name="进入开标会")).to_have_attribute(
        "href", re.compile(r"^/opening\.html\?room=opening-")
    )
    assert not page.locator("#tenders-error").is_visible()
    shown = fingerprint.text_content()
    listed = httpx.get(f"{demo.url}/api/tenders", timeout=10).json()
    # the demo's own tender is there too; this one is the lot whose key the page showed
    [tender] = [t for t in listed if t["lots"][0]["key_fingerprint"] == shown]
    assert tender["status"] == "published"
    [lot] = tender["lots"]
    assert lot["ceiling_price"] == "3800000.00"
    assert not errors, errors
    page.context.close()
    return lot  # type: ignore[no-any-return]


DEFAULT_MEANING = (
    "K 从 0.00、0.01、0.02、0.03、0.04、0.05 中抽取（共 6 个值）；基准价 B = S ×（1 − K），"
    "即有效报价平均值 S 的 95.00%～100.00%（K 越大，B 越低）。"
)


def check_the_benchmark_shown(page: Page) -> None:
    """The editor explains the lot's k_range as it is typed (web/js/krange.js) and refuses to
    save one that publication would refuse; the default range is left as it was."""
    meaning = page.locator("#l0-k-meaning")
    expect(meaning).to_have_text(DEFAULT_MEANING)
    # the "B = S x K" convention typed into a "B = S x (1 - K)" form: said, with the fix
    page.fill("#l0-k-min", "0.95")
    page.fill("#l0-k-max", "0.99")
    expect(meaning).to_have_attribute("data-ok", "no")
    expect(meaning).to_contain_text("下限 0.01、上限 0.05、步长 0.01")
    page.get_by_role("button", name="保存草稿").click()
    error = page.locator("#tenders-error")
    expect(error).to_contain_text("标段 1：下浮系数 K 的范围无效")
    expect(error).to_contain_text("k_range_invalid")
    # an upper end off the step: the values that can be drawn, and the one that cannot
    page.fill("#l0-k-min", "0.00")
    page.fill("#l0-k-max", "0.05")
    page.fill("#l0-k-step", "0.03")
    expect(meaning).to_have_text(
        "K 上限 0.05 不在步长上：只能抽到 0.00、0.03，抽不到 0.05。请调整上限或步长。"
    )
    page.click("#lang")
    expect(meaning).to_contain_text("K can be 0.00, 0.03, never 0.05")
    page.fill("#l0-k-step", "0.005")
    expect(meaning).to_have_text(
        "K is drawn from 0.000, 0.005, 0.010, …, 0.050 (11 values); the benchmark "
        "B = S × (1 − K) is 95.00% to 100.00% of S, the mean of the valid prices "
        "(the larger K, the lower B)."
    )
    page.click("#lang")
    page.fill("#l0-k-step", "0.01")
    expect(meaning).to_have_text(DEFAULT_MEANING)


K_RANGES = [
    ["0.00", "0.05", "0.01"],
    ["0.00", "0.05", "0.03"],
    ["0.00", "0.05", "0.005"],
    ["0.020", "0.030", "0.001"],
    ["0.01", "0.06", "0.02"],
    ["0", "0.2", "0.2"],
    ["0.00", "0.20", "0.05"],
    ["0.00", "0.21", "0.01"],
    ["0.95", "0.99", "0.01"],
    ["0", "5", "1"],
    ["0.05", "0.00", "0.01"],
    ["0.00", "0.05", "0.06"],
    ["0.00", "0.05", "0"],
    ["0", "0.0000010", "0.0000001"],
    ["0", "0.000002", "0.000001"],
    ["0", "1E-1", "0.01"],
    ["0", "-0.1", "0.01"],
    ["0", "0.1"],
]
KRANGE = """async (ranges) => {
  const krange = await import("/js/krange.js");
  return ranges.map((range) => krange.meaning(range));
}"""


def test_the_pages_k_range_check_is_publications(demo: Demo, browser: Browser) -> None:
    """web/js/krange.js accepts exactly the ranges bidroom.tenders publishes, and its benchmark
    bounds are (1 - high) and (1 - low) of the mean, exactly."""

    def published(range_: list[str]) -> bool:
        try:
            tenders.check_k_range(range_)
        except PydanticCustomError as refused:
            assert refused.type == "k_range_invalid"
            return False
        return True

    page, _ = new_page(browser)
    page.goto(f"{demo.url}/tenders.html")
    meanings = page.evaluate(KRANGE, K_RANGES)
    for range_, meant in zip(K_RANGES, meanings, strict=True):
        assert meant["ok"] == published(range_), (range_, meant)
        if meant["ok"]:
            low, high, step = (Decimal(v) for v in range_)
            assert meant["count"] == (high - low) / step + 1
            assert Decimal(meant["lowest"]) == (1 - high) * 100
            assert Decimal(meant["highest"]) == (1 - low) * 100
        else:
            assert meant["code"] == "k_range_invalid"
    assert meanings[1]["reason"] == "step" and meanings[1]["values"] == ["0.00", "0.03"]
    assert meanings[8]["suggested"] == ["0.01", "0.05", "0.01"]
    assert meanings[3]["values"] == ["0.020", "0.021", "0.022", "…", "0.030"]
    assert meanings[8 + 0]["reason"] == "over" and meanings[9]["suggested"] is None
    page.context.close()


def fill_bid(page: Page, price: str, document: Path) -> None:
    page.fill("#f-price", price)
    page.fill("#f-duration_days", "365")
    page.fill("#f-quality", "合格")
    page.fill("#f-project_manager", "张三")
    page.select_option("#g-kind", "bank")
    page.fill("#g-issuer", "中国银行舟山分行")
    page.fill("#g-number", "BG-2026-0001")
    page.fill("#g-amount", "50000")
    page.fill("#g-payer", BIDDER_ORG)
    page.set_input_files("#documents", document)


def stored_plaintext(
    demo: Demo, token: str, lot: str, tmp_path: Path, who: str = "bidder-1"
) -> zipfile.ZipFile:
    """My current envelope as the server stored it, opened with the bidder's key in Python."""
    answer = httpx.get(
        f"{demo.url}/api/lots/{lot}/bids/mine/envelope",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    key = p.load_private_key(str(person(demo, who)["key_pkcs8_pem"]).encode())
    target = tmp_path / "bid.zip"
    verified = envelope.open_to(io.BytesIO(answer.content), target, key)
    assert verified.header.lot == lot
    return zipfile.ZipFile(target)


@pytest.fixture(scope="module")
def lot(demo: Demo, browser: Browser) -> dict[str, object]:
    return publish_tender(demo, browser)


def test_a_tender_is_published_and_a_bid_sealed_uploaded_resumed_and_withdrawn(
    demo: Demo, browser: Browser, lot: dict[str, object], tmp_path: Path
) -> None:
    lot_id = str(lot["id"])
    document = tmp_path / "技术标.pdf"
    document.write_bytes(bytes(range(256)) * (9 * MiB // 256 + 3))  # three 4 MiB tus chunks

    page, _ = new_page(browser)
    errors = errors_of(page, EXPECTED)
    page.on("dialog", lambda dialog: dialog.accept())
    # The public notice, linked from the home page, lists the lot with its bid link; no login.
    page.goto(f"{demo.url}/")
    page.get_by_role("link", name="交易公告（公开，无需登录）").click()
    expect(page).to_have_url(f"{demo.url}/public.html")
    notice = page.locator(f'[data-lot="{lot_id}"]')
    expect(notice).to_contain_text("3,800,000.00 元")
    expect(notice.get_by_role("link", name="参与投标")).to_have_attribute(
        "href", f"/bid.html?lot={lot_id}"
    )
    page.goto(f"{demo.url}/bid.html?lot={lot_id}")
    expect(page.locator("#next-step")).to_have_text("下一步：使用数字证书登录。")
    expect(page.locator("#countdown")).to_contain_text("距截止")

    sign_in(page, demo, "bidder-1")
    page.goto(f"{demo.url}/bid.html?lot={lot_id}")
    expect(page.locator("#next-step")).to_have_text("下一步：报名参加本标段。")
    page.get_by_role("button", name="报名", exact=True).click()
    expect(page.locator("#register-state")).to_have_text("已报名本标段。")

    # A price of 0.00 is refused before anything is sealed: once sealed, no one could see it
    # before the opening (docs/evaluation.md "Where a price of 0.00 is stopped").
    fill_bid(page, "0.00", document)
    page.get_by_role("button", name="加密并上传").click()
    expect(page.locator("#bid-error")).to_contain_text("投标报价应大于 0.00")
    expect(page.locator("#bid-error")).to_contain_text("price_not_positive")
    expect(page.locator("#f-price")).to_have_attribute("aria-invalid", "true")
    fill_bid(page, "１００", document)  # full-width digits: not an amount
    page.get_by_role("button", name="加密并上传").click()
    expect(page.locator("#bid-error")).to_contain_text("form_money")

    # Version 1: sealed here and uploaded; the receipt's digest is what the server stored.
    fill_bid(page, PRICE, document)
    page.get_by_role("button", name="加密并上传").click()
    receipt = page.locator("#receipt")
    expect(receipt).to_be_visible(timeout=60_000)
    expect(page.locator("#receipt-time")).to_contain_text("北京时间")
    token = token_of(page)
    mine = httpx.get(
        f"{demo.url}/api/lots/{lot_id}/bids/mine",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()["bids"]
    assert [(b["version"], b["status"]) for b in mine] == [(1, "current")]
    expect(page.locator("#receipt-sha")).to_have_text(mine[0]["envelope_sha256"])
    with page.expect_download() as download:
        page.get_by_role("button", name="下载回执").click()
    saved = json.loads(Path(download.value.path()).read_text())
    assert saved["envelope_sha256"] == mine[0]["envelope_sha256"]
    assert saved["audit"]["format"] == "bidroom-receipt"

    plain = stored_plaintext(demo, token, lot_id, tmp_path)
    assert plain.namelist()[0] == "bid.json"
    form = json.loads(plain.read("bid.json"))
    assert form["price"] == "3650000.00"
    assert form["lot"] == lot_id
    assert form["format"] == "bidroom-bid-form"
    assert form["duration_days"] == 365
    assert form["guarantee"] == {
        "kind": "bank",
        "issuer": "中国银行舟山分行",
        "number": "BG-2026-0001",
        "amount": "50000.00",
        "payer": BIDDER_ORG,
    }
    assert plain.read("技术标.pdf") == document.read_bytes()

    # Version 2, cut off after its first chunk: the page waits for the link (its own clock
    # fast-forwarded through its 300 s of patience) and stops as interrupted; a reload finds the
    # sealed envelope in IndexedDB and resumes the same upload from the server's offset.
    patches: list[str] = []

    def cut(route: Route, request: Request) -> None:
        if request.method != "PATCH":
            route.continue_()
            return
        patches.append(request.headers["upload-offset"])
        if len(patches) == 1:
            route.continue_()
        else:
            route.abort("internetdisconnected")

    page.route("**/api/uploads/*", cut)
    page.clock.install()  # the page's time runs on, and jumps when the test says
    fill_bid(page, "3600000", document)
    page.get_by_role("button", name="加密并上传").click()
    expect(page.locator("#progress-text")).to_contain_text("网络中断，正在第", timeout=60_000)
    failed = page.locator("#bid-error")
    for _ in range(200):  # 20 s of the page's time a step: 300 s is spent after about 16
        if failed.is_visible():
            break
        page.clock.fast_forward(20_000)
        page.wait_for_timeout(250)
    expect(failed).to_contain_text("upload_interrupted")
    assert patches[0] == "0" and len(patches) >= 2
    page.unroute("**/api/uploads/*")
    resumed: list[str] = []
    page.on(
        "request",
        lambda r: (
            resumed.append(r.headers.get("upload-offset", "")) if r.method == "PATCH" else None
        ),
    )
    creations: list[str] = []
    page.on(
        "request",
        lambda r: creations.append(r.url) if r.method == "POST" and "/uploads" in r.url else None,
    )
    page.reload()
    expect(page.locator("#pending")).to_be_visible()
    expect(page.locator("#next-step")).to_contain_text("尚未上传完成")
    page.get_by_role("button", name="继续上传").click()
    # (version 1's receipt stays shown meanwhile: it is the current bid until version 2 is in)
    expect(page.locator('[data-version="2"] .badge')).to_have_text("有效", timeout=60_000)
    expect(page.locator("#pending")).to_be_hidden()
    assert resumed and resumed[0] == str(4 * MiB), resumed
    assert creations == []  # the same upload, not a new one
    version_2 = page.locator('[data-version="2"]').get_attribute("data-sha256")
    expect(page.locator("#receipt-sha")).to_have_text(str(version_2))
    expect(page.locator('[data-version="1"] .badge')).to_have_text("已被替换")
    plain = stored_plaintext(demo, token, lot_id, tmp_path)
    assert json.loads(plain.read("bid.json"))["price"] == "3600000.00"

    # Withdrawal: a signed action; the current version becomes withdrawn.
    page.locator('[data-version="2"]').get_by_role("button", name="撤回").click()
    expect(page.locator('[data-version="2"] .badge')).to_have_text("已撤回")
    expect(page.locator("#receipt")).to_be_hidden()
    assert not page.locator("#bid-error").is_visible()

    # In English too.
    page.click("#lang")
    expect(page.locator("#lot-facts")).to_contain_text("Ceiling price")
    expect(page.locator('[data-version="2"] .badge')).to_have_text("Withdrawn")
    page.click("#lang")
    assert not errors, errors
    page.context.close()


def sealed_elsewhere(demo: Demo, who: str, lot: str, opening_key: str, price: str) -> bytes:
    """An envelope sealed outside the browser (as `bidroom seal` does): ZIP with bid.json."""
    files = person(demo, who)
    key = p.load_private_key(str(files["key_pkcs8_pem"]).encode())
    cert = x509.load_pem_x509_certificate(str(files["certificate_pem"]).encode())
    plain = io.BytesIO()
    with zipfile.ZipFile(plain, "w") as archive:
        form = {"format": "bidroom-bid-form", "version": 1, "lot": lot, "price": price}
        archive.writestr("bid.json", json.dumps(form, ensure_ascii=False))
        archive.writestr("商务标.pdf", b"%PDF-1.7 " * 1000)
    plain.seek(0)
    out = io.BytesIO()
    envelope.seal(
        plain,
        out,
        lot=lot,
        sealer=envelope.Sealer(cert.public_bytes(p.serialization_der()), key),
        opening_key=p.load_public_der(base64.b64decode(opening_key)),  # type: ignore[arg-type]
        client={"name": "bidroom seal", "version": "1"},
    )
    return out.getvalue()


def test_an_envelope_sealed_elsewhere_uploads_as_a_file_and_refusals_read_in_chinese(
    demo: Demo, browser: Browser, lot: dict[str, object], tmp_path: Path
) -> None:
    lot_id, opening_key = str(lot["id"]), str(lot["opening_key"])
    page, _ = new_page(browser)
    errors = errors_of(page, EXPECTED)
    sign_in(page, demo, "bidder-2")
    page.goto(f"{demo.url}/bid.html?lot={lot_id}")
    page.get_by_role("button", name="报名", exact=True).click()
    expect(page.locator("#register-state")).to_have_text("已报名本标段。")
    error = page.locator("#bid-error")

    # For another lot: the page reads the header and says so before uploading anything.
    other = tmp_path / "other-lot.bidenv"
    other.write_bytes(sealed_elsewhere(demo, "bidder-2", "另一个标段", opening_key, "1.00"))
    page.set_input_files("#envelope-file", other)
    page.get_by_role("button", name="上传", exact=True).click()
    expect(error).to_have_text("该投标文件不是为本标段加密的（错误代码：envelope_lot）")

    # Altered after sealing: the server refuses it, and the page says why in Chinese.
    good = sealed_elsewhere(demo, "bidder-2", lot_id, opening_key, "3700000.00")
    head, records, trailer = split(good)
    bent = bytearray(records[0])
    bent[20] ^= 1
    altered = tmp_path / "altered.bidenv"
    altered.write_bytes(head + bytes(bent) + b"".join(records[1:]) + trailer)
    page.set_input_files("#envelope-file", altered)
    page.get_by_role("button", name="上传", exact=True).click()
    expect(error).to_have_text(re.compile(r"^投标文件.+（错误代码：envelope_\w+）$"))
    expect(page.locator("#versions li.empty")).to_have_text("尚未递交")

    # The intact one is accepted: receipt, version 1, and Python opens what the server stored.
    sealed = tmp_path / "bid.bidenv"
    sealed.write_bytes(good)
    page.set_input_files("#envelope-file", sealed)
    page.get_by_role("button", name="上传", exact=True).click()
    expect(page.locator("#receipt")).to_be_visible(timeout=60_000)
    expect(error).to_be_hidden()
    expect(page.locator("#receipt-sha")).to_have_text(hashlib.sha256(good).hexdigest())
    expect(page.locator('[data-version="1"] .badge')).to_have_text("有效")
    plain = stored_plaintext(demo, token_of(page), lot_id, tmp_path, "bidder-2")
    assert json.loads(plain.read("bid.json"))["price"] == "3700000.00"
    assert not errors, errors
    page.context.close()


def test_the_bid_page_seals_nothing_to_a_key_its_chair_did_not_sign(
    demo: Demo, browser: Browser, lot: dict[str, object], tmp_path: Path
) -> None:
    """The operator's swap, as the page meets it: the lot served with the operator's own key
    (and that key's fingerprint) beside the chair's signature of the real one. The page says
    so before the bidder types anything, and sealing is refused before a byte is uploaded."""
    lot_id = str(lot["id"])
    operator = p.generate_ec_key().public_key()
    swapped = {
        "opening_key": base64.b64encode(p.public_der(operator)).decode(),
        "key_fingerprint": hashlib.sha256(p.ec_point(operator)).hexdigest(),
    }

    def served_swapped(route: Route, request: Request) -> None:
        listed = route.fetch().json()
        for tender in listed:
            for each in tender["lots"]:
                if each["id"] == lot_id:
                    each.update(swapped)
        route.fulfill(json=listed)

    page, _ = new_page(browser)
    errors = errors_of(page, EXPECTED)
    sign_in(page, demo, "bidder-3")
    uploads: list[str] = []
    page.on("request", lambda r: uploads.append(r.url) if "/uploads" in r.url else None)
    page.route("**/api/tenders", served_swapped)
    page.goto(f"{demo.url}/bid.html?lot={lot_id}")
    warning = page.locator('#fact-key-signer [data-code="signature_invalid"]')
    expect(warning).to_have_text("签名无法验证。请勿密封，并向监督人员报告。")
    page.get_by_role("button", name="报名", exact=True).click()
    expect(page.locator("#register-state")).to_have_text("已报名本标段。")
    document = tmp_path / "技术标.pdf"
    document.write_bytes(b"%PDF-1.7\n" + bytes(1000))
    fill_bid(page, "3550000", document)
    page.get_by_role("button", name="加密并上传").click()
    expect(page.locator("#bid-error")).to_contain_text("signature_invalid")
    assert uploads == [], "nothing was uploaded"

    # the same page, served the lot as the chair signed it: the signer is shown by name
    page.unroute("**/api/tenders")
    page.goto(f"{demo.url}/bid.html?lot={lot_id}")
    expect(page.locator('#fact-key-signer [data-code="signed"]')).to_contain_text("王敏")
    assert not errors, errors
    page.context.close()
