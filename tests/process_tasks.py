"""Task functions for process mode's tests: tasks that kill their own process, and innocent ones that run
beside them. Children import this module by name (tests/ is on their sys.path, as on the worker's)."""

from __future__ import annotations

import ctypes
import os
import signal
import time
from pathlib import Path

import sitq


def wait_for(path: str, seconds: float = 30.0) -> None:
    """Block until `path` exists: a task waits there for another one to reach a point."""
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {seconds}s")
        time.sleep(0.01)


def innocent(flag: str) -> int:
    """Runs until the poison task beside it is about to kill its own process, a little longer, and
    returns the id of the process it ran in."""
    wait_for(flag)
    time.sleep(0.2)
    return os.getpid()


def _about_to_die(flag: str) -> None:
    Path(flag).write_text(str(os.getpid()))


def kill_itself(flag: str) -> None:
    _about_to_die(flag)
    os.kill(os.getpid(), signal.SIGKILL)


def exit_at_once(flag: str) -> None:
    _about_to_die(flag)
    os._exit(3)


def segfault(flag: str) -> None:
    _about_to_die(flag)
    ctypes.string_at(0)


def kill_itself_on_first_attempt() -> str:
    if sitq.current_task().attempt == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return "survived"


def sleep_forever(pid_file: str) -> None:
    """Says which process runs it, then sleeps in one blocking call, as no thread could be stopped."""
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(3600)


def burn(seconds: float) -> dict[str, float]:
    """Keep a core busy for `seconds` of this process's CPU time; say when it ran and in which process."""
    started, cpu = time.time(), time.process_time()
    while time.process_time() - cpu < seconds:
        sum(range(10_000))
    return {"pid": os.getpid(), "started": started, "ended": time.time()}


async def context_of_async_task() -> dict[str, object]:
    task = sitq.current_task()
    return {"pid": os.getpid(), "task_id": task.task_id, "attempt": task.attempt, "worker": task.worker_id}


def add_parents(parent_results: dict[str, int]) -> int:
    return sum(parent_results.values())
