"""Tenders and lots (项目与标段), pure: the spec staff publish, its checks, and what publication
derives from it (lot ids, the opening key split among custodians, the opening room's config).

No I/O here: the store, the trust store and the clock are the caller's (tender_api). Every
refusal is a TenderError whose ``code`` names the rule (docs/opening.md "Tenders and lots"):

    invalid_tender         the body is not a tender at all (missing field, wrong type)
    money_invalid          a money value is not in bidroom.money's format ("3650000.00": at most
                           15 digits and 2 decimals, no sign, exponent or white space) or is 0
    deadline_naive         a deadline without a UTC offset
    deadline_too_soon      at publication, a deadline less than BIDROOM_MIN_BID_DAYS away
    window_out_of_range    window_minutes not in 5 .. 240
    method_unknown         method not low_price | benchmark | lowest_evaluated
    k_range_required       a benchmark lot without k_range
    k_range_unexpected     a k_range on a lot that is not benchmark
    k_range_invalid        k_range is not [low, high, step] with 0 <= low < high <= 0.20
                           (K_MAX), 0 < step <= high - low, high - low a whole number of
                           steps, each value with at most 6 decimal places and no exponent
    remedy_unknown         remedy not quorum | none
    custodians_too_few     fewer than 2 custodians
    custodian_unreadable   a custodian certificate is not PEM
    custodian_duplicate    the same certificate twice
    k_out_of_range         k not in 2 .. n (n = number of custodians)
    sheet_field_unknown    a sheet field outside the catalogue
    guarantee_amount       a required guarantee without its amount
    confirm_minutes_out_of_range, silence_unknown       the record's confirmation rule
    bid_size_over_limit    max_bid_bytes over the platform's limit (BIDROOM_MAX_BID_BYTES)
    lot_number_duplicate   two lots with one number

The custody policy (docs/opening.md "Custodians"), checked at publication by
:func:`check_custody` with the custodians' verified certificates, the publishing chair and the
platform's insider organisations (BIDROOM_INSIDER_ORGANISATIONS):

    custodian_organisation_missing  a custodian certificate names no organisation (no O, no USCC)
    custodian_is_chair              a custodian is the publishing chair
    custodians_same_organisation    two custodians of one organisation (same USCC or same O)
    custodian_not_independent       k or more custodians are insiders (the chair's organisation
                                    or an insider organisation): they could open bids together

The lot's ``evaluation`` section (optional: a lot may be published for its opening alone; if
present it is complete, and frozen with the rest of the spec, K excepted, which the opening draws):

    evaluation_params_invalid   params are not bidroom.scoring parameters; the scoring module's
                                own codes for its parameters pass through as they are
                                (weight_invalid, weight_out_of_range, coefficient_invalid,
                                trim_from_invalid, threshold_invalid, items_unexpected,
                                item_duplicate, item_max_invalid, tie_breaker_duplicate,
                                price_invalid, number_invalid)
    evaluation_method_mismatch  params.price.method is not the lot's method
    evaluation_ceiling_mismatch params.price.ceiling differs from the lot's ceiling_price
    category_required           a low_price lot whose params.price names no category (goods or
                                services): 87号令 Art. 55 bounds W by it
    criteria_empty              no preliminary review criterion
    criteria_duplicate          two criteria with one id
    review_rule_unknown         review_rule not majority | unanimity
    venue_seats                 a venue with fewer than 1 seat
    venue_duplicate             a venue named twice
    committee_size              the seats total less than 3 or an even number (87号令 Art. 47
                                wants 5 or more, odd, for government procurement; tendering law
                                lots may have 3: the platform allows >= 3 and odd)
    signing_minutes_out_of_range  signing_minutes not in 1 .. 1440

:func:`evaluation_config` (the evaluation room's config from the lot and the opening record):

    record_invalid         not a bidroom-opening-record version 1 document
    record_unpublished     the record (with its publication state) is not published
    record_other_lot       the record is another lot's
    record_incomplete      no sheet, a bid not settled, or (benchmark) no K drawn
    opening_terminated     the opening was terminated: nothing to evaluate
    no_opened_bids         no bid was opened
    evaluation_missing     the lot has no evaluation section
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from cryptography import x509
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bidroom import money, scoring
from bidroom.errors import ScoringError, TenderError
from bidroom.opening import OPENED, RECORD_FORMAT, SETTLED
from ca import primitives as p
from ca import shares
from ca.organisations import organisation_keys, person_name

SHEET_FIELDS = (
    "price",
    "duration_days",
    "quality",
    "project_manager",
    "guarantee",
    "warranty_months",
    "discount_rate",
)
METHODS = ("low_price", "benchmark", "lowest_evaluated")
REMEDIES = ("quorum", "none")
SILENCES = ("consent", "refusal")
WINDOW = (5, 240)
CONFIRM = (1, 1440)
MAX_LOTS = 50
REVIEW_RULES = ("majority", "unanimity")
SIGNING = (1, 1440)
MIN_COMMITTEE = 3


def _refuse(code: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(code, message)


def _money(value: Any) -> Decimal:
    """A money value: bidroom.money's one format (a decimal string in yuan, at most 15 digits
    and 2 decimals), above 0.00."""
    amount = money.positive(value)
    if amount is None:
        raise _refuse("money_invalid", f"money is {money.DESCRIPTION}, above 0.00")
    return amount


Money = Annotated[
    Decimal, BeforeValidator(_money), PlainSerializer(lambda d: f"{d:.2f}", return_type=str)
]


def _decimal(value: Any) -> Decimal:
    """A k_range value: a decimal string in plain notation (no exponent, sign "+" or white space:
    scoring.NUMBER), as web/js/krange.js reads it too."""
    plain = isinstance(value, str) and scoring.NUMBER.fullmatch(value) is not None
    if not (plain or (isinstance(value, int) and not isinstance(value, bool))):
        raise _refuse("k_range_invalid", "k_range is three decimal strings [low, high, step]")
    return Decimal(value)


Coefficient = Annotated[
    Decimal, BeforeValidator(_decimal), PlainSerializer(lambda d: str(d), return_type=str)
]


class Guarantee(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    required: bool
    amount: Money | None = None

    @model_validator(mode="after")
    def _amount_if_required(self) -> Guarantee:
        if self.required and self.amount is None:
            raise _refuse("guarantee_amount", "a required guarantee needs its amount")
        return self


class Record(BaseModel):
    """How the opening record is confirmed: the time allowed and what silence counts as."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    confirm_minutes: int
    silence: str

    @field_validator("confirm_minutes")
    @classmethod
    def _minutes(cls, value: int) -> int:
        if not CONFIRM[0] <= value <= CONFIRM[1]:
            raise _refuse("confirm_minutes_out_of_range", "confirm_minutes is 1 .. 1440")
        return value

    @field_validator("silence")
    @classmethod
    def _silence(cls, value: str) -> str:
        if value not in SILENCES:
            raise _refuse("silence_unknown", "silence is consent or refusal")
        return value


