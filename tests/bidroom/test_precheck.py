"""The automated pre-check (清标), pure: each finding fires at its threshold and not below it,
names exactly the bids concerned, and the output does not depend on the order of the bids."""

from __future__ import annotations

import decimal
import json
import random
from decimal import Decimal
from typing import Any

import pytest

from bidroom import precheck
from bidroom.errors import PrecheckError

QUANTITIES = {"A01": "10", "A02": "20", "A03": "5", "A04": "8"}
BASE = {"A01": Decimal("1200.00"), "A02": Decimal("850.00"), "A03": Decimal("4300.00")}
BASE["A04"] = Decimal("2100.00")
PROVISIONAL = Decimal("50000.00")  # P01: 暂列金额, the same in every bid by rule
NAMES = {"b1": "甲建设", "b2": "乙工程", "b3": "丙市政", "b4": "丁环境", "b5": "戊科技"}


def lot(**thresholds: Any) -> precheck.Lot:
    return precheck.parse_lot(
        {
            "lot": "t1-1",
            "ceiling_price": "1100000.00",
            "required_items": [
                *({"code": code} for code in (*QUANTITIES, "A05")),
                {"code": "P01", "fixed_price": True},
            ],
            "thresholds": thresholds,
        }
    )


def lines(index: int, price: Decimal, copied: dict[str, int] | None = None) -> list[dict[str, str]]:
    """The price list of bidder ``index`` totalling ``price``: A05 (quantity 1) takes the rest;
    ``copied`` gives some codes the unit price of another bidder's index."""
    rows = [
        {
            "code": code,
            "quantity": qty,
            "unit_price": str(BASE[code] + (copied or {}).get(code, index)),
        }
        for code, qty in QUANTITIES.items()
    ]
    rows.append({"code": "P01", "quantity": "1", "unit_price": str(PROVISIONAL)})
    for row in rows:
        row["line_total"] = str(Decimal(row["quantity"]) * Decimal(row["unit_price"]))
    rest = price - sum(Decimal(row["line_total"]) for row in rows)
    rows.append({"code": "A05", "quantity": "1", "unit_price": str(rest), "line_total": str(rest)})
    return rows


def bid_data(bidder: str, price: str, **changes: Any) -> dict[str, Any]:
    index = int(bidder[1:])
    data: dict[str, Any] = {
        "bidder": bidder,
        "name": NAMES.get(bidder, bidder),
        "price": price,
        "stated_total": price,
        "lines": lines(index, Decimal(price)),
        "sheet": {"price": price, "duration_days": 365, "quality": "合格"},
        "guarantee": {
            "issuer": "舟山银行",
            "number": f"BH-2026-{index:04d}",
            "amount": "50000.00",
            "payer": NAMES.get(bidder, bidder),
        },
        "client": {"tool": "bidroom seal 1.0", "device": f"dev-{index:04d}"},
        "certificate": f"{index:02x}" * 32,
        "public_key": f"{index + 100:02x}" * 32,
        "addresses": [f"198.51.{index}.10"],
        "project_manager": {"name": f"项目经理{index}", "id_number": f"33090219800101{index:04d}"},
    }
    data.update(changes)
    return data


def bid(bidder: str, price: str, **changes: Any) -> precheck.Bid:
    return precheck.parse_bid(bid_data(bidder, price, **changes))


CLEAN = {"b1": "812345.00", "b2": "861000.00", "b3": "874500.50", "b4": "938800.00"}
CLEAN["b5"] = "1049999.99"


def clean(**changes: dict[str, Any]) -> list[precheck.Bid]:
    return [bid(b, price, **changes.get(b, {})) for b, price in CLEAN.items()]


def kinds(result: precheck.Result) -> list[tuple[str, tuple[str, ...]]]:
    return [(finding.kind, finding.bids) for finding in result.findings]


def only(result: precheck.Result, kind: str) -> list[precheck.Finding]:
    return [finding for finding in result.findings if finding.kind == kind]


# the whole ---------------------------------------------------------------------------------


def test_a_clean_set_of_five_bids_gives_no_finding() -> None:
    result = precheck.precheck(lot(), clean())
    assert result.findings == ()
    summary = result.to_json()["summary"]
    assert summary["severities"] == {"signal": 0, "info": 0}
    assert list(summary["kinds"]) == list(precheck.KINDS)
    assert set(summary["kinds"].values()) == {0}


