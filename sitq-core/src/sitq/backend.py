"""The `Backend` protocol: the one boundary every storage meets, and the helper that shares one backend.

Backends store opaque payload bytes plus plain fields; they never serialize and never run user code.
Claiming is atomic and lease-based, and "now" is always passed in, so tests control the clock (hosts that
share one store must keep their clocks in step, as NTP does: leases are judged by the callers' clocks).
Every method is required: what a backend cannot do, it declares through `capabilities` and refuses with
`ConfigurationError`, never quietly doing nothing. The queue's rules that every backend applies the same
way (the wording of stored errors, the cancellation cascade, which outcome of an attempt counts, how
options are stored) are in `sitq.semantics`, for backends to call. This module re-exports every type a
backend author needs; `sitq.testing.BackendConformance` checks them.
Driver errors surface as `sitq.BackendError`, raised `from` the driver's exception: a full disk, storage
this process may not write and a lock held too long as its subclasses `StorageFullError`,
`StorageReadOnlyError` and `StorageBusyError`, named in plain words with the fix. A failed rollback never
replaces the error that caused it.
"""

from __future__ import annotations

import asyncio
import enum
import threading
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import ClassVar, Protocol, Self, runtime_checkable

from sitq.changes import ChangeSignal, Subscription
from sitq.errors import ConfigurationError
from sitq.models import (
    AttemptOutcome,
    AttemptRecord,
    Compaction,
    NewTask,
    ReservedTask,
    TaskOptions,
    TaskOutcome,
    TaskRecord,
    TaskStatus,
)
from sitq.schedules import CatchUp, StoredSchedule

# Everything a backend author needs, from one module.
__all__ = [
    "AttemptOutcome",
    "AttemptRecord",
    "Backend",
    "Capability",
    "CatchUp",
    "ChangeSignal",
    "Compaction",
    "NewTask",
    "ReservedTask",
    "SharedConnection",
    "StoredSchedule",
    "Subscription",
    "TaskOptions",
    "TaskOutcome",
    "TaskRecord",
    "TaskStatus",
]


class Capability(enum.StrEnum):
    """What a backend can do beyond the protocol's common ground, declared in `Backend.capabilities`.

    `sitq.testing`'s suites read them: the tests of a capability a backend lacks skip, naming it."""

    SHARED_STORE = "shared-store"
    """Other processes (on other hosts too, for a server) that open the same URL share its tasks, and
    the store survives the process that wrote them: the reliability suite's real worker processes need
    it. The memory backend lacks it."""

    TRANSACTIONAL_ENQUEUE = "transactional-enqueue"
    """`enqueue_in_transaction` writes through the application's own driver connection, inside its open
    transaction (`TaskQueue.using`)."""


