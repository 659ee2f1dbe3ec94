"""`bidroom evaluation recompute`: the summary recomputed from the record, and checked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nodes import bidroom

from bidroom import scoring

PARAMS = {
    "price": {"method": "benchmark", "full": "30", "e_high": "0.2", "e_low": "0.1"},
    "items": [
        {"id": "tech", "max": "40"},
        {"id": "cert", "max": "10", "kind": "objective", "part": "commercial"},
    ],
    "candidates": 2,
}
BIDS = [("uscc:b1", "98"), ("uscc:b2", "100"), ("uscc:b3", "102")]
RECORD: dict[str, Any] = {
    "format": scoring.RECORD_FORMAT,
    "version": scoring.VERSION,
    "params": PARAMS,
    "k": "0",
    "bids": [
        {"bidder": b, "price": p, "passed": True, "received_at": f"2026-11-28T09:0{n}:00+08:00"}
        for n, (b, p) in enumerate(BIDS, 1)
    ],
    "sheets": [
        {"expert": e, "bidder": b, "scores": {"tech": t, "cert": "8"}, "total": None}
        for e in ("e01", "e02", "e03")
        for b, t in zip([b for b, _ in BIDS], ("30", "31", "29"), strict=True)
    ],
}


def write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_recompute_prints_the_whole_computation(tmp_path: Path) -> None:
    done = bidroom("evaluation", "recompute", str(write(tmp_path / "r.json", RECORD)), env={})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == scoring.recompute(RECORD)
    assert "\\u" not in done.stdout and done.stdout.startswith("{\n  ")


def test_recompute_reads_a_summary_or_a_room_log(tmp_path: Path) -> None:
    summary = {"record": RECORD, "computation": scoring.recompute(RECORD)}
    events = [
        {"type": "event", "seq": 1, "name": "evaluation.scores_locked", "data": {"sheets": 9}},
        {"type": "event", "seq": 2, "name": "evaluation.summarised", "data": summary},
    ]
    for name, data in (("s.json", summary), ("log.json", {"events": events})):
        done = bidroom("evaluation", "recompute", str(write(tmp_path / name, data)), env={})
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == summary["computation"]
    lines = tmp_path / "log.jsonl"
    lines.write_text("\n".join(json.dumps(e) for e in events), encoding="utf-8")
    done = bidroom(
        "evaluation", "recompute", str(lines), "--check", str(tmp_path / "s.json"), env={}
    )
    assert done.returncode == 0, done.stderr


def test_check_names_where_a_recorded_summary_differs(tmp_path: Path) -> None:
    record = write(tmp_path / "r.json", RECORD)
    computation = scoring.recompute(RECORD)
    same = write(tmp_path / "same.json", computation)
    assert (
        bidroom("evaluation", "recompute", str(record), "--check", str(same), env={}).returncode
        == 0
    )
    forged = {**computation, "recommended": list(reversed(computation["recommended"]))}
    done = bidroom(
        "evaluation",
        "recompute",
        str(record),
        "--check",
        str(write(tmp_path / "f.json", forged)),
        env={},
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"bidroom: the recomputed summary differs from {tmp_path / 'f.json'} at recommended[0] "
        "(summary_mismatch)"
    ]


def test_a_bad_record_is_one_line(tmp_path: Path) -> None:
    broken = write(tmp_path / "b.json", {**RECORD, "k": None})
    done = bidroom("evaluation", "recompute", str(broken), env={})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("bidroom: ") and line.endswith("(k_required)")
    missing = bidroom("evaluation", "recompute", str(tmp_path / "none.json"), env={})
    assert missing.returncode == 2 and missing.stderr.strip().endswith("(unreadable)")
    empty = write(tmp_path / "log.json", [{"name": "evaluation.scores_locked", "data": {}}])
    nothing = bidroom("evaluation", "recompute", str(empty), env={})
    assert nothing.stderr.strip().endswith("(record_invalid)")
