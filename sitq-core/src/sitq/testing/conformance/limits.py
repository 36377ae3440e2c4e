"""Limits per key (`sitq.limiting`): a claim starts no task of a key beyond its concurrency or rate limit,
without holding back other keys or tasks without limits, and `next_due` does not call a held-back task due.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta
from typing import Any

from sitq.backend import Backend, Capability
from sitq.limiting import RateLimit
from sitq.models import NewTask, TaskStatus
from sitq.testing.conformance.support import (
    LEASE,
    QUEUES,
    T0,
    ConformanceFixtures,
    assert_same_instant,
    new_task,
    outcome,
    requires,
)


def limited(key: str, eta: datetime = T0, **options: Any) -> NewTask:
    """A task counted against `key`, with these options (such as ``concurrency_limit=2``)."""
    return dataclasses.replace(new_task(eta, **options), concurrency_key=key)


async def claim_ids(store: Backend, now: datetime = T0, limit: int = 10, worker: str = "w1") -> list[str]:
    claimed = await store.claim(worker_id=worker, now=now, lease=LEASE, limit=limit, queues=QUEUES)
    return [task.id for task in claimed]


class LimitsConformance(ConformanceFixtures):
    """Concurrency and rate limits per key, enforced in `claim` and `claim_task`."""

    async def test_a_key_at_its_limit_waits_for_a_completion(self, store: Backend) -> None:
        tasks = [limited("tenant-7", T0 - timedelta(seconds=3 - i), concurrency_limit=2) for i in range(3)]
        await store.enqueue(tasks)
        assert await claim_ids(store) == [tasks[0].id, tasks[1].id]
        assert await claim_ids(store) == []
        record = await store.get(tasks[2].id)
        assert record is not None and record.status is TaskStatus.PENDING
        assert record.concurrency_key == "tenant-7" and record.options.concurrency_limit == 2
        await store.complete([outcome(tasks[0].id, "w1")])
        assert await claim_ids(store) == [tasks[2].id]

    async def test_other_keys_and_unlimited_tasks_are_claimed_meanwhile(self, store: Backend) -> None:
        held = [limited("a", concurrency_limit=1) for _ in range(5)]
        other, free = limited("b", concurrency_limit=1), new_task(T0 + timedelta(microseconds=1))
        await store.enqueue([*held, other, free])
        first = await claim_ids(store, now=T0 + timedelta(seconds=1), limit=2)
        assert first == [held[0].id, other.id]
        assert await claim_ids(store, now=T0 + timedelta(seconds=1)) == [free.id]

    async def test_a_released_or_lost_task_frees_its_slot(self, store: Backend) -> None:
        first, second = (
            limited("k", concurrency_limit=1),
            limited("k", T0 + timedelta(seconds=1), concurrency_limit=1),
        )
        await store.enqueue([first, second])
        later = T0 + timedelta(seconds=2)
        assert await claim_ids(store, now=later) == [first.id]
        await store.release([first.id], worker_id="w1", now=later)
        assert await claim_ids(store, now=later) == [second.id]  # due before the released one
        assert await claim_ids(store, now=later) == []
        # The lease runs out: its worker is presumed dead, and the slot frees.
        expired = later + LEASE + timedelta(seconds=1)
        assert await claim_ids(store, now=expired, worker="w2") == [first.id]

    async def test_priority_order_holds_among_claimable_tasks(self, store: Backend) -> None:
        low = limited("a", concurrency_limit=5, priority=1)
        high = limited("a", concurrency_limit=5, priority=7)
        middle = new_task(priority=4)
        full = [limited("b", concurrency_limit=1, priority=9) for _ in range(2)]
        await store.enqueue([low, high, middle, *full])
        assert await claim_ids(store) == [full[0].id, high.id, middle.id, low.id]

    async def test_tasks_of_a_key_start_in_order_each_by_its_own_limit(self, store: Backend) -> None:
        strict = limited("k", concurrency_limit=1, priority=5)
        loose = [limited("k", concurrency_limit=3) for _ in range(3)]
        await store.enqueue([strict, *loose])
        assert await claim_ids(store) == [strict.id, loose[0].id, loose[1].id]

    async def test_rate_limit_counts_starts_in_a_sliding_window(self, store: Backend) -> None:
        tasks = [limited("api", rate_limit=RateLimit(2, 60)) for _ in range(4)]
        await store.enqueue(tasks)
        assert await claim_ids(store, limit=1) == [tasks[0].id]
        assert await claim_ids(store, now=T0 + timedelta(seconds=30)) == [tasks[1].id]
        await store.complete([outcome(tasks[0].id, "w1"), outcome(tasks[1].id, "w1")])
        assert await claim_ids(store, now=T0 + timedelta(seconds=59)) == []
        assert await store.next_due(QUEUES) == T0 + timedelta(seconds=60)
        assert await claim_ids(store, now=T0 + timedelta(seconds=60)) == [tasks[2].id]
        assert await claim_ids(store, now=T0 + timedelta(seconds=89)) == []
        assert await claim_ids(store, now=T0 + timedelta(seconds=90)) == [tasks[3].id]

    async def test_next_due_skips_a_key_at_its_concurrency_limit(self, store: Backend) -> None:
        running, waiting = limited("k", concurrency_limit=1), limited("k", concurrency_limit=1)
        await store.enqueue([running, waiting])
        assert await claim_ids(store) == [running.id]
        assert_same_instant(await store.next_due(QUEUES), T0 + LEASE)  # only the lease's expiry
        free = new_task(T0 + timedelta(seconds=5))
        await store.enqueue([free])
        assert_same_instant(await store.next_due(QUEUES), T0 + timedelta(seconds=5))
        await store.complete([outcome(running.id, "w1")])
        assert_same_instant(await store.next_due(QUEUES), T0)

    async def test_claim_task_respects_the_limit(self, store: Backend) -> None:
        first, second = limited("k", concurrency_limit=1), limited("k", concurrency_limit=1)
        await store.enqueue([first, second])
        assert await store.claim_task(first.id, worker_id="w1", now=T0, lease=LEASE) is not None
        assert await store.claim_task(second.id, worker_id="w1", now=T0, lease=LEASE) is None
        await store.complete([outcome(first.id, "w1")])
        assert await store.claim_task(second.id, worker_id="w1", now=T0, lease=LEASE) is not None

    async def test_concurrent_claims_never_exceed_the_limit(self, store: Backend) -> None:
        await store.enqueue([limited("k", concurrency_limit=2) for _ in range(20)])
        batches = await asyncio.gather(*(claim_ids(store, limit=3, worker=f"w{i}") for i in range(10)))
        assert sum(len(batch) for batch in batches) == 2

    @requires(Capability.SHARED_STORE)
    async def test_two_backends_on_one_store_never_exceed_the_limit(
        self, store: Backend, backend_url: str
    ) -> None:
        await store.enqueue([limited("k", concurrency_limit=2, rate_limit="3/m") for _ in range(20)])
        other = type(store).from_url(backend_url)
        await other.connect()
        try:
            claimers = [store, other] * 3

            async def claim_together(now: datetime) -> list[tuple[str, str]]:
                batches = await asyncio.gather(
                    *(
                        claim_ids(backend, now=now, limit=2, worker=f"w{i}")
                        for i, backend in enumerate(claimers)
                    )
                )
                return [(task_id, f"w{i}") for i, batch in enumerate(batches) for task_id in batch]

            running = await claim_together(T0)
            assert len(running) == 2
            assert await claim_together(T0 + timedelta(seconds=1)) == []
            await other.complete([outcome(task_id, worker) for task_id, worker in running])
            # Two of the three starts a minute allows are spent.
            assert len(await claim_together(T0 + timedelta(seconds=2))) == 1
        finally:
            await other.close()
