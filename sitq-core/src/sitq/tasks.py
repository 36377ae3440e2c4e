"""What a task author writes against: the `@task` decorator for per-function options, and
`current_task()`, a task's view of its own run."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sitq import registry
from sitq.arguments import check_callable, check_name, check_unique_for, check_unique_key
from sitq.codec import task_name
from sitq.errors import SitqError, ValidationError
from sitq.limiting import RateLimit
from sitq.models import (
    TASK_KEY_ATTRIBUTE,
    TASK_NAME_ATTRIBUTE,
    TASK_OPTIONS_ATTRIBUTE,
    TASK_UNIQUE_KEY_ATTRIBUTE,
    RetryPolicy,
    Task,
    TaskOptions,
)

F = TypeVar("F", bound=Callable[..., Any])


def task(
    *,
    queue: str = "default",
    priority: int = 0,
    max_attempts: int = 1,
    retry: RetryPolicy | None = None,
    timeout: float | None = None,
    name: str | None = None,
    description: str | None = None,
    unique_key: str | Callable[..., str] | None = None,
    unique_for: float | timedelta | None = None,
    concurrency_key: str | Callable[..., str] | None = None,
    concurrency_limit: int | None = None,
    rate_limit: RateLimit | str | None = None,
) -> Callable[[F], F]:
    """Attach default options to a task function; `Task(...)` fields override them per call.

    `concurrency_limit` and `rate_limit` count per limit key (see `sitq.limiting`): `concurrency_key`,
    a str or a callable that takes the call's own arguments and returns the key (called at enqueue), or
    else the task's name, so that ``@sitq.task(rate_limit="100/m")`` limits the function.

    The function itself is returned, unchanged but for the options it carries, so it can still be
    called directly and is still pickled by reference. It is registered as a task of this process, which
    lets the `json` serializer call it when a stored payload names it (see `sitq.register_tasks`).

    `unique_key` is a str, or a callable that takes the call's own arguments (``*args, **kwargs``) and
    returns the key as a str, called as each call is enqueued: ``unique_key=lambda order_id:
    f"receipt-{order_id}"``. See the unique tasks how-to.
    """
    options = TaskOptions(
        queue=queue,
        priority=priority,
        max_attempts=max_attempts,
        retry=RetryPolicy() if retry is None else retry,
        timeout=timeout,
        description=description,
        unique_for=None if unique_for is None else check_unique_for(unique_for),
        concurrency_limit=concurrency_limit,
        rate_limit=None if rate_limit is None else RateLimit.parse(rate_limit),
    )
    if name is not None:
        check_name(name, "name")
    if unique_key is not None and not callable(unique_key):
        check_unique_key(unique_key, "@sitq.task(unique_key=...)")
    if concurrency_key is not None and not callable(concurrency_key):
        check_name(concurrency_key, "@sitq.task(concurrency_key=...)")

    def attach(function: F) -> F:
        check_callable(function, "@sitq.task(...) decorates a function: what it decorates")
        setattr(function, TASK_OPTIONS_ATTRIBUTE, options)
        if name is not None:
            setattr(function, TASK_NAME_ATTRIBUTE, name)
        if unique_key is not None:
            setattr(function, TASK_UNIQUE_KEY_ATTRIBUTE, unique_key)
        if concurrency_key is not None:
            setattr(function, TASK_KEY_ATTRIBUTE, concurrency_key)
        registry.know(function)
        return function

    return attach


def unique_key_of(task: Task) -> str | None:
    """The call's unique key: its own, else its function's `@sitq.task(unique_key=...)`, else None."""
    return _call_key(task, task.unique_key, TASK_UNIQUE_KEY_ATTRIBUTE, "unique_key", check_unique_key)


def concurrency_key_of(task: Task) -> str | None:
    """The call's `concurrency_key`: its own, else its function's `@sitq.task(concurrency_key=...)`,
    else None (`sitq.limiting.limit_key` then falls back on the task's name)."""
    return _call_key(task, task.concurrency_key, TASK_KEY_ATTRIBUTE, "concurrency_key", check_name)


def _call_key(
    task: Task, given: str | None, attribute: str, option: str, check: Callable[[object, str], str]
) -> str | None:
    """A key of a call: the one `given` on its `Task`, else the decorator's, kept on the function under
    `attribute` (a str, or a callable called with the call's arguments). A callable that raises or
    returns anything but a valid key is refused with `ValidationError` naming the function, before
    anything is stored."""
    if given is not None:
        return given
    key = getattr(task.function, attribute, None)
    if not callable(key):
        return key
    where = f"the {option} of @sitq.task on {task_name(task.function)}"
    try:
        made = key(*task.args, **task.kwargs)
    except Exception as exc:
        raise ValidationError(f"{where} raised {type(exc).__name__}: {exc}") from exc
    return check(made, f"the key that {where} returned")


@dataclass(frozen=True)
class TaskContext:
    """A running task's view of its own run."""

    task_id: str
    name: str
    attempt: int
    """1 on the first run, 2 on the first retry, and so on."""
    max_attempts: int
    queue: str
    worker_id: str


_current: contextvars.ContextVar[TaskContext] = contextvars.ContextVar("sitq_current_task")


def current_task() -> TaskContext:
    """The task this code runs in, async or sync; `SitqError` outside a task run by a worker."""
    try:
        return _current.get()
    except LookupError:
        raise SitqError("current_task() is only available inside a task run by a sitq worker") from None


def enter_task(context: TaskContext) -> contextvars.Token[TaskContext]:
    """Used by the worker around each run."""
    return _current.set(context)


def reset_task(token: contextvars.Token[TaskContext]) -> None:
    """Used by the worker after each run."""
    _current.reset(token)
