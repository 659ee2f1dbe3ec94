"""The automated pre-check (清标) shown to the evaluation committee, pure.

It reads what the opening recorded about each bid of a lot (docs/opening.md: the bid form, the
price list, the envelope header's ``client`` map, the signer's certificate, the uploader network
addresses, the guarantee) and lists *findings*: evidence for people. A finding never decides
anything; the committee and the supervisor do (DOMAIN.md, "Collusion indicators": a single match
is a signal, not a verdict). Each finding has a ``kind`` (the table ``KINDS``), a ``category``, a
``severity`` (``"signal"``: the committee should look; ``"info"``: weaker context), the bids
concerned (bidder ids, sorted) and the ``evidence`` values, all JSON-ready strings and numbers.

Kinds, per bid:

- ``line_arithmetic`` (算术性校核): a price-list line whose quantity × unit price, rounded to the
  cent half up (四舍五入, ``ROUND_HALF_UP``), differs from its stated line total.
- ``total_arithmetic``: the sum of the stated line totals differs from the stated total.
- ``sheet_price_mismatch``: the stated total differs from the price read at the opening (唱标价).
- ``over_ceiling``: the price is above the lot's ceiling (最高投标限价); equal is not above.
- ``missing_items`` (缺漏项): required items absent from the price list.
- ``nonpositive_unit_price``: lines priced at zero or below.
- ``duplicate_items``: an item code listed more than once.
- ``extra_items`` (info): items the lot does not require.
- ``price_list_unreadable``: the bid's priced bill could not be read (``Bid.price_list_error``,
  set by whoever read the bid): its lines are not checked, and the people should look.

Kinds, across bids (防围遏串; one finding per shared value, naming every bid that has it):

- ``same_address``: the same upload network address (exact IP).
- ``same_subnet`` (info): addresses in the same IPv4 /24 or IPv6 /64, unless one exact address is
  already shared by every bid of the group (then ``same_address`` says it all).
- ``same_device``: the same ``client["device"]`` reported by the sealing tool.
- ``same_certificate`` / ``same_public_key``: the same signer certificate, or the same key (the
  latter only where the bids do not already share one certificate).
- ``same_guarantee_payer`` / ``same_guarantee_number`` (the number with its issuer).
- ``same_project_manager``: the same ID number (shown masked); ``same_project_manager_name``
  (info): the same name where no two different ID numbers tell the people apart.
- ``same_price``: identical prices.
- ``identical_unit_prices``: two bids with the same unit price on at least ``identical_share`` of
  the items both priced, over at least ``identical_min_items`` such items. Items the tender fixes
  (``RequiredItem.fixed_price``: 暂列金额, 暂估价, non-competitive fees) are left out: they are the
  same in every bid by rule.
- ``price_ladder``: at least ``pattern_min_bids`` prices, adjacent in price order, rising by a
  constant difference or a constant ratio: (max step − min step) ≤ ``ladder_tolerance`` × mean
  step, every step > 0 (a ratio's step is ratio − 1).
- ``tight_spread``: at least ``pattern_min_bids`` prices, adjacent in price order, with
  (max − min) ≤ ``spread`` × mean.
  Both patterns are found as maximal runs, grown from each bid upward in price order (ties by
  bidder id) until the next price breaks the pattern.

Every threshold is inclusive: a value exactly at it produces the finding.

Rules of this file: no I/O, no clock; amounts are :class:`~decimal.Decimal` (floats are refused
at the edge) computed in a fixed decimal context; the output depends only on the inputs, not on
the order of the bids (findings sorted by kind, bids, evidence). Build the inputs with
:func:`parse_lot` / :func:`parse_bid` to get :class:`~bidroom.errors.PrecheckError` for malformed
input; codes (``PrecheckError.code``):

- ``precheck_invalid``: a field is missing, of the wrong type or out of range (``detail["field"]``)
- ``precheck_bad_money``: an amount that is not a decimal with at most 2 places (4 for quantities
  and unit prices), or a float
- ``precheck_bad_address``: an upload address that is not an IP address
- ``precheck_bad_fingerprint``: a fingerprint that is not 32 to 128 hex digits (colons allowed)
- ``precheck_price_conflict``: ``sheet["price"]`` given and different from ``price``
- ``precheck_duplicate_required``: the lot lists a required item twice
- ``precheck_no_bids``, ``precheck_too_many_bids``, ``precheck_duplicate_bidder``
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from itertools import combinations, pairwise
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from bidroom.errors import PrecheckError

Severity = Literal["info", "signal"]
Category = Literal["arithmetic", "price_list", "collusion"]
K = TypeVar("K", bound=Hashable)

MAX_BIDS = 1000
MAX_LINES = 20_000
CENT = Decimal("0.01")
RATIO_PLACES = Decimal("0.000001")  # ratios are shown to 6 places; compared exactly
DEVICE_KEY = "device"  # the sealing client's device id in the envelope header's client map
SUBNET_V4, SUBNET_V6 = 24, 64
_CONTEXT = Context(prec=34, rounding=ROUND_HALF_UP)  # pinned: the caller's context never leaks in


@dataclass(frozen=True, slots=True)
class Kind:
    category: Category
    severity: Severity


# The order of this table is the order of the findings and of the summary.
KINDS: dict[str, Kind] = {
    "line_arithmetic": Kind("arithmetic", "signal"),
    "total_arithmetic": Kind("arithmetic", "signal"),
    "sheet_price_mismatch": Kind("arithmetic", "signal"),
    "over_ceiling": Kind("price_list", "signal"),
    "missing_items": Kind("price_list", "signal"),
    "nonpositive_unit_price": Kind("price_list", "signal"),
    "duplicate_items": Kind("price_list", "signal"),
    "extra_items": Kind("price_list", "info"),
    "price_list_unreadable": Kind("price_list", "signal"),
    "same_address": Kind("collusion", "signal"),
    "same_subnet": Kind("collusion", "info"),
    "same_device": Kind("collusion", "signal"),
    "same_certificate": Kind("collusion", "signal"),
    "same_public_key": Kind("collusion", "signal"),
    "same_guarantee_payer": Kind("collusion", "signal"),
    "same_guarantee_number": Kind("collusion", "signal"),
    "same_project_manager": Kind("collusion", "signal"),
    "same_project_manager_name": Kind("collusion", "info"),
    "same_price": Kind("collusion", "signal"),
    "identical_unit_prices": Kind("collusion", "signal"),
    "price_ladder": Kind("collusion", "signal"),
    "tight_spread": Kind("collusion", "signal"),
}
_KIND_ORDER = {kind: index for index, kind in enumerate(KINDS)}


# the edge: inputs ---------------------------------------------------------------------------


def _decimal(places: int) -> Callable[[object], Decimal]:
    """A validator: a decimal string, int or Decimal with at most ``places`` places; no float."""
    pattern = re.compile(rf"^-?[0-9]{{1,15}}(\.[0-9]{{1,{places}}})?$")

    def parse(value: object) -> Decimal:
        if isinstance(value, Decimal) and value.is_finite():
            value = format(value, "f")
        elif type(value) is int:
            value = str(value)
        if not isinstance(value, str) or not pattern.match(value):
            raise PydanticCustomError(
                "precheck_bad_money", "a decimal with at most {places} places", {"places": places}
            )
        return Decimal(value)

    return parse


def _address(value: object) -> str:
    try:
        address = ipaddress.ip_address(str(value).strip()) if isinstance(value, str) else None
    except ValueError:
        address = None
    if address is None:
        raise PydanticCustomError("precheck_bad_address", "an IP address")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _fingerprint(value: object) -> str:
    text = re.sub(r"[\s:]", "", value).lower() if isinstance(value, str) else ""
    if not re.fullmatch(r"[0-9a-f]{32,128}", text):
        raise PydanticCustomError("precheck_bad_fingerprint", "32 to 128 hex digits")
    return text


Money = Annotated[Decimal, BeforeValidator(_decimal(2))]
Quantity = Annotated[Decimal, BeforeValidator(_decimal(4))]
UnitPrice = Annotated[Decimal, BeforeValidator(_decimal(4))]  # some unit prices go below the cent
Address = Annotated[str, BeforeValidator(_address)]
Fingerprint = Annotated[str, BeforeValidator(_fingerprint)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
Code = Annotated[str, Field(min_length=1, max_length=64)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class PriceLine(_Model):
    """One line of the price list (已标价工程量清单 / 分项报价表) as the bid states it."""

    code: Code
    quantity: Quantity
    unit_price: UnitPrice
    line_total: Money


class Guarantee(_Model):
    """The guarantee (电子保函) or deposit as the bid form declares it."""

    issuer: Text | None = None
    number: Text | None = None
    amount: Money | None = None
    payer: Text | None = None


class ProjectManager(_Model):
    name: Text | None = None
    id_number: Annotated[str, Field(min_length=1, max_length=32)] | None = None


class Bid(_Model):
    """What the record holds about one opened bid; only ``bidder``, ``name``, ``price`` needed.

    ``price`` is the opening sheet's price (唱标价); ``sheet`` the sheet's other fields;
    ``client`` the envelope header's client map; ``certificate`` and ``public_key`` the
    fingerprints of the signer's certificate and key; ``addresses`` every uploader address kept
    with the bid's versions.
    """

    bidder: Text
    name: Text
    price: Money = Field(ge=0)
    stated_total: Money | None = None
    lines: tuple[PriceLine, ...] = Field(default=(), max_length=MAX_LINES)
    sheet: dict[str, str | int | None] = Field(default_factory=dict)
    guarantee: Guarantee | None = None
    client: dict[str, str] = Field(default_factory=dict)
    certificate: Fingerprint | None = None
    public_key: Fingerprint | None = None
    addresses: tuple[Address, ...] = Field(default=(), max_length=100)
    project_manager: ProjectManager | None = None
    price_list_error: Annotated[str, Field(min_length=1, max_length=64)] | None = None

    @model_validator(mode="after")
    def _sheet_price_agrees(self) -> Bid:
        shown = self.sheet.get("price")
        if shown is not None and _decimal(2)(shown) != self.price:
            raise PydanticCustomError("precheck_price_conflict", "sheet price differs from price")
        return self

    def manager_name(self) -> str | None:
        """The project manager's name: given, else the sheet's; whitespace removed."""
        given = self.project_manager.name if self.project_manager else None
        name = given or self.sheet.get("project_manager")
        return (re.sub(r"\s+", "", name) or None) if isinstance(name, str) else None

    def manager_id(self) -> str | None:
        number = self.project_manager.id_number if self.project_manager else None
        return number.upper() if number else None


class RequiredItem(_Model):
    """An item the lot requires; ``fixed_price`` where the tender sets its price (暂列金额...)."""

    code: Code
    fixed_price: bool = False


class Thresholds(_Model):
    identical_share: Decimal = Field(default=Decimal("0.8"), gt=0, le=1)
    identical_min_items: int = Field(default=5, ge=1)
    ladder_tolerance: Decimal = Field(default=Decimal("0.01"), ge=0, lt=1)
    spread: Decimal = Field(default=Decimal("0.005"), ge=0, lt=1)
    pattern_min_bids: int = Field(default=3, ge=3)


class Lot(_Model):
    lot: Text
    ceiling_price: Money | None = Field(default=None, gt=0)
    required_items: tuple[RequiredItem, ...] = Field(default=(), max_length=MAX_LINES)
    thresholds: Thresholds = Field(default_factory=Thresholds)

    @model_validator(mode="after")
    def _unique_items(self) -> Lot:
        if len({item.code for item in self.required_items}) != len(self.required_items):
            raise PydanticCustomError("precheck_duplicate_required", "a required item twice")
        return self


def parse_lot(data: object) -> Lot:
    """The lot's pre-check terms from JSON-like data; :class:`PrecheckError` if malformed."""
    return _parse(Lot, data, "lot")


