"""The tender spec, pure: what staff may publish, each refusal with the code that names the rule,
and what publication derives (lot ids, the opening key split, the opening room's config)."""

from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

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
        ({"ceiling_price": "1E+6"}, "money_invalid"),  # bidroom.money's one format
        ({"ceiling_price": " 100 "}, "money_invalid"),
        ({"ceiling_price": "3800000.00\n"}, "money_invalid"),
        ({"ceiling_price": "1" * 16}, "money_invalid"),
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
        ({"k_range": ["0.00", "0.05", "0.03"]}, "k_range_invalid"),  # 0.05 not reached
        ({"k_range": ["0.01", "0.06", "0.02"]}, "k_range_invalid"),
        ({"k_range": ["0", "0.0000010", "0.0000001"]}, "k_range_invalid"),  # 7 places
        ({"k_range": ["0", "1E+1", "1"]}, "k_range_invalid"),  # an exponent
        ({"k_range": ["0.95", "0.99", "0.01"]}, "k_range_invalid"),  # B = S x K, mistyped
        ({"k_range": ["0", "5", "1"]}, "k_range_invalid"),  # K = 3 could be drawn
        ({"k_range": ["0.00", "0.21", "0.01"]}, "k_range_invalid"),  # over K_MAX = 0.20
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
        {
            "subject": f"cert:{i}",
            "name": f"保管人{i}",
            "organisation": None,
            "uscc": None,
            "insider": False,
            "index": i + 1,
        }
        for i in range(3)
    ]
    assert config["k_range"] == ["0.00", "0.05", "0.01"] and config["window_minutes"] == 30
    assert "BEGIN CERTIFICATE" not in str(config)
    assert tenders.room_id(lot_id) == "opening-t1-1"


# the custody policy ----------------------------------------------------------------------------

CENTRE = "舟山市公共资源交易中心"
OPERATOR = "bidroom 平台运营方"
CHAIR = tenders.Publisher("cert:chair", "王敏", CENTRE)


def custodian(name: str, organisation: str | None, uscc: str | None = None) -> tenders.Custodian:
    cert = pki.issue_with_key(
        pki.create_root("根CA", NOW - timedelta(days=30)), pki.Identity(name), NOW
    )[1]
    return tenders.Custodian(f"cert:{name}", name, cert, organisation, uscc)


def custody_refusal(k: int, *custodians: tenders.Custodian) -> TenderError:
    with pytest.raises(TenderError) as caught:
        tenders.check_custody("1", k, custodians, CHAIR, [OPERATOR])
    return caught.value


def test_the_chair_and_a_colleague_cannot_hold_the_key_together() -> None:
    chair_as_custodian = tenders.Custodian("cert:chair", "王敏", custodian("x", None).certificate)
    refused = custody_refusal(2, chair_as_custodian, custodian("孙丽", CENTRE))
    assert refused.code == "custodian_is_chair" and refused.detail["custodian"]["name"] == "王敏"
    # the chair with another certificate: their name within their organisation
    refused = custody_refusal(2, custodian("吴刚", "舟山市公证处"), custodian("王敏", CENTRE))
    assert refused.code == "custodian_is_chair"
    # ... however that certificate spells the name: a space, an invisible character
    for spelled in ("王 敏", "王\u200b敏"):
        refused = custody_refusal(2, custodian("吴刚", "舟山市公证处"), custodian(spelled, CENTRE))
        assert refused.code == "custodian_is_chair", spelled


def test_custodians_come_from_different_organisations() -> None:
    refused = custody_refusal(
        2, custodian("吴刚", "舟山市公证处"), custodian("何平", "舟山市 公证处")
    )
    assert refused.code == "custodians_same_organisation"
    assert [c["name"] for c in refused.detail["custodians"]] == ["吴刚", "何平"]
    # full-width and ASCII brackets are one name; a USCC names its organisation whatever the O
    a, b = custodian("甲", "东港集团（舟山）"), custodian("乙", "东港集团(舟山)")
    assert custody_refusal(2, a, b).code == "custodians_same_organisation"
    # an invisible character does not make a second organisation of one
    a, b = custodian("甲", "东港集团"), custodian("乙", "东港\u200b集团")
    assert custody_refusal(2, a, b).code == "custodians_same_organisation"
    a, b = (
        custodian("甲", "东港集团", "91330901MA28Q3L50X"),
        custodian("乙", "东港", "91330901MA28Q3L50X"),
    )
    assert custody_refusal(2, a, b).code == "custodians_same_organisation"
    refused = custody_refusal(2, custodian("吴刚", "舟山市公证处"), custodian("无名", None))
    assert refused.code == "custodian_organisation_missing"


