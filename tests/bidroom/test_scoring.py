"""The evaluation's formulas, pure: DOMAIN.md's worked examples, the edge cases, the deviation
check and the recomputation from a record."""

from __future__ import annotations

import decimal
import json
import random
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bidroom import scoring
from bidroom.errors import ScoringError
from bidroom.scoring import (
    Benchmark,
    Bid,
    Item,
    LowestEvaluated,
    LowPrice,
    Params,
    Rounding,
    RoundingMode,
    Sheet,
    TieBreaker,
    Trim,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
D = Decimal


def bid(bidder: str, price: str, *, passed: bool = True, at: int = 0, **extra: Any) -> Bid:
    return Bid(
        bidder=bidder,
        price=D(price),
        passed=passed,
        received_at=T0 + timedelta(minutes=at),
        **extra,
    )


def bids(*prices: str) -> list[Bid]:
    return [bid(f"B{n}", price, at=n) for n, price in enumerate(prices, 1)]


def scores(result: scoring.PriceResult) -> dict[str, str | None]:
    return {line.bidder: None if line.score is None else str(line.score) for line in result.lines}


def benchmark(**overrides: Any) -> Benchmark:
    fields: dict[str, Any] = {"full": D(30), "e_high": D("0.2"), "e_low": D("0.1")}
    return Benchmark(**{**fields, **overrides})


def refused(code: str) -> Any:
    return pytest.raises(ScoringError, check=lambda e: e.code == code)


ROUND = Rounding()


# DOMAIN.md's worked examples -----------------------------------------------------------------


def test_low_price_example_from_domain() -> None:
    result = scoring.price_scores(LowPrice(weight=D("0.30")), bids("90", "100", "120"), None, ROUND)
    assert scores(result) == {"B1": "30.00", "B2": "27.00", "B3": "22.50"}
    assert result.lowest == D(90)


def test_benchmark_example_from_domain() -> None:
    prices = bids("95", "98", "100", "102", "110")
    result = scoring.price_scores(benchmark(), prices, D(0), ROUND)
    assert scores(result) == {
        "B1": "29.50",
        "B2": "29.80",
        "B3": "30.00",
        "B4": "29.60",
        "B5": "28.00",
    }
    assert result.mean is not None and result.mean.mean == result.benchmark == D(100)
    assert result.mean.dropped == (D(95), D(110))
    assert [str(line.deviation) for line in result.lines] == ["-5", "-2", "0", "2", "10"]


def test_examples_recomputed_from_the_record() -> None:
    record = {
        "params": {"price": {"method": "benchmark", "full": "30", "e_high": "0.2", "e_low": "0.1"}},
        "k": "0",
        "bids": [
            {"bidder": b, "price": p, "received_at": "2026-12-01T09:00:00+08:00"}
            for b, p in zip("ABCDE", ["95", "98", "100", "102", "110"], strict=True)
        ],
    }
    out = scoring.recompute(record)
    assert [line["score"] for line in out["price"]["lines"]] == [
        "29.50",
        "29.80",
        "30.00",
        "29.60",
        "28.00",
    ]
    assert out["price"]["mean"] == {
        "mean": "100",
        "kept": ["98", "100", "102"],
        "dropped": ["95", "110"],
    }
    assert out["price"]["benchmark"] == "100"
    assert [s["bidder"] for s in out["ranking"]] == ["C", "B", "D", "A", "E"]
    assert out["recommended"] == ["C", "B", "D"] and out["undecided"] == []


# benchmark: trimming, K, rounding, sides, floor ----------------------------------------------


@pytest.mark.parametrize(
    ("trim", "trim_from", "prices", "dropped", "mean"),
    [
        (Trim.DROP_MAX_MIN, 5, ["90", "100", "104", "110"], [], "101"),  # n < 5: nothing dropped
        (Trim.DROP_MAX_MIN, 5, ["90", "100", "104", "110", "200"], ["90", "200"], "314/3"),
        (Trim.DROP_MAX_MIN, 3, ["90", "100", "110"], ["90", "110"], "100"),
        (Trim.NONE, 5, ["90", "100", "104", "110", "200"], [], "120.8"),
        (Trim.DROP_TWO_EACH, 7, ["1", "2", "3", "4", "5", "6"], [], "3.5"),  # n < trim_from
        (Trim.DROP_TWO_EACH, 7, ["1", "2", "3", "4", "5", "6", "7"], ["1", "2", "6", "7"], "4"),
        (Trim.DROP_MAX_MIN, 5, ["100", "100", "100", "90", "90"], ["90", "100"], "290/3"),
    ],
)
def test_trimmed_mean_variants(
    trim: Trim, trim_from: int, prices: list[str], dropped: list[str], mean: str
) -> None:
    result = scoring.trimmed_mean([D(p) for p in prices], trim, trim_from)
    assert [str(v) for v in result.dropped] == dropped
    assert len(result.kept) == len(prices) - len(dropped)
    assert abs(Fraction(result.mean) - Fraction(mean)) < Fraction(1, 10**30)


@pytest.mark.parametrize(("trim", "trim_from"), [(Trim.DROP_MAX_MIN, 2), (Trim.DROP_TWO_EACH, 4)])
def test_a_trim_that_would_leave_no_price_is_refused(trim: Trim, trim_from: int) -> None:
    data = {"method": "benchmark", "full": "30", "e_high": "0.2", "e_low": "0.1"}
    with refused("trim_from_invalid"):
        scoring.params_from_json({"price": {**data, "trim": trim.value, "trim_from": trim_from}})


def test_invalid_prices_are_out_of_the_mean_and_unscored() -> None:
    method = benchmark(ceiling=D(105), trim=Trim.NONE)
    prices = [*bids("95", "100", "110"), bid("B9", "50", passed=False)]
    result = scoring.price_scores(method, prices, D(0), ROUND)
    assert result.mean is not None and result.mean.kept == (D(95), D(100))
    statuses = {line.bidder: line.status for line in result.lines}
    assert statuses == {"B1": "valid", "B2": "valid", "B3": "over_ceiling", "B9": "failed_review"}
    assert scores(result)["B3"] is None and scores(result)["B9"] is None


def test_a_price_equal_to_the_ceiling_is_valid() -> None:
    result = scoring.price_scores(
        LowPrice(weight=D("0.3"), ceiling=D(100)), bids("100"), None, ROUND
    )
    assert scores(result) == {"B1": "30.00"}


@pytest.mark.parametrize(
    "method",
    [
        benchmark(ceiling=D(90)),
        LowPrice(weight=D("0.3"), ceiling=D(90)),
        LowestEvaluated(ceiling=D(90)),
    ],
)
def test_all_bids_over_the_ceiling_leave_no_valid_price(method: scoring.PriceMethod) -> None:
    k = D(0) if isinstance(method, Benchmark) else None
    with refused("no_valid_price") as caught:
        scoring.price_scores(method, bids("95", "100"), k, ROUND)
    assert caught.value.detail == {"bids": 2, "ceiling": "90"}


def test_all_bids_failing_review_leave_no_valid_price() -> None:
    with refused("no_valid_price"):
        scoring.price_scores(LowPrice(weight=D("0.3")), [bid("A", "9", passed=False)], None, ROUND)


def test_a_single_valid_bid() -> None:
    low = scoring.price_scores(LowPrice(weight=D("0.45")), bids("123.45"), None, ROUND)
    assert scores(low) == {"B1": "45.00"}
    at_k0 = scoring.price_scores(benchmark(), bids("123.45"), D(0), ROUND)
    assert scores(at_k0) == {"B1": "30.00"}
    # K = 5 %: B = 0.95 P, D = 1 / 0.95 - 1 = 5.263..% above B, 30 - 5.263.. x 0.2 = 28.947..
    at_k5 = scoring.price_scores(benchmark(), bids("123.45"), D("0.05"), ROUND)
    assert scores(at_k5) == {"B1": "28.95"}


def test_k_moves_the_benchmark_below_the_mean() -> None:
    result = scoring.price_scores(
        benchmark(), bids("95", "98", "100", "102", "110"), D("0.02"), ROUND
    )
    assert result.benchmark == D(98) and result.k == D("0.02")
    # D(100) = 2/98 = 2.0408..% x 0.2; D(95) = -3/98 = -3.0612..% x 0.1; D(110) = 12/98 x 0.2
    assert scores(result) == {
        "B1": "29.69",
        "B2": "30.00",
        "B3": "29.59",
        "B4": "29.18",
        "B5": "27.55",
    }


def test_price_exactly_at_the_benchmark_gets_full_marks() -> None:
    result = scoring.price_scores(benchmark(trim=Trim.NONE), bids("90", "100", "110"), D(0), ROUND)
    assert scores(result)["B2"] == "30.00" and result.line("B2").deviation == 0


def test_e_low_below_and_e_high_above() -> None:
    method = benchmark(e_high=D(1), e_low=D("0.5"), trim=Trim.NONE)
    result = scoring.price_scores(method, bids("96", "104"), D(0), ROUND)
    assert scores(result) == {"B1": "28.00", "B2": "26.00"}  # 4 % x 0.5 below, 4 % x 1 above


def test_the_score_never_goes_below_zero() -> None:
    method = benchmark(e_high=D(2), trim=Trim.NONE)
    result = scoring.price_scores(method, bids("100", "140"), D("0"), ROUND)
    # B = 120; 140 is 16.67 % above: 30 - 33.3 < 0
    assert result.line("B2").score == D(0) and str(result.line("B2").score) == "0.00"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (RoundingMode.HALF_UP, "29.99"),
        (RoundingMode.HALF_EVEN, "29.98"),
        (RoundingMode.DOWN, "29.98"),
    ],
)
def test_rounding_at_the_half_benchmark(mode: RoundingMode, expected: str) -> None:
    # S = B = 100, D = -0.15 %, 30 - 0.15 x 0.1 = 29.985 exactly
    method = benchmark(e_high=D("0.1"), trim=Trim.NONE)
    result = scoring.price_scores(method, bids("99.85", "100.15"), D(0), Rounding(mode=mode))
    assert scores(result) == {"B1": expected, "B2": expected}


