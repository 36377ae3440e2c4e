"""The data that crosses sitq's boundaries.

`Task` and `Result` are what users hand in and get back. `NewTask`, `ReservedTask`, `TaskOutcome` and
`TaskRecord` are what core and a backend exchange: opaque payload bytes plus plain fields, so that a
backend never serializes and never runs user code. Every timestamp is timezone-aware UTC.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sitq.arguments import (
    check_callable,
    check_ids,
    check_int,
    check_name,
    check_seconds,
    check_unique_for,
    check_unique_key,
)
from sitq.errors import PayloadTooLargeError, SignatureError, TaskExecutionError, ValidationError
from sitq.limiting import RateLimit


def utcnow() -> datetime:
    """The current time as an aware UTC datetime: the only kind sitq stores."""
    return datetime.now(UTC)


class TaskStatus(enum.StrEnum):
    """Where a task is in its life. Values are the strings the seed documents compare against.

    A task waiting for a retry is `PENDING` again, with its attempts counted and its `eta` at the retry.
    """

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"

    @property
    def is_finished(self) -> bool:
        """True once the task will not run again by itself."""
        return self in _FINISHED


_FINISHED = frozenset({TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.TIMEOUT})


class AttemptOutcome(enum.StrEnum):
    """How one attempt ended, in a task's history."""

    SUCCESS = "success"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    LOST = "lost"
    """Its worker stopped renewing the lease (it died, or lost the store)."""
    RELEASED = "released"
    """Its worker shut down before finishing it and gave it back; it does not count as an attempt."""


def _exception_name(exception: type[BaseException] | str) -> str:
    if isinstance(exception, str):
        return exception
    if not (isinstance(exception, type) and issubclass(exception, BaseException)):
        raise ValidationError(f"retry_on takes exception classes or their dotted names, not {exception!r}")
    return f"{exception.__module__}.{exception.__qualname__}"


@dataclass(frozen=True)
class RetryPolicy:
    """When and how soon a failed attempt runs again (while `max_attempts` allows).

    The n-th retry waits ``backoff * factor ** (n - 1)`` seconds, at most `max_backoff`, plus up to
    `jitter` of that at random so that many failing tasks do not retry in step. Only exceptions that are
    instances of a `retry_on` class are retried; a timed-out attempt counts as a `TimeoutError`.
    """

    backoff: float = 1.0
    factor: float = 2.0
    max_backoff: float = 300.0
    jitter: float = 0.1
    retry_on: tuple[str, ...] = ("builtins.Exception",)

    def __init__(
        self,
        backoff: float = 1.0,
        factor: float = 2.0,
        max_backoff: float = 300.0,
        jitter: float = 0.1,
        retry_on: Iterable[type[BaseException] | str] = (Exception,),
    ) -> None:
        if isinstance(factor, bool) or not isinstance(factor, int | float) or not 1 <= factor <= 1000:
            raise ValidationError(f"factor must be a number from 1 to 1000, not {factor!r}")
        if isinstance(jitter, bool) or not isinstance(jitter, int | float) or not 0 <= jitter <= 1:
            raise ValidationError(f"jitter is a fraction of the delay from 0 to 1, not {jitter!r}")
        if isinstance(retry_on, str | bytes) or not isinstance(retry_on, Iterable):
            raise ValidationError(f"retry_on takes a list of exception classes, not {retry_on!r}")
        object.__setattr__(self, "backoff", check_seconds(backoff, "backoff", zero=True))
        object.__setattr__(self, "factor", float(factor))
        object.__setattr__(self, "max_backoff", check_seconds(max_backoff, "max_backoff", zero=True))
        object.__setattr__(self, "jitter", float(jitter))
        object.__setattr__(self, "retry_on", tuple(_exception_name(exception) for exception in retry_on))

    def retries(self, exception: BaseException) -> bool:
        """Whether this policy retries `exception`, judged by its class and every class it inherits.

        A `PayloadTooLargeError` (a return value over `Limits.result_bytes`) is never retried: the same
        code would return as much again. Nor is a `SignatureError`: the stored call will not change."""
        if isinstance(exception, PayloadTooLargeError | SignatureError):
            return False
        names = {f"{cls.__module__}.{cls.__qualname__}" for cls in type(exception).__mro__}
        return not names.isdisjoint(self.retry_on)

    def delay(self, retry: int, random: Callable[[], float] = random.random) -> float:
        """Seconds to wait before the `retry`-th retry (1 for the first)."""
        try:
            base = min(self.max_backoff, self.backoff * self.factor ** (retry - 1))
        except OverflowError:  # a large factor after many retries: the cap applies
            base = self.max_backoff
        return base * (1 + self.jitter * random())


