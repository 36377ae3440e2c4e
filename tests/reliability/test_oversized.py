"""Oversized payloads against a real SQLite file: a huge argument is refused before anything is written, a
huge return value fails its task with an error that says why, and `sitq show` of a large result (within
a raised limit) is quick and small, run as the real command."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sitq_command import SITQ, Sitq

from sitq import Limits, PayloadTooLargeError, SyncTaskQueue, Task, TaskQueue, TaskStatus, Worker

MiB = 2**20


def make_bytes(size: int) -> bytes:
    return b"\x00" * size


def echo(value: object) -> object:
    return value


def _stored_bytes(directory: Path) -> int:
    """The database with its -wal and -shm files."""
    return sum(path.stat().st_size for path in directory.glob("tasks.db*"))


def test_a_100_mb_argument_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with SyncTaskQueue(f"sqlite:///{tmp_path / 'tasks.db'}") as queue:
        queue.enqueue(echo, "small")  # the file exists, with its schema
        before = _stored_bytes(tmp_path)
        with pytest.raises(PayloadTooLargeError) as raised:
            queue.enqueue(echo, make_bytes(100 * MiB))
        assert len(queue.list_tasks()) == 1
    assert _stored_bytes(tmp_path) < before + MiB  # not a hundred of them
    error = raised.value
    assert error.size > 100 * MiB and error.limit == 10 * MiB
    assert f"the task's call is {error.size:,} bytes once serialized, over the limit of 10,485,760" in str(
        error
    )


async def test_an_oversized_result_fails_its_task_at_once_and_is_not_stored(tmp_path: Path) -> None:
    async with TaskQueue(f"sqlite:///{tmp_path / 'tasks.db'}") as queue:
        task_id = await queue.enqueue(Task(make_bytes, [11 * MiB], max_attempts=3))
        async with Worker(queue):
            result = await queue.get_result(task_id, timeout=60)
        info = await queue.get_task(task_id)
    assert result is not None and result.status is TaskStatus.FAILED and result.value is None
    assert result.error is not None and result.error.startswith(
        "PayloadTooLargeError: the task's return value is 11,53"
    )
    assert "over the limit of 10,485,760 bytes" in result.error
    assert info.attempts == 1 and len(info.history) == 1
    assert _stored_bytes(tmp_path) < 2 * MiB


async def test_sitq_show_of_a_20_mb_result_is_quick_and_small(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    async with TaskQueue(url) as queue:
        task_id = await queue.enqueue(make_bytes, 20 * MiB)
        worker = Worker(queue, limits=Limits(result_bytes=32 * MiB))
        assert (await worker.process_task(task_id)).status is TaskStatus.SUCCESS
        await worker.stop()
    sitq = Sitq(tmp_path, url)

    seconds, peak, shown = _measured(sitq, "show", task_id)
    assert re.search(r"result +20,971,5\d\d bytes, not shown: over the 1,048,576 bytes sitq show", shown)
    assert seconds < 15 and peak < 200 * MiB, (seconds, peak)

    seconds, peak, shown = _measured(sitq, "show", task_id, "--json")
    task = json.loads(shown)
    assert task["result"] is None and 20 * MiB < task["result_bytes"] < 20 * MiB + 100
    assert seconds < 15 and peak < 200 * MiB, (seconds, peak)


# Runs a command and prints its peak memory. A fresh small interpreter starts it: a child's peak counts
# the memory of the process it was forked from, and this test's process has held 100 MB arguments.
_PEAK_OF = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, file=sys.stderr)
"""


def _measured(sitq: Sitq, *args: str) -> tuple[float, int, str]:
    """Run the command; return how long it took, its peak memory in bytes and what it printed."""
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-c", _PEAK_OF, SITQ, *args],
        cwd=sitq.cwd,
        env=sitq.env(COLUMNS="300"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    seconds = time.monotonic() - started
    assert completed.returncode == 0, completed.stderr
    return seconds, int(completed.stderr.splitlines()[-1]), completed.stdout