def test_two_bids_sharing_device_and_payer_give_exactly_those_findings() -> None:
    shared = {
        "b2": {"client": {"tool": "x", "device": "MAC-00:1A:2B"}},
        "b4": {"client": {"tool": "y", "device": " mac-00:1a:2b "}},
    }
    bids = clean(**shared)
    payer = {**bid_data("b4", CLEAN["b4"])["guarantee"], "payer": "乙工程"}
    bids[3] = bid("b4", CLEAN["b4"], client=shared["b4"]["client"], guarantee=payer)
    result = precheck.precheck(lot(), bids)
    assert kinds(result) == [("same_device", ("b2", "b4")), ("same_guarantee_payer", ("b2", "b4"))]
    device, paid = result.findings
    assert device.evidence == {"device": "mac-00:1a:2b"}
    assert device.severity == paid.severity == "signal"
    assert paid.evidence == {"payer": "乙工程"}
    summary = result.summary()
    assert summary["kinds"]["same_device"] == summary["kinds"]["same_guarantee_payer"] == 1
    assert summary["severities"] == {"signal": 2, "info": 0}


def test_the_output_is_json_and_never_a_verdict() -> None:
    bids = [bid("b1", "1200000.00"), *clean()[1:]]
    bids[1] = bid("b2", CLEAN["b2"], addresses=["198.51.1.10"])
    out = precheck.precheck(lot(), bids).to_json()
    text = json.dumps(out, ensure_ascii=False)
    assert json.loads(text) == out
    assert "reject" not in text.lower()
    assert out["bids"][0] == {"bidder": "b1", "name": "甲建设"}
    assert out["thresholds"]["spread"] == "0.005"
    assert [f["kind"] for f in out["findings"]] == ["over_ceiling", "same_address"]
    assert out["findings"][1] == {
        "kind": "same_address",
        "category": "collusion",
        "severity": "signal",
        "bids": ["b1", "b2"],
        "evidence": {"address": "198.51.1.10", "private": False},
    }


def test_permuting_the_bids_gives_the_same_output() -> None:
    many: dict[str, dict[str, Any]] = {
        "b1": {"addresses": ["203.0.113.7"], "client": {"device": "d"}},
        "b2": {"addresses": ["203.0.113.7", "203.0.113.9"], "client": {"device": "d"}},
        "b3": {"addresses": ["203.0.113.9"], "certificate": "ab" * 32},
        "b4": {"certificate": "AB:" * 31 + "AB", "project_manager": {"name": "王五"}},
        "b5": {"sheet": {"project_manager": "王 五"}, "project_manager": None},
    }
    bids = clean(**many)
    bids += [bid("b6", "700000.00"), bid("b7", "720000.00"), bid("b8", "740000.00")]
    expected = precheck.precheck(lot(), bids).to_json()
    assert len(expected["findings"]) >= 6
    rng = random.Random(6)
    for _ in range(5):
        rng.shuffle(bids)
        assert precheck.precheck(lot(), bids).to_json() == expected


def test_the_callers_decimal_context_does_not_leak_in() -> None:
    bids = [bid("b1", "997000.00"), bid("b2", "1001000.00"), bid("b3", "1002000.00")]
    expected = precheck.precheck(lot(), bids).to_json()
    with decimal.localcontext(decimal.Context(prec=3, rounding=decimal.ROUND_DOWN)):
        assert precheck.precheck(lot(), bids).to_json() == expected


# arithmetic (算术性校核) ----------------------------------------------------------------------


def with_line(
    quantity: str, unit_price: str, line_total: str, *, fix_totals: bool = True
) -> precheck.Bid:
    """Bid b1 with an extra line X01; the totals follow the stated line total if asked."""
    data = bid_data("b1", "812345.00")
    data["lines"].append(
        {"code": "X01", "quantity": quantity, "unit_price": unit_price, "line_total": line_total}
    )
    if fix_totals:
        total = str(sum(Decimal(row["line_total"]) for row in data["lines"]))
        data.update(price=total, stated_total=total, sheet={"price": total})
    return precheck.parse_bid(data)