def parse_bid(data: object) -> Bid:
    """One bid's record from JSON-like data; :class:`PrecheckError` if malformed."""
    return _parse(Bid, data, "bid")


M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], data: object, what: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or what
        code = first["type"] if first["type"].startswith("precheck_") else "precheck_invalid"
        raise PrecheckError(
            f"{what} {field}: {first['msg']}", code=code, detail={"field": field}
        ) from exc


# the output -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    category: Category
    severity: Severity
    bids: tuple[str, ...]
    evidence: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "category": self.category,
            "severity": self.severity,
            "bids": list(self.bids),
            "evidence": json.loads(json.dumps(self.evidence)),
        }


@dataclass(frozen=True, slots=True)
class Result:
    lot: str
    bids: tuple[tuple[str, str], ...]  # (bidder, name), by bidder
    findings: tuple[Finding, ...]
    thresholds: Thresholds

    def summary(self) -> dict[str, Any]:
        """Counts per kind (every kind, zeros too) and per severity."""
        kinds = dict.fromkeys(KINDS, 0)
        severities: dict[str, int] = {"signal": 0, "info": 0}
        for finding in self.findings:
            kinds[finding.kind] += 1
            severities[finding.severity] += 1
        return {"kinds": kinds, "severities": severities}

    def to_json(self) -> dict[str, Any]:
        return {
            "lot": self.lot,
            "bids": [{"bidder": bidder, "name": name} for bidder, name in self.bids],
            "thresholds": self.thresholds.model_dump(mode="json"),
            "findings": [finding.to_json() for finding in self.findings],
            "summary": self.summary(),
        }


