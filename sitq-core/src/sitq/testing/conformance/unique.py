"""Unique keys: a task whose key a stored task holds is not stored, and its enqueue answers with the
holder's id (`Backend.enqueue`, `sitq.semantics.key_holders`), at the protocol and end to end."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta
from typing import Any

from sitq.backend import Backend, Capability
from sitq.models import NewTask, Task, TaskStatus
from sitq.queue import TaskQueue
from sitq.testing.conformance.support import (
    LEASE,
    QUEUES,
    T0,
    ApplicationTransaction,
    ConformanceFixtures,
    new_task,
    outcome,
    requires,
)
from sitq.testing.conformance.tasks import add
from sitq.worker import Worker


def keyed(key: str, *, at: datetime | None = None, **option_fields: Any) -> NewTask:
    """A new task with unique key `key`, enqueued at `at` (by default a minute before T0)."""
    task = dataclasses.replace(new_task(**option_fields), unique_key=key)
    return task if at is None else dataclasses.replace(task, enqueued_at=at, eta=at)


class UniqueConformance(ConformanceFixtures):
    """Which task holds a key (pending, running, or succeeded within the new task's `unique_for`), and
    what an enqueue whose key is held answers and stores."""

    async def test_a_pending_or_running_task_holds_its_key(self, store: Backend) -> None:
        holder = keyed("invoice-42")
        assert await store.enqueue([holder]) == [holder.id]
        again = keyed("invoice-42", queue="other")  # keys are global: another queue shares them
        assert await store.enqueue([again]) == [holder.id]
        assert await store.get(again.id) is None
        [claimed] = await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=5, queues=QUEUES)
        assert claimed.id == holder.id
        while_running = keyed("invoice-42", unique_for=3600)
        assert await store.enqueue([while_running]) == [holder.id]
        assert await store.get(while_running.id) is None
        record = await store.get(holder.id)
        assert record is not None and record.unique_key == "invoice-42"
        assert record.options.unique_for is None and claimed.options.unique_for is None
        assert await store.stats() == {("default", TaskStatus.IN_PROGRESS): 1}

    async def test_a_task_that_failed_timed_out_or_was_cancelled_frees_its_key(self, store: Backend) -> None:
        for ending in (TaskStatus.FAILED, TaskStatus.TIMEOUT):
            holder = keyed("k", unique_for=3600)
            assert await store.enqueue([holder]) == [holder.id]
            await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=1, queues=QUEUES)
            await store.complete([outcome(holder.id, "w1", ending, error="E: x")])
        cancelled = keyed("k", unique_for=3600)
        assert await store.enqueue([cancelled]) == [cancelled.id]
        assert await store.cancel(cancelled.id, now=T0) is TaskStatus.CANCELLED
        fresh = keyed("k", unique_for=3600)
        assert await store.enqueue([fresh]) == [fresh.id]
        record = await store.get(fresh.id)
        assert record is not None and record.status is TaskStatus.PENDING

    async def test_a_success_holds_its_key_for_the_new_tasks_unique_for(self, store: Backend) -> None:
        holder = keyed("report")
        await store.enqueue([holder])
        await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=1, queues=QUEUES)
        await store.complete([outcome(holder.id, "w1", result=b"cached", finished_at=T0)])
        within = keyed("report", at=T0 + timedelta(seconds=59), unique_for=60)
        assert await store.enqueue([within]) == [holder.id]
        assert await store.get(within.id) is None
        record = await store.get(holder.id)
        assert record is not None and record.result == b"cached"
        assert record.options.unique_for is None, "the window is the new task's, not the holder's"
        without_window = keyed("report", at=T0 + timedelta(seconds=1))
        after_window = keyed("report", at=T0 + timedelta(seconds=61), unique_for=60)
        assert await store.enqueue([after_window]) == [after_window.id]
        assert await store.enqueue([without_window]) == [after_window.id]  # the new pending task holds it
        fresh = await store.get(after_window.id)
        assert fresh is not None and fresh.options.unique_for == 60.0 and fresh.unique_key == "report"

    async def test_a_success_without_a_window_frees_its_key(self, store: Backend) -> None:
        holder = keyed("once")
        await store.enqueue([holder])
        await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=1, queues=QUEUES)
        await store.complete([outcome(holder.id, "w1", finished_at=T0)])
        after = keyed("once", at=T0 + timedelta(seconds=1))
        assert await store.enqueue([after]) == [after.id]

    async def test_one_key_twice_in_a_batch_stores_the_first(self, store: Backend) -> None:
        held = keyed("held")
        await store.enqueue([held])
        first, second, other, plain, late = (
            keyed("a"),
            keyed("a"),
            keyed("b"),
            new_task(),
            keyed("held"),
        )
        assert await store.enqueue([first, second, other, plain, late]) == [
            first.id,
            first.id,
            other.id,
            plain.id,
            held.id,
        ]
        assert await store.get(second.id) is None and await store.get(late.id) is None
        assert await store.stats() == {("default", TaskStatus.PENDING): 4}
        claimed = await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=10, queues=QUEUES)
        assert [task.id for task in claimed] == [held.id, first.id, other.id, plain.id]

    async def test_a_batch_whose_keys_are_all_held_stores_nothing(self, store: Backend) -> None:
        held = keyed("held")
        await store.enqueue([held])
        assert await store.enqueue([keyed("held"), keyed("held")]) == [held.id, held.id]
        assert await store.stats() == {("default", TaskStatus.PENDING): 1}

    async def test_concurrent_enqueues_of_one_key_store_one_task(self, store: Backend) -> None:
        """Concurrent batches on one backend object (on a pool, on separate connections) that share keys,
        in different orders, each store their keys' tasks once and agree on the ids."""
        batches = [[keyed(f"race-{(n + i) % 5}") for i in range(5)] for n in range(10)]
        answers = await asyncio.gather(*(store.enqueue(batch) for batch in batches))
        ids = {
            task.unique_key: task_id
            for batch, got in zip(batches, answers, strict=True)
            for task, task_id in zip(batch, got, strict=True)
        }
        assert all(
            got == [ids[task.unique_key] for task in batch]
            for batch, got in zip(batches, answers, strict=True)
        )
        assert len(set(ids.values())) == 5
        assert await store.stats() == {("default", TaskStatus.PENDING): 5}

    async def test_a_purged_task_no_longer_holds_its_key(self, store: Backend) -> None:
        holder = keyed("k")
        await store.enqueue([holder])
        await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=1, queues=QUEUES)
        await store.complete([outcome(holder.id, "w1", finished_at=T0)])
        assert await store.purge(finished_before=T0 + timedelta(seconds=1), queues=None) == 1
        again = keyed("k", at=T0 + timedelta(seconds=2), unique_for=3600)
        assert await store.enqueue([again]) == [again.id]

    @requires(Capability.TRANSACTIONAL_ENQUEUE)
    async def test_keys_in_an_applications_transaction(
        self, store: Backend, application_transaction: ApplicationTransaction
    ) -> None:
        held = keyed("held")
        await store.enqueue([held])
        first, again, taken = keyed("new"), keyed("new"), keyed("held")
        async with application_transaction() as connection:
            assert await store.enqueue_in_transaction(connection, [first, taken]) == [first.id, held.id]
            assert await store.enqueue_in_transaction(connection, [again]) == [first.id]
        assert await store.get(first.id) is not None
        assert await store.get(again.id) is None and await store.get(taken.id) is None
        async with TaskQueue(store) as queue, application_transaction() as connection:
            task_id = await queue.using(connection).enqueue(Task(add, [1, 2], unique_key="new"))
        assert task_id == first.id

    async def test_an_enqueue_within_unique_for_gets_the_cached_result(self, backend: Backend) -> None:
        call = Task(add, [2, 3], unique_key="sum-2-3", unique_for=timedelta(hours=1))
        async with TaskQueue(backend) as queue:
            first = await queue.enqueue(call)
            assert await queue.enqueue(call) == first
            async with Worker(queue):
                result = await queue.get_result(first, timeout=10)
            assert result is not None and result.value == 5
            assert await queue.enqueue(call) == first
            cached_id, other = await queue.enqueue_many([call, Task(add, [1, 1])])
            assert cached_id == first and other != first
            cached = await queue.get_result(first, timeout=0)
            assert cached is not None and cached.value == 5
            fresh = await queue.enqueue(Task(add, [2, 3], unique_key="sum-2-3"))
            assert fresh != first
            info = await queue.get_task(fresh)
            assert info.unique_key == "sum-2-3" and info.status is TaskStatus.PENDING
