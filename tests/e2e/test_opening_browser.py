"""A whole remote opening in Chromium, against `bidroom demo` (a real server, real keys).

The demo publishes its tender with the opening a minute away and three sealed bids. In separate
browser contexts (each its own storage, as on separate machines): the chair, three bidders, the
supervisor and two of the three key custodians sign in with their demo certificates and open
the opening page. Bidders sign in (签到); at the deadline the clock fixes the bids; the chair
commits the draw of K and starts the window; two bidders decrypt in their browsers (one reloads
mid-way and sees the same state), the third reports a network fault; the chair asks the
custodians, two submit their shares from their own pages and the bid is opened by the quorum;
the sheet goes to every screen at once; K is revealed and a bidder recomputes it; an objection
is answered; the record is generated, confirmed by the three bidders (one dissenting, in
writing), countersigned and published. The supervisor saw all of it; the audit bundle exported
afterwards verifies offline.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx
from browser import person_page
from playwright.sync_api import Browser, expect
from test_login_browser import Demo

OPENING_IN_MINUTES = "0.75"  # the demo lot's deadline: long enough to sign everyone in
STEP_MS = 20_000
DEADLINE_MS = 120_000
# Refusals a page provokes on purpose, e.g. a record not yet published.
EXPECTED = re.compile(r"Failed to load resource: the server responded with a status of 404")
DEMO_ARGS = (
    "--opening-in",
    OPENING_IN_MINUTES,
)  # more `bidroom demo` arguments (tests/e2e/conftest.py)


class Screen:
    """One person's browser: their own context, signed in with their demo key."""

    def __init__(self, browser: Browser, demo: Demo, who: str, room: str):
        self.who = who
        self.page, self.errors = person_page(browser, who, STEP_MS)
        self.context = self.page.context
        self.page.on("console", self._console)
        self.page.goto(f"{demo.url}/login.html?demo={who}&room={room}")
        self.page.get_by_role("button", name="一键登录").click()
        self.page.wait_for_url(re.compile(r"/opening\.html\?room="))
        expect(self.testid("connection")).to_have_attribute("data-status", "online")
        self.subject: str = self.page.evaluate(
            "JSON.parse(sessionStorage.getItem('bidroom.session')).holder.subject"
        )

    def _console(self, message: object) -> None:
        text = getattr(message, "text", "")
        if getattr(message, "type", "") == "error" and not EXPECTED.search(text):
            self.errors.append(f"{self.who}: {text}")

    def testid(self, name: str) -> object:
        return self.page.get_by_test_id(name)

    def click(self, name: str) -> None:
        self.page.get_by_test_id(name).click()

    def confirm_dialog(self, text: str | None = None) -> None:
        if text is not None:
            self.page.get_by_test_id("ask-input").fill(text)
        self.page.get_by_test_id("ask-ok").click()

    def phase(self, phase: str, timeout: int = STEP_MS) -> None:
        expect(self.page.get_by_test_id("phase")).to_have_attribute(
            "data-phase", phase, timeout=timeout
        )

    def status_of(self, subject: str, status: str) -> None:
        expect(self.page.get_by_test_id(f"status-{subject}")).to_have_attribute(
            "data-status", status
        )


def statuses(screen: Screen) -> str:
    """The status table as the person reads it, without the ticking time left."""
    text: str = screen.page.get_by_test_id("statuses").inner_text()
    return re.sub(r"\d\d:\d\d:\d\d", "hh:mm:ss", text)


def contribution_of(bidder: Screen, room: str) -> str:
    """The contribution to K this bidder's browser made at the sign-in (hex)."""
    key = f"bidroom.contribution.{room}.{bidder.subject}"
    value: str | None = bidder.page.evaluate("(k) => localStorage.getItem(k)", key)
    assert value is not None and re.fullmatch(r"[0-9a-f]{64}", value), value
    return value


def room_of(demo: Demo) -> str:
    return demo.room()


def audit_env(demo: Demo) -> dict[str, str]:
    var = demo.var.resolve()
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("BIDROOM_")},
        "BIDROOM_DATABASE_URL": f"sqlite+aiosqlite:///{var / 'bidroom.db'}",
        "BIDROOM_SECRET_KEY": (var / "secret.key").read_text().strip(),
        # the demo's audit key is <var>/audit/log-key.pem, locked with the passphrase beside it
        "BIDROOM_AUDIT_KEY_PASSPHRASE": (var / "audit-passphrase").read_text().strip(),
        "BIDROOM_TSA_SECRET": (var / "tsa-secret.key").read_text().strip(),  # the demo's TSA
        "BIDROOM_VAR_DIR": str(var),
    }