@dataclass(frozen=True)
class TaskOptions:
    """How a task is scheduled and run; set per function with `@sitq.task(...)` or per call on `Task`."""

    queue: str = "default"
    priority: int = 0
    """Higher runs first among the due tasks of a queue."""
    max_attempts: int = 1
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float | None = None
    """Seconds one attempt may run."""
    description: str | None = None
    unique_for: float | None = None
    """Seconds after a task with the same `Task.unique_key` succeeded during which enqueueing that key
    again returns the finished task's id (its cached result) instead of storing a new task; a
    `timedelta` is taken too. None (or 0): only a pending or running task holds its key."""
    concurrency_limit: int | None = None
    """At most this many tasks of the task's limit key in progress at once, across every worker (see
    `sitq.limiting`)."""
    rate_limit: RateLimit | None = None
    """At most this many tasks of the task's limit key start per period, across every worker; given as
    a `RateLimit` or its short form, such as ``"100/m"``."""

    def __post_init__(self) -> None:
        check_name(self.queue, "queue")
        check_int(self.priority, "priority")
        check_int(self.max_attempts, "max_attempts", low=1)
        if not isinstance(self.retry, RetryPolicy):
            raise ValidationError(f"retry must be a sitq.RetryPolicy, not {self.retry!r}")
        if self.timeout is not None:
            check_seconds(self.timeout, "timeout", none="for no limit")
        if self.description is not None and not isinstance(self.description, str):
            raise ValidationError(f"description must be a str or None, not {self.description!r}")
        if self.description is not None and "\x00" in self.description:
            raise ValidationError(
                "description must be a str without NUL characters (PostgreSQL's text cannot hold them, so "
                f"no task can carry one), not {self.description!r:.200}"
            )
        _check_window_and_limits(self)


def _check_window_and_limits(options: TaskOptions | Task) -> None:
    """Check, and store in their one form, the options that both `TaskOptions` and a `Task` overriding
    them take in several forms: `unique_for` (seconds or a timedelta) and the limits (a rate as text)."""
    if options.unique_for is not None:
        object.__setattr__(options, "unique_for", check_unique_for(options.unique_for))
    if options.concurrency_limit is not None:
        check_int(options.concurrency_limit, "concurrency_limit", low=1)
    if options.rate_limit is not None:
        object.__setattr__(options, "rate_limit", RateLimit.parse(options.rate_limit))


_MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """How large the parts of a task that sitq stores may be, checked before anything is written.

    Give them to ``TaskQueue(..., limits=...)`` (for calls) and ``Worker(..., limits=...)`` (for results
    and errors); a worker built from a `TaskQueue` uses the queue's. None lifts a limit: then only the
    backend's own remains (SQLite refuses a value over 1 GB).
    """

    call_bytes: int | None = 10 * _MiB
    """The largest serialized call (function, args and kwargs): `enqueue` raises `PayloadTooLargeError`
    for a larger one, and stores nothing."""
    result_bytes: int | None = 10 * _MiB
    """The largest serialized return value: a task that returns more fails with `PayloadTooLargeError`
    (not retried), and its value is not stored."""
    error_chars: int | None = 64 * 1024
    """The longest error message or traceback stored with a task: a longer one is stored cut in the
    middle (its start and its end kept), with a note saying how many characters were left out."""

    def __post_init__(self) -> None:
        for name, low in (("call_bytes", 1), ("result_bytes", 1), ("error_chars", _MIN_ERROR_CHARS)):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
                raise ValidationError(
                    f"{name} must be a whole number >= {low}, or None for no limit, not {value!r}"
                )

    def check_call(self, size: int) -> None:
        """Refuse a serialized call of `size` bytes if it is over `call_bytes`."""
        if self.call_bytes is not None and size > self.call_bytes:
            raise PayloadTooLargeError(
                "the task's call", size, self.call_bytes, "TaskQueue(..., limits=sitq.Limits(call_bytes=...))"
            )

    def check_result(self, size: int) -> None:
        """Refuse a serialized return value of `size` bytes if it is over `result_bytes`."""
        if self.result_bytes is not None and size > self.result_bytes:
            raise PayloadTooLargeError(
                "the task's return value",
                size,
                self.result_bytes,
                "Worker(..., limits=sitq.Limits(result_bytes=...))",
            )

    def clip(self, text: str) -> str:
        """`text` as sitq stores an error or traceback: each NUL character written as ``\\x00`` (a task's
        error may hold any character, and PostgreSQL's text cannot hold NUL), cut to `error_chars`,
        keeping its start and end around a note of what was cut."""
        text = text.replace("\x00", "\\x00")
        limit = self.error_chars
        if limit is None or len(text) <= limit:
            return text
        note = (
            f"\n[... cut here: the whole was {len(text):,} characters, and sitq stores at most {limit:,} "
            "per error or traceback (sitq.Limits(error_chars=...)) ...]\n"
        )
        kept = limit - len(note)
        return f"{text[: kept - kept // 2]}{note}{text[len(text) - kept // 2 :]}"


