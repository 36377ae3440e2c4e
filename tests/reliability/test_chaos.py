"""Chaos: two producer processes enqueue while three workers run the tasks and, in one run, are killed with
SIGKILL at random moments (seeded: set SITQ_CHAOS_SEED to replay a run) and replaced.

What the ledger and the store must then agree on: every task succeeded, with a completed execution;
every execution but each task's last one, and every execution cut off, was on a killed worker; the stored
result is the last execution's; every attempt but the last is recorded lost, by a killed worker. Without
kills every task ran exactly once.
"""

from __future__ import annotations

import asyncio
import os
import random

from reliability.harness import BackendUnderTest, Child, Fleet, Ledger, settle, worker_pid

from sitq import AttemptOutcome, TaskInfo, TaskQueue, TaskStatus

WORKERS = 3
PRODUCERS = 2
TASKS = 300
KILLS = 5
KILLS_WITHIN = 8.0
"""Seconds from the start over which the kills are spread; the tasks take about ten seconds in all."""


async def test_workers_killed_at_random_lose_nothing_and_rerun_only_what_they_held(
    backend: BackendUnderTest, fleet: Fleet, ledger: Ledger, queue: TaskQueue
) -> None:
    seed = int(os.environ.get("SITQ_CHAOS_SEED") or random.SystemRandom().randrange(2**32))
    print(f"chaos seed {seed} (SITQ_CHAOS_SEED={seed} replays it)")
    tasks, results = await run_scenario(fleet, ledger, queue, seed, kills=KILLS, seconds=(0.1, 0.7))
    executions = ledger.executions()

    assert len(fleet.killed) == KILLS
    assert [info.status for info in tasks.values()] == [TaskStatus.SUCCESS] * TASKS, f"seed {seed}"
    cut_off = 0
    for key, info in tasks.items():
        runs = executions[key]
        last = runs[-1]
        assert last.completed, (seed, key, runs)
        assert all(run.pid in fleet.killed for run in runs[:-1]), (seed, key, runs, fleet.killed)
        assert all(run.completed or run.pid in fleet.killed for run in runs), (seed, key, runs)
        cut_off += sum(not run.completed for run in runs)
        assert results[key] == last.pid, (seed, key, runs)
        *lost, succeeded = info.history
        assert (succeeded.outcome, worker_pid(succeeded.worker_id)) == (AttemptOutcome.SUCCESS, last.pid)
        assert all(attempt.outcome is AttemptOutcome.LOST for attempt in lost), (seed, key, info.history)
        assert all(worker_pid(attempt.worker_id) in fleet.killed for attempt in lost), (seed, key)
        assert info.attempts == len(info.history), (seed, key, info.history)
    assert cut_off > 0, f"seed {seed}: no kill cut a task off, so this run tested nothing"
    assert backend.integrity_problems() == []
    reruns = sum(len(runs) - 1 for runs in executions.values())
    print(f"{KILLS} kills: {cut_off} executions cut off, {reruns} reruns, all {TASKS} tasks succeeded")


async def test_without_kills_every_task_runs_exactly_once(
    backend: BackendUnderTest, fleet: Fleet, ledger: Ledger, queue: TaskQueue
) -> None:
    tasks, results = await run_scenario(fleet, ledger, queue, seed=0, kills=0, seconds=(0.0, 0.1))
    executions = ledger.executions()

    assert [info.status for info in tasks.values()] == [TaskStatus.SUCCESS] * TASKS
    for key, info in tasks.items():
        (run,) = executions[key]
        assert run.completed and run.attempt == 1
        assert results[key] == run.pid
        assert [attempt.outcome for attempt in info.history] == [AttemptOutcome.SUCCESS]
    assert len(executions) == TASKS
    assert backend.integrity_problems() == []


async def run_scenario(
    fleet: Fleet, ledger: Ledger, queue: TaskQueue, seed: int, kills: int, seconds: tuple[float, float]
) -> tuple[dict[str, TaskInfo], dict[str, object]]:
    """Run the whole scenario, each task taking a time in the range `seconds`; return every task and its
    result's value, by ledger key."""
    chooser = random.Random(seed)
    workers = [fleet.start_worker() for _ in range(WORKERS)]
    producers = [
        fleet.start_producer(
            str(ledger),
            f"p{n}",
            str(TASKS // PRODUCERS),
            f"--seed={seed + n}",
            f"--min-seconds={seconds[0]}",
            f"--max-seconds={seconds[1]}",
            f"--max-attempts={kills + 1}",  # a task loses at most one attempt per kill
        )
        for n in range(PRODUCERS)
    ]
    loop = asyncio.get_running_loop()
    began = loop.time()
    for at in sorted(chooser.uniform(1.0, KILLS_WITHIN) for _ in range(kills)):
        await asyncio.sleep(max(0.0, began + at - loop.time()))
        victim = chooser.choice(busy(workers, ledger) or workers)
        print(f"{loop.time() - began:.2f}s: SIGKILL {victim.name} (pid {victim.pid})")
        await fleet.kill(victim)
        workers[workers.index(victim)] = fleet.start_worker()

    ids: dict[str, str] = {}
    for n, producer in enumerate(producers):
        assert await producer.exit_code() == 0, producer.describe()
        ids.update((f"p{n}-{i}", task_id) for i, task_id in enumerate(producer.output().split()))
    assert len(set(ids.values())) == TASKS
    by_id = await settle(queue, alive=workers)
    print(f"all tasks finished {loop.time() - began:.1f}s after the start")
    for worker in workers:
        assert await fleet.stop(worker) == 0, worker.describe()
        assert "Traceback" not in worker.errors(), worker.describe()
    assert len(by_id) == TASKS
    results = {}
    for key, task_id in ids.items():
        result = await queue.get_result(task_id, timeout=0)
        assert result is not None
        results[key] = result.value
    return {key: by_id[task_id] for key, task_id in ids.items()}, results


def busy(workers: list[Child], ledger: Ledger) -> list[Child]:
    """The workers running a task right now, as far as the ledger tells."""
    running = {run.pid for runs in ledger.executions().values() for run in runs if not run.completed}
    return [worker for worker in workers if worker.pid in running]
