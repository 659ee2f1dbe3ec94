"""Money as it enters bidroom: one format, checked the same wherever an amount comes in.

An amount is a JSON string in yuan (元), written as plain digits: no sign, no exponent, no white
space, no thousands separator, no leading zero, at most 15 digits before the point and at most 2
after it (docs/evaluation.md "Money")::

    ^(0|[1-9][0-9]{0,14})(\\.[0-9]{1,2})?$        "3650000.00", "99.5", "0", "0.00"

refused: "99.505", "1E+2", " 100 ", "+100", "0100", "1,000.00", "１００" (full-width digits),
"100\\n", a JSON number. A price adjustment of the lowest evaluated price method is the only
signed amount (``signed=True``: one optional leading "-"). Whether 0 is allowed is the caller's
rule: a ceiling and a bid price must be above 0 (:func:`positive`).

The web pages check the same pattern (web/js/bid.js, web/js/tenders.js ``MONEY``). No
dependencies beyond the standard library: the bidder's sealing command imports it.
"""

from __future__ import annotations

import re
from decimal import Decimal

PATTERN = r"(0|[1-9][0-9]{0,14})(\.[0-9]{1,2})?"
MONEY = re.compile(PATTERN, re.ASCII)
SIGNED = re.compile(f"-?{PATTERN}", re.ASCII)
DESCRIPTION = 'a decimal string in yuan, at most 15 digits and 2 decimals, like "3650000.00"'


def parse(value: object, *, signed: bool = False) -> Decimal | None:
    """``value`` as a Decimal if it is an amount in the one format, else None."""
    pattern = SIGNED if signed else MONEY
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        return None
    return Decimal(value)


def positive(value: object) -> Decimal | None:
    """``value`` as a Decimal if it is an amount above 0.00, else None."""
    amount = parse(value)
    return amount if amount is not None and amount > 0 else None