_MIN_ERROR_CHARS = 1000  # room for the note and a useful part of the error


@dataclass(frozen=True)
class Task:
    """A call to run later, with options for this call: ``Task(f, args=[1], kwargs={"x": 2}, priority=5)``.

    Options left as None come from the function's `@sitq.task(...)` decorator, else from `TaskOptions`.
    """

    function: Callable[..., Any]
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    eta: datetime | None = None
    queue: str | None = None
    priority: int | None = None
    max_attempts: int | None = None
    retry: RetryPolicy | None = None
    timeout: float | None = None
    name: str | None = None
    description: str | None = None
    depends_on: Sequence[str] = ()
    """Ids of tasks that must succeed before this one runs."""
    unique_key: str | None = None
    """While a task with this key is pending or running (or, within `unique_for`, succeeded), enqueueing
    this one stores nothing and returns that task's id (see the unique tasks how-to). None: the key of
    the function's `@sitq.task(unique_key=...)`, if any."""
    unique_for: float | timedelta | None = None
    concurrency_limit: int | None = None
    rate_limit: RateLimit | str | None = None
    concurrency_key: str | None = None
    """The key this call's limits count by (see `sitq.limiting`); by default the decorator's, else the
    task's name."""

    def __post_init__(self) -> None:
        check_callable(self.function, "a task's function")
        # type() first: enqueue builds a Task for every call, and the abstract-class checks cost more.
        if type(self.args) not in (tuple, list) and (
            isinstance(self.args, str | bytes) or not isinstance(self.args, Sequence)
        ):
            raise ValidationError(f"args must be a list or tuple, not {self.args!r}")
        if (type(self.kwargs) is not dict and not isinstance(self.kwargs, Mapping)) or not all(
            isinstance(key, str) for key in self.kwargs
        ):
            raise ValidationError(f"kwargs must be a mapping of argument names, not {self.kwargs!r}")
        if self.eta is not None:
            _check_eta(self.eta)
        if self.name is not None:
            check_name(self.name, "name")
        if self.depends_on:
            object.__setattr__(self, "depends_on", check_ids(self.depends_on, "depends_on"))
        if self.unique_key is not None:
            check_unique_key(self.unique_key, "unique_key")
        _check_window_and_limits(self)
        if self.concurrency_key is not None:
            check_name(self.concurrency_key, "concurrency_key")

    def options(self) -> TaskOptions:
        """This call's options: its own, over the function's decorator defaults, over sitq's defaults."""
        defaults = getattr(self.function, TASK_OPTIONS_ATTRIBUTE, None) or _DEFAULT_OPTIONS
        overrides = {name: value for name in _OPTION_NAMES if (value := getattr(self, name)) is not None}
        # Options are immutable, so a call without overrides shares its function's (enqueue's hot path).
        return replace(defaults, **overrides) if overrides else defaults


def _check_eta(eta: object) -> None:
    if not isinstance(eta, datetime):
        raise ValidationError(f"eta must be a timezone-aware datetime, not {eta!r}")
    if eta.tzinfo is None or eta.utcoffset() is None:
        raise ValidationError(
            f"eta must be timezone-aware, such as datetime.now(timezone.utc) + timedelta(seconds=5); "
            f"got the naive {eta!r}"
        )
    try:
        eta.astimezone(UTC)
    except OverflowError:
        raise ValidationError(f"eta {eta!r} is out of range once converted to UTC") from None