@pytest.mark.parametrize(
    ("mode", "expected"), [(RoundingMode.HALF_UP, "33.13"), (RoundingMode.HALF_EVEN, "33.12")]
)
def test_rounding_at_the_half_low_price(mode: RoundingMode, expected: str) -> None:
    # 265 / 800 x 1 x 100 = 33.125 exactly (a float would get here by luck, a Decimal by design)
    result = scoring.price_scores(
        LowPrice(weight=D(1)), bids("265", "800"), None, Rounding(mode=mode)
    )
    assert scores(result)["B2"] == expected


def test_rounding_to_other_places() -> None:
    result = scoring.price_scores(
        LowPrice(weight=D("0.3")), bids("90", "110"), None, Rounding(places=0)
    )
    assert scores(result) == {"B1": "30", "B2": "25"}  # 24.545..


def test_intermediates_exact_by_default_or_rounded_when_the_lot_says() -> None:
    prices = bids("100", "101", "103")
    method = benchmark(trim=Trim.NONE)
    exact = scoring.price_scores(method, prices, D(0), ROUND)
    assert exact.benchmark == Fraction(304, 3)  # 101.333..., exact
    assert scoring.exact_text(exact.benchmark) == "304/3"
    rounded = scoring.price_scores(method, prices, D(0), Rounding(intermediate_places=2))
    assert rounded.benchmark is not None and scoring.exact_text(rounded.benchmark) == "101.33"
    assert rounded.mean is not None and scoring.exact_text(rounded.mean.mean) == "101.33"
    deviation = rounded.line("B1").deviation
    assert deviation is not None and scoring.exact_text(deviation) == "-1.31"  # -1.3125..
    assert exact.line("B1").deviation != rounded.line("B1").deviation


@pytest.mark.parametrize(
    ("k", "code"), [(None, "k_required"), (D(1), "k_invalid"), (D("-0.01"), "k_invalid")]
)
def test_benchmark_needs_a_k_in_range(k: Decimal | None, code: str) -> None:
    with refused(code):
        scoring.price_scores(benchmark(), bids("100"), k, ROUND)


def test_k_is_only_for_benchmark() -> None:
    with refused("k_unexpected"):
        scoring.price_scores(LowPrice(weight=D("0.3")), bids("100"), D(0), ROUND)


# low price parameters ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "code"),
    [
        ({"weight": "0"}, "weight_invalid"),
        ({"weight": "1.01"}, "weight_invalid"),
        ({"weight": 0.3}, "number_invalid"),
        ({"weight": "NaN"}, "number_invalid"),
        ({"weight": "0.20", "category": "goods"}, "weight_out_of_range"),
        ({"weight": "0.35", "category": "services"}, "weight_out_of_range"),
    ],
)
def test_low_price_parameters_are_checked(price: dict[str, Any], code: str) -> None:
    with refused(code):
        scoring.params_from_json({"price": {"method": "low_price", **price}})


