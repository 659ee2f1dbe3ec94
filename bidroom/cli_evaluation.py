"""`bidroom evaluation recompute`: an evaluation's whole computation again from its record."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bidroom import scoring
from bidroom.errors import BidroomError


def _read_json(path: Path) -> Any:
    """A JSON document, or the events of a JSON-lines log (one event a line)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BidroomError(f"cannot read {path}: {exc.strerror}", code="unreadable") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BidroomError(
            f"{path} is not UTF-8 text (byte {exc.start})", code="record_invalid"
        ) from exc
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    try:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except (ValueError, RecursionError) as exc:
        raise BidroomError(f"{path} is not JSON: {str(exc)[:200]}", code="record_invalid") from exc


def evaluation_record(data: Any) -> Any:
    """The scoring record in a file: the record itself (bidroom.scoring's format), a summary
    ({record, computation}, the data of ``evaluation.summarised``), or a room's event log (a
    list of events, or {"events": [...]}) whose last ``evaluation.summarised`` holds it."""
    if isinstance(data, dict) and "events" in data:
        data = data["events"]
    if isinstance(data, list):
        summaries = [
            e.get("data") or {}
            for e in data
            if isinstance(e, dict) and e.get("name") == "evaluation.summarised"
        ]
        if not summaries or "record" not in summaries[-1]:
            raise BidroomError("the log holds no summary with a record", code="record_invalid")
        return summaries[-1]["record"]
    if isinstance(data, dict) and data.get("format") != scoring.RECORD_FORMAT and "record" in data:
        return data["record"]
    return data


def _difference(left: Any, right: Any, where: str = "") -> str | None:
    """Where two JSON values first differ (a path like ``ranking[0].bidder``), or None."""
    if isinstance(left, dict) and isinstance(right, dict):
        for key in sorted(set(left) | set(right), key=str):
            if key not in left or key not in right:
                return f"{where}.{key}".lstrip(".")
            found = _difference(left[key], right[key], f"{where}.{key}")
            if found is not None:
                return found.lstrip(".")
        return None
    if isinstance(left, list) and isinstance(right, list):
        if len(left) != len(right):
            return f"{where} (length {len(left)} vs {len(right)})".lstrip(".")
        for n, (a, b) in enumerate(zip(left, right, strict=True)):
            found = _difference(a, b, f"{where}[{n}]")
            if found is not None:
                return found.lstrip(".")
        return None
    return None if left == right else (where.lstrip(".") or "the whole")


def evaluation_recompute(args: argparse.Namespace) -> None:
    """Recompute an evaluation's summary from its record; with --check, compare it."""
    try:
        _recompute(args)
    except RecursionError as exc:  # a document nested beyond any record's depth
        raise BidroomError("the document is nested too deeply", code="record_invalid") from exc


def _recompute(args: argparse.Namespace) -> None:
    computation = scoring.recompute(evaluation_record(_read_json(args.file)))
    print(json.dumps(computation, ensure_ascii=False, indent=2))
    if args.check is None:
        return
    recorded = _read_json(args.check)
    if isinstance(recorded, dict) and "computation" in recorded:
        recorded = recorded["computation"]  # a summary: {record, computation}
    where = _difference(computation, recorded)
    if where is not None:
        raise BidroomError(
            f"the recomputed summary differs from {args.check} at {where}",
            code="summary_mismatch",
        )
