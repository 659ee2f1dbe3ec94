"""Evaluation benchmark: recompute a large evaluation from its record, build the report and have
the whole committee sign it, against merely reading the same record.

    .venv/bin/python bench/evaluation.py              # 100 bidders, 25 experts, 50 items
    .venv/bin/python bench/evaluation.py --quick      # 20 bidders, 5 experts, 10 items
    .venv/bin/python bench/evaluation.py --bidders 200 --no-verify

Everything is real, in one process:

1. The record, in bidroom.scoring's format, built here (deterministic from --seed): the
   benchmark price method (C 30, E_high 0.2, E_low 0.1, drop_max_min, a ceiling) with K = 0.02;
   N bids with distinct prices under the ceiling, all past the preliminary review; the items 4
   in 5 subjective (technical), the rest objective (commercial), 70 points in all; a sheet of
   every expert for every bidder, with its stated total. Planted for the deviation check: one
   sheet in 20 scores one subjective item 0 (``abnormal``), one sheet in 50 states a total one
   point off (``sum_error``). The run checks that the check finds them; it is written to a temp
   folder as the CLI's input (JSON, UTF-8).
2. Baseline: reading that file and parsing its JSON, as ``bidroom evaluation recompute FILE``
   does first (page cache warm; the median of 5).
3. Recompute: the same read and parse, then scoring.recompute (the CLI's work before it prints).
4. Report: a bidroom.report.Report built from the computation (a committee of every expert,
   every bidder's review, the score table with every item, every member's own sheet for every
   bidder, ranking, every flag), validated and
   rendered (fpdf2, WenQuanYi Micro Hei embedded as a subset).
5. Signing: every expert in turn adds a PAdES signature (ca.pades.sign over key_signer, an
   ECDSA P-256 certificate from a throwaway sub CA) time-stamped by the built-in TSA
   (ca.tsa.LocalStamper). Each is an incremental update: it re-reads and re-hashes the whole
   file so far. The time spent in the TSA (ca.tsa.LocalStamper.stamp: answer, read the token,
   verify it) is measured apart; pyHanko asks it once more, for the first signature's size
   estimate.
6. Verification (--no-verify skips it): ca.pades.verify_signatures with the CAs' CRLs, as a
   reader of the report would check all the signatures.

When the report does not render (bidroom.report raises ReportError), the run prints the rows
measured so far and the error (code and message), signs nothing, and exits with status 1.
Ratios are seconds / the baseline's seconds. Peak RSS is the process's (ru_maxrss) after each
step: it only grows, so a jump names the step that needed the memory.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import arguments, run_bounded, say  # noqa: E402  (bench/common.py)
from cryptography import x509  # noqa: E402
from pyhanko.pdf_utils.reader import PdfFileReader  # noqa: E402

from bidroom import report, scoring  # noqa: E402
from bidroom.errors import ReportError  # noqa: E402
from ca import pades, pki, tsa  # noqa: E402
from ca import primitives as p  # noqa: E402

MB = 1e6
CEILING = Decimal("5000000.00")
SUBJECTIVE_POINTS, OBJECTIVE_POINTS = Decimal(60), Decimal(10)
TENTH = Decimal("0.1")
SURNAMES = "李张王刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN = "明华芳伟娜敏静丽强磊军洋勇艳杰娟涛超秀霞平刚桂英"
KINDS = {
    "sum_error": "合计与分项不符",
    "out_of_range": "超出分值范围",
    "missing": "漏评",
    "objective_inconsistent": "客观分不一致",
    "abnormal": "偏离均值超过30%",
}
RESOLUTIONS = {
    "sum_error": "专家已更正合计",
    "abnormal": "专家复核后维持原评分，已书面说明理由",
}


# the record ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planted:
    """What the record hides for the deviation check to find."""

    abnormal: frozenset[tuple[str, str, str]]  # (expert, bidder, item)
    sum_errors: frozenset[tuple[str, str]]  # (expert, bidder)


def expert_names(count: int) -> list[str]:
    return [
        f"{SURNAMES[n % len(SURNAMES)]}{GIVEN[n * 7 % len(GIVEN)]}{n + 1:02d}" for n in range(count)
    ]


def bidder_names(count: int) -> list[str]:
    return [f"舟山第{n + 1:03d}建设工程有限公司" for n in range(count)]


def make_items(count: int) -> list[dict[str, str]]:
    subjective = max(1, round(count * 0.8))
    objective = count - subjective
    items = [
        {
            "id": f"T{n + 1:02d}",
            "max": scoring.text((SUBJECTIVE_POINTS / subjective).quantize(Decimal("0.01"))),
            "kind": "subjective",
            "part": "technical",
        }
        for n in range(subjective)
    ]
    items += [
        {
            "id": f"C{n + 1:02d}",
            "max": scoring.text((OBJECTIVE_POINTS / objective).quantize(Decimal("0.01"))),
            "kind": "objective",
            "part": "commercial",
        }
        for n in range(objective)
    ]
    return items


def tenths(value: Decimal) -> Decimal:
    return value.quantize(TENTH, rounding=ROUND_HALF_UP)


def make_record(
    bidders: int, experts: int, items: int, rng: random.Random
) -> tuple[dict[str, Any], Planted]:
    lot_items = make_items(items)
    names, members = bidder_names(bidders), expert_names(experts)
    prices = rng.sample(range(360_000_000, 490_000_000), bidders)  # in fen: distinct
    start = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    bids = [
        {
            "bidder": name,
            "price": scoring.text(Decimal(fen) / 100),
            "passed": True,
            "received_at": (start + timedelta(seconds=37 * n)).isoformat(),
        }
        for n, (name, fen) in enumerate(zip(names, prices, strict=True))
    ]
    sheets, abnormal, sum_errors = [], set(), set()
    for bidder in names:
        quality = Decimal(rng.randint(60, 95)) / 100
        agreed = {i["id"]: rng.choice((0, 1, 2)) for i in lot_items if i["kind"] == "objective"}
        for expert in members:
            scores = {}
            for item in lot_items:
                top = Decimal(item["max"])
                if item["kind"] == "objective":
                    scores[item["id"]] = top * agreed[item["id"]] / 2
                else:
                    noise = Decimal(rng.randint(-6, 6)) / 100
                    scores[item["id"]] = min(top, tenths(top * (quality + noise)))
            if rng.random() < 0.05:
                item = rng.choice([i["id"] for i in lot_items if i["kind"] == "subjective"])
                scores[item] = Decimal(0)
                abnormal.add((expert, bidder, item))
            total = sum(scores.values(), Decimal(0))
            if rng.random() < 0.02:
                total += 1
                sum_errors.add((expert, bidder))
            sheets.append(
                {
                    "expert": expert,
                    "bidder": bidder,
                    "scores": {k: scoring.text(v) for k, v in scores.items()},
                    "total": scoring.text(total),
                }
            )
    params = {
        "price": {
            "method": "benchmark",
            "full": "30",
            "e_high": "0.2",
            "e_low": "0.1",
            "trim": "drop_max_min",
            "trim_from": 5,
            "ceiling": scoring.text(CEILING),
        },
        "items": lot_items,
        "rounding": {"mode": "half_up", "places": 2, "intermediate_places": None},
        "tie_breakers": ["lower_price", "higher_technical", "earlier_receipt"],
        "candidates": 3,
        "expert_trim": "none",
        "threshold": "0.30",
    }
    record = {
        "format": scoring.RECORD_FORMAT,
        "version": scoring.VERSION,
        "params": params,
        "k": "0.02",
        "bids": bids,
        "sheets": sheets,
    }
    return record, Planted(frozenset(abnormal), frozenset(sum_errors))


def read_record(path: Path) -> Any:
    """What the CLI does first (bidroom.cli._read_json): the file's text, parsed."""
    return json.loads(path.read_text(encoding="utf-8"))


