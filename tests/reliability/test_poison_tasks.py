"""Poison tasks beside innocent ones, in thread mode (the default) and process mode (`processes=4`: one
child for each task that runs at once).

- A `BaseException` raised by a task (KeyboardInterrupt, SystemExit, GeneratorExit, a custom one), from
  async or sync code, fails only that task, in either mode: the worker goes on and its neighbours succeed.
- A task that ends its own process (`os._exit(3)`, SIGKILL, a segfault):
  - in thread mode it takes its worker down, but no neighbour is lost: with attempts left each runs again
    on another worker once the lease expires; the poison itself, with none left, fails as lost;
  - in process mode it costs only its own attempt, recorded as a `TaskCrashedError` with the signal or
    exit code and retried by its policy, and the worker and every neighbour go on untouched.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from reliability.harness import (
    BackendUnderTest,
    Child,
    Fleet,
    Ledger,
    eventually,
    settle,
    started,
    worker_pid,
)
from reliability.tasks import (
    POISONS,
    end_own_process,
    raise_base_exception,
    raise_base_exception_sync,
    work,
    work_sync,
)

from sitq import AttemptOutcome, RetryPolicy, Task, TaskInfo, TaskQueue, TaskStatus

MODES = {"threads": None, "processes": 4}
"""Worker modes by name: the `processes` a worker is given."""
INNOCENTS = {"threads": 4, "processes": 2}
"""How many innocent tasks run beside the poison ones, in each mode: in process mode, two poisons and two
innocents fill the four children."""
DEATHS = {
    "exit": (3, "exited with code 3"),
    "sigkill": (-9, "killed by SIGKILL (signal 9)"),
    "segfault": (-11, "killed by SIGSEGV (signal 11)"),
}
"""How a poison task ends its process: the process's exit status, and how process mode records it."""
CRASHED = "TaskCrashedError: the process running the task died: "


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("poison", sorted(POISONS))
async def test_a_base_exception_fails_only_its_own_task(
    backend: BackendUnderTest, fleet: Fleet, ledger: Ledger, queue: TaskQueue, poison: str, mode: str
) -> None:
    worker = fleet.start_worker(concurrency=None, processes=MODES[mode])
    innocent = await start_innocents(
        queue, ledger, worker, INNOCENTS[mode], seconds=0.5, beside=["async", "sync"]
    )
    poisoned = [
        await queue.enqueue(raise_base_exception, str(ledger), "async", poison),
        await queue.enqueue(raise_base_exception_sync, str(ledger), "sync", poison),
    ]
    tasks = await settle(queue, alive=[worker])
    await stop_leaving_nothing_behind(fleet, worker)

    for task_id in poisoned:
        info = tasks[task_id]
        assert (info.status, info.attempts) == (TaskStatus.FAILED, 1)
        assert info.error is not None and info.error.startswith(f"{poison}: poison"), info.error
        assert [attempt.outcome for attempt in info.history] == [AttemptOutcome.FAILED]
    assert_ran_once(tasks, innocent, ledger)


async def test_in_thread_mode_a_task_ending_its_process_loses_none_of_its_neighbours(
    backend: BackendUnderTest, fleet: Fleet, ledger: Ledger, queue: TaskQueue, death: str
) -> None:
    doomed = fleet.start_worker(concurrency=8)
    # Long enough to be still running when the poison strikes, short when run again.
    innocent = await start_innocents(
        queue, ledger, doomed, INNOCENTS["threads"], seconds=30.0, retry_seconds=0.1, max_attempts=2
    )
    poison = await queue.enqueue(end_own_process, str(ledger), "poison", death)
    assert await doomed.exit_code() == DEATHS[death][0], doomed.describe()
    successor = fleet.start_worker(concurrency=8)
    tasks = await settle(queue, alive=[successor])
    assert await fleet.stop(successor) == 0, successor.describe()

    lost = tasks[poison]
    assert lost.status is TaskStatus.FAILED
    assert lost.error is not None and lost.error.startswith("WorkerLostError: worker ")
    assert lost.error.endswith("stopped renewing its lease, and no attempts are left")
    assert [(a.outcome, worker_pid(a.worker_id)) for a in lost.history] == [(AttemptOutcome.LOST, doomed.pid)]
    assert [(run.pid, run.completed) for run in ledger.of("poison")] == [(doomed.pid, False)]
    for key, task_id in innocent.items():
        info = tasks[task_id]
        assert info.status is TaskStatus.SUCCESS
        assert [(attempt.outcome, worker_pid(attempt.worker_id)) for attempt in info.history] == [
            (AttemptOutcome.LOST, doomed.pid),
            (AttemptOutcome.SUCCESS, successor.pid),
        ]
        assert [(run.attempt, run.pid, run.completed) for run in ledger.of(key)] == [
            (1, doomed.pid, False),
            (2, successor.pid, True),
        ]