@pytest.mark.parametrize(
    ("quantity", "unit_price", "stated", "computed"),
    [
        ("3", "0.335", "1.00", "1.01"),  # 1.005: half up, not to even
        ("2.5", "0.01", "0.02", "0.03"),  # 0.025
        ("1.333", "3", "3.99", "4.00"),  # 3.999
        ("0.0001", "49.99", "0.01", "0.00"),  # 0.004999
    ],
)
def test_line_totals_are_rounded_to_the_cent_half_up(
    quantity: str, unit_price: str, stated: str, computed: str
) -> None:
    right = with_line(quantity, unit_price, computed)
    assert precheck.line_total(right.lines[-1]) == Decimal(computed)
    assert kinds(precheck.precheck(lot(), [right])) == [("extra_items", ("b1",))]
    result = precheck.precheck(lot(), [with_line(quantity, unit_price, stated)])
    (finding,) = only(result, "line_arithmetic")
    assert finding.bids == ("b1",)
    assert finding.evidence["lines"] == [
        {
            "code": "X01",
            "quantity": quantity,
            "unit_price": unit_price,
            "computed": computed,
            "stated": stated,
            "difference": str(Decimal(stated) - Decimal(computed)),
        }
    ]


def test_sum_of_lines_against_the_stated_total_and_the_sheet_price() -> None:
    assert precheck.precheck(lot(), [bid("b1", "812345.00")]).findings == ()
    short = bid("b1", "812345.00", stated_total="812344.99", sheet={})
    result = precheck.precheck(lot(), [short])
    assert kinds(result) == [("total_arithmetic", ("b1",)), ("sheet_price_mismatch", ("b1",))]
    total, sheet = result.findings
    assert total.evidence == {
        "sum_of_lines": "812345.00",
        "stated_total": "812344.99",
        "difference": "-0.01",
        "sum_of_computed_lines": "812345.00",
    }
    assert sheet.evidence == {
        "stated_total": "812344.99",
        "price": "812345.00",
        "difference": "-0.01",
    }


def test_a_bid_without_price_list_or_total_is_not_checked_for_arithmetic() -> None:
    bare = bid("b1", "812345.00", lines=[], stated_total=None)
    assert precheck.precheck(precheck.parse_lot({"lot": "x"}), [bare]).findings == ()


# the price list ----------------------------------------------------------------------------


def test_over_the_ceiling_only_above_it() -> None:
    at = bid("b1", "1100000.00")
    above = bid("b2", "1100000.01")
    result = precheck.precheck(lot(), [at, above])
    assert kinds(result) == [("over_ceiling", ("b2",))]
    assert result.findings[0].evidence == {
        "price": "1100000.01",
        "ceiling_price": "1100000.00",
        "excess": "0.01",
    }
    assert precheck.precheck(precheck.parse_lot({"lot": "x"}), [above]).findings == ()


def test_missing_extra_duplicate_and_nonpositive_items() -> None:
    data = bid_data("b1", "812345.00")
    rows = [row for row in data["lines"] if row["code"] != "A03"]
    rows[0] = {**rows[0], "unit_price": "0", "line_total": "0.00"}
    rows += [
        {"code": "A02", "quantity": "1", "unit_price": "-5.00", "line_total": "-5.00"},
        {"code": "Z9", "quantity": "1", "unit_price": "5.00", "line_total": "5.00"},
    ]
    total = str(sum(Decimal(row["line_total"]) for row in rows))
    data.update(lines=rows, price=total, stated_total=total, sheet={})
    result = precheck.precheck(lot(), [precheck.parse_bid(data)])
    assert [f.kind for f in result.findings] == [
        "missing_items",
        "nonpositive_unit_price",
        "duplicate_items",
        "extra_items",
    ]
    missing, nonpositive, duplicate, extra = (f.evidence for f in result.findings)
    assert missing == {"codes": ["A03"]}
    assert nonpositive == {
        "lines": [{"code": "A01", "unit_price": "0"}, {"code": "A02", "unit_price": "-5.00"}]
    }
    assert duplicate == {"codes": ["A02"]}
    assert extra == {"codes": ["Z9"]}
    assert result.findings[-1].severity == "info"
    assert result.summary()["severities"] == {"signal": 3, "info": 1}


def test_items_are_not_judged_where_the_lot_lists_none() -> None:
    result = precheck.precheck(precheck.parse_lot({"lot": "x"}), [with_line("1", "5", "5.00")])
    assert result.findings == ()


