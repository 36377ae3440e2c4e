"""Task functions importable by name, so every serializer (and every worker process) can find them."""

from __future__ import annotations

import asyncio
import hashlib
import sys
import threading
from collections import Counter


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


CANCELLED: list[str] = []


async def sleep_until_cancelled(token: str) -> None:
    """Records in `CANCELLED` (in the worker's process) that its run was cancelled."""
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        CANCELLED.append(token)
        raise


class Escape(BaseException):
    """A BaseException of the user's own, neither an Exception nor one of Python's."""


_ESCAPES: dict[str, type[BaseException]] = {
    "KeyboardInterrupt": KeyboardInterrupt,
    "SystemExit": SystemExit,
    "GeneratorExit": GeneratorExit,
    "Escape": Escape,
}


def raise_base_exception(kind: str) -> None:
    """Raises a BaseException by name, in a worker thread."""
    raise _ESCAPES[kind]("from the task")


async def raise_base_exception_async(kind: str) -> None:
    """Raises a BaseException by name, on the worker's event loop."""
    await asyncio.sleep(0)
    raise _ESCAPES[kind]("from the task")


async def record_run(ledger: str, token: str) -> None:
    """Appends "token pid" to the `ledger` file (one write, O_APPEND: lines from many processes never mix),
    after a moment's work, so that several worker processes share a batch."""
    import os

    await asyncio.sleep(0.002)
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{token} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


def log_in(user: str, password: str, *, pin: int) -> None:
    """Fails as careless code does: its secrets in the message (as `str` shows them), and in the exception
    it chains from (as `repr` shows them). The message also names the types the secrets arrived as."""
    try:
        raise KeyError(password)
    except KeyError as lookup:
        raise PermissionError(
            f"{user} gave a {type(password).__name__} {password} and a {type(pin).__name__} {pin}"
        ) from lookup


def digest(password: str) -> str:
    """Needs the plain str: a `Secret` has no `encode`."""
    return hashlib.sha256(password.encode()).hexdigest()


GATES: dict[str, threading.Event] = {}
"""Opened by a test to let `wait_at_gate(token)` return (in the worker's process)."""


def wait_at_gate(token: str) -> str:
    """Blocks its thread until `GATES[token]` is set (30 s at most)."""
    GATES.setdefault(token, threading.Event()).wait(30)
    return token


PEAKS: Counter[str] = Counter()
"""The most calls of `block_counted(token, ...)` that ever ran at once, by token."""
_RUNNING: Counter[str] = Counter()
_COUNTING = threading.Lock()


def block_counted(token: str, seconds: float) -> None:
    """Blocks its thread for `seconds`, counted in `PEAKS[token]` while it does."""
    with _COUNTING:
        _RUNNING[token] += 1
        PEAKS[token] = max(PEAKS[token], _RUNNING[token])
    threading.Event().wait(seconds)
    with _COUNTING:
        _RUNNING[token] -= 1


def raise_stop_iteration() -> None:
    raise StopIteration("from the task")
