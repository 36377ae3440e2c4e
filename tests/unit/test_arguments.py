"""Every public call checks its arguments: a bad one raises `ValidationError` naming it, before anything
reaches the backend, on the memory backend and on a real SQLite file alike."""

from __future__ import annotations

import functools
import math
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sample_tasks import add

import sitq
from sitq import (
    Backend,
    Limits,
    MemoryBackend,
    Result,
    RetryPolicy,
    SyncTaskQueue,
    Task,
    TaskNotFoundError,
    TaskQueue,
    TaskStatus,
    ValidationError,
    Worker,
    Workflow,
)


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Backend | str:
    """A store of this test's own: a memory backend, or a SQLite file by its URL."""
    return MemoryBackend() if request.param == "memory" else f"sqlite:///{tmp_path / 'tasks.db'}"


@pytest.fixture
async def queue(url: Backend | str) -> AsyncIterator[TaskQueue]:
    async with TaskQueue(url, "pickle") as queue:
        yield queue


def echo(value: object, *, label: str = "") -> object:
    return value


async def run(queue: TaskQueue, task_id: str, **options: Any) -> Result:
    """Run one task on a worker of `queue`, which then lets go of the backend."""
    worker = Worker(queue, **options)
    try:
        return await worker.process_task(task_id)
    finally:
        await worker.stop()


# Names: one rule wherever a name enters.

BAD_NAMES = [
    "",
    "a\x00b",
    "line\nbreak",
    "tab\there",
    " padded",
    "padded ",
    "\u200b",  # a zero-width space: a format character nobody can see
    "\ud800",  # a lone surrogate, which no database can encode
    "x" * 201,
    123,
    None,
    b"default",
]
NAME_ENTRIES: dict[str, Callable[[Any], object]] = {
    "Task(queue=...)": lambda name: Task(add, [1, 2], queue=name).options(),
    "Task(name=...)": lambda name: Task(add, [1, 2], name=name),
    "@sitq.task(queue=...)": lambda name: sitq.task(queue=name),
    "@sitq.task(name=...)": lambda name: sitq.task(name=name),
    "Worker(queues=...)": lambda name: Worker("memory://", queues=[name]),
    "Worker(retention=...)": lambda name: Worker("memory://", retention={name: timedelta(days=1)}),
    "Workflow(...)": Workflow,
}


# Where a name is optional, None is not a bad name: it means the default (the function's, or "default").
NONE_MEANS_DEFAULT = ["Task(queue=...)", "Task(name=...)", "@sitq.task(name=...)"]


@pytest.mark.parametrize(
    ("entry", "name"),
    [
        pytest.param(entry, name, id=f"{entry}-{name!r}")
        for entry in NAME_ENTRIES
        for name in BAD_NAMES
        if not (name is None and entry in NONE_MEANS_DEFAULT)
    ],
)
def test_a_name_that_breaks_the_rule_is_refused_wherever_it_enters(entry: str, name: object) -> None:
    with pytest.raises(ValidationError, match="must be a non-empty str of at most 200 printable"):
        NAME_ENTRIES[entry](name)


@pytest.mark.parametrize("entry", NONE_MEANS_DEFAULT)
def test_none_means_the_default_where_a_name_is_optional(entry: str) -> None:
    NAME_ENTRIES[entry](None)


@pytest.mark.parametrize("name", BAD_NAMES[:-3], ids=repr)
async def test_list_and_purge_refuse_a_bad_queue_name(queue: TaskQueue, name: str) -> None:
    with pytest.raises(ValidationError, match="queue must be"):
        await queue.list_tasks(queue=name)
    with pytest.raises(ValidationError, match="queue must be"):
        await queue.purge(timedelta(0), queue=name)


@pytest.mark.parametrize("name", ["émails", "files and images", "名前", "a.b:c/d-e_f", "x" * 200], ids=repr)
async def test_every_name_the_rule_allows_is_stored_listed_and_served(queue: TaskQueue, name: str) -> None:
    task_id = await queue.enqueue(Task(add, [1, 2], queue=name, name=name))
    [listed] = await queue.list_tasks(queue=name)
    assert (listed.id, listed.name, listed.options.queue) == (task_id, name, name)
    result = await run(queue, task_id, queues=[name])
    assert result.value == 3
    assert await queue.purge(timedelta(0), queue=name) == 1


