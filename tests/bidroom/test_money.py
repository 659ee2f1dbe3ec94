"""bidroom.money: the one format of an amount, the same in Python and in the pages."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bidroom import money

WEB = Path(__file__).resolve().parents[2] / "web" / "js"


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("3650000.00", Decimal("3650000.00")),
        ("99.5", Decimal("99.5")),
        ("0", Decimal(0)),
        ("0.00", Decimal(0)),
        ("999999999999999.99", Decimal("999999999999999.99")),
    ],
)
def test_amounts_in_the_format(text: str, amount: Decimal) -> None:
    assert money.parse(text) == amount


@pytest.mark.parametrize(
    "value",
    [
        "99.505",
        "1E+2",
        " 100 ",
        "100\n",
        "+100",
        "-100",
        "0100",
        "1,000.00",
        "１００",
        "١٠٠",
        "1_000",
        "1" * 16,
        ".5",
        "5.",
        "",
        "NaN",
        100,
        99.5,
        None,
        Decimal("100"),
    ],
)
def test_anything_else_is_not_an_amount(value: object) -> None:
    assert money.parse(value) is None


def test_only_an_adjustment_is_signed_and_a_price_is_above_zero() -> None:
    assert money.parse("-50000.00", signed=True) == Decimal("-50000.00")
    assert money.parse("--1", signed=True) is None
    assert money.positive("0.00") is None and money.positive("0.01") == Decimal("0.01")


@pytest.mark.parametrize("page", ["bid.js", "tenders.js"])
def test_the_pages_check_the_same_pattern(page: str) -> None:
    """The bid page and the tender page refuse what the server refuses, and only that."""
    assert f"const MONEY = /^{money.PATTERN}$/;" in (WEB / page).read_text(encoding="utf-8")
