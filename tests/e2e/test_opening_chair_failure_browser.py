"""Issue 14 §1 in Chromium: the chair cannot take a bid away by reporting its failure.

Against `bidroom demo` (a real server, real keys), each person in their own browser context:
the three bidders sign in, the clock fixes the bids, the chair starts the decryption window.
The chair then reports a failure for a bidder who has not decrypted yet. The chair's dialog
offers only causes that are not the bidder's fault (a cause that blames the bidder is the
bidder's to report, or the window's end's). The bidder's page says the chair recorded it and
still shows 解密 and the failure form, a reload too; the other two decrypt and the window stays
open, the chair offered no early close (the clock used to close it as soon as no bid was
sealed, the chair-failed bidder locked out with their key in hand). The bidder then decrypts in
their browser: their key prevails on every screen, the window closes and the sheet shows their
price.
"""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect
from test_login_browser import Demo
from test_opening_browser import DEADLINE_MS, OPENING_IN_MINUTES, Screen, room_of

DEMO_ARGS = ("--opening-in", OPENING_IN_MINUTES)  # tests/e2e/conftest.py
# Causes that blame the bidder (bidroom.opening.BLAMING): never on the chair's word.
BLAMING = {"bidder_key_lost", "bidder_absent", "bidder_cert_revoked", "bidder_entry_mismatch"}
# The room's clock looks for a due step every second (settings.clock_seconds): this much server
# time after the last other bidder decrypted, a clock that closed the window early would have.
CLOCK_TICKS_MS = 5_000
WAIT_MS = 60_000


def countdown_ms(screen: Screen) -> int:
    """The time left in the window as the page shows it (from the server's time)."""
    value = screen.testid("countdown").get_attribute("data-ms")
    assert value, "no countdown"
    return int(value)


def test_a_failure_the_chair_reports_leaves_the_bid_to_its_bidder(
    demo: Demo, browser: Browser
) -> None:
    room = room_of(demo)
    chair = Screen(browser, demo, "chair", room)
    bidders = [Screen(browser, demo, f"bidder-{n}", room) for n in (1, 2, 3)]
    screens = [chair, *bidders]
    b1, b2, b3 = bidders

    # the opening reaches the decryption window with three sealed bids
    chair.phase("signing_in")
    for bidder in bidders:
        bidder.click("sign-in")
        expect(bidder.testid("signed-in")).to_be_visible()
    for screen in screens:
        screen.phase("bids_fixed", DEADLINE_MS)
    chair.click("commit-draw")
    expect(chair.testid("draw-commitment")).to_contain_text(re.compile(r"[0-9a-f]{64}"))
    chair.click("start-window")
    chair.confirm_dialog()
    for screen in screens:
        screen.phase("decrypting")
    for bidder in bidders:
        chair.status_of(bidder.subject, "sealed")
        expect(bidder.testid("decrypt")).to_be_visible()

    # the chair records a failure for b2, who has not decrypted: only causes that are not the
    # bidder's fault are offered
    chair.click(f"fail-{b2.subject}")
    choice = chair.testid("ask-choice")
    expect(choice).to_be_visible()
    offered = set(choice.locator("option").evaluate_all("(os) => os.map((o) => o.value)"))
    assert offered == {"platform_fault", "ca_fault", "network_fault"}, offered
    assert not offered & BLAMING
    choice.select_option("network_fault")
    chair.confirm_dialog()
    chair.status_of(b2.subject, "failed")
    expect(chair.testid(f"status-{b2.subject}")).to_contain_text("网络故障")
    expect(chair.testid(f"fail-{b2.subject}")).to_have_count(0)

    # b2's page: the bid shows failed for a network fault, recorded by the chair, and 解密 and
    # the failure form are still theirs; the same after a reload (from the snapshot alone)
    for reloaded in (False, True):
        if reloaded:
            b2.page.reload()
            expect(b2.testid("connection")).to_have_attribute("data-status", "online")
            b2.phase("decrypting")
        b2.status_of(b2.subject, "failed")
        expect(b2.testid("my-status")).to_have_attribute("data-status", "failed")
        expect(b2.testid("my-status")).to_contain_text("解密失败")
        expect(b2.testid("my-status")).to_contain_text("网络故障")
        expect(b2.testid("failure-by-chair")).to_contain_text("主持人已为本投标登记解密失败")
        expect(b2.testid("decrypt")).to_be_visible()
        expect(b2.testid("decrypt")).to_be_enabled()
        expect(b2.testid("report-failure")).to_be_visible()

    # the two others decrypt: no bid is sealed any more, yet the window stays open for b2
    for bidder in (b1, b3):
        bidder.click("decrypt")
        bidder.status_of(bidder.subject, "decrypted")
        chair.status_of(bidder.subject, "decrypted")
    # the chair is not offered to close the window early either (the server would refuse it)
    expect(chair.testid("close-window")).to_be_hidden()
    left = countdown_ms(b2)
    b2.page.wait_for_function(
        "(below) => Number(document.querySelector('[data-testid=countdown]').dataset.ms) < below",
        arg=left - CLOCK_TICKS_MS,
        timeout=WAIT_MS,
    )
    for screen in screens:
        screen.phase("decrypting")
    expect(b2.testid("countdown")).to_contain_text("解密剩余")
    assert countdown_ms(b2) > 0
    expect(chair.testid("close-window")).to_be_hidden()
    expect(b2.testid("decrypt")).to_be_visible()

    # b2 decrypts in the browser: their key prevails over the chair's report, on every screen
    b2.click("decrypt")
    b2.status_of(b2.subject, "decrypted")
    expect(b2.testid("my-status")).to_have_attribute("data-status", "decrypted")
    expect(b2.testid("my-status")).not_to_contain_text("网络故障")
    expect(b2.testid("decrypt-error")).to_be_hidden()
    expect(b2.testid("failure-by-chair")).to_be_hidden()
    expect(b2.testid("decrypt")).to_be_hidden()
    chair.status_of(b2.subject, "decrypted")
    expect(chair.testid(f"status-{b2.subject}")).not_to_contain_text("网络故障")

    # every bid is now decrypted: the window closes, and the sheet shows b2's price
    for screen in screens:
        screen.phase("settling")
    chair.click("publish-sheet")
    for screen in screens:
        screen.phase("sheet")
    expect(b1.testid(f"sheet-row-{b2.subject}")).to_contain_text("3712500.00")
    expect(chair.testid(f"sheet-row-{b2.subject}")).to_contain_text("已解密")
    errors = [e for screen in screens for e in screen.errors]
    assert not errors, errors
