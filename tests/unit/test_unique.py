"""Unique keys in core: how `Task` and `@sitq.task` take them, how a callable key is resolved at enqueue,
what is refused and how, and what an enqueue whose key is held does (and does not) fire or run."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sample_tasks import add, fail

import sitq
from sitq import (
    BackendError,
    MemoryBackend,
    SyncTaskQueue,
    Task,
    TaskOptions,
    TaskQueue,
    TaskStatus,
    ValidationError,
    Workflow,
)
from sitq.models import NewTask
from sitq.semantics import cached_since, key_holders


@sitq.task(unique_key=lambda order_id, *, kind="receipt": f"{kind}-{order_id}", unique_for=60)
def send_receipt(order_id: int, *, kind: str = "receipt") -> str:
    return f"sent {kind} for {order_id}"


@sitq.task(unique_key="nightly-report")
def nightly_report() -> str:
    return "report"


@sitq.task(unique_key=lambda order_id: order_id)
def keyed_by_an_int(order_id: int) -> None:
    pass


@sitq.task(unique_key=lambda order_id: 1 / 0)
def keyed_by_a_broken_callable(order_id: int) -> None:
    pass


class Enqueued:
    ids: ClassVar[list[str]] = []

    def sitq_task_enqueued(self, task_id: str) -> None:
        self.ids.append(task_id)


@pytest.fixture
async def queue() -> AsyncIterator[TaskQueue]:
    Enqueued.ids.clear()
    async with TaskQueue(MemoryBackend(), plugins=[Enqueued()]) as queue:
        yield queue


async def test_a_callable_key_is_called_with_the_calls_own_arguments(queue: TaskQueue) -> None:
    first = await queue.enqueue(send_receipt, 42)
    assert await queue.enqueue(send_receipt, 42) == first
    assert await queue.enqueue(Task(send_receipt, [42], {"kind": "receipt"})) == first
    other = await queue.enqueue(send_receipt, 42, kind="refund")
    assert other != first
    assert [(await queue.get_task(task_id)).unique_key for task_id in (first, other)] == [
        "receipt-42",
        "refund-42",
    ]
    assert (await queue.get_task(first)).options.unique_for == 60.0
    assert Enqueued.ids == [first, other], "a task left out for its key fires no sitq_task_enqueued"


async def test_a_tasks_own_key_wins_over_the_decorators(queue: TaskQueue) -> None:
    first = await queue.enqueue(nightly_report)
    assert await queue.enqueue(nightly_report) == first
    own = await queue.enqueue(Task(nightly_report, unique_key="tuesday"))
    assert own != first and (await queue.get_task(own)).unique_key == "tuesday"


async def test_a_callable_key_that_raises_or_returns_no_str_is_refused_naming_the_function(
    queue: TaskQueue,
) -> None:
    with pytest.raises(ValidationError, match=r"unique_key of @sitq.task on .*keyed_by_an_int.* not 7"):
        await queue.enqueue(keyed_by_an_int, 7)
    with pytest.raises(
        ValidationError, match=r"unique_key of @sitq.task on .*keyed_by_a_broken_callable raised ZeroDivision"
    ):
        await queue.enqueue(keyed_by_a_broken_callable, 7)
    assert await queue.stats() == {}


@pytest.mark.parametrize("key", ["", 42, b"bytes", "line\nbreak", "x" * 256])
def test_a_bad_key_is_refused(key: Any) -> None:
    with pytest.raises(ValidationError, match="unique_key must be a non-empty str"):
        Task(add, [1, 2], unique_key=key)
    with pytest.raises(ValidationError, match="unique_key"):
        sitq.task(unique_key=key)


@pytest.mark.parametrize("window", [-1, timedelta(seconds=-1), float("nan"), "60", True, 1e12])
def test_a_bad_unique_for_is_refused(window: Any) -> None:
    for build in (
        lambda: Task(add, [1, 2], unique_key="k", unique_for=window),
        lambda: sitq.task(unique_for=window),
        lambda: TaskOptions(unique_for=window),
    ):
        with pytest.raises(ValidationError, match="unique_for must be a timedelta or a number of seconds"):
            build()


def test_unique_for_is_taken_as_a_timedelta_or_seconds() -> None:
    assert Task(add, unique_for=timedelta(minutes=2)).options().unique_for == 120.0
    assert Task(add, unique_for=90).options().unique_for == 90.0
    assert Task(send_receipt, [1]).options().unique_for == 60.0
    assert Task(send_receipt, [1], unique_for=0).options().unique_for == 0.0


async def test_a_workflow_with_a_keyed_task_is_refused(queue: TaskQueue) -> None:
    workflow = Workflow("keyed")
    workflow.add(Task(add, [1, 2], unique_key="k"))
    with pytest.raises(ValidationError, match=r"a workflow's tasks cannot have unique keys .*'k'"):
        await queue.submit(workflow)
    assert await queue.stats() == {}


async def test_a_failed_task_frees_its_key_and_a_success_holds_it_within_unique_for() -> None:
    async with TaskQueue(MemoryBackend(), eager=True) as queue:
        failed = await queue.enqueue(Task(fail, ["boom"], unique_key="job", unique_for=3600))
        assert await queue.get_status(failed) is TaskStatus.FAILED
        done = await queue.enqueue(Task(add, [2, 2], unique_key="job", unique_for=3600))
        assert done != failed
        result = await queue.get_result(done, timeout=0)
        assert result is not None and result.value == 4
        assert await queue.enqueue(Task(add, [9, 9], unique_key="job", unique_for=3600)) == done
        assert len(await queue.list_tasks()) == 2


def test_the_sync_queue_returns_the_holders_id() -> None:
    with SyncTaskQueue(MemoryBackend()) as queue:
        first = queue.enqueue(Task(add, [1, 2], unique_key="k"))
        assert queue.enqueue(Task(add, [1, 2], unique_key="k")) == first
        assert queue.enqueue_many([Task(add, [3, 4], unique_key="k"), Task(add, [5, 6])])[0] == first


async def test_concurrent_enqueues_of_one_key_share_a_write_and_all_get_the_stored_id(
    queue: TaskQueue,
) -> None:
    ids = await asyncio.gather(*(queue.enqueue(Task(add, [n, n], unique_key="k")) for n in range(20)))
    assert len(set(ids)) == 1 and len(await queue.list_tasks()) == 1


class ForgetfulBackend(MemoryBackend):
    """A backend written before unique keys: its enqueue answers nothing."""

    async def enqueue(self, tasks: Sequence[NewTask]) -> list[str]:
        await super().enqueue(tasks)
        return None  # type: ignore[return-value]  # what an old backend answers


async def test_a_backend_that_answers_no_ids_is_named() -> None:
    async with TaskQueue(ForgetfulBackend()) as queue:
        with pytest.raises(BackendError, match=r"ForgetfulBackend.enqueue answered None for 1 task"):
            await queue.enqueue(add, 1, 2)


T0 = datetime(2030, 1, 1, tzinfo=UTC)


def new(key: str | None, unique_for: float | None = None, at: datetime = T0) -> NewTask:
    return NewTask(
        id=f"new-{key}-{unique_for}-{at.timestamp()}",
        name="t",
        payload=b"",
        serializer="json",
        enqueued_at=at,
        eta=at,
        options=TaskOptions(unique_for=unique_for),
        unique_key=key,
    )


def test_key_holders_prefers_a_live_task_then_the_last_success_within_the_window() -> None:
    stored = [
        ("k", "old-success", TaskStatus.SUCCESS, T0 - timedelta(seconds=50)),
        ("k", "last-success", TaskStatus.SUCCESS, T0 - timedelta(seconds=10)),
        ("k", "failed", TaskStatus.FAILED, T0 - timedelta(seconds=1)),
        ("j", "running", TaskStatus.IN_PROGRESS, None),
        ("j", "late-success", TaskStatus.SUCCESS, T0),
    ]
    within, outside, no_window, live = new("k", 11), new("k", 10), new("k"), new("j", 3600)
    assert key_holders([within], stored) == ["last-success"]
    assert key_holders([outside], stored) == [outside.id]  # finished exactly at the window's start
    assert key_holders([no_window, within], stored) == [no_window.id, no_window.id]
    assert key_holders([live], stored) == ["running"]
    assert key_holders([new(None), new(None, at=T0 + timedelta(1))], stored) == [
        new(None).id,
        new(None, at=T0 + timedelta(1)).id,
    ]


def test_cached_since_is_the_earliest_window_start_of_a_keyed_task() -> None:
    assert cached_since([new("k"), new(None, 100)]) is None
    assert cached_since([new("k", 10), new("j", 60)]) == T0 - timedelta(seconds=60)


_KEYS = st.sampled_from(["a", "b", "c", None])
_STATUSES = st.sampled_from(list(TaskStatus))


@given(
    stored=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), _STATUSES, st.integers(0, 100)), max_size=8),
    batch=st.lists(st.tuples(_KEYS, st.sampled_from([None, 0, 30, 200])), max_size=8),
)
def test_an_enqueue_repeated_at_once_stores_nothing_more(
    stored: list[tuple[str, TaskStatus, int]], batch: list[tuple[str | None, float | None]]
) -> None:
    """Whatever is stored, each key ends with at most one new task, every keyed task goes by a task with
    its key, and enqueueing the same calls again at the same moment stores nothing."""
    rows = [
        (key, f"stored-{n}", status, T0 - timedelta(seconds=age) if status.is_finished else None)
        for n, (key, status, age) in enumerate(stored)
    ]
    tasks = [dataclasses.replace(new(key, window), id=f"new-{n}") for n, (key, window) in enumerate(batch)]
    ids = key_holders(tasks, rows)
    kept = [task for task, task_id in zip(tasks, ids, strict=True) if task.id == task_id]
    keyed = [task.unique_key for task in kept if task.unique_key is not None]
    assert len(keyed) == len(set(keyed))
    keys = {row[1]: row[0] for row in rows} | {task.id: task.unique_key for task in tasks}
    assert all(keys[task_id] == task.unique_key for task, task_id in zip(tasks, ids, strict=True))
    now_stored = rows + [
        (task.unique_key, task.id, TaskStatus.PENDING, None) for task in kept if task.unique_key
    ]
    again = [dataclasses.replace(task, id=f"again-{n}") for n, task in enumerate(tasks)]
    assert all(
        task.unique_key is None or task_id != task.id
        for task, task_id in zip(again, key_holders(again, now_stored), strict=True)
    )
