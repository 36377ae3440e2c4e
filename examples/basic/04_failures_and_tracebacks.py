"""04: failures and tracebacks. A task that raises is recorded as failed, with its error and traceback,
and the worker goes on with the next task.

Run it with ``python examples/basic/04_failures_and_tracebacks.py``. It works in a temporary SQLite
database that is deleted when it finishes.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from pathlib import Path

from sitq import SQLiteBackend, TaskExecutionError, TaskNotFoundError, TaskQueue, Worker


def parse_price(text: str) -> float:
    return float(text.removeprefix("$"))


async def charge(account: str, amount: float) -> str:
    if amount <= 0:
        raise ValueError(f"cannot charge {amount} to {account}")
    return f"charged {amount} to {account}"


def open_lock() -> threading.Lock:
    """Returns fine, but a lock cannot be serialized: the task fails when its result is stored."""
    return threading.Lock()


async def main(database: Path) -> None:
    async with TaskQueue(SQLiteBackend(database)) as queue, Worker(queue):
        task_ids = {
            "good price": await queue.enqueue(parse_price, "$12.50"),
            "bad price": await queue.enqueue(parse_price, "twelve"),
            "bad charge": await queue.enqueue(charge, "acct-1", -5),
            "unstorable result": await queue.enqueue(open_lock),
            "good charge": await queue.enqueue(charge, "acct-1", 5),
        }

        for label, task_id in task_ids.items():
            result = await queue.get_result(task_id, timeout=10)
            assert result is not None, "every task finishes, whether it succeeds or fails"
            print(f"{label}: status={result.status} is_error={result.is_error}")
            if result.status == "success":
                print(f"    value: {queue.deserialize_result(result)!r}")
            else:
                # `error` is "ExceptionType: message"; `traceback` is the formatted traceback text.
                print(f"    error: {result.error}")
                assert result.traceback is not None
                print(f"    last traceback line: {result.traceback.strip().splitlines()[-1]}")

        # The full traceback points at the line in the task that raised.
        failed = await queue.get_result(task_ids["bad charge"], timeout=10)
        assert failed is not None and failed.traceback is not None
        print("\nthe traceback of the failed charge:")
        print(failed.traceback.rstrip())

        # unwrap() returns the value, or raises TaskExecutionError carrying the task's error and traceback.
        try:
            failed.unwrap()
        except TaskExecutionError as error:
            print(f"\nunwrap() raised TaskExecutionError: {error}")

        # Asking about an id that was never enqueued raises at once instead of waiting.
        try:
            await queue.get_result("no-such-task", timeout=10)
        except TaskNotFoundError as error:
            print(f"get_result() raised TaskNotFoundError: {error}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="sitq-example-") as directory:
        asyncio.run(main(Path(directory) / "tasks.db"))