@pytest.mark.parametrize(
    ("weight", "category"), [("0.30", "goods"), ("0.60", "goods"), ("0.10", "services")]
)
def test_weights_at_the_statutory_bounds_are_accepted(weight: str, category: str) -> None:
    params = scoring.params_from_json(
        {"price": {"method": "low_price", "weight": weight, "category": category}}
    )
    assert isinstance(params.price, LowPrice) and params.price.weight == D(weight)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (
            {"price": {"method": "benchmark", "full": "0", "e_high": "1", "e_low": "1"}},
            "coefficient_invalid",
        ),
        (
            {"price": {"method": "benchmark", "full": "30", "e_high": "-1", "e_low": "1"}},
            "coefficient_invalid",
        ),
        (
            {"price": {"method": "lowest_evaluated"}, "items": [{"id": "t", "max": "10"}]},
            "items_unexpected",
        ),
        (
            {
                "price": {"method": "low_price", "weight": "0.3"},
                "items": [{"id": "t", "max": "1"}] * 2,
            },
            "item_duplicate",
        ),
        (
            {"price": {"method": "low_price", "weight": "0.3"}, "items": [{"id": "t", "max": "0"}]},
            "item_max_invalid",
        ),
        (
            {
                "price": {"method": "low_price", "weight": "0.3"},
                "tie_breakers": ["lower_price"] * 2,
            },
            "tie_breaker_duplicate",
        ),
        (
            {"price": {"method": "low_price", "weight": "0.3"}, "threshold": "0"},
            "threshold_invalid",
        ),
        (
            {
                "price": {"method": "low_price", "weight": "0.3"},
                "expert_trim": "drop_max_min",
                "expert_trim_from": 2,
            },
            "trim_from_invalid",
        ),
        ({"price": {"method": "dutch_auction"}}, "record_invalid"),
        ({"price": {"method": "low_price", "weight": "0.3"}, "surprise": 1}, "record_invalid"),
    ],
)
def test_parameters_are_refused_with_their_code(data: dict[str, Any], code: str) -> None:
    with refused(code) as caught:
        scoring.params_from_json(data)
    assert caught.value.detail["errors"]


# lowest evaluated price --------------------------------------------------------------------


def test_lowest_evaluated_ranks_adjusted_prices_ascending() -> None:
    adjust = scoring.Adjustment(amount=D("15"), reason="缺项加价")
    credit = scoring.Adjustment(amount=D("-3"), reason="工期提前")
    entries = [
        bid("A", "90", adjustments=(adjust,)),
        bid("B", "100", adjustments=(credit,)),
        bid("C", "99"),
    ]
    out = scoring.evaluate(Params(price=LowestEvaluated()), entries)
    assert {line.bidder: str(line.evaluated) for line in out.price.lines} == {
        "A": "105",
        "B": "97",
        "C": "99",
    }
    assert [s.bidder for s in out.ranking.standings] == ["B", "C", "A"]
    assert all(t.total is None and t.price_score is None for t in out.totals)


def test_lowest_evaluated_ties_are_broken_by_the_rule_or_marked() -> None:
    plus = scoring.Adjustment(amount=D(10), reason="偏差调整")
    entries = [
        bid("A", "90", adjustments=(plus,), at=5),
        bid("B", "100", at=1),
        bid("C", "100", at=3),
    ]
    ranking = scoring.evaluate(Params(price=LowestEvaluated()), entries).ranking
    # all evaluate to 100; the lower bid price, then the earlier receipt decide
    assert [(s.bidder, s.rank, s.tied) for s in ranking.standings] == [
        ("A", 1, False),
        ("B", 2, False),
        ("C", 3, False),
    ]
    same = [bid("A", "100", at=1), bid("B", "100", at=1)]
    ranking = scoring.evaluate(Params(price=LowestEvaluated()), same).ranking
    assert [(s.bidder, s.rank, s.tied) for s in ranking.standings] == [
        ("A", 1, True),
        ("B", 1, True),
    ]


def test_adjustments_belong_to_the_lowest_evaluated_method() -> None:
    adjust = scoring.Adjustment(amount=D(1), reason="x")
    with refused("adjustment_unexpected"):
        scoring.price_scores(
            LowPrice(weight=D("0.3")), [bid("A", "9", adjustments=(adjust,))], None, ROUND
        )


# items, totals and ranking -----------------------------------------------------------------

TECH = Item(id="tech", max=D(60))
SERVICE = Item(id="service", max=D(10), part="commercial")
CERT = Item(id="cert", max=D(5), kind="objective", part="commercial")


def sheet(expert: str, bidder: str, total: str | None = None, **items: str) -> Sheet:
    return Sheet(
        expert=expert,
        bidder=bidder,
        scores={k: D(v) for k, v in items.items()},
        total=None if total is None else D(total),
    )


def low_price_params(**overrides: Any) -> Params:
    fields: dict[str, Any] = {"price": LowPrice(weight=D("0.30")), "items": (TECH, SERVICE, CERT)}
    return Params(**{**fields, **overrides})


def test_totals_add_averaged_items_objective_items_and_the_price_score() -> None:
    sheets = [
        sheet("e1", "A", tech="50", service="8", cert="5"),
        sheet("e2", "A", tech="52", service="9", cert="5"),
        sheet("e3", "A", tech="51", service="7", cert="5"),
        sheet("e1", "B", tech="40", service="6", cert="3"),
        sheet("e2", "B", tech="41", service="6", cert="3"),
        sheet("e3", "B", tech="41", service="6", cert="3"),
    ]
    out = scoring.evaluate(low_price_params(), [bid("A", "100"), bid("B", "90")], sheets)
    totals = {t.bidder: t for t in out.totals}
    # A: 51.00 + 8.00 + 5.00 + 27.00; B: 40.67 (40.666..) + 6.00 + 3.00 + 30.00
    assert str(totals["A"].total) == "91.00" and str(totals["B"].total) == "79.67"
    assert totals["B"].technical == D("40.67") and totals["A"].items == D(64)
    assert [s.bidder for s in out.ranking.standings] == ["A", "B"]
    assert out.flags == ()


def test_trimmed_expert_averaging_from_five_experts() -> None:
    params = Params(price=LowPrice(weight=D("0.3")), items=(TECH,), expert_trim=Trim.DROP_MAX_MIN)
    five = [sheet(f"e{n}", "A", tech=v) for n, v in enumerate(["10", "40", "41", "42", "60"])]
    out = scoring.evaluate(params, [bid("A", "100")], five)
    assert out.items[0].score == D(41) and out.items[0].average.dropped == (D(10), D(60))
    four = five[1:]
    out = scoring.evaluate(params, [bid("A", "100")], four)
    assert out.items[0].score == D("45.75") and out.items[0].average.dropped == ()


def tie_case(
    tie_breakers: Sequence[TieBreaker], *, at: Sequence[int] = (1, 2)
) -> list[tuple[str, int, bool]]:
    """A (90: tech 60, price 30) and B (100: tech 63, price 27) tie at 90 points."""
    items = (Item(id="tech", max=D(70)),)
    params = Params(price=LowPrice(weight=D("0.30")), items=items, tie_breakers=tuple(tie_breakers))
    sheets = [sheet("e1", "A", tech="60"), sheet("e1", "B", tech="63")]
    entries = [bid("A", "90", at=at[0]), bid("B", "100", at=at[1])]
    out = scoring.evaluate(params, entries, sheets)
    assert {t.total for t in out.totals} == {D(90)}
    return [(s.bidder, s.rank, s.tied) for s in out.ranking.standings]