class Criterion(BaseModel):
    """A preliminary review criterion (初步评审): pass or fail, per bidder, per expert."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=64)
    text: str = Field(min_length=1, max_length=500)


class Venue(BaseModel):
    """A venue of the committee and its seats; the main venue comes first."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    venue: str = Field(min_length=1, max_length=100)
    seats: int
    # The home cities whose experts sit at this venue (empty: any city): committee.Seats.cities.
    cities: list[str] = Field(default_factory=list, max_length=50)

    @field_validator("seats")
    @classmethod
    def _seats(cls, value: int) -> int:
        if value < 1:
            raise _refuse("venue_seats", "each venue has at least 1 seat")
        return value


class Evaluation(BaseModel):
    """How the lot is evaluated, frozen at publication (K excepted: the opening draws it).

    ``params`` are bidroom.scoring's parameters in its own JSON form (checked by
    ``scoring.params_from_json`` and kept normalised), the rest is the evaluation room's."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    params: dict[str, Any]
    criteria: list[Criterion]
    review_rule: str
    anonymous_technical: bool
    venues: list[Venue]
    signing_minutes: int = 60
    # The committee's draw (committee.Request): the specialties drawn from, whether experts who
    # live in ``local_city`` are excluded, the rest period after a draw for the same tenderer.
    specialties: list[str] = Field(default_factory=list, max_length=50)
    tenderer: str = Field(default="", max_length=200)  # 招标人: no expert of theirs is drawn
    local_city: str | None = Field(default=None, max_length=100)
    rest_days: int | None = Field(default=None, ge=1, le=3650)

    @field_validator("params", mode="before")
    @classmethod
    def _params(cls, value: Any) -> dict[str, Any]:
        try:
            params = scoring.params_from_json(value)
        except ScoringError as exc:
            code = exc.code if exc.code in scoring.PARAMS_CODES else "evaluation_params_invalid"
            raise _refuse(code, f"params: {exc.message}") from exc
        return params.model_dump(mode="json")

    @field_validator("criteria")
    @classmethod
    def _criteria(cls, value: list[Criterion]) -> list[Criterion]:
        if not value:
            raise _refuse("criteria_empty", "name at least 1 preliminary review criterion")
        ids = [c.id for c in value]
        if len(set(ids)) != len(ids):
            raise _refuse("criteria_duplicate", "each criterion id once")
        return value

    @field_validator("review_rule")
    @classmethod
    def _rule(cls, value: str) -> str:
        if value not in REVIEW_RULES:
            raise _refuse("review_rule_unknown", "review_rule is majority or unanimity")
        return value

    @field_validator("venues")
    @classmethod
    def _venues(cls, value: list[Venue]) -> list[Venue]:
        names = [v.venue for v in value]
        if len(set(names)) != len(names):
            raise _refuse("venue_duplicate", "each venue once")
        seats = sum(v.seats for v in value)
        if seats < MIN_COMMITTEE or seats % 2 == 0:
            raise _refuse(
                "committee_size", f"the committee is an odd number >= {MIN_COMMITTEE} (now {seats})"
            )
        return value

    @field_validator("signing_minutes")
    @classmethod
    def _signing(cls, value: int) -> int:
        if not SIGNING[0] <= value <= SIGNING[1]:
            raise _refuse("signing_minutes_out_of_range", "signing_minutes is 1 .. 1440")
        return value

    def scoring_params(self) -> scoring.Params:
        return scoring.params_from_json(self.params)


class LotSpec(BaseModel):
    """One lot (标段) as staff write it; frozen at publication."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    number: str = Field(pattern=r"^[A-Za-z0-9]{1,16}$")
    title: str = Field(min_length=1, max_length=300)
    ceiling_price: Money
    deadline: datetime
    sheet_fields: list[str] = Field(default_factory=lambda: ["price"])
    guarantee: Guarantee = Guarantee(required=False)
    window_minutes: int = 30
    method: str = "low_price"
    k_range: list[Coefficient] | None = None
    remedy: str = "quorum"
    custodians: list[str]
    k: int
    record: Record = Record(confirm_minutes=30, silence="consent")
    max_bid_bytes: int = Field(gt=0)
    evaluation: Evaluation | None = None

    @field_validator("deadline")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise _refuse("deadline_naive", "the deadline needs its UTC offset (+08:00, Z)")
        return value.astimezone(UTC)

    @field_validator("window_minutes")
    @classmethod
    def _window(cls, value: int) -> int:
        if not WINDOW[0] <= value <= WINDOW[1]:
            raise _refuse("window_out_of_range", "window_minutes is 5 .. 240")
        return value

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        if value not in METHODS:
            raise _refuse("method_unknown", f"method is one of {', '.join(METHODS)}")
        return value

    @field_validator("remedy")
    @classmethod
    def _remedy(cls, value: str) -> str:
        if value not in REMEDIES:
            raise _refuse("remedy_unknown", "remedy is quorum or none")
        return value

    @field_validator("sheet_fields")
    @classmethod
    def _fields(cls, value: list[str]) -> list[str]:
        unknown = [f for f in value if f not in SHEET_FIELDS]
        if unknown:
            catalogue = ", ".join(SHEET_FIELDS)
            raise _refuse("sheet_field_unknown", f"sheet fields come from {catalogue}")
        chosen = set(value) | {"price"}  # the price is always read out
        return [f for f in SHEET_FIELDS if f in chosen]

    @field_validator("custodians")
    @classmethod
    def _custodians(cls, value: list[str]) -> list[str]:
        if len(value) < 2:
            raise _refuse("custodians_too_few", "name at least 2 custodians")
        if len(value) > shares.MAX_SHARES:
            raise _refuse("k_out_of_range", f"at most {shares.MAX_SHARES} custodians")
        fingerprints = [p.fingerprint(custodian_certificate(pem)) for pem in value]
        if len(set(fingerprints)) != len(fingerprints):
            raise _refuse("custodian_duplicate", "each custodian certificate once")
        return value

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> LotSpec:
        if self.method == "benchmark" and self.k_range is None:
            raise _refuse("k_range_required", "a benchmark lot needs k_range [low, high, step]")
        if self.method != "benchmark" and self.k_range is not None:
            raise _refuse("k_range_unexpected", "k_range is for benchmark lots only")
        if self.k_range is not None:
            _check_k_range(self.k_range)
        if not 2 <= self.k <= len(self.custodians):
            raise _refuse("k_out_of_range", f"k is 2 .. {len(self.custodians)} (the custodians)")
        cap = (info.context or {}).get("max_bid_bytes")
        if cap is not None and self.max_bid_bytes > cap:
            raise _refuse("bid_size_over_limit", f"max_bid_bytes is at most {cap}")
        if self.evaluation is not None:
            _check_evaluation(self.evaluation, self.method, self.ceiling_price)
        return self

    def frozen(self) -> dict[str, Any]:
        """The spec as JSON values (money as strings, times in UTC ISO 8601)."""
        return self.model_dump(mode="json")


