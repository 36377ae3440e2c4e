"""Inspection and administration: listing, counting, requeueing, purging, compacting, describing."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from sitq.backend import Backend
from sitq.errors import BackendError, TaskNotFoundError, ValidationError
from sitq.models import Compaction, Task, TaskStatus
from sitq.queue import TaskQueue
from sitq.testing.conformance.support import LEASE, QUEUES, T0, ConformanceFixtures, new_task, outcome
from sitq.testing.conformance.tasks import add, explode
from sitq.worker import Worker


class AdminConformance(ConformanceFixtures):
    """What `sitq`'s commands and the queue's admin calls rely on, at the protocol and end to end."""

    async def test_list_tasks_filters_and_pages_in_enqueue_order(self, store: Backend) -> None:
        tasks = [new_task(), new_task(queue="other"), new_task(), new_task()]
        await store.enqueue(tasks)
        await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=1, queues=QUEUES)
        everything = tuple(TaskStatus)
        first = await store.list_tasks(statuses=everything, queues=None, limit=2, after=None)
        rest = await store.list_tasks(statuses=everything, queues=None, limit=10, after=first[-1].id)
        assert [record.id for record in first + rest] == [task.id for task in tasks]
        pending_default = await store.list_tasks(
            statuses=(TaskStatus.PENDING,), queues=QUEUES, limit=10, after=None
        )
        assert [record.id for record in pending_default] == [tasks[2].id, tasks[3].id]
        with pytest.raises(TaskNotFoundError):
            await store.list_tasks(statuses=everything, queues=None, limit=10, after="no-such-task")

    async def test_stats_count_tasks_by_queue_and_status(self, store: Backend) -> None:
        assert await store.stats() == {}
        await store.enqueue([new_task(), new_task(), new_task(queue="other")])
        await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=1, queues=QUEUES)
        assert await store.stats() == {
            ("default", TaskStatus.PENDING): 1,
            ("default", TaskStatus.IN_PROGRESS): 1,
            ("other", TaskStatus.PENDING): 1,
        }

    async def test_requeue_runs_a_failed_task_again_from_its_first_attempt(self, store: Backend) -> None:
        failed, done = new_task(), new_task()
        await store.enqueue([failed, done])
        await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=2, queues=QUEUES)
        await store.complete(
            [outcome(failed.id, "w1", TaskStatus.FAILED, error="E: x"), outcome(done.id, "w1")]
        )
        later = T0 + timedelta(minutes=1)
        with store.subscribe() as changes:
            assert await store.requeue(failed.id, now=later) is TaskStatus.PENDING
            assert await changes.wait(5)
        assert await store.requeue(done.id, now=later) is TaskStatus.SUCCESS
        assert await store.requeue("no-such-task", now=later) is None
        record = await store.get(failed.id)
        assert record is not None and (record.attempts, record.error, record.finished_at) == (0, None, None)
        [again] = await store.claim(worker_id="w2", now=later, lease=LEASE, limit=5, queues=QUEUES)
        assert (again.id, again.attempt) == (failed.id, 1)
        assert len(await store.history(failed.id)) == 1

    async def test_purge_deletes_old_finished_tasks_but_not_needed_parents(self, store: Backend) -> None:
        old, recent, needed = new_task(), new_task(), new_task()
        waiting = dataclasses.replace(new_task(T0 + timedelta(days=9)), depends_on=(needed.id,))
        running = new_task()
        await store.enqueue([old, recent, needed, waiting, running])
        await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=4, queues=QUEUES)
        await store.complete(
            [
                outcome(old.id, "w1"),
                outcome(needed.id, "w1"),
                dataclasses.replace(outcome(recent.id, "w1"), finished_at=T0 + timedelta(days=2)),
            ]
        )
        cutoff = T0 + timedelta(days=1)
        assert await store.purge(finished_before=cutoff, queues=("other",)) == 0
        assert await store.purge(finished_before=cutoff, queues=None) == 1
        assert await store.get(old.id) is None and await store.history(old.id) == []
        for kept in (recent, needed, waiting, running):
            assert await store.get(kept.id) is not None

    async def test_a_purged_parent_counts_as_met(self, store: Backend) -> None:
        parent = new_task()
        child = dataclasses.replace(new_task(max_attempts=2), depends_on=(parent.id,))
        await store.enqueue([parent, child])
        await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=1, queues=QUEUES)
        await store.complete([outcome(parent.id, "w1")])
        await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=1, queues=QUEUES)
        assert await store.purge(finished_before=T0 + timedelta(seconds=1), queues=None) == 1
        await store.complete([outcome(child.id, "w1", TaskStatus.PENDING, retry_at=T0, error="E: retry")])
        [retried] = await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=1, queues=QUEUES)
        assert (retried.id, retried.attempt) == (child.id, 2)
        await store.complete([outcome(child.id, "w1", TaskStatus.FAILED, error="E: failed")])
        assert await store.requeue(child.id, now=T0) is TaskStatus.PENDING
        [requeued] = await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=1, queues=QUEUES)
        assert requeued.id == child.id

    async def test_compact_keeps_every_task_as_it_was(self, store: Backend) -> None:
        done, failed, running, waiting, purged = (new_task(payload=bytes([n]) * 100_000) for n in range(5))
        await store.enqueue([done, failed, running, purged])
        await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=4, queues=QUEUES)
        await store.complete(
            [
                outcome(done.id, "w1", result=b"r" * 50_000),
                outcome(failed.id, "w1", TaskStatus.FAILED, error="E: no", traceback="Traceback: ..."),
                dataclasses.replace(outcome(purged.id, "w1"), finished_at=T0 - timedelta(days=1)),
            ]
        )
        await store.enqueue([waiting])
        assert await store.purge(finished_before=T0 - timedelta(hours=1), queues=None) == 1
        kept = (done, failed, running, waiting)
        before = [(await store.get(task.id), await store.history(task.id)) for task in kept]

        compaction = await store.compact()

        assert isinstance(compaction, Compaction)
        assert compaction.bytes_before >= 0 and compaction.bytes_after >= 0
        assert compaction.bytes_freed == max(0, compaction.bytes_before - compaction.bytes_after)
        assert [(await store.get(task.id), await store.history(task.id)) for task in kept] == before
        assert await store.get(purged.id) is None
        [claimed] = await store.claim(worker_id="w2", now=T0, lease=LEASE, limit=5, queues=QUEUES)
        assert (claimed.id, claimed.payload) == (waiting.id, waiting.payload)
        await store.complete([outcome(running.id, "w1", result=b"late but still held")])
        record = await store.get(running.id)
        assert record is not None and record.result == b"late but still held"

    async def test_compact_needs_a_connected_store(self, backend: Backend) -> None:
        with pytest.raises(BackendError, match="not connected"):
            await backend.compact()

    async def test_queue_admin_api_end_to_end(self, backend: Backend) -> None:
        async with TaskQueue(backend) as queue:
            broken = await queue.enqueue(explode)
            fine = await queue.enqueue(Task(add, [1, 2], queue="other"))
            async with Worker(queue, queues=["default", "other"]):
                assert (await queue.get_result(broken, timeout=10)) is not None
                assert (await queue.get_result(fine, timeout=10)) is not None
                listed = await queue.list_tasks("failed")
                assert [(info.id, len(info.history)) for info in listed] == [(broken, 1)]
                assert await queue.stats() == {
                    "default": {TaskStatus.FAILED: 1},
                    "other": {TaskStatus.SUCCESS: 1},
                }
                assert await queue.requeue(broken) == "pending"
                again = await queue.get_result(broken, timeout=10)
            assert again is not None and again.status == "failed"
            assert len((await queue.get_task(broken)).history) == 2
            with pytest.raises(ValidationError, match="status must be one of"):
                await queue.list_tasks("finished")
            assert await queue.purge(timedelta(0), queue="other") == 1
            assert [info.id for info in await queue.list_tasks()] == [broken]
            assert isinstance(await queue.compact(), Compaction)
            assert [info.id for info in await queue.list_tasks()] == [broken]

    async def test_a_worker_with_retention_purges_its_old_finished_tasks(self, backend: Backend) -> None:
        async with TaskQueue(backend) as queue:
            task_id = await queue.enqueue(add, 1, 1)
            async with Worker(queue, retention=timedelta(seconds=0.05)):
                assert (await queue.get_result(task_id, timeout=10)) is not None
                for _ in range(200):
                    if not await queue.list_tasks():
                        break
                    await asyncio.sleep(0.02)
            assert await queue.list_tasks() == []

    async def test_describe_tells_a_person_how_durable_the_store_is(self, store: Backend) -> None:
        facts = await store.describe()
        assert all(isinstance(key, str) and key and isinstance(value, str) for key, value in facts.items())
        assert facts.get("durability"), "describe() must say which crashes a committed task survives"
