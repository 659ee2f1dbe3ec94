"""`bidroom evaluation recompute`: the summary recomputed from the record, and checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
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


def one_line_error(done: Any) -> str:
    """The single stderr line of a refused command (exit 2, never a traceback)."""
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("bidroom: ")
    return line


def changed(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """RECORD with the value at ``path`` (keys and list indexes) replaced."""
    record = json.loads(json.dumps(RECORD))
    *parents, last = path
    target = record
    for key in parents:
        target = target[key]
    target[last] = value
    return record


HOSTILE = [
    (("bids", 0, "price"), "1" + "0" * 34, "money_invalid"),  # over 1e33
    (("bids", 0, "price"), "9" * 16, "money_invalid"),  # one digit over the format's 15
    (("bids", 0, "price"), "99.505", "money_invalid"),
    (("bids", 0, "price"), "1E+2", "money_invalid"),
    (("bids", 0, "price"), " 100 ", "money_invalid"),
    (("bids", 0, "price"), "100\n", "money_invalid"),
    (("bids", 0, "price"), "+100", "money_invalid"),
    (("bids", 0, "price"), "0100", "money_invalid"),
    (("bids", 0, "price"), "１００", "money_invalid"),  # full-width digits
    (("bids", 0, "price"), 100, "money_invalid"),  # a JSON number
    (("params", "price", "ceiling"), "1,000.00", "money_invalid"),
    (("k",), "0." + "9" * 38, "k_invalid"),
    (("k",), "0.25", "k_invalid"),  # beyond what a published k_range can draw
    (("params", "price", "full"), "1E+999999", "number_invalid"),
    (("params", "price", "full"), " 30", "number_invalid"),
    (("sheets", 0, "scores", "tech"), "3_0", "number_invalid"),
    (("bids", 0, "received_at"), "0001-01-01T00:00:00+14:00", "time_invalid"),
    (("bids", 0, "received_at"), "9999-12-31T23:00:00-14:00", "time_invalid"),
]


@pytest.mark.parametrize(("path", "value", "code"), HOSTILE)
def test_hostile_records_are_one_line_errors_with_a_code(
    tmp_path: Path, path: tuple[Any, ...], value: Any, code: str
) -> None:
    done = bidroom(
        "evaluation", "recompute", str(write(tmp_path / "r.json", changed(path, value))), env={}
    )
    assert one_line_error(done).endswith(f"({code})")


def test_money_at_the_formats_bounds_is_recomputed(tmp_path: Path) -> None:
    record = changed(("bids", 2, "price"), "999999999999999.99")
    record["params"]["price"]["ceiling"] = "999999999999999.99"
    record["k"] = "0.20"
    done = bidroom("evaluation", "recompute", str(write(tmp_path / "r.json", record)), env={})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["price"]["lines"][2]["price"] == "999999999999999.99"


def test_files_that_are_not_a_record_are_one_line_errors(tmp_path: Path) -> None:
    latin = tmp_path / "latin1.json"
    latin.write_bytes(json.dumps(RECORD).replace("uscc:b1", "uscc:b\xe9").encode("latin-1"))
    done = bidroom("evaluation", "recompute", str(latin), env={})
    assert one_line_error(done).endswith("(record_invalid)") and "UTF-8" in done.stderr
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    done = bidroom("evaluation", "recompute", str(deep), env={})
    assert one_line_error(done).endswith("(record_invalid)")


def test_a_committee_member_who_never_scored_is_named(tmp_path: Path) -> None:
    record = {**RECORD, "committee": ["e01", "e02", "e03", "e04"]}
    done = bidroom("evaluation", "recompute", str(write(tmp_path / "r.json", record)), env={})
    line = one_line_error(done)
    assert line.endswith("(member_unscored)") and "e04 (uscc:b1, uscc:b2, uscc:b3)" in line
    complete = {**RECORD, "committee": ["e01", "e02", "e03"]}
    done = bidroom("evaluation", "recompute", str(write(tmp_path / "ok.json", complete)), env={})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == scoring.recompute(RECORD)
    stranger = {**RECORD, "committee": ["e01", "e02"]}
    done = bidroom("evaluation", "recompute", str(write(tmp_path / "s.json", stranger)), env={})
    assert one_line_error(done).endswith("(expert_unknown)") and "e03" in done.stderr


def test_the_deviation_base_is_the_trimmed_mean(tmp_path: Path) -> None:
    """docs/evaluation.md "The deviation check": 10/10/10/13/30 under drop_max_min has base
    (10 + 10 + 13) / 3 = 11, so only the 30 is flagged; the untrimmed mean, 14.6, flagged four."""
    experts = [f"e0{n}" for n in range(1, 6)]
    record = {
        **RECORD,
        "params": {**PARAMS, "expert_trim": "drop_max_min", "items": [{"id": "tech", "max": "40"}]},
        "committee": experts,
        "sheets": [
            {"expert": e, "bidder": b, "scores": {"tech": t}}
            for e, t in zip(experts, ("10", "10", "10", "13", "30"), strict=True)
            for b, _ in BIDS
        ],
    }
    done = bidroom("evaluation", "recompute", str(write(tmp_path / "r.json", record)), env={})
    assert done.returncode == 0, done.stderr
    flags = json.loads(done.stdout)["flags"]
    assert {(f["kind"], f["expert"]) for f in flags} == {("abnormal", "e05")}
    assert len(flags) == 3  # one per bid
    assert flags[0]["evidence"] == {
        "score": "30", "mean": "11.0000", "ratio": "1.7273", "threshold": "0.30"
    }  # fmt: skip
    plain = {**record, "params": {**record["params"], "expert_trim": "none"}}
    done = bidroom("evaluation", "recompute", str(write(tmp_path / "p.json", plain)), env={})
    flagged = {f["expert"] for f in json.loads(done.stdout)["flags"]}
    assert flagged == {"e01", "e02", "e03", "e05"}  # a plain-mean lot: the base is 14.6


def test_a_reader_that_goes_away_gets_no_traceback(tmp_path: Path) -> None:
    """`bidroom evaluation recompute r.json | head`: the reader closed its end before the
    summary was written (the review saw a BrokenPipeError traceback). The command ends quietly
    with 141, as a shell's own commands do on SIGPIPE."""
    record = write(tmp_path / "r.json", RECORD)
    command = [sys.executable, "-m", "bidroom", "evaluation", "recompute", str(record)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # gone before anything is written: every write meets EPIPE
        errors = process.stderr.read().decode()
        assert process.wait(timeout=120) == 141, errors
    assert errors == ""