def found_planted(computation: dict[str, Any], planted: Planted) -> tuple[bool, Counter[str]]:
    flags = computation["flags"]
    kinds = Counter(f["kind"] for f in flags)
    abnormal = {(f["expert"], f["bidder"], f["item"]) for f in flags if f["kind"] == "abnormal"}
    sums = {(f["expert"], f["bidder"]) for f in flags if f["kind"] == "sum_error"}
    return planted.abnormal <= abnormal and sums == planted.sum_errors, kinds


# the report ---------------------------------------------------------------------------------


def report_of(
    computation: dict[str, Any], members: list[str], sheets: list[dict[str, Any]]
) -> report.Report:
    """The evaluation report for a computation (scoring.recompute's JSON form), with every
    member's own sheet of the record (each member's signature binds theirs)."""
    items = computation["params"]["items"]
    committee = report.Committee(
        leader=members[0],
        seats=tuple(
            report.Seat(
                seat=f"S{n + 1:02d}",
                venue="主会场（舟山）" if n % 3 == 0 else "副会场（宁波）",
                expert=e,
            )
            for n, e in enumerate(members)
        ),
    )
    reviews = tuple(
        report.Review(
            bidder=line["bidder"],
            passed=line["status"] == "valid",
            reasons=() if line["status"] == "valid" else (line["status"],),
        )
        for line in computation["price"]["lines"]
    )
    committee_scores: dict[str, dict[str, str]] = {}
    for score in computation["items"]:
        committee_scores.setdefault(score["bidder"], {})[score["item"]] = score["score"]
    scores = tuple(
        report.Score(
            bidder=t["bidder"],
            price=t["price"],
            price_score=t["price_score"],
            items=committee_scores[t["bidder"]],
            total=t["total"],
        )
        for t in computation["totals"]
    )
    totals = {t["bidder"]: t["total"] for t in computation["totals"]}
    return report.Report(
        tender="ZSCG-2026-100",
        lot="1",
        title="舟山市海岛公路提升改造工程（基准价法评标基准测试）",
        created_at=datetime(2026, 11, 28, 18, 0, tzinfo=UTC),
        committee=committee,
        reviews=reviews,
        items=tuple(
            report.Item(
                id=i["id"], name=("技术" if i["kind"] == "subjective" else "商务") + i["id"]
            )
            for i in items
        ),
        scores=scores,
        ranking=tuple(
            report.Standing(rank=s["rank"], bidder=s["bidder"], total=totals[s["bidder"]])
            for s in computation["ranking"]
        ),
        sheets=tuple(
            report.Sheet(
                expert=x["expert"], bidder=x["bidder"], items=x["scores"], total=x["total"]
            )
            for x in sheets
        ),
        recommended=tuple(computation["recommended"]),
        flags=tuple(
            report.Flag(
                expert=f["expert"] or "评标委员会",
                bidder=f["bidder"],
                item=f["item"] or "合计",
                kind=KINDS[f["kind"]],
                resolution=RESOLUTIONS.get(f["kind"], "已复核"),
            )
            for f in computation["flags"]
        ),
    )


