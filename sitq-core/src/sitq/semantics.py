"""The queue's semantics that every backend applies the same way, written once.

A backend stores and claims; what a stored error says, which dependents a failure cancels and in which
order, how options travel to and from storage, which of two outcomes of one attempt counts, and which
stored task holds a unique key, are the queue's rules. Backends call these helpers (a SQL backend binds
their text as parameters), so the rules cannot drift between backends and a backend author learns them
here, not from another backend.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Final, TypeVar

from sitq.errors import TaskCancelledError, WorkerLostError
from sitq.limiting import RateLimit
from sitq.models import NewTask, RetryPolicy, TaskOptions, TaskOutcome, TaskStatus

_Node = TypeVar("_Node")

CANCELLED_ON_REQUEST: Final = "cancelled on request while running"
"""The message of the `TaskCancelledError` that stops a running task whose cancellation was requested."""
CANCELLED_WHILE_RUNNING: Final = f"{TaskCancelledError.__name__}: {CANCELLED_ON_REQUEST}"
"""The error of a running task whose cancellation was requested, whatever stopped it (its worker
cancelled it, let it go at shutdown, or died)."""

LOST_BEFORE_WORKER: Final = f"{WorkerLostError.__name__}: worker "
LOST_AFTER_WORKER: Final = " stopped renewing its lease"
NO_ATTEMPTS_LEFT: Final = ", and no attempts are left"
"""The parts of `lost_error`, for a SQL backend that builds the text in a statement."""


def lost_error(worker_id: str, *, attempts_left: bool) -> str:
    """The error of an attempt whose worker stopped renewing its lease (presumed dead); a task with no
    attempts left fails with it."""
    return f"{LOST_BEFORE_WORKER}{worker_id}{LOST_AFTER_WORKER}{'' if attempts_left else NO_ATTEMPTS_LEFT}"


def parent_ended_error(parent_id: str, parent_status: TaskStatus | str) -> str:
    """The error of a pending task cancelled because its parent ended without success."""
    return f"{TaskCancelledError.__name__}: parent task {parent_id} ended {TaskStatus(parent_status)}"


ENDED_WITHOUT_SUCCESS: Final = frozenset({TaskStatus.FAILED, TaskStatus.TIMEOUT, TaskStatus.CANCELLED})
"""The statuses that cancel a task's pending dependents, and that `requeue` makes pending again."""


def dependents_to_cancel(
    ended: _Node,
    ended_id: str,
    ended_status: TaskStatus | str,
    children: Callable[[_Node], Iterable[tuple[_Node, str]]],
) -> dict[_Node, str]:
    """The pending tasks to cancel when the task `ended` ends without success, each with its error.

    `children(node)` gives the pending tasks that depend on `node`, as (node, id) in enqueue order; a
    node is whatever the backend addresses a task by (an id, a row number). The cascade is depth-first
    in enqueue order, and each error names the parent through which the walk first reached the task, so
    every backend words every cancellation the same. Returns them in the order they were reached.
    """
    cancelled: dict[_Node, str] = {}
    walk = [(ended_id, TaskStatus(ended_status), iter(children(ended)))]
    while walk:
        parent_id, parent_status, remaining = walk[-1]
        child = next(remaining, None)
        if child is None:
            walk.pop()
            continue
        node, child_id = child
        if node in cancelled:
            continue
        cancelled[node] = parent_ended_error(parent_id, parent_status)
        walk.append((child_id, TaskStatus.CANCELLED, iter(children(node))))
    return cancelled


def cascade_over_edges(
    ended: int, ended_id: str, ended_status: TaskStatus | str, edges: Iterable[tuple[int, int, str]]
) -> dict[int, tuple[str, str]]:
    """`dependents_to_cancel` over a subgraph given as edges, as a SQL backend's recursive query returns
    them, in any order: (parent's number, pending child's number, child's id), where a task's number is
    its place in enqueue order. Returns each task to cancel by number, with its id and its error."""
    children: dict[int, list[tuple[int, str]]] = {}
    for parent, child, child_id in edges:
        children.setdefault(parent, []).append((child, child_id))
    for found in children.values():
        found.sort()
    ids = {child: child_id for found in children.values() for child, child_id in found}
    cancelled = dependents_to_cancel(ended, ended_id, ended_status, lambda node: children.get(node, ()))
    return {node: (ids[node], error) for node, error in cancelled.items()}


