"""Hostile arguments to the public API, drawn by Hypothesis, on the memory backend, a real SQLite file and
a schema of the PostgreSQL test server.

Every call either succeeds or raises `ValidationError` (or `TaskNotFoundError` for an id no task has),
never another exception; and whatever was stored can be listed and read back as it was given.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sitq import (
    Backend,
    Limits,
    MemoryBackend,
    RetryPolicy,
    SyncTaskQueue,
    Task,
    TaskNotFoundError,
    TaskStatus,
    ValidationError,
    Worker,
    WorkflowNotFoundError,
)

# The fixtures make one store per test, which every example of that test shares: so later examples
# run against a store that already holds what earlier ones stored, as a real one would.
SHARED_STORE = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=30),
    st.binary(max_size=30),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.timedeltas(),
    st.datetimes(),
)
hashable_names = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=190, max_size=210),
    st.sampled_from(["default", "a\x00b", " default", "émails", "\ud800", "x" * 200, "x" * 201]),
    st.none(),
    st.integers(),
    st.binary(max_size=10),
)
names = st.one_of(hashable_names, anything)
good_names = st.text(st.characters(categories=["L", "M", "N", "P", "S"]), min_size=1, max_size=200)


def mostly(
    valid: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any] = anything
) -> st.SearchStrategy[Any]:
    """`valid` nine times in ten, else `hostile`: with several arguments per call, some calls then get
    through, and what they stored is checked too."""
    return st.integers(0, 9).flatmap(lambda draw: hostile if draw == 0 else valid)


offsets = st.timedeltas(min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59))
etas = st.one_of(st.none(), st.datetimes(timezones=st.builds(timezone, offsets)), st.datetimes(), anything)
statuses = st.one_of(
    st.none(),
    st.sampled_from(list(TaskStatus)),
    st.sampled_from([status.value for status in TaskStatus]),
    st.lists(st.sampled_from([*TaskStatus, "done", 3]), max_size=3),
    anything,
)
task_ids = st.one_of(st.text(max_size=40), st.text(min_size=195, max_size=205), anything)
# Arguments a task may take: anything the pickle serializer stores and == compares as it was.
values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(),
        st.binary(max_size=100),
    ),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


def takes_one(value: Any, scale: int = 1, *, label: str = "") -> Any:
    return value


def takes_any(*args: Any, **kwargs: Any) -> Any:
    return [list(args), kwargs]


@pytest.fixture(params=["memory", "postgres", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Backend | str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return MemoryBackend() if request.param == "memory" else f"sqlite:///{tmp_path / 'tasks.db'}"


@pytest.fixture
def queue(store: Backend | str) -> Iterator[SyncTaskQueue]:
    with SyncTaskQueue(store, "pickle") as queue:
        yield queue


@pytest.fixture
def eager_queue(store: Backend | str) -> Iterator[SyncTaskQueue]:
    """Runs each task as it is enqueued, so that a test reads back what a worker made of the call."""
    with SyncTaskQueue(store, "pickle", eager=True) as queue:
        yield queue


@SHARED_STORE
@given(
    queue_name=mostly(st.none() | good_names, names),
    name=mostly(st.none() | good_names, names),
    priority=mostly(st.none() | st.integers(-(2**31), 2**31 - 1), st.integers() | anything),
    max_attempts=mostly(st.none() | st.integers(1, 2**31 - 1), st.integers() | anything),
    timeout=mostly(st.none() | st.floats(0.001, 1e9), st.floats() | anything),
    eta=mostly(st.none() | st.datetimes(timezones=st.builds(timezone, offsets)), etas),
    description=mostly(st.none() | st.text(max_size=50), anything),
)
def test_options_are_stored_and_read_back_or_refused(
    queue: SyncTaskQueue,
    queue_name: Any,
    name: Any,
    priority: Any,
    max_attempts: Any,
    timeout: Any,
    eta: Any,
    description: Any,
) -> None:
    options = {
        "queue": queue_name,
        "name": name,
        "priority": priority,
        "max_attempts": max_attempts,
        "timeout": timeout,
        "eta": eta,
        "description": description,
    }
    try:
        task_id = queue.enqueue(Task(takes_one, [1], **options))
    except ValidationError:
        event("refused")
        return
    event("stored")
    info = queue.get_task(task_id)
    assert info.name == (name or "test_hostile_arguments.takes_one")
    assert info.options.queue == (queue_name or "default")
    assert (info.options.priority, info.options.max_attempts) == (priority or 0, max_attempts or 1)
    assert info.options.description == description
    assert info.options.timeout == (None if timeout is None else float(timeout))
    if eta is not None:  # SQLite keeps times as float seconds: exact to the microsecond until 2255
        assert abs(info.eta - eta) < timedelta(milliseconds=1)
    listed = queue.list_tasks(queue=info.options.queue, limit=10_000)
    assert task_id in [each.id for each in listed]
    assert queue.get_status(task_id) is TaskStatus.PENDING
    assert queue.cancel(task_id) is TaskStatus.CANCELLED


@SHARED_STORE
@given(
    args=mostly(st.lists(values, min_size=1, max_size=2) | st.tuples(values)),
    kwargs=mostly(
        st.dictionaries(st.sampled_from(["scale", "label", "other"]), values, max_size=2)
        | st.dictionaries(st.text(max_size=10), values, max_size=3)
    ),
)
def test_a_call_is_run_as_given_or_refused(eager_queue: SyncTaskQueue, args: Any, kwargs: Any) -> None:
    for function in (takes_one, takes_any):
        try:
            task_id = eager_queue.enqueue(Task(function, args, kwargs))
        except ValidationError:
            event(f"{function.__name__} refused")
            continue
        event(f"{function.__name__} ran")
        result = eager_queue.get_result(task_id, timeout=0)
        assert result is not None
        assert result.status is TaskStatus.SUCCESS, result.error
        if function is takes_one:
            bound = {**dict(zip(["value", "scale"], args, strict=False)), **kwargs}
            assert result.value == bound["value"]
        else:
            assert result.value == [list(args), dict(kwargs)]


@SHARED_STORE
@given(
    status=statuses,
    queue_name=st.one_of(st.none(), names),
    limit=anything,
    after=st.one_of(st.none(), task_ids),
)
def test_list_tasks_lists_or_refuses(
    queue: SyncTaskQueue, status: Any, queue_name: Any, limit: Any, after: Any
) -> None:
    try:
        listed = queue.list_tasks(status, queue=queue_name, limit=limit, after=after)
    except (ValidationError, TaskNotFoundError):
        return
    assert isinstance(listed, list) and len(listed) <= limit


@SHARED_STORE
@given(task_id=task_ids, timeout=st.one_of(st.none(), st.just(0), anything))
def test_an_id_is_found_refused_or_not_found(queue: SyncTaskQueue, task_id: Any, timeout: Any) -> None:
    for call in (queue.get_status, queue.cancel, queue.get_task, queue.requeue):
        with pytest.raises((ValidationError, TaskNotFoundError)):
            call(task_id)
    with pytest.raises((ValidationError, TaskNotFoundError)):
        queue.get_result(task_id, timeout=0 if timeout is None else timeout)


@SHARED_STORE
@given(older_than=st.one_of(st.timedeltas(), anything), queue_name=st.one_of(st.none(), names))
def test_purge_purges_or_refuses(queue: SyncTaskQueue, older_than: Any, queue_name: Any) -> None:
    try:
        purged = queue.purge(older_than, queue=queue_name)
    except ValidationError:
        return
    assert purged >= 0


@settings(max_examples=200, deadline=None)
@given(
    arguments=st.fixed_dictionaries(
        {},
        optional={
            "max_concurrency": anything,
            "poll_interval": st.one_of(st.floats(), anything),
            "lease": st.one_of(st.floats(), anything),
            "grace_period": st.one_of(st.floats(), anything),
            "queues": st.one_of(st.lists(names, max_size=3), names),
            "retention": st.one_of(
                st.timedeltas(),
                st.dictionaries(hashable_names, st.one_of(st.timedeltas(), anything), max_size=2),
                anything,
            ),
            "limits": st.one_of(st.none(), anything),
        },
    )
)
def test_a_worker_is_built_or_refused(arguments: dict[str, Any]) -> None:
    try:
        worker = Worker(MemoryBackend(), **arguments)
    except ValidationError:
        return
    assert worker.queues and all(isinstance(queue, str) for queue in worker.queues)
    assert math.isfinite(worker.poll_interval) and worker.lease.total_seconds() > 0


@settings(max_examples=200, deadline=None)
@given(
    limits=st.fixed_dictionaries(
        {},
        optional={
            key: st.one_of(st.integers(), anything) for key in ("call_bytes", "result_bytes", "error_chars")
        },
    ),
    policy=st.fixed_dictionaries(
        {},
        optional={
            "backoff": st.one_of(st.floats(), anything),
            "factor": st.one_of(st.floats(), anything),
            "max_backoff": st.one_of(st.floats(), anything),
            "jitter": st.one_of(st.floats(), anything),
            "retry_on": st.one_of(st.lists(st.sampled_from([ValueError, "x.Y", 3])), anything),
        },
    ),
    retry=st.integers(min_value=1, max_value=10_000),
)
def test_limits_and_retry_policies_are_built_or_refused(
    limits: dict[str, Any], policy: dict[str, Any], retry: int
) -> None:
    with contextlib.suppress(ValidationError):
        Limits(**limits)
    try:
        built = RetryPolicy(**policy)
    except ValidationError:
        return
    delay = built.delay(retry)
    assert 0 <= delay <= 2 * built.max_backoff
    assert datetime.now(UTC) + timedelta(seconds=delay)  # a worker can schedule it


@SHARED_STORE
@given(
    depends_on=mostly(st.lists(task_ids, max_size=2)),
    eta=etas,
    workflow_id=task_ids,
    batch=mostly(st.lists(st.builds(Task, st.just(takes_one), st.tuples(values)), max_size=3)),
)
def test_parents_etas_batches_and_workflows_are_taken_refused_or_not_found(
    queue: SyncTaskQueue, depends_on: Any, eta: Any, workflow_id: Any, batch: Any
) -> None:
    with contextlib.suppress(ValidationError, TaskNotFoundError):
        queue.enqueue(Task(takes_one, [1], depends_on=depends_on))
    with contextlib.suppress(ValidationError):
        queue.get_task(queue.enqueue(takes_one, 1, eta=eta))
    with contextlib.suppress(ValidationError):
        for task_id in queue.enqueue_many(batch):
            assert queue.get_status(task_id) is TaskStatus.PENDING
    with pytest.raises((ValidationError, WorkflowNotFoundError)):
        queue.get_workflow(workflow_id)