# collusion indicators (防围遏串) --------------------------------------------------------------


def test_same_address_and_the_weaker_same_subnet() -> None:
    bids = clean(
        b1={"addresses": ["203.0.113.7"]},
        b2={"addresses": ["::ffff:203.0.113.7"]},
        b3={"addresses": ["203.0.113.9", "10.0.0.1"]},
    )
    result = precheck.precheck(lot(), bids)
    assert kinds(result) == [("same_address", ("b1", "b2")), ("same_subnet", ("b1", "b2", "b3"))]
    subnet = result.findings[1]
    assert subnet.severity == "info"
    assert subnet.evidence == {
        "subnet": "203.0.113.0/24",
        "addresses": {"b1": ["203.0.113.7"], "b2": ["203.0.113.7"], "b3": ["203.0.113.9"]},
    }


def test_a_subnet_shared_only_through_one_address_says_nothing_more() -> None:
    bids = clean(b1={"addresses": ["203.0.113.7"]}, b2={"addresses": ["203.0.113.7"]})
    assert kinds(precheck.precheck(lot(), bids)) == [("same_address", ("b1", "b2"))]
    neighbours = clean(b1={"addresses": ["2001:db8::1"]}, b5={"addresses": ["2001:db8::ff"]})
    assert kinds(precheck.precheck(lot(), neighbours)) == [("same_subnet", ("b1", "b5"))]
    apart = clean(b1={"addresses": ["203.0.113.7"]}, b2={"addresses": ["203.0.114.7"]})
    assert precheck.precheck(lot(), apart).findings == ()


def test_same_certificate_and_same_key_under_different_certificates() -> None:
    key = "cd" * 32
    bids = clean(
        b1={"certificate": "AB:" * 31 + "AB", "public_key": key},
        b2={"certificate": "ab" * 32, "public_key": key},
        b3={"public_key": "EF" * 32},
        b4={"public_key": "ef" * 32},
    )
    result = precheck.precheck(lot(), bids)
    assert kinds(result) == [("same_certificate", ("b1", "b2")), ("same_public_key", ("b3", "b4"))]
    assert result.findings[1].evidence == {"public_key": "ef" * 32}


def test_same_guarantee_number_counts_with_its_issuer() -> None:
    def guarantee(issuer: str, number: str, payer: str) -> dict[str, Any]:
        return {"guarantee": {"issuer": issuer, "number": number, "payer": payer}}

    bids = clean(
        b1=guarantee("舟山银行", "BH-1", "甲建设"),
        b2=guarantee("舟山银行", "bh-1", "乙工程"),
        b3=guarantee("人保财险", "BH-1", "丙市政"),
    )
    result = precheck.precheck(lot(), bids)
    assert kinds(result) == [("same_guarantee_number", ("b1", "b2"))]
    assert result.findings[0].evidence == {"issuer": "舟山银行", "number": "bh-1"}


def test_same_project_manager_by_id_number_and_by_name() -> None:
    same_id = {"name": "张三", "id_number": "33090219800101001x"}
    bids = clean(
        b1={"project_manager": same_id},
        b2={"project_manager": {**same_id, "id_number": "33090219800101001X"}},
        b3={"project_manager": {"name": "李 四"}},
        b4={"project_manager": None, "sheet": {"project_manager": "李四"}},
        b5={"project_manager": {"name": "张三", "id_number": "330902198001019999"}},
    )
    result = precheck.precheck(lot(), bids)
    assert kinds(result) == [
        ("same_project_manager", ("b1", "b2")),
        ("same_project_manager_name", ("b3", "b4")),
    ]
    assert result.findings[0].evidence == {"id_number": "3309**********001X"}
    assert result.findings[1].evidence == {"name": "李四"}
    assert result.findings[1].severity == "info"


def test_a_shared_name_without_id_next_to_a_known_id_is_shown() -> None:
    bids = clean(
        b1={"project_manager": {"name": "张三", "id_number": "330902198001010011"}},
        b2={"project_manager": {"name": "张三"}},
    )
    assert kinds(precheck.precheck(lot(), bids)) == [("same_project_manager_name", ("b1", "b2"))]


