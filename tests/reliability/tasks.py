"""Task functions of the reliability suite, run by its worker processes and imported there by name.

Each one appends to the execution ledger (see `harness.Ledger`) before it does anything else, so that a
test can tell from outside sitq which process ran which attempt of which task, and whether it finished.
Each returns the process id that ran it, so a stored result says which execution produced it.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import time
from collections.abc import Sequence

from sitq import current_task


class Poison(BaseException):
    """A custom `BaseException` that is neither an `Exception` nor one Python raises by itself."""


POISONS: dict[str, type[BaseException]] = {
    exception.__name__: exception for exception in (KeyboardInterrupt, SystemExit, GeneratorExit, Poison)
}
"""The `BaseException`s a task may raise, by name; each must fail only its own task."""


async def work(
    ledger: str, key: str, seconds: float, retry_seconds: float | None = None, after: Sequence[str] = ()
) -> int:
    """An async task on the event loop. It waits until every task key in `after` has started (see
    `wait_for`), so that it surely runs beside them, then takes `seconds` (`retry_seconds`, if given, on
    a retry)."""
    note(ledger, "start", key)
    await asyncio.to_thread(wait_for, ledger, after)
    await asyncio.sleep(_duration(seconds, retry_seconds))
    note(ledger, "end", key)
    return os.getpid()


def work_sync(
    ledger: str, key: str, seconds: float, retry_seconds: float | None = None, after: Sequence[str] = ()
) -> int:
    """`work` in the thread (or process) running sync tasks."""
    note(ledger, "start", key)
    wait_for(ledger, after)
    time.sleep(_duration(seconds, retry_seconds))
    note(ledger, "end", key)
    return os.getpid()


def _duration(seconds: float, retry_seconds: float | None) -> float:
    return seconds if retry_seconds is None or current_task().attempt == 1 else retry_seconds


def wait_for(ledger: str, keys: Sequence[str], timeout: float = 10.0) -> None:
    """Return once every task key in `keys` has started, by the ledger, or after `timeout` seconds: a
    worker shutting down waits for its running tasks, and must not wait for ever."""
    deadline = time.monotonic() + timeout
    while keys and time.monotonic() < deadline:
        with open(ledger) as lines:
            if {line.split()[1] for line in lines if line.startswith("start ")}.issuperset(keys):
                return
        time.sleep(0.01)


async def raise_base_exception(ledger: str, key: str, name: str) -> None:
    note(ledger, "start", key)
    raise POISONS[name]("poison")


def raise_base_exception_sync(ledger: str, key: str, name: str) -> None:
    note(ledger, "start", key)
    raise POISONS[name]("poison")


def end_own_process(ledger: str, key: str, how: str) -> None:
    """Die the way `how` says: `exit` (os._exit(3)), `sigkill` or `segfault` (reading address 0)."""
    note(ledger, "start", key)
    if how == "exit":
        os._exit(3)
    elif how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif how == "segfault":
        ctypes.string_at(0)
    raise ValueError(f"unknown way to die: {how!r}")


async def tick(ledger: str, schedule: str) -> None:
    """A periodic task's run. Every run of a schedule has the same arguments, so each notes its key as
    the schedule's name and its own task id: runs in one process stay apart in the ledger."""
    key = f"{schedule}:{current_task().task_id}"
    note(ledger, "start", key)
    note(ledger, "end", key)


def note(ledger: str, event: str, key: str) -> None:
    """Append one ledger line in one O_APPEND write, which no other process's line can split."""
    line = f"{event} {key} {current_task().attempt} {os.getpid()}\n".encode()
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
