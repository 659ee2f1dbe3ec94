"""The evaluation room page (web/evaluation.html) in Chromium against `bidroom demo`: what each
role finds when they open it, in Chinese and in English, without a browser error.

The room is made as the chair makes any room (POST /api/rooms, kind ``evaluation``, the config
of bidroom.evaluation.initial); people arrive with session tokens minted with the demo's key, as
the room page's own test does. The whole session, committee to signed report, is driven through
the page by the evaluation's end-to-end test; this one checks the page itself: the panels of each
role, the fault clocks, a refusal shown by its code in the reader's language, and the pure
module's arithmetic and draft keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest
from browser import person_page
from nodes import write_room
from playwright.sync_api import Browser, ConsoleMessage, expect
from test_login_browser import Demo

from bidroom import evaluation, signed, tokens

ROOM = "evaluation-page-check"
TIMEOUT_MS = 15_000
CHAIR = tokens.Identity("chair-e2e", "王敏", ("chair",), organisation="舟山市公共资源交易中心")
SUPERVISOR = tokens.Identity("supervisor-e2e", "赵磊", ("supervisor",), organisation="舟山市财政局")
EXPERT = tokens.Identity("expert-e2e", "钱建国", ("expert",), venue="舟山主会场")
BIDDER = tokens.Identity("uscc:b1", "李海", ("bidder",), organisation="六横海洁环境服务有限公司")


def config(now: datetime) -> dict[str, Any]:
    """A session as bidroom.evaluation.initial takes it: three opened bids, two criteria, three
    scoring items, 3 + 1 + 1 seats, an anonymous technical part."""
    names = ("六横海洁环境服务有限公司", "东港城市服务集团有限公司", "普陀绿源环卫工程有限公司")
    prices = ("3650000.00", "3712500.00", "3598000.00")
    bids = [
        {
            "bidder": f"uscc:b{n}",
            "name": name,
            "price": price,
            "status": "decrypted",
            "received_at": (now - timedelta(days=1, minutes=n)).isoformat(),
        }
        for n, (name, price) in enumerate(zip(names, prices, strict=True), start=1)
    ]
    return {
        "lot": "LOT-E2E",
        "title": "六横岛环卫一体化服务项目 第1标段",
        "tender": "ZJ-ZS-2026-0417",
        "starts_at": (now + timedelta(hours=1)).isoformat(),
        "bids": bids,
        "criteria": [
            {"id": "资格", "text": "营业执照、资质证书有效"},
            {"id": "保证金", "text": "按要求提交"},
        ],
        "review_rule": "majority",
        "params": {
            "price": {"method": "benchmark", "full": "50", "e_high": "1.0", "e_low": "0.5"},
            "items": [
                {"id": "服务方案", "max": "20"},
                {"id": "人员配备", "max": "10"},
                {"id": "类似业绩", "max": "10", "kind": "objective", "part": "commercial"},
            ],
        },
        "k": "0.02",
        "anonymous": True,
        "label_seed": "00" * 32,
        "venues": [
            {"venue": "舟山主会场", "seats": 3},
            {"venue": "普陀分会场", "seats": 1},
            {"venue": "岱山分会场", "seats": 1},
        ],
    }


def token(demo: Demo, identity: tokens.Identity) -> str:
    secret = (demo.var / "secret.key").read_text().strip()
    return tokens.mint(identity, secret, datetime.now(UTC), timedelta(hours=1))


@pytest.fixture(scope="module")
def room(demo: Demo) -> str:
    # a bare session, as only the operator makes one (the room directory makes meetings only)
    # over one of the demo's published lots, whose reads the supervisor's page lists
    lot = httpx.get(f"{demo.url}/api/tenders", timeout=10).json()[0]["lots"][0]["id"]
    owner = {"organisation": CHAIR.organisation, "chairs": []}
    made = config(datetime.now(UTC)) | {"lot": lot, "owner": owner}
    write_room(f"sqlite+aiosqlite:///{demo.var / 'bidroom.db'}", ROOM, "evaluation", "评标", made)
    return ROOM


class Screen:
    """One person's page, in their own browser context, and the errors it reports."""

    def __init__(self, browser: Browser, demo: Demo, room: str, who: tokens.Identity):
        self.page, self.errors = person_page(browser, "page", TIMEOUT_MS)
        self.context = self.page.context
        expect.set_options(timeout=TIMEOUT_MS)
        self.page.on("console", self._console)
        self.page.goto(f"{demo.url}/evaluation.html?room={room}#token={token(demo, who)}")
        expect(self.testid("connection")).to_have_attribute("data-status", "online")
        expect(self.testid("me")).to_contain_text(who.name)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def testid(self, name: str) -> Any:
        return self.page.get_by_test_id(name)

    def english(self) -> None:
        self.testid("lang").click()
        expect(self.page.locator("html")).to_have_attribute("lang", "en")

    def close(self) -> None:
        self.context.close()
        assert not self.errors, "browser errors:\n" + "\n".join(self.errors)


