"""The task functions that sitq's and GigQ's worker processes import (Huey's are in `huey_tasks`).

Each is as cheap as its job allows: the no-ops do nothing; `record` appends the task's number to this
process's file (the duplicates check); `stamp` appends the time it started (the latency measures);
`spin` is a few milliseconds of pure Python and appends when it ran (the process-mode measure).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TextIO

SPIN_LOOPS = 200_000
"""Iterations of `spin`'s loop: about 5 ms of CPU on a 2020s server core (the report shows it)."""
RECORDS, SPINS = ".log", ".spin"
"""The suffixes of the per-process files of `record` and `spin`, in ``$BENCH_RECORDS``."""

_files: dict[str, TextIO] = {}


def noop_sync() -> None:
    return None


async def noop_async() -> None:
    return None


def record_sync(i: int) -> None:
    _append(RECORDS, f"{i}\n")


async def record_async(i: int) -> None:
    _append(RECORDS, f"{i}\n")


def stamp_sync(path: str, i: int) -> None:
    _stamp(path, i, time.time())


async def stamp_async(path: str, i: int) -> None:
    _stamp(path, i, time.time())


def spin(i: int) -> None:
    """CPU-bound: `burn`, then one line "i started ended" (wall-clock times, comparable across
    processes)."""
    started = time.time()
    burn()
    _append(SPINS, f"{i} {started!r} {time.time()!r}\n")


def burn() -> int:
    """A loop summing in pure Python, which holds the GIL throughout."""
    total = 0
    for k in range(SPIN_LOOPS):
        total += k
    return total


def _append(suffix: str, line: str) -> None:
    """One line per run, in a file per process, written at once (line-buffered): a few microseconds."""
    file = _files.get(suffix)
    if file is None:
        directory = Path(os.environ["BENCH_RECORDS"])
        file = _files[suffix] = (directory / f"{os.getpid()}{suffix}").open("a", buffering=1)
    file.write(line)


def _stamp(path: str, i: int, started: float) -> None:
    with open(path, "a") as file:
        file.write(f"{i} {started!r}\n")