def precheck(lot: Lot, bids: Sequence[Bid]) -> Result:
    """The pre-check of ``bids`` under ``lot``'s terms: every finding, in a stable order."""
    ordered = _ordered(bids)
    with localcontext(_CONTEXT):
        found = [f for check in _PER_BID for bid in ordered for f in check(lot, bid)]
        found += [f for across in _ACROSS for f in across(lot, ordered)]
    found.sort(key=lambda f: (_KIND_ORDER[f.kind], f.bids, _canonical(f.evidence)))
    return Result(lot.lot, tuple((b.bidder, b.name) for b in ordered), tuple(found), lot.thresholds)


def _ordered(bids: Sequence[Bid]) -> list[Bid]:
    if not bids:
        raise PrecheckError("there are no bids to check", code="precheck_no_bids")
    if len(bids) > MAX_BIDS:
        raise PrecheckError(f"more than {MAX_BIDS} bids", code="precheck_too_many_bids")
    ordered = sorted(bids, key=lambda bid: bid.bidder)
    for one, two in pairwise(ordered):
        if one.bidder == two.bidder:
            raise PrecheckError(
                f"bidder {one.bidder} has two bids",
                code="precheck_duplicate_bidder",
                detail={"bidder": one.bidder},
            )
    return ordered


def _finding(kind: str, bids: Iterable[str], evidence: Mapping[str, Any]) -> Finding:
    spec = KINDS[kind]
    return Finding(kind, spec.category, spec.severity, tuple(sorted(bids)), evidence)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _money(value: Decimal) -> str:
    return format(value, "f")