@pytest.fixture
def screens(browser: Browser, demo: Demo, room: str) -> Iterator[Any]:
    opened: list[Screen] = []

    def open_as(who: tokens.Identity) -> Screen:
        opened.append(Screen(browser, demo, room, who))
        return opened[-1]

    yield open_as
    for screen in opened:
        screen.close()


def test_the_chair_finds_the_console_and_the_fault_clocks_in_both_languages(screens: Any) -> None:
    chair = screens(CHAIR)
    expect(chair.testid("phase")).to_have_attribute("data-phase", "forming")
    expect(chair.testid("phase")).to_have_text("组建评标委员会")
    expect(chair.testid("tasks")).to_have_text("现在请您：抽取评标专家")
    expect(chair.testid("chair-panel")).to_be_visible()
    expect(chair.testid("draw")).to_have_text("抽取评标专家")
    expect(chair.testid("clock-before_start")).to_contain_text("02:00:00")
    expect(chair.testid("clock-during")).to_contain_text("04:00:00")
    expect(chair.testid("committee-panel")).to_contain_text("尚未抽取评标专家")
    expect(chair.page.locator("#log-panel")).to_be_visible()
    chair.english()
    expect(chair.testid("phase")).to_have_text("Forming the committee")
    expect(chair.testid("draw")).to_have_text("Draw the experts")
    expect(chair.testid("clock-before_start")).to_contain_text("Fault before the start")
    expect(chair.testid("tasks")).to_have_text("Your next step: draw the experts")


def test_a_refusal_reads_in_the_language_of_the_page_by_its_code(screens: Any) -> None:
    chair = screens(CHAIR)
    chair.testid("suspend").click()
    chair.testid("ask-input").fill("主会场网络中断")
    chair.testid("ask-ok").click()
    expect(chair.testid("phase")).to_have_attribute("data-phase", "suspended")
    expect(chair.testid("suspension-1")).to_contain_text("主会场网络中断")
    expect(chair.testid("fault-status")).to_have_attribute("data-status", "ok")
    # Sealing a session whose fault is within its limit is refused: within_limit.
    chair.testid("seal").click()
    chair.testid("ask-input").fill("试图封存")
    chair.testid("ask-ok").click()
    expect(chair.testid("toast-error")).to_have_text(re.compile("故障未超过时限，请恢复评标"))
    chair.english()
    chair.testid("seal").click()
    chair.testid("ask-input").fill("trying again")
    chair.testid("ask-ok").click()
    expect(chair.testid("toast-error").last).to_have_text(
        re.compile("The fault is within its limit: resume")
    )
    chair.testid("resume").click()
    chair.testid("ask-input").fill("network restored")
    chair.testid("ask-ok").click()
    expect(chair.testid("phase")).to_have_attribute("data-phase", "forming")
    expect(chair.testid("event-log")).to_contain_text("resumed")


def test_the_supervisor_watches_read_only(screens: Any) -> None:
    supervisor = screens(SUPERVISOR)
    expect(supervisor.testid("supervisor-panel")).to_contain_text("暂无待审核的澄清问题")
    # the reads of the lot's bids' plaintext, from the audit log (issue 14 §2)
    reads = re.compile(r"尚无人读取本标段投标文件的明文|共 \d+ 次读取，每次均已记入审计日志")
    expect(supervisor.testid("reads-note")).to_have_text(reads)
    expect(supervisor.testid("faults-panel")).to_be_visible()
    expect(supervisor.testid("committee-panel")).to_be_visible()
    expect(supervisor.page.locator("#log-panel")).to_be_visible()
    for control in ("chair-panel", "draw", "suspend", "seat-panel", "leader-panel"):
        expect(supervisor.testid(control)).to_be_hidden()
    supervisor.english()
    expect(supervisor.testid("supervisor-panel")).to_contain_text("No question waits for you")
    expect(supervisor.testid("clock-during")).to_contain_text("Fault during the evaluation")


