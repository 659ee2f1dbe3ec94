"""The browser tests' shared fixtures: one `bidroom demo` and one Chromium per test module.

A module passes more `bidroom demo` arguments as ``DEMO_ARGS`` (e.g. ``("--opening-in", "1")``);
a module that needs another demo or browser defines its own fixture of the same name."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser import launched, require_browser
from playwright.sync_api import Browser
from test_login_browser import Demo


@pytest.fixture(scope="module")
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Demo]:
    require_browser()
    extra = tuple(getattr(request.module, "DEMO_ARGS", ()))
    folder = tmp_path_factory.mktemp(request.module.__name__.removeprefix("test_"))
    server = Demo(folder / "var", extra).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(demo: Demo) -> Iterator[Browser]:
    with launched() as chromium:
        yield chromium