def check_k_range(values: Sequence[Any]) -> None:
    """The rules of a published k_range (``k_range_invalid``), from its JSON values: what
    LotSpec checks, and what web/js/krange.js checks on the tender page."""
    if not isinstance(values, list | tuple):
        raise _refuse("k_range_invalid", "k_range is [low, high, step]")
    _check_k_range([_decimal(v) for v in values])


def _check_k_range(k_range: Sequence[Decimal]) -> None:
    if len(k_range) != 3:
        raise _refuse("k_range_invalid", "k_range is [low, high, step]")
    low, high, step = k_range
    if not (0 <= low < high and 0 < step <= high - low):
        raise _refuse("k_range_invalid", "k_range needs 0 <= low < high and 0 < step <= high - low")
    if high > K_MAX:
        raise _refuse(
            "k_range_invalid",
            f"K is at most {K_MAX}: B = S x (1 - K) stays at least {1 - K_MAX} of S "
            '(a range like ["0.95", "0.99", "0.01"] is the B = S x K convention: write 1 - K)',
        )
    # K's text is written with max(scale(low), scale(step)) decimal places, never an exponent,
    # and every value of the range is drawn: docs/opening.md "The draw of K".
    if not all(-K_SCALE <= int(v.as_tuple().exponent) <= 0 for v in k_range):
        raise _refuse("k_range_invalid", f"k_range values have at most {K_SCALE} decimal places")
    if (high - low) % step != 0:
        raise _refuse("k_range_invalid", "k_range needs high - low to be a whole number of steps")


