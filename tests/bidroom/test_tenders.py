"""The tender spec, pure: what staff may publish, each refusal with the code that names the rule,
and what publication derives (lot ids, the opening key split, the opening room's config)."""

from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from bidroom import tenders
from bidroom.errors import TenderError
from ca import pki, shares
from ca import primitives as p

NOW = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
CAP = 512 * 1024 * 1024


@pytest.fixture(scope="module")
def people() -> list[tuple[p.PrivateKey, Any]]:
    root = pki.create_root("根CA", NOW - timedelta(days=30))
    return [
        pki.issue_with_key(root, pki.Identity(name, name), NOW - timedelta(days=1))
        for name in ("代理机构", "监督人", "公证处")
    ]


def pem(cert: Any) -> str:
    return p.certificate_pem(cert).decode()


@pytest.fixture
def body(people: list[tuple[p.PrivateKey, Any]]) -> dict[str, Any]:
    return {
        "number": "ZJ-ZS-2026-0417",
        "title": "六横岛环卫一体化服务项目",
        "lots": [
            {
                "number": "1",
                "title": "第1标段",
                "ceiling_price": "3800000.00",
                "deadline": "2026-12-20T09:30:00+08:00",
                "sheet_fields": ["duration_days", "quality", "guarantee"],
                "guarantee": {"required": True, "amount": "50000.00"},
                "window_minutes": 30,
                "method": "benchmark",
                "k_range": ["0.00", "0.05", "0.01"],
                "remedy": "quorum",
                "custodians": [pem(cert) for _, cert in people],
                "k": 2,
                "record": {"confirm_minutes": 30, "silence": "consent"},
                "max_bid_bytes": 209715200,
            }
        ],
    }


def refusal(body: dict[str, Any], cap: int = CAP) -> str:
    with pytest.raises(TenderError) as caught:
        tenders.parse_tender(body, cap)
    return caught.value.code


def test_a_good_tender_is_read_with_money_exact_and_the_deadline_in_utc(
    body: dict[str, Any],
) -> None:
    spec = tenders.parse_tender(body, CAP)
    [lot] = spec.lots
    assert lot.ceiling_price == Decimal("3800000.00")
    assert lot.deadline == datetime(2026, 12, 20, 1, 30, tzinfo=UTC)
    assert lot.sheet_fields == ["price", "duration_days", "quality", "guarantee"]
    frozen = spec.frozen()["lots"][0]
    assert frozen["ceiling_price"] == "3800000.00"
    assert frozen["guarantee"] == {"required": True, "amount": "50000.00"}
    assert frozen["deadline"] == "2026-12-20T01:30:00Z"
    assert tenders.parse_tender(spec.frozen(), CAP) == spec, "the frozen spec reads back"


def test_the_same_spec_as_json_bytes_reads_the_same(body: dict[str, Any]) -> None:
    import json

    assert tenders.parse_tender(json.dumps(body).encode(), CAP) == tenders.parse_tender(body, CAP)


def _with(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    changed["lots"][0].update(changes)
    return changed


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"ceiling_price": "12.345"}, "money_invalid"),
        ({"ceiling_price": "-1.00"}, "money_invalid"),
        ({"ceiling_price": "0"}, "money_invalid"),
        ({"ceiling_price": "NaN"}, "money_invalid"),
        ({"ceiling_price": 1.5}, "money_invalid"),
        ({"guarantee": {"required": True, "amount": "1.001"}}, "money_invalid"),
        ({"guarantee": {"required": True}}, "guarantee_amount"),
        ({"deadline": "2026-12-20T09:30:00"}, "deadline_naive"),
        ({"window_minutes": 4}, "window_out_of_range"),
        ({"window_minutes": 241}, "window_out_of_range"),
        ({"method": "lottery"}, "method_unknown"),
        ({"k_range": None}, "k_range_required"),
        ({"method": "low_price"}, "k_range_unexpected"),
        ({"k_range": ["0.05", "0.00", "0.01"]}, "k_range_invalid"),
        ({"k_range": ["0.00", "0.05"]}, "k_range_invalid"),
        ({"k_range": ["0.00", "0.05", "x"]}, "k_range_invalid"),
        ({"remedy": "retry"}, "remedy_unknown"),
        ({"k": 1}, "k_out_of_range"),
        ({"k": 4}, "k_out_of_range"),
        ({"sheet_fields": ["price", "colour"]}, "sheet_field_unknown"),
        ({"record": {"confirm_minutes": 0, "silence": "consent"}}, "confirm_minutes_out_of_range"),
        (
            {"record": {"confirm_minutes": 1441, "silence": "consent"}},
            "confirm_minutes_out_of_range",
        ),
        ({"record": {"confirm_minutes": 30, "silence": "maybe"}}, "silence_unknown"),
        ({"max_bid_bytes": CAP + 1}, "bid_size_over_limit"),
        (
            {"custodians": ["-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"] * 2},
            "custodian_unreadable",
        ),
        ({"colour": "red"}, "invalid_tender"),
        ({"number": "1/2"}, "invalid_tender"),
    ],
)
def test_each_rule_refuses_with_its_code(
    body: dict[str, Any], changes: dict[str, Any], code: str
) -> None:
    assert refusal(_with(body, **changes)) == code