def test_same_price() -> None:
    bids = clean(b3={})
    bids[2] = bid("b3", CLEAN["b2"])
    result = precheck.precheck(lot(), bids)
    assert kinds(result) == [("same_price", ("b2", "b3"))]
    assert result.findings[0].evidence == {"price": "861000.00"}


def unit_prices(bidder: str, price: str, same_as: str, codes: list[str]) -> precheck.Bid:
    """Bid ``bidder`` whose unit prices on ``codes`` are those of bidder ``same_as``."""
    copied = dict.fromkeys(codes, int(same_as[1:]))
    return bid(bidder, price, lines=lines(int(bidder[1:]), Decimal(price), copied))


def test_identical_unit_prices_at_the_share_threshold() -> None:
    four = unit_prices("b2", CLEAN["b2"], "b1", ["A01", "A02", "A03", "A04"])
    result = precheck.precheck(lot(), [clean()[0], four, *clean()[2:]])
    assert kinds(result) == [("identical_unit_prices", ("b1", "b2"))]
    assert result.findings[0].evidence == {
        "compared": 5,
        "identical": 4,
        "share": "0.800000",
        "codes": ["A01", "A02", "A03", "A04"],
    }
    three = unit_prices("b2", CLEAN["b2"], "b1", ["A01", "A02", "A03"])
    assert precheck.precheck(lot(), [clean()[0], three]).findings == ()
    assert kinds(precheck.precheck(lot(identical_share="0.6"), [clean()[0], three])) == [
        ("identical_unit_prices", ("b1", "b2"))
    ]
    assert precheck.precheck(lot(identical_min_items=6), [clean()[0], four]).findings == ()


def test_the_tenders_fixed_items_are_not_compared() -> None:
    loose = lot(identical_share="0.1", identical_min_items=1)
    assert precheck.precheck(loose, clean()).findings == ()  # all share P01's price
    unfixed = precheck.parse_lot(
        {"lot": "x", "thresholds": {"identical_share": "0.1", "identical_min_items": 1}}
    )
    assert len(only(precheck.precheck(unfixed, clean()), "identical_unit_prices")) == 10


def prices(*values: str) -> list[precheck.Bid]:
    return [bid(f"b{index}", value) for index, value in enumerate(values, start=1)]


def test_a_ladder_of_four_bids_at_a_constant_step() -> None:
    bids = prices("900000.00", "720000.00", "700000.00", "760000.00", "740000.00")
    result = precheck.precheck(lot(), bids)
    assert kinds(result) == [("price_ladder", ("b2", "b3", "b4", "b5"))]
    assert result.findings[0].evidence == {
        "pattern": "difference",
        "prices": [
            {"bidder": "b3", "price": "700000.00"},
            {"bidder": "b2", "price": "720000.00"},
            {"bidder": "b5", "price": "740000.00"},
            {"bidder": "b4", "price": "760000.00"},
        ],
        "steps": ["20000.00", "20000.00", "20000.00"],
    }


def test_a_ladder_at_the_tolerance_and_just_beyond() -> None:
    at = precheck.precheck(lot(), prices("700000.00", "799500.00", "900000.00"))
    assert kinds(at) == [("price_ladder", ("b1", "b2", "b3"))]  # (100500 - 99500) / 100000
    beyond = precheck.precheck(lot(), prices("700000.00", "799490.00", "900000.00"))
    assert beyond.findings == ()
    wider = precheck.precheck(lot(ladder_tolerance="0.0102"), prices("700000", "799490", "900000"))
    assert kinds(wider) == [("price_ladder", ("b1", "b2", "b3"))]


def test_a_ladder_at_a_constant_ratio() -> None:
    result = precheck.precheck(lot(), prices("640000.00", "800000.00", "1000000.00"))
    assert kinds(result) == [("price_ladder", ("b1", "b2", "b3"))]
    assert result.findings[0].evidence["pattern"] == "ratio"
    assert result.findings[0].evidence["ratios"] == ["1.250000", "1.250000"]


def test_a_ladder_needs_the_minimum_number_of_bids() -> None:
    three = prices("700000.00", "720000.00", "740000.00")
    assert precheck.precheck(lot(pattern_min_bids=4), three).findings == ()
    assert precheck.precheck(lot(), three[:2]).findings == ()
    equal = prices("700000.00", "700000.00", "700000.01")
    kinds_found = [f.kind for f in precheck.precheck(lot(), equal).findings]
    assert kinds_found == ["same_price", "tight_spread"]  # a zero step is no ladder