K_SCALE = scoring.K_SCALE  # at most 6 decimal places in k_range: plain notation, no exponent
# The largest K a lot may draw. B = S x (1 - K) (bidroom.scoring): K is how far the benchmark
# sits below the mean of the valid prices (下浮系数); published ranges run to a few percent, and
# past 0.20 the benchmark is no longer "near the mean" but a different rule (K = 0.95 typed for
# the B = S x K convention zeroes every price score), so publication refuses it; and the
# evaluation refuses a K beyond it too (k_invalid).
K_MAX = scoring.K_MAX


def _check_evaluation(evaluation: Evaluation, method: str, ceiling: Decimal) -> None:
    price = evaluation.params["price"]
    if price["method"] != method:
        raise _refuse(
            "evaluation_method_mismatch",
            f"params.price.method is {price['method']}, the lot's method is {method}",
        )
    stated = price.get("ceiling")
    if stated is not None and Decimal(stated) != ceiling:
        raise _refuse(
            "evaluation_ceiling_mismatch", "params.price.ceiling, if given, is the ceiling_price"
        )
    if method == "low_price" and price.get("category") is None:
        raise _refuse(
            "category_required",
            "a low_price lot names its category (goods or services): 87号令 Art. 55 bounds W by it",
        )


class TenderSpec(BaseModel):
    """A tender (项目) with its lots, as ``POST /api/tenders`` takes it."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    number: str = Field(min_length=1, max_length=100)
    title: str = Field(min_length=1, max_length=300)
    lots: list[LotSpec] = Field(min_length=1, max_length=MAX_LOTS)

    @field_validator("lots")
    @classmethod
    def _distinct(cls, value: list[LotSpec]) -> list[LotSpec]:
        numbers = [lot.number for lot in value]
        if len(set(numbers)) != len(numbers):
            raise _refuse("lot_number_duplicate", "each lot has its own number")
        return value

    def frozen(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def custodian_certificate(pem: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        raise _refuse("custodian_unreadable", "a custodian certificate is not PEM") from exc


def parse_tender(data: bytes | str | Mapping[str, Any], max_bid_bytes: int) -> TenderSpec:
    """The tender in ``data``, or TenderError with the code of the first rule it breaks."""
    context = {"max_bid_bytes": max_bid_bytes}
    try:
        if isinstance(data, bytes | str):
            return TenderSpec.model_validate_json(data, context=context)
        return TenderSpec.model_validate(data, context=context)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        first = errors[0]
        custom = first["type"] if first["type"] in _CODES else "invalid_tender"
        where = ".".join(str(part) for part in first["loc"])
        message = first["msg"] if custom != "invalid_tender" else f"{where}: {first['msg']}"
        raise TenderError(message, code=custom, detail={"at": where, "errors": errors}) from exc


_CODES = frozenset(
    {
        "money_invalid",
        "deadline_naive",
        "window_out_of_range",
        "method_unknown",
        "k_range_required",
        "k_range_unexpected",
        "k_range_invalid",
        "remedy_unknown",
        "custodians_too_few",
        "custodian_unreadable",
        "custodian_duplicate",
        "k_out_of_range",
        "sheet_field_unknown",
        "guarantee_amount",
        "confirm_minutes_out_of_range",
        "silence_unknown",
        "bid_size_over_limit",
        "lot_number_duplicate",
        "evaluation_params_invalid",
        "evaluation_method_mismatch",
        "evaluation_ceiling_mismatch",
        "category_required",
        "criteria_empty",
        "criteria_duplicate",
        "review_rule_unknown",
        "venue_seats",
        "venue_duplicate",
        "committee_size",
        "signing_minutes_out_of_range",
    }
    | scoring.PARAMS_CODES
)


def check_publishable(spec: TenderSpec, now: datetime, min_days: int) -> None:
    """Raise TenderError(deadline_too_soon) unless every deadline is ``min_days`` days away."""
    earliest = now + timedelta(days=min_days)
    for lot in spec.lots:
        if lot.deadline < earliest:
            raise TenderError(
                f"lot {lot.number}: the deadline must be at least {min_days} days after "
                "publication",
                code="deadline_too_soon",
                detail={"lot": lot.number, "earliest": earliest.isoformat()},
            )


# ids ---------------------------------------------------------------------------------------


def lot_id(tender_id: str, number: str) -> str:
    """URL-safe: the tender id is hex, the lot number [A-Za-z0-9]."""
    return f"{tender_id}-{number}"


def room_id(lot: str) -> str:
    return f"opening-{lot}"


# publication -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Custodian:
    """A custodian as publication found them: registry subject, name, certificate, and the
    organisation and USCC their (verified) certificate names; ``insider`` once the custody
    policy has classed them (:func:`check_custody`)."""

    subject: str
    name: str
    certificate: x509.Certificate
    organisation: str | None = None
    uscc: str | None = None
    insider: bool = False


@dataclass(frozen=True, slots=True)
class KeySplit:
    """What a lot keeps of its opening key: the public key, commitments, one file per share."""

    opening_key: bytes  # SubjectPublicKeyInfo, DER
    fingerprint: str  # hex, ca.shares.key_fingerprint
    commitments: list[dict[str, Any]]
    files: list[tuple[str, int, bytes]]  # (custodian subject, index, share file)
    # [{"subject", "name", "organisation", "uscc", "insider", "index"}]
    custodians: list[dict[str, Any]]


def split_key(
    lot: str, k: int, custodians: Sequence[Custodian], key: p.EcPrivateKey | None = None
) -> KeySplit:
    """Make the lot's opening key (P-256) and split it k-of-n; the private key is dropped here."""
    key = key or p.generate_ec_key()
    subjects = [c.subject for c in custodians]
    made, commitments = shares.split(key, k, len(custodians), subjects, lot)
    files = [
        (c.subject, share.index, share.to_file(c.certificate))
        for c, share in zip(custodians, made, strict=True)
    ]
    return KeySplit(
        opening_key=p.public_der(key.public_key()),
        fingerprint=shares.key_fingerprint(key.public_key()).hex(),
        commitments=[c.to_dict() for c in commitments],
        files=files,
        custodians=[
            {
                "subject": c.subject,
                "name": c.name,
                "organisation": c.organisation,
                "uscc": c.uscc,
                "insider": c.insider,
                "index": i,
            }
            for i, c in enumerate(custodians, 1)
        ],
    )


