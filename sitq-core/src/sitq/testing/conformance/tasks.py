"""The task functions and plugins of the suite's end-to-end tests.

Module-level, so that their tasks are pickled by reference and run in the test's own process, where a
test reads what they did (`Concurrency`, the plugins' records).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, ClassVar

from sitq.errors import Retry
from sitq.hookspecs import hookimpl
from sitq.models import RetryPolicy
from sitq.tasks import current_task, task


class Recorder:
    """A lifecycle plugin that records events; one hook raises to prove observers cannot hurt a task."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    @hookimpl  # marking is optional: unmarked ``sitq_*`` methods are hook implementations too
    def sitq_task_enqueued(self, task_id: str, queue: str) -> None:
        self.events.append(("enqueued", task_id, queue))

    async def sitq_task_started(self, task_id: str, queue: str, attempt: int) -> None:
        self.events.append(("started", task_id, queue))
        raise RuntimeError("a broken observer")

    def sitq_task_succeeded(self, task_id: str, queue: str, duration: float) -> None:
        assert duration >= 0
        self.events.append(("succeeded", task_id, queue))

    def sitq_task_failed(self, task_id: str, queue: str, error: str, traceback: str) -> None:
        self.events.append(("failed", task_id, queue))


class Started:
    """A lifecycle plugin that lets a test wait until a worker has started a task."""

    def __init__(self) -> None:
        self.first = asyncio.Event()

    def sitq_task_started(self) -> None:
        self.first.set()


class UnknownSerializer:
    """A serializer only the producer has: workers must fail its tasks clearly, not crash."""

    name: ClassVar[str] = "conformance-private"

    def dumps(self, obj: Any) -> bytes:
        import pickle

        return pickle.dumps(obj)

    def loads(self, data: bytes) -> Any:
        raise AssertionError("a worker must not find this serializer")


async def add(a: int, b: int) -> int:
    return a + b


def multiply(a: int, b: int) -> int:
    return a * b


def explode() -> None:
    raise ValueError("boom")


def explode_with_nul() -> None:
    raise ValueError("a NUL \x00 in an error")


FAST_RETRY = RetryPolicy(backoff=0.01, jitter=0)


@task(priority=7, queue="special", max_attempts=2, name="conformance.decorated")
def decorated(x: int) -> int:
    return x


async def retried_at_once() -> int:
    attempt = current_task().attempt
    if attempt == 1:
        raise Retry(delay=0)
    await asyncio.sleep(0.2)  # a burst worker must wait for this run too
    return attempt


def echo_priority(priority: str) -> str:
    return priority


def flaky(succeed_on: int) -> str:
    attempt = current_task().attempt
    if attempt < succeed_on:
        raise ConnectionError(f"attempt {attempt} failed")
    return f"succeeded on attempt {attempt}"


async def retry_once() -> dict[str, Any]:
    context = current_task()
    if context.attempt == 1:
        raise Retry(delay=0.01)
    return {"task_id": context.task_id, "attempt": context.attempt, "max_attempts": context.max_attempts}


async def sleep_for(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def slow_first_time() -> str:
    if current_task().attempt == 1:
        await asyncio.sleep(30)
    return "fast the second time"


def block_for(seconds: float) -> None:
    threading.Event().wait(seconds)


def download_data() -> list[int]:
    return [1, 2, 3]


def process_data(parent_results: dict[str, list[int]]) -> list[int]:
    [rows] = parent_results.values()
    return [row * 10 for row in rows]


def generate_report(parent_results: dict[str, list[int]]) -> str:
    [rows] = parent_results.values()
    return f"report of {len(rows)} rows"


async def send_notifications(parent_results: dict[str, list[int]]) -> str:
    [rows] = parent_results.values()
    return f"notified about {len(rows)} rows"


def archive_results(parent_results: dict[str, str]) -> list[str]:
    return sorted(parent_results.values())


class Concurrency:
    """Module-level, so that tasks pickled by reference share it with the test in this process."""

    running = 0
    peak = 0


async def tracked_sleep() -> None:
    Concurrency.running += 1
    Concurrency.peak = max(Concurrency.peak, Concurrency.running)
    await asyncio.sleep(0.02)
    Concurrency.running -= 1