def test_fewer_than_k_custodians_are_insiders() -> None:
    centre, operator = custodian("孙丽", CENTRE), custodian("郑洁", OPERATOR)
    notary = custodian("吴刚", "舟山市公证处")
    refused = custody_refusal(2, centre, operator, notary)
    assert refused.code == "custodian_not_independent"
    assert [c["name"] for c in refused.detail["insiders"]] == ["孙丽", "郑洁"]
    assert refused.detail["k"] == 2
    # the same three with k = 3: any quorum includes the notary
    marked = tenders.check_custody("1", 3, [centre, operator, notary], CHAIR, [OPERATOR])
    assert [c.insider for c in marked] == [True, True, False]
    # an insider named by USCC; the chair's organisation is an insider without being configured
    by_code = custodian("郑洁", "某运营公司", "91330900MA2B000011")
    with pytest.raises(TenderError) as caught:
        tenders.check_custody("1", 2, [centre, by_code, notary], CHAIR, ["uscc:91330900ma2b000011"])
    assert caught.value.code == "custodian_not_independent"
    marked = tenders.check_custody(
        "1", 2, [centre, notary, custodian("钱明", "舟山市发展和改革委员会")], CHAIR, []
    )
    assert [c.insider for c in marked] == [True, False, False]


def test_a_bidder_of_a_custodians_organisation_is_found() -> None:
    listed = [
        {
            "subject": "cert:a",
            "name": "陈静",
            "organisation": "东港城市服务集团有限公司",
            "uscc": None,
        },
        {"subject": "cert:b", "name": "吴刚", "organisation": "舟山市公证处", "uscc": None},
    ]
    found = tenders.custodian_of(listed, "uscc:91330901MA28Q3L50X", "东港城市服务集团有限公司")
    assert found is not None and found["name"] == "陈静"
    assert tenders.custodian_of(listed, "cert:b", None) is listed[1]
    assert (
        tenders.custodian_of(listed, "uscc:91330903MA2B7H1X6Q", "六横海洁环境服务有限公司") is None
    )
    # a lot published before the policy lists custodians without their organisation
    assert tenders.custodian_of([{"subject": "cert:a", "name": "陈静"}], "cert:x", "东港") is None


# the evaluation section ----------------------------------------------------------------------


def evaluation_section() -> dict[str, Any]:
    return {
        "params": {
            "price": {"method": "benchmark", "full": "50", "e_high": "1", "e_low": "0.5"},
            "items": [
                {"id": "服务方案", "max": "20"},
                {"id": "人员配备", "max": "10"},
                {"id": "设备", "max": "10"},
                {"id": "类似业绩", "max": "10", "kind": "objective", "part": "commercial"},
            ],
            "candidates": 3,
        },
        "criteria": [{"id": "资格", "text": "资格符合要求"}, {"id": "签章", "text": "签章齐全"}],
        "review_rule": "majority",
        "anonymous_technical": True,
        "venues": [
            {"venue": "主会场", "seats": 3},
            {"venue": "分会场1", "seats": 1},
            {"venue": "分会场2", "seats": 1},
        ],
    }


