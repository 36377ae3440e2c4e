"""09: unique tasks. An HTTP handler that enqueues on every retry of a request, made safe by a unique key.

A client that times out sends its request again with the same ``Idempotency-Key`` header. The handler
enqueues the charge every time; the key makes every enqueue after the first answer with the first
task's id: while it is pending or running, and, with ``unique_for``, for an hour after it succeeded, so
the retry reads the charge's result instead of charging twice. A failed charge frees the key.

Run it with ``python examples/basic/09_unique_tasks.py``. It works in a temporary SQLite database that
is deleted when it finishes.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import timedelta
from pathlib import Path

import sitq
from sitq import SQLiteBackend, Task, TaskQueue, Worker


@sitq.task(
    # The key, from the call's own arguments; the request's idempotency key makes it unique per request.
    unique_key=lambda account, cents, idempotency_key: f"charge-{idempotency_key}",
    unique_for=timedelta(hours=1),
)
def charge(account: str, cents: int, idempotency_key: str) -> str:
    if cents <= 0:
        raise ValueError(f"cannot charge {cents} cents")
    return f"charged {cents} cents to {account}"


async def handle_request(queue: TaskQueue, account: str, cents: int, idempotency_key: str) -> str:
    """What an HTTP handler does for POST /charges: enqueue, and answer with the task's id."""
    return await queue.enqueue(charge, account, cents, idempotency_key)


async def main(database: Path) -> None:
    async with TaskQueue(SQLiteBackend(database)) as queue:
        # 1. The client sends its request three times; no worker has run anything yet.
        ids = [await handle_request(queue, "acct-1", 500, "req-7f3a") for _ in range(3)]
        print(f"three requests, one task: {len(set(ids)) == 1}")

        async with Worker(queue):
            result = await queue.get_result(ids[0], timeout=10)
            assert result is not None
            print(f"first run: {result.value}")

            # 2. Within the hour, a retry gets the finished task, whose result is cached: nothing runs.
            retry = await handle_request(queue, "acct-1", 500, "req-7f3a")
            cached = await queue.get_result(retry, timeout=0)
            assert cached is not None
            print(f"retry after success: same task {retry == ids[0]}, value {cached.value!r}")
            runs = len((await queue.get_task(ids[0])).history)
            print(f"the charge ran {runs} time(s) for 4 requests")

            # 3. A charge that fails frees its key: the client's retry is a new task.
            bad = await handle_request(queue, "acct-2", 0, "req-9c21")
            failed = await queue.get_result(bad, timeout=10)
            assert failed is not None
            again = await handle_request(queue, "acct-2", 0, "req-9c21")
            print(f"after a failure ({failed.error}): new task {again != bad}")
            await queue.get_result(again, timeout=10)

        # 4. One batch with one key twice stores one task; both get its id. Keys may be given per call.
        first, second = await queue.enqueue_many(
            [
                Task(charge, ["acct-3", 100, "req-b"], unique_key="nightly-acct-3"),
                Task(charge, ["acct-3", 100, "req-c"], unique_key="nightly-acct-3"),
            ]
        )
        print(f"one batch, one key twice: {first == second}")
        info = await queue.get_task(first)
        print(f"stored key {info.unique_key!r}, unique_for {info.options.unique_for}s")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="sitq-example-") as directory:
        asyncio.run(main(Path(directory) / "tasks.db"))
