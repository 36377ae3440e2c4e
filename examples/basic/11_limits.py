"""09: limits per key. At most two reports per tenant run at once, and a partner API is called at most
twice per second, across every worker; other tenants and other tasks are not held up.

Run it with ``python examples/basic/11_limits.py``. It works in a temporary SQLite database that is
deleted when it finishes. Two workers share it, as two processes or two hosts would.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import sitq
from sitq import Result, SQLiteBackend, TaskQueue, ValidationError, Worker


@sitq.task(concurrency_key=lambda tenant, name: f"tenant-{tenant}", concurrency_limit=2)
async def build_report(tenant: int, name: str) -> str:
    """At most two per tenant at once: the key is computed from the call's arguments, at enqueue."""
    await asyncio.sleep(0.1)
    return f"{name} for tenant {tenant}"


@sitq.task(rate_limit="2/s")
async def call_partner(order: int) -> float:
    """At most two starts in any second, counted per function (no key: the task's name is the key)."""
    return time.time()


def most_at_once(results: list[Result]) -> int:
    """The largest number of tasks that were running at the same moment, from their recorded times."""
    changes = []
    for result in results:
        assert result.started_at is not None and result.finished_at is not None
        changes += [(result.started_at, 1), (result.finished_at, -1)]
    running = peak = 0
    for _, change in sorted(changes):
        running += change
        peak = max(peak, running)
    return peak


async def main(database: Path) -> None:
    async with TaskQueue(SQLiteBackend(database)) as queue:
        reports = {
            tenant: [await queue.enqueue(build_report, tenant, f"report {n}") for n in range(6)]
            for tenant in (7, 8)
        }
        calls = [await queue.enqueue(call_partner, order) for order in range(4)]
        info = await queue.get_task(reports[7][0])
        print(f"key {info.concurrency_key!r}, limit {info.options.concurrency_limit}")
        async with Worker(queue, max_concurrency=8), Worker(queue, max_concurrency=8):
            for tenant, ids in reports.items():
                results = [await queue.get_result(task_id, timeout=30) for task_id in ids]
                done = [result for result in results if result is not None and result.value]
                print(f"tenant {tenant}: {len(done)} reports, at most {most_at_once(done)} at once")

            results = [await queue.get_result(task_id, timeout=30) for task_id in calls]
            starts = sorted(result.value for result in results if result is not None)
            # A start is counted when a worker claims the task, a moment before it runs.
            print(f"the third partner call waited for the window: {starts[2] - starts[0] >= 0.9}")

        try:
            await queue.enqueue(sitq.Task(call_partner, args=[9], rate_limit="twice a second"))
        except ValidationError as error:
            print(f"refused: {error}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(main(Path(directory) / "tasks.db"))
