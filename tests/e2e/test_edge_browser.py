"""The site's edge in Chromium against `bidroom demo`: every page does its work under the
Content-Security-Policy the server sends (no violation reported, no page error), and after a
login `next=` never leads off the site, however it is spelled."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx2 as httpx
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect
from test_login_browser import Demo

from bidroom import tokens

TIMEOUT_MS = 20_000
# Every violation the page meets, as the page itself is told of it (before any script runs).
WATCH_POLICY = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI} ${event.sourceFile}`);
});
"""
OFF_SITE = (
    "/\t/evil.example/",
    "/\n/evil.example/",
    "//evil.example/",
    "/\\evil.example/",
    "https:evil.example",
    "http://evil.example/",
    "javascript:alert(document.domain)",
    "data:text/html,<script>alert(1)</script>",
    # same origin, but a path that reads as protocol-relative once dot-segments go
    "/.//evil.example/steal",
    "/a/..//evil.example/steal",
    "/x/../\\evil.example/steal",
)


class Watched:
    """One person's context whose pages report every policy violation, page error and console
    error (the policy's own reports arrive as console errors too)."""

    def __init__(self, browser: Browser) -> None:
        self.context: BrowserContext = browser.new_context(
            locale="zh-CN", timezone_id="Asia/Shanghai"
        )
        self.context.add_init_script(WATCH_POLICY)
        self.errors: list[str] = []
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        self.page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.errors.append(message.text)

    def violations(self) -> list[str]:
        found: list[str] = self.page.evaluate("window.__violations || []")
        return found + self.errors

    def sign_in(self, link: str) -> None:
        self.page.goto(link)
        self.page.get_by_role("button", name="一键登录").click()

    def close(self) -> None:
        self.context.close()


def link(demo: Demo, label: str, person: str) -> str:
    found = re.search(
        rf"{label}[^:]*: (http://\S+/login\.html\?demo={person}&\S+)", "".join(demo.log)
    )
    assert found, "".join(demo.log)
    return found.group(1)


def online(page: Page) -> None:
    expect(page.get_by_test_id("connection")).to_have_attribute("data-status", "online")


def meeting_room(demo: Demo) -> str:
    secret = (demo.var / "secret.key").read_text().strip()
    chair = tokens.Identity("chair-edge", "王敏", ("chair",))
    token = tokens.mint(chair, secret, datetime.now(UTC), timedelta(hours=1))
    body = {"id": "edge-meeting", "kind": "meeting", "title": "边界检查", "config": {}}
    made = httpx.post(
        f"{demo.url}/api/rooms",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert made.status_code in (201, 409), made.text
    return "edge-meeting"


def test_every_page_works_under_the_content_security_policy(demo: Demo, browser: Browser) -> None:
    chair = Watched(browser)
    page = chair.page
    page.goto(demo.url + "/")
    expect(page.locator("#rooms li").first).to_be_visible()
    page.goto(demo.url + "/public.html")
    expect(page.locator("#notices article").first).to_be_visible()
    page.goto(demo.url + "/receipt.html")
    expect(page.locator("h1")).to_have_text("回执核验")

    chair.sign_in(demo.link("chair"))  # the login page, then the opening room
    expect(page).to_have_url(re.compile(r"/opening\.html\?room="))
    online(page)
    chair.sign_in(link(demo, "项目 tenders", "chair"))
    expect(page).to_have_url(re.compile(r"/tenders\.html"))
    expect(page.locator("#tender-list li").first).to_be_visible()
    chair.sign_in(link(demo, "评标室 evaluation", "chair"))
    expect(page).to_have_url(re.compile(r"/evaluation\.html\?room="))
    online(page)
    chair.sign_in(f"{demo.url}/login.html?demo=chair&room={meeting_room(demo)}")
    expect(page).to_have_url(re.compile(r"/room\.html\?room=edge-meeting"))
    expect(page.locator("#status")).to_have_text("在线")
    page.get_by_role("button", name="开始会议").click()  # a command over the socket
    expect(page.get_by_role("button", name="开始会议")).to_be_hidden()
    assert chair.violations() == []
    chair.close()

    bidder = Watched(browser)
    bidder.sign_in(link(demo, "投标 bid", "bidder-1"))
    expect(bidder.page).to_have_url(re.compile(r"/bid\.html\?lot="))
    expect(bidder.page.locator("#lot-title")).to_contain_text("六横岛")
    assert bidder.violations() == []
    bidder.close()


def test_next_never_leaves_the_site_after_login(demo: Demo, browser: Browser) -> None:
    person = Watched(browser)
    page = person.page
    for target in OFF_SITE:
        person.sign_in(f"{demo.url}/login.html?demo=bidder-2&next={quote(target, safe='')}")
        expect(page.locator("#done-who")).to_be_visible()  # signed in, and stayed here
        assert page.url.startswith(f"{demo.url}/login.html"), (target, page.url)
    inside = f"/opening.html?room={demo.room()}"
    person.sign_in(f"{demo.url}/login.html?demo=bidder-2&next={quote(inside, safe='')}")
    expect(page).to_have_url(f"{demo.url}{inside}")
    person.close()


def test_the_raw_tab_trick_is_what_the_fix_is_about(demo: Demo, browser: Browser) -> None:
    """The very link of the report, unencoded but for the tab: /login.html?next=/%09/evil..."""
    person = Watched(browser)
    person.sign_in(f"{demo.url}/login.html?demo=bidder-3&next=/%09/evil.example/")
    expect(person.page.locator("#done-who")).to_be_visible()
    assert person.page.url.startswith(demo.url)
    person.close()
