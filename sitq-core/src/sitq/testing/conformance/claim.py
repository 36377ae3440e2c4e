"""Claiming: which tasks a claim takes, in which order, and when the next one is due."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sitq.backend import Backend
from sitq.models import TaskStatus
from sitq.testing.conformance.support import (
    LEASE,
    QUEUES,
    T0,
    ConformanceFixtures,
    assert_same_instant,
    new_task,
)


class ClaimConformance(ConformanceFixtures):
    """A claim takes due tasks of its queues by priority, then `eta`, never one task twice; `claim_task`
    ignores `eta` but not a live lease; `next_due` tells an idle worker when to look again."""

    async def test_claim_takes_due_tasks_earliest_first_up_to_limit(self, store: Backend) -> None:
        later, sooner, future = (
            new_task(T0 - timedelta(seconds=1)),
            new_task(T0 - timedelta(seconds=2)),
            new_task(T0 + timedelta(seconds=1)),
        )
        await store.enqueue([later, sooner, future])
        first = await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=1, queues=QUEUES)
        assert [task.id for task in first] == [sooner.id]
        rest = await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=10, queues=QUEUES)
        assert [task.id for task in rest] == [later.id]
        claimed = first[0]
        assert (claimed.attempt, claimed.worker_id, claimed.payload) == (1, "w1", sooner.payload)
        assert_same_instant(claimed.started_at, T0)
        assert_same_instant(claimed.lease_expires_at, T0 + LEASE)
        record = await store.get(sooner.id)
        assert record is not None and record.status is TaskStatus.IN_PROGRESS and record.worker_id == "w1"

    async def test_future_task_is_claimed_once_due(self, store: Backend) -> None:
        task = new_task(T0 + timedelta(minutes=5))
        await store.enqueue([task])
        assert await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=5, queues=QUEUES) == []
        due = await store.claim(
            worker_id="w1", now=T0 + timedelta(minutes=5), lease=LEASE, limit=5, queues=QUEUES
        )
        assert [claimed.id for claimed in due] == [task.id]

    async def test_concurrent_claims_never_share_a_task(self, store: Backend) -> None:
        tasks = [new_task() for _ in range(40)]
        await store.enqueue(tasks)
        batches = await asyncio.gather(
            *(store.claim(worker_id=f"w{i}", now=T0, lease=LEASE, limit=3, queues=QUEUES) for i in range(20))
        )
        claimed = [task.id for batch in batches for task in batch]
        assert len(claimed) == len(set(claimed)) == 40

    async def test_higher_priority_first_within_the_claimed_queues(self, store: Backend) -> None:
        low, high, other_queue = (
            new_task(priority=1),
            new_task(T0, priority=9),
            new_task(priority=99, queue="other"),
        )
        early_default = new_task(T0 - timedelta(hours=1))
        await store.enqueue([low, high, other_queue, early_default])
        claimed = await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=10, queues=QUEUES)
        assert [task.id for task in claimed] == [high.id, low.id, early_default.id]
        assert claimed[0].options.priority == 9
        [other] = await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=10, queues=("other", "x"))
        assert other.id == other_queue.id and other.options.queue == "other"

    async def test_claim_task_ignores_eta_but_not_a_live_lease(self, store: Backend) -> None:
        task = new_task(T0 + timedelta(days=1))
        await store.enqueue([task])
        claimed = await store.claim_task(task.id, worker_id="w1", now=T0, lease=LEASE)
        assert claimed is not None and claimed.id == task.id and claimed.attempt == 1
        assert await store.claim_task(task.id, worker_id="w2", now=T0, lease=LEASE) is None
        assert await store.claim_task("no-such-task", worker_id="w2", now=T0, lease=LEASE) is None

    async def test_next_due_is_the_earliest_pending_eta_or_lease_expiry(self, store: Backend) -> None:
        assert await store.next_due(QUEUES) is None
        running, soon, late = (
            new_task(T0 - timedelta(hours=1)),
            new_task(T0 + timedelta(seconds=5)),
            new_task(T0 + timedelta(hours=1)),
        )
        await store.enqueue([late, running, soon])
        await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=1, queues=QUEUES)
        assert_same_instant(await store.next_due(QUEUES), soon.eta)
        early = T0 - timedelta(minutes=5)
        assert await store.claim_task(soon.id, worker_id="w1", now=early, lease=LEASE) is not None
        assert_same_instant(await store.next_due(QUEUES), early + LEASE)

    async def test_next_due_looks_only_at_the_given_queues(self, store: Backend) -> None:
        await store.enqueue(
            [new_task(T0 - timedelta(hours=1), queue="other"), new_task(T0 + timedelta(hours=1))]
        )
        assert_same_instant(await store.next_due(QUEUES), T0 + timedelta(hours=1))
        assert_same_instant(await store.next_due(("other", "default")), T0 - timedelta(hours=1))
        assert await store.next_due(("empty",)) is None