@dataclass(frozen=True)
class Rendered:
    pdf: bytes | None  # None when the report did not render
    seconds: float  # building the Report and rendering it (or failing to)
    failure: str | None  # the ReportError's code and message, if it did not render


def render_report(
    computation: dict[str, Any], members: list[str], sheets: list[dict[str, Any]]
) -> Rendered:
    started = time.perf_counter()
    try:
        pdf = report.render(report_of(computation, members, sheets))
    except ReportError as exc:
        return Rendered(None, time.perf_counter() - started, f"{exc.code}: {exc.message}")
    return Rendered(pdf, time.perf_counter() - started, None)


def pages_of(pdf: bytes) -> int:
    return int(PdfFileReader(io.BytesIO(pdf), strict=False).root["/Pages"]["/Count"])


# the signers --------------------------------------------------------------------------------


class TimedStamper:
    """A ca.tsa Timestamper that adds up the time its stamps take."""

    def __init__(self, inner: tsa.Timestamper):
        self.inner, self.seconds, self.calls = inner, 0.0, 0

    async def stamp(self, message: tsa.Message) -> tsa.Stamp:
        started = time.perf_counter()
        try:
            return await self.inner.stamp(message)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1


@dataclass(frozen=True)
class Committee:
    signers: list[tuple[str, Any]]  # (expert, pyHanko Signer), in signing order
    stamper: pades.PadesTimeStamper
    timing: TimedStamper
    trust: pades.Trust


