"""Sealing and opening bids: MB/s against raw AES-256-GCM + SHA-256 over the same bytes.

    .venv/bin/python bench/seal.py               # 10 bids of 100 MiB, then one bid of 1 GiB
    .venv/bin/python bench/seal.py --quick       # 4 bids of 16 MiB, one of 64 MiB

The baseline is the physical limit of this machine for the work an envelope must do: AES-256-GCM
over 1 MiB chunks plus SHA-256 over the ciphertext, in memory, in the same run. bidroom's figures
are file to file (the page cache, as a bidder's laptop or the platform would see it). Peak memory
is tracemalloc's peak of Python allocations during each seal or open (the interpreter's own
footprint excluded), and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from ca import envelope  # noqa: E402
from ca import primitives as p  # noqa: E402

MiB = 1 << 20


def make_bid(path: Path, size: int) -> None:
    block = os.urandom(MiB)
    with path.open("wb") as out:
        for i in range(size // MiB):
            out.write(block[i % 7 :] + block[: i % 7])  # cheap, not all-equal chunks


def baseline(sizes: list[int]) -> float:
    """Seconds for AES-256-GCM over 1 MiB chunks + SHA-256 over the ciphertext, in memory."""
    gcm = p.Gcm(os.urandom(32))
    chunk = os.urandom(MiB)
    started = time.perf_counter()
    for size in sizes:
        digest = hashlib.sha256()
        for i in range(size // MiB):
            digest.update(gcm.seal(i.to_bytes(12, "big"), chunk, b"aad"))
    return time.perf_counter() - started


def copy_file(source: Path, target: Path) -> None:
    """A plain copy, 1 MiB at a time: what the disk and page cache allow file to file."""
    buffer = bytearray(MiB)
    with source.open("rb") as src, target.open("wb") as dst:
        while n := src.readinto(buffer):
            dst.write(memoryview(buffer)[:n])


def timed(work: object) -> float:
    started = time.perf_counter()
    work()  # type: ignore[operator]
    return time.perf_counter() - started


def peak_memory(work: object) -> int:
    """tracemalloc's peak for one more run (traced separately: tracing slows allocation)."""
    tracemalloc.start()
    work()  # type: ignore[operator]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def seal_file(plain: Path, sealed: Path, sealer: envelope.Sealer, opening: p.EcPrivateKey) -> None:
    with plain.open("rb") as src, sealed.open("wb") as dst:
        envelope.seal(src, dst, lot="bench", sealer=sealer, opening_key=opening.public_key())


def open_file(sealed: Path, back: Path, opening: p.EcPrivateKey) -> None:
    with sealed.open("rb") as src:
        envelope.open_to(src, back, opening)


def run(sizes: list[int], folder: Path, sealer: envelope.Sealer, opening: p.EcPrivateKey) -> dict:
    seal_s = open_s = copy_s = 0.0
    seal_peak = open_peak = 0
    for n, size in enumerate(sizes):
        plain, sealed, back = folder / f"bid{n}", folder / f"bid{n}.env", folder / f"bid{n}.out"
        make_bid(plain, size)

        do_seal = functools.partial(seal_file, plain, sealed, sealer, opening)
        do_open = functools.partial(open_file, sealed, back, opening)
        copy_s += timed(functools.partial(copy_file, plain, back))
        back.unlink()
        seal_s += timed(do_seal)
        open_s += timed(do_open)
        if n == 0:
            seal_peak, open_peak = peak_memory(do_seal), peak_memory(do_open)
        if os.path.getsize(back) != size:
            raise SystemExit("round trip failed")
        for f in (plain, sealed, back):
            f.unlink()
    return {
        "seal_s": seal_s,
        "open_s": open_s,
        "copy_s": copy_s,
        "seal_peak": seal_peak,
        "open_peak": open_peak,
    }


def report(title: str, sizes: list[int], result: dict, base_s: float) -> None:
    total = sum(sizes) / 1e6
    base = total / base_s
    print(f"\n{title}: {len(sizes)} bid(s), {sum(sizes) / MiB:.0f} MiB in all")
    print(f"  {'':34}{'MB/s':>10}{'of baseline':>14}")
    print(f"  {'baseline AES-256-GCM + SHA-256':34}{base:>10.0f}{1.0:>13.2f}x")
    copy = total / result["copy_s"]
    print(f"  {'(plain file copy, for reference)':34}{copy:>10.0f}{copy / base:>13.2f}x")
    for what in ("seal", "open"):
        speed = total / result[f"{what}_s"]
        print(f"  {'bidroom ' + what + ' (file to file)':34}{speed:>10.0f}{speed / base:>13.2f}x")
    print(
        f"  peak Python memory: seal {result['seal_peak'] / MiB:.1f} MiB, "
        f"open {result['open_peak'] / MiB:.1f} MiB (aim: < 64 MiB, independent of size)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    many = [16 * MiB] * 4 if args.quick else [100 * MiB] * 10
    one = [64 * MiB] if args.quick else [1024 * MiB]
    key = p.generate_ec_key()
    from certs import certificate  # the same self-signed test certificate

    sealer = envelope.Sealer(certificate(key, "bench bidder"), key)
    opening = p.generate_ec_key()
    with tempfile.TemporaryDirectory(prefix="bidroom-seal-") as tmp:
        for title, sizes in (("many bids", many), ("one large bid", one)):
            base_s = baseline(sizes)
            report(title, sizes, run(sizes, Path(tmp), sealer, opening), base_s)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n  process peak RSS {rss:.0f} MiB (interpreter, OpenSSL and the benchmark included)")


if __name__ == "__main__":
    io.DEFAULT_BUFFER_SIZE = MiB
    main()
