"""Worker behaviour beyond the backend contract: threads, signals, stopping, and surviving bad tasks."""

import asyncio
import os
import signal
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sample_tasks import (
    CANCELLED,
    GATES,
    PEAKS,
    add,
    block_counted,
    blocking_sleep_then,
    exit_process,
    fail,
    multiply,
    raise_base_exception,
    raise_base_exception_async,
    raise_stop_iteration,
    return_unpicklable,
    sleep_then,
    sleep_until_cancelled,
    thread_name,
    wait_at_gate,
)

from sitq import MemoryBackend, Task, TaskQueue, ValidationError, Worker, WorkerError
from sitq.models import AttemptOutcome, TaskStatus, utcnow


class _Started:
    """Tells a test, through the public hook, once `count` tasks have started."""

    def __init__(self, count: int) -> None:
        self.remaining = count
        self.all = asyncio.Event()

    def sitq_task_started(self) -> None:
        self.remaining -= 1
        if self.remaining == 0:
            self.all.set()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_concurrency": 0}, "max_concurrency must be a whole number >= 1"),
        ({"max_concurrency": 2.5}, "max_concurrency must be a whole number >= 1"),
        ({"max_concurrency": True}, "max_concurrency must be a whole number >= 1"),
        ({"poll_interval": 0}, "poll_interval must be a number of seconds > 0"),
        ({"lease": -1}, "lease must be a number of seconds > 0"),
    ],
)
def test_bad_options_are_refused(options: dict[str, float], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Worker("memory://", **options)  # type: ignore[arg-type]


async def test_sync_functions_run_in_the_worker_threads_and_async_ones_on_the_loop() -> None:
    async with TaskQueue(MemoryBackend()) as queue, Worker(queue):
        in_thread = await queue.get_result(await queue.enqueue(thread_name), timeout=5)
        on_loop = await queue.get_result(await queue.enqueue(add, 1, 1), timeout=5)
    assert in_thread is not None and in_thread.value.startswith("sitq-task")
    assert on_loop is not None and on_loop.value == 2


async def test_sync_tasks_use_every_slot_and_never_one_more() -> None:
    token = uuid.uuid4().hex
    async with TaskQueue(MemoryBackend()) as queue:
        ids = await queue.enqueue_many([Task(block_counted, [token, 0.2]) for _ in range(9)])
        await asyncio.wait_for(Worker(queue, max_concurrency=3).run(burst=True), 30)
        statuses = [await queue.get_status(task_id) for task_id in ids]
    assert statuses == [TaskStatus.SUCCESS] * 9
    assert PEAKS[token] == 3


async def test_many_quick_sync_tasks_are_all_run_once_and_recorded(tmp_path: Path) -> None:
    async with TaskQueue(f"sqlite:///{tmp_path / 'tasks.db'}") as queue:
        ids = await queue.enqueue_many([Task(multiply, [n, 2]) for n in range(500)])
        await asyncio.wait_for(Worker(queue).run(burst=True), 60)
        results = [await queue.get_result(task_id, timeout=0) for task_id in ids]
        histories = [(await queue.get_task(task_id)).history for task_id in ids]
    assert [result.value for result in results if result is not None] == [n * 2 for n in range(500)]
    assert all(len(history) == 1 for history in histories)


async def test_a_sync_task_raising_stop_iteration_fails_as_an_async_one_would() -> None:
    async with TaskQueue(MemoryBackend()) as queue, Worker(queue):
        result = await queue.get_result(await queue.enqueue(raise_stop_iteration), timeout=5)
    assert result is not None and result.status is TaskStatus.FAILED
    assert result.error == "RuntimeError: coroutine raised StopIteration"


async def test_a_sync_task_cancelled_while_running_keeps_its_slot_until_its_thread_returns() -> None:
    token = uuid.uuid4().hex
    gate = GATES.setdefault(token, threading.Event())
    started = _Started(1)
    # A short lease: the worker learns of the cancellation when it renews.
    async with (
        TaskQueue(MemoryBackend()) as queue,
        Worker(queue, max_concurrency=1, lease=0.3, plugins=[started]),
    ):
        stuck = await queue.enqueue(wait_at_gate, token)
        await started.all.wait()
        assert await queue.cancel(stuck) == "in_progress"
        cancelled = await queue.get_result(stuck, timeout=5)
        after = await queue.enqueue(multiply, 2, 3)
        await asyncio.sleep(0.2)
        assert await queue.get_status(after) == TaskStatus.PENDING
        gate.set()
        # With no slot free the worker waits without polling: the thread's return wakes it.
        result = await queue.get_result(after, timeout=5)
    assert cancelled is not None and cancelled.status is TaskStatus.CANCELLED
    assert cancelled.error == "TaskCancelledError: cancelled on request while running"
    assert result is not None and result.value == 6


async def test_a_thread_abandoned_at_shutdown_keeps_its_slot_when_the_worker_starts_again() -> None:
    token = uuid.uuid4().hex
    gate = GATES.setdefault(token, threading.Event())
    started = _Started(1)
    async with TaskQueue(MemoryBackend()) as queue:
        worker = Worker(queue, max_concurrency=1, grace_period=0.05, plugins=[started])
        await worker.start()
        stuck = await queue.enqueue(wait_at_gate, token)
        await started.all.wait()
        await worker.stop()  # gives the task back, without waiting for its thread
        await worker.start()
        await asyncio.sleep(0.2)
        assert await queue.get_status(stuck) == TaskStatus.PENDING
        gate.set()
        result = await queue.get_result(stuck, timeout=5)
        await worker.stop()
    assert result is not None and result.value == token


async def test_a_task_enqueued_in_this_process_starts_without_waiting_for_a_poll() -> None:
    async with TaskQueue(MemoryBackend()) as queue, Worker(queue, poll_interval=3600):
        await asyncio.sleep(0.05)  # let the worker go idle first
        result = await queue.get_result(await queue.enqueue(add, 2, 2), timeout=5)
    assert result is not None and result.value == 4


async def test_tasks_that_exit_or_return_the_unstorable_fail_and_the_worker_goes_on() -> None:
    async with TaskQueue(MemoryBackend()) as queue, Worker(queue):
        exited = await queue.get_result(await queue.enqueue(exit_process), timeout=5)
        unstorable = await queue.get_result(await queue.enqueue(return_unpicklable), timeout=5)
        raised = await queue.get_result(await queue.enqueue(fail, "bad input"), timeout=5)
        fine = await queue.get_result(await queue.enqueue(add, 2, 3), timeout=5)
    assert exited is not None and exited.error == "SystemExit: 3"
    assert unstorable is not None and unstorable.error is not None
    assert unstorable.error.startswith("SerializationError: the task returned a lock")
    assert raised is not None and raised.error == "RuntimeError: bad input"
    assert fine is not None and fine.value == 5


async def test_stop_waits_for_in_flight_tasks_and_records_them() -> None:
    async with TaskQueue(MemoryBackend()) as queue:
        started = _Started(2)
        worker = Worker(queue, max_concurrency=2, plugins=[started])
        await worker.start()
        slow = await queue.enqueue(sleep_then, 0.2, "async done")
        blocking = await queue.enqueue(blocking_sleep_then, 0.2, "thread done")
        await started.all.wait()
        await worker.stop()
        assert not worker.is_running
        assert [(await queue.get_result(task_id, timeout=0)).value for task_id in (slow, blocking)] == [  # type: ignore[union-attr]
            "async done",
            "thread done",
        ]


async def test_starting_twice_is_an_error_and_stop_is_idempotent() -> None:
    worker = Worker(MemoryBackend())
    await worker.start()
    with pytest.raises(WorkerError, match="already running"):
        await worker.start()
    await worker.stop()
    await worker.stop()
    await worker.start()
    await worker.stop()


async def test_process_task_refuses_a_task_another_worker_is_running() -> None:
    backend = MemoryBackend()
    async with TaskQueue(backend) as queue:
        task_id = await queue.enqueue(add, 1, 1)
        await backend.claim_task(task_id, worker_id="elsewhere", now=utcnow(), lease=timedelta(minutes=1))
        with pytest.raises(WorkerError, match="is running on worker elsewhere"):
            await Worker(queue).process_task(task_id)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_run_stops_gracefully_on_a_signal(signum: int) -> None:
    async with TaskQueue(MemoryBackend()) as queue:
        started = _Started(1)
        worker = Worker(queue, plugins=[started])
        running = asyncio.create_task(worker.run())
        task_id = await queue.enqueue(sleep_then, 0.1, "finished")
        await started.all.wait()
        os.kill(os.getpid(), signum)
        await asyncio.wait_for(running, 5)
        result = await queue.get_result(task_id, timeout=0)
    assert result is not None and result.value == "finished"


async def test_a_failure_traceback_starts_in_the_task_not_in_sitq() -> None:
    async with TaskQueue(MemoryBackend()) as queue, Worker(queue) as worker:
        result = await worker.process_task(await queue.enqueue(fail, "deep"))
    assert result.traceback is not None
    frames = result.traceback.splitlines()
    assert frames[0] == "Traceback (most recent call last):"
    assert frames[1].endswith("in fail") and "sample_tasks.py" in frames[1]
    assert frames[-1] == "RuntimeError: deep"


async def test_process_task_waits_for_a_task_the_running_worker_already_took() -> None:
    async with TaskQueue(MemoryBackend()) as queue, Worker(queue) as worker:
        task_id = await queue.enqueue(sleep_then, 0.05, "mine")
        await asyncio.sleep(0.01)
        result = await worker.process_task(task_id)
    assert result.value == "mine"


async def test_stopping_past_the_grace_period_cancels_the_running_coroutine() -> None:
    started = _Started(1)
    async with TaskQueue(MemoryBackend()) as queue:
        worker = Worker(queue, grace_period=0.05, plugins=[started])
        await worker.start()
        task_id = await queue.enqueue(sleep_until_cancelled, "stopped")
        await started.all.wait()
        await worker.stop()
        assert "stopped" in CANCELLED
        assert await queue.get_status(task_id) == "pending"


async def test_process_task_on_a_started_worker_is_renewed_and_cancellable() -> None:
    started = _Started(2)
    async with (
        TaskQueue(MemoryBackend()) as queue,
        Worker(queue, queues=["elsewhere"], lease=0.3, poll_interval=0.05, plugins=[started]) as worker,
    ):
        task_id = await queue.enqueue(sleep_then, 0.6, "renewed")
        assert (await worker.process_task(task_id)).value == "renewed"
        slow = await queue.enqueue(sleep_then, 30, "never")
        running = asyncio.create_task(worker.process_task(slow))
        await started.all.wait()
        assert await queue.cancel(slow) == "in_progress"
        result = await asyncio.wait_for(running, 5)
    assert result.status == "cancelled" and result.is_error


@pytest.mark.parametrize("kind", ["KeyboardInterrupt", "SystemExit", "GeneratorExit", "Escape"])
@pytest.mark.parametrize("function", [raise_base_exception, raise_base_exception_async])
async def test_a_base_exception_from_a_task_fails_that_task_only(
    tmp_path: Path, kind: str, function: Callable[[str], object]
) -> None:
    async with TaskQueue(f"sqlite:///{tmp_path / 'tasks.db'}") as queue:
        started = _Started(1)
        worker = Worker(queue, plugins=[started])
        running = asyncio.create_task(worker.run())
        beside = await queue.enqueue(sleep_then, 0.3, "untouched")
        await started.all.wait()
        escaped = await queue.get_result(await queue.enqueue(function, kind), timeout=10)
        assert escaped is not None and escaped.status is TaskStatus.FAILED
        assert escaped.error == f"{kind}: from the task"
        untouched = await queue.get_result(beside, timeout=10)
        assert untouched is not None and untouched.value == "untouched"
        assert [attempt.outcome for attempt in (await queue.get_task(beside)).history] == [
            AttemptOutcome.SUCCESS
        ]
        assert not running.done(), "the worker stopped"
        after = await queue.get_result(await queue.enqueue(add, 2, 2), timeout=10)
        assert after is not None and after.value == 4
        await worker.stop()
        await running


async def test_process_task_ends_a_dead_workers_task_that_has_no_attempt_left() -> None:
    backend = MemoryBackend()
    failed: list[str] = []

    class Failures:
        def sitq_task_failed(self, task_id: str, error: str) -> None:
            failed.append(error)

    async with TaskQueue(backend) as queue:
        task_id = await queue.enqueue(add, 1, 1)
        past = utcnow() - timedelta(minutes=1)
        await backend.claim_task(task_id, worker_id="dead", now=past, lease=timedelta(seconds=1))
        result = await Worker(queue, plugins=[Failures()]).process_task(task_id)
    assert result.status is TaskStatus.FAILED
    assert failed == ["WorkerLostError: worker dead stopped renewing its lease, and no attempts are left"]


async def test_a_worker_with_every_slot_busy_still_ends_a_dead_workers_task(tmp_path: Path) -> None:
    failed: list[tuple[str, str]] = []

    class Failures:
        def sitq_task_failed(self, task_id: str, error: str) -> None:
            failed.append((task_id, error))

    async with TaskQueue(f"sqlite:///{tmp_path / 'tasks.db'}") as queue:
        lost = await queue.enqueue(add, 1, 1)
        # A worker that died at once: its lease on the task ran out a minute ago, with no attempt left.
        past = utcnow() - timedelta(minutes=1)
        await queue.backend.claim_task(lost, worker_id="dead", now=past, lease=timedelta(seconds=1))
        busy = [await queue.enqueue(sleep_then, 60, "busy") for _ in range(2)]
        started = _Started(2)
        worker = Worker(queue, max_concurrency=2, lease=1, grace_period=0.01, plugins=[started, Failures()])
        async with worker:
            await started.all.wait()  # both slots taken by the first claim, so the worker never idles
            result = await queue.get_result(lost, timeout=30)
            statuses = [await queue.get_status(task_id) for task_id in busy]
    assert result is not None and result.status is TaskStatus.FAILED
    assert failed == [
        (lost, "WorkerLostError: worker dead stopped renewing its lease, and no attempts are left")
    ]
    assert statuses == [TaskStatus.IN_PROGRESS] * 2
