"""02: delayed execution with ``eta``. A task runs once its eta has passed, and not before.

Run it with ``python examples/basic/02_eta_delayed_execution.py``. It works in a temporary SQLite
database that is deleted when it finishes.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from sitq import SQLiteBackend, TaskQueue, ValidationError, Worker


def remind(message: str) -> str:
    return message


def seconds_since(start: datetime, moment: datetime | None) -> str:
    return "-" if moment is None else f"{(moment - start).total_seconds():.2f}s"


async def main(database: Path) -> None:
    async with TaskQueue(SQLiteBackend(database)) as queue, Worker(queue):
        start = datetime.now(UTC)

        # An eta is a timezone-aware datetime. sitq stores it in UTC.
        later = await queue.enqueue(remind, "in 1.5 seconds", eta=start + timedelta(seconds=1.5))
        soon = await queue.enqueue(remind, "in 0.5 seconds", eta=start + timedelta(seconds=0.5))
        # Without an eta, a task is due at once; an eta in the past means the same.
        now = await queue.enqueue(remind, "right away")
        overdue = await queue.enqueue(remind, "an hour late", eta=start - timedelta(hours=1))

        # Any time zone will do: this is the same instant as start + 1 s, written in UTC+9.
        in_utc_plus_9 = start.astimezone(timezone(timedelta(hours=9))) + timedelta(seconds=1)
        other_zone = await queue.enqueue(remind, "in 1 second, given in UTC+9", eta=in_utc_plus_9)

        await asyncio.sleep(0.2)
        print("after 0.2 s:")
        for task_id in (now, overdue, soon, other_zone, later):
            print(f"  {task_id[:8]} is {await queue.get_status(task_id)}")

        # A naive datetime (no tzinfo) is refused: sitq cannot know which clock it means.
        try:
            await queue.enqueue(remind, "naive", eta=datetime.now() + timedelta(seconds=1))
        except ValidationError as error:
            print(f"naive eta refused: {error}")

        print("results, with the time from enqueueing to the start of each run:")
        for task_id in (now, overdue, soon, other_zone, later):
            result = await queue.get_result(task_id, timeout=10)
            assert result is not None, "the worker should finish every task within 10 s"
            value = queue.deserialize_result(result)
            print(f"  {value!r:32} started after {seconds_since(start, result.started_at)}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="sitq-example-") as directory:
        asyncio.run(main(Path(directory) / "tasks.db"))
