"""What a task author writes against: the `@task` decorator for per-function options, and
`current_task()`, a task's view of its own run."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sitq import registry
from sitq.arguments import check_callable, check_name
from sitq.errors import SitqError
from sitq.limiting import RateLimit
from sitq.models import (
    TASK_KEY_ATTRIBUTE,
    TASK_NAME_ATTRIBUTE,
    TASK_OPTIONS_ATTRIBUTE,
    RetryPolicy,
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
    """
    options = TaskOptions(
        queue=queue,
        priority=priority,
        max_attempts=max_attempts,
        retry=RetryPolicy() if retry is None else retry,
        timeout=timeout,
        description=description,
        concurrency_limit=concurrency_limit,
        rate_limit=None if rate_limit is None else RateLimit.parse(rate_limit),
    )
    if name is not None:
        check_name(name, "name")
    if isinstance(concurrency_key, str):
        check_name(concurrency_key, "concurrency_key")
    elif concurrency_key is not None:
        check_callable(concurrency_key, "concurrency_key, a str or a function of the call's arguments,")

    def attach(function: F) -> F:
        check_callable(function, "@sitq.task(...) decorates a function: what it decorates")
        setattr(function, TASK_OPTIONS_ATTRIBUTE, options)
        if name is not None:
            setattr(function, TASK_NAME_ATTRIBUTE, name)
        if concurrency_key is not None:
            setattr(function, TASK_KEY_ATTRIBUTE, concurrency_key)
        registry.know(function)
        return function

    return attach


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
