"""Huey's tasks: Huey binds each task to a `Huey` instance, which its worker process must import.

The instance is `SqliteHuey` at its defaults on the file named by ``$BENCH_DB``.
"""

from __future__ import annotations

import os

import bench_tasks
from huey import SqliteHuey

huey = SqliteHuey("bench", filename=os.environ["BENCH_DB"])


@huey.task()
def noop() -> None:
    return None


@huey.task()
def record(i: int) -> None:
    bench_tasks.record_sync(i)


@huey.task()
def stamp(path: str, i: int) -> None:
    bench_tasks.stamp_sync(path, i)
