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

from sitq.backend import SharedConnection
from sitq.changes import ChangeSignal, Subscription
from sitq.errors import BackendError, ConfigurationError
from sitq.models import NewTask, ReservedTask, TaskOutcome, TaskRecord, TaskStatus


@dataclasses.dataclass
class _Row:
    task: NewTask
    record: TaskRecord
    lease_expires_at: datetime | None = None


class _Store:
    def __init__(self) -> None:
        self.rows: dict[str, _Row] = {}
        self.changes = ChangeSignal()


_named_stores: dict[str, _Store] = {}


class MemoryBackend:
    """Tasks in a dict; claims are atomic because nothing awaits between the check and the write."""

    name: ClassVar[str] = "memory"
    url_schemes: ClassVar[tuple[str, ...]] = ("memory",)

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
        return self._store.rows

    async def enqueue(self, tasks: Sequence[NewTask]) -> None:
        rows = self._rows()
        if duplicate := next((t.id for t in tasks if t.id in rows), None):
            raise BackendError(f"a task with id {duplicate!r} already exists")
        for task in tasks:
            rows[task.id] = _Row(
                task,
                TaskRecord(
                    id=task.id,
                    name=task.name,
                    status=TaskStatus.PENDING,
                    serializer=task.serializer,
                    enqueued_at=task.enqueued_at,
                    eta=task.eta,
                ),
            )
        self._store.changes.notify()

    async def claim(
        self, *, worker_id: str, now: datetime, lease: timedelta, limit: int
    ) -> list[ReservedTask]:
        due = sorted((row for row in self._rows().values() if _claimable(row, now, by_eta=True)), key=_eta)
        return [_reserve(row, worker_id, now, lease) for row in due[:limit]]

    async def claim_task(
        self, task_id: str, *, worker_id: str, now: datetime, lease: timedelta
    ) -> ReservedTask | None:
        row = self._rows().get(task_id)
        if row is None or not _claimable(row, now, by_eta=False):
            return None
        return _reserve(row, worker_id, now, lease)

    async def renew(
        self, task_ids: Sequence[str], *, worker_id: str, now: datetime, lease: timedelta
    ) -> None:
        rows = self._rows()
        for task_id in task_ids:
            row = rows.get(task_id)
            if row is not None and _held_by(row, worker_id):
                row.lease_expires_at = now + lease

    async def complete(self, outcomes: Sequence[TaskOutcome]) -> None:
        rows = self._rows()
        for outcome in outcomes:
            row = rows.get(outcome.task_id)
            if row is None or not _held_by(row, outcome.worker_id):
                continue
            row.lease_expires_at = None
            row.record = dataclasses.replace(
                row.record,
                status=outcome.status,
                finished_at=outcome.finished_at,
                result=outcome.result,
                error=outcome.error,
                traceback=outcome.traceback,
            )
        self._store.changes.notify()

    async def get(self, task_id: str) -> TaskRecord | None:
        row = self._rows().get(task_id)
        return row.record if row else None

    async def next_due(self) -> datetime | None:
        rows = self._rows().values()
        etas = [row.record.eta for row in rows if row.record.status is TaskStatus.PENDING]
        expiries = [row.lease_expires_at for row in rows if row.lease_expires_at is not None]
        return min(etas + expiries, default=None)

    def subscribe(self) -> Subscription:
        return self._store.changes.subscribe()


async def _nothing() -> None:
    """Opening or closing memory takes no work."""


def _eta(row: _Row) -> datetime:
    return row.record.eta


def _held_by(row: _Row, worker_id: str) -> bool:
    return row.record.status is TaskStatus.IN_PROGRESS and row.record.worker_id == worker_id


def _claimable(row: _Row, now: datetime, *, by_eta: bool) -> bool:
    status = row.record.status
    if status is TaskStatus.PENDING:
        return not by_eta or row.record.eta <= now
    expiry = row.lease_expires_at
    return status is TaskStatus.IN_PROGRESS and expiry is not None and expiry < now


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
        eta=task.eta,
        started_at=now,
        lease_expires_at=row.lease_expires_at,
    )
