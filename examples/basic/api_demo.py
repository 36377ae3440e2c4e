"""The public API of sitq at a glance: what there is, where it comes from, and a short run of each part.

Run it with ``python examples/basic/api_demo.py``. It works in a temporary SQLite database that is
deleted when it finishes.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sitq
from sitq import SQLiteBackend, SyncTaskQueue, Task, TaskQueue, TaskStatus, Worker

GROUPS = {
    "client and worker": ["TaskQueue", "SyncTaskQueue", "Worker"],
    "data": ["Task", "Result", "ReservedTask", "TaskStatus"],
    "backends": ["Backend", "MemoryBackend", "SQLiteBackend"],
    "serializers": ["Serializer", "JsonSerializer", "PickleSerializer", "CloudpickleSerializer"],
    "plugins": ["hookimpl"],
}


class _Annotation(str):
    """An annotation kept as written in the source, shown without quotes."""

    def __repr__(self) -> str:
        return str(self)


def summary(obj: object) -> str:
    """The first sentence of the object's own docstring."""
    doc = vars(obj).get("__doc__") if inspect.isclass(obj) else obj.__doc__
    first_paragraph = " ".join(inspect.cleandoc(doc or "").split("\n\n")[0].split())
    return first_paragraph.split(". ")[0].rstrip(".") or "(no docstring)"


def signature(obj: Callable[..., object]) -> str:
    plain = inspect.signature(obj)
    parameters = [
        p.replace(annotation=_Annotation(p.annotation)) if isinstance(p.annotation, str) else p
        for p in plain.parameters.values()
    ]
    returns = plain.return_annotation
    return str(plain.replace(parameters=parameters, return_annotation=_Annotation(returns)))


def show_surface() -> None:
    print("== the sitq package ==")
    for group, names in GROUPS.items():
        print(f"{group}:")
        for name in names:
            obj = getattr(sitq, name)
            print(f"  sitq.{name:22} {summary(obj)}")
    errors = sorted(name for name in sitq.__all__ if name.endswith("Error"))
    print(f"exceptions: {', '.join(errors)}")

    print("\n== signatures ==")
    for cls in (TaskQueue, SyncTaskQueue, Worker, SQLiteBackend):
        print(f"{cls.__name__}{signature(cls)}")
    for method in (TaskQueue.enqueue, TaskQueue.enqueue_many, TaskQueue.get_status, TaskQueue.get_result):
        print(f"await TaskQueue.{method.__name__}{signature(method)}")

    print("\n== installed plugins (entry point group 'sitq') ==")
    for entry_point in importlib.metadata.entry_points(group="sitq"):
        dist = entry_point.dist
        provider = f"{dist.name} {dist.version}" if dist else "?"
        print(f"  {entry_point.name:12} {entry_point.value:26} from {provider}")


def double(x: int) -> int:
    return 2 * x


async def run_async(database: Path) -> None:
    print("\n== TaskQueue and Worker (async) ==")
    async with TaskQueue(SQLiteBackend(database)) as queue, Worker(queue, max_concurrency=2):
        now_id = await queue.enqueue(double, 21)
        later_id = await queue.enqueue(
            Task(double, args=[50], eta=datetime.now(UTC) + timedelta(seconds=0.3))
        )
        for task_id in (now_id, later_id):
            result = await queue.get_result(task_id, timeout=10)
            assert result is not None and result.status is TaskStatus.SUCCESS
            print(f"  {task_id[:8]}: {result.status}, value={queue.deserialize_result(result)}")


def run_sync(database: Path) -> None:
    print("\n== SyncTaskQueue (blocking) ==")
    with SyncTaskQueue(SQLiteBackend(database)) as queue:
        task_id = queue.enqueue(double, 8)
        print(f"  {task_id[:8]}: {queue.get_status(task_id)} (no worker is running)")
        print(f"  get_result with timeout=0.1 returns {queue.get_result(task_id, timeout=0.1)}")


if __name__ == "__main__":
    show_surface()
    with tempfile.TemporaryDirectory(prefix="sitq-example-") as directory:
        asyncio.run(run_async(Path(directory) / "tasks.db"))
        run_sync(Path(directory) / "tasks.db")