def _ratio(value: Decimal) -> str:
    return format(value.quantize(RATIO_PLACES, ROUND_HALF_UP), "f")


# per bid: arithmetic (算术性校核) and the price list ---------------------------------------


def line_total(line: PriceLine) -> Decimal:
    """Quantity × unit price, rounded to the cent half up (四舍五入)."""
    return (line.quantity * line.unit_price).quantize(CENT, ROUND_HALF_UP)


def _line_arithmetic(lot: Lot, bid: Bid) -> Iterator[Finding]:
    wrong = [
        {
            "code": line.code,
            "quantity": _money(line.quantity),
            "unit_price": _money(line.unit_price),
            "computed": _money(computed),
            "stated": _money(line.line_total),
            "difference": _money(line.line_total - computed),
        }
        for line in bid.lines
        if (computed := line_total(line)) != line.line_total
    ]
    if wrong:
        yield _finding("line_arithmetic", [bid.bidder], {"lines": wrong})


def _total_arithmetic(lot: Lot, bid: Bid) -> Iterator[Finding]:
    if bid.stated_total is None or not bid.lines:
        return
    lines = sum((line.line_total for line in bid.lines), Decimal(0))
    if lines != bid.stated_total:
        computed = sum((line_total(line) for line in bid.lines), Decimal(0))
        yield _finding(
            "total_arithmetic",
            [bid.bidder],
            {
                "sum_of_lines": _money(lines),
                "stated_total": _money(bid.stated_total),
                "difference": _money(bid.stated_total - lines),
                "sum_of_computed_lines": _money(computed),
            },
        )


