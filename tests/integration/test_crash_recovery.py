"""Real worker processes: one killed with SIGKILL mid-task, one stopped with SIGTERM mid-task."""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from sample_tasks import mark_then_sleep

from sitq import AttemptOutcome, Result, Task, TaskQueue, TaskStatus

TESTS = Path(__file__).parent.parent

WORKER = """
import asyncio, sys
from sitq import Worker
url, lease, grace = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
asyncio.run(Worker(url, lease=lease, poll_interval=0.1, grace_period=grace).run())
"""


def start_worker(url: str, lease: float, grace: float = 30) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, url, str(lease), str(grace)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def starts(log: Path, token: str) -> int:
    return log.read_text().split("\n").count(f"start {token}") if log.exists() else 0


async def started(log: Path, token: str) -> None:
    """Wait until the task, running in another process, has logged its start."""
    for _ in range(600):
        if starts(log, token):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {token} did not start")


async def kill_its_worker_and_recover(queue: TaskQueue, url: str, task_id: str, log: Path) -> Result | None:
    """Start a worker, SIGKILL it once the task has started, start another, and wait for the result."""
    doomed = start_worker(url, lease=1.0)
    await started(log, "t")
    doomed.send_signal(signal.SIGKILL)
    await asyncio.to_thread(doomed.communicate, timeout=10)
    survivor = start_worker(url, lease=1.0)
    try:
        return await queue.get_result(task_id, timeout=60)
    finally:
        survivor.send_signal(signal.SIGTERM)
        _, err = await asyncio.to_thread(survivor.communicate, timeout=30)
        assert survivor.returncode == 0, err


async def test_a_task_whose_worker_is_killed_is_finished_by_another(tmp_path: Path) -> None:
    url, log = f"sqlite:///{tmp_path / 'tasks.db'}", tmp_path / "runs.log"
    async with TaskQueue(url) as queue:
        task_id = await queue.enqueue(Task(mark_then_sleep, ["t", str(log), 1.0], max_attempts=2))
        result = await kill_its_worker_and_recover(queue, url, task_id, log)
        info = await queue.get_task(task_id)
    assert result is not None and result.value == "t"
    assert [attempt.outcome for attempt in info.history] == [AttemptOutcome.LOST, AttemptOutcome.SUCCESS]
    assert log.read_text().split() == ["start", "t", "start", "t", "end", "t"]


async def test_a_killed_workers_task_with_no_attempts_left_fails_saying_so(tmp_path: Path) -> None:
    url, log = f"sqlite:///{tmp_path / 'tasks.db'}", tmp_path / "runs.log"
    async with TaskQueue(url) as queue:
        task_id = await queue.enqueue(mark_then_sleep, "t", str(log), 1.0)
        result = await kill_its_worker_and_recover(queue, url, task_id, log)
    assert result is not None and result.status == "failed"
    assert result.error is not None and result.error.startswith("WorkerLostError: worker ")
    assert result.error.endswith("stopped renewing its lease, and no attempts are left")


async def test_sigterm_finishes_what_fits_the_grace_period_and_gives_back_the_rest(tmp_path: Path) -> None:
    url, log = f"sqlite:///{tmp_path / 'tasks.db'}", tmp_path / "runs.log"
    async with TaskQueue(url) as queue:
        quick = await queue.enqueue(mark_then_sleep, "quick", str(log), 0.2)
        slow = await queue.enqueue(mark_then_sleep, "slow", str(log), 60)
        worker = start_worker(url, lease=30, grace=1.0)
        await started(log, "quick")
        await started(log, "slow")
        worker.send_signal(signal.SIGTERM)
        _, err = await asyncio.to_thread(worker.communicate, timeout=30)
        quick_result = await queue.get_result(quick, timeout=0)
        slow_info = await queue.get_task(slow)
    assert worker.returncode == 0, err
    assert quick_result is not None and quick_result.value == "quick"
    assert (slow_info.status, slow_info.attempts) == (TaskStatus.PENDING, 0)
    assert [attempt.outcome for attempt in slow_info.history] == [AttemptOutcome.RELEASED]