def test_a_tight_spread_at_the_threshold_and_just_beyond() -> None:
    far = [bid("b4", "800000.00"), bid("b5", "900000.00")]
    at = prices("997000.00", "1001000.00", "1002000.00") + far
    result = precheck.precheck(lot(), at)
    assert kinds(result) == [("tight_spread", ("b1", "b2", "b3"))]  # 5000 / 1000000
    assert result.findings[0].evidence == {
        "prices": [
            {"bidder": "b1", "price": "997000.00"},
            {"bidder": "b2", "price": "1001000.00"},
            {"bidder": "b3", "price": "1002000.00"},
        ],
        "min": "997000.00",
        "max": "1002000.00",
        "mean": "1000000.00",
        "spread": "0.005000",
    }
    beyond = prices("997000.00", "1001000.00", "1002000.01") + far
    assert precheck.precheck(lot(), beyond).findings == ()
    assert precheck.precheck(lot(pattern_min_bids=4), at).findings == ()


# malformed input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"price": 812345.0}, "precheck_bad_money", "price"),
        ({"price": "812345.001"}, "precheck_bad_money", "price"),
        ({"stated_total": "1e5"}, "precheck_bad_money", "stated_total"),
        ({"price": "-1.00"}, "precheck_invalid", "price"),
        ({"addresses": ["198.51.100.300"]}, "precheck_bad_address", "addresses.0"),
        ({"certificate": "not hex"}, "precheck_bad_fingerprint", "certificate"),
        ({"sheet": {"price": "1.00"}}, "precheck_price_conflict", "bid"),
        ({"bidder": ""}, "precheck_invalid", "bidder"),
        ({"surprise": 1}, "precheck_invalid", "surprise"),
        ({"lines": [{"code": "A01", "quantity": "1"}]}, "precheck_invalid", "lines.0.unit_price"),
    ],
)
def test_malformed_bids_are_refused_with_a_code(
    change: dict[str, Any], code: str, field: str
) -> None:
    with pytest.raises(PrecheckError) as caught:
        precheck.parse_bid({**bid_data("b1", "812345.00", sheet={}), **change})
    assert caught.value.code == code
    assert caught.value.detail["field"] == field


@pytest.mark.parametrize(
    ("data", "code", "field"),
    [
        (
            {"lot": "x", "required_items": [{"code": "A"}, {"code": "A"}]},
            "precheck_duplicate_required",
            "lot",
        ),
        ({"lot": "x", "thresholds": {"spread": "1"}}, "precheck_invalid", "thresholds.spread"),
        (
            {"lot": "x", "thresholds": {"pattern_min_bids": 2}},
            "precheck_invalid",
            "thresholds.pattern_min_bids",
        ),
        ({"lot": "x", "ceiling_price": "0"}, "precheck_invalid", "ceiling_price"),
        ({}, "precheck_invalid", "lot"),
        ("not a lot", "precheck_invalid", "lot"),
    ],
)
def test_malformed_lots_are_refused_with_a_code(data: Any, code: str, field: str) -> None:
    with pytest.raises(PrecheckError) as caught:
        precheck.parse_lot(data)
    assert caught.value.code == code
    assert caught.value.detail["field"] == field


def test_no_bids_or_one_bidder_twice_is_refused() -> None:
    with pytest.raises(PrecheckError) as caught:
        precheck.precheck(lot(), [])
    assert caught.value.code == "precheck_no_bids"
    with pytest.raises(PrecheckError) as caught:
        precheck.precheck(lot(), [*clean(), bid("b3", "900000.00")])
    assert caught.value.code == "precheck_duplicate_bidder"
    assert caught.value.detail == {"bidder": "b3"}


def test_a_priced_bill_that_could_not_be_read_is_a_finding_not_a_failure() -> None:
    unread = bid("B2", "1000000.00", lines=(), stated_total=None, price_list_error="extra_field")
    result = precheck.precheck(lot(), [bid("B1", "1000000.00"), unread])
    [found] = [f for f in result.findings if f.kind == "price_list_unreadable"]
    assert (found.bids, found.evidence, found.severity) == (
        ("B2",),
        {"error": "extra_field"},
        "signal",
    )
