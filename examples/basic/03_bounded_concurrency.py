"""03: bounded concurrency. A worker never runs more than ``max_concurrency`` tasks at once.

The same eight half-second tasks run on a worker limited to 1, then 2, then 8 tasks at a time. The
run times, and the largest number of tasks seen running together, follow the limit.

Run it with ``python examples/basic/03_bounded_concurrency.py``. It works in a temporary SQLite
database that is deleted when it finishes.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import datetime
from pathlib import Path

from sitq import Result, SQLiteBackend, Task, TaskQueue, Worker

TASKS = 8
SECONDS_PER_TASK = 0.25


async def fetch(page: int) -> str:
    """Stands in for I/O, such as an HTTP request: it waits without blocking the worker's event loop."""
    await asyncio.sleep(SECONDS_PER_TASK)
    return f"page {page}"


def peak_overlap(results: list[Result]) -> int:
    """The largest number of tasks that were running at the same moment, from their recorded times."""
    events: list[tuple[datetime, int]] = []
    for result in results:
        assert result.started_at is not None and result.finished_at is not None
        events += [(result.started_at, 1), (result.finished_at, -1)]
    running = peak = 0
    for _, change in sorted(events):  # at equal times, -1 sorts first: a task ending frees its slot
        running += change
        peak = max(peak, running)
    return peak


async def run_with_limit(queue: TaskQueue, max_concurrency: int) -> None:
    started = time.perf_counter()
    async with Worker(queue, max_concurrency=max_concurrency):
        # enqueue_many stores all the tasks in one write.
        task_ids = await queue.enqueue_many(Task(fetch, args=[page]) for page in range(TASKS))
        results = []
        for task_id in task_ids:
            result = await queue.get_result(task_id, timeout=20)
            assert result is not None and result.status == "success"
            results.append(result)
    elapsed = time.perf_counter() - started
    print(
        f"max_concurrency={max_concurrency}: {TASKS} tasks of {SECONDS_PER_TASK}s took {elapsed:.2f}s, "
        f"at most {peak_overlap(results)} running at once"
    )


async def main(database: Path) -> None:
    async with TaskQueue(SQLiteBackend(database)) as queue:
        for limit in (1, 2, TASKS):
            await run_with_limit(queue, limit)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="sitq-example-") as directory:
        asyncio.run(main(Path(directory) / "tasks.db"))
