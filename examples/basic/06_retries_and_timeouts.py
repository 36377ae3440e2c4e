"""06: retries and timeouts. A flaky task retried with backoff until it succeeds, a task that runs past
its timeout, and a task that asks for its own retry; each attempt is in the task's history.

Run it with ``python examples/basic/06_retries_and_timeouts.py``. It works in a temporary SQLite
database that is deleted when it finishes.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import sitq
from sitq import RetryPolicy, SQLiteBackend, Task, TaskQueue, Worker

# Retries after 0.1 s, then 0.2 s, without jitter, so the example is quick and the delays are exact.
FAST = RetryPolicy(backoff=0.1, factor=2, jitter=0, retry_on=[ConnectionError])


@sitq.task(max_attempts=3, retry=FAST)
async def fetch_rates(currency: str) -> str:
    """Fails on its first two attempts, as a flaky network call would, then succeeds."""
    attempt = sitq.current_task().attempt
    if attempt < 3:
        raise ConnectionError(f"rates service unreachable on attempt {attempt}")
    return f"{currency} rates fetched on attempt {attempt}"


async def build_report() -> str:
    """Takes far longer than its timeout allows."""
    await asyncio.sleep(30)
    return "report"


def send_digest(address: str) -> str:
    """Asks for a retry itself, in 0.2 s, the first time; a plain function can do it too."""
    context = sitq.current_task()
    if context.attempt == 1:
        raise sitq.Retry(delay=0.2, reason="the mail server said: try again later")
    return f"digest sent to {address} on attempt {context.attempt} of {context.max_attempts}"


class Observer:
    """A plugin that prints the retry and timeout events, as the worker fires them."""

    def sitq_task_retried(self, task_name: str, attempt: int, delay: float, error: str) -> None:
        print(f"  [hook] {task_name}: attempt {attempt} failed ({error}); retried in {delay:.2g}s")

    def sitq_task_timed_out(self, task_name: str, attempt: int, timeout: float) -> None:
        print(f"  [hook] {task_name}: attempt {attempt} timed out after {timeout}s")


async def main(database: Path) -> None:
    async with TaskQueue(SQLiteBackend(database), plugins=[Observer()]) as queue, Worker(queue):
        # 1. The decorator's options apply: 3 attempts, retried on ConnectionError.
        rates = await queue.enqueue(fetch_rates, "EUR")
        result = await queue.get_result(rates, timeout=10)
        assert result is not None
        print(f"fetch_rates: {result.status}, value {result.value!r}")
        info = await queue.get_task(rates)
        print(f"  {info.attempts} attempts, max_attempts={info.options.max_attempts}; history:")
        for attempt in info.history:
            print(f"    attempt {attempt.attempt}: {attempt.outcome} {attempt.error or ''}".rstrip())

        # 2. A timeout for this call only, given on the Task. With one attempt, the task ends as timeout.
        report = await queue.enqueue(Task(build_report, timeout=0.2))
        result = await queue.get_result(report, timeout=10)
        assert result is not None
        print(f"build_report: status {result.status}, error {result.error}")

        # 3. sitq.Retry reruns the task after its own delay, whatever the retry policy, while attempts remain.
        digest = await queue.enqueue(Task(send_digest, ["ops@example.com"], max_attempts=2))
        result = await queue.get_result(digest, timeout=10)
        assert result is not None
        print(f"send_digest: {result.status}, value {result.value!r}")
        history = (await queue.get_task(digest)).history
        print(f"  outcomes: {[str(attempt.outcome) for attempt in history]}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="sitq-example-") as directory:
        asyncio.run(main(Path(directory) / "tasks.db"))