@runtime_checkable
class Backend(Protocol):
    """Persistent storage of tasks and their results."""

    name: ClassVar[str]
    """The plugin name users ask for, such as ``"sqlite"``."""
    url_schemes: ClassVar[tuple[str, ...]]
    """The URL schemes `from_url` accepts, such as ``("sqlite",)``."""
    capabilities: ClassVar[frozenset[Capability]]
    """What this backend can do beyond the common ground (see `Capability`)."""

    @classmethod
    def from_url(cls, url: str) -> Self:
        """Build an unconnected backend from a URL; raise `ConfigurationError` for a malformed one."""
        ...

    @property
    def is_connected(self) -> bool:
        """True between the first `connect()` and the matching last `close()`."""
        ...

    async def connect(self) -> None:
        """Open the store, or count one more user of an already open one."""
        ...

    async def close(self) -> None:
        """Count one user less; the last user's close really closes. Closing a closed backend is a no-op."""
        ...

    async def enqueue(self, tasks: Sequence[NewTask]) -> list[str]:
        """Store new pending tasks, atomically: every one of them is durable, or none is. Return the id
        each task goes by, one per task, in order: its own id when it was stored, else the id of the
        stored task that holds its unique key.

        A task with a `unique_key` is stored only if no stored task holds that key. Which task holds it
        is `sitq.semantics.key_holders`'s rule (a pending or running task; a task that succeeded within
        the new task's `unique_for`; within a batch, the first task with the key): read, with the batch's
        write lock or a lock per key held, the stored tasks with one of the batch's keys that are pending,
        running, or succeeded after `sitq.semantics.cached_since(tasks)`, in enqueue order, pass them
        with the batch to `key_holders`, and store exactly the tasks it gives their own id. The check and
        the insert must be atomic against every other enqueue of the same keys, by any process: two
        racing batches with one key store one task between them, and neither raises for it. Keys are
        global, across queues. A task not stored leaves no trace (no row, no notification).

        Every id in the `depends_on` of a task to be stored must name a stored task or one earlier in the
        batch, else nothing is stored and `TaskNotFoundError` names it. A task whose parent already ended
        without success is stored cancelled, like the dependents of a parent that ends so later.
        """
        ...

    async def enqueue_in_transaction(self, connection: object, tasks: Sequence[NewTask]) -> list[str]:
        """Store new tasks as `enqueue` does (unique keys included) and return their ids as it does, but
        through `connection`, the application's own open connection to this same store (of the driver
        the backend documents), inside the transaction it has open: the tasks exist if and only if that
        transaction commits. Nothing is committed or rolled back here. A backend without
        `Capability.TRANSACTIONAL_ENQUEUE` raises `ConfigurationError` saying so; one given a connection
        it cannot use (another driver, another store) raises `ConfigurationError` naming what it takes."""
        ...

    async def claim(
        self,
        *,
        worker_id: str,
        now: datetime,
        lease: timedelta,
        limit: int,
        queues: Sequence[str],
        outcomes: Sequence[TaskOutcome] = (),
    ) -> list[ReservedTask]:
        """Atomically claim up to `limit` tasks of these `queues` due at `now` whose parents (`depends_on`)
        have all succeeded: highest `priority` first, then earliest `eta`, then first enqueued.

        `outcomes` are recorded first, exactly as `complete(outcomes)` records them, and the claim sees
        what they changed: a worker that finishes some tasks and takes the next ones makes one call, which
        a backend makes as few writes as its store allows (SQLite one, PostgreSQL two statements).

        A task is claimable when it is pending with `eta <= now`, or in progress with a lease that
        expired before `now` (its worker is presumed dead: the history records that attempt as `lost`)
        and attempts left. A backend for which looking for expired leases at every claim is costly may
        look less often, but at least once a second of `now` and at the first claim after one that came
        up short, so that an idle worker takes a dead worker's task at once and a busy queue never
        starves it. Claiming sets the task in progress for `worker_id`, counts an attempt, and leases it
        until `now + lease`. An expired task that would end instead (no attempts left, or its
        cancellation requested) is neither claimed nor ended here: `recover_lost` ends it and reports it.
        No task is ever handed to two claimers whose leases overlap.

        Limits per key: a task whose `concurrency_key` is set (its limit key) is claimed only when
        `sitq.limiting.admit` admits it, given each such key's first claimable tasks in the order above
        (at least `limit` of them, or all), how many tasks of the key are in progress with a lease that
        has not expired before `now`, and the key's remembered starts. The claim remembers a start
        (`now`, until `now` plus the task's `rate_limit.period`) for each rate-limited task it claims,
        and may forget starts whose `until` has passed. The counting and the claiming are atomic
        together across every claimer of the store (of every process): a key's last slot is never
        taken twice. Tasks over their limits stay pending and never hold back other keys or tasks
        without a key; a claim should not read a key's held-back tasks beyond its first few, so that
        thousands of them cost a claim about nothing.
        """
        ...

    async def recover_lost(self, *, now: datetime) -> list[TaskRecord]:
        """End every attempt whose lease expired before `now` (its worker is presumed dead), recorded as
        `lost` in the history: a task with attempts left is pending again, as `claim` would make it; one
        whose cancellation was requested ends cancelled; one with no attempts left fails with an error
        naming the lost worker (`WorkerLostError: worker W stopped renewing its lease, and no attempts
        are left`). Either cancels its pending dependents. Return the tasks it ended, as now stored, so
        that the caller reports them (a worker fires `sitq_task_failed` or `sitq_task_cancelled`)."""
        ...

    async def claim_task(
        self, task_id: str, *, worker_id: str, now: datetime, lease: timedelta
    ) -> ReservedTask | None:
        """Claim this one task now, whatever its `eta`; None when it is not claimable (or unknown), or when
        its own limits hold it back (`sitq.limiting.has_room`, counted as `claim` counts them, atomically
        with the claim; the order of its key's tasks does not apply here). Remembers its start, as
        `claim` does, if it is rate-limited."""
        ...

    async def renew(
        self, task_ids: Sequence[str], *, worker_id: str, now: datetime, lease: timedelta
    ) -> set[str]:
        """Extend to `now + lease` the leases that `worker_id` still holds on these tasks; return those
        among them whose cancellation has been requested, for the worker to cancel."""
        ...

    async def release(self, task_ids: Sequence[str], *, worker_id: str, now: datetime) -> None:
        """Give back tasks `worker_id` holds but will not finish (it is shutting down, or held them ahead
        too long): pending again, due at once, the attempt uncounted and recorded as `released`;
        cancelled instead if their cancellation was requested."""
        ...

    async def cancel(self, task_id: str, *, now: datetime) -> TaskStatus | None:
        """Cancel a task: a pending one becomes cancelled at once; a running one is marked for its
        worker to cancel; a finished one is left alone. Return its status after that, None if unknown."""
        ...

    async def complete(self, outcomes: Sequence[TaskOutcome]) -> None:
        """Record finished attempts, atomically as a batch, each also as a row of the task's history.
        A task that ends without success (failed, timeout, cancelled; also when `cancel` or a lost
        worker ends it) cancels its pending dependents, transitively, with an error naming it.

        An outcome with status `PENDING` schedules a retry: the task is pending again, due at
        `retry_at`, keeping its attempt count and its last error. An outcome's `started_at`, when set,
        replaces the claim's time as the start of the task and of the attempt in its history.
        An outcome is applied only while its worker still holds the task; a worker that lost its lease
        to another has its late outcome ignored, so one attempt never overwrites another.
        """
        ...

    async def history(self, task_id: str) -> list[AttemptRecord]:
        """Every ended attempt of a task, oldest first."""
        ...

    async def list_tasks(
        self, *, statuses: Sequence[TaskStatus], queues: Sequence[str] | None, limit: int, after: str | None
    ) -> list[TaskRecord]:
        """Up to `limit` tasks with one of these `statuses` (of these `queues`, or any), in the order they
        were enqueued, starting after the task whose id is `after` (a cursor: the last id of a page)."""
        ...

    async def stats(self) -> dict[tuple[str, TaskStatus], int]:
        """How many tasks each queue holds in each status (pairs with none are left out)."""
        ...

    async def requeue(self, task_id: str, *, now: datetime) -> TaskStatus | None:
        """Make a failed, timed-out or cancelled task pending again, due at once, with its attempts
        counted from zero; its history stays. Return its status after that (unchanged for a task that
        is pending, running or succeeded), None if unknown."""
        ...

    async def purge(self, *, finished_before: datetime, queues: Sequence[str] | None) -> int:
        """Delete the tasks (of these `queues`, or any) that finished before the given time, with their
        history, except those a stored pending task still depends on. Return how many were deleted."""
        ...

    async def workflow_counts(self, workflow_id: str) -> dict[TaskStatus, int]:
        """How many tasks of a workflow are in each status (statuses with none are left out)."""
        ...

    async def compact(self) -> Compaction:
        """Give back to the system the space that deleted tasks and finished writes left behind (free
        pages, a grown write-ahead log), keeping every task; return the store's size on disk before and
        after, 0 and 0 for a store that keeps nothing on disk. Never loses or changes a task."""
        ...

    async def get(self, task_id: str) -> TaskRecord | None:
        """The stored state of a task, or None if no task has this id."""
        ...

    async def next_due(self, queues: Sequence[str]) -> datetime | None:
        """When the next task of these `queues` becomes claimable: the earliest `eta` of a pending task
        whose parents have all succeeded, or lease expiry of a running one (its worker may be dead), so
        an idle worker sleeps exactly until then.

        A task with a limit key counts only as `sitq.limiting.next_start` says, for the earliest such
        task of each key (counting every running task of the key, whatever its lease): not at all while
        its key is at its concurrency limit (a completion wakes the workers), and not before its rate
        window reopens."""
        ...

    async def put_schedule(self, schedule: StoredSchedule) -> None:
        """Store a schedule, replacing whole any stored under the same `name` (its id, call, cron, next run,
        paused state and last run all become the new one's). Names are unique; ids are too."""
        ...

    async def delete_schedule(self, name: str) -> bool:
        """Delete the schedule of this name; return False if there was none. Tasks it enqueued stay."""
        ...

    async def list_schedules(self) -> list[StoredSchedule]:
        """Every stored schedule, as `put_schedule` stored it and the last `fire_schedule` or
        `pause_schedule` changed it, ordered by name."""
        ...

    async def pause_schedule(self, name: str, *, paused: bool, next_run: datetime | None) -> bool:
        """Set the schedule's `paused` flag and, when `next_run` is given, its next run (core gives one on
        resuming, so that the ticks of the pause are not caught up); return False for an unknown name."""
        ...

    async def fire_schedule(
        self, schedule_id: str, *, due: datetime, next_run: datetime, task: NewTask | None
    ) -> bool:
        """Fire one tick of a schedule, at most once however many workers race: in ONE atomic write,
        check that a schedule with this id is stored (a schedule replaced since the caller read it has a
        new id), is not paused, and has `next_run` exactly equal to `due`; if so, store `task` as
        `enqueue` stores a task (if given: None means the tick is skipped), set the schedule's `next_run`
        to `next_run` and, when a task is stored, its `last_run` to that task's `eta` (the tick it stands
        for). Return True when this call did that; False, having changed nothing, when any check failed
        (another caller fired the tick first, the schedule was paused, replaced or deleted). Wakes
        `subscribe` waiters when it stores a task."""
        ...

    def subscribe(self) -> Subscription:
        """A subscription woken after tasks are enqueued or completed, by this process or, where the store
        allows, by another one. Subscribe before looking at the store, then wait. Claims and renewals
        need wake nobody, and a backend that cannot tell changes apart may wake waiters for them too."""
        ...

    async def describe(self) -> dict[str, str]:
        """Facts about the open store for a person, in the order to show them (`sitq info` prints them):
        where it is, its schema version, its settings. Keys are short names, values plain text; the key
        ``"durability"`` is required and says which crashes a committed task survives."""
        ...


