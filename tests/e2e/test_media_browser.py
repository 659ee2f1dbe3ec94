"""Audio and video in the evaluation room, in real Chromium against `bidroom demo`.

The chair and the supervisor may see and hear each other without holding a seat, so the demo's
evaluation session is enough: each signs in through the login page in their own browser context
and joins the media panel (web/js/media.js) with Chromium's fake camera and microphone. The
pages negotiate over the room WebSocket and the video flows over loopback; each page must decode
the other's frames (getStats, read through the panel's hooks). The chair mutes the supervisor, who
cannot unmute until unmuted. A browser that denies the camera shows why and still joins as a
viewer. The server's recorder records the session; its files decode with PyAV and match the
SHA-256 digests the page and the API list.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import av
import httpx2 as httpx
import pytest
from browser import CHROMIUM, CHROMIUM_ARGS, MEDIA_ARGS, person_page
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Locator,
    Playwright,
    expect,
    sync_playwright,
)
from test_evaluation_browser import evaluation_link
from test_login_browser import Demo

STEP_MS = 20_000
MEDIA_MS = 40_000  # ICE on loopback takes a second; decoding starts soon after
DENIED = "浏览器拒绝了摄像头/麦克风权限"
MUTED = "主持人已将您静音"
RECORDED_FRAMES = 45  # video frames sent to the recorder before stopping: 3 s at 15 fps


@pytest.fixture(scope="module")
def playwright(demo: Demo) -> Iterator[Playwright]:
    with sync_playwright() as pw:
        expect.set_options(timeout=STEP_MS)
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *MEDIA_ARGS]
    )
    yield chromium
    chromium.close()


class Member:
    """One person's browser context, signed in with their demo key, on the evaluation page."""

    def __init__(self, browser: Browser, demo: Demo, who: str):
        self.who = who
        self.page, self.errors = person_page(browser, who, STEP_MS)
        self.context = self.page.context
        self.page.on("console", self._console)
        self.page.goto(evaluation_link(demo, who))
        self.page.get_by_role("button", name="一键登录").click()
        self.page.wait_for_url(re.compile(r"/evaluation\.html\?room="))
        expect(self.testid("connection")).to_have_attribute("data-status", "online")
        session = self.page.evaluate("JSON.parse(sessionStorage.getItem('bidroom.session'))")
        self.subject: str = session["holder"]["subject"]
        self.token: str = session["token"]
        expect(self.testid("media-panel")).to_be_visible()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{self.who}: {message.text}")

    def testid(self, name: str) -> Locator:
        return self.page.get_by_test_id(name)

    @property
    def room(self) -> str:
        return parse_qs(urlparse(self.page.url).query)["room"][0]

    def join(self) -> None:
        self.testid("media-join-camera").click()
        expect(self.testid("media-controls")).to_be_visible()
        expect(self.testid("tile-local")).to_be_visible()

    def report(self) -> dict[str, Any]:
        report: dict[str, Any] = self.page.evaluate("() => window.bidroomMedia.sample()")
        return report

    def decodes(self, other: Member) -> None:
        """Wait until this page has decoded video frames from ``other`` (the tile's hook)."""
        tile = f'[data-testid="tile-{other.subject}"]'
        self.page.wait_for_function(
            f"() => Number(document.querySelector('{tile}')?.dataset.framesDecoded) > 0",
            polling=500,
            timeout=MEDIA_MS,
        )

    def close(self) -> None:
        assert not self.errors, "browser errors:\n" + "\n".join(self.errors)
        self.context.close()


def open_meeting(chair: Member) -> None:
    """The chair's mute is a meeting command: it needs the meeting open."""
    button = chair.testid("open-meeting")
    if button.is_visible():
        button.click()
        expect(button).to_be_hidden()


