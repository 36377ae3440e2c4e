"""The reference backend: everything in this process's memory, for tests and "run it right now" use.

`memory://` names one store per process, `memory://NAME` a named one, so a queue and a worker built from
the same URL share their tasks; `MemoryBackend()` built directly has a private store. Nothing survives
the process.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import ClassVar, Self
from urllib.parse import urlsplit

from sitq.backend import Capability, SharedConnection
from sitq.changes import ChangeSignal, Subscription
from sitq.errors import BackendError, ConfigurationError, TaskNotFoundError
from sitq.limiting import Candidate, Start, admit, has_room, next_start
from sitq.models import (
    AttemptOutcome,
    AttemptRecord,
    Compaction,
    NewTask,
    ReservedTask,
    TaskOutcome,
    TaskRecord,
    TaskStatus,
)
from sitq.schedules import StoredSchedule
from sitq.semantics import (
    CANCELLED_WHILE_RUNNING,
    ENDED_WITHOUT_SUCCESS,
    dependents_to_cancel,
    ended_parent,
    first_outcomes,
    key_holders,
    keyed,
    lost_error,
    missing_parent,
)


@dataclasses.dataclass
class _Row:
    task: NewTask
    record: TaskRecord
    lease_expires_at: datetime | None = None
    history: list[AttemptRecord] = dataclasses.field(default_factory=list)


class _Store:
    def __init__(self) -> None:
        self.rows: dict[str, _Row] = {}
        self.keys: dict[str, list[str]] = {}
        """The ids of the stored tasks with each unique key, in enqueue order."""
        self.changes = ChangeSignal()
        self.schedules: dict[str, StoredSchedule] = {}
        self.starts: dict[str, list[Start]] = {}
        """The remembered starts of rate-limited tasks, by limit key (`sitq.limiting`)."""


_named_stores: dict[str, _Store] = {}


class MemoryBackend:
    """Tasks in a dict; claims are atomic because nothing awaits between the check and the write."""

    name: ClassVar[str] = "memory"
    url_schemes: ClassVar[tuple[str, ...]] = ("memory",)
    capabilities: ClassVar[frozenset[Capability]] = frozenset()

    def __init__(self, store_name: str | None = None) -> None:
        self._store_name = store_name
        self._store = _Store() if store_name is None else _named_stores.setdefault(store_name, _Store())
        self._connection = SharedConnection()

    def __repr__(self) -> str:
        return "MemoryBackend()" if self._store_name is None else f"MemoryBackend({self._store_name!r})"

    @classmethod
    def from_url(cls, url: str) -> Self:
        parts = urlsplit(url)
        if parts.scheme != "memory" or parts.path not in ("", "/") or parts.query:
            raise ConfigurationError(f"a memory URL is 'memory://' or 'memory://NAME', not {url!r}")
        return cls(store_name=parts.netloc)

    @property
    def is_connected(self) -> bool:
        return self._connection.is_open

    async def connect(self) -> None:
        await self._connection.acquire(_nothing)

    async def close(self) -> None:
        await self._connection.release(_nothing)

    def _rows(self) -> dict[str, _Row]:
        if not self._connection.is_open:
            raise BackendError("the memory backend is not connected; call connect() or use the queue")
        self._connection.check_loop()
        return self._store.rows

    async def enqueue(self, tasks: Sequence[NewTask]) -> list[str]:
        return self._store_tasks(tasks)

    def _store_tasks(self, tasks: Sequence[NewTask]) -> list[str]:
        """`enqueue`, without an await: atomic within `fire_schedule` too."""
        rows = self._rows()
        if duplicate := next((t.id for t in tasks if t.id in rows), None):
            raise BackendError(f"a task with id {duplicate!r} already exists")
        # Nothing awaits from here to the last insert: the check and the insert are one atomic step.
        task_ids = key_holders(tasks, self._holding(tasks))
        tasks = [task for task, task_id in zip(tasks, task_ids, strict=True) if task.id == task_id]
        if missing := missing_parent(tasks, rows):
            raise TaskNotFoundError(missing)
        for task in tasks:
            if task.unique_key is not None:
                self._store.keys.setdefault(task.unique_key, []).append(task.id)
            rows[task.id] = _Row(
                task,
                TaskRecord(
                    id=task.id,
                    name=task.name,
                    status=TaskStatus.PENDING,
                    serializer=task.serializer,
                    enqueued_at=task.enqueued_at,
                    eta=task.eta,
                    options=task.options,
                    depends_on=task.depends_on,
                    workflow_id=task.workflow_id,
                    unique_key=task.unique_key,
                    concurrency_key=task.concurrency_key,
                ),
            )
        for task in tasks:
            if (ended := ended_parent(task, lambda parent: rows[parent].record.status)) is not None:
                self._cascade(rows[ended], rows[ended].record.finished_at or task.enqueued_at)
        if tasks:
            self._store.changes.notify()
        return task_ids

    def _holding(self, tasks: Sequence[NewTask]) -> list[tuple[str, str, TaskStatus, datetime | None]]:
        """The stored tasks with one of the batch's unique keys, as `key_holders` takes them."""
        rows = self._rows()
        return [
            (key, task_id, rows[task_id].record.status, rows[task_id].record.finished_at)
            for key in keyed(tasks)
            for task_id in self._store.keys.get(key, ())
        ]

    async def enqueue_in_transaction(self, connection: object, tasks: Sequence[NewTask]) -> list[str]:
        raise ConfigurationError(
            "the memory backend has no transactions of an application's to join: enqueue with "
            "queue.enqueue, or use a backend with transactional enqueue (SQLite, PostgreSQL)"
        )

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
        if outcomes:
            await self.complete(outcomes)  # nothing can come between: there is no await inside
        self._recover_lost(now, end=False)
        due = [
            _candidate(row, order)
            for order, row in enumerate(self._rows().values())
            if self._ready(row) and row.record.eta <= now and row.record.options.queue in queues
        ]
        free = [candidate for candidate in due if not candidate.key]
        limited = admit(
            (candidate for candidate in due if candidate.key),
            running=self._running(now),
            starts=self._store.starts,
            now=now,
            limit=limit,
        )
        chosen = sorted([*free, *limited], key=lambda candidate: candidate.sort)[: max(limit, 0)]
        return [self._reserve(candidate.ref, worker_id, now, lease) for candidate in chosen]

    async def claim_task(
        self, task_id: str, *, worker_id: str, now: datetime, lease: timedelta
    ) -> ReservedTask | None:
        self._recover_lost(now, end=False)
        row = self._rows().get(task_id)
        if row is None or not self._ready(row):
            return None
        candidate = _candidate(row, 0)
        if candidate.key and not has_room(
            candidate, self._running(now).get(candidate.key, 0), self._starts(candidate.key, now), now
        ):
            return None
        return self._reserve(row, worker_id, now, lease)

    def _running(self, now: datetime | None) -> dict[str, int]:
        """How many tasks of each limit key are in progress, with a lease not yet expired at `now` (with
        any lease, for None: an expiring lease wakes an idle worker anyway)."""
        running: dict[str, int] = {}
        for row in self._rows().values():
            key = row.record.concurrency_key
            if key and row.record.status is TaskStatus.IN_PROGRESS and (now is None or _leased(row, now)):
                running[key] = running.get(key, 0) + 1
        return running

    def _starts(self, key: str, now: datetime) -> list[Start]:
        """The remembered starts of a key, forgetting those past their period."""
        starts = [start for start in self._store.starts.get(key, ()) if start.until > now]
        if starts:
            self._store.starts[key] = starts
        else:
            self._store.starts.pop(key, None)
        return starts

    def _reserve(self, row: _Row, worker_id: str, now: datetime, lease: timedelta) -> ReservedTask:
        """Claim the task, remembering its start if it is rate-limited."""
        rate = row.record.options.rate_limit
        if rate is not None and row.record.concurrency_key:
            starts = self._starts(row.record.concurrency_key, now)
            starts.append(Start(now, now + timedelta(seconds=rate.period)))
            self._store.starts[row.record.concurrency_key] = starts
        return _reserve(row, worker_id, now, lease)

    def _ready(self, row: _Row) -> bool:
        """Pending, with every parent succeeded (a parent no longer stored was finished and purged)."""
        rows = self._rows()
        return row.record.status is TaskStatus.PENDING and all(
            parent not in rows or rows[parent].record.status is TaskStatus.SUCCESS
            for parent in row.record.depends_on
        )

    def _cascade(self, ended: _Row, now: datetime) -> None:
        """Cancel the pending dependents of a task that ended without success, and theirs in turn."""
        rows = self._rows()

        def children(parent: str) -> list[tuple[str, str]]:
            return [
                (task_id, task_id)
                for task_id, row in rows.items()
                if row.record.status is TaskStatus.PENDING and parent in row.record.depends_on
            ]

        for task_id, error in dependents_to_cancel(
            ended.task.id, ended.task.id, ended.record.status, children
        ).items():
            rows[task_id].record = dataclasses.replace(
                rows[task_id].record, status=TaskStatus.CANCELLED, finished_at=now, error=error
            )

    async def recover_lost(self, *, now: datetime) -> list[TaskRecord]:
        return self._recover_lost(now, end=True)

    def _recover_lost(self, now: datetime, *, end: bool) -> list[TaskRecord]:
        """Tasks whose worker stopped renewing: pending again; with `end`, also those that end instead (no
        attempts left, or cancellation requested), which are returned."""
        ended = []
        for row in self._rows().values():
            expiry = row.lease_expires_at
            if row.record.status is not TaskStatus.IN_PROGRESS or expiry is None or expiry >= now:
                continue
            cancelled = row.record.cancel_requested
            exhausted = row.record.attempts >= row.record.options.max_attempts
            if (cancelled or exhausted) and not end:
                continue
            worker = row.record.worker_id
            assert worker is not None
            lost = lost_error(worker, attempts_left=True)
            _end_attempt(row, AttemptOutcome.LOST, expiry, lost)
            if cancelled:
                self._cancel_requested_task(row, expiry)
                ended.append(row.record)
            elif exhausted:
                row.record = dataclasses.replace(
                    row.record,
                    status=TaskStatus.FAILED,
                    finished_at=expiry,
                    error=lost_error(worker, attempts_left=False),
                    traceback=None,
                )
                self._cascade(row, expiry)
                ended.append(row.record)
            else:
                row.record = dataclasses.replace(
                    row.record, status=TaskStatus.PENDING, error=lost, traceback=None
                )
        if ended:
            self._store.changes.notify()
        return ended

    async def renew(
        self, task_ids: Sequence[str], *, worker_id: str, now: datetime, lease: timedelta
    ) -> set[str]:
        cancelled = set()
        for row in self._held(task_ids, worker_id):
            row.lease_expires_at = now + lease
            if row.record.cancel_requested:
                cancelled.add(row.task.id)
        return cancelled

    async def release(self, task_ids: Sequence[str], *, worker_id: str, now: datetime) -> None:
        for row in self._held(list(dict.fromkeys(task_ids)), worker_id):
            cancelled = row.record.cancel_requested
            _end_attempt(row, AttemptOutcome.RELEASED, now, None)
            if cancelled:
                self._cancel_requested_task(row, now)
            else:
                row.record = dataclasses.replace(
                    row.record, status=TaskStatus.PENDING, eta=now, attempts=row.record.attempts - 1
                )
        self._store.changes.notify()

    def _cancel_requested_task(self, row: _Row, now: datetime) -> None:
        """A task whose cancellation was asked for while it ran ends cancelled, whatever stopped it."""
        row.record = dataclasses.replace(
            row.record,
            status=TaskStatus.CANCELLED,
            finished_at=now,
            error=CANCELLED_WHILE_RUNNING,
            traceback=None,
        )
        self._cascade(row, now)

    async def cancel(self, task_id: str, *, now: datetime) -> TaskStatus | None:
        row = self._rows().get(task_id)
        if row is None:
            return None
        if row.record.status is TaskStatus.PENDING:
            row.record = dataclasses.replace(row.record, status=TaskStatus.CANCELLED, finished_at=now)
            self._cascade(row, now)
            self._store.changes.notify()
        elif row.record.status is TaskStatus.IN_PROGRESS:
            row.record = dataclasses.replace(row.record, cancel_requested=True)
        return row.record.status

    async def complete(self, outcomes: Sequence[TaskOutcome]) -> None:
        rows = self._rows()
        for outcome in first_outcomes(outcomes):
            row = rows.get(outcome.task_id)
            if row is None or not _held_by(row, outcome.worker_id):
                continue
            if outcome.started_at is not None:
                row.record = dataclasses.replace(row.record, started_at=outcome.started_at)
            _end_attempt(row, outcome.outcome, outcome.finished_at, outcome.error)
            retrying = outcome.status is TaskStatus.PENDING
            row.record = dataclasses.replace(
                row.record,
                status=outcome.status,
                eta=outcome.retry_at if retrying and outcome.retry_at else row.record.eta,
                finished_at=None if retrying else outcome.finished_at,
                result=outcome.result,
                error=outcome.error,
                traceback=outcome.traceback,
            )
            if _ended_without_success(row):
                self._cascade(row, outcome.finished_at)
        self._store.changes.notify()

    async def get(self, task_id: str) -> TaskRecord | None:
        row = self._rows().get(task_id)
        return row.record if row else None

    async def history(self, task_id: str) -> list[AttemptRecord]:
        row = self._rows().get(task_id)
        return list(row.history) if row else []

    async def list_tasks(
        self, *, statuses: Sequence[TaskStatus], queues: Sequence[str] | None, limit: int, after: str | None
    ) -> list[TaskRecord]:
        rows = list(self._rows().values())
        if after is not None:
            start = next((index for index, row in enumerate(rows) if row.task.id == after), None)
            if start is None:
                raise TaskNotFoundError(after)
            rows = rows[start + 1 :]
        selected = [
            row.record
            for row in rows
            if row.record.status in statuses and (queues is None or row.record.options.queue in queues)
        ]
        return selected[: max(limit, 0)]

    async def stats(self) -> dict[tuple[str, TaskStatus], int]:
        counts: dict[tuple[str, TaskStatus], int] = {}
        for row in self._rows().values():
            key = (row.record.options.queue, row.record.status)
            counts[key] = counts.get(key, 0) + 1
        return counts

    async def requeue(self, task_id: str, *, now: datetime) -> TaskStatus | None:
        row = self._rows().get(task_id)
        if row is None:
            return None
        if row.record.status in ENDED_WITHOUT_SUCCESS:
            row.record = dataclasses.replace(
                row.record,
                status=TaskStatus.PENDING,
                eta=now,
                attempts=0,
                started_at=None,
                finished_at=None,
                result=None,
                error=None,
                traceback=None,
            )
            self._store.changes.notify()
        return row.record.status

    async def purge(self, *, finished_before: datetime, queues: Sequence[str] | None) -> int:
        rows = self._rows()
        needed = {
            parent
            for row in rows.values()
            if row.record.status is TaskStatus.PENDING
            for parent in row.record.depends_on
        }
        old = [
            task_id
            for task_id, row in rows.items()
            if row.record.finished_at is not None
            and row.record.finished_at < finished_before
            and (queues is None or row.record.options.queue in queues)
            and task_id not in needed
        ]
        for task_id in old:
            if (key := rows.pop(task_id).record.unique_key) is not None:
                self._store.keys[key].remove(task_id)
                if not self._store.keys[key]:
                    del self._store.keys[key]
        return len(old)

    async def compact(self) -> Compaction:
        """Nothing is on disk, so 0 bytes before and after; the store's table is rebuilt all the same,
        since a dict keeps the room of the tasks deleted from it."""
        self._store.rows = dict(self._rows())
        return Compaction(bytes_before=0, bytes_after=0)

    async def workflow_counts(self, workflow_id: str) -> dict[TaskStatus, int]:
        counts: dict[TaskStatus, int] = {}
        for row in self._rows().values():
            if row.record.workflow_id == workflow_id:
                counts[row.record.status] = counts.get(row.record.status, 0) + 1
        return counts

    async def next_due(self, queues: Sequence[str]) -> datetime | None:
        rows = [row for row in self._rows().values() if row.record.options.queue in queues]
        ready = [row for row in rows if self._ready(row)]
        etas = [row.record.eta for row in ready if not row.record.concurrency_key]
        first: dict[str, _Row] = {}
        for row in ready:
            key = row.record.concurrency_key
            if key and (key not in first or row.record.eta < first[key].record.eta):
                first[key] = row
        if first:
            running = self._running(None)
            for key, row in first.items():
                start = next_start(
                    _candidate(row, 0), row.record.eta, running.get(key, 0), self._store.starts.get(key, [])
                )
                etas.extend(() if start is None else (start,))
        expiries = [row.lease_expires_at for row in rows if row.record.status is TaskStatus.IN_PROGRESS]
        return min([*etas, *(expiry for expiry in expiries if expiry is not None)], default=None)

    def _held(self, task_ids: Sequence[str], worker_id: str) -> list[_Row]:
        rows = self._rows()
        return [
            rows[task_id] for task_id in task_ids if task_id in rows and _held_by(rows[task_id], worker_id)
        ]

    def _schedules(self) -> dict[str, StoredSchedule]:
        self._rows()  # connected, in this loop
        return self._store.schedules

    async def put_schedule(self, schedule: StoredSchedule) -> None:
        self._schedules()[schedule.name] = schedule

    async def delete_schedule(self, name: str) -> bool:
        return self._schedules().pop(name, None) is not None

    async def list_schedules(self) -> list[StoredSchedule]:
        return [schedule for _, schedule in sorted(self._schedules().items())]

    async def pause_schedule(self, name: str, *, paused: bool, next_run: datetime | None) -> bool:
        schedules = self._schedules()
        if (schedule := schedules.get(name)) is None:
            return False
        next_run = schedule.next_run if next_run is None else next_run
        schedules[name] = dataclasses.replace(schedule, paused=paused, next_run=next_run)
        return True

    async def fire_schedule(
        self, schedule_id: str, *, due: datetime, next_run: datetime, task: NewTask | None
    ) -> bool:
        schedules = self._schedules()
        found = next((each for each in schedules.values() if each.id == schedule_id), None)
        if found is None or found.paused or found.next_run != due:
            return False
        if task is not None:
            self._store_tasks([task])  # raises before the schedule moves on, if it cannot store the task
        last_run = found.last_run if task is None else task.eta
        schedules[found.name] = dataclasses.replace(found, next_run=next_run, last_run=last_run)
        return True

    def subscribe(self) -> Subscription:
        return self._store.changes.subscribe()

    async def describe(self) -> dict[str, str]:
        store = (
            "private to this MemoryBackend object"
            if self._store_name is None
            else f"memory://{self._store_name}, shared within this process"
        )
        return {"store": store, "durability": "none: tasks live in this process's memory and end with it"}