def _sheet_price(lot: Lot, bid: Bid) -> Iterator[Finding]:
    if bid.stated_total is not None and bid.stated_total != bid.price:
        evidence = {
            "stated_total": _money(bid.stated_total),
            "price": _money(bid.price),
            "difference": _money(bid.stated_total - bid.price),
        }
        yield _finding("sheet_price_mismatch", [bid.bidder], evidence)


def _over_ceiling(lot: Lot, bid: Bid) -> Iterator[Finding]:
    if lot.ceiling_price is not None and bid.price > lot.ceiling_price:
        evidence = {
            "price": _money(bid.price),
            "ceiling_price": _money(lot.ceiling_price),
            "excess": _money(bid.price - lot.ceiling_price),
        }
        yield _finding("over_ceiling", [bid.bidder], evidence)


def _items(lot: Lot, bid: Bid) -> Iterator[Finding]:
    """Missing and extra items, judged only where the lot lists its required items."""
    if not lot.required_items:
        return
    required = {item.code for item in lot.required_items}
    priced = {line.code for line in bid.lines}
    if missing := sorted(required - priced):
        yield _finding("missing_items", [bid.bidder], {"codes": missing})
    if extra := sorted(priced - required):
        yield _finding("extra_items", [bid.bidder], {"codes": extra})


def _nonpositive(lot: Lot, bid: Bid) -> Iterator[Finding]:
    lines = [
        {"code": line.code, "unit_price": _money(line.unit_price)}
        for line in bid.lines
        if line.unit_price <= 0
    ]
    if lines:
        yield _finding("nonpositive_unit_price", [bid.bidder], {"lines": lines})


def _duplicates(lot: Lot, bid: Bid) -> Iterator[Finding]:
    if twice := sorted(_repeated_codes(bid)):
        yield _finding("duplicate_items", [bid.bidder], {"codes": twice})


def _repeated_codes(bid: Bid) -> set[str]:
    counts = Counter(line.code for line in bid.lines)
    return {code for code, count in counts.items() if count > 1}


def _price_list_unreadable(lot: Lot, bid: Bid) -> Iterator[Finding]:
    if bid.price_list_error is not None:
        yield _finding("price_list_unreadable", [bid.bidder], {"error": bid.price_list_error})


_PER_BID: tuple[Callable[[Lot, Bid], Iterable[Finding]], ...] = (
    _price_list_unreadable,
    _line_arithmetic,
    _total_arithmetic,
    _sheet_price,
    _over_ceiling,
    _items,
    _nonpositive,
    _duplicates,
)


# across bids: collusion indicators (防围遏串) ----------------------------------------------


def _groups(bids: Sequence[Bid], keys: Callable[[Bid], Iterable[K]]) -> dict[K, list[Bid]]:
    """Bids by shared key, only the keys at least two bids share."""
    groups: dict[K, list[Bid]] = defaultdict(list)
    for bid in bids:
        for key in set(keys(bid)):
            groups[key].append(bid)
    return {key: members for key, members in groups.items() if len(members) >= 2}


def _shared(
    kind: str,
    bids: Sequence[Bid],
    keys: Callable[[Bid], Iterable[K]],
    evidence: Callable[[K], Mapping[str, Any]],
    covered: Callable[[list[Bid]], bool] = lambda members: False,
) -> Iterator[Finding]:
    for key, members in _groups(bids, keys).items():
        if not covered(members):
            yield _finding(kind, (bid.bidder for bid in members), evidence(key))


def _one(value: str | None) -> list[str]:
    return [value] if value else []


def _plain(text: str | None) -> str | None:
    """Text compared as people would: whitespace collapsed, case folded."""
    return " ".join(text.split()).casefold() or None if text else None


def _same_address(lot: Lot, bids: Sequence[Bid]) -> Iterator[Finding]:
    def evidence(address: str) -> dict[str, Any]:
        return {"address": address, "private": ipaddress.ip_address(address).is_private}

    yield from _shared("same_address", bids, lambda bid: bid.addresses, evidence)


