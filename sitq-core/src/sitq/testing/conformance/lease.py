"""Leases: renewal, a dead worker's tasks taken back or ended, tasks given back, late outcomes fenced."""

from __future__ import annotations

from datetime import timedelta

from sitq.backend import Backend
from sitq.models import AttemptOutcome, Task, TaskStatus, utcnow
from sitq.queue import TaskQueue
from sitq.testing.conformance.support import (
    LEASE,
    QUEUES,
    T0,
    ConformanceFixtures,
    assert_same_instant,
    new_task,
    outcome,
)
from sitq.testing.conformance.tasks import Started, add, sleep_for
from sitq.worker import Worker


class LeaseConformance(ConformanceFixtures):
    """A lease lasts until renewed or expired; an expired one is a lost attempt, claimed again or ended
    by `recover_lost`; a released task is due at once, its attempt uncounted; an outcome from a worker
    that lost its lease is ignored."""

    async def test_expired_lease_is_reclaimed_as_a_new_attempt_and_the_lost_one_recorded(
        self, store: Backend
    ) -> None:
        task = new_task(max_attempts=2)
        await store.enqueue([task])
        await store.claim(worker_id="dead", now=T0, lease=LEASE, limit=1, queues=QUEUES)
        assert await store.claim(worker_id="w2", now=T0 + LEASE, lease=LEASE, limit=1, queues=QUEUES) == []
        later = T0 + LEASE + timedelta(seconds=1)
        [again] = await store.claim(worker_id="w2", now=later, lease=LEASE, limit=1, queues=QUEUES)
        assert (again.id, again.attempt, again.worker_id) == (task.id, 2, "w2")
        [lost] = await store.history(task.id)
        assert (lost.attempt, lost.worker_id, lost.outcome) == (1, "dead", AttemptOutcome.LOST)
        assert_same_instant(lost.started_at, T0)
        assert_same_instant(lost.finished_at, T0 + LEASE)

    async def test_a_lost_task_with_no_attempts_left_is_failed_and_reported_by_recover_lost(
        self, store: Backend
    ) -> None:
        task, retried, running = new_task(), new_task(max_attempts=2), new_task()
        await store.enqueue([task, retried])
        await store.claim(worker_id="dead", now=T0, lease=LEASE, limit=2, queues=QUEUES)
        await store.enqueue([running])
        later = T0 + LEASE + timedelta(seconds=1)
        assert await store.claim_task(running.id, worker_id="alive", now=later, lease=LEASE) is not None
        # A claim takes back only what can run again; the task that must end is left for recover_lost.
        assert (await store.get(task.id)).status is TaskStatus.IN_PROGRESS  # type: ignore[union-attr]
        assert (await store.get(retried.id)).status is TaskStatus.PENDING  # type: ignore[union-attr]
        await store.claim(worker_id="alive", now=later, lease=LEASE, limit=1, queues=QUEUES)
        # ...and is due, so that an idle worker wakes and calls recover_lost.
        assert_same_instant(await store.next_due(QUEUES), T0 + LEASE)
        with store.subscribe() as changes:
            [ended] = await store.recover_lost(now=later)
            assert await changes.wait(5)
        assert (ended.id, ended.status) == (task.id, TaskStatus.FAILED)
        assert (
            ended.error == "WorkerLostError: worker dead stopped renewing its lease, and no attempts are left"
        )
        assert ended == await store.get(task.id)
        assert [attempt.outcome for attempt in await store.history(task.id)] == [AttemptOutcome.LOST]
        assert await store.recover_lost(now=later) == []
        assert (await store.get(running.id)).status is TaskStatus.IN_PROGRESS  # type: ignore[union-attr]

    async def test_renewed_lease_is_not_reclaimed(self, store: Backend) -> None:
        task = new_task(max_attempts=2)
        await store.enqueue([task])
        await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=1, queues=QUEUES)
        await store.renew([task.id], worker_id="w1", now=T0 + timedelta(seconds=20), lease=LEASE)
        await store.renew([task.id], worker_id="intruder", now=T0 + timedelta(hours=1), lease=LEASE)
        assert (
            await store.claim(
                worker_id="w2", now=T0 + timedelta(seconds=45), lease=LEASE, limit=1, queues=QUEUES
            )
            == []
        )
        reclaimed = await store.claim(
            worker_id="w2", now=T0 + timedelta(seconds=51), lease=LEASE, limit=1, queues=QUEUES
        )
        assert [claimed.id for claimed in reclaimed] == [task.id]

    async def test_outcome_from_a_worker_that_lost_its_lease_is_ignored(self, store: Backend) -> None:
        task = new_task(max_attempts=2)
        await store.enqueue([task])
        await store.claim(worker_id="slow", now=T0, lease=LEASE, limit=1, queues=QUEUES)
        await store.claim(worker_id="w2", now=T0 + timedelta(minutes=1), lease=LEASE, limit=1, queues=QUEUES)
        await store.complete([outcome(task.id, "slow", TaskStatus.FAILED, error="late")])
        record = await store.get(task.id)
        assert record is not None and record.status is TaskStatus.IN_PROGRESS and record.worker_id == "w2"
        await store.complete([outcome(task.id, "w2", result=b"ok")])
        record = await store.get(task.id)
        assert record is not None and (record.status, record.result, record.attempts) == (
            TaskStatus.SUCCESS,
            b"ok",
            2,
        )

    async def test_released_tasks_are_due_again_without_using_an_attempt(self, store: Backend) -> None:
        task = new_task()
        await store.enqueue([task])
        await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=1, queues=QUEUES)
        await store.release([task.id], worker_id="intruder", now=T0)
        record = await store.get(task.id)
        assert record is not None and record.status is TaskStatus.IN_PROGRESS
        await store.release([task.id], worker_id="w1", now=T0 + timedelta(seconds=1))
        [again] = await store.claim(
            worker_id="w2", now=T0 + timedelta(seconds=1), lease=LEASE, limit=1, queues=QUEUES
        )
        assert again.attempt == 1
        [released] = await store.history(task.id)
        assert (released.worker_id, released.outcome) == ("w1", AttemptOutcome.RELEASED)

    async def test_a_dead_workers_task_is_taken_over_once_its_lease_expires(self, backend: Backend) -> None:
        async with TaskQueue(backend) as queue:
            task_id = await queue.enqueue(Task(add, [2, 2], max_attempts=2))
            dead = await backend.claim(
                worker_id="dead", now=utcnow(), lease=timedelta(seconds=0.2), limit=1, queues=QUEUES
            )
            assert [task.id for task in dead] == [task_id]
            async with Worker(queue, poll_interval=0.05):
                result = await queue.get_result(task_id, timeout=10)
            info = await queue.get_task(task_id)
        assert result is not None and result.value == 4
        assert (info.history[0].worker_id, info.history[0].outcome) == ("dead", AttemptOutcome.LOST)
        assert info.history[-1].outcome is AttemptOutcome.SUCCESS

    async def test_stopping_gives_back_what_cannot_finish_within_the_grace_period(
        self, backend: Backend
    ) -> None:
        started = Started()
        async with TaskQueue(backend) as queue:
            worker = Worker(queue, grace_period=0.1, plugins=[started])
            await worker.start()
            task_id = await queue.enqueue(sleep_for, 30)
            await started.first.wait()
            await worker.stop()
            info = await queue.get_task(task_id)
        assert (info.status, info.attempts) == (TaskStatus.PENDING, 0)
        assert [a.outcome for a in info.history] == [AttemptOutcome.RELEASED]
