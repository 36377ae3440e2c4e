"""Many hosts, one database: worker processes with a pool each drain one queue with no task lost and none
run twice (an execution ledger kept outside sitq tells)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from pathlib import Path

from sample_tasks import record_run

from sitq import Task, TaskQueue, TaskStatus

PROCESSES = 3
TASKS_PER_PROCESS = 300

WORKER = """
import asyncio, os, sys, time
from sitq import Worker

async def main(url, ready, go):
    worker = Worker(url, max_concurrency=10, poll_interval=0.2)
    open(ready, "w").close()
    while not os.path.exists(go):
        await asyncio.sleep(0.01)
    await worker.run(burst=True)

asyncio.run(main(*sys.argv[1:]))
"""


async def test_worker_processes_drain_one_database_without_duplicates_or_losses(
    postgres_url: str, tmp_path: Path
) -> None:
    ledger, go = tmp_path / "ledger", tmp_path / "go"
    total = PROCESSES * TASKS_PER_PROCESS
    async with TaskQueue(postgres_url) as queue:
        ids = await queue.enqueue_many([Task(record_run, [str(ledger), f"task-{n}"]) for n in range(total)])
        tests = str(Path(__file__).parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([tests, *sys.path])}
        ready = [tmp_path / f"ready-{n}" for n in range(PROCESSES)]
        workers = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-c", WORKER, postgres_url, str(flag), str(go), env=env
            )
            for flag in ready
        ]
        try:
            while not all(flag.exists() for flag in ready):  # noqa: ASYNC110 - files of other processes
                await asyncio.sleep(0.02)
            go.touch()
            codes = await asyncio.wait_for(asyncio.gather(*(worker.wait() for worker in workers)), 120)
        finally:
            for worker in workers:
                if worker.returncode is None:
                    worker.kill()
                    await worker.wait()
        assert codes == [0] * PROCESSES
        runs = [line.split() for line in ledger.read_text().splitlines()]
        counts = Counter(token for token, _ in runs)
        assert sorted(counts) == sorted(f"task-{n}" for n in range(total)), "a task was lost"
        assert max(counts.values()) == 1, "a task ran twice"
        assert len({pid for _, pid in runs}) == PROCESSES, "every process took a share"
        assert await queue.stats() == {"default": {TaskStatus.SUCCESS: total}}
        assert len(ids) == total
