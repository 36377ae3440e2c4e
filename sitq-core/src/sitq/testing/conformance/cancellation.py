"""Cancellation: of a pending, a running, a finished and an unknown task, and what it does to dependents."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from sitq.backend import Backend
from sitq.errors import TaskNotFoundError
from sitq.models import AttemptOutcome, TaskStatus, utcnow
from sitq.queue import TaskQueue
from sitq.testing.conformance.support import LEASE, QUEUES, T0, ConformanceFixtures, new_task, outcome
from sitq.testing.conformance.tasks import Started, add, sleep_for
from sitq.worker import Worker


class CancellationConformance(ConformanceFixtures):
    """A pending task is cancelled at once and never runs; a running one is marked for its worker, and
    ends cancelled even if its worker dies or lets go of it; a finished one is left alone."""

    async def test_cancel_pending_running_finished_and_unknown(self, store: Backend) -> None:
        waiting, running, done = new_task(T0 + timedelta(hours=1)), new_task(), new_task()
        await store.enqueue([waiting, running, done])
        await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=2, queues=QUEUES)
        await store.complete([outcome(done.id, "w1", result=b"")])
        with store.subscribe() as changes:
            assert await store.cancel(waiting.id, now=T0) is TaskStatus.CANCELLED
            assert await changes.wait(5)
        assert await store.cancel(running.id, now=T0) is TaskStatus.IN_PROGRESS
        assert await store.cancel(done.id, now=T0) is TaskStatus.SUCCESS
        assert await store.cancel("no-such-task", now=T0) is None
        record = await store.get(running.id)
        assert record is not None and record.cancel_requested
        assert await store.renew([running.id, done.id], worker_id="w1", now=T0, lease=LEASE) == {running.id}
        assert await store.claim(worker_id="w2", now=T0, lease=LEASE, limit=5, queues=QUEUES) == []
        await store.complete(
            [outcome(running.id, "w1", TaskStatus.CANCELLED, error="CancelledError: cancelled")]
        )
        cancelled = await store.get(running.id)
        assert cancelled is not None and cancelled.status is TaskStatus.CANCELLED

    async def test_cancelling_a_parent_cancels_its_dependents(self, store: Backend) -> None:
        parent = new_task(T0 + timedelta(hours=1))
        child = dataclasses.replace(new_task(), depends_on=(parent.id,))
        await store.enqueue([parent, child])
        assert await store.cancel(parent.id, now=T0) is TaskStatus.CANCELLED
        record = await store.get(child.id)
        assert record is not None and record.status is TaskStatus.CANCELLED

    async def test_a_task_asked_to_cancel_ends_cancelled_if_its_worker_dies_or_lets_go(
        self, store: Backend
    ) -> None:
        dies, lets_go = new_task(max_attempts=3), new_task(max_attempts=3)
        await store.enqueue([dies, lets_go])
        await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=2, queues=QUEUES)
        for running in (dies, lets_go):
            assert await store.cancel(running.id, now=T0) is TaskStatus.IN_PROGRESS
        await store.release([lets_go.id, lets_go.id], worker_id="w1", now=T0)
        later = T0 + LEASE + timedelta(seconds=1)
        assert await store.claim(worker_id="w2", now=later, lease=LEASE, limit=2, queues=QUEUES) == []
        [recovered] = await store.recover_lost(now=later)
        assert (recovered.id, recovered.status) == (dies.id, TaskStatus.CANCELLED)
        for ended, how in ((dies, AttemptOutcome.LOST), (lets_go, AttemptOutcome.RELEASED)):
            record = await store.get(ended.id)
            assert record is not None and record.status is TaskStatus.CANCELLED
            assert [attempt.outcome for attempt in await store.history(ended.id)] == [how]

    async def test_cancelling_a_pending_task_means_it_never_runs(self, backend: Backend) -> None:
        async with TaskQueue(backend) as queue, Worker(queue):
            task_id = await queue.enqueue(add, 1, 1, eta=utcnow() + timedelta(seconds=0.2))
            assert await queue.cancel(task_id) == "cancelled"
            result = await queue.get_result(task_id, timeout=5)
            await asyncio.sleep(0.3)
            info = await queue.get_task(task_id)
        assert result is not None and result.status == "cancelled"
        assert info.attempts == 0 and info.history == ()

    async def test_cancelling_a_running_async_task_stops_it(self, backend: Backend) -> None:
        started = Started()
        async with TaskQueue(backend) as queue, Worker(queue, poll_interval=0.05, plugins=[started]):
            task_id = await queue.enqueue(sleep_for, 30)
            await started.first.wait()
            assert await queue.cancel(task_id) == "in_progress"
            result = await queue.get_result(task_id, timeout=10)
        assert result is not None and result.status == "cancelled"
        assert result.error == "TaskCancelledError: cancelled on request while running"

    async def test_cancelling_a_finished_or_unknown_task_is_a_clear_answer(self, backend: Backend) -> None:
        async with TaskQueue(backend) as queue, Worker(queue):
            task_id = await queue.enqueue(add, 1, 1)
            assert await queue.get_result(task_id, timeout=10) is not None
            assert await queue.cancel(task_id) == "success"
            with pytest.raises(TaskNotFoundError):
                await queue.cancel("no-such-task")