def _evaluated(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    section = evaluation_section()
    section.update(changes)
    return _with(body, evaluation=section)


def test_a_complete_evaluation_section_is_read_normalised_and_frozen(
    body: dict[str, Any],
) -> None:
    assert tenders.parse_tender(body, CAP).lots[0].evaluation is None, "optional for now"
    spec = tenders.parse_tender(_evaluated(body), CAP)
    evaluation = spec.lots[0].evaluation
    assert evaluation is not None
    assert evaluation.signing_minutes == 60 and evaluation.review_rule == "majority"
    assert [v.seats for v in evaluation.venues] == [3, 1, 1]
    params = evaluation.scoring_params()
    assert params.price.method == "benchmark" and len(params.items) == 4
    frozen = spec.frozen()["lots"][0]["evaluation"]
    assert frozen["params"]["threshold"] == "0.30", "scoring's defaults are frozen with the lot"
    assert frozen["params"]["tie_breakers"] == [
        "lower_price",
        "higher_technical",
        "earlier_receipt",
    ]
    assert tenders.parse_tender(spec.frozen(), CAP) == spec, "the frozen spec reads back"
    with pytest.raises(ValidationError):  # frozen
        evaluation.review_rule = "unanimity"


def _price(**price: Any) -> dict[str, Any]:
    params = evaluation_section()["params"]
    return {**params, "price": {**params["price"], **price}}


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"params": {"items": []}}, "evaluation_params_invalid"),
        ({"params": "benchmark"}, "evaluation_params_invalid"),
        ({"params": _price(full="0")}, "coefficient_invalid"),
        ({"params": _price(full=50.0)}, "number_invalid"),
        ({"params": {**_price(), "threshold": "1.5"}}, "threshold_invalid"),
        ({"params": {**_price(), "items": [{"id": "a", "max": "1"}] * 2}}, "item_duplicate"),
        ({"params": _price(ceiling="3000000.00")}, "evaluation_ceiling_mismatch"),
        ({"criteria": []}, "criteria_empty"),
        ({"criteria": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]}, "criteria_duplicate"),
        ({"review_rule": "plurality"}, "review_rule_unknown"),
        ({"venues": [{"venue": "主", "seats": 5}, {"venue": "副", "seats": 0}]}, "venue_seats"),
        ({"venues": [{"venue": "主", "seats": 3}, {"venue": "主", "seats": 2}]}, "venue_duplicate"),
        ({"venues": [{"venue": "主", "seats": 3}, {"venue": "副", "seats": 1}]}, "committee_size"),
        ({"venues": [{"venue": "主", "seats": 1}]}, "committee_size"),
        ({"venues": []}, "committee_size"),
        ({"signing_minutes": 0}, "signing_minutes_out_of_range"),
        ({"signing_minutes": 1441}, "signing_minutes_out_of_range"),
        ({"anonymous": True}, "invalid_tender"),
    ],
)
def test_each_evaluation_rule_refuses_with_its_code(
    body: dict[str, Any], changes: dict[str, Any], code: str
) -> None:
    assert refusal(_evaluated(body, **changes)) == code


def test_a_present_section_is_complete(body: dict[str, Any]) -> None:
    for field in ("params", "criteria", "review_rule", "anonymous_technical", "venues"):
        section = evaluation_section()
        del section[field]
        assert refusal(_with(body, evaluation=section)) == "invalid_tender", field


def test_three_experts_is_the_smallest_committee(body: dict[str, Any]) -> None:
    three = [{"venue": "主会场", "seats": 3}]
    assert tenders.parse_tender(_evaluated(body, venues=three), CAP).lots[0].evaluation


def test_a_k_range_up_to_k_max_is_published(body: dict[str, Any]) -> None:
    body["lots"][0]["k_range"] = ["0.00", "0.20", "0.05"]
    spec = tenders.parse_tender(body, CAP).lots[0]
    assert spec.k_range is not None and spec.k_range[1] == tenders.K_MAX


def test_a_low_price_lot_names_its_category(body: dict[str, Any]) -> None:
    """87号令 Art. 55 bounds the price weight by the category: without one, no bound applies."""
    bare = {"price": {"method": "low_price", "weight": "0.30"}}
    lot = _evaluated(body, params=bare)
    lot["lots"][0].update(method="low_price", k_range=None)
    assert refusal(lot) == "category_required"
    services = {"price": {"method": "low_price", "weight": "0.45", "category": "services"}}
    lot = _evaluated(body, params=services)
    lot["lots"][0].update(method="low_price", k_range=None)
    assert refusal(lot) == "weight_out_of_range"  # services: 10-30 %


def test_the_scoring_method_is_the_lot_s(body: dict[str, Any]) -> None:
    low_price = {
        "price": {"method": "low_price", "weight": "0.30", "category": "goods"},
        "items": [],
    }
    assert refusal(_evaluated(body, params=low_price)) == "evaluation_method_mismatch"
    lot = _evaluated(body, params=low_price)
    lot["lots"][0].update(method="low_price", k_range=None)
    assert tenders.parse_tender(lot, CAP).lots[0].method == "low_price"
    lowest = {"price": {"method": "lowest_evaluated"}}
    lot = _evaluated(body, params=lowest)
    assert refusal(lot) == "evaluation_method_mismatch"
    lot["lots"][0].update(method="lowest_evaluated", k_range=None)
    assert tenders.parse_tender(lot, CAP).lots[0].evaluation is not None
    # a benchmark section on a lot without k_range: the lot's own rule speaks first
    lot = _evaluated(body)
    lot["lots"][0].update(k_range=None)
    assert refusal(lot) == "k_range_required"


