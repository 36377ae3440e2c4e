"""Limits per key beyond the backend contract: the forms of a rate, the key rule, and a worker that
holds back what its limits do not allow."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sample_tasks import PEAKS, add, block_counted

import sitq
from sitq import Task, TaskQueue, ValidationError, Worker, WorkerError
from sitq.limiting import Candidate, RateLimit, Start, admit, limit_key, reopens_at
from sitq.models import TaskOptions, TaskStatus

T0 = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "count", "period"),
    [
        ("10/s", 10, 1),
        ("100/m", 100, 60),
        ("1000/h", 1000, 3600),
        ("5/d", 5, 86400),
        ("3/10s", 3, 10),
        (" 2 / 5m ", 2, 300),
    ],
)
def test_rate_forms(text: str, count: int, period: float) -> None:
    rate = RateLimit.parse(text)
    assert rate == RateLimit(count, period)
    assert RateLimit.parse(str(rate)) == rate


@pytest.mark.parametrize("bad", ["100", "100/x", "/m", "-1/m", "0/m", "1.5/m", "1/0s", "", 100])
def test_bad_rates_are_refused_showing_the_forms(bad: object) -> None:
    with pytest.raises(ValidationError, match=r"100/m|count|period"):
        TaskOptions(rate_limit=bad)  # type: ignore[arg-type]  # the point: what a caller may pass


def test_concurrency_limit_must_be_a_positive_whole_number() -> None:
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValidationError, match="concurrency_limit"):
            Task(add, concurrency_limit=bad)  # type: ignore[arg-type]  # the point: what a caller may pass


def test_the_limit_key_is_the_concurrency_key_else_the_task_name() -> None:
    assert limit_key("f", "tenant-7", 2, None) == "tenant-7"
    assert limit_key("f", None, None, RateLimit(1, 1)) == "f"
    assert limit_key("f", None, None, None) is None
    with pytest.raises(ValidationError, match="limits nothing"):
        limit_key("f", "tenant-7", None, None)


def test_a_start_is_counted_until_its_period_has_passed() -> None:
    candidate = Candidate(1, "k", (0,), None, 2, 60.0)
    starts = [
        Start(T0, T0 + timedelta(minutes=1)),
        Start(T0 + timedelta(seconds=10), T0 + timedelta(seconds=70)),
    ]
    assert reopens_at(candidate, starts) == T0 + timedelta(minutes=1)
    assert reopens_at(candidate, starts[:1]) is None


def test_admit_keeps_the_order_of_a_key() -> None:
    first = Candidate("a", "k", (0,), 1, None, None)
    second = Candidate("b", "k", (1,), 5, None, None)
    assert admit([second, first], running={"k": 1}, starts={}, now=T0, limit=5) == []
    assert admit([second, first], running={}, starts={}, now=T0, limit=5) == [first, second]


@sitq.task(concurrency_key=lambda tenant, seconds: f"tenant-{tenant}", concurrency_limit=2)
def per_tenant(tenant: int, seconds: float) -> None:
    block_counted(f"tenant-{tenant}", seconds)


@sitq.task(rate_limit="1/h")
def hourly(value: int) -> int:
    return value


async def test_a_callable_key_is_resolved_at_enqueue_and_kept_with_the_task() -> None:
    async with TaskQueue(backend="memory://") as queue:
        info = await queue.get_task(await queue.enqueue(per_tenant, 7, 0))
        assert info.concurrency_key == "tenant-7" and info.options.concurrency_limit == 2
        own = await queue.get_task(await queue.enqueue(Task(per_tenant, args=[7, 0], concurrency_key="vip")))
        assert own.concurrency_key == "vip"
        by_name = await queue.get_task(await queue.enqueue(hourly, 1))
        assert by_name.concurrency_key == by_name.name and by_name.options.rate_limit == RateLimit(1, 3600)
        free = await queue.get_task(await queue.enqueue(add, 1, 2))
        assert free.concurrency_key is None


@sitq.task(concurrency_key=lambda: 42, concurrency_limit=1)  # type: ignore[arg-type, return-value]
def bad_key() -> None:
    """Its key function returns an int: enqueue refuses it."""


async def test_a_key_function_must_return_a_str() -> None:
    async with TaskQueue(backend="memory://") as queue:
        with pytest.raises(
            ValidationError,
            match=r"concurrency_key of @sitq.task on .*bad_key returned must be a non-empty str",
        ):
            await queue.enqueue(bad_key)
        with pytest.raises(ValidationError, match="limits nothing"):
            await queue.enqueue(Task(add, args=[1, 2], concurrency_key="k"))


async def test_a_worker_never_runs_more_than_the_limit_of_a_key_at_once() -> None:
    tenant = uuid.uuid4().int % 10**9
    async with TaskQueue(backend=f"memory://{uuid.uuid4().hex}") as queue:
        ids = [await queue.enqueue(per_tenant, tenant, 0.05) for _ in range(6)]
        other = await queue.enqueue(add, 1, 2)
        await Worker(queue, max_concurrency=6).run(burst=True)
        for task_id in [*ids, other]:
            assert (await queue.get_status(task_id)) is TaskStatus.SUCCESS
    assert PEAKS[f"tenant-{tenant}"] == 2


async def test_process_task_of_a_held_back_task_says_so() -> None:
    async with TaskQueue(backend="memory://") as queue:
        first, second = await queue.enqueue(hourly, 1), await queue.enqueue(hourly, 2)
        worker = Worker(queue)
        assert (await worker.process_task(first)).value == 1
        with pytest.raises(WorkerError, match="held back by the limits of its key"):
            await worker.process_task(second)
        assert await queue.get_status(second) is TaskStatus.PENDING
        await worker.stop()