def test_a_whole_opening_with_a_bid_opened_by_the_custodians(
    demo: Demo, browser: Browser, tmp_path: Path
) -> None:
    room = room_of(demo)
    chair = Screen(browser, demo, "chair", room)
    supervisor = Screen(browser, demo, "supervisor", room)
    bidders = [Screen(browser, demo, f"bidder-{n}", room) for n in (1, 2, 3)]
    custodians = [Screen(browser, demo, f"custodian-{n}", room) for n in (1, 2)]
    screens = [chair, supervisor, *bidders, *custodians]
    b1, b2, b3 = bidders

    # sign-in, before the deadline
    chair.phase("signing_in")
    for bidder in bidders:
        bidder.click("sign-in")
        expect(bidder.testid("signed-in")).to_be_visible()
    expect(chair.testid("signed-in-count")).to_contain_text("3")
    # each sign-in committed the bidder's contribution to K, made and kept in their browser
    values = {b.subject: contribution_of(b, room) for b in bidders}
    for bidder in bidders:
        mine = bidder.testid(f"contribution-{bidder.subject}")
        expect(mine).to_contain_text(
            hashlib.sha256(bytes.fromhex(values[bidder.subject])).hexdigest()
        )
        expect(
            bidder.testid(f"contribution-{b2.subject if bidder is b1 else b1.subject}")
        ).to_have_count(0)

    # the deadline: the clock fixes the bids and the count is public
    for screen in screens:
        screen.phase("bids_fixed", DEADLINE_MS)
    expect(b1.testid("chair-panel")).to_be_hidden()
    expect(chair.testid("bid-count")).to_contain_text("3")

    # the draw's commitment, before any data key can reach the platform; then the window
    chair.click("commit-draw")
    expect(b1.testid("draw-commitment")).to_contain_text(re.compile(r"[0-9a-f]{64}"))
    chair.click("start-window")
    chair.confirm_dialog()
    for screen in screens:
        screen.phase("decrypting")
    # each bidder's page reveals their contribution by itself; nobody else sees it yet
    for bidder in bidders:
        expect(bidder.testid(f"contribution-{bidder.subject}")).to_have_attribute(
            "data-revealed", "true"
        )
    for bidder in bidders:
        expect(chair.testid(f"contribution-{bidder.subject}")).to_have_attribute(
            "data-revealed", "null"
        )
    for screen in screens:
        shown = screen.page.content()
        others = [v for subject, v in values.items() if subject != screen.subject]
        assert not [v for v in others if v in shown], screen.who

    # two bidders decrypt in their own browsers; the second reloads mid-way first
    b1.click("decrypt")
    b1.status_of(b1.subject, "decrypted")
    chair.status_of(b1.subject, "decrypted")
    before = statuses(b2)
    b2.page.reload()
    expect(b2.testid("connection")).to_have_attribute("data-status", "online")
    b2.phase("decrypting")
    assert statuses(b2) == before
    b2.status_of(b1.subject, "decrypted")  # from the deadline, every status is public
    b2.click("decrypt")
    b2.status_of(b2.subject, "decrypted")

    # the third bidder's decryption fails: a network fault (not the bidder's doing)
    b3.page.get_by_test_id("failure-cause").select_option("network_fault")
    b3.click("report-failure")
    b3.confirm_dialog()
    b3.status_of(b3.subject, "failed")

    # no bid is still sealed: the window closes; the custodians open the failed bid
    for screen in screens:
        screen.phase("settling")
    chair.click("request-quorum")
    chair.confirm_dialog("投标人网络故障，按招标文件约定启用开标密钥补救")
    for custodian in custodians:
        custodian.click("submit-share")
        expect(custodian.testid("share-error")).to_be_hidden()
    chair.status_of(b3.subject, "quorum_opened")
    supervisor.status_of(b3.subject, "quorum_opened")

    # the sheet, on every screen at once
    chair.click("publish-sheet")
    for screen in screens:
        screen.phase("sheet")
        expect(screen.testid(f"sheet-row-{b1.subject}")).to_contain_text("3650000.00")
        expect(screen.testid(f"sheet-row-{b3.subject}")).to_contain_text("3598000.00")
    expect(b1.testid(f"sheet-row-{b2.subject}")).to_contain_text("3712500.00")
    # with the sheet, every contribution is public
    for subject, value in values.items():
        expect(supervisor.testid(f"contribution-{subject}")).to_contain_text(value)

    # K revealed after the sheet, though the chair's browser lost the seed (the copy sealed to
    # the room at the commitment is opened); a bidder recomputes K in the browser
    chair.page.evaluate(
        "() => Object.keys(localStorage).filter((k) => k.startsWith('bidroom.draw.'))"
        ".forEach((k) => localStorage.removeItem(k))"
    )
    chair.click("reveal-draw")
    expect(b1.testid("draw-k")).to_contain_text(re.compile(r"0\.0\d"))
    expect(b1.testid("draw-formula")).to_contain_text("bidroom K v2")
    for screen in (b1, chair):
        screen.click("verify-k")
        expect(screen.testid("verify-result")).to_have_attribute("data-ok", "true")

    # an objection and the chair's answer
    b2.page.get_by_test_id("objection-text").fill("第二标段投标保证金金额是否满足要求，请说明。")
    b2.click("object")
    objection = chair.page.locator("[data-testid^=answer-]").first
    objection.click()
    chair.confirm_dialog("经核对，保证金金额不足，已如实记入开标记录，由评标委员会评审。")
    expect(b2.page.locator("[data-testid^=answer-text-]").first).to_contain_text("如实记入")

    # the record: generated, confirmed by each bidder (one dissents), countersigned, published
    chair.click("generate-record")
    chair.confirm_dialog()
    for screen in screens:
        screen.phase("record")
    for bidder in (b1, b3):
        bidder.click("opinion-confirm")
        bidder.click("confirm")
        expect(chair.testid(f"confirmation-{bidder.subject}")).to_be_visible()
    b2.click("opinion-dissent")
    b2.page.get_by_test_id("confirm-text").fill("对保证金核对结果有异议，保留申诉权利。")
    b2.click("confirm")
    expect(chair.testid(f"confirmation-{b2.subject}")).to_contain_text("保留申诉权利")
    chair.click("countersign")
    chair.phase("countersigned")
    chair.click("publish")
    for screen in screens:
        screen.phase("published")

    # the supervisor saw everything, the record is public, and the audit trail verifies
    log = supervisor.page.get_by_test_id("event-log")
    for event in (
        "opening.bid_decrypted",
        "opening.share_submitted",
        "opening.quorum_opened",
        "opening.sheet_published",
        "opening.record_published",
    ):
        expect(log.locator(f"[data-event='{event}']").first).to_be_attached()
    # a supervisor who opens the page only now reads the whole history in the event log
    late = Screen(browser, demo, "supervisor", room)
    screens.append(late)
    late.phase("published")
    late_log = late.page.get_by_test_id("event-log")
    for event in ("opening.count_published", "opening.window_started", "opening.bid_decrypted"):
        expect(late_log.locator(f"[data-event='{event}']").first).to_be_attached()
    record = httpx.get(f"{demo.url}/api/openings/{room}/record", timeout=10).json()
    assert record["confirmations"][b2.subject]["opinion"] == "dissent"
    assert {p["name"] for p in record["published"]["proofs"]} >= {
        "opening.record_generated",
        "opening.countersigned",
    }
    public = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai").new_page()
    public.goto(f"{demo.url}/public.html")
    # the demo's other tender, opened before its start, shows its record too
    published_record = public.locator("[data-record=ok]", has_text=record["digest"])
    expect(published_record).to_contain_text("3,650,000.00", timeout=STEP_MS)
    expect(published_record).to_contain_text("已由密钥分片解密")  # 绿源's bid, by the quorum
    signatures = published_record.get_by_test_id("record-signatures")
    expect(signatures).to_contain_text("有异议 1 家")
    # what its receipts are checked against, as the platform publishes it
    keys = published_record.get_by_test_id("record-audit-key")
    expect(keys).to_contain_text(record["audit"]["verifier_key"])
    roots_link = keys.get_by_role("link")
    expect(roots_link).to_have_attribute("href", "/.well-known/bidroom-tsa-roots.pem")
    public.context.close()
    bundle, roots = tmp_path / "bundle", tmp_path / "tsa-roots.pem"
    # checked against what the platform publishes: the record's key, the well-known roots
    roots.write_bytes(
        httpx.get(f"{demo.url}/.well-known/bidroom-tsa-roots.pem", timeout=10).content
    )
    published = ("--verifier-key", record["audit"]["verifier_key"], "--tsa-roots", str(roots))
    for args in (("audit", "export", str(bundle)), ("audit", "verify", str(bundle), *published)):
        done = subprocess.run(
            [sys.executable, "-m", "bidroom", *args],
            env=audit_env(demo),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    assert "verified:" in done.stdout
    errors = [e for screen in screens for e in screen.errors]
    assert not errors, errors