def opening_config(
    tender: TenderSpec,
    lot: str,
    spec: LotSpec,
    split: KeySplit,
) -> dict[str, Any]:
    """The opening room's config: the frozen lot spec (custodians as KeySplit.custodians, not
    certificates) plus the lot, its tender, the start time and the opening key's public parts."""
    frozen = spec.frozen()
    frozen["custodians"] = split.custodians
    return {
        **frozen,
        "lot": lot,
        "title": spec.title,
        "starts_at": spec.deadline.isoformat(),
        "tender": tender.number,
        "tender_title": tender.title,
        "opening_key": base64.b64encode(split.opening_key).decode(),
        "key_fingerprint": split.fingerprint,
        "commitments": split.commitments,
    }


# custody ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Publisher:
    """Who publishes a tender: their registry subject and the name and organisation their
    certificate gave their session (none for the operator's command line)."""

    subject: str
    name: str | None = None
    organisation: str | None = None


def _uscc_of(subject: str) -> str | None:
    """The USCC of a registry subject ``uscc:<code>`` (an organisation's certificate)."""
    return subject.removeprefix("uscc:") if subject.startswith("uscc:") else None


def insider_keys(entries: Iterable[str]) -> frozenset[str]:
    """The insider organisations' keys (BIDROOM_INSIDER_ORGANISATIONS: ``uscc:<code>`` or an
    organisation's name, as its certificates' O says it)."""
    keys: set[str] = set()
    for entry in entries:
        entry = entry.strip()
        if entry[:5].lower() == "uscc:":
            keys |= organisation_keys(None, entry[5:])
        else:
            keys |= organisation_keys(entry, None)
    return frozenset(keys)