def test_tie_broken_by_the_lower_price() -> None:
    assert tie_case([TieBreaker.LOWER_PRICE]) == [("A", 1, False), ("B", 2, False)]


def test_tie_broken_by_the_higher_technical_score() -> None:
    rule = [TieBreaker.HIGHER_TECHNICAL, TieBreaker.LOWER_PRICE]
    assert tie_case(rule) == [("B", 1, False), ("A", 2, False)]


def test_tie_broken_by_the_earlier_receipt() -> None:
    assert tie_case([TieBreaker.EARLIER_RECEIPT], at=(9, 3)) == [("B", 1, False), ("A", 2, False)]


def test_an_unresolved_tie_is_said_not_ordered() -> None:
    assert tie_case([]) == [("A", 1, True), ("B", 1, True)]
    assert tie_case([TieBreaker.EARLIER_RECEIPT], at=(4, 4)) == [("A", 1, True), ("B", 1, True)]


def test_commercial_items_are_not_technical() -> None:
    params = Params(
        price=LowPrice(weight=D("0.30")),
        items=(TECH, SERVICE),
        tie_breakers=(TieBreaker.HIGHER_TECHNICAL,),
    )
    sheets = [sheet("e1", "A", tech="50", service="10"), sheet("e1", "B", tech="55", service="5")]
    out = scoring.evaluate(params, [bid("A", "100"), bid("B", "100")], sheets)
    assert [(s.bidder, s.rank) for s in out.ranking.standings] == [("B", 1), ("A", 2)]


def test_a_tie_across_the_last_candidate_place_is_left_undecided() -> None:
    params = Params(price=LowPrice(weight=D("0.30")), tie_breakers=())
    out = scoring.evaluate(params, bids("90", "100", "120", "120", "150"))
    assert [(s.bidder, s.rank, s.tied) for s in out.ranking.standings] == [
        ("B1", 1, False),
        ("B2", 2, False),
        ("B3", 3, True),
        ("B4", 3, True),
        ("B5", 5, False),
    ]
    assert out.ranking.recommended == ("B1", "B2") and out.ranking.undecided == ("B3", "B4")
    more = scoring.evaluate(
        params.model_copy(update={"candidates": 4}), bids("90", "100", "120", "120")
    )
    assert more.ranking.recommended == ("B1", "B2", "B3", "B4") and more.ranking.undecided == ()


def test_only_valid_bids_are_ranked() -> None:
    params = Params(price=LowPrice(weight=D("0.30"), ceiling=D(110)))
    out = scoring.evaluate(params, [bid("A", "100"), bid("B", "90", passed=False), bid("C", "120")])
    assert [s.bidder for s in out.ranking.standings] == ["A"] and out.ranking.recommended == ("A",)


@pytest.mark.parametrize(
    ("sheets", "code"),
    [
        ([sheet("e1", "A", tech="61", service="1", cert="1")], "score_out_of_range"),
        ([sheet("e1", "A", tech="1", service="1")], "score_missing"),
        (
            [
                sheet("e1", "A", tech="1", service="1", cert="1"),
                sheet("e2", "A", tech="1", service="1", cert="2"),
            ],
            "objective_inconsistent",
        ),
        (
            [
                sheet("e1", "A", tech="1", service="1", cert="1"),
                sheet("e1", "A", tech="1", service="1", cert="1"),
            ],
            "sheet_duplicate",
        ),
        ([sheet("e1", "A", tech="1", service="1", cert="1", extra="1")], "item_unknown"),
        (
            [sheet("e1", "A", tech="1", service="1", cert="1"), sheet("e1", "Z", tech="1")],
            "bidder_unknown",
        ),
        ([], "score_missing"),
    ],
)
def test_totals_refuse_what_must_be_resolved_first(sheets: list[Sheet], code: str) -> None:
    with refused(code):
        scoring.evaluate(low_price_params(), [bid("A", "100")], sheets)


def test_two_bids_from_one_bidder_are_refused() -> None:
    with refused("bid_duplicate"):
        scoring.evaluate(low_price_params(items=()), [bid("A", "100"), bid("A", "90")])


def test_sheets_of_invalid_bids_do_not_count() -> None:
    sheets = [sheet("e1", "A", tech="50", service="5", cert="5"), sheet("e1", "B", tech="9")]
    out = scoring.evaluate(
        low_price_params(), [bid("A", "100"), bid("B", "90", passed=False)], sheets
    )
    assert [t.bidder for t in out.totals] == ["A"]


# the deviation check -----------------------------------------------------------------------


def kinds(flags: Sequence[scoring.Flag]) -> list[tuple[str, str, str | None, str | None]]:
    return [(f.kind, f.bidder, f.expert, f.item) for f in flags]


def test_sum_error() -> None:
    flags = scoring.sum_errors(
        [
            sheet("e1", "A", "20", tech="10", service="9"),
            sheet("e2", "A", "19", tech="10", service="9"),
        ]
    )
    assert kinds(flags) == [("sum_error", "A", "e1", None)]
    assert flags[0].evidence == {"sum": "19", "total": "20"}


def test_out_of_range_items() -> None:
    flags = scoring.out_of_range(
        (TECH, SERVICE),
        [sheet("e1", "A", tech="60.5", service="-1"), sheet("e2", "A", tech="60", service="0")],
    )
    assert kinds(flags) == [
        ("out_of_range", "A", "e1", "service"),
        ("out_of_range", "A", "e1", "tech"),
    ]
    assert flags[1].evidence == {"score": "60.5", "min": "0", "max": "60"}


def test_missing_scores_and_sheets() -> None:
    flags = scoring.missing_scores(
        (TECH, SERVICE), [sheet("e1", "A", tech="1"), sheet("e2", "B", tech="1", service="1")]
    )
    assert kinds(flags) == [
        ("missing", "A", "e1", "service"),
        ("missing", "A", "e2", "service"),
        ("missing", "A", "e2", "tech"),
        ("missing", "B", "e1", "service"),
        ("missing", "B", "e1", "tech"),
    ]
    assert flags[0].evidence == {"sheet": True} and flags[1].evidence == {"sheet": False}


def test_inconsistent_objective_items() -> None:
    sheets = [sheet(e, "A", cert=v, tech="1") for e, v in [("e1", "5"), ("e2", "5"), ("e3", "3")]]
    flags = scoring.objective_inconsistencies((TECH, CERT), sheets)
    assert kinds(flags) == [("objective_inconsistent", "A", None, "cert")]
    assert flags[0].evidence == {"scores": {"e1": "5", "e2": "5", "e3": "3"}}


