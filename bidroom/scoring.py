"""The evaluation's formulas (详细评审), pure: price scores, totals, ranking, the deviation check.

Three price methods (../shared/DOMAIN.md "Price scoring"), each with its parameters frozen at
publication (:class:`LowPrice`, :class:`Benchmark`, :class:`LowestEvaluated`); only K, drawn at
the opening (bidroom.opening.draw_k), is an input:

- ``low_price`` (低价优先, government procurement): B = the lowest valid price,
  score = B / P x W x 100.
- ``benchmark`` (基准价/偏差率, works): S = the trimmed mean of the valid prices (:class:`Trim`),
  B = S x (1 - K), D = (P - B) / B x 100 (in %), score = C - |D| x E with E = ``e_high`` above B
  and ``e_low`` below, per 1 %, never below 0.
- ``lowest_evaluated`` (经评审的最低投标价法): no points; the evaluated price (the bid price
  plus its adjustments, each with its reason) ranks ascending.

A price is valid when its bid passed the preliminary review, has a price (not null: its form could
be read at the opening) above 0.00, and is not over the ceiling. Any other bid is listed with its
status (``failed_review``, ``unpriced``, ``over_ceiling``), without a score, and never stops the
computation; only a lot without any valid price does (``no_valid_price``: the evaluation ends it as
a failed tender, its report issued like one where no bid passed). Subjective
items are averaged over the committee (optionally trimmed); objective items must be the same on
every expert's sheet. Totals rank descending (evaluated prices ascending), then by the lot's
ordered tie-breakers (:class:`TieBreaker`); bids still equal share a rank and are marked ``tied``:
the order among them is not decided here, and a tie across the last recommended place leaves those
bids ``undecided`` instead of choosing one.

Rounding (:class:`Rounding`, frozen too): S, B, D, B / P and the committee's mean of an item are
exact rationals (:class:`fractions.Fraction`), and every published score (price score, each item's
committee score) is rounded once, at the end, to ``places`` with ``mode``, as the law's worked
examples do: an exact half (29.375) goes the way the mode says, however long the decimals of S or
D (1173333.33...) are. The printed items add up to the printed total. S, B and D stay exact by
default (``intermediate_places=None``); a lot that rounds them sets ``intermediate_places`` and
each is then rounded, by ``mode``, before the next step uses it. An intermediate is written
(:func:`exact_text`) as a plain decimal when it terminates and as an exact fraction ``"p/q"`` in
lowest terms when it does not ("3520000/3"), never as a truncated decimal. Sums of decimal scores
run in a fixed decimal context (34 digits, where they are exact), never the caller's, and numbers
arrive as decimal strings, never floats: the same record always gives the same result, whatever
the order of its bids and sheets (:func:`recompute`).

The deviation check (87号令 Art. 64, :func:`deviations`) returns flags with their evidence: an
expert's sheet that does not add up to its stated total (``sum_error``), a score outside
[0, max] of its item (``out_of_range``), a missing item score (``missing``), experts disagreeing on
an objective item (``objective_inconsistent``), and a subjective score more than the lot's
threshold from the committee mean of that item after the lot's expert trim (``abnormal``):
|x - m| > t x m, which for m = 0 flags every non-zero score (:func:`abnormal_scores` says why the
base is trimmed).

Money (the ceiling, a bid's price, an adjustment) is checked by bidroom.money's one format
(``"3650000.00"``: at most 15 digits and 2 decimals, no sign but an adjustment's "-", no exponent,
no white space); every other number is a plain decimal string (or a JSON integer) with at most 30
digits before the point and 40 after it; K is what the opening can draw: [0, 0.20], at most 6
decimal places.

The record (:func:`recompute`; numbers are decimal strings, times ISO 8601 with their offset)::

    {"format": "bidroom-evaluation-record", "version": 1,
     "params": {"price": {"method": "benchmark", "full": "30", "e_high": "0.2", "e_low": "0.1",
                          "trim": "drop_max_min", "trim_from": 5, "ceiling": "3800000.00"},
                "items": [{"id": "tech", "max": "40", "kind": "subjective", "part": "technical"}],
                "rounding": {"mode": "half_up", "places": 2, "intermediate_places": null},
                "tie_breakers": ["lower_price", "higher_technical", "earlier_receipt"],
                "candidates": 3, "expert_trim": "none", "expert_trim_from": 5, "threshold": "0.30"},
     "k": "0.02",
     "bids": [{"bidder": "...", "price": "3650000.00", "passed": true,
               "received_at": "2026-11-28T09:12:03+08:00", "adjustments": []}],
     "committee": ["<expert>", ...],
     "sheets": [{"expert": "...", "bidder": "...", "scores": {"tech": "31.5"}, "total": "31.5"}]}

Rules of this file: no I/O, no clock, no randomness; models (pydantic, frozen) are the record's
edge contract, results are frozen dataclasses; refusals are :class:`~bidroom.errors.ScoringError`
with one of these codes:

    record_invalid          the record or the parameters are not of the expected shape
    format_unknown          the record is not a bidroom-evaluation-record version 1
    number_invalid          a number is a float, a bool, not a plain decimal string (an
                            exponent, white space, "+"), or has more than 30 digits before the
                            point or 40 after it
    money_invalid           an amount (ceiling, price, adjustment) not in bidroom.money's format
    time_invalid            a receipt time outside years 1 .. 9999 once in UTC
    weight_invalid          the price weight W is not in (0, 1]
    weight_out_of_range     W outside its category's range (goods 30-60 %, services 10-30 %)
    coefficient_invalid     C not > 0, or E_high / E_low negative
    trim_from_invalid       trim_from too small to leave a price after trimming
    threshold_invalid       the deviation threshold is not in (0, 1]
    items_unexpected        scoring items on a lowest_evaluated lot (it gives no points)
    item_duplicate          two items with one id
    item_max_invalid        an item's maximum is not > 0
    tie_breaker_duplicate   a tie-breaker named twice
    price_invalid           a ceiling that is not > 0
    adjustment_unexpected   price adjustments on a lot that is not lowest_evaluated
    bid_duplicate           two bids from one bidder
    k_required              a benchmark computation without K
    k_unexpected            K given to a method that has none
    k_invalid               K not in [0, 0.20] (K_MAX) or with more than 6 decimal places
    no_valid_price          no bid passed the review with a price > 0 within the ceiling
    sheet_duplicate         two sheets of one expert for one bidder
    member_duplicate        the committee names a member twice
    expert_unknown          a sheet of an expert the record's committee does not name
    member_unscored         a committee member without a sheet for a ranked bid (named)
    bidder_unknown          a sheet for a bidder without a bid
    item_unknown            a sheet scores an item the lot does not have
    score_missing           a valid bid without every expert's score on every item
    score_out_of_range      a score outside [0, max] reached the totals (fix it first)
    objective_inconsistent  experts disagree on an objective item (resolve it first)
"""

