"""Eager mode: `enqueue` runs the task inline and its result is stored when it returns, as a worker would
have recorded it (status, value, error, history, hooks), for applications' tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sample_tasks import add, fail, multiply, sleep_then

import sitq
from sitq import (
    MemoryBackend,
    RetryPolicy,
    SyncTaskQueue,
    Task,
    TaskQueue,
    TaskStatus,
    Workflow,
)


class Recorder:
    """Every lifecycle event, in order, as (hook, details)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def sitq_task_enqueued(self, task_name: str) -> None:
        self.events.append(("enqueued", task_name))

    def sitq_task_started(self, attempt: int) -> None:
        self.events.append(("started", attempt))

    def sitq_task_succeeded(self, task_name: str) -> None:
        self.events.append(("succeeded", task_name))

    def sitq_task_retried(self, attempt: int) -> None:
        self.events.append(("retried", attempt))

    def sitq_task_failed(self, error: str) -> None:
        self.events.append(("failed", error))

    def sitq_task_timed_out(self, attempt: int) -> None:
        self.events.append(("timed_out", attempt))

    def sitq_worker_started(self) -> None:
        self.events.append(("worker_started", None))


@sitq.task(max_attempts=3, retry=RetryPolicy(backoff=3600))  # an hour between attempts, unless eager
def succeeds_on_third_attempt(value: int) -> int:
    if sitq.current_task().attempt < 3:
        raise ConnectionError(f"attempt {sitq.current_task().attempt} failed")
    return value


def total(parent_results: dict[str, int]) -> int:
    return sum(parent_results.values())


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def queue(recorder: Recorder) -> AsyncIterator[TaskQueue]:
    async with TaskQueue(MemoryBackend(), plugins=[recorder], eager=True) as queue:
        yield queue


async def test_the_result_is_stored_when_enqueue_returns(queue: TaskQueue, recorder: Recorder) -> None:
    task_id = await queue.enqueue(add, 2, 3)

    assert await queue.get_status(task_id) is TaskStatus.SUCCESS
    result = await queue.get_result(task_id, timeout=0)
    assert result is not None and result.value == 5 and result.started_at is not None
    assert [hook for hook, _ in recorder.events] == ["enqueued", "started", "succeeded"]


async def test_a_failing_task_gives_a_failed_result_and_enqueue_does_not_raise(
    queue: TaskQueue, recorder: Recorder
) -> None:
    task_id = await queue.enqueue(fail, "out of stock")

    result = await queue.get_result(task_id, timeout=0)
    assert result is not None and result.status is TaskStatus.FAILED and result.is_error
    assert result.error == "RuntimeError: out of stock"
    assert result.traceback is not None and "raise RuntimeError(message)" in result.traceback
    assert recorder.events[-1] == ("failed", "RuntimeError: out of stock")


async def test_retries_run_at_once_whatever_their_delay(queue: TaskQueue, recorder: Recorder) -> None:
    task_id = await queue.enqueue(succeeds_on_third_attempt, 7)

    result = await queue.get_result(task_id, timeout=0)
    assert result is not None and result.value == 7
    info = await queue.get_task(task_id)
    assert info.attempts == 3 and [attempt.outcome for attempt in info.history] == [
        "failed",
        "failed",
        "success",
    ]
    assert [event for event in recorder.events if event[0] != "enqueued"] == [
        ("started", 1),
        ("retried", 1),
        ("started", 2),
        ("retried", 2),
        ("started", 3),
        ("succeeded", "test_eager.succeeds_on_third_attempt"),
    ]


async def test_an_attempt_past_its_timeout_ends_as_on_a_worker(queue: TaskQueue, recorder: Recorder) -> None:
    task_id = await queue.enqueue(Task(sleep_then, args=[5, "late"], timeout=0.05))

    result = await queue.get_result(task_id, timeout=0)
    assert result is not None and result.status is TaskStatus.TIMEOUT
    assert ("timed_out", 1) in recorder.events


async def test_a_task_due_later_runs_at_once(queue: TaskQueue) -> None:
    task_id = await queue.enqueue(multiply, 6, 7, eta=datetime.now(UTC) + timedelta(days=1))

    result = await queue.get_result(task_id, timeout=0)
    assert result is not None and result.value == 42


async def test_no_worker_starts_or_stays_behind(queue: TaskQueue, recorder: Recorder) -> None:
    await queue.enqueue(add, 1, 1)

    assert ("worker_started", None) not in recorder.events
    assert queue.backend.is_connected  # the queue's own connection, no longer shared with the eager worker
    await queue.close()
    assert not queue.backend.is_connected


async def test_enqueue_many_runs_every_task(queue: TaskQueue) -> None:
    ids = await queue.enqueue_many([Task(add, args=[1, 2]), Task(fail, args=["no"]), Task(multiply, [2, 5])])

    statuses = [await queue.get_status(task_id) for task_id in ids]
    assert statuses == [TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.SUCCESS]


async def test_a_workflow_runs_in_order_with_its_parents_results(queue: TaskQueue) -> None:
    workflow = Workflow("sum")
    first = workflow.add(Task(add, args=[1, 2]))
    second = workflow.add(Task(multiply, args=[3, 4]))
    workflow.add(Task(total), depends_on=[first, second])
    run = await queue.submit(workflow)

    status = await queue.get_workflow(run.id)
    assert status.finished and status.succeeded
    result = await queue.get_result(run.task_ids[-1], timeout=0)
    assert result is not None and result.value == 15


async def test_dependents_of_a_failed_task_are_cancelled_as_on_a_worker(queue: TaskQueue) -> None:
    workflow = Workflow("broken")
    first = workflow.add(Task(fail, args=["no input"]))
    workflow.add(Task(total), depends_on=[first])
    run = await queue.submit(workflow)

    assert [await queue.get_status(task_id) for task_id in run.task_ids] == [
        TaskStatus.FAILED,
        TaskStatus.CANCELLED,
    ]


async def test_a_task_waiting_for_an_unfinished_parent_stays_pending() -> None:
    backend = MemoryBackend()
    async with TaskQueue(backend) as producer, TaskQueue(backend, eager=True) as eager:
        later = await producer.enqueue(add, 1, 1, eta=datetime.now(UTC) + timedelta(days=1))
        child = await eager.enqueue(Task(add, args=[2, 2], depends_on=[later]))

        assert await eager.get_status(later) is TaskStatus.PENDING
        assert await eager.get_status(child) is TaskStatus.PENDING


async def test_setting_it_on_the_class_reaches_queues_built_before(monkeypatch: pytest.MonkeyPatch) -> None:
    async with (
        TaskQueue(MemoryBackend()) as built_before,
        TaskQueue(MemoryBackend(), eager=False) as opted_out,
    ):
        monkeypatch.setattr(TaskQueue, "eager", True)
        ran = await built_before.enqueue(add, 1, 2)
        waits = await opted_out.enqueue(add, 1, 2)

        assert await built_before.get_status(ran) is TaskStatus.SUCCESS
        assert await opted_out.get_status(waits) is TaskStatus.PENDING


def test_the_sync_wrapper_takes_it_too() -> None:
    with SyncTaskQueue(MemoryBackend(), eager=True) as queue:
        task_id = queue.enqueue(multiply, 4, 5)
        result = queue.get_result(task_id, timeout=0)
    assert result is not None and result.value == 20


async def test_off_by_default() -> None:
    async with TaskQueue(MemoryBackend()) as queue:
        assert queue.eager is False
        task_id = await queue.enqueue(add, 1, 2)
        assert await queue.get_status(task_id) is TaskStatus.PENDING
