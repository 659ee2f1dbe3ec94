"""Who chairs a tender (bidroom.owners), as a pure rule: the owning organisation, compared as the
custody policy compares organisations, and the chairs assigned by name."""

from __future__ import annotations

import pytest

from bidroom import owners
from bidroom.errors import NotYourTender, TenderError

CENTRE = owners.owner("舟山市公共资源交易中心（招标代理）", ["uscc:agency-chair"])


def test_a_chair_of_the_owning_organisation_chairs_however_its_certificate_spells_it() -> None:
    assert owners.may_chair(CENTRE, "uscc:someone", "舟山市公共资源交易中心（招标代理）")
    assert owners.may_chair(CENTRE, "uscc:someone", "舟山市公共资源交易中心(招标代理)")
    assert owners.may_chair(CENTRE, "uscc:someone", " 舟山市公共资源交易中心 （招标代理）")
    # an invisible character does not make a second organisation of one
    assert owners.may_chair(CENTRE, "uscc:someone", "舟山市公共资源\u200b交易中心（招标代理）")
    assert owners.may_chair(CENTRE, "uscc:someone", "舟山市公共资源交易中心\u2060（招标代理）")


def test_an_assigned_chair_chairs_and_no_other_does() -> None:
    assert owners.may_chair(CENTRE, "uscc:agency-chair", "某招标代理有限公司")
    assert not owners.may_chair(CENTRE, "uscc:other", "宁波市公共资源交易中心")
    with pytest.raises(NotYourTender):
        owners.check(CENTRE, "uscc:other", "宁波市公共资源交易中心")


@pytest.mark.parametrize("organisation", [None, ""])
def test_two_chairs_without_an_organisation_are_not_colleagues(organisation: str | None) -> None:
    nameless = owners.owner(organisation, ["uscc:creator"])
    assert nameless["organisation"] is None
    assert owners.may_chair(nameless, "uscc:creator", organisation)
    assert not owners.may_chair(nameless, "uscc:stranger", organisation)


def test_an_opening_or_evaluation_without_owners_is_chaired_by_nobody() -> None:
    for kind in ("opening", "evaluation"):
        assert owners.refusal(kind, {}, "uscc:anyone", "舟山市公共资源交易中心") is not None
    assert owners.refusal("meeting", {}, "uscc:anyone", None) is None


def test_assigned_chairs_are_registry_subjects_and_bounded() -> None:
    assert owners.parse_chairs(["uscc:b", "uscc:a", "uscc:a"]) == ["uscc:a", "uscc:b"]
    for bad in (["a b"], "uscc:a", [1], ["x"] * 21 + ["y"]):
        with pytest.raises(TenderError) as refused:
            owners.parse_chairs(bad)
        assert refused.value.code == "invalid_chairs"
