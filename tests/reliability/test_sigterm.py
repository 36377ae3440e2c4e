"""SIGTERM (or SIGINT, Ctrl-C) drains a worker: it takes no more tasks, lets its running ones finish within
the grace period, gives back those that do not, and exits 0. Nothing is lost and nothing that finished
runs twice."""

from __future__ import annotations

import signal

import pytest
from reliability.harness import BackendUnderTest, Fleet, Ledger, eventually, settle, started
from reliability.tasks import work, work_sync

from sitq import AttemptOutcome, TaskQueue, TaskStatus


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_stop_signal_lets_running_tasks_finish_and_leaves_the_rest_to_other_workers(
    backend: BackendUnderTest, fleet: Fleet, ledger: Ledger, queue: TaskQueue, signum: signal.Signals
) -> None:
    ids = {}
    for n in range(8):
        function = work_sync if n % 2 else work  # as many in threads as on the event loop
        ids[f"t{n}"] = await queue.enqueue(function, str(ledger), f"t{n}", 1.0)
    drained = fleet.start_worker(concurrency=4)
    await eventually(lambda: len(ledger.executions()) == 4, "the worker runs four tasks", alive=[drained])
    drained.send(signum)
    assert await drained.exit_code() == 0, drained.describe()

    ran = ledger.executions()
    assert len(ran) >= 4
    for key, task_id in ids.items():
        info = await queue.get_task(task_id)
        if key in ran:
            assert [(run.pid, run.completed) for run in ran[key]] == [(drained.pid, True)]
            assert [attempt.outcome for attempt in info.history] == [AttemptOutcome.SUCCESS]
        else:
            assert (info.status, info.attempts, info.history) == (TaskStatus.PENDING, 0, ())

    successor = fleet.start_worker(concurrency=4)
    tasks = await settle(queue, alive=[successor])
    assert await fleet.stop(successor) == 0, successor.describe()
    assert [info.status for info in tasks.values()] == [TaskStatus.SUCCESS] * 8
    assert sorted(ledger.executions()) == sorted(ids)
    assert all(len(runs) == 1 and runs[0].completed for runs in ledger.executions().values())


async def test_sigterm_gives_back_what_outlasts_the_grace_period(
    backend: BackendUnderTest, fleet: Fleet, ledger: Ledger, queue: TaskQueue
) -> None:
    quick = await queue.enqueue(work, str(ledger), "quick", 0.2)
    slow = await queue.enqueue(work, str(ledger), "slow", 60.0)
    worker = fleet.start_worker(grace_period=3.0)
    await started(ledger, "quick", "slow", alive=[worker])
    worker.send(signal.SIGTERM)
    assert await worker.exit_code() == 0, worker.describe()

    quick_result = await queue.get_result(quick, timeout=0)
    slow_info = await queue.get_task(slow)
    assert quick_result is not None and quick_result.value == worker.pid
    assert (slow_info.status, slow_info.attempts) == (TaskStatus.PENDING, 0)
    assert [attempt.outcome for attempt in slow_info.history] == [AttemptOutcome.RELEASED]
    assert [(run.pid, run.completed) for run in ledger.of("slow")] == [(worker.pid, False)]