def test_abnormal_scores_more_than_the_threshold_from_the_mean() -> None:
    # mean 40: 28 is exactly 30 % below (not flagged), 27.9 is more; 52 exactly above, 52.1 more
    values = {"e1": "28", "e2": "52", "e3": "40", "e4": "40", "e5": "40"}
    flags = scoring.abnormal_scores(
        (TECH,), [sheet(e, "A", tech=v) for e, v in values.items()], D("0.30")
    )
    assert flags == ()
    values = {"e1": "27", "e2": "53", "e3": "40", "e4": "40", "e5": "40"}
    flags = scoring.abnormal_scores(
        (TECH,), [sheet(e, "A", tech=v) for e, v in values.items()], D("0.30")
    )
    assert kinds(flags) == [("abnormal", "A", "e1", "tech"), ("abnormal", "A", "e2", "tech")]
    assert flags[0].evidence == {
        "score": "27",
        "mean": "40.0000",
        "ratio": "0.3250",
        "threshold": "0.30",
    }


def test_abnormal_scores_follow_the_lots_threshold() -> None:
    sheets = [sheet("e1", "A", tech="8"), sheet("e2", "A", tech="12")]  # 20 % from the mean 10
    assert scoring.abnormal_scores((TECH,), sheets, D("0.30")) == ()
    assert len(scoring.abnormal_scores((TECH,), sheets, D("0.15"))) == 2


def test_abnormal_scores_with_a_mean_of_zero() -> None:
    zeros = [sheet(e, "A", tech="0") for e in ("e1", "e2", "e3")]
    assert scoring.abnormal_scores((TECH,), zeros, D("0.30")) == ()
    # only possible with an out-of-range score: every non-zero score is flagged, ratio null
    odd = [sheet("e1", "A", tech="-1"), sheet("e2", "A", tech="1"), sheet("e3", "A", tech="0")]
    flags = scoring.abnormal_scores((TECH,), odd, D("0.30"))
    assert kinds(flags) == [("abnormal", "A", "e1", "tech"), ("abnormal", "A", "e2", "tech")]
    assert flags[0].evidence["ratio"] is None and flags[0].evidence["mean"] == "0.0000"


def test_the_abnormal_base_is_the_mean_after_the_experts_trim() -> None:
    """docs/evaluation.md "The deviation check": 10/10/10/13/30 under drop_max_min."""
    values = ("10", "10", "10", "13", "30")
    sheets = [sheet(f"e{n}", "A", tech=v) for n, v in enumerate(values, 1)]
    trimmed = scoring.abnormal_scores((TECH,), sheets, D("0.30"), Trim.DROP_MAX_MIN, 5)
    assert kinds(trimmed) == [("abnormal", "A", "e5", "tech")]
    assert trimmed[0].evidence["mean"] == "11.0000"
    plain = scoring.abnormal_scores((TECH,), sheets, D("0.30"))
    assert [f.expert for f in plain] == ["e1", "e2", "e3", "e5"]  # the mean 14.6 flags four
    # below expert_trim_from scores the trim does not apply, so neither does it to the base
    four = scoring.abnormal_scores((TECH,), sheets[1:], D("0.30"), Trim.DROP_MAX_MIN, 5)
    assert [f.expert for f in four] == ["e2", "e3", "e5"]  # mean 15.75, band 4.725


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=6000), st.integers(min_value=0, max_value=3)),
        min_size=1,
        max_size=9,
    ),
    st.sampled_from(["0.05", "0.3", "0.333", "1"]),
    st.sampled_from([Trim.NONE, Trim.DROP_MAX_MIN, Trim.DROP_TWO_EACH]),
)
def test_abnormal_scores_equal_an_exact_reference(
    raw: list[tuple[int, int]], threshold: str, trim: Trim
) -> None:
    """The check in integers of one scale (scoring.as_units) flags exactly what the definition
    |x - m| > t x |m| in fractions does, m the mean after the trim, with mixed decimal places."""
    values = [D(units).scaleb(-places) for units, places in raw]
    sheets = [sheet(f"e{n}", "A", tech=str(v)) for n, v in enumerate(values)]
    got = scoring.abnormal_scores((TECH,), sheets, D(threshold), trim, 5)
    ordered = sorted(Fraction(v) for v in values)
    each = trim.each if len(ordered) >= max(5, 2 * trim.each + 1) else 0
    kept = ordered[each : len(ordered) - each]
    m = sum(kept, Fraction(0)) / len(kept)
    t = Fraction(threshold)
    expected = sorted(f"e{n}" for n, v in enumerate(values) if abs(Fraction(v) - m) > t * abs(m))
    assert sorted(f.expert or "" for f in got) == expected


def test_objective_items_are_not_checked_for_abnormal_scores() -> None:
    sheets = [sheet("e1", "A", cert="0"), sheet("e2", "A", cert="5")]
    assert scoring.abnormal_scores((CERT,), sheets, D("0.30")) == ()


def test_deviations_collects_every_kind_in_a_fixed_order() -> None:
    sheets = [
        sheet("e1", "A", "99", tech="10", service="11", cert="5"),
        sheet("e2", "A", tech="30", cert="4"),
    ]
    flags = scoring.deviations(low_price_params(), sheets)
    assert [f.kind for f in flags] == [
        "sum_error",
        "out_of_range",
        "missing",
        "objective_inconsistent",
        "abnormal",
        "abnormal",
    ]


def test_an_evaluation_carries_its_flags() -> None:
    sheets = [
        sheet("e1", "A", "40", tech="30", service="5", cert="5"),
        sheet("e2", "A", tech="50", service="5", cert="5"),
    ]
    out = scoring.evaluate(low_price_params(), [bid("A", "100")], sheets)
    # the mean of tech is 40: 30 and 50 are 25 % away (not abnormal); e1's sheet adds to 40, fine
    assert out.flags == ()
    sheets[1] = sheet("e2", "A", "61", tech="60", service="5", cert="5")
    out = scoring.evaluate(low_price_params(), [bid("A", "100")], sheets)
    assert kinds(out.flags) == [
        ("sum_error", "A", "e2", None),
        ("abnormal", "A", "e1", "tech"),
        ("abnormal", "A", "e2", "tech"),
    ]


# the recomputation -------------------------------------------------------------------------