def missing_parent(tasks: Sequence[NewTask], stored: Collection[str]) -> str | None:
    """The first parent a batch names that is neither among the `stored` ids nor a task earlier in the
    batch: `Backend.enqueue` stores nothing and raises `TaskNotFoundError` naming it."""
    known = set(stored)
    for task in tasks:
        if missing := next((parent for parent in task.depends_on if parent not in known), None):
            return missing
        known.add(task.id)
    return None


def unmet_parents(task: NewTask, status_of: Callable[[str], str | None]) -> int:
    """How many distinct parents of a new task have not succeeded; `status_of` gives a stored parent's
    status, None for one not stored (earlier in the batch, so not succeeded either)."""
    return sum(status_of(parent) != TaskStatus.SUCCESS for parent in set(task.depends_on))


def ended_parent(task: NewTask, status_of: Callable[[str], str | None]) -> str | None:
    """The parent through which a new task is cancelled as it is stored: its first that has already ended
    without success (`status_of` as for `unmet_parents`), or None."""
    return next((parent for parent in task.depends_on if status_of(parent) in ENDED_WITHOUT_SUCCESS), None)


def parents_to_json(depends_on: Sequence[str]) -> str | None:
    """A task's parents as a JSON array of ids to store; None for a task without parents."""
    return json.dumps(list(depends_on)) if depends_on else None


def parents_from_json(stored: str | None) -> tuple[str, ...]:
    """The parents `parents_to_json` stored."""
    return () if stored is None else tuple(json.loads(stored))


def first_outcomes(outcomes: Sequence[TaskOutcome]) -> list[TaskOutcome]:
    """The outcomes a batch records: of two for one attempt (one task, one worker) only the first counts,
    exactly as when they are sent one by one (the second finds the task no longer held)."""
    first: dict[tuple[str, str], TaskOutcome] = {}
    for outcome in outcomes:
        first.setdefault((outcome.task_id, outcome.worker_id), outcome)
    return list(first.values())


_DEFAULT_RETRY = RetryPolicy()


@functools.lru_cache(maxsize=256)
def retry_to_json(retry: RetryPolicy) -> str | None:
    """A retry policy as compact JSON; None for the default policy, which keeps most rows shorter."""
    if retry == _DEFAULT_RETRY:
        return None
    policy = {
        "backoff": retry.backoff,
        "factor": retry.factor,
        "max_backoff": retry.max_backoff,
        "jitter": retry.jitter,
        "retry_on": list(retry.retry_on),
    }
    return json.dumps(policy, separators=(",", ":"))


@functools.lru_cache(maxsize=256)
def retry_from_json(stored: str | None) -> RetryPolicy:
    """The retry policy `retry_to_json` stored (None: the default policy)."""
    return _DEFAULT_RETRY if stored is None else RetryPolicy(**json.loads(stored))


@functools.lru_cache(maxsize=256)
def task_options(
    queue: str,
    priority: int,
    max_attempts: int,
    retry: str | None,
    timeout: float | None,
    description: str | None,
    unique_for: float | None,
    concurrency_limit: int | None,
    rate_count: int | None,
    rate_period: float | None,
) -> TaskOptions:
    """Options from their stored fields (the retry policy as `retry_to_json` stored it, the rate limit as
    its count and period); cached, since the tasks of one function usually share one options object."""
    return TaskOptions(
        queue=queue,
        priority=priority,
        max_attempts=max_attempts,
        retry=retry_from_json(retry),
        timeout=timeout,
        description=description,
        unique_for=unique_for,
        concurrency_limit=concurrency_limit,
        rate_limit=None if rate_count is None or rate_period is None else RateLimit(rate_count, rate_period),
    )


