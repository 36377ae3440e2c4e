"""Opening and closing a store, storing tasks and reading them back, and waking its subscribers."""

from __future__ import annotations

import asyncio
import threading

import pytest

from sitq.backend import Backend
from sitq.errors import BackendError, ConfigurationError
from sitq.models import RetryPolicy, TaskOptions, TaskStatus
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
from sitq.testing.conformance.tasks import add
from sitq.worker import Worker


class StorageConformance(ConformanceFixtures):
    """Connections are counted and bound to one event loop; an enqueue is atomic and reads back as it
    went in, options and all; a change wakes a subscriber."""

    async def test_connect_and_close_are_reference_counted(self, backend: Backend) -> None:
        states = [backend.is_connected]
        await backend.connect()
        await backend.connect()
        await backend.close()
        states.append(backend.is_connected)
        await backend.enqueue([new_task()])
        await backend.close()
        states.append(backend.is_connected)
        await backend.close()
        assert states == [False, True, False]

    async def test_an_open_backend_refuses_another_event_loop_at_once(self, store: Backend) -> None:
        refused: list[BaseException] = []

        def elsewhere() -> None:
            async def use() -> None:
                for call in (store.get("t"), store.connect(), store.close()):
                    with pytest.raises(ConfigurationError, match="open in another event loop") as error:
                        await call
                    refused.append(error.value)

            asyncio.run(use())

        # In a thread of its own, joined with a deadline: a backend that waits on the other loop fails.
        thread = threading.Thread(target=elsewhere, daemon=True)
        thread.start()
        await asyncio.to_thread(thread.join, 30)
        assert not thread.is_alive(), "using the backend from another event loop hung"
        assert len(refused) == 3
        assert await store.get("t") is None  # still fine in its own loop

    async def test_a_shared_backend_stays_open_until_its_last_user_closes(self, backend: Backend) -> None:
        queue = TaskQueue(backend)
        await queue.connect()
        worker = Worker(backend)
        await worker.start()
        await worker.stop()
        assert backend.is_connected
        task_id = await queue.enqueue(add, 1, 1)
        assert await queue.get_status(task_id) == "pending"
        await queue.close()
        assert not backend.is_connected

    async def test_enqueued_task_reads_back_pending(self, store: Backend) -> None:
        task = new_task(payload=bytes(range(256)) * 4096)
        await store.enqueue([task])
        record = await store.get(task.id)
        assert record is not None
        assert (record.id, record.name, record.status, record.serializer) == (
            task.id,
            task.name,
            TaskStatus.PENDING,
            "pickle",
        )
        assert record.attempts == 0
        assert_same_instant(record.enqueued_at, task.enqueued_at)
        assert_same_instant(record.eta, task.eta)
        assert record.started_at is None and record.finished_at is None and record.result is None

    async def test_unknown_task_is_none(self, store: Backend) -> None:
        assert await store.get("no-such-task") is None

    async def test_enqueue_is_all_or_nothing(self, store: Backend) -> None:
        existing = new_task()
        await store.enqueue([existing])
        fresh = new_task()
        with pytest.raises(BackendError):
            await store.enqueue([fresh, new_task(task_id=existing.id)])
        assert await store.get(fresh.id) is None

    async def test_options_are_stored_and_returned(self, store: Backend) -> None:
        retry = RetryPolicy(backoff=2, factor=3, max_backoff=60, jitter=0.5, retry_on=[ConnectionError])
        options = TaskOptions("q", priority=-3, max_attempts=4, retry=retry, timeout=1.5, description="d")
        task = new_task(options=options)
        await store.enqueue([task])
        record = await store.get(task.id)
        assert record is not None and record.options == options
        [claimed] = await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=1, queues=("q",))
        assert claimed.options == options

    async def test_subscribers_are_woken_by_enqueue_and_complete(self, store: Backend) -> None:
        with store.subscribe() as changes:
            assert not await changes.wait(0)
            task = new_task()
            await store.enqueue([task])
            assert await changes.wait(5)
            await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=1, queues=QUEUES)
            await changes.wait(0)
            await store.complete([outcome(task.id, "w1", result=b"")])
            assert await changes.wait(5)