class SharedConnection:
    """Reference-counted open and close, so one backend object can serve a queue, a worker and its creator.

    A backend keeps one of these and routes `connect()`/`close()` through it: the first acquire opens,
    the last release closes. While open, the store belongs to the event loop that opened it: asyncio's
    locks and futures cannot be shared between loops (a waiter in one loop is never woken by the other,
    and the caller hangs), so using it from another loop raises `ConfigurationError` at once. A backend
    calls `check_loop()` before each operation for that, and keeps its own asyncio objects (locks,
    background tasks) in the loop it is used from.
    """

    def __init__(self) -> None:
        self._users = 0
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = ""

    @property
    def is_open(self) -> bool:
        return self._users > 0

    def check_loop(self) -> None:
        """Raise `ConfigurationError` if the store is open in an event loop other than the running one.

        A loop that has closed without closing the store (a module-level queue used by tests that each run
        a loop of their own) hands it on to the running one.
        """
        loop = asyncio.get_running_loop()
        if self._loop is None or self._loop is loop:
            return
        if self._loop.is_closed():
            self._loop, self._thread = loop, threading.current_thread().name
            return
        raise ConfigurationError(
            f"this backend object is open in another event loop (in thread {self._thread!r}); one "
            "backend object serves one event loop: give each event loop its own (for a SyncTaskQueue "
            "and a Worker run with asyncio.run in another thread, build each from the URL or a backend "
            "object of its own)"
        )

    async def acquire(self, open_store: Callable[[], Awaitable[None]]) -> None:
        self.check_loop()
        # Bound before the first await, so that another loop is refused even while the store opens.
        loop, self._thread = asyncio.get_running_loop(), threading.current_thread().name
        self._loop = loop
        try:
            async with self._lock:
                if self._users == 0:
                    await open_store()
                self._users += 1
                self._loop = loop  # again: another acquire whose open failed may have unbound it
        finally:
            self._unbind_if_closed()

    async def release(self, close_store: Callable[[], Awaitable[None]]) -> None:
        if self._users == 0:
            return
        self.check_loop()
        try:
            async with self._lock:
                if self._users == 0:
                    return
                self._users -= 1
                if self._users == 0:
                    await close_store()
        finally:
            self._unbind_if_closed()

    def _unbind_if_closed(self) -> None:
        if self._users == 0:
            self._loop = None
