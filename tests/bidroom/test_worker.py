"""The node's worker process (bidroom.worker): a task whose process dies is sent once more to a
new one; a task that kills every process it is given fails with worker_unavailable, and the
worker goes on serving the next task; a task's own error comes back as it was raised."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from bidroom.errors import WorkerUnavailable
from bidroom.worker import Worker
from ca.errors import TimestampError

WAIT = 60.0  # seconds: the most a test waits for a process to start


@pytest.fixture
def worker() -> Iterator[Worker]:
    started = Worker()
    yield started
    started.shutdown(cancel_futures=True)


def test_a_task_that_kills_its_process_twice_fails_and_the_next_runs(worker: Worker) -> None:
    first = worker.submit(os.getpid).result(WAIT)
    with pytest.raises(WorkerUnavailable) as failed:
        worker.submit(os._exit, 3).result(WAIT)
    assert failed.value.code == "worker_unavailable" and failed.value.status == 503
    after = worker.submit(os.getpid).result(WAIT)
    assert after not in (first, os.getpid())


def test_a_task_whose_process_was_killed_is_done_by_a_new_one(worker: Worker) -> None:
    first = worker.submit(os.getpid).result(WAIT)
    os.kill(first, 9)
    assert worker.submit(pow, 2, 10).result(WAIT) == 1024
    assert worker.submit(os.getpid).result(WAIT) != first


async def test_a_tasks_own_error_comes_back_as_raised(worker: Worker) -> None:
    loop = asyncio.get_running_loop()
    with pytest.raises(TimestampError) as raised:
        await loop.run_in_executor(worker, _refuse)
    assert raised.value.code == "tsa_test" and raised.value.detail == {"why": "asked"}


def _refuse() -> None:
    raise TimestampError("refused on purpose", code="tsa_test", detail={"why": "asked"})
