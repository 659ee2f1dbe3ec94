"""The bid form (投标函 / 开标一览表): what the opening sheet reads from a decrypted bid, pure.

A bid's plaintext is a ZIP archive whose first member ``bid.json`` is the form
(docs/opening.md, "Bids")::

    {"format": "bidroom-bid-form", "version": 1, "lot": "<lot id>", "price": "3650000.00",
     "duration_days": 365, "quality": "合格", "project_manager": "张三", "warranty_months": 12,
     "discount_rate": "2.5",
     "guarantee": {"kind": "bank"|"insurance"|"deposit", "issuer": "...", "number": "...",
                   "amount": "50000.00", "payer": "..."}}

``format``, ``version``, ``lot`` and ``price`` are required; the other catalogue fields are
optional (a missing one shows as null on the sheet). Unknown members are ignored. Money is a
decimal string in yuan with at most two places.

Rules of this file: no I/O (bytes in, a dict or a :class:`FormError` out), amounts compared as
:class:`~decimal.Decimal`, never as floats. Error codes (``FormError.code``):

- ``form_not_zip``: the plaintext is not a ZIP archive
- ``form_missing``: the archive's first member is not ``bid.json``
- ``form_too_large``: ``bid.json`` is over 64 KiB
- ``form_unreadable``: not a UTF-8 JSON object
- ``form_format``: not ``bidroom-bid-form`` version 1
- ``form_other_lot``: the form names another lot
- ``form_duplicate``: the archive has a second ``bid.json``
- ``form_bad_field``: a field has the wrong type or form (``detail["field"]`` names it)
- ``price_not_positive``: (:func:`sealable` only) the price is 0.00

The opening reads a form priced 0.00 as written (the sheet shows it; the evaluation lists the bid
``unpriced``, never ranked: docs/evaluation.md); the bidder's own tools refuse to seal one
(:func:`sealable`: ``bidroom bid seal`` and the bid page), since a sealed price is out of
everyone's sight until the opening.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
import zlib
from collections.abc import Mapping
from decimal import Decimal
from typing import IO, Any

from bidroom import money as amounts
from bidroom.errors import BidroomError

FORMAT = "bidroom-bid-form"
VERSION = 1
FORM_MEMBER = "bid.json"
MAX_FORM_BYTES = 64 * 1024
TEXT_MAX = 200
PERCENT = re.compile(r"^(0|[1-9][0-9]{0,2})(\.[0-9]{1,4})?$")
GUARANTEE_KINDS = frozenset({"bank", "insurance", "deposit"})


class FormError(BidroomError):
    """A bid form the sheet cannot read; ``code`` is one of the module docstring's."""

    code = "form_unreadable"


def money(value: object) -> Decimal | None:
    """A money string as a Decimal, or None if it is not one (``"1234.50"``, never a float):
    bidroom.money's one format."""
    return amounts.parse(value)