def who(custodian: Custodian) -> dict[str, Any]:
    return {
        "subject": custodian.subject,
        "name": custodian.name,
        "organisation": custodian.organisation,
    }


def _is_publisher(
    custodian: Custodian, publisher: Publisher, publisher_keys: frozenset[str]
) -> bool:
    """The chair themself: their registry subject, or (another certificate of theirs) their
    name within their organisation."""
    if custodian.subject == publisher.subject:
        return True
    mine = person_name(publisher.name)
    same_name = mine is not None and person_name(custodian.name) == mine
    keys = organisation_keys(custodian.organisation, custodian.uscc)
    return same_name and bool(keys & publisher_keys)


def check_custody(
    lot: str,
    k: int,
    custodians: Sequence[Custodian],
    publisher: Publisher,
    insiders: Iterable[str],
) -> list[Custodian]:
    """The custody policy (docs/opening.md "Custodians"): every custodian names their
    organisation, none is the publishing chair, no two share an organisation, and fewer than
    ``k`` are insiders (of the chair's organisation or of ``insiders``), so that any ``k`` who
    could combine their shares include one from outside. The custodians, each marked insider or
    not; else TenderError with the rule's code, naming the custodian(s)."""
    publisher_keys = organisation_keys(publisher.organisation, _uscc_of(publisher.subject))
    inside = insider_keys(insiders) | publisher_keys
    marked: list[Custodian] = []
    for custodian in custodians:
        if _is_publisher(custodian, publisher, publisher_keys):
            raise TenderError(
                f"lot {lot}: custodian {custodian.name} is the chair who publishes the lot",
                code="custodian_is_chair",
                detail={"lot": lot, "custodian": who(custodian)},
            )
        keys = organisation_keys(custodian.organisation, custodian.uscc)
        if not keys:
            raise TenderError(
                f"lot {lot}: custodian {custodian.name}'s certificate names no organisation "
                "(neither O nor a USCC): the policy cannot tell whom they answer to",
                code="custodian_organisation_missing",
                detail={"lot": lot, "custodian": who(custodian)},
            )
        for earlier in marked:
            if keys & organisation_keys(earlier.organisation, earlier.uscc):
                raise TenderError(
                    f"lot {lot}: custodians {earlier.name} and {custodian.name} are of one "
                    f"organisation ({custodian.organisation or custodian.uscc}); each custodian "
                    "comes from another organisation",
                    code="custodians_same_organisation",
                    detail={"lot": lot, "custodians": [who(earlier), who(custodian)]},
                )
        marked.append(replace(custodian, insider=bool(keys & inside)))
    found = [c for c in marked if c.insider]
    if len(found) >= k:
        names = ", ".join(c.name for c in found)
        raise TenderError(
            f"lot {lot}: {len(found)} custodians ({names}) are of the trading centre or the "
            f"platform, and {k} shares open the key: they could open bids without anyone from "
            f"outside; at most {k - 1} insiders, or a larger k",
            code="custodian_not_independent",
            detail={"lot": lot, "k": k, "insiders": [who(c) for c in found]},
        )
    return marked


