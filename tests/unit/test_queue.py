"""TaskQueue input validation and configuration: bad input gets a specific error that says how to fix it."""

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sample_tasks import add, multiply

from sitq import (
    MemoryBackend,
    PluginNotFoundError,
    SerializationError,
    Task,
    TaskQueue,
    ValidationError,
    Worker,
)


@pytest.fixture
async def queue() -> TaskQueue:
    async with TaskQueue(MemoryBackend()) as queue:
        yield queue


async def test_naive_eta_is_refused_with_an_example_of_an_aware_one(queue: TaskQueue) -> None:
    with pytest.raises(
        ValidationError, match=r"eta must be timezone-aware, such as datetime.now\(timezone.utc\)"
    ):
        await queue.enqueue(add, 1, 2, eta=datetime.now())


async def test_aware_eta_in_another_zone_is_stored_as_utc_and_a_past_one_runs_at_once(
    queue: TaskQueue,
) -> None:
    tokyo = timezone(timedelta(hours=9))
    past = datetime.now(tokyo) - timedelta(hours=1)
    task_id = await queue.enqueue(add, 1, 2, eta=past)
    record = await queue.backend.get(task_id)
    assert record is not None and record.eta == past and record.eta.tzinfo is UTC
    result = await Worker(queue).process_task(task_id)
    assert result.value == 3


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda q: q.enqueue(42), "a task's function must be a function or another callable, not 42"),
        (lambda q: q.enqueue(Task(add, args=[1, 2]), 3), "pass a Task alone"),
        (lambda q: q.enqueue(Task(add, args="12")), "args must be a list or tuple"),
        (lambda q: q.enqueue(Task(add, kwargs={1: 2})), "kwargs must be a mapping of argument names"),
        (lambda q: q.get_result("x", timeout=-1), "timeout must be a number of seconds >= 0"),
        (lambda q: q.enqueue(add, 1, 2, eta=5), "eta must be a timezone-aware datetime, not 5"),
    ],
)
async def test_bad_arguments_are_refused(queue: TaskQueue, call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match=message):
        await call(queue)


async def test_a_function_argument_named_like_an_option_reaches_the_function_through_task() -> None:
    def takes_eta(eta: str) -> str:
        return eta

    async with TaskQueue("memory://") as queue:
        task_id = await queue.enqueue(Task(takes_eta, kwargs={"eta": "tomorrow"}))
        result = await Worker(queue).process_task(task_id)
    assert result.value == "tomorrow"


async def test_what_the_serializer_cannot_store_fails_at_enqueue_and_stores_nothing() -> None:
    async with TaskQueue(MemoryBackend(), "pickle") as queue:
        with pytest.raises(
            SerializationError, match=r"pickle serializer cannot store a call to .*cloudpickle"
        ):
            await queue.enqueue(lambda: 1)
    async with TaskQueue(MemoryBackend(), "json") as queue:
        with pytest.raises(SerializationError, match="json can only store functions importable by name"):
            await queue.enqueue(lambda: 1)
        with pytest.raises(SerializationError, match="object is not JSON serializable"):
            await queue.enqueue(multiply, object(), 2)
        task_id = await queue.enqueue(multiply, 6, 7)
        assert (await Worker(queue).process_task(task_id)).value == 42


def test_backend_and_serializer_arguments_are_checked() -> None:
    with pytest.raises(ValidationError, match="backend must be a backend object or a URL"):
        TaskQueue(42)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="serializer must be a serializer object or a name"):
        TaskQueue("memory://", serializer=42)  # type: ignore[arg-type]
    with pytest.raises(PluginNotFoundError, match="no installed plugin provides a serializer called 'yaml'"):
        TaskQueue("memory://", serializer="yaml")


def test_url_comes_from_the_argument_then_sitq_url_then_sitq_db(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SITQ_URL", "memory://from-env")
    assert isinstance(TaskQueue().backend, MemoryBackend)
    monkeypatch.delenv("SITQ_URL")
    default = TaskQueue().backend
    assert default.name == "sqlite"
    assert Path(default.path).resolve() == tmp_path / "sitq.db"  # type: ignore[attr-defined]


async def test_enqueue_many_is_one_atomic_write(queue: TaskQueue) -> None:
    ids = await queue.enqueue_many([Task(add, [i, i]) for i in range(5)])
    assert len(set(ids)) == 5
    worker = Worker(queue)
    assert [(await worker.process_task(task_id)).value for task_id in ids] == [0, 2, 4, 6, 8]


class _CancelCounter:
    def __init__(self) -> None:
        self.cancelled: list[str] = []

    def sitq_task_cancelled(self, task_id: str) -> None:
        self.cancelled.append(task_id)


async def test_cancelling_twice_reports_cancelled_but_fires_the_hook_once() -> None:
    counter = _CancelCounter()
    async with TaskQueue(MemoryBackend(), plugins=[counter]) as queue:
        task_id = await queue.enqueue(add, 1, 2)
        assert await queue.cancel(task_id) == "cancelled"
        assert await queue.cancel(task_id) == "cancelled"
    assert counter.cancelled == [task_id]