from __future__ import annotations

import decimal
import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from fractions import Fraction
from typing import Annotated, Any, Literal, ParamSpec, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bidroom import money
from bidroom.errors import ScoringError

RECORD_FORMAT = "bidroom-evaluation-record"
COMPUTATION_FORMAT = "bidroom-evaluation-computation"
VERSION = 1
# Fixed, so no caller's decimal context can change a result; 34 digits is IEEE decimal128.
CONTEXT = decimal.Context(
    prec=34,
    rounding=decimal.ROUND_HALF_EVEN,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)
# 87号令 Art. 55: the price weight of goods is 30-60 %, of services 10-30 %.
WEIGHT_RANGES: Mapping[str, tuple[Decimal, Decimal]] = {
    "goods": (Decimal("0.30"), Decimal("0.60")),
    "services": (Decimal("0.10"), Decimal("0.30")),
}
# The exact arithmetic (fractions) takes any size; these bounds keep a hostile record from making
# numbers of millions of digits (1E+999999) while leaving every real amount, weight and K in.
MAX_WHOLE_DIGITS = 30
MAX_PLACES = 40
# A number's text: plain digits, an optional "-" and decimals; no exponent, sign "+", white space,
# "_" or non-ASCII digits (Decimal would take them all).
NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?", re.ASCII)
# K as the opening draws it (bidroom.tenders checks k_range by these at publication): B = S x
# (1 - K) stays within 20 % below S, K written with at most 6 decimal places.
K_MAX = Decimal("0.20")
K_SCALE = 6
EVIDENCE_PLACES = 4  # means and ratios shown in a flag's evidence (the test itself is exact)
HUNDRED = Decimal(100)
# The codes params_from_json raises for a lot's parameters (a tender passes them through).
PARAMS_CODES = frozenset(
    {
        "number_invalid",
        "weight_invalid",
        "weight_out_of_range",
        "coefficient_invalid",
        "trim_from_invalid",
        "threshold_invalid",
        "items_unexpected",
        "item_duplicate",
        "item_max_invalid",
        "tie_breaker_duplicate",
        "price_invalid",
        "money_invalid",
    }
)
# Every ScoringError code this module raises (the module docstring explains each).
CODES = frozenset(
    {
        "record_invalid",
        "format_unknown",
        "number_invalid",
        "weight_invalid",
        "weight_out_of_range",
        "coefficient_invalid",
        "trim_from_invalid",
        "threshold_invalid",
        "items_unexpected",
        "item_duplicate",
        "item_max_invalid",
        "tie_breaker_duplicate",
        "price_invalid",
        "adjustment_unexpected",
        "bid_duplicate",
        "k_required",
        "k_unexpected",
        "k_invalid",
        "no_valid_price",
        "sheet_duplicate",
        "bidder_unknown",
        "item_unknown",
        "score_missing",
        "score_out_of_range",
        "objective_inconsistent",
        "money_invalid",
        "time_invalid",
        "member_duplicate",
        "expert_unknown",
        "member_unscored",
    }
)
M = TypeVar("M", bound=BaseModel)
P = ParamSpec("P")
R = TypeVar("R")


def _exact(function: Callable[P, R]) -> Callable[P, R]:
    """Run ``function`` in :data:`CONTEXT`, whatever decimal context the caller has set."""

    @functools.wraps(function)
    def in_context(*args: P.args, **kwargs: P.kwargs) -> R:
        with decimal.localcontext(CONTEXT):
            return function(*args, **kwargs)

    return in_context