def _subnet(address: str) -> str:
    ip = ipaddress.ip_address(address)
    prefix = SUBNET_V4 if ip.version == 4 else SUBNET_V6
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def _same_subnet(lot: Lot, bids: Sequence[Bid]) -> Iterator[Finding]:
    for subnet, members in _groups(bids, lambda bid: map(_subnet, bid.addresses)).items():
        inside = {b.bidder: sorted(a for a in b.addresses if _subnet(a) == subnet) for b in members}
        if not set.intersection(*(set(addresses) for addresses in inside.values())):
            yield _finding("same_subnet", inside, {"subnet": subnet, "addresses": inside})


def _same_device(lot: Lot, bids: Sequence[Bid]) -> Iterator[Finding]:
    yield from _shared(
        "same_device",
        bids,
        lambda bid: _one(_plain(bid.client.get(DEVICE_KEY))),
        lambda device: {"device": device},
    )


def _same_signer(lot: Lot, bids: Sequence[Bid]) -> Iterator[Finding]:
    def one_certificate(members: list[Bid]) -> bool:
        return len({bid.certificate for bid in members}) == 1 and bool(members[0].certificate)

    yield from _shared(
        "same_certificate", bids, lambda b: _one(b.certificate), lambda c: {"certificate": c}
    )
    yield from _shared(
        "same_public_key",
        bids,
        lambda b: _one(b.public_key),
        lambda key: {"public_key": key},
        one_certificate,
    )


def _same_guarantee(lot: Lot, bids: Sequence[Bid]) -> Iterator[Finding]:
    def payer(bid: Bid) -> list[str]:
        return _one(_plain(bid.guarantee.payer if bid.guarantee else None))

    def number(bid: Bid) -> list[tuple[str, str]]:
        g = bid.guarantee
        if g is None or not g.number:
            return []
        return [(_plain(g.issuer) or "", _plain(g.number) or "")]

    yield from _shared("same_guarantee_payer", bids, payer, lambda p: {"payer": p})
    yield from _shared(
        "same_guarantee_number", bids, number, lambda k: {"issuer": k[0] or None, "number": k[1]}
    )


def _masked(number: str) -> str:
    """An ID number as the committee sees it: enough to compare, not the whole number."""
    keep = 4 if len(number) > 8 else 1
    return number[:keep] + "*" * (len(number) - 2 * keep) + number[-keep:]


def _same_manager(lot: Lot, bids: Sequence[Bid]) -> Iterator[Finding]:
    def told_apart_or_known(members: list[Bid]) -> bool:
        numbers = [bid.manager_id() for bid in members]
        return len(set(filter(None, numbers))) > 1 or None not in numbers

    yield from _shared(
        "same_project_manager",
        bids,
        lambda bid: _one(bid.manager_id()),
        lambda number: {"id_number": _masked(number)},
    )
    yield from _shared(
        "same_project_manager_name",
        bids,
        lambda bid: _one(bid.manager_name()),
        lambda name: {"name": name},
        told_apart_or_known,
    )


def _same_price(lot: Lot, bids: Sequence[Bid]) -> Iterator[Finding]:
    yield from _shared("same_price", bids, lambda bid: [bid.price], lambda p: {"price": _money(p)})


def _unit_prices(
    bid: Bid, fixed: set[str]
) -> tuple[frozenset[str], frozenset[tuple[str, Decimal]]]:
    """The codes and (code, unit price) pairs compared: not the tender's fixed items, nor the
    codes listed twice."""
    twice = _repeated_codes(bid) | fixed
    items = frozenset((line.code, line.unit_price) for line in bid.lines if line.code not in twice)
    return frozenset(code for code, _ in items), items