def record(seed: int) -> dict[str, Any]:
    """A lot with some ties, invalid bids and flags, from a seed."""
    rng = random.Random(seed)
    bidders = [f"uscc:{n:02d}" for n in range(rng.randint(1, 9))]
    experts = [f"expert{n}" for n in range(rng.randint(1, 6))]
    prices = {
        b: str(rng.choice([90, 95, 100, 100, 104, 110, 130])) + rng.choice(["", ".5", ".05"])
        for b in bidders
    }
    bids_ = [
        {
            "bidder": b,
            "price": prices[b],
            "passed": rng.random() > 0.1,
            "received_at": (T0 + timedelta(seconds=rng.choice([0, 1, 2]))).isoformat(),
        }
        for b in bidders
    ]
    sheets = [
        {
            "expert": e,
            "bidder": b,
            "scores": {"tech": str(rng.randint(20, 60)), "cert": rng.choice(["5", "5", "5"])},
            "total": None,
        }
        for e in experts
        for b in bidders
    ]
    method: dict[str, Any] = rng.choice(
        [
            {"method": "low_price", "weight": "0.30", "ceiling": "120"},
            {
                "method": "benchmark",
                "full": "30",
                "e_high": "0.3",
                "e_low": "0.15",
                "ceiling": "120",
                "trim": rng.choice(["none", "drop_max_min"]),
            },
        ]
    )
    params = {
        "price": method,
        "items": [
            {"id": "tech", "max": "60"},
            {"id": "cert", "max": "5", "kind": "objective", "part": "commercial"},
        ],
        "tie_breakers": rng.sample(
            ["lower_price", "higher_technical", "earlier_receipt"], rng.randint(0, 3)
        ),
        "expert_trim": rng.choice(["none", "drop_max_min"]),
    }
    bids_.append({"bidder": "always", "price": "100", "received_at": T0.isoformat()})
    sheets += [
        {"expert": e, "bidder": "always", "scores": {"tech": "40", "cert": "5"}} for e in experts
    ]
    k = rng.choice(["0", "0.01", "0.035"]) if method["method"] == "benchmark" else None
    return {"params": params, "k": k, "bids": bids_, "sheets": sheets}


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=10**6), st.randoms(use_true_random=False))
def test_the_input_order_never_changes_the_computation(seed: int, shuffler: random.Random) -> None:
    data = record(seed)
    expected = json.dumps(scoring.recompute(data), sort_keys=False)
    for _ in range(3):
        shuffled = {
            **data,
            "bids": shuffler.sample(data["bids"], len(data["bids"])),
            "sheets": shuffler.sample(data["sheets"], len(data["sheets"])),
        }
        assert json.dumps(scoring.recompute(shuffled), sort_keys=False) == expected


def test_the_callers_decimal_context_does_not_matter() -> None:
    data = record(7)
    expected = scoring.recompute(data)
    with decimal.localcontext(decimal.Context(prec=3, rounding=decimal.ROUND_FLOOR)):
        assert scoring.recompute(data) == expected


def test_the_computation_is_json_with_every_intermediate() -> None:
    data = record(11)
    data["params"]["price"] = {"method": "benchmark", "full": "30", "e_high": "0.2", "e_low": "0.1"}
    data["k"] = "0.02"
    out = json.loads(json.dumps(scoring.recompute(data)))
    assert out["format"] == "bidroom-evaluation-computation"
    assert set(out) == {
        "format",
        "version",
        "params",
        "price",
        "items",
        "totals",
        "ranking",
        "recommended",
        "undecided",
        "flags",
    }
    assert (
        out["price"]["k"] == "0.02" and out["price"]["mean"]["kept"] and out["price"]["benchmark"]
    )
    assert all(isinstance(line["price"], str) for line in out["price"]["lines"])


def benchmark_reference(
    prices: Sequence[Fraction], k: Fraction, full: Fraction, high: Fraction, low: Fraction
) -> list[Decimal]:
    """Scores with exact fractions, the drop-max-min rule from 5, half-up to 2 places."""
    kept = sorted(prices)[1:-1] if len(prices) >= 5 else sorted(prices)
    b = sum(kept, Fraction(0)) / len(kept) * (1 - k)
    result = []
    for p in prices:
        d = (p - b) / b * 100
        raw = max(full - abs(d) * (high if d > 0 else low), Fraction(0))
        cents = (raw * 100 * 2 + 1) // 2  # half up (raw >= 0)
        result.append(Decimal(int(cents)) / 100)
    return result


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(min_value=5000, max_value=20000), min_size=1, max_size=9),
    st.sampled_from(["0", "0.005", "0.02", "0.05"]),
)
def test_benchmark_scores_agree_with_exact_fractions(cents: list[int], k: str) -> None:
    prices = [D(c) / 100 for c in cents]
    entries = [bid(f"B{n}", str(p)) for n, p in enumerate(prices)]
    result = scoring.price_scores(benchmark(e_high=D("0.3"), e_low=D("0.15")), entries, D(k), ROUND)
    expected = benchmark_reference(
        [Fraction(c, 100) for c in cents],
        Fraction(k),
        Fraction(30),
        Fraction(3, 10),
        Fraction(15, 100),
    )
    assert [result.line(f"B{n}").score for n in range(len(cents))] == expected


def test_a_record_in_another_format_is_refused() -> None:
    with refused("format_unknown"):
        scoring.record_from_json(
            {"format": "something", "params": {"price": {"method": "lowest_evaluated"}}, "bids": []}
        )


def test_float_prices_are_refused() -> None:
    data = {
        "params": {"price": {"method": "lowest_evaluated"}},
        "bids": [{"bidder": "A", "price": 99.9, "received_at": T0.isoformat()}],
    }
    with refused("money_invalid"):
        scoring.recompute(data)


def test_a_naive_receipt_time_is_refused() -> None:
    data = {
        "params": {"price": {"method": "lowest_evaluated"}},
        "bids": [{"bidder": "A", "price": "1", "received_at": "2026-12-01T09:00:00"}],
    }
    with refused("record_invalid"):
        scoring.recompute(data)


def test_every_code_is_documented() -> None:
    documented = set(re.findall(r"^    ([a-z_]+) {2,}", scoring.__doc__ or "", re.MULTILINE))
    assert documented == scoring.CODES


# exact arithmetic, one rounding (issue 15 §4) ------------------------------------------------


def test_an_exact_half_behind_a_non_terminating_mean_rounds_half_up() -> None:
    # S = 3520000/3 = 1173333.33...; D(1210000) = 110000/3520000 = 3.125 % exactly;
    # 30 - 3.125 x 0.2 = 29.375 exactly -> 29.38 (a 34-digit context gave 29.37)
    prices = bids("1200000", "1110000", "1210000")
    result = scoring.price_scores(benchmark(), prices, D(0), ROUND)
    assert result.benchmark == Fraction(3520000, 3)
    assert result.line("B3").deviation == Fraction(3125, 1000)
    assert scores(result)["B3"] == "29.38"
    data = {
        "params": {"price": {"method": "benchmark", "full": "30", "e_high": "0.2", "e_low": "0.1"}},
        "k": "0",
        "bids": [
            {"bidder": b.bidder, "price": str(b.price), "received_at": T0.isoformat()}
            for b in prices
        ],
    }
    out = scoring.recompute(data)["price"]
    assert out["mean"]["mean"] == "3520000/3" and out["benchmark"] == "3520000/3"
    line = next(line for line in out["lines"] if line["bidder"] == "B3")
    assert (line["deviation"], line["score"]) == ("3.125", "29.38")
    # written exactly, never with a 34-digit tail: 25/11 % = 2.2727..., -475/88 % = -5.3977...
    assert [x["deviation"] for x in out["lines"]] == ["25/11", "-475/88", "3.125"]


