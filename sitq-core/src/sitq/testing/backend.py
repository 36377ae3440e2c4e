"""The backend contract, checked twice: at the `Backend` protocol with a controlled clock, and end to end
through `TaskQueue` and `Worker` on the real clock. Every backend sitq ships runs it; so should yours."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
import pytest_asyncio

from sitq.backend import Backend
from sitq.errors import (
    BackendError,
    ConfigurationError,
    Retry,
    TaskNotFoundError,
    ValidationError,
    WorkflowNotFoundError,
)
from sitq.hookspecs import hookimpl
from sitq.models import (
    AttemptOutcome,
    Compaction,
    NewTask,
    RetryPolicy,
    Task,
    TaskOptions,
    TaskOutcome,
    TaskStatus,
    utcnow,
)
from sitq.queue import TaskQueue
from sitq.tasks import current_task, task
from sitq.worker import Worker
from sitq.workflow import Workflow

T0 = datetime(2030, 1, 1, tzinfo=UTC)
LEASE = timedelta(seconds=30)
QUEUES = ("default",)


def new_task(
    eta: datetime = T0,
    payload: bytes = b"call",
    task_id: str | None = None,
    options: TaskOptions | None = None,
    **option_fields: Any,
) -> NewTask:
    return NewTask(
        id=task_id or uuid.uuid4().hex,
        name="tests.task",
        payload=payload,
        serializer="pickle",
        enqueued_at=T0 - timedelta(minutes=1),
        eta=eta,
        options=options or TaskOptions(**option_fields),
    )


def outcome(
    task_id: str, worker_id: str, status: TaskStatus = TaskStatus.SUCCESS, **fields: Any
) -> TaskOutcome:
    return TaskOutcome(task_id=task_id, worker_id=worker_id, status=status, finished_at=T0, **fields)


def assert_same_instant(actual: datetime | None, expected: datetime) -> None:
    """Stored times must come back timezone-aware UTC, within a millisecond of what went in."""
    assert actual is not None
    assert actual.utcoffset() == timedelta(0)
    assert abs((actual - expected).total_seconds()) < 1e-3


class _Recorder:
    """A lifecycle plugin that records events; one hook raises to prove observers cannot hurt a task."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    @hookimpl  # marking is optional: unmarked ``sitq_*`` methods are hook implementations too
    def sitq_task_enqueued(self, task_id: str, queue: str) -> None:
        self.events.append(("enqueued", task_id, queue))

    async def sitq_task_started(self, task_id: str, queue: str, attempt: int) -> None:
        self.events.append(("started", task_id, queue))
        raise RuntimeError("a broken observer")

    def sitq_task_succeeded(self, task_id: str, queue: str, duration: float) -> None:
        assert duration >= 0
        self.events.append(("succeeded", task_id, queue))

    def sitq_task_failed(self, task_id: str, queue: str, error: str, traceback: str) -> None:
        self.events.append(("failed", task_id, queue))


class _Started:
    """A lifecycle plugin that lets a test wait until a worker has started a task."""

    def __init__(self) -> None:
        self.first = asyncio.Event()

    def sitq_task_started(self) -> None:
        self.first.set()


class _UnknownSerializer:
    """A serializer only the producer has: workers must fail its tasks clearly, not crash."""

    name: ClassVar[str] = "conformance-private"

    def dumps(self, obj: Any) -> bytes:
        import pickle

        return pickle.dumps(obj)

    def loads(self, data: bytes) -> Any:
        raise AssertionError("a worker must not find this serializer")


async def add(a: int, b: int) -> int:
    return a + b


def multiply(a: int, b: int) -> int:
    return a * b


def explode() -> None:
    raise ValueError("boom")


FAST_RETRY = RetryPolicy(backoff=0.01, jitter=0)


@task(priority=7, queue="special", max_attempts=2, name="conformance.decorated")
def decorated(x: int) -> int:
    return x


async def retried_at_once() -> int:
    attempt = current_task().attempt
    if attempt == 1:
        raise Retry(delay=0)
    await asyncio.sleep(0.2)  # a burst worker must wait for this run too
    return attempt


def echo_priority(priority: str) -> str:
    return priority


def flaky(succeed_on: int) -> str:
    attempt = current_task().attempt
    if attempt < succeed_on:
        raise ConnectionError(f"attempt {attempt} failed")
    return f"succeeded on attempt {attempt}"


