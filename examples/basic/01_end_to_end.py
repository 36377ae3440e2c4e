"""01: the whole round trip. Enqueue tasks, run them on a worker, read back their results.

Run it with ``python examples/basic/01_end_to_end.py``. It works in a temporary SQLite database that is
deleted when it finishes.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from sitq import SQLiteBackend, TaskQueue, Worker


async def greet(name: str) -> str:
    """An async task: the worker awaits it on its event loop."""
    await asyncio.sleep(0.1)
    return f"Hello, {name}!"


def word_count(text: str) -> int:
    """A plain function: the worker runs it in a thread, so it cannot block the event loop."""
    return len(text.split())


async def main(database: Path) -> None:
    backend = SQLiteBackend(database)

    async with TaskQueue(backend) as queue:
        # 1. Enqueue. Each call returns a task id once the task is stored in the database.
        task_ids = [
            await queue.enqueue(greet, "World"),
            await queue.enqueue(greet, name="sitq"),
            await queue.enqueue(word_count, "an async-first task queue for Python"),
        ]
        for task_id in task_ids:
            print(f"enqueued {task_id}: {await queue.get_status(task_id)}")

        # 2. Start a worker on the same backend object. It takes tasks in the background.
        worker = Worker(backend, max_concurrency=2)
        await worker.start()
        print("worker started")

        # 3. Wait for each result. get_result() returns None if the timeout passes first.
        for task_id in task_ids:
            result = await queue.get_result(task_id, timeout=10)
            if result is None:
                print(f"task {task_id} did not finish within 10 s")
                continue
            value = queue.deserialize_result(result)
            print(f"task {task_id}: {result.status}, value {value!r}")

        # 4. Stop the worker: it finishes what it is running, then lets go of the backend.
        await worker.stop()
        print("worker stopped")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="sitq-example-") as directory:
        asyncio.run(main(Path(directory) / "tasks.db"))