def _row(bidder: str, status: str, price: str | None = None) -> dict[str, Any]:
    opened = status in ("decrypted", "quorum_opened")
    return {
        "bidder": bidder,
        "name": f"{bidder} 公司",
        "status": status,
        "fields": {"price": price, "duration_days": 365} if opened else {},
        "guarantee_check": "ok" if opened else None,
        "over_ceiling": False,
        "form_error": None,
    }


def published_record() -> dict[str, Any]:
    """A record document as docs/opening.md "Events" (opening.record_document) describes it."""
    statuses = [
        ("cert:a", "decrypted", "3500000.00"),
        ("cert:b", "quorum_opened", "3620000.50"),
        ("cert:c", "revoked", None),
        ("cert:d", "withdrawn", None),
        ("cert:e", "decrypted", "3710000.00"),
    ]
    causes = {"cert:b": "platform_fault", "cert:c": "bidder_key_lost", "cert:d": "ca_fault"}
    return {
        "format": "bidroom-opening-record",
        "version": 1,
        "lot": "0123456789abcdef0123456789abcdef-1",
        "tender": "ZJ-ZS-2026-0417",
        "title": "第1标段",
        "times": {"scheduled": "2026-12-20T01:30:00+00:00"},
        "window_ends": "2026-12-20T02:00:00+00:00",
        "count": 5,
        "bids": [
            {
                "bidder": b,
                "name": f"{b} 公司",
                "envelope": "00" * 32,
                "status": s,
                "cause": causes.get(b),
            }
            for b, s, _ in statuses
        ],
        "decision": None,
        "remedy": "quorum",
        "quorum": [
            {
                "bidders": ["cert:b"],
                "reason": "platform_fault",
                "shares": [
                    {"index": 1, "custodian": "cert:x"},
                    {"index": 2, "custodian": "cert:y"},
                ],
                "opened": {"cert:b": [1, 2]},
                "cancelled": None,
            }
        ],
        "sheet": {
            "rows": [_row(b, s, p) for b, s, p in statuses],
            "ceiling_price": "3800000.00",
            "fields": ["price", "duration_days"],
        },
        "draw": {"range": ["0.00", "0.05", "0.01"], "commitment": "ab" * 32, "seed": "cd" * 32}
        | {"k": "0.03"},
        "objections": [],
    }


def test_the_evaluation_config_is_the_lot_s_section_with_the_record_s_opened_bids_and_k(
    body: dict[str, Any],
) -> None:
    from bidroom import evaluation, scoring

    lot = tenders.parse_tender(_evaluated(body), CAP).lots[0]
    record = published_record()
    received = {"cert:a": "2026-12-19T08:00:00+00:00", "cert:b": "2026-12-19T09:00:00+00:00"}
    config = tenders.evaluation_config(lot, record, received_at=received, label_seed="ee" * 16)
    assert [(b["bidder"], b["status"], b["price"]) for b in config["bids"]] == [
        ("cert:a", "decrypted", "3500000.00"),
        ("cert:b", "quorum_opened", "3620000.50"),
        ("cert:e", "decrypted", "3710000.00"),
    ], "the opened bids, the revoked and withdrawn ones left out"
    assert config["bids"][0]["name"] == "cert:a 公司"
    assert config["bids"][0]["received_at"] == "2026-12-19T08:00:00+00:00"
    assert config["bids"][2]["received_at"] is None
    assert config["bids"][1]["fields"] == {"price": "3620000.50", "duration_days": 365}
    assert config["k"] == "0.03" and isinstance(config["k"], str)
    assert config["lot"] == record["lot"] and config["tender"] == "ZJ-ZS-2026-0417"
    assert config["criteria"] == evaluation_section()["criteria"]
    assert config["review_rule"] == "majority" and config["anonymous"] is True
    assert config["venues"] == [{**v, "cities": []} for v in evaluation_section()["venues"]]
    assert config["signing_minutes"] == 60 and config["label_seed"] == "ee" * 16
    params = scoring.params_from_json(config["params"])
    assert params.price.ceiling == Decimal("3800000.00"), "the lot's ceiling, unless params name it"
    assert lot.evaluation is not None and lot.evaluation.params["price"]["ceiling"] is None
    # the room's record with its publication state is taken too, once published
    wrapped = {"document": record, "digest": "00", "published": {"checkpoint": {}, "proofs": []}}
    assert tenders.evaluation_config(lot, wrapped, received_at=received) == {
        k: v for k, v in config.items() if k != "label_seed"
    }
    state = evaluation.initial({**config, "starts_at": "2026-12-21T01:30:00+00:00"})
    assert state.spec.k == "0.03" and len(state.spec.bids) == 3


