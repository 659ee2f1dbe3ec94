"""The node's worker process: CPU work that would stall the event loop, done outside it.

Python threads share one GIL: work in pure Python (asn1crypto's DER, pyHanko, fpdf2) on a
thread of the node still makes the loop wait for the GIL, and every room on the node with it
(bench/loop.py measured 24 ms at p99 with the TSA on a thread of its own). The worker is one
process of its own, started with ``spawn`` (a fresh interpreter: nothing of the node's threads,
sockets or keys is inherited) on its first task; so the first time-stamp after a start waits
for it to start (about half a second).

Work sent to it is a module-level function and picklable arguments (see bidroom.builtin_tsa):
what the process needs it loads itself, once, so a key never crosses the pipe. It is an
``Executor``: ``loop.run_in_executor(worker, fn, *args)``. Tasks run one at a time, in order.

If the process dies under a task (killed, out of memory), the task is sent once more, to a new
process; if that one dies too, the task fails with WorkerUnavailable (503
``worker_unavailable``). The process ends with its node: shut down with it, or within a second
of the node's death (``kill -9``, a crash), as it watches its parent; it never lives on as an
orphan.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ParamSpec, TypeVar

from bidroom.errors import WorkerUnavailable

P = ParamSpec("P")
T = TypeVar("T")
TRIES = 2  # a task whose process died is sent once more, to a new one
PARENT_POLL = 1.0  # seconds between the worker's looks at its parent


class Worker(Executor):
    """One worker process, started again when it dies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        outcome: Future[T] = Future()
        self._send(outcome, functools.partial(fn, *args, **kwargs), TRIES)
        return outcome

    def _send(self, outcome: Future[Any], call: functools.partial[Any], tries: int) -> None:
        """``call`` on the current process; on a new one if that one is dead or dies under it
        (``tries`` times in all), else WorkerUnavailable."""
        pool = self._current()
        try:
            task = pool.submit(call)
        except BrokenProcessPool:
            self._forget(pool)
            self._again(outcome, call, tries)
            return
        outcome.add_done_callback(lambda done: done.cancelled() and task.cancel())

        def settle(task: Future[Any]) -> None:
            if outcome.done():
                return  # cancelled meanwhile
            if task.cancelled():
                outcome.cancel()
            elif isinstance(task.exception(), BrokenProcessPool):
                self._forget(pool)
                self._again(outcome, call, tries)
            elif (error := task.exception()) is not None:
                outcome.set_exception(error)
            else:
                outcome.set_result(task.result())

        task.add_done_callback(settle)

    def _again(self, outcome: Future[Any], call: functools.partial[Any], tries: int) -> None:
        if tries > 1 and not self._closed:
            self._send(outcome, call, tries - 1)
        elif not outcome.done():
            name = getattr(call.func, "__qualname__", repr(call.func))
            outcome.set_exception(
                WorkerUnavailable(
                    f"the node's worker process died under {name}, twice",
                    detail={"task": name},
                )
            )

    def _current(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker is shut down")
            if self._pool is None:
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(
                    1, mp_context=context, initializer=_follow, initargs=(os.getpid(),)
                )
            return self._pool

    def _forget(self, pool: ProcessPoolExecutor) -> None:
        """A dead process's pool is never used again: the next task starts a new one."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed, pool, self._pool = True, self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def _follow(parent: int) -> None:
    """In the worker: end this process once ``parent`` (the node) is gone. A spawned worker
    holds both ends of its task queue, so its parent's death alone would not end it."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL)
        os._exit(0)

    threading.Thread(target=watch, name="follow-node", daemon=True).start()
