"""A worker rides out a failing store: it backs off instead of spinning, says so once, keeps what it could
not record, and resumes within about a second once the fault clears. The store is a real SQLite file
behind a backend whose operations fail while a test says so."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sample_tasks import add, sleep_then

from sitq import TaskQueue, Worker
from sitq.errors import BackendError
from sitq.models import AttemptOutcome, ReservedTask, TaskOutcome, TaskStatus
from sitq_sqlite import SQLiteBackend

FAULT = "injected fault: the store is unreachable"


class FlakyBackend(SQLiteBackend):
    """A real SQLite backend whose named operations raise `BackendError` while they are in `failing`:
    "claim" (a claim with nothing to record), "record" (a claim or complete that records outcomes),
    "renew" and "next_due". Counts the tries of each."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.failing: set[str] = set()
        self.tries: dict[str, int] = {}

    def _try(self, operation: str) -> None:
        self.tries[operation] = self.tries.get(operation, 0) + 1
        if operation in self.failing:
            raise BackendError(FAULT)

    async def claim(self, **claim: Any) -> list[ReservedTask]:
        self._try("record" if claim.get("outcomes") else "claim")
        return await super().claim(**claim)

    async def complete(self, outcomes: Sequence[TaskOutcome]) -> None:
        self._try("record")
        await super().complete(outcomes)

    async def renew(
        self, task_ids: Sequence[str], *, worker_id: str, now: datetime, lease: timedelta
    ) -> set[str]:
        self._try("renew")
        return await super().renew(task_ids, worker_id=worker_id, now=now, lease=lease)

    async def next_due(self, queues: Sequence[str]) -> datetime | None:
        self._try("next_due")
        return await super().next_due(queues)


class Started:
    """Tells the test, through the public hook, that a task has started."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def sitq_task_started(self) -> None:
        self.event.set()


def sitq_records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("sitq") and r.levelno >= level]


async def test_a_failing_claim_backs_off_logs_once_and_work_resumes_within_a_second(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    backend = FlakyBackend(tmp_path / "tasks.db")
    async with TaskQueue(backend) as queue:
        task_ids = [await queue.enqueue(add, n, n) for n in range(3)]
        backend.failing = {"claim", "next_due"}
        async with Worker(queue, poll_interval=0.2):
            await asyncio.sleep(3)
            failed_tries = backend.tries["claim"]
            backend.failing = set()
            cleared = time.monotonic()
            results = [await queue.get_result(task_id, timeout=10) for task_id in task_ids]
            resumed_after = time.monotonic() - cleared
    assert [result.value for result in results if result is not None] == [0, 2, 4]
    # Waits of 50 ms doubling to 1 s, halved at most by jitter: about 7 tries in 3 s, not thousands.
    assert 4 <= failed_tries <= 15, failed_tries
    assert resumed_after < 2.0, f"work resumed {resumed_after:.2f}s after the fault cleared"
    errors = sitq_records(caplog, logging.ERROR)
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "claiming tasks failed" in errors[0].getMessage() and FAULT in errors[0].getMessage()
    assert errors[0].exc_info is not None  # the one traceback
    recovered = [r for r in caplog.records if "works again" in r.getMessage()]
    assert len(recovered) == 1 and recovered[0].levelno == logging.INFO
    assert "claiming tasks works again" in recovered[0].getMessage()


async def test_an_outcome_that_cannot_be_recorded_is_kept_and_recorded_once_the_store_is_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    backend = FlakyBackend(tmp_path / "tasks.db")
    async with TaskQueue(backend) as queue:
        # Renewals fail too, yet the lease (5 s) outlives the 2.5 s fault, so no other worker could take over.
        started = Started()
        async with Worker(queue, lease=5, poll_interval=0.2, plugins=[started]):
            task_id = await queue.enqueue(sleep_then, 0.3, "kept")
            await asyncio.wait_for(started.event.wait(), 10)
            backend.failing = {"record", "renew"}
            await asyncio.sleep(2.5)
            assert await queue.get_status(task_id) is TaskStatus.IN_PROGRESS
            backend.failing = set()
            result = await queue.get_result(task_id, timeout=10)
        info = await queue.get_task(task_id)
    assert result is not None and result.value == "kept"
    assert [(a.attempt, a.outcome) for a in info.history] == [(1, AttemptOutcome.SUCCESS)]
    assert backend.tries["record"] >= 3
    errors = [r.getMessage() for r in sitq_records(caplog, logging.ERROR)]
    assert len(errors) == 2, errors
    assert any("recording finished tasks failed" in e for e in errors)
    assert any("renewing leases failed" in e for e in errors)