async def retry_once() -> dict[str, Any]:
    context = current_task()
    if context.attempt == 1:
        raise Retry(delay=0.01)
    return {"task_id": context.task_id, "attempt": context.attempt, "max_attempts": context.max_attempts}


async def sleep_for(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def slow_first_time() -> str:
    if current_task().attempt == 1:
        await asyncio.sleep(30)
    return "fast the second time"


def block_for(seconds: float) -> None:
    threading.Event().wait(seconds)


def download_data() -> list[int]:
    return [1, 2, 3]


def process_data(parent_results: dict[str, list[int]]) -> list[int]:
    [rows] = parent_results.values()
    return [row * 10 for row in rows]


def generate_report(parent_results: dict[str, list[int]]) -> str:
    [rows] = parent_results.values()
    return f"report of {len(rows)} rows"


async def send_notifications(parent_results: dict[str, list[int]]) -> str:
    [rows] = parent_results.values()
    return f"notified about {len(rows)} rows"


def archive_results(parent_results: dict[str, str]) -> list[str]:
    return sorted(parent_results.values())


class _Concurrency:
    """Module-level, so that tasks pickled by reference share it with the test in this process."""

    running = 0
    peak = 0


async def tracked_sleep() -> None:
    _Concurrency.running += 1
    _Concurrency.peak = max(_Concurrency.peak, _Concurrency.running)
    await asyncio.sleep(0.02)
    _Concurrency.running -= 1


class BackendConformance:
    """Subclass and override `backend` to return a new, unconnected backend on an empty store."""

    pytestmark = pytest.mark.asyncio

    @pytest.fixture
    def backend(self) -> Backend:
        raise NotImplementedError("override the `backend` fixture to return your backend, unconnected")

    @pytest_asyncio.fixture
    async def store(self, backend: Backend) -> AsyncIterator[Backend]:
        await backend.connect()
        yield backend
        await backend.close()

    # Connection

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

    # Storing and reading

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

    # Claiming

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

    async def test_claim_task_ignores_eta_but_not_a_live_lease(self, store: Backend) -> None:
        task = new_task(T0 + timedelta(days=1))
        await store.enqueue([task])
        claimed = await store.claim_task(task.id, worker_id="w1", now=T0, lease=LEASE)
        assert claimed is not None and claimed.id == task.id and claimed.attempt == 1
        assert await store.claim_task(task.id, worker_id="w2", now=T0, lease=LEASE) is None
        assert await store.claim_task("no-such-task", worker_id="w2", now=T0, lease=LEASE) is None

    # Completing

    async def test_success_and_failure_are_recorded(self, store: Backend) -> None:
        good, bad = new_task(), new_task()
        await store.enqueue([good, bad])
        await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=2, queues=QUEUES)
        await store.complete(
            [
                outcome(good.id, "w1", result=b"\x00value"),
                outcome(bad.id, "w1", TaskStatus.FAILED, error="ValueError: boom", traceback="Traceback ..."),
            ]
        )
        done, failed = await store.get(good.id), await store.get(bad.id)
        assert done is not None and failed is not None
        assert (done.status, done.result, done.error) == (TaskStatus.SUCCESS, b"\x00value", None)
        assert (failed.status, failed.error, failed.traceback) == (
            TaskStatus.FAILED,
            "ValueError: boom",
            "Traceback ...",
        )
        assert_same_instant(done.finished_at, T0)
        assert_same_instant(done.started_at, T0)
        later = T0 + timedelta(days=1)
        assert await store.claim(worker_id="w2", now=later, lease=LEASE, limit=5, queues=QUEUES) == []
        assert await store.claim_task(good.id, worker_id="w2", now=later, lease=LEASE) is None

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

    async def test_a_claim_records_outcomes_first_in_the_same_write(self, store: Backend) -> None:
        parent, child, failing, dependent, late = (new_task(T0 - timedelta(seconds=5 - n)) for n in range(5))
        child = dataclasses.replace(child, depends_on=(parent.id,))
        dependent = dataclasses.replace(dependent, depends_on=(failing.id,))
        await store.enqueue([parent, child, failing, dependent, late])
        claimed = await store.claim(worker_id="w", now=T0, lease=LEASE, limit=2, queues=QUEUES)
        assert [task.id for task in claimed] == [parent.id, failing.id]
        with store.subscribe() as changes:
            again = await store.claim(
                worker_id="w",
                now=T0,
                lease=LEASE,
                limit=2,
                queues=QUEUES,
                outcomes=[
                    outcome(parent.id, "w", result=b"parent"),
                    outcome(failing.id, "w", TaskStatus.FAILED, error="boom"),
                    outcome(late.id, "someone-else", result=b"ignored"),
                ],
            )
            assert await changes.wait(timeout=5)
        # The parent's success made its child claimable in the same write; the failure cancelled its own.
        assert [task.id for task in again] == [child.id, late.id]
        records = {task.id: await store.get(task.id) for task in (parent, failing, dependent)}
        assert {task_id: (r.status if r else None) for task_id, r in records.items()} == {
            parent.id: TaskStatus.SUCCESS,
            failing.id: TaskStatus.FAILED,
            dependent.id: TaskStatus.CANCELLED,
        }
        assert [attempt.outcome for attempt in await store.history(parent.id)] == [AttemptOutcome.SUCCESS]

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

    async def test_options_are_stored_and_returned(self, store: Backend) -> None:
        retry = RetryPolicy(backoff=2, factor=3, max_backoff=60, jitter=0.5, retry_on=[ConnectionError])
        options = TaskOptions("q", priority=-3, max_attempts=4, retry=retry, timeout=1.5, description="d")
        task = new_task(options=options)
        await store.enqueue([task])
        record = await store.get(task.id)
        assert record is not None and record.options == options
        [claimed] = await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=1, queues=("q",))
        assert claimed.options == options

    async def test_a_retry_is_pending_again_at_its_time_with_the_attempt_in_history(
        self, store: Backend
    ) -> None:
        task = new_task(max_attempts=3)
        await store.enqueue([task])
        await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=1, queues=QUEUES)
        retry_at = T0 + timedelta(seconds=10)
        failure = {"error": "OSError: flaky", "traceback": "Traceback ..."}
        await store.complete([outcome(task.id, "w1", TaskStatus.PENDING, retry_at=retry_at, **failure)])
        record = await store.get(task.id)
        assert record is not None
        assert (record.status, record.attempts, record.error, record.finished_at) == (
            TaskStatus.PENDING,
            1,
            "OSError: flaky",
            None,
        )
        assert_same_instant(record.eta, retry_at)
        assert_same_instant(await store.next_due(QUEUES), retry_at)
        assert (
            await store.claim(
                worker_id="w2", now=retry_at - timedelta(seconds=1), lease=LEASE, limit=1, queues=QUEUES
            )
            == []
        )
        [again] = await store.claim(worker_id="w2", now=retry_at, lease=LEASE, limit=1, queues=QUEUES)
        assert again.attempt == 2
        await store.complete([outcome(again.id, "w2", result=b"ok")])
        history = await store.history(task.id)
        assert [(a.attempt, a.worker_id, a.outcome, a.error) for a in history] == [
            (1, "w1", AttemptOutcome.FAILED, "OSError: flaky"),
            (2, "w2", AttemptOutcome.SUCCESS, None),
        ]

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

    # Scheduling and notification

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

    # End to end, through the public API

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

    async def test_failure_is_recorded_and_the_worker_goes_on(self, backend: Backend) -> None:
        async with TaskQueue(backend) as queue, Worker(queue):
            failing = await queue.enqueue(explode)
            after = await queue.enqueue(multiply, 6, 7)
            failed = await queue.get_result(failing, timeout=10)
            fine = await queue.get_result(after, timeout=10)
        assert failed is not None and failed.is_error and failed.status == "failed"
        assert failed.error == "ValueError: boom"
        assert failed.traceback is not None and 'raise ValueError("boom")' in failed.traceback
        assert fine is not None and fine.value == 42

    async def test_payload_from_an_unavailable_serializer_fails_clearly(self, backend: Backend) -> None:
        async with TaskQueue(backend, _UnknownSerializer()) as queue, Worker(backend) as worker:
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
        _Concurrency.peak = 0
        async with TaskQueue(backend) as queue, Worker(queue, max_concurrency=3):
            ids = await queue.enqueue_many([Task(tracked_sleep) for _ in range(12)])
            results = [await queue.get_result(task_id, timeout=10) for task_id in ids]
        assert all(result is not None and result.status == "success" for result in results)
        assert _Concurrency.peak == 3

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

    async def test_a_burst_worker_runs_what_is_due_then_returns(self, backend: Backend) -> None:
        async with TaskQueue(backend) as queue:
            due = [await queue.enqueue(add, n, n) for n in range(5)]
            later = await queue.enqueue(add, 1, 1, eta=utcnow() + timedelta(hours=1))
            await asyncio.wait_for(Worker(queue, max_concurrency=2).run(burst=True), timeout=30)
            assert [(await queue.get_status(task_id)) for task_id in due] == [TaskStatus.SUCCESS] * 5
            assert await queue.get_status(later) == TaskStatus.PENDING

    async def test_a_retry_due_at_once_runs_again_in_the_same_burst(self, backend: Backend) -> None:
        async with TaskQueue(backend) as queue:
            task_id = await queue.enqueue(Task(retried_at_once, max_attempts=2))
            await asyncio.wait_for(Worker(queue).run(burst=True), timeout=30)
            result = await queue.get_result(task_id, timeout=0)
            assert result is not None and (result.status, result.value) == (TaskStatus.SUCCESS, 2)

    async def test_lifecycle_hooks_fire_and_a_failing_observer_harms_nothing(self, backend: Backend) -> None:
        recorder = _Recorder()
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

    # Job semantics, end to end

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

    async def test_failures_retry_with_backoff_until_success_and_history_shows_each(
        self, backend: Backend
    ) -> None:
        async with TaskQueue(backend) as queue, Worker(queue):
            task_id = await queue.enqueue(Task(flaky, [3], max_attempts=3, retry=FAST_RETRY))
            result = await queue.get_result(task_id, timeout=10)
            info = await queue.get_task(task_id)
        assert result is not None and result.value == "succeeded on attempt 3"
        assert info.attempts == 3
        assert [(a.attempt, a.outcome) for a in info.history] == [
            (1, AttemptOutcome.FAILED),
            (2, AttemptOutcome.FAILED),
            (3, AttemptOutcome.SUCCESS),
        ]
        assert info.history[0].error == "ConnectionError: attempt 1 failed"

    async def test_only_the_chosen_exceptions_retry_and_the_last_failure_is_final(
        self, backend: Backend
    ) -> None:
        policy = RetryPolicy(backoff=0.01, jitter=0, retry_on=[ConnectionError])
        async with TaskQueue(backend) as queue, Worker(queue):
            not_retried = await queue.enqueue(Task(explode, max_attempts=5, retry=policy))
            exhausted = await queue.enqueue(Task(flaky, [9], max_attempts=2, retry=policy))
            first = await queue.get_result(not_retried, timeout=10)
            last = await queue.get_result(exhausted, timeout=10)
            attempts = (await queue.get_task(not_retried)).attempts
        assert first is not None and first.status == "failed" and first.error == "ValueError: boom"
        assert (
            last is not None and last.status == "failed" and last.error == "ConnectionError: attempt 2 failed"
        )
        assert attempts == 1

    async def test_a_task_can_ask_for_its_own_retry_and_see_its_context(self, backend: Backend) -> None:
        async with TaskQueue(backend) as queue, Worker(queue):
            task_id = await queue.enqueue(Task(retry_once, max_attempts=2))
            result = await queue.get_result(task_id, timeout=10)
        assert result is not None and result.value == {"task_id": task_id, "attempt": 2, "max_attempts": 2}

    async def test_an_async_task_past_its_timeout_is_cancelled_and_recorded(self, backend: Backend) -> None:
        async with TaskQueue(backend) as queue, Worker(queue):
            task_id = await queue.enqueue(Task(sleep_for, [30], timeout=0.1))
            result = await queue.get_result(task_id, timeout=10)
            info = await queue.get_task(task_id)
        assert result is not None and result.status == "timeout"
        assert result.error == "TaskTimeoutError: the attempt ran longer than its 0.1s timeout"
        assert [a.outcome for a in info.history] == [AttemptOutcome.TIMEOUT]

    async def test_a_timed_out_attempt_is_retried_when_attempts_remain(self, backend: Backend) -> None:
        async with TaskQueue(backend) as queue, Worker(queue):
            task_id = await queue.enqueue(
                Task(slow_first_time, timeout=0.2, max_attempts=2, retry=FAST_RETRY)
            )
            result = await queue.get_result(task_id, timeout=10)
            info = await queue.get_task(task_id)
        assert result is not None and result.value == "fast the second time"
        assert [a.outcome for a in info.history] == [AttemptOutcome.TIMEOUT, AttemptOutcome.SUCCESS]

    async def test_a_sync_task_past_its_timeout_keeps_its_thread_slot_until_it_returns(
        self, backend: Backend
    ) -> None:
        async with TaskQueue(backend) as queue, Worker(queue, max_concurrency=1):
            stuck = await queue.enqueue(Task(block_for, [0.5], timeout=0.05))
            after = await queue.enqueue(add, 1, 1)
            timed_out = await queue.get_result(stuck, timeout=10)
            result = await queue.get_result(after, timeout=10)
        assert timed_out is not None and timed_out.status == "timeout"
        assert timed_out.started_at is not None and result is not None and result.started_at is not None
        assert result.started_at - timed_out.started_at >= timedelta(seconds=0.5)

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
        started = _Started()
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
        started = _Started()
        async with TaskQueue(backend) as queue:
            worker = Worker(queue, grace_period=0.1, plugins=[started])
            await worker.start()
            task_id = await queue.enqueue(sleep_for, 30)
            await started.first.wait()
            await worker.stop()
            info = await queue.get_task(task_id)
        assert (info.status, info.attempts) == (TaskStatus.PENDING, 0)
        assert [a.outcome for a in info.history] == [AttemptOutcome.RELEASED]

    # Workflows

    async def test_a_task_waits_until_all_its_parents_succeed(self, store: Backend) -> None:
        first, second = new_task(), new_task()
        child = dataclasses.replace(new_task(), depends_on=(first.id, second.id))
        await store.enqueue([first, second, child])
        claimed = await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=10, queues=QUEUES)
        assert {task.id for task in claimed} == {first.id, second.id}
        await store.complete([outcome(first.id, "w1", result=b"1")])
        assert await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=10, queues=QUEUES) == []
        assert await store.claim_task(child.id, worker_id="w1", now=T0, lease=LEASE) is None
        await store.complete([outcome(second.id, "w1", result=b"2")])
        [ready] = await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=10, queues=QUEUES)
        assert ready.id == child.id and ready.depends_on == (first.id, second.id)

    async def test_a_waiting_task_is_not_due(self, store: Backend) -> None:
        parent = new_task(T0 + timedelta(hours=1))
        child = dataclasses.replace(new_task(T0 - timedelta(hours=1)), depends_on=(parent.id,))
        await store.enqueue([parent, child])
        assert_same_instant(await store.next_due(QUEUES), parent.eta)

    async def test_an_unknown_parent_is_refused_and_nothing_stored(self, store: Backend) -> None:
        fine, orphan = new_task(), dataclasses.replace(new_task(), depends_on=("no-such-task",))
        with pytest.raises(TaskNotFoundError, match="no-such-task"):
            await store.enqueue([fine, orphan])
        assert await store.get(fine.id) is None

    async def test_a_parent_ending_without_success_cancels_its_descendants(self, store: Backend) -> None:
        root = new_task()
        child = dataclasses.replace(new_task(), depends_on=(root.id,))
        grandchild = dataclasses.replace(new_task(), depends_on=(child.id,))
        bystander = new_task()
        await store.enqueue([root, child, grandchild, bystander])
        await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=1, queues=QUEUES)
        with store.subscribe() as changes:
            await store.complete([outcome(root.id, "w1", TaskStatus.FAILED, error="ValueError: bad")])
            assert await changes.wait(5)
        for dependent, parent, ended in ((child, root, "failed"), (grandchild, child, "cancelled")):
            record = await store.get(dependent.id)
            assert record is not None and record.status is TaskStatus.CANCELLED
            assert record.error == f"TaskCancelledError: parent task {parent.id} ended {ended}"
        late = dataclasses.replace(new_task(), depends_on=(root.id,))
        await store.enqueue([late])
        late_record = await store.get(late.id)
        assert late_record is not None and late_record.status is TaskStatus.CANCELLED
        bystanding = await store.get(bystander.id)
        assert bystanding is not None and bystanding.status is TaskStatus.PENDING

    async def test_cancelling_a_parent_cancels_its_dependents(self, store: Backend) -> None:
        parent = new_task(T0 + timedelta(hours=1))
        child = dataclasses.replace(new_task(), depends_on=(parent.id,))
        await store.enqueue([parent, child])
        assert await store.cancel(parent.id, now=T0) is TaskStatus.CANCELLED
        record = await store.get(child.id)
        assert record is not None and record.status is TaskStatus.CANCELLED

    async def test_next_due_looks_only_at_the_given_queues(self, store: Backend) -> None:
        await store.enqueue(
            [new_task(T0 - timedelta(hours=1), queue="other"), new_task(T0 + timedelta(hours=1))]
        )
        assert_same_instant(await store.next_due(QUEUES), T0 + timedelta(hours=1))
        assert_same_instant(await store.next_due(("other", "default")), T0 - timedelta(hours=1))
        assert await store.next_due(("empty",)) is None

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

    async def test_workflow_tasks_are_counted_by_status(self, store: Backend) -> None:
        tasks = [dataclasses.replace(new_task(), workflow_id="wf") for _ in range(3)]
        await store.enqueue([*tasks, new_task()])
        await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=1, queues=QUEUES)
        counts = await store.workflow_counts("wf")
        assert sum(counts.values()) == 3 and counts[TaskStatus.PENDING] >= 2
        assert await store.workflow_counts("no-such-workflow") == {}
        record = await store.get(tasks[0].id)
        assert record is not None and record.workflow_id == "wf"

    async def test_seed_003_pipeline_runs_in_order_with_parent_results(self, backend: Backend) -> None:
        workflow = Workflow("data_pipeline")
        download_job = Task(name="download", function=download_data)
        process_job = Task(name="process", function=process_data)
        report_job = Task(name="report", function=generate_report)
        notify_job = Task(name="notify", function=send_notifications)
        archive_job = Task(name="archive", function=archive_results)
        workflow.add(download_job)
        workflow.add(process_job, depends_on=[download_job])
        workflow.add(report_job, depends_on=[process_job])
        workflow.add(notify_job, depends_on=[process_job])
        workflow.add(archive_job, depends_on=[report_job, notify_job])
        async with TaskQueue(backend) as queue, Worker(queue, max_concurrency=4):
            run = await queue.submit(workflow)
            archived = await queue.get_result(run.id_of(archive_job), timeout=20)
            status = await queue.get_workflow(run.id)
        assert archived is not None and archived.value == ["notified about 3 rows", "report of 3 rows"]
        assert status.finished and status.succeeded and status.total == 5
        assert len(run.task_ids) == 5 and run.name == "data_pipeline"

    async def test_a_failing_step_cancels_the_rest_and_the_workflow_finishes(self, backend: Backend) -> None:
        workflow = Workflow("doomed")
        first = workflow.add(explode)
        second = workflow.add(add, 1, 2, depends_on=[first])
        third = workflow.add(add, 3, 4, depends_on=[second])
        async with TaskQueue(backend) as queue, Worker(queue):
            run = await queue.submit(workflow)
            last = await queue.get_result(run.id_of(third), timeout=10)
            status = await queue.get_workflow(run.id)
        assert last is not None and last.status == "cancelled"
        assert last.error is not None and "TaskCancelledError: parent task" in last.error
        assert status.finished and not status.succeeded
        assert dict(status.counts) == {TaskStatus.FAILED: 1, TaskStatus.CANCELLED: 2}

    async def test_bad_workflows_and_parents_are_refused_at_submit(self, backend: Backend) -> None:
        workflow = Workflow("bad")
        outsider = Task(add, [1, 1])
        with pytest.raises(ValidationError, match="add a task's parents before it"):
            workflow.add(add, 1, 2, depends_on=[outsider])
        async with TaskQueue(backend) as queue:
            with pytest.raises(TaskNotFoundError, match="no-such-task"):
                await queue.enqueue(Task(add, [1, 2], depends_on=["no-such-task"]))
            with pytest.raises(WorkflowNotFoundError):
                await queue.get_workflow("no-such-workflow")

    # Inspection and administration

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

    # Describing

    async def test_describe_tells_a_person_how_durable_the_store_is(self, store: Backend) -> None:
        facts = await store.describe()
        assert all(isinstance(key, str) and key and isinstance(value, str) for key, value in facts.items())
        assert facts.get("durability"), "describe() must say which crashes a committed task survives"
