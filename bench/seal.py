"""`bidroom bid seal` and `bidroom bid open` as a bidder runs them, against a raw loop.

    .venv/bin/python bench/seal.py                    # a 1 GiB bid, 3 rounds
    .venv/bin/python bench/seal.py --size-mib 64 --rounds 1

Every figure is a child process measured from outside: wall time, CPU time and peak RSS
(``os.wait4``'s ru_maxrss), so the interpreter, the imports and OpenSSL count as a bidder pays
for them. The baseline is the same work done by the plainest Python program that can do it, run
as a child in the same round, back to back with the command: read the bid 1 MiB at a time,
AES-256-GCM each chunk, SHA-256 the ciphertext, write it (and fsync before the end, as
`bid seal` must, so that an interrupted seal never replaces the good envelope); for opening, the
reverse, without fsync (as `bid open`). The raw seal without fsync is printed too. Files are
file to file through the page cache (the bid, the envelope and the opened copy all fit in it).
Each child's stderr is a terminal, so the commands draw their progress bars as for a bidder.
`bidroom --help` is timed against `python -c pass`.

Aims (docs/operations.md): peak RSS under 64 MiB and at least 0.8 of raw for seal and open,
`bidroom --help` under 0.5 s. The machine is shared: each round's ratio compares a command with
the raw loop run just before or after it; the verdict takes the median over rounds.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pty
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

MiB = 1 << 20
TAG = 16
RSS_AIM_MIB = 64
SPEED_AIM = 0.8
HELP_AIM_S = 0.5
BIDROOM = Path(sys.executable).with_name("bidroom")


# the raw loops (run as children: `seal.py raw seal|seal-nosync|open SRC DST KEYHEX`) ---------


def raw_seal(source: Path, target: Path, key: bytes, sync: bool) -> None:
    """AES-256-GCM over 1 MiB chunks and SHA-256 over the ciphertext, file to file."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    gcm, digest, buffer = AESGCM(key), hashlib.sha256(), bytearray(MiB)
    with source.open("rb", buffering=0) as src, target.open("wb", buffering=0) as dst:
        counter = 0
        while n := src.readinto(buffer):
            sealed = gcm.encrypt(counter.to_bytes(12, "big"), memoryview(buffer)[:n], b"aad")
            digest.update(sealed)
            dst.write(sealed)
            counter += 1
        if sync:
            os.fsync(dst.fileno())
    print(digest.hexdigest())


