"""07: cancellation. Cancel a scheduled task before it runs, and a running async task while it runs.

Run it with ``python examples/basic/07_cancellation.py``. It works in a temporary SQLite database that
is deleted when it finishes.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sitq import SQLiteBackend, TaskNotFoundError, TaskQueue, Worker


def send_reminder(user: str) -> str:
    return f"reminded {user}"


async def crawl(site: str) -> str:
    """A long async task. Cancelling it raises CancelledError at the await it is waiting in."""
    pages = 0
    try:
        while pages < 1000:
            await asyncio.sleep(0.05)  # fetch a page
            pages += 1
        return f"crawled {site}"
    except asyncio.CancelledError:
        print(f"  crawl: cancelled after {pages} pages, cleaning up")
        raise  # let the cancellation through, so that the task is recorded as cancelled


class Observer:
    """A plugin that prints each cancellation, and where it happened, and tells when a task starts."""

    def __init__(self) -> None:
        self.started = asyncio.Event()

    def sitq_task_started(self) -> None:
        self.started.set()

    def sitq_task_cancelled(self, task_name: str, worker_id: str | None) -> None:
        where = "by the caller of cancel()" if worker_id is None else "by its worker"
        print(f"  [hook] {task_name} cancelled {where}")


async def main(database: Path) -> None:
    # poll_interval bounds how long a running task takes to see its cancellation.
    observer = Observer()
    async with (
        TaskQueue(SQLiteBackend(database), plugins=[observer]) as queue,
        Worker(queue, poll_interval=0.1),
    ):
        # 1. A scheduled task is still pending: cancelling it is immediate, and it never runs.
        later = datetime.now(UTC) + timedelta(hours=1)
        reminder = await queue.enqueue(send_reminder, "ada", eta=later)
        print(f"cancel(reminder) returned {await queue.cancel(reminder)}")
        result = await queue.get_result(reminder, timeout=5)
        assert result is not None
        info = await queue.get_task(reminder)
        print(f"reminder: status {result.status}, attempts {info.attempts}")

        # 2. A running task: cancel() marks it and returns at once; its worker cancels it soon after.
        job = await queue.enqueue(crawl, "example.com")
        await observer.started.wait()
        await asyncio.sleep(0.2)  # let it crawl a few pages
        print(f"crawl is {await queue.get_status(job)}")
        print(f"cancel(job) returned {await queue.cancel(job)}")
        result = await queue.get_result(job, timeout=5)
        assert result is not None
        print(f"crawl: status {result.status}, error {result.error}")

        # 3. A finished task keeps its final status; an unknown id raises.
        done = await queue.enqueue(send_reminder, "grace")
        await queue.get_result(done, timeout=5)
        print(f"cancel(done) returned {await queue.cancel(done)}")
        try:
            await queue.cancel("no-such-task")
        except TaskNotFoundError as error:
            print(f"cancel('no-such-task') raised TaskNotFoundError: {error}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="sitq-example-") as directory:
        asyncio.run(main(Path(directory) / "tasks.db"))