def test_an_empty_task_name_is_refused_rather_than_replaced() -> None:
    with pytest.raises(ValidationError, match="name must be a non-empty str"):
        Task(add, [1, 2], name="")


# Ids, statuses, limits.


@pytest.mark.parametrize("task_id", [123, None, b"abc", ["abc"], "", "a\x00", "x" * 201], ids=repr)
async def test_a_task_id_must_be_an_id_string(queue: TaskQueue, task_id: Any) -> None:
    for call in (queue.get_status, queue.get_result, queue.cancel, queue.get_task, queue.requeue):
        with pytest.raises(ValidationError, match="task_id must be the id string that enqueue"):
            await call(task_id)
    with pytest.raises(ValidationError, match="task_id must be"):
        await run(queue, task_id)
    with pytest.raises(ValidationError, match="workflow_id must be"):
        await queue.get_workflow(task_id)


async def test_an_unknown_id_string_is_not_found(queue: TaskQueue) -> None:
    for call in (queue.get_status, queue.get_result, queue.cancel, queue.get_task, queue.requeue):
        with pytest.raises(TaskNotFoundError):
            await call("no-such-id")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"status": 123}, "status must be one of pending, "),
        ({"status": ["pending", 5]}, "status must be one of"),
        ({"status": "done"}, "status must be one of"),
        ({"limit": 10**20}, r"limit must be a whole number >= 1 and <= 10000, not 1000"),
        ({"limit": 0}, "limit must be a whole number >= 1"),
        ({"limit": True}, "limit must be a whole number"),
        ({"limit": 2.0}, "limit must be a whole number"),
        ({"queue": 123}, "queue must be a non-empty str"),
        ({"after": 5}, "after must be the id string"),
    ],
)
async def test_list_tasks_refuses_what_it_cannot_filter_by(
    queue: TaskQueue, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        await queue.list_tasks(**arguments)


async def test_list_tasks_takes_statuses_as_values_members_or_any_iterable(queue: TaskQueue) -> None:
    task_id = await queue.enqueue(add, 1, 2)
    for status in ("pending", TaskStatus.PENDING, ["pending", "failed"], (s for s in ["pending"])):
        assert [info.id for info in await queue.list_tasks(status)] == [task_id]
    assert await queue.list_tasks([]) == []
    assert len(await queue.list_tasks(limit=10_000)) == 1


# Numbers and durations: whole numbers that every storage holds, finite seconds.


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"priority": 2**31}, "priority must be a whole number >= -2147483648 and <= 2147483647"),
        ({"priority": -(2**63)}, "priority must be a whole number"),
        ({"priority": 1.5}, "priority must be a whole number"),
        ({"max_attempts": 0}, "max_attempts must be a whole number >= 1"),
        ({"max_attempts": 10**20}, "max_attempts must be a whole number >= 1"),
        ({"timeout": math.nan}, "timeout must be a number of seconds > 0"),
        ({"timeout": math.inf}, "timeout must be a number of seconds > 0 .* or None for no limit"),
        ({"timeout": 0}, "timeout must be a number of seconds > 0"),
        ({"description": 5}, "description must be a str or None"),
        ({"eta": datetime(9999, 12, 31, 23, tzinfo=timezone(-timedelta(hours=5)))}, "out of range"),
        ({"eta": datetime(2030, 1, 1)}, "eta must be timezone-aware"),
        ({"depends_on": "abc"}, "depends_on takes a list of task ids"),
        ({"depends_on": [1]}, "each of depends_on must be the id string"),
    ],
)
async def test_task_options_out_of_range_are_refused(
    queue: TaskQueue, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        await queue.enqueue(Task(add, [1, 2], **options))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"backoff": math.nan}, "backoff must be a number of seconds >= 0"),
        ({"max_backoff": math.inf}, "max_backoff must be a number of seconds >= 0"),
        ({"factor": 0.5}, "factor must be a number from 1 to 1000"),
        ({"factor": math.inf}, "factor must be a number from 1 to 1000"),
        ({"jitter": math.nan}, "jitter is a fraction"),
        ({"retry_on": 5}, "retry_on takes a list of exception classes"),
    ],
)
def test_retry_policy_arguments_out_of_range_are_refused(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RetryPolicy(**arguments)


def test_a_retry_delay_that_would_overflow_is_capped() -> None:
    policy = RetryPolicy(backoff=1, factor=1000, max_backoff=60, jitter=0)
    assert policy.delay(500) == 60


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"lease": math.inf}, "lease must be a number of seconds > 0"),
        ({"lease": 1e-9}, "lease must be at least 0.001 seconds"),
        ({"poll_interval": math.nan}, "poll_interval must be a number of seconds > 0"),
        ({"grace_period": 10**12}, "grace_period must be a number of seconds > 0"),
        ({"max_concurrency": 10**6}, "max_concurrency must be a whole number >= 1 and <= 10000"),
        ({"queues": "default"}, r"queues must be a list of names, such as \['default'\]"),
        ({"queues": []}, "queues must be a list of names"),
        (
            {"retention": timedelta.max},
            "retention of queue 'default' must be a timedelta from 0 to 100 years",
        ),
        ({"retention": 7}, "retention must be a timedelta, or a dict"),
        ({"limits": {"call_bytes": 1}}, "limits must be a sitq.Limits"),
    ],
)
def test_worker_arguments_out_of_range_are_refused(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Worker("memory://", **arguments)


async def test_queue_calls_refuse_what_they_cannot_use(queue: TaskQueue) -> None:
    with pytest.raises(ValidationError, match=r"timeout must be a number of seconds >= 0 .* or None to wait"):
        await queue.get_result("abc", timeout=math.nan)
    with pytest.raises(ValidationError, match="older_than must be a timedelta from 0 to 100 years"):
        await queue.purge(timedelta.max)
    with pytest.raises(ValidationError, match=r"enqueue_many takes a list of sitq.Task"):
        await queue.enqueue_many(123)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"enqueue_many takes a list of sitq.Task"):
        await queue.enqueue_many([add])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match=r"submit takes a sitq.Workflow"):
        await queue.submit("w")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"deserialize_result takes the sitq.Result"):
        queue.deserialize_result(3)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="depends_on takes a list of the workflow's Tasks"):
        Workflow("w").add(add, 1, 2, depends_on=Task(add, [1, 2]))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"id_of takes a Task that Workflow.add"):
        (await queue.submit(Workflow("w"))).id_of("a")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="eager must be True or False"):
        TaskQueue("memory://", eager="yes")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="must be a function or another callable"):
        sitq.task()(42)  # type: ignore[type-var]
    assert await queue.list_tasks() == []  # and nothing was stored


