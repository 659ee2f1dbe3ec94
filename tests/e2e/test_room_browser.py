"""The room page in a real browser against a real node: what a chair and a bidder would notice.

Debian's chromium (/usr/bin/chromium) drives web/room.html through Playwright's sync API; the
server is `python -m bidroom serve` (tests/nodes.py) on SQLite. Missing chromium or Chinese fonts
fail the test with the package to install: a browser test that skips proves nothing.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import pytest
from browser import CHROMIUM, CHROMIUM_ARGS, require_browser
from nodes import SECRET, Node, bidroom
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from bidroom import tokens

ROOM = "lot-1"
TITLE = "开标会"
TIMEOUT_MS = 10_000
RECONNECT_MS = 20_000
# While the node is down on purpose the browser logs refused WebSocket connections; nothing else.
EXPECTED_WHILE_DOWN = re.compile(r"WebSocket connection to .* failed|ERR_CONNECTION_REFUSED")

CHAIR = tokens.Identity("chair-1", "王敏", ("chair",), organisation="交易中心")
BIDDER = tokens.Identity("bidder-1", "李海", ("bidder",), organisation="海东建设")


def token(identity: tokens.Identity) -> str:
    return tokens.mint(identity, SECRET, datetime.now(UTC), timedelta(hours=1))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {
        "BIDROOM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'b.db'}",
        "BIDROOM_SECRET_KEY": SECRET,
    }
    migrated = bidroom("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    return env


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    """Every node the test starts; all are stopped at the end, whatever happened."""
    started: list[Node] = []
    yield started
    for node in started:
        node.kill()
    # Node's log pump reads each process's stderr to EOF on a thread and never closes the pipe:
    # let it finish, then close the pipe here (an unclosed one is a ResourceWarning, an error).
    for thread in threading.enumerate():
        if thread.name.endswith("(_pump)"):
            thread.join(10)
    for node in started:
        if node.process is not None and node.process.stderr is not None:
            node.process.stderr.close()


class Console:
    """Collects page errors and console errors; a test ends by asserting there were none."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.server_down = False

    def watch(self, page: Page, label: str) -> None:
        page.on("console", lambda message: self._console(label, message))
        page.on("pageerror", lambda error: self.errors.append(f"{label}: {error}"))

    def _console(self, label: str, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        if self.server_down and EXPECTED_WHILE_DOWN.search(message.text):
            return
        self.errors.append(f"{label}: {message.text}")


def open_room(browser: Browser, base: str, who: tokens.Identity, console: Console) -> Page:
    """One participant in their own browser context (own storage), signed in by the link."""
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    console.watch(page, who.subject)
    page.goto(f"{base}/room.html?room={ROOM}#token={token(who)}")
    return page


def announce(chair: Page, text: str) -> None:
    chair.fill("#announce-text", text)
    chair.click("#announce-form button[type=submit]")


def test_chair_and_bidder_in_the_browser(env: dict[str, str], nodes: list[Node]) -> None:
    require_browser()
    node = Node(env).start()
    nodes.append(node)
    created = httpx.post(
        f"{node.url}/api/rooms",
        headers={"Authorization": f"Bearer {token(CHAIR)}"},
        json={
            "id": ROOM,
            "kind": "meeting",
            "title": TITLE,
            "config": {"roles": ["chair", "bidder", "supervisor"]},
        },
        timeout=10,
    )
    assert created.status_code == 201, created.text
    expect.set_options(timeout=TIMEOUT_MS)
    console = Console()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            run_scenario(browser, node, env, nodes, console)
        finally:
            browser.close()
    assert not console.errors, "browser errors:\n" + "\n".join(console.errors)


def run_scenario(
    browser: Browser, node: Node, env: dict[str, str], nodes: list[Node], console: Console
) -> None:
    chair = open_room(browser, node.url, CHAIR, console)
    bidder = open_room(browser, node.url, BIDDER, console)
    people = {
        "chair": chair.locator("#participants li"),
        "bidder": bidder.locator("#participants li"),
    }

    # Both are online, see the room's title (from the snapshot) and the meeting not yet open.
    for page in (chair, bidder):
        expect(page.locator("#status")).to_have_text("在线")
        expect(page.locator("#title")).to_have_text(TITLE)
        expect(page.locator("#phase")).to_have_text("待开始")
        assert "token" not in page.url, page.url
    # The chair sees everyone; the bidder sees the chair and themself, and is told why.
    expect(people["chair"].filter(has_text="李海")).to_contain_text("在线")
    expect(chair.locator("#people-count")).to_have_text("(2/2)")
    expect(bidder.locator("#people-title")).to_have_text("主持人与我")
    expect(bidder.locator("#people-hint")).to_be_visible()
    expect(people["bidder"]).to_have_count(2)
    expect(people["bidder"].filter(has_text="王敏")).to_contain_text("在线")
    expect(people["bidder"].filter(has_text="李海")).to_contain_text("（我）")

    # The chair opens the meeting; both pages show it in progress.
    chair.click("#open-meeting")
    for page in (chair, bidder):
        expect(page.locator("#phase")).to_have_text("进行中")

    # The chair's announcement reaches the bidder; the bidder's message reaches the chair.
    announce(chair, "现在开始解密，请在30分钟内完成。")
    expect(bidder.locator("#announcements li", has_text="现在开始解密")).to_have_count(1)
    bidder.fill("#message-text", "投标文件已上传，请确认。")
    bidder.click("#message-send")
    expect(chair.locator("#messages li", has_text="投标文件已上传")).to_contain_text("李海")

    # The node restarts on the same port and database: both pages reconnect and resume.
    console.server_down = True
    node.stop()
    for page in (chair, bidder):
        expect(page.locator("#status")).to_have_text("重连中")
    restarted = Node({**env, "BIDROOM_PORT": str(node.port)})
    nodes.append(restarted)
    restarted.start()
    assert restarted.port == node.port
    for page in (chair, bidder):
        expect(page.locator("#status")).to_have_text("在线", timeout=RECONNECT_MS)
    console.server_down = False
    announce(chair, "重连后的公告")
    expect(bidder.locator("#announcements li", has_text="重连后的公告")).to_have_count(1)
    expect(chair.locator("#announcements li", has_text="重连后的公告")).to_have_count(1)
    # Nothing arrived twice, and presence did not drift: each is online exactly once again.
    expect(bidder.locator("#announcements li", has_text="现在开始解密")).to_have_count(1)
    expect(chair.locator("#messages li", has_text="投标文件已上传")).to_have_count(1)
    expect(chair.locator("#people-count")).to_have_text("(2/2)")
    expect(people["chair"].filter(has_text="李海")).to_contain_text("在线")
    expect(people["bidder"].filter(has_text="王敏")).to_contain_text("在线")

    # The chair removes the bidder, with a reason; the bidder gets the full-page explanation.
    chair.get_by_role("button", name="移出：李海").click()
    chair.fill("#ask-input", "扰乱开标秩序")
    chair.locator("#ask button[value=ok]").click()
    expect(bidder.locator("#fatal-title")).to_have_text("您已被移出本会议")
    expect(bidder.locator("#fatal-body")).to_contain_text("主持人已将您移出本会议")
    expect(bidder.locator("#main")).to_be_hidden()
    expect(people["chair"].filter(has_text="李海")).to_contain_text("已移出")

    # The English switch relabels the page, the bidder's explanation included.
    chair.click("#lang")
    expect(chair.locator("#phase")).to_have_text("In progress")
    expect(chair.locator("#status")).to_have_text("Online")
    expect(chair.locator("#people-title")).to_have_text("Participants")
    expect(chair.locator("#lang")).to_have_text("中文")
    bidder.click("#lang")
    expect(bidder.locator("#fatal-title")).to_have_text("You were removed from this meeting")


WEB = Path(__file__).resolve().parents[2] / "web"
FOLD_CHECK = """async () => {
  const M = await import("/js/meeting.js");
  const who = (s, role = "bidder") => ({subject: s, name: s.toUpperCase(), role, venue: null,
                                        organisation: "Org"});
  const ev = (seq, name, data, actor = null) =>
    ({seq, name, data, actor, at: "2026-01-01T00:00:00+00:00"});
  const bad = [];
  const want = (ok, what) => ok || bad.push(what);
  let s = M.fromSnapshot({kind: "meeting", title: "开标会", starts_at: null, phase: "scheduled",
    participants: [{...who("c", "chair"), online: true, connections: ["n1/1"], muted: false,
                    removed: false},
                   {...who("b"), online: true, connections: ["n1/2", "n1/3"], muted: false,
                    removed: false}],
    announcements: [], messages: [], allowed: ["meeting.open", "presence.join"]});
  want(s.title === "开标会", "title from the snapshot");
  want(M.allowedFor(s, "chair").join() === "meeting.open", "snapshot's client commands");
  s = M.apply(s, ev(1, "presence.left", {subject: "b", connection: "n1/2"}));
  want(M.isOnline(s.participants.b), "b still online on its other connection");
  s = M.apply(s, ev(2, "presence.expired", {subject: "b", connections: ["n1/3"]}));
  want(!M.isOnline(s.participants.b), "b offline once its last connection expired");
  want(M.isOnline(s.participants.c), "expiry names its participant; c keeps its connection");
  s = M.apply(s, ev(3, "presence.joined", {...who("b"), connection: "n2/1", node: "n2"}));
  s = M.apply(s, ev(4, "presence.joined", {...who("b"), connection: "n2/1", node: "n2"}));
  want(s.participants.b.connections.join() === "n2/1", "a connection counts once");
  const same = M.apply(s, ev(5, "presence.left", {subject: "x", connection: "n9/9"}));
  want(same === s, "presence of someone this actor may not see changes nothing");
  want(M.apply(s, ev(6, "meeting.muted", {subject: "x"})) === s, "unknown subject ignored");
  want(M.apply(s, ev(7, "meeting.future", {})) === s, "unknown event ignored");
  return bad;
}"""


def test_the_page_folds_presence_like_the_server() -> None:
    """web/js/meeting.js against the server's presence events, in the browser, without a server."""
    require_browser()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route(
                "http://web.test/**",
                lambda route: route.fulfill(
                    path=WEB / (route.request.url.removeprefix("http://web.test/") or "index.html")
                ),
            )
            page.goto("http://web.test/css/app.css")
            failures = page.evaluate(FOLD_CHECK)
        finally:
            browser.close()
    assert failures == [], failures
