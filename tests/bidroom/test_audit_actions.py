"""docs/audit.md "Actions" names every action the code writes, exactly, and nothing else: an
auditor's checker is written from that list (issue 15: `trust.root_added` was documented while
`trust.add_root` was written)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def emitted() -> set[str]:
    """Every action the platform writes, read from its source: entries made with a literal (or
    an f-string, its fields written as <...>), the trust store's changes, and room events."""
    found: set[str] = set()
    for path in (ROOT / "bidroom").glob("*.py"):
        text = path.read_text()
        for match in re.finditer(
            r"Entry\(\s*[^,()]+(?:\([^)]*\))?,\s*[^,]+,\s*(f?)\"([^\"]+)\"", text
        ):
            action = re.sub(r"\{[^}]*\}", "<>", match.group(2))
            found.add(action)
        for match in re.finditer(r"Event\(\s*\"([a-z_]+\.[a-z_]+)\"", text):
            found.add("room." + match.group(1))
    trust = (ROOT / "ca" / "trust.py").read_text()
    found |= {f"trust.{a}" for a in re.findall(r"\"(add_[a-z]+)\"", trust)}
    found.discard("trust.<>")  # the trust store's own names, just added
    found.discard("room.<>")  # each room event, added above
    found.add("bid.read.<>")  # audit.BID_READ + part
    return found


def documented() -> set[str]:
    """The table's names (fields written as <...>) and the room event names after it."""
    text = (ROOT / "docs" / "audit.md").read_text()
    section = text[text.index("### Actions") : text.index("### Why every entry is salted")]
    table, events = section.split("Room event names", 1)
    names = {
        re.sub(r"<[^>]*>", "<>", n) for n in re.findall(r"`([a-z_]+(?:\.[a-z_<> ]+)+)`", table)
    }
    return names | {"room." + n for n in re.findall(r"`([a-z_]+\.[a-z_]+)`", events)}


def test_every_action_written_is_documented_exactly_and_nothing_else() -> None:
    code, docs = emitted(), documented() - {"room.<>"}
    assert "trust.add_root" in code and "auth.login" in code and "room.meeting.opened" in code
    assert "bid.refused.<>" in code and "bid.read.<>" in code
    assert sorted(code - docs) == [], "written but not documented"
    assert sorted(docs - code) == [], "documented but never written"