def raw_open(source: Path, target: Path, key: bytes) -> None:
    """The reverse: SHA-256 over each sealed chunk, AES-256-GCM open, write."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    gcm, digest, buffer = AESGCM(key), hashlib.sha256(), bytearray(MiB + TAG)
    with source.open("rb", buffering=0) as src, target.open("wb", buffering=0) as dst:
        counter = 0
        while n := src.readinto(buffer):
            sealed = memoryview(buffer)[:n]
            digest.update(sealed)
            dst.write(gcm.decrypt(counter.to_bytes(12, "big"), sealed, b"aad"))
            counter += 1
    print(digest.hexdigest())


def raw_main(argv: list[str]) -> None:
    mode, source, target, key = argv
    if mode == "open":
        raw_open(Path(source), Path(target), bytes.fromhex(key))
    else:
        raw_seal(Path(source), Path(target), bytes.fromhex(key), sync=mode == "seal")


# measuring children -----------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    rss_mib: float


def measured(command: list[str | Path], env: dict[str, str] | None = None) -> Run:
    """One child to its end: wall time, user+system CPU and peak RSS from its rusage. Its
    stderr is a terminal, as a bidder's is: the progress bar draws (and costs what it costs)."""
    master, terminal = pty.openpty()
    seen = bytearray()
    reader = threading.Thread(target=_drain, args=(master, seen), daemon=True)
    started = time.perf_counter()
    child = subprocess.Popen(
        [str(c) for c in command],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=terminal,
    )
    os.close(terminal)
    reader.start()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    os.close(master)
    if child.returncode != 0:
        errors = seen[-2000:].decode(errors="replace")
        raise SystemExit(f"{command[0]} {command[1]} failed ({child.returncode}):\n{errors}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def _drain(master: int, seen: bytearray) -> None:
    """Read the child's terminal until it closes, keeping the last few KiB."""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child's side is closed
            return
        if not chunk:
            return
        seen += chunk
        del seen[:-8192]


# the files --------------------------------------------------------------------------------


def make_bid(path: Path, size: int) -> None:
    block = os.urandom(MiB)
    with path.open("wb") as out:
        for i in range(size // MiB):
            out.write(block[i % 7 :] + block[: i % 7])  # cheap, and no two chunks alike


def make_keys(folder: Path) -> dict[str, Path]:
    """A bidder (unencrypted key: no password prompt to time) and a lot's opening key."""
    from certs import certificate
    from cryptography import x509

    from ca import primitives as p

    bidder, opening = p.generate_ec_key(), p.generate_ec_key()
    files = {
        "key": folder / "bidder.key",
        "cert": folder / "bidder.crt",
        "opening": folder / "opening.key",
        "opening_pub": folder / "opening.pub",
    }
    files["key"].write_bytes(p.dump_private_key(bidder))
    cert = x509.load_der_x509_certificate(certificate(bidder, "bench bidder"))
    files["cert"].write_bytes(cert.public_bytes(p.serialization_pem()))
    files["opening"].write_bytes(p.dump_private_key(opening))
    files["opening_pub"].write_bytes(p.dump_public_pem(opening.public_key()))
    return files


# one round --------------------------------------------------------------------------------

WORK = ("raw seal", "bid seal", "raw seal, no fsync", "raw open", "bid open")


def one_round(folder: Path, keys: dict[str, Path], flip: bool) -> dict[str, Run]:
    """Each command beside its raw loop; ``flip`` runs the command first this time."""
    me, key = Path(__file__).resolve(), os.urandom(32).hex()
    bid, env, out = folder / "bid.pdf", folder / "bid.env", folder / "back.pdf"
    raw_env, raw_out = folder / "raw.env", folder / "raw.out"
    env_vars = {k: v for k, v in os.environ.items() if not k.startswith("BIDROOM_")}
    seal: list[str | Path] = [BIDROOM, "bid", "seal", "--no-form-check", bid, "--lot", "BENCH-1"]
    seal += ["--key", keys["key"]]  # random bytes, not a bid archive: its form is not read
    seal += ["--cert", keys["cert"], "--opening-key", keys["opening_pub"], "-o", env]
    commands: dict[str, list[str | Path]] = {
        "raw seal": [sys.executable, me, "raw", "seal", bid, raw_env, key],
        "raw seal, no fsync": [sys.executable, me, "raw", "seal-nosync", bid, raw_env, key],
        "bid seal": seal,
        "raw open": [sys.executable, me, "raw", "open", raw_env, raw_out, key],
        "bid open": [BIDROOM, "bid", "open", env, "--key", keys["opening"], "-o", out],
    }
    order = ["raw seal", "bid seal", "raw seal, no fsync", "raw open", "bid open"]
    if flip:
        order = ["bid seal", "raw seal", "raw seal, no fsync", "bid open", "raw open"]
    runs = {what: measured(commands[what], env_vars) for what in order}
    if out.stat().st_size != bid.stat().st_size or raw_out.stat().st_size != bid.stat().st_size:
        raise SystemExit("a round trip lost bytes")
    for done in (out, raw_out):
        done.unlink()
    return runs


def startup(repeat: int) -> dict[str, list[float]]:
    """`python -c pass` and `bidroom --help`, alternately, ``repeat`` times each."""
    times: dict[str, list[float]] = {"python -c pass": [], "bidroom --help": []}
    for _ in range(repeat):
        times["python -c pass"].append(measured([sys.executable, "-c", "pass"]).wall)
        times["bidroom --help"].append(measured([BIDROOM, "--help"]).wall)
    return times


# the report -------------------------------------------------------------------------------


def report(size: int, rounds: list[dict[str, Run]], starts: dict[str, list[float]]) -> bool:
    mb = size / 1e6
    print(f"\nbid of {size / MiB:.0f} MiB, {len(rounds)} round(s); wall and CPU in s")
    print(
        f"  {'':22}{'round':>6}{'wall':>8}{'MB/s':>8}{'CPU':>8}{'RSS MiB':>9}{'of raw':>8}"
        f"{'CPU of raw':>12}"
    )
    baseline = {"bid seal": "raw seal", "bid open": "raw open"}
    ratios: dict[str, list[float]] = {"bid seal": [], "bid open": [], "nosync": []}
    for n, runs in enumerate(rounds, 1):
        for what in WORK:
            run = runs[what]
            base = baseline.get(what)
            ratio = runs[base].wall / run.wall if base else None
            if ratio is not None:
                ratios[what].append(ratio)
            if what == "bid seal":
                ratios["nosync"].append(runs["raw seal, no fsync"].wall / run.wall)
            shown = f"{ratio:>8.2f}{runs[base].cpu / run.cpu:>12.2f}" if base else ""
            print(
                f"  {what:22}{n:>6}{run.wall:>8.2f}{mb / run.wall:>8.0f}{run.cpu:>8.2f}"
                f"{run.rss_mib:>9.1f}{shown}"
            )
    print(f"\n  {'startup':22}{'median s':>10}{'min s':>8}{'max s':>8}")
    for what, times in starts.items():
        print(f"  {what:22}{statistics.median(times):>10.3f}{min(times):>8.3f}{max(times):>8.3f}")

    rss = {w: max(r[w].rss_mib for r in rounds) for w in ("bid seal", "bid open")}
    speed = {w: statistics.median(ratios[w]) for w in ("bid seal", "bid open")}
    help_s = statistics.median(starts["bidroom --help"])
    nosync = statistics.median(ratios["nosync"])
    verdicts = [
        (f"bid seal peak RSS {rss['bid seal']:.1f} MiB < {RSS_AIM_MIB}", rss["bid seal"] < 64),
        (f"bid open peak RSS {rss['bid open']:.1f} MiB < {RSS_AIM_MIB}", rss["bid open"] < 64),
        (f"bid seal {speed['bid seal']:.2f} of raw >= {SPEED_AIM}", speed["bid seal"] >= 0.8),
        (f"bid open {speed['bid open']:.2f} of raw >= {SPEED_AIM}", speed["bid open"] >= 0.8),
        (f"bidroom --help {help_s:.3f} s < {HELP_AIM_S}", help_s < HELP_AIM_S),
    ]
    print("\naims (median ratio over rounds, largest RSS):")
    for text, held in verdicts:
        print(f"  {'holds ' if held else 'MISSED'}  {text}")
    print(f"  (bid seal against the raw seal without fsync: {nosync:.2f})")
    print("  (of raw: raw wall / command wall; CPU of raw: raw CPU / command CPU, user+system)")
    return all(held for _, held in verdicts)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=1024, help="the bid's size (1024)")
    parser.add_argument("--rounds", type=int, default=3, help="seal/open rounds (3)")
    parser.add_argument("--starts", type=int, default=10, help="--help and pass runs (10)")
    parser.add_argument("--dir", type=Path, help="where the files go (a temporary folder)")
    args = parser.parse_args()
    size = args.size_mib * MiB
    with tempfile.TemporaryDirectory(prefix="bidroom-seal-", dir=args.dir) as tmp:
        folder = Path(tmp)
        keys = make_keys(folder)
        make_bid(folder / "bid.pdf", size)
        rounds = []
        for n in range(args.rounds):
            print(f"[bench] round {n + 1} of {args.rounds}", file=sys.stderr, flush=True)
            rounds.append(one_round(folder, keys, flip=n % 2 == 1))
        starts = startup(args.starts)
    return 0 if report(size, rounds, starts) else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["raw"]:
        raw_main(sys.argv[2:])
    else:
        sys.exit(main())
