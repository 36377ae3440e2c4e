"""A paused worker (SIGSTOP past its lease, then SIGCONT) never overwrites the outcome of the worker that
took its task over, though both ran the task to the end: whether it wakes after its successor finished
or while the successor still runs the task."""

from __future__ import annotations

import signal

import pytest
from reliability.harness import BackendUnderTest, Fleet, Ledger, eventually, started, worker_pid
from reliability.tasks import work

from sitq import AttemptOutcome, Task, TaskQueue, TaskStatus

SECONDS = 2.0


@pytest.mark.parametrize("wakes", ["after the successor finished", "while the successor runs"])
async def test_a_paused_workers_late_outcome_never_overwrites_its_successors(
    backend: BackendUnderTest, fleet: Fleet, ledger: Ledger, queue: TaskQueue, wakes: str
) -> None:
    paused = fleet.start_worker(concurrency=1)
    task_id = await queue.enqueue(Task(work, [str(ledger), "t", SECONDS], max_attempts=2))
    await started(ledger, "t", alive=[paused])
    paused.send(signal.SIGSTOP)
    successor = fleet.start_worker(concurrency=1)
    if wakes == "after the successor finished":
        result = await queue.get_result(task_id, timeout=120)
        assert result is not None and result.value == successor.pid, successor.describe()
    else:
        await eventually(lambda: len(ledger.of("t")) == 2, "the successor started", alive=[successor])
    # The paused run's time is long over: it ends and reports at once, while the successor's run, if
    # still going, has most of its time ahead.
    paused.send(signal.SIGCONT)
    await eventually(lambda: ledger.of("t")[0].completed, "the paused run has ended", alive=[paused])
    assert await fleet.stop(paused) == 0, paused.describe()  # a stopping worker first writes its outcomes
    result = await queue.get_result(task_id, timeout=120)
    assert await fleet.stop(successor) == 0, successor.describe()

    info = await queue.get_task(task_id)
    assert result is not None and result.value == successor.pid
    assert (info.status, info.attempts) == (TaskStatus.SUCCESS, 2)
    assert [(attempt.outcome, worker_pid(attempt.worker_id)) for attempt in info.history] == [
        (AttemptOutcome.LOST, paused.pid),
        (AttemptOutcome.SUCCESS, successor.pid),
    ]
    assert [(run.attempt, run.pid, run.completed) for run in ledger.of("t")] == [
        (1, paused.pid, True),
        (2, successor.pid, True),
    ]