def test_exact_arithmetic_decides_the_candidate() -> None:
    # S = 400/3; D(A) = 0.05 %, 30 - 0.025 = 29.975 -> 29.98, total 69.98;
    # D(B) = D(C) = -0.025 %, 30 - 0.0125 = 29.9875 -> 29.99, totals 69.97 and 68.99
    params = Params(
        price=benchmark(e_high=D("0.5"), e_low=D("0.5")),
        items=(Item(id="tech", max=D(40)),),
        candidates=1,
    )
    entries = [bid("A", "133.40"), bid("B", "133.30", at=1), bid("C", "133.30", at=2)]
    sheets = [
        Sheet(expert="e1", bidder=b, scores={"tech": D(t)})
        for b, t in (("A", "40"), ("B", "39.98"), ("C", "39"))
    ]
    result = scoring.evaluate(params, entries, sheets, D(0))
    totals = {t.bidder: str(t.total) for t in result.totals}
    assert totals == {"A": "69.98", "B": "69.97", "C": "68.99"}
    assert result.ranking.recommended == ("A",)


def test_low_price_exact_half_behind_a_non_terminating_ratio() -> None:
    # 6683622.14 / 24677989.44 = 13/48 = 0.2708333...; x 30 = 8.125 exactly -> 8.13
    result = scoring.price_scores(
        LowPrice(weight=D("0.30")), bids("6683622.14", "24677989.44"), None, ROUND
    )
    assert scores(result) == {"B1": "30.00", "B2": "8.13"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Fraction(3125, 1000), "3.125"),
        (Fraction(-5), "-5"),
        (Fraction(0), "0"),
        (Fraction(3520000, 3), "3520000/3"),
        (Fraction(-1, 6), "-1/6"),
        (Fraction(10**40 + 1, 10**40), "1." + "0" * 39 + "1"),
        (Fraction(10**50), "1" + "0" * 50),
    ],
)
def test_exact_text_terminates_or_is_a_fraction(value: Fraction, expected: str) -> None:
    assert scoring.exact_text(value) == expected
    assert Fraction(expected) == value


@pytest.mark.parametrize(
    ("value", "mode", "expected"),
    [
        (Fraction(29375, 1000), RoundingMode.HALF_UP, "29.38"),
        (Fraction(29375, 1000), RoundingMode.HALF_EVEN, "29.38"),
        (Fraction(29365, 1000), RoundingMode.HALF_EVEN, "29.36"),
        (Fraction(29375, 1000), RoundingMode.DOWN, "29.37"),
        (Fraction(-29375, 1000), RoundingMode.HALF_UP, "-29.38"),
        (Fraction(-29375, 1000), RoundingMode.DOWN, "-29.37"),
        (Fraction(-1, 1000), RoundingMode.HALF_UP, "0.00"),
        (Fraction(2, 3), RoundingMode.HALF_UP, "0.67"),
        (Fraction(10**40 + 5, 10**3), RoundingMode.HALF_UP, f"{10**37}.01"),
        (D("0.125"), RoundingMode.HALF_UP, "0.13"),
    ],
)
def test_round_exact_rounds_once_from_the_exact_value(
    value: Fraction | Decimal, mode: RoundingMode, expected: str
) -> None:
    assert scoring.text(scoring.round_exact(value, 2, mode)) == expected


def reference_round(value: Fraction, places: int, mode: str) -> Fraction:
    """An independent rounding: floor-based, over exact fractions."""
    scaled = value * 10**places
    sign = -1 if scaled < 0 else 1
    magnitude = abs(scaled)
    floor = magnitude.numerator // magnitude.denominator
    rest = magnitude - floor
    if mode == "half_up" and rest >= Fraction(1, 2):
        floor += 1
    if mode == "half_even" and (rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2)):
        floor += 1
    return Fraction(sign * floor, 10**places)


def reference_benchmark(
    prices: Sequence[Fraction],
    k: Fraction,
    full: Fraction,
    high: Fraction,
    low: Fraction,
    trim_each: int,
    mode: str,
) -> list[Fraction]:
    """Benchmark scores with exact fractions, trimmed from 5 prices, rounded once to 2 places."""
    ordered = sorted(prices)
    each = trim_each if len(prices) >= max(5, 2 * trim_each + 1) else 0
    kept = ordered[each : len(ordered) - each]
    b = sum(kept, Fraction(0)) / len(kept) * (1 - k)
    out = []
    for p in prices:
        d = (p - b) / b * 100
        raw = max(full - abs(d) * (high if d > 0 else low), Fraction(0))
        out.append(reference_round(raw, 2, mode))
    return out


MODES = ["half_up", "half_even", "down"]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=8),
    st.integers(min_value=0, max_value=999),
    st.sampled_from(["0.1", "0.15", "0.2", "0.25", "0.3", "0.5", "1"]),
    st.sampled_from(["0.05", "0.1", "0.125", "0.2", "0.5"]),
    st.sampled_from([Trim.NONE, Trim.DROP_MAX_MIN, Trim.DROP_TWO_EACH]),
    st.sampled_from(MODES),
)
def test_benchmark_scores_equal_an_exact_reference(
    cents: list[int], k_milli: int, high: str, low: str, trim: Trim, mode: str
) -> None:
    k = Fraction(k_milli, 1000) if k_milli < 200 else Fraction(0)
    entries = [bid(f"B{n}", str(D(c) / 100)) for n, c in enumerate(cents)]
    method = benchmark(e_high=D(high), e_low=D(low), trim=trim, trim_from=5)
    rounding = Rounding(mode=RoundingMode(mode))
    result = scoring.price_scores(method, entries, D(k.numerator) / k.denominator, rounding)
    expected = reference_benchmark(
        [Fraction(c, 100) for c in cents], k, Fraction(30), Fraction(high), Fraction(low),
        trim.each, mode,
    )  # fmt: skip
    got = [result.line(f"B{n}").score for n in range(len(cents))]
    assert [None if g is None else Fraction(g) for g in got] == expected