def test_custodians_at_least_two_and_distinct(body: dict[str, Any]) -> None:
    custodians = body["lots"][0]["custodians"]
    assert refusal(_with(body, custodians=custodians[:1], k=2)) == "custodians_too_few"
    assert refusal(_with(body, custodians=[custodians[0]] * 2, k=2)) == "custodian_duplicate"


def test_two_lots_with_one_number_and_a_tender_without_lots(body: dict[str, Any]) -> None:
    twice = copy.deepcopy(body)
    twice["lots"].append(copy.deepcopy(body["lots"][0]))
    assert refusal(twice) == "lot_number_duplicate"
    assert refusal({**body, "lots": []}) == "invalid_tender"
    assert refusal({"title": "无编号"}) == "invalid_tender"


def test_the_platform_limit_on_bid_size_is_the_callers(body: dict[str, Any]) -> None:
    assert refusal(body, cap=1024) == "bid_size_over_limit"


def test_publication_needs_the_minimum_bidding_period(body: dict[str, Any]) -> None:
    spec = tenders.parse_tender(body, CAP)
    deadline = spec.lots[0].deadline
    tenders.check_publishable(spec, deadline - timedelta(days=20), 20)
    with pytest.raises(TenderError) as caught:
        tenders.check_publishable(spec, deadline - timedelta(days=20, seconds=-1), 20)
    assert caught.value.code == "deadline_too_soon"
    assert caught.value.detail["lot"] == "1"


def test_the_split_opening_key_opens_with_k_custodian_keys_and_the_room_config_says_it(
    body: dict[str, Any], people: list[tuple[p.PrivateKey, Any]]
) -> None:
    spec = tenders.parse_tender(body, CAP)
    lot_id = tenders.lot_id("t1", "1")
    custodians = [
        tenders.Custodian(f"cert:{i}", f"保管人{i}", cert) for i, (_, cert) in enumerate(people)
    ]
    split = tenders.split_key(lot_id, 2, custodians)
    opened = [
        shares.import_share(file, key)
        for (_, _, file), (key, _) in zip(split.files, people, strict=True)
    ]
    commitments = [shares.Commitment.from_dict(c) for c in split.commitments]
    public = p.load_public_der(split.opening_key)
    assert isinstance(public, p.EcPublicKey)
    key = shares.combine(opened[1:], commitments, public)
    assert shares.key_fingerprint(key.public_key()).hex() == split.fingerprint
    config = tenders.opening_config(spec, lot_id, spec.lots[0], split)
    assert config["lot"] == lot_id and config["tender"] == "ZJ-ZS-2026-0417"
    assert config["starts_at"] == "2026-12-20T01:30:00+00:00"
    assert base64.b64decode(config["opening_key"]) == split.opening_key
    assert config["commitments"] == split.commitments
    assert config["custodians"] == [
        {"subject": f"cert:{i}", "name": f"保管人{i}", "index": i + 1} for i in range(3)
    ]
    assert config["k_range"] == ["0.00", "0.05", "0.01"] and config["window_minutes"] == 30
    assert "BEGIN CERTIFICATE" not in str(config)
    assert tenders.room_id(lot_id) == "opening-t1-1"