async def _nothing() -> None:
    """Opening or closing memory takes no work."""


def _ended_without_success(row: _Row) -> bool:
    return row.record.status in ENDED_WITHOUT_SUCCESS


def _held_by(row: _Row, worker_id: str) -> bool:
    return row.record.status is TaskStatus.IN_PROGRESS and row.record.worker_id == worker_id


def _end_attempt(row: _Row, outcome: AttemptOutcome, finished_at: datetime, error: str | None) -> None:
    """Close the running attempt in the history, and drop its lease."""
    assert row.record.worker_id is not None and row.record.started_at is not None
    row.history.append(
        AttemptRecord(
            row.record.attempts, row.record.worker_id, row.record.started_at, finished_at, outcome, error
        )
    )
    row.lease_expires_at = None
    row.record = dataclasses.replace(row.record, worker_id=None, cancel_requested=False)


def _leased(row: _Row, now: datetime) -> bool:
    return row.lease_expires_at is not None and row.lease_expires_at >= now


def _candidate(row: _Row, order: int) -> Candidate[_Row]:
    """The row as `sitq.limiting.admit` judges it (a task without limits has the empty key)."""
    options = row.record.options
    rate = options.rate_limit
    return Candidate(
        row,
        row.record.concurrency_key or "",
        (-options.priority, row.record.eta, order),
        options.concurrency_limit,
        None if rate is None else rate.count,
        None if rate is None else rate.period,
    )


def _reserve(row: _Row, worker_id: str, now: datetime, lease: timedelta) -> ReservedTask:
    row.lease_expires_at = now + lease
    row.record = dataclasses.replace(
        row.record,
        status=TaskStatus.IN_PROGRESS,
        attempts=row.record.attempts + 1,
        started_at=now,
        worker_id=worker_id,
    )
    task = row.task
    return ReservedTask(
        id=task.id,
        name=task.name,
        payload=task.payload,
        serializer=task.serializer,
        attempt=row.record.attempts,
        worker_id=worker_id,
        enqueued_at=task.enqueued_at,
        eta=row.record.eta,
        started_at=now,
        lease_expires_at=row.lease_expires_at,
        options=task.options,
        depends_on=task.depends_on,
    )