def test_chair_and_supervisor_see_and_hear_each_other(browser: Browser, demo: Demo) -> None:
    chair = Member(browser, demo, "chair")
    supervisor = Member(browser, demo, "supervisor")
    chair.join()
    supervisor.join()
    chair.decodes(supervisor)
    supervisor.decodes(chair)
    for one, other in ((chair, supervisor), (supervisor, chair)):
        (peer,) = one.report()["peers"]
        assert peer["subject"] == other.subject and peer["state"] == "connected", peer
        assert sorted(peer["sending"]) == ["audio", "video"], peer
        assert peer["quality"] in {"good", "fair", "poor"}, peer
        tile = one.testid(f"tile-{other.subject}")
        expect(tile).to_contain_text("主持人" if other is chair else "监督人")
        expect(tile.get_by_test_id("quality")).to_have_text(re.compile("良好|一般|较差"))

    open_meeting(chair)
    mute = chair.testid(f"tile-{supervisor.subject}").get_by_test_id("tile-mute")
    expect(mute).to_have_text("静音")
    mute.click()
    expect(supervisor.testid("media-chair")).to_contain_text(MUTED)
    expect(supervisor.testid("media-mic")).to_be_disabled()
    assert supervisor.report()["audio"]["enabled"] is False
    expect(mute).to_have_text("解除静音")
    expect(chair.testid(f"tile-{supervisor.subject}")).to_contain_text("已被主持人静音")

    mute.click()
    expect(supervisor.testid("media-chair")).to_contain_text("主持人已解除对您的静音")
    expect(supervisor.testid("media-mic")).to_be_enabled()
    assert supervisor.report()["audio"]["enabled"] is False  # never a hot microphone unasked
    supervisor.testid("media-mic").click()
    assert supervisor.report()["audio"]["enabled"] is True

    # A reload is a reconnection: the chair's page drops the old tile (the server's bye) and
    # answers the supervisor's new offer, in a new session.
    session = supervisor.report()["peers"][0]["session"]
    supervisor.page.reload()
    expect(chair.testid(f"tile-{supervisor.subject}")).to_have_count(0)
    supervisor.join()
    supervisor.decodes(chair)
    chair.decodes(supervisor)
    assert supervisor.report()["peers"][0]["session"] != session
    chair.close()
    supervisor.close()


def test_denied_camera_is_explained_and_a_viewer_still_joins(
    playwright: Playwright, browser: Browser, demo: Demo
) -> None:
    prompting = [arg for arg in MEDIA_ARGS if arg != "--use-fake-ui-for-media-stream"]
    denying = playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *prompting]
    )
    try:
        chair = Member(browser, demo, "chair")
        chair.join()
        viewer = Member(denying, demo, "supervisor")
        viewer.testid("media-join-camera").click()
        expect(viewer.testid("media-notice")).to_contain_text(DENIED)
        expect(viewer.testid("media-join-viewer")).to_be_visible()
        viewer.testid("media-join-viewer").click()
        expect(viewer.testid("media-controls")).to_be_visible()
        expect(viewer.testid("media-upgrade")).to_be_visible()
        viewer.decodes(chair)  # a viewer sees the room
        report = viewer.report()
        assert report["mode"] == "viewer" and report["audio"] is None, report
        (peer,) = chair.report()["peers"]
        assert sorted(peer["sending"]) == ["audio", "video"], peer
        expect(chair.testid(f"tile-{viewer.subject}")).to_be_visible()
        viewer.close()
        chair.close()
    finally:
        denying.close()


def test_the_recorder_records_every_camera(browser: Browser, demo: Demo) -> None:
    chair = Member(browser, demo, "chair")
    supervisor = Member(browser, demo, "supervisor")
    chair.join()
    supervisor.join()
    chair.decodes(supervisor)
    expect(chair.testid("recording-panel")).to_be_visible()
    chair.testid("recording-start").click()
    for member in (chair, supervisor):
        expect(member.testid("recording-badge")).to_have_text("录像中")
        member.page.wait_for_function(
            "n => (window.bidroomMedia.report().peers.find(p => p.role === 'recorder')"
            "?.framesSent || 0) >= n",
            arg=RECORDED_FRAMES,
            polling=500,
            timeout=MEDIA_MS,
        )
    chair.testid("recording-stop").click()
    chair.testid("ask-ok").click()
    expect(chair.testid("recording-badge")).to_be_hidden()
    listed = chair.testid("recording-file")
    expect(listed).to_have_count(2, timeout=MEDIA_MS)
    on_page = {
        str(item.get_attribute("data-name")): str(item.get_attribute("data-sha256"))
        for item in listed.all()
    }

    answer = httpx.get(
        f"{demo.url}/api/evaluations/{chair.room}/recording",
        headers={"Authorization": f"Bearer {chair.token}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    recording = answer.json()
    assert recording["status"] == "off"
    files = {f["name"]: f for f in recording["files"]}
    assert {f["subject"] for f in files.values()} == {chair.subject, supervisor.subject}
    assert {name: f["sha256"] for name, f in files.items()} == on_page

    on_disk = sorted((demo.var / "recordings" / chair.room).rglob("*.mkv"))
    assert {path.name for path in on_disk} == set(files), on_disk
    for path in on_disk:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == files[path.name]["sha256"]
        frames, seconds = decoded(path)
        assert frames > 0 and seconds > 1, (path.name, frames, seconds)
    chair.close()
    supervisor.close()


def decoded(path: Path) -> tuple[int, float]:
    """The video frames PyAV decodes from a recording, and the time they span (seconds)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [
            float(frame.pts * stream.time_base)
            for frame in container.decode(stream)
            if frame.pts is not None
        ]
    return len(times), (max(times) - min(times)) if times else 0.0
