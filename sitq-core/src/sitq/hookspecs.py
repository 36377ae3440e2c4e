"""Every hook a sitq plugin can implement, and nothing else.

Registration hooks come first: they return classes and run once per plugin manager, in whichever
process first needs a backend or serializer. Lifecycle hooks follow: past-tense notifications that an
implementation may write as a plain or an `async` function. sitq awaits what they return, and logs and
swallows what they raise: an observer never fails a task or stops a worker.

Signatures only grow: new keyword arguments may be added, none removed or renamed, and an
implementation declares only the arguments it wants. Every task event names the task's `queue`.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from sitq.backend import Backend
    from sitq.serializer import Serializer

hookspec = pluggy.HookspecMarker("sitq")
hookimpl = pluggy.HookimplMarker("sitq")
"""Marks a plugin's function as a hook implementation (`@sitq.hookimpl`). Optional: sitq takes every
callable attribute named `sitq_...` as one, marked or not; marking makes the intent visible."""


# Registration


@hookspec
def sitq_register_backends() -> list[type[Backend]]:  # type: ignore[empty-body]
    """Return the backend classes this plugin provides.

    Each class has a unique `name` and the `url_schemes` it serves; sitq builds it with
    `cls.from_url(url)` or the user instantiates it directly. Fires once per plugin manager, in any
    process that resolves a backend (producers and workers alike).
    """


@hookspec
def sitq_register_serializers() -> list[type[Serializer]]:  # type: ignore[empty-body]
    """Return the serializer classes this plugin provides.

    Each class has a unique `name` and can be built with no arguments: a worker builds one by the name
    stored beside a payload. Fires once per plugin manager, in any process that encodes or decodes.
    """


# Lifecycle events


@hookspec
def sitq_task_enqueued(task_id: str, task_name: str, queue: str, eta: datetime) -> Awaitable[None] | None:
    """A task was stored durably. Fires in the producer's process, after `enqueue` committed it (for
    the tick of a schedule, in the worker whose fire enqueued it); not for a call that stored nothing
    because another task holds its unique key."""


@hookspec
def sitq_task_started(
    task_id: str, task_name: str, queue: str, worker_id: str, attempt: int, enqueued_at: datetime
) -> Awaitable[None] | None:
    """A worker claimed a task and is about to run it (attempt 1 is the first). Fires in the worker's
    process; `enqueued_at` lets an observer measure how long the task waited."""


@hookspec
def sitq_task_succeeded(
    task_id: str, task_name: str, queue: str, worker_id: str, duration: float
) -> Awaitable[None] | None:
    """A task returned normally; `duration` is its run time in seconds. Fires in the worker's process
    once the function has returned, before the result is committed."""


@hookspec
def sitq_task_failed(
    task_id: str, task_name: str, queue: str, worker_id: str, duration: float, error: str, traceback: str
) -> Awaitable[None] | None:
    """A task raised, or its call could not be decoded. Fires in the worker's process, with the error
    message and the formatted traceback that are recorded on the result. A task whose worker died with
    no attempts left fires it in the worker that records that (its `worker_id`), with the
    `WorkerLostError` message, the lost attempt's duration and an empty traceback."""


@hookspec
def sitq_task_retried(
    task_id: str, task_name: str, queue: str, worker_id: str, attempt: int, delay: float, error: str
) -> Awaitable[None] | None:
    """An attempt failed (or timed out, or asked for a retry) and the task will run again in `delay`
    seconds. Fires in the worker's process, instead of `sitq_task_failed`, which fires only for the last."""


@hookspec
def sitq_task_timed_out(
    task_id: str, task_name: str, queue: str, worker_id: str, attempt: int, timeout: float
) -> Awaitable[None] | None:
    """An attempt ran past its `timeout` seconds and was abandoned. Fires in the worker's process, before
    `sitq_task_retried` or the final `sitq_task_failed`-like outcome (the task's status is `timeout`)."""


@hookspec
def sitq_task_cancelled(
    task_id: str, task_name: str, queue: str, worker_id: str | None
) -> Awaitable[None] | None:
    """A task was cancelled: a pending one in the process that called `cancel()` (`worker_id` is None),
    a running one in its worker's process once the worker has stopped it, or, if that worker died
    first, in the worker that records the cancellation (its `worker_id`)."""


@hookspec
def sitq_worker_started(worker_id: str, max_concurrency: int) -> Awaitable[None] | None:
    """A worker is connected and about to take tasks. Fires in the worker's process."""


@hookspec
def sitq_worker_stopped(worker_id: str) -> Awaitable[None] | None:
    """A worker has stopped taking tasks and its in-flight tasks have finished. Fires in the worker's
    process."""
