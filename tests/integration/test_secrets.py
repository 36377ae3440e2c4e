"""`sitq.Secret` end to end, with real workers on a SQLite file: the task receives the plain value, and that
value appears nowhere else, not in the stored error, traceback or attempt history, the hooks' arguments,
the worker's log, or what `sitq show` prints; in thread, process and eager mode, with each serializer."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sample_tasks import digest, log_in
from sitq_command import Sitq

from sitq import Result, RetryPolicy, Secret, Task, TaskInfo, TaskQueue, TaskStatus, Worker

PASSWORD = "correct\thorse"
"""Its repr escapes the tab, so that masking must find the value as `str` shows it and as `repr` does."""
PIN = 735911
LEAKS = (PASSWORD, repr(PASSWORD), "horse", str(PIN))
ERROR = "PermissionError: ann gave a str ******** and a int ********"
"""What `log_in` fails with: it was given the plain values (a str and an int), and both are masked."""


class Recorder:
    """Every argument of every task event, as the hooks received them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def _record(self, event: str, arguments: dict[str, Any]) -> None:
        self.events.append((event, {name: value for name, value in arguments.items() if name != "self"}))

    def sitq_task_enqueued(self, task_id: str, task_name: str, queue: str, eta: datetime) -> None:
        self._record("enqueued", locals())

    def sitq_task_started(
        self, task_id: str, task_name: str, queue: str, worker_id: str, attempt: int, enqueued_at: datetime
    ) -> None:
        self._record("started", locals())

    def sitq_task_succeeded(
        self, task_id: str, task_name: str, queue: str, worker_id: str, duration: float
    ) -> None:
        self._record("succeeded", locals())

    def sitq_task_retried(
        self, task_id: str, task_name: str, queue: str, worker_id: str, attempt: int, delay: float, error: str
    ) -> None:
        self._record("retried", locals())

    def sitq_task_failed(
        self,
        task_id: str,
        task_name: str,
        queue: str,
        worker_id: str,
        duration: float,
        error: str,
        traceback: str,
    ) -> None:
        self._record("failed", locals())

    def errors(self, task_id: str) -> list[tuple[str, str]]:
        return [
            (event, arguments["error"])
            for event, arguments in self.events
            if arguments["task_id"] == task_id and "error" in arguments
        ]


def assert_hidden(text: str) -> None:
    assert not [leak for leak in LEAKS if leak in text], text


def careless_call() -> Task:
    """A call to `log_in` with two secrets, retried once at once."""
    return Task(
        log_in,
        args=["ann", Secret(PASSWORD)],
        kwargs={"pin": Secret(PIN)},
        max_attempts=2,
        retry=RetryPolicy(backoff=0, jitter=0),
    )


async def run_both(
    tmp_path: Path, mode: str, serializer: str, recorder: Recorder
) -> tuple[Result, Result, TaskInfo]:
    """Enqueue a call that needs the plain password and one that fails with its secrets in its message,
    and run both in `mode`: their results, and the failed task's info."""
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    async with TaskQueue(url, serializer, plugins=[recorder], eager=mode == "eager") as queue:
        needs_it = await queue.enqueue(digest, Secret(PASSWORD))
        careless = await queue.enqueue(careless_call())
        if mode != "eager":
            await Worker(queue, processes=1 if mode == "processes" else None).run(burst=True)
        succeeded = await queue.get_result(needs_it, timeout=0)
        failed = await queue.get_result(careless, timeout=0)
        info = await queue.get_task(careless)
    assert succeeded is not None and failed is not None
    return succeeded, failed, info


@pytest.mark.parametrize(
    ("mode", "serializer"),
    [
        ("threads", "json"),
        ("threads", "cloudpickle"),
        ("threads", "pickle"),
        ("threads", "dill"),
        ("processes", "json"),
        ("processes", "cloudpickle"),
        ("eager", "json"),
        ("eager", "cloudpickle"),
    ],
)
async def test_the_task_gets_the_plain_value_and_nothing_shows_it(
    tmp_path: Path, mode: str, serializer: str, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    with caplog.at_level(logging.DEBUG, logger="sitq"):
        succeeded, failed, info = await run_both(tmp_path, mode, serializer, recorder)
    assert succeeded.value == hashlib.sha256(PASSWORD.encode()).hexdigest()
    assert (failed.status, failed.error) == (TaskStatus.FAILED, ERROR)
    assert failed.traceback is not None
    assert f"\nKeyError: {'*' * 8}\n" in failed.traceback  # the chained exception, as repr shows it
    assert failed.traceback.rstrip().endswith(ERROR)
    assert_hidden(failed.traceback)
    assert [attempt.error for attempt in info.history] == [ERROR, ERROR]
    assert_hidden(repr(info))
    assert recorder.errors(failed.task_id) == [("retried", ERROR), ("failed", ERROR)]
    assert_hidden(repr(recorder.events))
    lines = [record.getMessage() for record in caplog.records if record.name == "sitq.worker"]
    failures = [line for line in lines if failed.task_id in line]
    assert len(failures) == 2 and all(line.endswith(f": {ERROR}") for line in failures)
    assert_hidden(caplog.text)


async def test_a_secret_within_another_secret_is_masked_whole(tmp_path: Path) -> None:
    """Masked longest first: a shorter secret inside a longer one does not leave the rest of it showing."""
    async with TaskQueue(f"sqlite:///{tmp_path / 'tasks.db'}", "json") as queue:
        task_id = await queue.enqueue(log_in, Secret("horse"), Secret("correct horse"), pin=Secret(PIN))
        await Worker(queue).run(burst=True)
        failed = await queue.get_result(task_id, timeout=0)
    assert failed is not None
    assert failed.error == "PermissionError: ******** gave a str ******** and a int ********"


async def test_sitq_show_never_shows_a_secret(tmp_path: Path) -> None:
    sitq = Sitq(tmp_path, f"sqlite:///{tmp_path / 'tasks.db'}")
    async with TaskQueue(sitq.url) as queue:
        task_id = await queue.enqueue(careless_call())
        await Worker(queue).run(burst=True)
    shown = sitq.json("show", task_id)
    assert (shown["status"], shown["error"]) == ("failed", ERROR)
    assert [attempt["error"] for attempt in shown["history"]] == [ERROR, ERROR]
    human = sitq.ok("show", task_id)
    assert "PermissionError: ann gave a str ********" in human
    assert_hidden(repr(shown))
    assert_hidden(human)
