"""Tasks run end to end through `TaskQueue` and `Worker` on the real clock."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from sitq.backend import Backend
from sitq.errors import TaskNotFoundError
from sitq.models import Task, TaskStatus, utcnow
from sitq.queue import TaskQueue
from sitq.testing.conformance.support import ConformanceFixtures
from sitq.testing.conformance.tasks import (
    Concurrency,
    Recorder,
    UnknownSerializer,
    add,
    decorated,
    echo_priority,
    explode,
    explode_with_nul,
    multiply,
    tracked_sleep,
)
from sitq.worker import Worker


class WorkerConformance(ConformanceFixtures):
    """Every kind of callable runs; results, `eta`, concurrency, burst mode, lifecycle hooks, queues and
    task options behave as documented, whatever the backend underneath."""

    async def test_worker_runs_async_sync_lambda_and_closure_tasks(self, backend: Backend) -> None:
        offset = 100
        async with TaskQueue(backend, "cloudpickle") as queue, Worker(queue, max_concurrency=4):
            ids = [
                await queue.enqueue(add, 1, 2),
                await queue.enqueue(multiply, 3, b=4),
                await queue.enqueue(lambda: "lambda"),
                await queue.enqueue(lambda x: x + offset, 1),
                await queue.enqueue(Task(function=add, args=[20], kwargs={"b": 22})),
            ]
            results = [await queue.get_result(task_id, timeout=10) for task_id in ids]
        assert [result.value if result else None for result in results] == [3, 12, "lambda", 101, 42]
        assert all(result and result.status == "success" and not result.is_error for result in results)

    async def test_payload_from_an_unavailable_serializer_fails_clearly(self, backend: Backend) -> None:
        async with TaskQueue(backend, UnknownSerializer()) as queue, Worker(backend) as worker:
            task_id = await queue.enqueue(multiply, 1, 2)
            result = await worker.process_task(task_id)
        assert result.is_error
        assert result.error is not None and result.error.startswith("SerializationError")
        assert "conformance-private" in result.error

    async def test_get_result_waits_times_out_and_knows_unknown_ids(self, backend: Backend) -> None:
        async with TaskQueue(backend) as queue:
            later = await queue.enqueue(add, 1, 1, eta=utcnow() + timedelta(hours=1))
            assert await queue.get_result(later, timeout=0.05) is None
            assert await queue.get_status(later) == "pending"
            with pytest.raises(TaskNotFoundError):
                await queue.get_result("no-such-task", timeout=5)

    async def test_eta_delays_a_task_until_it_is_due(self, backend: Backend) -> None:
        eta = utcnow() + timedelta(seconds=0.3)
        async with TaskQueue(backend) as queue, Worker(queue, poll_interval=5):
            task_id = await queue.enqueue(add, 2, 3, eta=eta)
            result = await queue.get_result(task_id, timeout=10)
        assert result is not None and result.value == 5
        assert result.started_at is not None and result.started_at >= eta

    async def test_worker_never_exceeds_max_concurrency(self, backend: Backend) -> None:
        Concurrency.peak = 0
        async with TaskQueue(backend) as queue, Worker(queue, max_concurrency=3):
            ids = await queue.enqueue_many([Task(tracked_sleep) for _ in range(12)])
            results = [await queue.get_result(task_id, timeout=10) for task_id in ids]
        assert all(result is not None and result.status == "success" for result in results)
        assert Concurrency.peak == 3

    async def test_process_task_runs_one_task_now_and_only_once(self, backend: Backend) -> None:
        async with TaskQueue(backend) as queue:
            task_id = await queue.enqueue(multiply, 5, 5, eta=utcnow() + timedelta(days=1))
            worker = Worker(queue)
            result = await worker.process_task(task_id)
            again = await worker.process_task(task_id)
            await worker.stop()
            with pytest.raises(TaskNotFoundError):
                await worker.process_task("no-such-task")
            await worker.stop()
        assert result.value == again.value == 25
        assert result.finished_at == again.finished_at

    async def test_an_error_holding_a_nul_character_is_stored(self, backend: Backend) -> None:
        async with TaskQueue(backend) as queue:
            task_id = await queue.enqueue(explode_with_nul)
            worker = Worker(queue)
            try:
                result = await asyncio.wait_for(worker.process_task(task_id), 10)
            finally:
                await worker.stop()
        assert result.status is TaskStatus.FAILED
        assert result.error == "ValueError: a NUL \\x00 in an error"

    async def test_a_burst_worker_runs_what_is_due_then_returns(self, backend: Backend) -> None:
        async with TaskQueue(backend) as queue:
            due = [await queue.enqueue(add, n, n) for n in range(5)]
            later = await queue.enqueue(add, 1, 1, eta=utcnow() + timedelta(hours=1))
            await asyncio.wait_for(Worker(queue, max_concurrency=2).run(burst=True), timeout=30)
            assert [(await queue.get_status(task_id)) for task_id in due] == [TaskStatus.SUCCESS] * 5
            assert await queue.get_status(later) == TaskStatus.PENDING

    async def test_lifecycle_hooks_fire_and_a_failing_observer_harms_nothing(self, backend: Backend) -> None:
        recorder = Recorder()
        async with TaskQueue(backend, plugins=[recorder]) as queue, Worker(queue, queues=["default", "q2"]):
            ok = await queue.enqueue(add, 1, 2)
            bad = await queue.enqueue(Task(explode, queue="q2"))
            assert (await queue.get_result(ok, timeout=10)) is not None
            assert (await queue.get_result(bad, timeout=10)) is not None
        assert set(recorder.events) == {
            ("enqueued", ok, "default"),
            ("enqueued", bad, "q2"),
            ("started", ok, "default"),
            ("started", bad, "q2"),
            ("succeeded", ok, "default"),
            ("failed", bad, "q2"),
        }

    async def test_higher_priority_runs_first(self, backend: Backend) -> None:
        async with TaskQueue(backend) as queue:
            ids = {
                priority: await queue.enqueue(Task(add, [priority, 0], priority=priority))
                for priority in (1, 9, 5)
            }
            async with Worker(queue, max_concurrency=1):
                results = {p: await queue.get_result(task_id, timeout=10) for p, task_id in ids.items()}
        starts = sorted((r.started_at, p) for p, r in results.items() if r is not None and r.started_at)
        assert [priority for _, priority in starts] == [9, 5, 1]

    async def test_a_worker_serves_only_its_queues(self, backend: Backend) -> None:
        async with TaskQueue(backend) as queue, Worker(queue, queues=["emails"]):
            email = await queue.enqueue(Task(add, [1, 1], queue="emails"))
            other = await queue.enqueue(add, 2, 2)
            assert (await queue.get_result(email, timeout=10)) is not None
            assert await queue.get_result(other, timeout=0.2) is None
            assert await queue.get_status(other) == "pending"

    async def test_decorator_options_apply_and_task_fields_override_them(self, backend: Backend) -> None:
        async with TaskQueue(backend) as queue:
            plain = await queue.get_task(await queue.enqueue(decorated, 1))
            overridden = await queue.get_task(
                await queue.enqueue(Task(decorated, [1], priority=2, queue="q"))
            )
            named = await queue.get_task(
                await queue.enqueue(Task(add, [1, 2], name="adding", description="d"))
            )
        assert (plain.name, plain.options.priority, plain.options.queue, plain.options.max_attempts) == (
            "conformance.decorated",
            7,
            "special",
            2,
        )
        assert (overridden.options.priority, overridden.options.queue, overridden.options.max_attempts) == (
            2,
            "q",
            2,
        )
        assert (named.name, named.options.description) == ("adding", "d")

    async def test_a_function_argument_named_like_an_option_still_reaches_it(self, backend: Backend) -> None:
        async with TaskQueue(backend) as queue, Worker(queue):
            task_id = await queue.enqueue(Task(echo_priority, kwargs={"priority": "mine"}, priority=3))
            result = await queue.get_result(task_id, timeout=10)
        assert result is not None and result.value == "mine"