@settings(max_examples=150, deadline=None)
@given(
    st.integers(min_value=1, max_value=10**6),
    st.integers(min_value=0, max_value=300),
    st.booleans(),
    st.integers(min_value=1, max_value=10**9),
    st.sampled_from(MODES),
)
def test_exact_halves_behind_non_terminating_benchmarks(
    u: int, i: int, above: bool, split: int, mode: str
) -> None:
    """Three prices whose S = 1000 u / 3 never terminates (3 does not divide u) while one bid's
    D is t / 1000 % exactly, chosen so that its exact score ends in a half at the third place:
    above B with E_high 0.2, t = 25 m; below with E_low 0.1, t = -50 m (m = 6 i + 5, odd, and
    3 divides 100000 + t, so that the price terminates at two places)."""
    u = u * 3 + 1
    m = 6 * i + 5
    t = 25 * m if above else -50 * m
    p3 = Fraction(u * (100000 + t), 300)
    assert p3.denominator in (1, 2, 4, 5, 10, 20, 25, 50, 100)
    rest = 1000 * u - p3  # P1 + P2 = 3 S - P3
    p1 = Fraction(1 + split % int(rest * 100 - 1), 100)
    prices = [p1, rest - p1, p3]
    assert all(p > 0 for p in prices)
    entries = [bid(f"B{n}", scoring.exact_text(p)) for n, p in enumerate(prices)]
    rounding = Rounding(mode=RoundingMode(mode))
    result = scoring.price_scores(benchmark(trim=Trim.NONE), entries, D(0), rounding)
    assert result.benchmark == Fraction(1000 * u, 3) and result.benchmark.denominator == 3
    assert result.line("B2").deviation == Fraction(t, 1000)
    exact = 30 - abs(Fraction(t, 1000)) * (Fraction(2, 10) if above else Fraction(1, 10))
    if exact > 0:
        assert (exact * 100).denominator == 2, "an exact half at the third place"
    expected = reference_benchmark(
        prices, Fraction(0), Fraction(30), Fraction(2, 10), Fraction(1, 10), 0, mode
    )
    got = [result.line(f"B{n}").score for n in range(3)]
    assert [Fraction(g) for g in got if g is not None] == expected


@settings(max_examples=150, deadline=None)
@given(
    st.integers(min_value=1, max_value=5999),
    st.integers(min_value=1, max_value=10**6),
    st.sampled_from(MODES),
)
def test_exact_halves_behind_non_terminating_low_price_ratios(h: int, c: int, mode: str) -> None:
    """B / P = h / 6000 (non-terminating unless 3 divides h), x 0.30 x 100 = h / 200: an exact
    half at the third place for every odd h."""
    h = h | 1
    lowest, price = Fraction(h * c, 100), Fraction(6000 * c, 100)
    entries = bids(scoring.exact_text(lowest), scoring.exact_text(price))
    result = scoring.price_scores(
        LowPrice(weight=D("0.30")), entries, None, Rounding(mode=RoundingMode(mode))
    )
    score = result.line("B2").score
    assert score is not None
    assert Fraction(score) == reference_round(Fraction(h, 200), 2, mode)


# invalid bids are listed, never block (issue 15 §4) ------------------------------------------


def test_unpriced_zero_failed_and_over_ceiling_bids_are_listed_without_blocking() -> None:
    params = Params(
        price=benchmark(ceiling=D(120), trim=Trim.NONE), items=(Item(id="tech", max=D(40)),)
    )
    entries = [
        *bids("95", "105"),
        Bid(bidder="null", price=None, received_at=T0),  # its form could not be read
        bid("zero", "0.00"),
        bid("failed", "0", passed=False),
        bid("over", "130"),
    ]
    # sheets of the bids that are not ranked: one out of range, one abnormal, one missing item
    fine = [("e1", "B1"), ("e2", "B1"), ("e1", "B2"), ("e2", "B2")]
    sheets = [
        *(Sheet(expert=e, bidder=b, scores={"tech": D(30)}) for e, b in fine),
        Sheet(expert="e1", bidder="over", scores={"tech": D(99)}),
        Sheet(expert="e2", bidder="over", scores={"tech": D(1)}),
        Sheet(expert="e1", bidder="zero", scores={}),
    ]
    result = scoring.evaluate(params, entries, sheets, D(0))
    statuses = {line.bidder: line.status for line in result.price.lines}
    assert statuses == {
        "B1": "valid",
        "B2": "valid",
        "null": "unpriced",
        "zero": "unpriced",
        "failed": "failed_review",
        "over": "over_ceiling",
    }
    assert result.flags == ()
    assert [t.bidder for t in result.totals] == ["B1", "B2"]
    assert result.ranking.recommended == ("B1", "B2")
    data = {
        "params": params.model_dump(mode="json"),
        "k": "0",
        "bids": [
            {
                "bidder": b.bidder,
                "price": None if b.price is None else str(b.price),
                "passed": b.passed,
                "received_at": T0.isoformat(),
            }
            for b in entries
        ],
    }
    data["params"]["items"] = []
    lines = {x["bidder"]: x for x in scoring.recompute(data)["price"]["lines"]}
    assert lines["null"] == {
        "bidder": "null",
        "price": None,
        "status": "unpriced",
        "evaluated": None,
        "deviation": None,
        "score": None,
    }


@pytest.mark.parametrize("method", [LowPrice(weight=D("0.3")), LowestEvaluated()])
def test_a_zero_or_missing_price_is_unpriced_for_every_method(method: scoring.PriceMethod) -> None:
    entries = [*bids("100"), bid("zero", "0.00"), Bid(bidder="null", price=None, received_at=T0)]
    result = scoring.price_scores(method, entries, None, ROUND)
    assert [line.status for line in result.lines] == ["valid", "unpriced", "unpriced"]


def test_only_unpriced_bids_leave_no_valid_price() -> None:
    with refused("no_valid_price"):
        scoring.price_scores(LowPrice(weight=D("0.3")), [bid("zero", "0")], None, ROUND)


def test_status_names_the_first_reason() -> None:
    assert scoring.status(False, None, D(1)) == "failed_review"
    assert scoring.status(True, D("-1"), None) == "unpriced"
    assert scoring.status(True, D(2), D(1)) == "over_ceiling"
    assert scoring.status(True, D(1), D(1)) == "valid"


@pytest.mark.parametrize(
    "full", ["1E+999999", "1" + "0" * 30, "0." + "0" * 40 + "1", "1." + "0" * 40 + "1"]
)
def test_numbers_of_absurd_size_are_refused_not_computed(full: str) -> None:
    with refused("number_invalid"):
        scoring.params_from_json(
            {"price": {"method": "benchmark", "full": full, "e_high": "0.2", "e_low": "0.1"}}
        )


def test_numbers_within_the_bounds_compute_exactly() -> None:
    """The largest amount and the smallest, K at its bounds, C of 30 digits: exact, no error."""
    method = benchmark(full=D("9" * 30))
    for k in ("0.2", "0.000001"):
        result = scoring.price_scores(method, bids("9" * 15 + ".99", "0.01"), D(k), ROUND)
        assert result.benchmark is not None and result.benchmark > 0
        assert all(line.score is not None for line in result.lines)


@pytest.mark.parametrize("k", ["0." + "9" * 38, "0.21", "0.0000001", "-0.01", "1"])
def test_k_outside_what_a_published_range_can_draw_is_refused(k: str) -> None:
    with refused("k_invalid"):
        scoring.price_scores(benchmark(), bids("100"), D(k), ROUND)