def evaluation_refusal(lot: tenders.LotSpec, record: dict[str, Any]) -> str:
    with pytest.raises(TenderError) as caught:
        tenders.evaluation_config(lot, record)
    return caught.value.code


def test_the_evaluation_config_needs_a_complete_published_record(body: dict[str, Any]) -> None:
    lot = tenders.parse_tender(_evaluated(body), CAP).lots[0]
    record = published_record()
    assert evaluation_refusal(lot, {**record, "format": "x"}) == "record_invalid"
    assert evaluation_refusal(lot, {**record, "version": 2}) == "record_invalid"
    assert evaluation_refusal(lot, {**record, "lot": "0123-2"}) == "record_other_lot"
    assert evaluation_refusal(lot, {**record, "sheet": None}) == "record_incomplete"
    assert evaluation_refusal(lot, {**record, "draw": {**record["draw"], "k": None}}) == (
        "record_incomplete"
    )
    sealed = copy.deepcopy(record)
    sealed["bids"][0]["status"] = "failed"
    assert evaluation_refusal(lot, sealed) == "record_incomplete"
    rowless = copy.deepcopy(record)
    rowless["sheet"]["rows"] = rowless["sheet"]["rows"][1:]
    assert evaluation_refusal(lot, rowless) == "record_incomplete"
    terminated = {**record, "decision": {"decision": "terminate", "reason": "少于3家", "count": 2}}
    assert evaluation_refusal(lot, terminated) == "opening_terminated"
    none_opened = copy.deepcopy(record)
    for b in none_opened["bids"]:
        b["status"] = "revoked"
    assert evaluation_refusal(lot, none_opened) == "no_opened_bids"
    unpublished = {"document": record, "digest": "00", "published": None}
    assert evaluation_refusal(lot, unpublished) == "record_unpublished"
    bare = tenders.parse_tender(body, CAP).lots[0]
    assert evaluation_refusal(bare, record) == "evaluation_missing"


def test_a_lot_without_a_draw_takes_no_k(body: dict[str, Any]) -> None:
    low_price = {"price": {"method": "low_price", "weight": "0.30", "category": "services"}}
    lot = _evaluated(body, params=low_price)
    lot["lots"][0].update(method="low_price", k_range=None)
    spec = tenders.parse_tender(lot, CAP).lots[0]
    config = tenders.evaluation_config(spec, {**published_record(), "draw": None})
    assert config["k"] is None and len(config["bids"]) == 3


def test_the_demo_tender_has_a_complete_evaluation_consistent_with_its_method(
    tmp_path: Any, people: list[tuple[p.PrivateKey, Any]]
) -> None:
    from bidroom import demo, demo_pki

    for person, (_, cert) in zip(
        [x for x in demo_pki.PEOPLE if x.role == "custodian"], people, strict=False
    ):
        (tmp_path / f"{person.id}.crt.pem").write_text(pem(cert))
    spec = tenders.parse_tender(demo.tender_spec(tmp_path, NOW + timedelta(days=21)), CAP)
    [lot] = spec.lots
    assert lot.evaluation is not None and lot.method == "benchmark"
    params = lot.evaluation.scoring_params()
    subjective = [i.id for i in params.items if i.kind == "subjective"]
    assert subjective == ["服务方案", "人员配备", "设备"]
    price_marks = params.price.full_marks
    assert price_marks is not None
    assert sum(i.max for i in params.items) + price_marks == 100, "100 points in all"
    assert [v.seats for v in lot.evaluation.venues] == [3, 1, 1]