def form_from_archive(archive: bytes | IO[bytes], lot: str) -> dict[str, Any]:
    """The form in a decrypted bid: the archive's first member, ``bid.json``, read and checked.

    ``archive`` is the plaintext's bytes or a seekable file of them (a large bid stays on disk).
    A second ``bid.json`` is refused: the sheet and anyone re-reading the bid must agree.
    """
    source = io.BytesIO(archive) if isinstance(archive, bytes) else archive
    try:
        with zipfile.ZipFile(source) as zipped:
            members = zipped.infolist()
            if not members or members[0].filename != FORM_MEMBER:
                raise FormError("the first member of the bid is not bid.json", code="form_missing")
            if [m.filename for m in members].count(FORM_MEMBER) > 1:
                raise FormError("the bid has two bid.json members", code="form_duplicate")
            if members[0].file_size > MAX_FORM_BYTES:
                raise FormError("bid.json is too large", code="form_too_large")
            with zipped.open(members[0]) as member:
                data = member.read(MAX_FORM_BYTES + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as exc:
        raise FormError("the bid is not a ZIP archive", code="form_not_zip") from exc
    except (RuntimeError, NotImplementedError) as exc:  # encrypted, or an unknown compression
        raise FormError("bid.json cannot be read from the archive", code="form_unreadable") from exc
    return read_form(data, lot)


def sealable(archive: bytes | IO[bytes], lot: str) -> dict[str, Any]:
    """The form of a bid about to be sealed: readable as the opening will read it
    (:func:`form_from_archive`), for ``lot``, and priced above 0.00 (``price_not_positive``)."""
    form = form_from_archive(archive, lot)
    if amounts.positive(form["price"]) is None:
        raise FormError(
            f"the price is {form['price']}: a bid is priced above 0.00",
            code="price_not_positive",
            detail={"field": "price", "price": form["price"]},
        )
    return form


def read_form(data: bytes, lot: str) -> dict[str, Any]:
    """The checked form from ``bid.json``'s bytes: the known fields only, normalised.

    Raises :class:`FormError` with the code of the first problem found.
    """
    if len(data) > MAX_FORM_BYTES:
        raise FormError("bid.json is too large", code="form_too_large")
    doc = _json_object(data)
    version = doc.get("version")
    if doc.get("format") != FORMAT or type(version) is not int or version != VERSION:
        raise FormError(f"not a {FORMAT} version {VERSION}", code="form_format")
    if doc.get("lot") != lot:
        raise FormError(
            f"the form is for lot {doc.get('lot')!r}, not {lot!r}",
            code="form_other_lot",
            detail={"lot": doc.get("lot")},
        )
    form: dict[str, Any] = {"format": FORMAT, "version": VERSION, "lot": lot}
    form["price"] = _money_field(doc, "price")
    for name, reader in _OPTIONAL.items():
        if doc.get(name) is not None:
            form[name] = reader(doc, name)
    return form


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormError("bid.json is not UTF-8 JSON", code="form_unreadable") from exc
    if not isinstance(doc, dict):
        raise FormError("bid.json is not a JSON object", code="form_unreadable")
    return doc


def _bad(name: str, what: str) -> FormError:
    return FormError(f"{name} must be {what}", code="form_bad_field", detail={"field": name})


def _money_field(doc: Mapping[str, Any], name: str) -> str:
    value = doc.get(name)
    if money(value) is None:
        raise _bad(name, 'a money string with at most 2 decimals, e.g. "1234.50"')
    return str(value)


def _count(doc: Mapping[str, Any], name: str) -> int:
    value = doc.get(name)
    if type(value) is not int or not 0 <= value <= 100_000:
        raise _bad(name, "a whole number from 0 to 100000")
    return value


def _text(doc: Mapping[str, Any], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > TEXT_MAX:
        raise _bad(name, f"a text of 1 to {TEXT_MAX} characters")
    return value.strip()


def _percent(doc: Mapping[str, Any], name: str) -> str:
    value = doc.get(name)
    text = str(value) if type(value) is int else value
    if not isinstance(text, str) or PERCENT.fullmatch(text) is None:
        raise _bad(name, 'a decimal percent string, e.g. "2.5"')
    if Decimal(text) > 100:
        raise _bad(name, "at most 100 (percent)")
    return text


def _guarantee(doc: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The electronic guarantee (电子保函) or deposit as the bid declares it."""
    value = doc.get(name)
    if not isinstance(value, dict):
        raise _bad(name, "an object {kind, issuer, number, amount, payer}")
    if value.get("kind") not in GUARANTEE_KINDS:
        raise _bad(f"{name}.kind", "one of " + ", ".join(sorted(GUARANTEE_KINDS)))
    if money(value.get("amount")) is None:
        raise _bad(f"{name}.amount", 'a money string with at most 2 decimals, e.g. "50000.00"')
    checked: dict[str, Any] = {"kind": value["kind"], "amount": value["amount"]}
    for part in ("issuer", "number", "payer"):
        text = value.get(part)
        if text is not None and (not isinstance(text, str) or not 0 < len(text) <= TEXT_MAX):
            raise _bad(f"{name}.{part}", f"a text of 1 to {TEXT_MAX} characters")
        checked[part] = text
    return checked


_OPTIONAL = {
    "duration_days": _count,
    "warranty_months": _count,
    "quality": _text,
    "project_manager": _text,
    "discount_rate": _percent,
    "guarantee": _guarantee,
}