_DEFAULT_OPTIONS = TaskOptions()
_OPTION_NAMES = tuple(option.name for option in fields(TaskOptions))
TASK_OPTIONS_ATTRIBUTE = "__sitq_options__"
TASK_NAME_ATTRIBUTE = "__sitq_name__"
TASK_UNIQUE_KEY_ATTRIBUTE = "__sitq_unique_key__"
"""Where `@sitq.task(unique_key=...)` keeps its key (a str, or a callable of the call's arguments), apart
from the options: those stay plain data, the same for every call."""
TASK_KEY_ATTRIBUTE = "__sitq_concurrency_key__"
"""Where `@sitq.task` keeps a function's `concurrency_key`: a str, or a callable of the call's arguments
that returns one (resolved at enqueue), kept apart from the plain data of `TaskOptions`."""


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
        """True for a task that ended without success: failed, timed out or cancelled."""
        return self.status.is_finished and self.status is not TaskStatus.SUCCESS

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
    options: TaskOptions = field(default_factory=TaskOptions)
    depends_on: tuple[str, ...] = ()
    workflow_id: str | None = None
    unique_key: str | None = None
    """The task's key, resolved: `Backend.enqueue` stores no second task while one holds it."""
    concurrency_key: str | None = None
    """The key the task's limits count by (`sitq.limiting.limit_key`); None for a task without limits."""


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
    options: TaskOptions = field(default_factory=TaskOptions)
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """How an attempt ended, as a worker reports it to `Backend.complete`.

    `status` is final (success, failed, timeout, cancelled), or `PENDING` with `retry_at` for a retry.
    Then `retried` says how the attempt itself ended (failed or timed out), for the history.
    `started_at` is when the call began: a worker may hold a claimed task a moment before it starts it
    (`sitq.prefetch`), so it can be later than the claim.
    """

    task_id: str
    worker_id: str
    status: TaskStatus
    finished_at: datetime
    result: bytes | None = None
    error: str | None = None
    traceback: str | None = None
    retry_at: datetime | None = None
    retried: AttemptOutcome = AttemptOutcome.FAILED
    started_at: datetime | None = None

    @property
    def outcome(self) -> AttemptOutcome:
        """How this attempt ended, as the task's history records it."""
        return self.retried if self.status is TaskStatus.PENDING else AttemptOutcome(self.status.value)


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt in a task's history, like GigQ's executions table."""

    attempt: int
    worker_id: str
    started_at: datetime
    finished_at: datetime
    outcome: AttemptOutcome
    error: str | None = None


@dataclass(frozen=True)
class TaskInfo:
    """What `TaskQueue.get_task()` and `list_tasks()` tell about a task, with every ended attempt."""

    id: str
    name: str
    status: TaskStatus
    options: TaskOptions
    attempts: int
    enqueued_at: datetime
    eta: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    traceback: str | None
    cancel_requested: bool
    depends_on: tuple[str, ...]
    workflow_id: str | None
    history: tuple[AttemptRecord, ...]
    unique_key: str | None = None
    concurrency_key: str | None = None
    """The key the task's limits count by; None for a task without limits."""

    @classmethod
    def from_record(cls, record: TaskRecord, history: Sequence[AttemptRecord]) -> TaskInfo:
        """What a backend's stored record and the task's attempt history tell together."""
        return cls(
            id=record.id,
            name=record.name,
            status=record.status,
            options=record.options,
            attempts=record.attempts,
            enqueued_at=record.enqueued_at,
            eta=record.eta,
            started_at=record.started_at,
            finished_at=record.finished_at,
            error=record.error,
            traceback=record.traceback,
            cancel_requested=record.cancel_requested,
            depends_on=record.depends_on,
            workflow_id=record.workflow_id,
            history=tuple(history),
            unique_key=record.unique_key,
            concurrency_key=record.concurrency_key,
        )


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
    options: TaskOptions = field(default_factory=TaskOptions)
    cancel_requested: bool = False
    depends_on: tuple[str, ...] = ()
    workflow_id: str | None = None
    unique_key: str | None = None
    concurrency_key: str | None = None
    """The key the task's limits count by; None for a task without limits."""


@dataclass(frozen=True, slots=True)
class Compaction:
    """What `TaskQueue.compact()` did: the bytes the store took on disk before and after.

    A backend that keeps nothing on disk (the memory backend) reports 0 and 0.
    """

    bytes_before: int
    bytes_after: int

    @property
    def bytes_freed(self) -> int:
        """How many bytes the store gave back (never negative)."""
        return max(0, self.bytes_before - self.bytes_after)