def test_an_expert_and_a_bidder_see_only_their_own(screens: Any) -> None:
    expert = screens(EXPERT)
    expect(expert.testid("seat-state")).to_have_text("主持人尚未抽取评标专家，请稍候")
    expect(expert.testid("committee-panel")).to_be_visible()
    for hidden in ("chair-panel", "supervisor-panel", "bidder-panel", "suspend"):
        expect(expert.testid(hidden)).to_be_hidden()
    expect(expert.page.locator("#log-panel")).to_be_hidden()
    bidder = screens(BIDDER)
    expect(bidder.testid("bidder-panel")).to_contain_text("暂无发给您的澄清问题")
    for hidden in ("committee-panel", "seat-panel", "chair-panel", "faults-panel"):
        expect(bidder.testid(hidden)).to_be_hidden()
    bidder.english()
    expect(bidder.testid("bidder-panel")).to_contain_text("No questions for you")


PURE = """async () => {
  const ev = await import("/js/evaluation.js");
  const items = [{ id: "服务方案", max: "20" }, { id: "类似业绩", max: "10" }];
  return {
    sum: ev.sumOf(["0.1", "0.2", "19.70"]),
    args: ev.sheetArgs(items, { "服务方案": " 16.5 ", "类似业绩": "8" }, "A"),
    problems: ev.sheetProblems(items, { "服务方案": "20.5", "类似业绩": "abc" }),
    deadline: ev.deadlineIso("2026-12-01T10:30"),
    keys: new Set([ev.draftKey("r", "e1", "sheet", "A"), ev.draftKey("r", "e2", "sheet", "A"),
      ev.draftKey("r", "e1", "sheet", "B"), ev.draftKey("r2", "e1", "sheet", "A")]).size,
  };
}"""


def test_the_score_form_adds_up_exactly_and_keeps_each_draft_apart(screens: Any) -> None:
    expert = screens(EXPERT)
    assert expert.page.evaluate(PURE) == {
        "sum": "20.00",
        "args": {"bid": "A", "scores": {"服务方案": "16.5", "类似业绩": "8"}, "total": "24.5"},
        "problems": {"服务方案": "range", "类似业绩": "number"},
        "deadline": "2026-12-01T10:30:00+08:00",
        "keys": 4,
    }


SIGNED_ARGS = {  # what pages send, loosely: white space, and fields left at their defaults
    "evaluation.declare": {"declaration": "none"},
    "evaluation.vote": {"candidate": " expert-e2e ", "round": 2},
    "evaluation.submit_review": {
        "verdicts": [
            {"bidder": "uscc:b1", "criterion": "资格", "passed": True, "reason": ""},
            {"bidder": "uscc:b2", "criterion": "资格", "passed": False, "reason": " 执照过期 "},
        ]
    },
    "evaluation.submit_sheet": {"bid": "A", "scores": {"服务方案": " 16.5", " 类似业绩": "8"}},
    "evaluation.rescore": {"bid": "B", "scores": {"服务方案": "12"}, "total": "12"},
    "evaluation.explain": {"flag": "abnormal|A|服务方案|expert-e2e", "reason": "理由\n"},
    "evaluation.dissent": {"reason": "\u3000对排名有保留意见\x85"},  # Unicode's White_Space
    "evaluation.refuse_signing": {"reason": "\ufeff不同意\x1f"},  # neither is
}
MESSAGES = """async ([room, acts]) => {
  const ev = await import("/js/evaluation.js");
  const { actionMessage } = await import("/js/actions.js");
  const hex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return Object.fromEntries(Object.entries(acts).map(([name, args]) =>
    [name, hex(actionMessage(name, { room, ...ev.signedFields(name, args) }))]));
}"""


def test_the_page_signs_exactly_the_fields_the_server_rebuilds(screens: Any) -> None:
    """An expert's act is signed in the browser over the fields as the WebSocket edge takes
    them (trimmed, defaults filled): the bytes the page signs are the bytes the shell checks."""
    expert = screens(EXPERT)
    signed_by_page = expert.page.evaluate(MESSAGES, [ROOM, SIGNED_ARGS])
    assert set(SIGNED_ARGS) == set(evaluation.SIGNED)
    for name, args in SIGNED_ARGS.items():
        taken = evaluation.ARGUMENTS[name].model_validate(args).model_dump()
        fields = {"room": ROOM, **{k: taken[k] for k in evaluation.SIGNED[name]}}
        assert signed_by_page[name] == signed.action_message(name, fields).hex(), name
