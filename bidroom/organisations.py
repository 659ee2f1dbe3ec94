"""Organisations as certificates name them, compared the one way the platform compares them
(pure): the custody policy, a bidder who holds a share, and a tender's owners all ask "are these
two of one organisation?" through :func:`organisation_keys`. docs/opening.md ("Custodians",
"Who chairs a tender") is the specification.
"""

from __future__ import annotations

import unicodedata


def organisation_name(name: str | None) -> str | None:
    """An organisation's name as the policy compares it: NFKC (full-width brackets, letters and
    digits as their ASCII forms), without white space, case-folded."""
    if not name:
        return None
    folded = "".join(unicodedata.normalize("NFKC", name).split()).casefold()
    return folded or None


def organisation_keys(organisation: str | None, uscc: str | None) -> frozenset[str]:
    """What names an organisation: ``uscc:<code>`` and ``o:<name as compared>``. Two holders are
    of one organisation if their keys meet (the same USCC, or the same O)."""
    keys = set()
    if uscc and uscc.strip():
        keys.add(f"uscc:{uscc.strip().upper()}")
    name = organisation_name(organisation)
    if name:
        keys.add(f"o:{name}")
    return frozenset(keys)
