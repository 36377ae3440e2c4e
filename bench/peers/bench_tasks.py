"""The task functions that sitq's and GigQ's worker processes import (Huey's are in `huey_tasks`).

Each is as cheap as its job allows: the no-ops do nothing; `record` appends the task's number to this
process's file (the duplicates check); `stamp` appends the time it started (the latency measures).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TextIO

_records: TextIO | None = None


def noop_sync() -> None:
    return None


async def noop_async() -> None:
    return None


def record_sync(i: int) -> None:
    _record(i)


async def record_async(i: int) -> None:
    _record(i)


def stamp_sync(path: str, i: int) -> None:
    _stamp(path, i, time.time())


async def stamp_async(path: str, i: int) -> None:
    _stamp(path, i, time.time())


def _record(i: int) -> None:
    """One line per run, in a file per process, written at once (line-buffered): a few microseconds."""
    global _records
    if _records is None:
        directory = Path(os.environ["BENCH_RECORDS"])
        _records = (directory / f"{os.getpid()}.log").open("a", buffering=1)
    _records.write(f"{i}\n")


def _stamp(path: str, i: int, started: float) -> None:
    with open(path, "a") as file:
        file.write(f"{i} {started!r}\n")
