"""What the benchmarks share: children that die with the run, percentiles, a bounded main (and
its --quick and --timeout), progress lines on stderr. bench/ is the script's directory, so
`from common import ...` finds it (and a spawned worker process inherits the import path)."""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import math
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any


def die_with_parent() -> None:
    """In a child: SIGKILL when the parent dies (even by SIGKILL)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def say(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def arguments(doc: str | None, *, quick: str, timeout: float) -> argparse.ArgumentParser:
    """A benchmark's parser, with the --quick and --timeout that run_bounded reads."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help=f"smoke run: {quick}")
    parser.add_argument("--timeout", type=float, default=timeout, help="hard limit for the run")
    return parser


def run_bounded(
    main: Callable[[argparse.Namespace], Coroutine[Any, Any, int]], args: argparse.Namespace
) -> int:
    """``main(args)`` for at most ``args.timeout`` seconds: its exit status, or 2 when it ran out.

    The last resort, 8 s later (60 s unless ``args.quick``): SIGALRM's default action ends this
    process, and every child (started with die_with_parent) dies with it.
    """
    timeout: float = args.timeout
    signal.setitimer(signal.ITIMER_REAL, timeout + (8 if args.quick else 60))
    try:
        return asyncio.run(asyncio.wait_for(main(args), timeout))
    except TimeoutError:
        print(f"bench: exceeded --timeout {timeout:.0f} s; stopped", file=sys.stderr)
        return 2
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
