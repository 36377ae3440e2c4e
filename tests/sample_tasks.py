"""Task functions importable by name, so every serializer (and every worker process) can find them."""

from __future__ import annotations

import asyncio
import sys
import threading


async def add(a: int, b: int) -> int:
    return a + b


def multiply(a: int, b: int) -> int:
    return a * b


def thread_name() -> str:
    return threading.current_thread().name


async def sleep_then(seconds: float, value: object) -> object:
    await asyncio.sleep(seconds)
    return value


def blocking_sleep_then(seconds: float, value: object) -> object:
    threading.Event().wait(seconds)
    return value


def fail(message: str) -> None:
    raise RuntimeError(message)


def exit_process() -> None:
    sys.exit(3)


def return_unpicklable() -> object:
    return threading.Lock()


def record_run(token: str, log_path: str) -> str:
    """Append one line per run to a shared log, so a test can count how often each task ran."""
    with open(log_path, "a") as log:
        log.write(f"{token}\n")
    return token