def make_committee(members: list[str], now: datetime) -> Committee:
    """A root and sub CA with fresh CRLs, a certificate for every expert, the built-in TSA."""
    before = now - timedelta(days=30)
    root = pki.create_root("舟山市数字证书根CA", before)
    sub = pki.create_intermediate(root, "舟山市数字证书二级CA", before)
    holders = [
        (e, pki.issue_with_key(sub, pki.Identity(e), now - timedelta(days=1))) for e in members
    ]
    root, root_crl = pki.publish_crl(root, now - timedelta(minutes=5), timedelta(days=60))
    sub, sub_crl = pki.publish_crl(sub, now - timedelta(minutes=5), timedelta(days=60))
    tsa_root = pki.create_root("bidroom 时间戳根CA", before)
    platform = pki.create_intermediate(tsa_root, "bidroom 平台CA", before)
    tsa_key, tsa_cert = tsa.issue_tsa_certificate(platform, before)
    authority = tsa.TimeStampAuthority(
        tsa_cert, tsa_key, [platform.cert], clock=lambda: datetime.now(UTC)
    )
    timing = TimedStamper(tsa.LocalStamper(authority, [tsa_root.cert]))
    chain: list[x509.Certificate] = [sub.cert]
    signers = [(e, pades.key_signer(key, cert, chain)) for e, (key, cert) in holders]
    trust = pades.Trust(
        roots=[root.cert],
        tsa_roots=[tsa_root.cert],
        intermediates=[sub.cert, platform.cert],
        crls=(p.crl_der(root_crl), p.crl_der(sub_crl)),
    )
    return Committee(signers, pades.PadesTimeStamper(timing), timing, trust)


async def sign_all(pdf: bytes, committee: Committee) -> tuple[bytes, list[float]]:
    each = []
    for seat, (expert, signer) in enumerate(committee.signers, start=1):
        started = time.perf_counter()
        pdf = await pades.sign(pdf, signer, committee.stamper, field=f"expert-{seat}", name=expert)
        each.append(time.perf_counter() - started)
    return pdf, each


# the run ------------------------------------------------------------------------------------


