"""Organisations as certificates name them, compared the one way the platform compares them
(pure): the custody policy, a bidder who holds a share, and a tender's owners all ask "are these
two of one organisation?" through :func:`organisation_keys`. docs/opening.md ("Custodians",
"Who chairs a tender") is the specification.
"""

from __future__ import annotations

import unicodedata


def organisation_name(name: str | None) -> str | None:
    """An organisation's name as the policy compares it: NFKC (full-width brackets, letters and
    digits as their ASCII forms), without white space or invisible format characters (Unicode
    category Cf: zero-width spaces and joiners, which would make one name look like two),
    case-folded. A person's name compares the same way (:func:`person_name`)."""
    if not name:
        return None
    normal = unicodedata.normalize("NFKC", name)
    kept = "".join(c for c in normal if not c.isspace() and unicodedata.category(c) != "Cf")
    return kept.casefold() or None


def person_name(name: str | None) -> str | None:
    """A person's name as certificates may spell it (王敏, 王 敏, 王\u200b敏): compared as an
    organisation's name is."""
    return organisation_name(name)


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
