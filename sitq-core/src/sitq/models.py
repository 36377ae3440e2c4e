"""The data that crosses sitq's boundaries.

`Task` and `Result` are what users hand in and get back. `NewTask`, `ReservedTask`, `TaskOutcome` and
`TaskRecord` are what core and a backend exchange: opaque payload bytes plus plain fields, so that a
backend never serializes and never runs user code. Every timestamp is timezone-aware UTC.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sitq.errors import TaskExecutionError


def utcnow() -> datetime:
    """The current time as an aware UTC datetime: the only kind sitq stores."""
    return datetime.now(UTC)


class TaskStatus(enum.StrEnum):
    """Where a task is in its life. Values are the strings the seed documents compare against."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    SUCCESS = "success"
    FAILED = "failed"

    @property
    def is_finished(self) -> bool:
        """True once the task will not run again by itself."""
        return self in _FINISHED


_FINISHED = frozenset({TaskStatus.SUCCESS, TaskStatus.FAILED})


@dataclass(frozen=True)
class Task:
    """A call to run later: `queue.enqueue(Task(function=f, args=[1], kwargs={"x": 2}))`."""

    function: Callable[..., Any]
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    eta: datetime | None = None


@dataclass(frozen=True)
class Result:
    """What became of a task. `value` is the deserialized return value of a successful task."""

    task_id: str
    status: TaskStatus
    value: Any = None
    error: str | None = None
    traceback: str | None = None
    enqueued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def is_error(self) -> bool:
        return self.status is TaskStatus.FAILED

    def unwrap(self) -> Any:
        """Return `value`, or raise `TaskExecutionError` carrying the task's error and traceback."""
        if self.is_error:
            raise TaskExecutionError(self.task_id, self.error or "task failed", self.traceback)
        return self.value


@dataclass(frozen=True, slots=True)
class NewTask:
    """A task as core hands it to `Backend.enqueue`: serialized call plus scheduling fields."""

    id: str
    name: str
    payload: bytes
    serializer: str
    enqueued_at: datetime
    eta: datetime


@dataclass(frozen=True, slots=True)
class ReservedTask:
    """A task a worker has claimed: it holds the lease until `lease_expires_at` unless it renews."""

    id: str
    name: str
    payload: bytes
    serializer: str
    attempt: int
    worker_id: str
    enqueued_at: datetime
    eta: datetime
    started_at: datetime
    lease_expires_at: datetime


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """How an attempt ended, as a worker reports it to `Backend.complete`."""

    task_id: str
    worker_id: str
    status: TaskStatus
    finished_at: datetime
    result: bytes | None = None
    error: str | None = None
    traceback: str | None = None


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """The stored state of one task, as `Backend.get` returns it (without the call payload)."""

    id: str
    name: str
    status: TaskStatus
    serializer: str
    enqueued_at: datetime
    eta: datetime
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    worker_id: str | None = None
    result: bytes | None = None
    error: str | None = None
    traceback: str | None = None