def timed(work: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def peak_rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    r: dict[str, Any] = {"rss": {}}
    members = expert_names(args.experts)
    record, planted = make_record(args.bidders, args.experts, args.items, random.Random(args.seed))
    path = folder / "record.json"
    path.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    r["record_bytes"], r["sheets"] = path.stat().st_size, len(record["sheets"])
    r["planted"] = planted
    sheets = record["sheets"]  # the report sets out each member's own
    del record
    r["rss"]["start"] = peak_rss()
    say(f"record: {r['sheets']} sheets, {r['record_bytes'] / MB:.1f} MB; reading it")

    r["base"] = statistics.median(timed(lambda: read_record(path))[0] for _ in range(5))
    r["rss"]["base"] = peak_rss()
    say("recomputing")
    r["recompute"], computation = timed(lambda: scoring.recompute(read_record(path)))
    r["rss"]["recompute"] = peak_rss()
    r["found_ok"], r["kinds"] = found_planted(computation, planted)
    r["ranked"] = len(computation["ranking"])

    say("building and rendering the report")
    rendered = render_report(computation, members, sheets)
    r["rss"]["render"] = peak_rss()
    r["render"], r["failure"], pdf = rendered.seconds, rendered.failure, rendered.pdf
    if pdf is None:
        return r  # nothing to sign
    r["pdf_bytes"], r["pages"] = len(pdf), pages_of(pdf)

    committee = make_committee(members, datetime.now(UTC))
    say(f"signing by {len(members)} experts")
    started = time.perf_counter()
    signed, r["each"] = await sign_all(pdf, committee)
    r["sign"] = time.perf_counter() - started
    r["rss"]["sign"] = peak_rss()
    r["signed_bytes"] = len(signed)
    r["tsa_s"], r["tsa_calls"] = committee.timing.seconds, committee.timing.calls

    r["verify"] = None
    if not args.no_verify:
        say("verifying every signature")
        started = time.perf_counter()
        found = await pades.verify_signatures(signed, committee.trust, expected=len(members))
        r["verify"] = time.perf_counter() - started
        r["rss"]["verify"] = peak_rss()
        r["verified"] = len(found)
    return r


def table(args: argparse.Namespace, r: dict[str, Any]) -> str:
    base = r["base"]

    def row(label: str, seconds: float, rss: str) -> str:
        return f"  {label:56}{seconds:>10.3f}{seconds / base:>12.1f}x{r['rss'][rss]:>9.0f} MiB"

    subjective = max(1, round(args.items * 0.8))
    flags = ", ".join(f"{k} {n}" for k, n in sorted(r["kinds"].items())) or "none"
    rendered = (
        f"({r['pages']} pages, {r['pdf_bytes'] / MB:.2f} MB)" if not r["failure"] else "FAILED"
    )
    lines = [
        "",
        f"bidroom evaluation: {args.bidders} bidders, {args.experts} experts, {args.items} items "
        f"({subjective} subjective, {args.items - subjective} objective), benchmark method; "
        f"record {r['sheets']:,} sheets, {r['record_bytes'] / MB:.2f} MB; {os.cpu_count()} CPUs",
        "",
        f"  {'':56}{'seconds':>10}{'/ baseline':>13}{'peak RSS':>13}",
        row("baseline: read + parse the record (median of 5)", base, "base"),
        row("recompute from the record (read + parse + recompute)", r["recompute"], "recompute"),
        row(f"build the Report + render the PDF {rendered}", r["render"], "render"),
    ]
    if not r["failure"]:
        lines += signing_rows(r, row)
    lines += [
        f"  deviation check: {flags}; planted {len(r['planted'].abnormal)} abnormal and "
        f"{len(r['planted'].sum_errors)} sum errors, all found: "
        + ("OK" if r["found_ok"] else "FAILED"),
        f"  ranking: {r['ranked']} bidders ranked; peak RSS {r['rss']['start']:.0f} MiB before "
        "the baseline (the record built in memory)",
    ]
    if r["failure"]:
        lines.append(f"  REPORT FAILED ({args.items} items), nothing signed: {r['failure']}")
    return "\n".join(lines)


def signing_rows(r: dict[str, Any], row: Callable[[str, float, str], str]) -> list[str]:
    each = r["each"]
    lines = [row(f"sign by {len(each)} experts in turn (PAdES + local TSA)", r["sign"], "sign")]
    if r["verify"] is not None:
        lines.append(
            row(f"verify the {r['verified']} signatures (pyHanko, CRLs)", r["verify"], "verify")
        )
    return [
        *lines,
        "",
        f"  per signature: first {each[0]:.3f} s, median {statistics.median(each):.3f} s, "
        f"last {each[-1]:.3f} s; signed file {r['signed_bytes'] / MB:.2f} MB",
        f"  of the signing, the local TSA: {r['tsa_s']:.3f} s for {r['tsa_calls']} time-stamps "
        f"({r['tsa_s'] / r['sign']:.0%}; {r['tsa_s'] / r['tsa_calls']:.3f} s each)",
        f"  recompute + report + signatures: {r['recompute'] + r['render'] + r['sign']:.2f} s",
    ]


async def main_async(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="bidroom-evaluation-") as tmp:
        result = await run(args, Path(tmp))
    print(table(args, result), flush=True)
    return 0 if result["found_ok"] and not result["failure"] else 1


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = arguments(__doc__, quick="20 bidders, 5 experts, 10 items", timeout=900.0)
    parser.add_argument("--bidders", type=int, default=100)
    parser.add_argument("--experts", type=int, default=25)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--no-verify", action="store_true", help="skip checking the signatures")
    args = parser.parse_args(argv)
    if args.quick:
        args.bidders, args.experts, args.items, args.timeout = 20, 5, 10, 120.0
    if args.bidders < 5 or args.experts < 1 or args.items < 2:
        parser.error("at least 5 bidders, 1 expert and 2 items")
    return args


if __name__ == "__main__":
    sys.exit(run_bounded(main_async, parse()))