@functools.lru_cache(maxsize=256)
def option_fields(
    options: TaskOptions,
) -> tuple[
    str, int, int, str | None, float | None, str | None, float | None, int | None, int | None, float | None
]:
    """The fields `task_options` takes back, in its order: queue, priority, max_attempts, retry (JSON or
    None), timeout, description, unique_for, concurrency_limit, and the rate limit's count and period in
    seconds (None and None for no rate limit). A backend stores these as columns it can index (queue,
    priority) and its claim reads (the limits: see `sitq.limiting`)."""
    rate = options.rate_limit
    return (
        options.queue,
        options.priority,
        options.max_attempts,
        retry_to_json(options.retry),
        options.timeout,
        options.description,
        options.unique_for,
        options.concurrency_limit,
        None if rate is None else rate.count,
        None if rate is None else rate.period,
    )


HOLDS_KEY_WHILE: Final = frozenset({TaskStatus.PENDING, TaskStatus.IN_PROGRESS})
"""The statuses in which a task holds its unique key whatever the new task's `unique_for`; a succeeded
task holds it only within that window (`cached_since`), and a failed, timed-out or cancelled one never."""


def cached_since(tasks: Sequence[NewTask]) -> datetime | None:
    """The earliest finish of a succeeded task that may still hold the key of one of these new tasks
    (each judged by its own `unique_for` back from its `enqueued_at`); None when none of them has a
    window, so that only pending and running tasks need looking up. A backend reads the tasks with one
    of the batch's keys that are pending, running, or succeeded after this, for `key_holders`."""
    windows = [
        task.enqueued_at - timedelta(seconds=task.options.unique_for)
        for task in tasks
        if task.unique_key is not None and task.options.unique_for
    ]
    return min(windows, default=None)


def key_holders(
    tasks: Sequence[NewTask], stored: Iterable[tuple[str, str, TaskStatus | str, datetime | None]]
) -> list[str]:
    """The id each new task of a batch goes by, in order: its own when it is to be stored, or the id of
    the task that holds its unique key. `Backend.enqueue` stores exactly the tasks given their own id.

    `stored` is (key, id, status, finished_at) of stored tasks with one of the batch's keys, in the order
    they were enqueued (what `cached_since` says to read; more is harmless). A key is held by its
    pending or running task (the first enqueued, should there be several), else by the task that
    succeeded last, if it finished after the new task's `enqueued_at` minus its `unique_for`. A key
    not held is taken by the first task of the batch with it; later ones in the batch go by that id.

    The window is the new task's, not the succeeded task's: the caller says how old a cached result it
    accepts, so a call without `unique_for` never gets a finished task back, whatever earlier calls asked.
    """
    live: dict[str, str] = {}
    succeeded: dict[str, tuple[datetime, str]] = {}
    for key, task_id, status, finished_at in stored:
        if status in HOLDS_KEY_WHILE:
            live.setdefault(key, task_id)
        elif status == TaskStatus.SUCCESS and finished_at is not None:
            succeeded[key] = max(succeeded.get(key, (finished_at, task_id)), (finished_at, task_id))
    taken: dict[str, str] = {}
    task_ids = []
    for task in tasks:
        if (wanted := task.unique_key) is None:
            task_ids.append(task.id)
            continue
        holder = live.get(wanted) or taken.get(wanted) or _cached(task, succeeded.get(wanted))
        if holder is None:
            holder = taken[wanted] = task.id
        task_ids.append(holder)
    return task_ids


def _cached(task: NewTask, success: tuple[datetime, str] | None) -> str | None:
    """The id of the last task with the new task's key to succeed, if it did within its `unique_for`."""
    if success is None or not task.options.unique_for:
        return None
    finished_at, task_id = success
    return task_id if finished_at > task.enqueued_at - timedelta(seconds=task.options.unique_for) else None


def keyed(tasks: Sequence[NewTask]) -> list[str]:
    """The distinct unique keys of a batch, sorted (a backend that locks each key takes the locks in one
    order, so that two batches sharing keys never wait for each other in a cycle)."""
    return sorted({task.unique_key for task in tasks if task.unique_key is not None})