def test_the_blocking_queue_checks_the_same(url: Backend | str) -> None:
    with SyncTaskQueue(url, "pickle") as queue:
        with pytest.raises(ValidationError, match=r"enqueue_many takes a list of sitq.Task"):
            queue.enqueue_many(123)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="status must be one of"):
            queue.list_tasks(status=123)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="the arguments do not fit"):
            queue.enqueue(add, 1)


# The call against the function's signature.


class Mailer:
    def send(self, to: str, subject: str = "") -> str:
        return f"{to}: {subject}"

    def __call__(self, to: str) -> str:
        return to


def injects_session(function: Callable[..., Any]) -> Callable[..., Any]:
    """A decorator that supplies an argument its function requires, as dependency injectors do."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return function(*args, session="injected", **kwargs)

    return wrapper


@injects_session
def with_session(order: str, session: str) -> str:
    return f"{order} in {session}"


@pytest.mark.parametrize(
    ("function", "args", "kwargs", "error"),
    [
        (add, [1], {}, r"sample_tasks.add\(a: 'int', b: 'int'\).*missing a required argument: 'b'"),
        (add, [1, 2, 3], {}, "too many positional arguments"),
        (add, [1, 2], {"c": 3}, "got an unexpected keyword argument 'c'"),
        (Mailer().send, [], {}, r"Mailer.send\(self, to: 'str', subject: 'str' = ''\).*missing .* 'to'"),
        (Mailer(), [], {"to": "a", "cc": "b"}, "unexpected keyword argument 'cc'"),
        (functools.partial(add, 1), [2, 3], {}, "too many positional arguments"),
        (functools.partial(add, b=1), [], {}, "missing a required argument: 'a'"),
        (Mailer, [1], {}, "too many positional arguments"),
        (len, [1, 2], {}, "too many positional arguments"),
    ],
)
async def test_a_call_that_cannot_bind_is_refused_at_enqueue(
    queue: TaskQueue, function: Callable[..., Any], args: list[Any], kwargs: dict[str, Any], error: str
) -> None:
    with pytest.raises(ValidationError, match=rf"the arguments do not fit .*{error}"):
        await queue.enqueue(Task(function, args, kwargs))
    assert await queue.list_tasks() == []


@pytest.mark.parametrize(
    ("function", "args", "kwargs", "value"),
    [
        (add, [1], {"b": 2}, 3),
        (Mailer().send, ["ann"], {"subject": "hi"}, "ann: hi"),
        (Mailer(), ["ann"], {}, "ann"),
        (functools.partial(add, 1), [2], {}, 3),
        (functools.partial(functools.partial(add), b=2), [1], {}, 3),
        (functools.partial(add, b=1), [], {"a": 1, "b": 5}, 6),
        (with_session, ["o-1"], {}, "o-1 in injected"),  # checked against the wrapper, not the function
        (dict, [], {"a": 1}, {"a": 1}),
        (max, [1, 2], {}, 2),
    ],
)
async def test_a_call_that_binds_is_stored_and_runs(
    queue: TaskQueue, function: Callable[..., Any], args: list[Any], kwargs: dict[str, Any], value: object
) -> None:
    for _ in range(2):  # the second time, from the cache
        task_id = await queue.enqueue(Task(function, args, kwargs))
        assert (await run(queue, task_id)).value == value


def takes_parents(scale: int, parent_results: dict[str, int]) -> int:
    return scale * sum(parent_results.values())


async def test_parent_results_count_as_given_for_a_task_with_parents(queue: TaskQueue) -> None:
    workflow = Workflow("w")
    first = workflow.add(add, 1, 2)
    second = workflow.add(takes_parents, 10, depends_on=[first])
    submitted = await queue.submit(workflow)
    await run(queue, submitted.id_of(first))
    assert (await run(queue, submitted.id_of(second))).value == 30

    without_parents = Workflow("w")
    without_parents.add(takes_parents, 10)
    with pytest.raises(ValidationError, match="missing a required argument: 'parent_results'"):
        await queue.submit(without_parents)
    wrong = Workflow("w")
    wrong.add(takes_parents, depends_on=[wrong.add(add, 1, 2)])
    with pytest.raises(ValidationError, match="missing a required argument: 'scale'"):
        await queue.submit(wrong)


# Limits.


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"call_bytes": 0}, "call_bytes must be a whole number >= 1, or None for no limit"),
        ({"result_bytes": "10MB"}, "result_bytes must be a whole number >= 1"),
        ({"error_chars": 999}, "error_chars must be a whole number >= 1000"),
        ({"error_chars": True}, "error_chars must be a whole number"),
    ],
)
def test_limits_out_of_range_are_refused(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Limits(**arguments)


def test_the_default_limits_are_documented_sizes() -> None:
    assert Limits() == Limits(call_bytes=10 * 2**20, result_bytes=10 * 2**20, error_chars=64 * 2**10)


async def test_an_oversized_call_is_refused_with_its_size_and_the_limit_and_nothing_is_stored(
    url: Backend | str,
) -> None:
    async with TaskQueue(url, "pickle", limits=Limits(call_bytes=1000)) as queue:
        with pytest.raises(sitq.PayloadTooLargeError) as raised:
            await queue.enqueue(echo, b"x" * 2000)
        assert await queue.list_tasks() == []
        with pytest.raises(sitq.PayloadTooLargeError):
            await queue.enqueue_many([Task(echo, [1]), Task(echo, [b"x" * 2000])])
        assert await queue.list_tasks() == []
        await queue.enqueue(echo, b"x" * 500)
    error = raised.value
    assert isinstance(error, ValidationError) and error.limit == 1000 and 2000 < error.size < 2200
    assert f"the task's call is {error.size:,} bytes once serialized, over the limit of 1,000 bytes" in str(
        error
    )
    assert "TaskQueue(..., limits=sitq.Limits(call_bytes=...))" in str(error)


async def test_no_limit_is_none(url: Backend | str) -> None:
    async with TaskQueue(url, "pickle", limits=Limits(call_bytes=None)) as queue:
        await queue.enqueue(echo, b"x" * (11 * 2**20))


async def test_an_oversized_result_fails_the_task_at_once_and_stores_no_value(url: Backend | str) -> None:
    async with TaskQueue(url, "pickle", limits=Limits(result_bytes=1000)) as queue:
        task_id = await queue.enqueue(Task(echo, [b"x" * 2000], max_attempts=3))
        result = await run(queue, task_id)  # shares the queue's limits
        info = await queue.get_task(task_id)
    assert result.status is TaskStatus.FAILED and result.value is None
    assert result.error is not None and result.error.startswith(
        "PayloadTooLargeError: the task's return value is 2,0"
    )
    assert "Worker(..., limits=sitq.Limits(result_bytes=...))" in result.error
    assert info.attempts == 1  # not retried: it would return as much again


async def test_a_worker_given_its_own_limits_uses_them(url: Backend | str) -> None:
    async with TaskQueue(url, "pickle", limits=Limits(result_bytes=1000)) as queue:
        task_id = await queue.enqueue(echo, b"x" * 2000)
        assert (await run(queue, task_id, limits=Limits(result_bytes=5000))).value == b"x" * 2000


def shout(size: int) -> None:
    raise ValueError("start " + "x" * size + " end")


async def test_a_long_error_and_traceback_are_stored_cut_to_the_limit_with_a_note(url: Backend | str) -> None:
    limits = Limits(error_chars=2000)
    async with TaskQueue(url, "pickle", limits=limits) as queue:
        task_id = await queue.enqueue(shout, 100_000)
        result = await run(queue, task_id)
        info = await queue.get_task(task_id)
    assert result.error is not None and result.traceback is not None
    for text in (result.error, result.traceback, info.history[0].error):
        assert text is not None and len(text) <= 2000
        assert "[... cut here: the whole was 100," in text and "sitq.Limits(error_chars=...)" in text
        assert text.rstrip().endswith(" end")
    assert result.error.startswith("ValueError: start xxx")
    assert result.traceback.startswith("Traceback (most recent call last):")


async def test_a_short_error_is_kept_whole(queue: TaskQueue) -> None:
    task_id = await queue.enqueue(shout, 10)
    result = await run(queue, task_id)
    assert result.error == f"ValueError: start {'x' * 10} end"


def test_the_blocking_queue_takes_limits() -> None:
    with (
        SyncTaskQueue("memory://", "pickle", limits=Limits(call_bytes=100)) as queue,
        pytest.raises(sitq.PayloadTooLargeError, match="over the limit of 100 bytes"),
    ):
        queue.enqueue(echo, "x" * 200)


def test_payload_too_large_survives_pickling() -> None:
    import pickle

    error = sitq.PayloadTooLargeError("the task's call", 2000, 1000, "Limits(call_bytes=...)")
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.size, copy.limit) == (str(error), 2000, 1000)


def test_an_eta_far_in_the_past_or_future_is_kept(url: Backend | str) -> None:
    with SyncTaskQueue(url, "pickle") as queue:
        for eta in (datetime(1, 1, 2, tzinfo=UTC), datetime(9999, 12, 30, tzinfo=UTC)):
            assert queue.get_task(queue.enqueue(Task(add, [1, 2], eta=eta))).eta == eta