async def test_in_process_mode_a_task_ending_its_process_costs_only_its_own_attempt(
    backend: BackendUnderTest, fleet: Fleet, ledger: Ledger, queue: TaskQueue, death: str
) -> None:
    worker = fleet.start_worker(concurrency=None, processes=MODES["processes"])
    innocent = await start_innocents(
        queue, ledger, worker, INNOCENTS["processes"], seconds=0.5, beside=["once", "twice"]
    )
    once = await queue.enqueue(end_own_process, str(ledger), "once", death)
    twice = await queue.enqueue(
        Task(end_own_process, [str(ledger), "twice", death], max_attempts=2, retry=RetryPolicy(backoff=0.1))
    )
    tasks = await settle(queue, alive=[worker])
    await stop_leaving_nothing_behind(fleet, worker)

    crash = CRASHED + DEATHS[death][1]
    for task_id, attempts in ((once, 1), (twice, 2)):
        info = tasks[task_id]
        assert (info.status, info.attempts, info.error) == (TaskStatus.FAILED, attempts, crash)
        assert [(attempt.outcome, attempt.error) for attempt in info.history] == [
            (AttemptOutcome.FAILED, crash)
        ] * attempts
    for key, attempts in (("once", 1), ("twice", 2)):
        runs = ledger.of(key)
        assert [(run.attempt, run.completed) for run in runs] == [(n + 1, False) for n in range(attempts)]
        assert worker.pid not in {run.pid for run in runs}, "the task ran in the worker's own process"
    assert_ran_once(tasks, innocent, ledger)


@pytest.fixture(params=sorted(DEATHS))
def death(request: pytest.FixtureRequest) -> str:
    """How a poison task ends its process."""
    return str(request.param)


async def start_innocents(
    queue: TaskQueue,
    ledger: Ledger,
    worker: Child,
    count: int,
    *,
    seconds: float,
    retry_seconds: float | None = None,
    max_attempts: int = 1,
    beside: Sequence[str] = (),
) -> dict[str, str]:
    """Enqueue `count` `work` tasks, async and sync in turn, and wait until all run; return their ids by key.

    They go on until every poison task keyed in `beside` has started, and `seconds` more, so that they
    surely run beside the poison."""
    ids = {}
    for n in range(count):
        key, function = (f"sync-{n}", work_sync) if n % 2 else (f"async-{n}", work)
        call = Task(function, [str(ledger), key, seconds, retry_seconds, beside], max_attempts=max_attempts)
        ids[key] = await queue.enqueue(call)
    await started(ledger, *ids, alive=[worker])
    return ids


async def stop_leaving_nothing_behind(fleet: Fleet, worker: Child) -> None:
    """SIGTERM: the worker exits 0, and the processes it ran tasks in (in process mode) exit with it."""
    assert await fleet.stop(worker) == 0, worker.describe()
    await eventually(lambda: not worker.leftovers(), f"{worker.name}'s child processes have exited")


def assert_ran_once(tasks: dict[str, TaskInfo], innocent: dict[str, str], ledger: Ledger) -> None:
    """Each innocent task succeeded at its first and only attempt, run once to the end."""
    for key, task_id in innocent.items():
        info = tasks[task_id]
        assert [attempt.outcome for attempt in info.history] == [AttemptOutcome.SUCCESS], (key, info)
        assert [(run.attempt, run.completed) for run in ledger.of(key)] == [(1, True)], key