def _identical_unit_prices(lot: Lot, bids: Sequence[Bid]) -> Iterator[Finding]:
    limits = lot.thresholds
    fixed = {item.code for item in lot.required_items if item.fixed_price}
    priced = [(bid.bidder, *_unit_prices(bid, fixed)) for bid in bids]
    for (one, codes, items), (two, other_codes, other_items) in combinations(priced, 2):
        same = items & other_items  # set operations: a large lot's pairs stay fast
        common = len(codes & other_codes) if same else 0
        if common >= limits.identical_min_items and len(same) >= limits.identical_share * common:
            evidence = {
                "compared": common,
                "identical": len(same),
                "share": _ratio(Decimal(len(same)) / common),
                "codes": sorted(code for code, _ in same),
            }
            yield _finding("identical_unit_prices", [one, two], evidence)


def _even_runs(values: Sequence[Decimal], tolerance: Decimal, least: int) -> list[tuple[int, int]]:
    """Maximal runs ``values[i:j]`` (grown from each i) of at least ``least`` values, all > 0,
    with (max − min) ≤ tolerance × mean, i.e. (max − min) × count ≤ tolerance × sum."""
    runs: list[tuple[int, int]] = []
    for start in range(len(values)):
        if runs and runs[-1][1] == len(values):
            break
        end, low, high, total = start, Decimal(0), Decimal(0), Decimal(0)
        while end < len(values) and values[end] > 0:
            value = values[end]
            low, high = (value, value) if end == start else (min(low, value), max(high, value))
            total += value
            if (high - low) * (end - start + 1) > tolerance * total:
                break
            end += 1
        if end - start >= least and (not runs or end > runs[-1][1]):
            runs.append((start, end))
    return runs


def _by_price(bids: Sequence[Bid]) -> list[Bid]:
    return sorted(bids, key=lambda bid: (bid.price, bid.bidder))


def _priced(bids: Sequence[Bid]) -> list[dict[str, str]]:
    return [{"bidder": bid.bidder, "price": _money(bid.price)} for bid in bids]


def _price_ladder(lot: Lot, bids: Sequence[Bid]) -> Iterator[Finding]:
    """Runs rising by a constant difference, then by a constant ratio (unless inside the former)."""
    limits, ladder = lot.thresholds, _by_price(bids)
    prices = [bid.price for bid in ladder]
    steps = [high - low for low, high in pairwise(prices)]
    ratios = [high / low if low > 0 else Decimal(1) for low, high in pairwise(prices)]
    least = limits.pattern_min_bids - 1
    by_step = _even_runs(steps, limits.ladder_tolerance, least)
    by_ratio = _even_runs([r - 1 for r in ratios], limits.ladder_tolerance, least)
    for start, end in by_step:
        yield _ladder(ladder[start : end + 1], "steps", [_money(s) for s in steps[start:end]])
    for start, end in by_ratio:
        if not any(s <= start and end <= e for s, e in by_step):
            yield _ladder(ladder[start : end + 1], "ratios", [_ratio(r) for r in ratios[start:end]])


def _ladder(run: Sequence[Bid], pattern: Literal["steps", "ratios"], values: list[str]) -> Finding:
    evidence = {
        "pattern": "difference" if pattern == "steps" else "ratio",
        "prices": _priced(run),
        pattern: values,
    }
    return _finding("price_ladder", (bid.bidder for bid in run), evidence)


def _tight_spread(lot: Lot, bids: Sequence[Bid]) -> Iterator[Finding]:
    limits, ordered = lot.thresholds, _by_price(bids)
    prices = [bid.price for bid in ordered]
    for start, end in _even_runs(prices, limits.spread, limits.pattern_min_bids):
        run = prices[start:end]
        mean = sum(run, Decimal(0)) / len(run)
        evidence = {
            "prices": _priced(ordered[start:end]),
            "min": _money(run[0]),
            "max": _money(run[-1]),
            "mean": _money(mean.quantize(CENT, ROUND_HALF_UP)),
            "spread": _ratio((run[-1] - run[0]) / mean),
        }
        yield _finding("tight_spread", (bid.bidder for bid in ordered[start:end]), evidence)


_ACROSS: tuple[Callable[[Lot, Sequence[Bid]], Iterable[Finding]], ...] = (
    _same_address,
    _same_subnet,
    _same_device,
    _same_signer,
    _same_guarantee,
    _same_manager,
    _same_price,
    _identical_unit_prices,
    _price_ladder,
    _tight_spread,
)