def custodian_of(
    custodians: Sequence[Mapping[str, Any]], subject: str, organisation: str | None
) -> Mapping[str, Any] | None:
    """The lot's custodian (as KeySplit.custodians lists them) who is this holder or of their
    organisation (their certificate's O, or the USCC of an ``uscc:`` subject), if any."""
    keys = organisation_keys(organisation, _uscc_of(subject))
    for custodian in custodians:
        theirs = organisation_keys(custodian.get("organisation"), custodian.get("uscc"))
        if custodian.get("subject") == subject or keys & theirs:
            return custodian
    return None


# evaluation --------------------------------------------------------------------------------


def _unfit(code: str, message: str, **detail: Any) -> TenderError:
    return TenderError(message, code=code, detail=detail)


def evaluation_config(
    spec: LotSpec,
    record: Mapping[str, Any],
    *,
    received_at: Mapping[str, str] | None = None,
    label_seed: str | None = None,
) -> dict[str, Any]:
    """The evaluation room's config (bidroom.evaluation.initial) from the lot's frozen spec and
    its opening's record: the opened bids (decrypted or quorum_opened, in the record's order)
    with bidder, name, status, price and the sheet's fields; K as a string from the draw (iff
    benchmark); criteria, review rule, params, anonymity, venues and signing time from the
    lot's evaluation section. The ceiling_price is the price method's ceiling unless the
    params name it.

    ``record`` is the record document (``opening.record_document``), or the room's record with
    its publication state (``{"document", ..., "published"}``), which must then be published.
    ``received_at`` (bidder -> ISO time, from the bids table) and ``label_seed`` (hex, the
    anonymous labels' random input) are the caller's: the record holds neither.
    """
    if spec.evaluation is None:
        raise _unfit("evaluation_missing", f"lot {spec.number} has no evaluation section")
    evaluation = spec.evaluation
    if "document" in record:
        if not record.get("published"):
            raise _unfit("record_unpublished", "the opening record is not published yet")
        record = record["document"]
    if record.get("format") != RECORD_FORMAT or record.get("version") != 1:
        raise _unfit("record_invalid", f"not a {RECORD_FORMAT} version 1 document")
    lot = str(record.get("lot") or "")
    if lot.rsplit("-", 1)[-1] != spec.number:
        raise _unfit("record_other_lot", f"the record is lot {lot}'s, not {spec.number}'s")
    if (record.get("decision") or {}).get("decision") == "terminate":
        raise _unfit("opening_terminated", "the opening was terminated: nothing to evaluate")
    bids = list(record.get("bids") or ())
    unsettled = [b["bidder"] for b in bids if b.get("status") not in SETTLED]
    if unsettled:
        raise _unfit("record_incomplete", "a bid is not settled", bidders=unsettled)
    sheet = record.get("sheet")
    if not sheet:
        raise _unfit("record_incomplete", "the record has no sheet")
    rows = {row["bidder"]: row for row in sheet.get("rows") or ()}
    k: str | None = None
    if spec.method == "benchmark":
        drawn = (record.get("draw") or {}).get("k")
        if drawn is None:
            raise _unfit("record_incomplete", "a benchmark lot needs K from the opening's draw")
        k = str(drawn)
    opened = [b for b in bids if b.get("status") in OPENED]
    if not opened:
        raise _unfit("no_opened_bids", "the opening opened no bid")
    missing = [b["bidder"] for b in opened if b["bidder"] not in rows]
    if missing:
        raise _unfit("record_incomplete", "an opened bid has no row on the sheet", bidders=missing)
    params = dict(evaluation.params)
    if params["price"].get("ceiling") is None:
        params["price"] = {**params["price"], "ceiling": f"{spec.ceiling_price:.2f}"}
    config: dict[str, Any] = {
        "lot": lot,
        "title": record.get("title", spec.title),
        "tender": record.get("tender", ""),
        "bids": [_evaluated_bid(b, rows[b["bidder"]], received_at or {}) for b in opened],
        "criteria": [c.model_dump(mode="json") for c in evaluation.criteria],
        "review_rule": evaluation.review_rule,
        "params": params,
        "k": k,
        "anonymous": evaluation.anonymous_technical,
        "venues": [v.model_dump(mode="json") for v in evaluation.venues],
        "signing_minutes": evaluation.signing_minutes,
    }
    if label_seed is not None:
        config["label_seed"] = label_seed
    return config


def _evaluated_bid(
    bid: Mapping[str, Any], row: Mapping[str, Any], received_at: Mapping[str, str]
) -> dict[str, Any]:
    fields = dict(row.get("fields") or {})
    price = fields.get("price")
    return {
        "bidder": bid["bidder"],
        "name": bid.get("name", ""),
        "status": bid["status"],
        "price": None if price is None else str(price),
        "received_at": received_at.get(bid["bidder"]),
        "fields": fields,
        "form_error": row.get("form_error"),
    }
