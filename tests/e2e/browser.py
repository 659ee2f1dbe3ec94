"""What every browser test needs: Debian's chromium, its flags, and a clear failure (never a
skip) when the machine cannot run the test."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
CJK_FONT = re.compile(r"wqy|cjk|droidsansfallback|uming|ukai|sourcehan", re.IGNORECASE)


def require_chromium() -> None:
    """Fail (never skip) when chromium is missing, naming what to install."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium", pytrace=False)


def require_browser() -> None:
    """Chromium and a font with Chinese glyphs (pages are read in screenshots and by people)."""
    require_chromium()
    if not has_chinese_font():
        pytest.fail(
            "no font with Chinese glyphs (fc-list :lang=zh is empty): "
            "apt-get install fonts-wqy-microhei",
            pytrace=False,
        )


def has_chinese_font() -> bool:
    """fc-list's answer; without fc-list (package fontconfig), a known CJK font file on disk."""
    fc_list = shutil.which("fc-list")
    if fc_list is not None:
        done = subprocess.run(
            [fc_list, ":lang=zh", "family"], capture_output=True, text=True, timeout=30, check=False
        )
        return bool(done.stdout.strip())
    roots = [Path("/usr/share/fonts"), Path("/usr/local/share/fonts")]
    return any(
        CJK_FONT.search(font.name) for root in roots if root.is_dir() for font in root.rglob("*")
    )