def _refuse(code: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(code, message)


def text(value: Decimal) -> str:
    """A Decimal as plain text, never in exponent form (``"29.50"``, ``"-5"``)."""
    return format(value, "f")


def exact_text(value: Fraction) -> str:
    """An exact rational as text: a plain decimal when it terminates (``"3.125"``, ``"-5"``),
    else the fraction in lowest terms (``"3520000/3"``); never a rounded tail."""
    denominator, twos, fives = value.denominator, 0, 0
    while denominator % 2 == 0:
        denominator, twos = denominator // 2, twos + 1
    while denominator % 5 == 0:
        denominator, fives = denominator // 5, fives + 1
    if denominator != 1:
        return f"{value.numerator}/{value.denominator}"
    places = max(twos, fives)
    scaled = value.numerator * 10**places // value.denominator  # exact: 10**places divides
    while places > 0 and scaled % 10 == 0:
        scaled, places = scaled // 10, places - 1
    return text(_scaled(scaled, places))


def _scaled(units: int, places: int) -> Decimal:
    """``units`` x 10**-places as a Decimal, exactly (no context: any number of digits)."""
    return Decimal((1 if units < 0 else 0, tuple(int(d) for d in str(abs(units))), -places))


def _rational(value: Decimal | Fraction) -> Fraction:
    return value if isinstance(value, Fraction) else Fraction(value)


def round_exact(value: Decimal | Fraction, places: int, mode: RoundingMode) -> Decimal:
    """``value`` rounded once to ``places`` by ``mode``, from its exact value: half_up takes a
    half away from zero (四舍五入), half_even to the even neighbour, down toward zero."""
    exact = _rational(value) * 10**places
    magnitude = abs(exact)
    whole, rest = divmod(magnitude.numerator, magnitude.denominator)
    remainder = Fraction(rest, magnitude.denominator)
    half = Fraction(1, 2)
    if mode is RoundingMode.HALF_UP:
        whole += remainder >= half
    elif mode is RoundingMode.HALF_EVEN:
        whole += remainder > half or (remainder == half and whole % 2 == 1)
    return _scaled(-whole if exact < 0 else whole, places)


def _decimal(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise _refuse("number_invalid", 'numbers are decimal strings like "0.30", never floats')
    if isinstance(value, str) and NUMBER.fullmatch(value) is None:
        raise _refuse(
            "number_invalid",
            f"{value[:40]!r} is not a plain decimal (digits, an optional - and decimal point; "
            "no exponent, no white space)",
        )
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise _refuse("number_invalid", f"{value!r} is not a decimal number") from None
    if not number.is_finite():
        raise _refuse("number_invalid", "numbers are finite")
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    if number and (number.adjusted() >= MAX_WHOLE_DIGITS or exponent < -MAX_PLACES):
        raise _refuse(
            "number_invalid",
            f"numbers have at most {MAX_WHOLE_DIGITS} digits before the point "
            f"and {MAX_PLACES} after it",
        )
    return number


Dec = Annotated[Decimal, BeforeValidator(_decimal), PlainSerializer(text, return_type=str)]


def _as_text(value: object) -> object:
    """A Decimal built in process is checked by its plain text; JSON brings strings."""
    return text(value) if isinstance(value, Decimal) and value.is_finite() else value


def _money(value: object) -> Decimal:
    amount = money.parse(_as_text(value))
    if amount is None:
        raise _refuse(
            "money_invalid", f"an amount is {money.DESCRIPTION} (docs/evaluation.md, Money)"
        )
    return amount


def _signed_money(value: object) -> Decimal:
    amount = money.parse(_as_text(value), signed=True)
    if amount is None:
        raise _refuse("money_invalid", f"an adjustment is {money.DESCRIPTION}, or - one")
    return amount


Money = Annotated[Decimal, BeforeValidator(_money), PlainSerializer(text, return_type=str)]
SignedMoney = Annotated[
    Decimal, BeforeValidator(_signed_money), PlainSerializer(text, return_type=str)
]


# parameters, frozen at publication ------------------------------------------------------------


class RoundingMode(StrEnum):
    HALF_UP = "half_up"  # 四舍五入, the default
    HALF_EVEN = "half_even"
    DOWN = "down"  # truncate toward zero

    @property
    def decimal(self) -> str:
        return _MODES[self]


_MODES = {
    RoundingMode.HALF_UP: decimal.ROUND_HALF_UP,
    RoundingMode.HALF_EVEN: decimal.ROUND_HALF_EVEN,
    RoundingMode.DOWN: decimal.ROUND_DOWN,
}


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Rounding(_Frozen):
    """How scores are rounded: ``places`` for every published score, ``intermediate_places`` for
    S, B and D (None: kept exact)."""

    mode: RoundingMode = RoundingMode.HALF_UP
    places: int = Field(default=2, ge=0, le=6)
    intermediate_places: int | None = Field(default=None, ge=0, le=12)

    def score(self, value: Decimal | Fraction) -> Decimal:
        """A published score: the exact value rounded once to ``places``."""
        return round_exact(value, self.places, self.mode)

    def intermediate(self, value: Fraction) -> Fraction:
        """S, B or D: exact, or rounded to ``intermediate_places`` when the lot says so."""
        if self.intermediate_places is None:
            return value
        return Fraction(round_exact(value, self.intermediate_places, self.mode))


class Trim(StrEnum):
    """How S drops extreme prices: only when at least ``trim_from`` prices are valid (default 5),
    below that the plain mean ("drop none below 5").

    - ``none``: the plain mean of every valid price
    - ``drop_max_min``: the highest and the lowest price dropped (one each)
    - ``drop_two_each``: the two highest and the two lowest dropped
    Equal prices count one by one: of two equal highest prices, one is dropped.
    """

    NONE = "none"
    DROP_MAX_MIN = "drop_max_min"
    DROP_TWO_EACH = "drop_two_each"

    @property
    def each(self) -> int:
        return {Trim.NONE: 0, Trim.DROP_MAX_MIN: 1, Trim.DROP_TWO_EACH: 2}[self]


class _PriceMethod(_Frozen):
    ceiling: Money | None = None  # 最高限价: a price above it is not valid

    @field_validator("ceiling")
    @classmethod
    def _positive_ceiling(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and value <= 0:
            raise _refuse("price_invalid", "the ceiling is a positive amount")
        return value

    @property
    def full_marks(self) -> Decimal | None:
        return None


class LowPrice(_PriceMethod):
    """低价优先: score = B / P x W x 100, B the lowest valid price; ``category`` (goods or
    services) asks for W within its statutory range."""

    method: Literal["low_price"] = "low_price"
    weight: Dec
    category: Literal["goods", "services"] | None = None

    @model_validator(mode="after")
    def _weight(self) -> LowPrice:
        if not 0 < self.weight <= 1:
            raise _refuse("weight_invalid", "the price weight W is in (0, 1], e.g. 0.30")
        if self.category is not None:
            low, high = WEIGHT_RANGES[self.category]
            if not low <= self.weight <= high:
                raise _refuse(
                    "weight_out_of_range",
                    f"the price weight of {self.category} is {text(low)} .. {text(high)}",
                )
        return self

    @property
    def full_marks(self) -> Decimal:
        return self.weight * HUNDRED


class Benchmark(_PriceMethod):
    """基准价/偏差率: C (``full``) minus |D| x E per 1 % of deviation from B = S x (1 - K)."""

    method: Literal["benchmark"] = "benchmark"
    full: Dec
    e_high: Dec
    e_low: Dec
    trim: Trim = Trim.DROP_MAX_MIN
    trim_from: int = 5

    @model_validator(mode="after")
    def _coefficients(self) -> Benchmark:
        if self.full <= 0 or self.e_high < 0 or self.e_low < 0:
            raise _refuse("coefficient_invalid", "C is > 0, E_high and E_low are >= 0")
        if self.trim_from < 2 * self.trim.each + 1:
            raise _refuse(
                "trim_from_invalid",
                f"{self.trim.value} needs trim_from >= {2 * self.trim.each + 1}",
            )
        return self

    @property
    def full_marks(self) -> Decimal:
        return self.full


class LowestEvaluated(_PriceMethod):
    """经评审的最低投标价法: no points; the evaluated prices rank ascending."""

    method: Literal["lowest_evaluated"] = "lowest_evaluated"


PriceMethod = Annotated[LowPrice | Benchmark | LowestEvaluated, Field(discriminator="method")]


class Item(_Frozen):
    """A scoring item (评分因素): its maximum, subjective or objective, technical or commercial
    (the ``higher_technical`` tie-breaker sums the technical ones)."""

    id: str = Field(min_length=1, max_length=64)
    max: Dec
    kind: Literal["subjective", "objective"] = "subjective"
    part: Literal["technical", "commercial"] = "technical"

    @field_validator("max")
    @classmethod
    def _max(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise _refuse("item_max_invalid", "an item's maximum is > 0")
        return value


class TieBreaker(StrEnum):
    """The lot's tie rule, applied in the order given after the total (or evaluated price)."""

    LOWER_PRICE = "lower_price"  # the bid price, ascending
    HIGHER_TECHNICAL = "higher_technical"  # the sum of the technical items, descending
    EARLIER_RECEIPT = "earlier_receipt"  # the receipt time at the platform, ascending


DEFAULT_TIE_BREAKERS = (
    TieBreaker.LOWER_PRICE,
    TieBreaker.HIGHER_TECHNICAL,
    TieBreaker.EARLIER_RECEIPT,
)


class Params(_Frozen):
    """Everything about the computation a lot freezes at publication."""

    price: PriceMethod
    items: tuple[Item, ...] = ()
    rounding: Rounding = Rounding()
    tie_breakers: tuple[TieBreaker, ...] = DEFAULT_TIE_BREAKERS
    candidates: int = Field(default=3, ge=1, le=100)
    expert_trim: Trim = Trim.NONE  # trimmed averaging of subjective items (some lots: >= 5)
    expert_trim_from: int = 5
    threshold: Dec = Decimal("0.30")  # the deviation check's "more than 30 % from the mean"

    @model_validator(mode="after")
    def _consistent(self) -> Params:
        if self.price.method == "lowest_evaluated" and self.items:
            raise _refuse("items_unexpected", "lowest_evaluated gives no points: no items")
        ids = [item.id for item in self.items]
        if len(set(ids)) != len(ids):
            raise _refuse("item_duplicate", "each item id once")
        if len(set(self.tie_breakers)) != len(self.tie_breakers):
            raise _refuse("tie_breaker_duplicate", "each tie-breaker once")
        if self.expert_trim_from < 2 * self.expert_trim.each + 1:
            raise _refuse("trim_from_invalid", "expert_trim_from leaves no score to average")
        if not 0 < self.threshold <= 1:
            raise _refuse("threshold_invalid", "the deviation threshold is in (0, 1], e.g. 0.30")
        return self


# inputs -------------------------------------------------------------------------------------


class Adjustment(_Frozen):
    """A price adjustment of the lowest evaluated price method (+ or -), with its reason."""

    amount: SignedMoney
    reason: str = Field(min_length=1, max_length=500)


class Bid(_Frozen):
    """One opened bid as the evaluation sees it: price (None when the opening could not read its
    form; a price not > 0 is kept and listed ``unpriced``), the preliminary review, receipt time."""

    bidder: str = Field(min_length=1, max_length=128)
    price: Money | None
    passed: bool = True
    received_at: AwareDatetime
    adjustments: tuple[Adjustment, ...] = ()

    @field_validator("received_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise _refuse(
                "time_invalid", "a receipt time is within years 1 .. 9999 in UTC"
            ) from None


class Sheet(_Frozen):
    """One expert's score sheet for one bidder: item scores and the total the expert stated."""

    expert: str = Field(min_length=1, max_length=128)
    bidder: str = Field(min_length=1, max_length=128)
    scores: Mapping[str, Dec]
    total: Dec | None = None


class Record(_Frozen):
    """What the computation is recomputed from: parameters, K, bids, the committee (the seated
    members when the sheets were checked; None in a record written before it was kept) and
    score sheets."""

    format: Literal["bidroom-evaluation-record"] = "bidroom-evaluation-record"
    version: Literal[1] = 1
    params: Params
    k: Dec | None = None
    bids: tuple[Bid, ...]
    committee: tuple[Annotated[str, Field(min_length=1, max_length=128)], ...] | None = None
    sheets: tuple[Sheet, ...] = ()

    @model_validator(mode="after")
    def _roster(self) -> Record:
        if self.committee is None:
            return self
        if len(set(self.committee)) != len(self.committee):
            raise _refuse("member_duplicate", "each committee member once")
        outside = sorted({s.expert for s in self.sheets} - set(self.committee))
        if outside:
            raise _refuse(
                "expert_unknown", f"sheets of experts not on the committee: {', '.join(outside)}"
            )
        return self


def _validated(model: type[M], data: Any) -> M:
    """``data`` as ``model``, a pydantic refusal turned into a ScoringError with its code."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        first = errors[0]
        code = first["type"] if first["type"] in CODES else "record_invalid"
        if first["loc"][:1] in (("format",), ("version",)):
            code = "format_unknown"
        where = ".".join(str(part) for part in first["loc"])
        detail = {"errors": [{**e, "loc": [str(p) for p in e["loc"]]} for e in errors]}
        raise ScoringError(f"{where}: {first['msg']}", code=code, detail=detail) from exc


def params_from_json(data: Any) -> Params:
    """The lot's frozen parameters from their JSON form; refusals are ScoringErrors."""
    return _validated(Params, data)


def record_from_json(data: Any) -> Record:
    """A record from its JSON form (numbers as decimal strings); refusals are ScoringErrors."""
    return _validated(Record, data)


# price scores -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trimmed:
    """A (trimmed) mean, exact, with the values kept and dropped, all in ascending order."""

    mean: Fraction
    kept: tuple[Decimal, ...]
    dropped: tuple[Decimal, ...]


@_exact
def trimmed_mean(values: Iterable[Decimal], trim: Trim, trim_from: int = 5) -> Trimmed:
    """The mean of ``values`` after dropping ``trim.each`` from both ends if there are at least
    ``trim_from`` of them; exact (a rational)."""
    ordered = sorted(values)
    if not ordered:
        raise ScoringError("no value to average", code="no_valid_price")
    each = trim.each if len(ordered) >= max(trim_from, 2 * trim.each + 1) else 0
    kept = tuple(ordered[each : len(ordered) - each])
    dropped = tuple(ordered[:each] + ordered[len(ordered) - each :])
    units, places = as_units(kept)
    return Trimmed(Fraction(sum(units), len(kept) * 10**places), kept, dropped)


def as_units(values: Sequence[Decimal]) -> tuple[list[int], int]:
    """``values`` as integers of one scale, exactly: (units, places), each value being its unit
    x 10**-places (no decimal context: integer sums and products stay exact and fast)."""
    places = max([0, *(-int(v.as_tuple().exponent) for v in values)])
    return [int(v.scaleb(places, _UNLIMITED)) for v in values], places


# Shifting a Decimal's exponent in this context never rounds (and would raise if it did).
_UNLIMITED = decimal.Context(
    prec=decimal.MAX_PREC,
    Emax=decimal.MAX_EMAX,
    Emin=decimal.MIN_EMIN,
    traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow],
)


def low_price_score(
    lowest: Decimal, price: Decimal, weight: Decimal, rounding: Rounding
) -> Decimal:
    """B / P x W x 100 (低价优先, 87号令 Art. 55), exact, rounded once."""
    return rounding.score(Fraction(lowest) / Fraction(price) * Fraction(weight) * 100)


def benchmark_price(mean: Fraction, k: Decimal, rounding: Rounding) -> Fraction:
    """B = S x (1 - K) (基准价), exact unless the lot rounds intermediates."""
    return rounding.intermediate(mean * (1 - Fraction(k)))


def deviation(price: Decimal, benchmark: Fraction, rounding: Rounding) -> Fraction:
    """D = (P - B) / B x 100, in percent (偏差率), exact unless the lot rounds intermediates."""
    return rounding.intermediate((Fraction(price) - benchmark) / benchmark * 100)


def benchmark_score(rate: Fraction, method: Benchmark, rounding: Rounding) -> Decimal:
    """C - |D| x E, E_high above B and E_low below, never below 0: exact, rounded once."""
    slope = Fraction(method.e_high if rate > 0 else method.e_low)
    raw = Fraction(method.full) - abs(rate) * slope
    return rounding.score(max(raw, Fraction(0)))


@dataclass(frozen=True)
class PriceLine:
    """One bid's price result; ``status`` is valid, failed_review, unpriced or over_ceiling
    (:func:`status`), and an invalid bid has neither deviation, score nor evaluated price."""

    bidder: str
    price: Decimal | None
    status: str
    evaluated: Decimal | None = None  # lowest_evaluated: the price plus its adjustments
    deviation: Fraction | None = None  # benchmark: D in %, exact (or as the lot rounds it)
    score: Decimal | None = None  # low_price, benchmark


@dataclass(frozen=True)
class PriceResult:
    method: str
    lines: tuple[PriceLine, ...]  # by bidder
    lowest: Decimal | None = None  # low_price: B
    mean: Trimmed | None = None  # benchmark: S
    k: Decimal | None = None
    benchmark: Fraction | None = None  # benchmark: B, exact (or as the lot rounds it)

    def line(self, bidder: str) -> PriceLine:
        return next(line for line in self.lines if line.bidder == bidder)

    @property
    def valid(self) -> tuple[PriceLine, ...]:
        return tuple(line for line in self.lines if line.status == "valid")


STATUSES = ("valid", "failed_review", "unpriced", "over_ceiling")


def status(passed: bool, price: Decimal | None, ceiling: Decimal | None) -> str:
    """Whether a bid's price is valid, and if not the first reason: the review failed it, it has
    no price above 0.00 (its form unread at the opening, or 0.00), or it is over the ceiling."""
    if not passed:
        return "failed_review"
    if price is None or price <= 0:
        return "unpriced"
    if ceiling is not None and price > ceiling:
        return "over_ceiling"
    return "valid"


def _status(bid: Bid, ceiling: Decimal | None) -> str:
    return status(bid.passed, bid.price, ceiling)


def _price_of(bid: Bid) -> Decimal:
    assert bid.price is not None  # a valid bid's
    return bid.price


def _valid_prices(method: PriceMethod, bids: Sequence[Bid]) -> list[Decimal]:
    prices = [_price_of(b) for b in bids if _status(b, method.ceiling) == "valid"]
    if not prices:
        raise ScoringError(
            "no bid passed the review with a price within the ceiling: there is no valid price",
            code="no_valid_price",
            detail={
                "bids": len(bids),
                "ceiling": None if method.ceiling is None else text(method.ceiling),
            },
        )
    return prices


@_exact
def price_scores(
    method: PriceMethod, bids: Sequence[Bid], k: Decimal | None, rounding: Rounding
) -> PriceResult:
    """Every bid's price result under ``method``; K only (and always) for benchmark."""
    bids = _checked_bids(method, bids)
    _check_k(method, k)
    if isinstance(method, LowPrice):
        return _low_price(method, bids, rounding)
    if isinstance(method, Benchmark):
        assert k is not None  # _check_k
        return _benchmark(method, bids, k, rounding)
    return _lowest_evaluated(method, bids)


def _checked_bids(method: PriceMethod, bids: Sequence[Bid]) -> list[Bid]:
    names = [b.bidder for b in bids]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ScoringError(
            "two bids from one bidder", code="bid_duplicate", detail={"bidders": twice}
        )
    if not isinstance(method, LowestEvaluated) and any(b.adjustments for b in bids):
        raise ScoringError(
            "price adjustments belong to the lowest evaluated price method",
            code="adjustment_unexpected",
        )
    return sorted(bids, key=lambda b: b.bidder)


def _check_k(method: PriceMethod, k: Decimal | None) -> None:
    if not isinstance(method, Benchmark):
        if k is not None:
            raise ScoringError(f"{method.method} has no K", code="k_unexpected")
        return
    if k is None:
        raise ScoringError(
            "the benchmark method needs K from the opening's draw", code="k_required"
        )
    places = -int(k.as_tuple().exponent)
    if not 0 <= k <= K_MAX or places > K_SCALE:
        raise ScoringError(
            f"K is in [0, {text(K_MAX)}] with at most {K_SCALE} decimal places, as the opening "
            "draws it from a published k_range",
            code="k_invalid",
            detail={"k": text(k)[:60]},
        )


def _low_price(method: LowPrice, bids: Sequence[Bid], rounding: Rounding) -> PriceResult:
    lowest = min(_valid_prices(method, bids))
    lines = []
    for bid in bids:
        state = _status(bid, method.ceiling)
        if state != "valid":
            lines.append(PriceLine(bid.bidder, bid.price, state))
            continue
        score = low_price_score(lowest, _price_of(bid), method.weight, rounding)
        lines.append(PriceLine(bid.bidder, bid.price, state, score=score))
    return PriceResult(method.method, tuple(lines), lowest=lowest)


def _benchmark(
    method: Benchmark, bids: Sequence[Bid], k: Decimal, rounding: Rounding
) -> PriceResult:
    mean = trimmed_mean(_valid_prices(method, bids), method.trim, method.trim_from)
    s = rounding.intermediate(mean.mean)
    b = benchmark_price(s, k, rounding)
    lines = []
    for bid in bids:
        state = _status(bid, method.ceiling)
        if state != "valid":
            lines.append(PriceLine(bid.bidder, bid.price, state))
            continue
        rate = deviation(_price_of(bid), b, rounding)
        score = benchmark_score(rate, method, rounding)
        lines.append(PriceLine(bid.bidder, bid.price, state, deviation=rate, score=score))
    shown = Trimmed(s, mean.kept, mean.dropped)
    return PriceResult(method.method, tuple(lines), mean=shown, k=k, benchmark=b)


def _lowest_evaluated(method: LowestEvaluated, bids: Sequence[Bid]) -> PriceResult:
    _valid_prices(method, bids)
    lines = []
    for bid in bids:
        state = _status(bid, method.ceiling)
        if state != "valid":
            lines.append(PriceLine(bid.bidder, bid.price, state))
            continue
        evaluated = sum((a.amount for a in bid.adjustments), _price_of(bid))
        lines.append(PriceLine(bid.bidder, bid.price, state, evaluated=evaluated))
    return PriceResult(method.method, tuple(lines))


# item scores and totals ---------------------------------------------------------------------


@dataclass(frozen=True)
class ItemScore:
    """The committee's score of one item for one bidder, from each expert's score."""

    bidder: str
    item: str
    scores: tuple[tuple[str, Decimal], ...]  # (expert, score), by expert
    average: Trimmed
    score: Decimal  # rounded: what the report prints and the total adds


@dataclass(frozen=True)
class Total:
    bidder: str
    price: Decimal  # the bid price
    technical: Decimal  # the sum of the technical items
    items: Decimal  # the sum of every item
    price_score: Decimal | None  # None for lowest_evaluated
    total: Decimal | None  # items + price score; None for lowest_evaluated
    evaluated: Decimal | None  # lowest_evaluated only
    received_at: datetime  # for the earlier_receipt tie-breaker


def _index_sheets(
    params: Params, sheets: Sequence[Sheet], bidders: set[str]
) -> dict[tuple[str, str], Sheet]:
    index: dict[tuple[str, str], Sheet] = {}
    known = {item.id for item in params.items}
    for sheet in sheets:
        if sheet.bidder not in bidders:
            raise ScoringError(
                f"a sheet for {sheet.bidder!r}, who has no bid",
                code="bidder_unknown",
                detail={"expert": sheet.expert, "bidder": sheet.bidder},
            )
        unknown = sorted(set(sheet.scores) - known)
        if unknown:
            raise ScoringError(
                f"the sheet scores items the lot does not have: {', '.join(unknown)}",
                code="item_unknown",
                detail={"expert": sheet.expert, "bidder": sheet.bidder, "items": unknown},
            )
        if (sheet.expert, sheet.bidder) in index:
            raise ScoringError(
                "two sheets of one expert for one bidder",
                code="sheet_duplicate",
                detail={"expert": sheet.expert, "bidder": sheet.bidder},
            )
        index[(sheet.expert, sheet.bidder)] = sheet
    return index


@_exact
def item_scores(
    params: Params, sheets: Sequence[Sheet], bidders: Iterable[str]
) -> tuple[ItemScore, ...]:
    """The committee's score of every item for every bidder in ``bidders`` (the valid bids;
    sheets of other bidders are not counted).

    Every expert who handed in any sheet must have scored every item of every such bidder; the
    scores must be in range and the objective items agreed (the deviation check shows where not).
    """
    index = _index_sheets(params, sheets, {s.bidder for s in sheets})
    experts = sorted({s.expert for s in sheets})
    bidders = sorted(set(bidders))
    if params.items and bidders and not experts:
        raise ScoringError("no score sheet at all", code="score_missing", detail={})
    result = []
    for bidder in bidders:
        for item in params.items:
            scores = tuple((e, _score_of(index, e, bidder, item)) for e in experts)
            result.append(_item_score(params, bidder, item, scores))
    return tuple(result)


def _score_of(
    index: Mapping[tuple[str, str], Sheet], expert: str, bidder: str, item: Item
) -> Decimal:
    where = {"expert": expert, "bidder": bidder, "item": item.id}
    sheet = index.get((expert, bidder))
    if sheet is None or item.id not in sheet.scores:
        raise ScoringError(
            f"{expert} has no score of {item.id} for {bidder}", code="score_missing", detail=where
        )
    score = sheet.scores[item.id]
    if not 0 <= score <= item.max:
        raise ScoringError(
            f"{expert}'s score of {item.id} for {bidder} is outside 0 .. {text(item.max)}",
            code="score_out_of_range",
            detail={**where, "score": text(score), "max": text(item.max)},
        )
    return score


def _item_score(
    params: Params, bidder: str, item: Item, scores: tuple[tuple[str, Decimal], ...]
) -> ItemScore:
    values = [score for _, score in scores]
    if item.kind == "objective":
        if len(set(values)) > 1:
            raise ScoringError(
                f"the experts disagree on the objective item {item.id} for {bidder}",
                code="objective_inconsistent",
                detail={
                    "bidder": bidder,
                    "item": item.id,
                    "scores": {e: text(s) for e, s in scores},
                },
            )
        average = trimmed_mean(values, Trim.NONE)
    else:
        average = trimmed_mean(values, params.expert_trim, params.expert_trim_from)
    return ItemScore(bidder, item.id, scores, average, params.rounding.score(average.mean))


@_exact
def totals(
    params: Params,
    price: PriceResult,
    items: Sequence[ItemScore],
    received: Mapping[str, datetime],
) -> tuple[Total, ...]:
    """Each valid bid's total: its items' committee scores plus its price score; ``received``
    maps each bidder to the receipt time of its bid."""
    technical = {i.id for i in params.items if i.part == "technical"}
    result = []
    for line in price.valid:
        mine = [s for s in items if s.bidder == line.bidder]
        tech = sum((s.score for s in mine if s.item in technical), Decimal(0))
        summed = sum((s.score for s in mine), Decimal(0))
        total = None if line.score is None else summed + line.score
        assert line.price is not None  # a valid line's
        result.append(
            Total(
                line.bidder,
                line.price,
                tech,
                summed,
                line.score,
                total,
                line.evaluated,
                received[line.bidder],
            )
        )
    return tuple(result)


# ranking ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    """A bid's place: bids with equal keys share the rank and are ``tied`` (order undecided)."""

    bidder: str
    rank: int
    tied: bool
    keys: tuple[tuple[str, str], ...]  # (criterion, value) in the order applied


@dataclass(frozen=True)
class Ranking:
    standings: tuple[Standing, ...]  # by rank, then (only for a stable listing) by bidder
    recommended: tuple[str, ...]  # the candidates the ranking decides, best first
    undecided: tuple[str, ...]  # a tie across the last recommended place: the lot's rule decides


def _value(total: Total, criterion: str) -> Decimal | datetime:
    values: Mapping[str, Decimal | datetime | None] = {
        "total": total.total,
        "evaluated_price": total.evaluated,
        TieBreaker.LOWER_PRICE: total.price,
        TieBreaker.HIGHER_TECHNICAL: total.technical,
        TieBreaker.EARLIER_RECEIPT: total.received_at,
    }
    value = values[criterion]
    assert value is not None
    return value


_HIGHER_FIRST = frozenset({"total", TieBreaker.HIGHER_TECHNICAL})


def _key(total: Total, criteria: Sequence[str]) -> tuple[Decimal | datetime, ...]:
    """The criteria's values oriented so that smaller is better."""
    values = [_value(total, c) for c in criteria]
    return tuple(
        -v if c in _HIGHER_FIRST and isinstance(v, Decimal) else v
        for c, v in zip(criteria, values, strict=True)
    )


@_exact
def rank(totals: Sequence[Total], tie_breakers: Sequence[TieBreaker], candidates: int) -> Ranking:
    """Rank by total (descending) or, without points, by evaluated price (ascending), then by the
    tie-breakers in order; bids equal on all of them share a rank, ``tied``."""
    primary = "total" if any(t.total is not None for t in totals) else "evaluated_price"
    criteria = (primary, *tie_breakers)
    groups: list[list[Total]] = []
    for total in sorted(totals, key=lambda t: (_key(t, criteria), t.bidder)):
        if groups and _key(groups[-1][0], criteria) == _key(total, criteria):
            groups[-1].append(total)
        else:
            groups.append([total])
    return _ranking(groups, criteria, candidates)


def _ranking(
    groups: Sequence[Sequence[Total]], criteria: Sequence[str], candidates: int
) -> Ranking:
    standings: list[Standing] = []
    recommended: list[str] = []
    undecided: list[str] = []
    for group in groups:
        place = len(standings) + 1
        names = [t.bidder for t in group]
        if place + len(group) - 1 <= candidates:
            recommended.extend(names)
        elif place <= candidates:
            undecided.extend(names)
        for total in group:
            keys = tuple((c, _text_of(_value(total, c))) for c in criteria)
            standings.append(Standing(total.bidder, place, len(group) > 1, keys))
    return Ranking(tuple(standings), tuple(recommended), tuple(undecided))


def _text_of(value: Decimal | datetime) -> str:
    return text(value) if isinstance(value, Decimal) else value.astimezone(UTC).isoformat()


# the deviation check (87号令 Art. 64) ----------------------------------------------------------

FLAG_KINDS = ("sum_error", "out_of_range", "missing", "objective_inconsistent", "abnormal")


@dataclass(frozen=True)
class Flag:
    """A finding of the deviation check, with its evidence (JSON values); ``expert`` is None for
    a disagreement of the committee (objective_inconsistent), ``item`` None for a sheet's sum."""

    kind: str
    bidder: str
    expert: str | None
    item: str | None
    evidence: Mapping[str, Any]

    def sort_key(self) -> tuple[int, str, str, str]:
        return (FLAG_KINDS.index(self.kind), self.bidder, self.item or "", self.expert or "")


@_exact
def sum_errors(sheets: Iterable[Sheet]) -> tuple[Flag, ...]:
    """Sheets whose item scores do not add up to the total the expert stated."""
    flags = []
    for sheet in sheets:
        summed = sum(sheet.scores.values(), Decimal(0))
        if sheet.total is not None and summed != sheet.total:
            evidence = {"sum": text(summed), "total": text(sheet.total)}
            flags.append(Flag("sum_error", sheet.bidder, sheet.expert, None, evidence))
    return _sorted(flags)


@_exact
def out_of_range(items: Sequence[Item], sheets: Iterable[Sheet]) -> tuple[Flag, ...]:
    """Scores outside [0, max] of their item."""
    flags = []
    for sheet in sheets:
        for item in items:
            score = sheet.scores.get(item.id)
            if score is not None and not 0 <= score <= item.max:
                evidence = {"score": text(score), "min": "0", "max": text(item.max)}
                flags.append(Flag("out_of_range", sheet.bidder, sheet.expert, item.id, evidence))
    return _sorted(flags)


def missing_scores(items: Sequence[Item], sheets: Sequence[Sheet]) -> tuple[Flag, ...]:
    """Items an expert has not scored for a bidder some expert scored (a missing sheet too)."""
    index = {(s.expert, s.bidder): s for s in sheets}
    flags = []
    for expert in sorted({s.expert for s in sheets}):
        for bidder in sorted({s.bidder for s in sheets}):
            sheet = index.get((expert, bidder))
            for item in items:
                if sheet is None or item.id not in sheet.scores:
                    evidence = {"sheet": sheet is not None}
                    flags.append(Flag("missing", bidder, expert, item.id, evidence))
    return _sorted(flags)


def objective_inconsistencies(items: Sequence[Item], sheets: Sequence[Sheet]) -> tuple[Flag, ...]:
    """Objective items the experts scored differently for one bidder."""
    flags = []
    for bidder, item, scores in _by_item(items, sheets, "objective"):
        if len({score for _, score in scores}) > 1:
            evidence = {"scores": {e: text(s) for e, s in scores}}
            flags.append(Flag("objective_inconsistent", bidder, None, item.id, evidence))
    return _sorted(flags)


@_exact
def abnormal_scores(
    items: Sequence[Item],
    sheets: Sequence[Sheet],
    threshold: Decimal,
    trim: Trim = Trim.NONE,
    trim_from: int = 5,
) -> tuple[Flag, ...]:
    """Subjective scores more than ``threshold`` (0.30 = 30 %) from the base m of the item:
    |x - m| > t x |m|, exactly. The base is the committee's mean of the item after the lot's
    expert trim (``trim`` from ``trim_from`` scores: the mean the item's committee score is
    rounded from), so one extreme score does not drag the base towards itself and flag the
    others: 10/10/10/13/30 under drop_max_min has m = 11 and flags only the 30 (the untrimmed
    mean 14.6 would flag four of five). With m = 0 every non-zero score is flagged (its ratio is
    then null)."""
    flags = []
    t = Fraction(threshold)
    for bidder, item, scores in _by_item(items, sheets, "subjective"):
        values = [s for _, s in scores]
        base = trimmed_mean(values, trim, trim_from).mean
        units, places = as_units(values)
        # |u / 10^p - n / d| > t x |n| / d, in integers: |u d - n 10^p| x t.d > t.n x |n| x 10^p
        bound = t.numerator * abs(base.numerator) * 10**places
        for (expert, score), unit in zip(scores, units, strict=True):
            if abs(unit * base.denominator - base.numerator * 10**places) * t.denominator > bound:
                evidence = _abnormal_evidence(score, base, threshold)
                flags.append(Flag("abnormal", bidder, expert, item.id, evidence))
    return _sorted(flags)


def _abnormal_evidence(score: Decimal, mean: Fraction, threshold: Decimal) -> dict[str, Any]:
    shown = Rounding(places=EVIDENCE_PLACES)
    ratio = None if mean == 0 else shown.score(abs(Fraction(score) - mean) / abs(mean))
    return {
        "score": text(score),
        "mean": text(shown.score(mean)),
        "ratio": None if ratio is None else text(ratio),
        "threshold": text(threshold),
    }


def _by_item(
    items: Sequence[Item], sheets: Sequence[Sheet], kind: str
) -> Iterable[tuple[str, Item, tuple[tuple[str, Decimal], ...]]]:
    """(bidder, item, the experts' scores by expert) for each bidder and item of ``kind``."""
    index: dict[tuple[str, str], list[tuple[str, Decimal]]] = {}
    for sheet in sorted(sheets, key=lambda s: (s.bidder, s.expert)):
        for item_id, score in sheet.scores.items():
            index.setdefault((sheet.bidder, item_id), []).append((sheet.expert, score))
    for bidder in sorted({s.bidder for s in sheets}):
        for item in (i for i in items if i.kind == kind):
            scores = index.get((bidder, item.id))
            if scores:
                yield bidder, item, tuple(scores)


@_exact
def deviations(params: Params, sheets: Sequence[Sheet]) -> tuple[Flag, ...]:
    """Every flag of the deviation check, in a fixed order (kind, bidder, item, expert)."""
    _index_sheets(params, sheets, {s.bidder for s in sheets})
    return _sorted(
        [
            *sum_errors(sheets),
            *out_of_range(params.items, sheets),
            *missing_scores(params.items, sheets),
            *objective_inconsistencies(params.items, sheets),
            *abnormal_scores(
                params.items, sheets, params.threshold, params.expert_trim, params.expert_trim_from
            ),
        ]
    )


def _sorted(flags: Iterable[Flag]) -> tuple[Flag, ...]:
    return tuple(sorted(flags, key=Flag.sort_key))


# the whole evaluation, and its recomputation from the record --------------------------------


@dataclass(frozen=True)
class Evaluation:
    params: Params
    price: PriceResult
    items: tuple[ItemScore, ...]
    totals: tuple[Total, ...]
    ranking: Ranking
    flags: tuple[Flag, ...]


def _unscored(committee: Sequence[str], sheets: Sequence[Sheet], ranked: Iterable[str]) -> None:
    """Refuse when a committee member has no sheet for a bid that is ranked (member_unscored)."""
    have = {(s.expert, s.bidder) for s in sheets}
    missing = {
        member: bidders
        for member in sorted(committee)
        if (bidders := sorted(b for b in ranked if (member, b) not in have))
    }
    if missing:
        named = "; ".join(f"{m} ({', '.join(b)})" for m, b in missing.items())
        raise ScoringError(
            f"committee members without a sheet for a ranked bid: {named}",
            code="member_unscored",
            detail={"missing": missing},
        )


@_exact
def evaluate(
    params: Params,
    bids: Sequence[Bid],
    sheets: Sequence[Sheet] = (),
    k: Decimal | None = None,
    committee: Sequence[str] | None = None,
) -> Evaluation:
    """Price scores, item scores, totals, ranking and the deviation flags of one lot.

    Flags do not stop the computation, but a score out of range, a missing score or an objective
    item in dispute does (``score_out_of_range``, ``score_missing``, ``objective_inconsistent``):
    they must be resolved before a total means anything. Only the sheets of valid bids (the bids
    ranked) are checked and counted: a sheet of a failed, unpriced or over-ceiling bid never
    holds up the summary. With the ``committee`` (the record's roster), a member without a sheet
    for a ranked bid is refused by name (``member_unscored``), even one who scored nothing.
    """
    price = price_scores(params.price, bids, k, params.rounding)
    names = {b.bidder for b in bids}
    _index_sheets(params, sheets, names)
    ranked = {line.bidder for line in price.valid}
    if committee is not None:
        _unscored(committee, sheets, ranked)
    flags = deviations(params, [s for s in sheets if s.bidder in ranked])
    items = item_scores(params, sheets, sorted(ranked))
    received = {b.bidder: b.received_at for b in bids}
    rows = totals(params, price, items, received)
    return Evaluation(
        params, price, items, rows, rank(rows, params.tie_breakers, params.candidates), flags
    )


@_exact
def recompute(data: Mapping[str, Any]) -> dict[str, Any]:
    """The whole computation from a record's JSON form, every intermediate value included, as
    JSON values (numbers as decimal strings): what ``bidroom evaluation recompute`` prints."""
    record = record_from_json(data)
    evaluation = evaluate(record.params, record.bids, record.sheets, record.k, record.committee)
    return evaluation_json(evaluation)


def evaluation_json(evaluation: Evaluation) -> dict[str, Any]:
    """An evaluation as JSON values, in a fixed order."""
    ranking = evaluation.ranking
    return {
        "format": COMPUTATION_FORMAT,
        "version": VERSION,
        "params": evaluation.params.model_dump(mode="json"),
        "price": _price_json(evaluation.price),
        "items": [_item_json(s) for s in evaluation.items],
        "totals": [_total_json(t) for t in evaluation.totals],
        "ranking": [_standing_json(s) for s in ranking.standings],
        "recommended": list(ranking.recommended),
        "undecided": list(ranking.undecided),
        "flags": [_flag_json(f) for f in evaluation.flags],
    }


def _opt(value: Decimal | None) -> str | None:
    return None if value is None else text(value)


def _opt_exact(value: Fraction | None) -> str | None:
    return None if value is None else exact_text(value)


def _trimmed_json(trimmed: Trimmed) -> dict[str, Any]:
    return {
        "mean": exact_text(trimmed.mean),
        "kept": [text(v) for v in trimmed.kept],
        "dropped": [text(v) for v in trimmed.dropped],
    }


def _price_json(price: PriceResult) -> dict[str, Any]:
    lines = [
        {
            "bidder": line.bidder,
            "price": _opt(line.price),
            "status": line.status,
            "evaluated": _opt(line.evaluated),
            "deviation": _opt_exact(line.deviation),
            "score": _opt(line.score),
        }
        for line in price.lines
    ]
    return {
        "method": price.method,
        "lowest": _opt(price.lowest),
        "mean": None if price.mean is None else _trimmed_json(price.mean),
        "k": _opt(price.k),
        "benchmark": _opt_exact(price.benchmark),
        "lines": lines,
    }


def _item_json(score: ItemScore) -> dict[str, Any]:
    return {
        "bidder": score.bidder,
        "item": score.item,
        "scores": [{"expert": e, "score": text(s)} for e, s in score.scores],
        "average": _trimmed_json(score.average),
        "score": text(score.score),
    }


def _total_json(total: Total) -> dict[str, Any]:
    return {
        "bidder": total.bidder,
        "price": text(total.price),
        "technical": text(total.technical),
        "items": text(total.items),
        "price_score": _opt(total.price_score),
        "total": _opt(total.total),
        "evaluated": _opt(total.evaluated),
        "received_at": _text_of(total.received_at),
    }


def _standing_json(standing: Standing) -> dict[str, Any]:
    return {
        "bidder": standing.bidder,
        "rank": standing.rank,
        "tied": standing.tied,
        "keys": [{"criterion": c, "value": v} for c, v in standing.keys],
    }


def _flag_json(flag: Flag) -> dict[str, Any]:
    return {
        "kind": flag.kind,
        "bidder": flag.bidder,
        "expert": flag.expert,
        "item": flag.item,
        "evidence": dict(flag.evidence),
    }
