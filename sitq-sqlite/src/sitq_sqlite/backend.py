"""The SQLite backend: one durable file shared by any number of producer and worker processes.

Each backend object owns one aiosqlite connection (one thread) in autocommit mode, guarded by one
asyncio.Lock so that coroutines never interleave statements into each other's transactions. A change that
is one statement (a renewal) runs alone in autocommit mode; one that is several (an enqueue stores a row
and its payload, a claim recovers dead workers' tasks first, an ended attempt also writes its history row
and may cancel the tasks that depend on it) runs in one `BEGIN IMMEDIATE` transaction, which takes the
write lock before anything is read, so it is atomic across processes.

The statements themselves are named in `queries`; `rows` maps their rows to sitq's models.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

from sitq.backend import Capability, SharedConnection
from sitq.changes import ChangeSignal, Subscription
from sitq.errors import BackendError, ConfigurationError, TaskNotFoundError
from sitq.models import (
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
)
from sitq_sqlite import (
    connection,
    faults,
    files,
    limits,
    maintenance,
    queries,
    schedules,
    schema,
    transitions,
    watch,
)
from sitq_sqlite import url as sqlite_url
from sitq_sqlite.rows import attempt_record, outcome_rows, record, reserved, task_row, utc_time
from sitq_sqlite.url import BUSY_TIMEOUT, Synchronous
from sitq_sqlite.watch import OtherCommits

if TYPE_CHECKING:
    import aiosqlite

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

_REQUIRED_SQLITE = (3, 35, 0)  # UPDATE ... RETURNING


class SQLiteBackend:
    """Tasks in one SQLite file, in WAL mode, shared safely by every process that opens it.

    `synchronous="full"` (the default) makes every commit durable against power loss. `"normal"` is
    faster and still survives the application crashing, but a power cut or an OS crash may lose the last
    commits. `busy_timeout` is how many seconds a statement waits for another process's write lock.
    A relative `path` is resolved against the working directory when the backend is built, so the
    object keeps naming the same file wherever it is later connected.
    """

    name: ClassVar[str] = "sqlite"
    url_schemes: ClassVar[tuple[str, ...]] = ("sqlite",)
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.SHARED_STORE, Capability.TRANSACTIONAL_ENQUEUE}
    )

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "full",
        busy_timeout: float = BUSY_TIMEOUT,
    ) -> None:
        if synchronous not in ("full", "normal"):
            raise ConfigurationError(f"synchronous must be 'full' or 'normal', not {synchronous!r}")
        if not isinstance(busy_timeout, int | float) or not 0 <= busy_timeout < math.inf:
            raise ConfigurationError(f"busy_timeout is seconds to wait, at least 0, not {busy_timeout!r}")
        self._path = os.path.abspath(path)
        # Objects on the same file find each other by this key, whatever symlinks led to it.
        self._file = os.path.realpath(path)
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._waits: connection.BusyWait  # set by `_open`, for each new connection
        self._shared = SharedConnection()
        self._locks: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._signal = ChangeSignal()
        self._conn: aiosqlite.Connection | None = None
        self._commits: OtherCommits | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._wal = maintenance.WalWatch(self._path)
        self._checkpointing: asyncio.Task[None] | None = None

    @property
    def path(self) -> str:
        """The absolute path of the database file."""
        return self._path

    def __repr__(self) -> str:
        return (
            f"SQLiteBackend({self._path!r}, synchronous={self._synchronous!r}, "
            f"busy_timeout={self._busy_timeout!r})"
        )

    @classmethod
    def from_url(cls, url: str) -> Self:
        """Build from a SQLAlchemy-style URL: the part after ``sqlite:///`` is the path, so four slashes
        start an absolute one (see `sitq_sqlite.url`)."""
        parsed = sqlite_url.parse(url)
        return cls(parsed.path, synchronous=parsed.synchronous, busy_timeout=parsed.busy_timeout)

    # Opening and closing

    @property
    def is_connected(self) -> bool:
        return self._shared.is_open

    async def connect(self) -> None:
        await self._shared.acquire(self._open)

    async def close(self) -> None:
        await self._shared.release(self._close)

    async def _open(self) -> None:
        if sqlite3.sqlite_version_info < _REQUIRED_SQLITE:
            raise BackendError(
                f"sitq-sqlite needs SQLite 3.35 or newer (for UPDATE ... RETURNING), but this Python uses "
                f"SQLite {sqlite3.sqlite_version}; use a Python built with a newer SQLite"
            )
        # Open the file before handing it to aiosqlite: when aiosqlite's own open fails it stops its thread
        # without waiting, and that thread may then call into an event loop that has already closed.
        try:
            opened = await asyncio.to_thread(self._open_file)
        except (sqlite3.Error, OSError) as exc:
            raise faults.cannot_open(self._path, exc) from exc
        conn = connection.daemon_connection(opened)
        await conn
        try:
            await self._prepare(conn)
            try:
                self._commits = await OtherCommits.open(self._path)
            except sqlite3.Error as exc:
                raise self._fault(f"opening the SQLite database {self._path!r}", exc) from exc
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        self._waits = connection.BusyWait(self._busy_timeout)
        watch.open_files.add(self._file, self._signal)
        self._ensure_watching()

    def _open_file(self) -> sqlite3.Connection:
        """Create the file private to its owner if it is new, warn if others may write it, and open it."""
        files.create_private(self._path)
        files.warn_if_others_may_write(self._file)
        return sqlite3.connect(
            self._path,
            isolation_level=None,
            timeout=self._busy_timeout,
            check_same_thread=False,  # from here on only aiosqlite's thread uses it
        )

    async def _prepare(self, conn: aiosqlite.Connection) -> None:
        """Configure the fresh connection and check (or migrate) the schema."""
        try:
            await schema.configure_new_file(conn)
            await self._use_wal(conn)
            await conn.execute(f"PRAGMA synchronous = {self._synchronous.upper()}")
            await connection.on_thread(conn, maintenance.configure)
            await connection.check_json(conn)
            await schema.prepare(conn, repr(self._path))
        except sqlite3.Error as exc:
            if getattr(exc, "sqlite_errorname", None) == "SQLITE_NOTADB":
                raise BackendError(
                    f"{self._path!r} is not a SQLite database; give sitq a new file or an existing sitq one"
                ) from exc
            raise self._fault(f"opening the SQLite database {self._path!r}", exc) from exc

    async def _use_wal(self, conn: aiosqlite.Connection) -> None:
        """Put the file in WAL mode, so that readers and the writer do not block each other.

        When several connections switch a new file at once, SQLite refuses the losers at once instead of
        waiting out the busy timeout, so wait and retry here until `busy_timeout` has passed.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._busy_timeout
        delay = 0.001
        while True:
            try:
                ((journal_mode,),) = await conn.execute_fetchall("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as exc:
                if (
                    getattr(exc, "sqlite_errorcode", 0) & 0xFF != sqlite3.SQLITE_BUSY
                    or loop.time() > deadline
                ):
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
        if journal_mode != "wal":
            logger.warning(
                "SQLite kept %s in %s journal mode instead of WAL: readers and writers will block each other",
                self._path,
                journal_mode,
            )

    async def _close(self) -> None:
        watcher, self._watcher = self._watcher, None
        checkpointing, self._checkpointing = self._checkpointing, None
        try:
            # A task left in a loop that has since ended (see SharedConnection) ended with it.
            for background in (watcher, checkpointing):
                if background is not None and background.get_loop() is asyncio.get_running_loop():
                    background.cancel()
                    await asyncio.wait([background])
            if self._commits is not None:
                self._commits.close()
                self._commits = None
        finally:
            # Always reached: an unclosed connection keeps its thread (and its file) until the process ends.
            async with self._lock():
                conn, self._conn = self._conn, None
                watch.open_files.discard(self._file, self._signal)
                if conn is not None:
                    try:
                        await conn.close()
                    except sqlite3.Error as exc:
                        raise self._fault(f"closing the SQLite database {self._path!r}", exc) from exc

    def _lock(self) -> asyncio.Lock:
        """The lock that keeps coroutines out of each other's transactions, made for the loop in use: an
        asyncio lock used by a loop that has ended would refuse the next one."""
        loop = asyncio.get_running_loop()
        if self._locks is None or self._locks[0] is not loop:
            self._locks = (loop, asyncio.Lock())
        return self._locks[1]

    @contextlib.asynccontextmanager
    async def _connection(self, doing: str) -> AsyncIterator[aiosqlite.Connection]:
        """The open connection, for this coroutine alone; driver errors become `BackendError`s naming
        what was being done."""
        self._shared.check_loop()
        async with self._lock():
            if self._conn is None:
                raise BackendError(
                    f"the SQLite backend for {self._path!r} is not connected; call connect() or use the queue"
                )
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise self._fault(f"{doing} in the SQLite database {self._path!r}", exc) from exc

    def _fault(self, what: str, exc: sqlite3.Error) -> BackendError:
        """The `BackendError` (of the kind the fault is) to raise from a driver error; `what` failed."""
        return faults.backend_error(what, self._file, exc, busy_timeout=self._busy_timeout)

    async def _atomically(self, doing: str, body: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run `body` in one `BEGIN IMMEDIATE` transaction, as one call on aiosqlite's thread.

        The write lock is taken before anything is read, so what the statements check still holds when
        they write; and since no event-loop round trip happens while it is held, other processes wait
        for it as briefly as for one statement. Even if the caller is cancelled, the body runs to its
        commit or rollback before aiosqlite's thread takes anything else.
        """
        async with self._connection(doing) as conn:
            result: _T = await connection.on_thread(conn, connection.in_transaction, body, self._waits)
        self._keep_wal_small()
        return result

    async def _fetch_all(self, conn: aiosqlite.Connection, sql: str, parameters: Any = ()) -> list[Any]:
        """One statement on its own, in one hop, waiting for a lock as SQLite does (`connection.BusyWait`)."""
        return await connection.on_thread(conn, connection.fetch_all, self._waits, sql, parameters)

    def _keep_wal_small(self) -> None:
        """Checkpoint in the background when the WAL has grown past its limit (see `maintenance`)."""
        if (self._checkpointing is None or self._checkpointing.done()) and self._wal.due():
            self._checkpointing = asyncio.get_running_loop().create_task(
                self._checkpoint(), name=f"sitq-sqlite checkpoint of {self._path}"
            )

    async def _checkpoint(self) -> None:
        try:
            async with self._connection("checkpointing the WAL") as conn:
                await connection.on_thread(conn, maintenance.checkpoint, self._waits)
        except BackendError as exc:
            self._wal.failed(exc)
        else:
            self._wal.succeeded()

    def _notify(self) -> None:
        watch.open_files.notify(self._file)

    # The Backend protocol

    async def enqueue(self, tasks: Sequence[NewTask]) -> list[str]:
        doing = f"storing {len(tasks)} new task(s)"
        if any(task.depends_on or task.unique_key is not None for task in tasks):
            task_ids = await self._atomically(
                doing, functools.partial(transitions.store_checked, tasks=tasks)
            )
        else:
            rows = [task_row(task, unmet=0) for task in tasks]
            # Even an empty batch checks that the backend is connected.
            await self._atomically(doing, lambda db: transitions.store(db, tasks, rows))
            task_ids = [task.id for task in tasks]
        if any(task.id == task_id for task, task_id in zip(tasks, task_ids, strict=True)):
            self._notify()
        return task_ids

    async def enqueue_in_transaction(self, connection: object, tasks: Sequence[NewTask]) -> list[str]:
        """Store the tasks through the application's own `sqlite3.Connection` to this backend's file, in
        the transaction it has open (one is begun if none is, as `sqlite3` begins one for a write; the
        application commits it). A savepoint keeps a refused batch from leaving rows in that transaction.
        """
        if not isinstance(connection, sqlite3.Connection):
            raise ConfigurationError(
                "the SQLite backend enqueues in a transaction through the application's own "
                f"sqlite3.Connection to {self._path!r}, not through {type(connection).__name__}"
            )
        async with self._connection("checking the application's connection"):
            pass  # connected, in this loop: the schema is in place
        try:
            task_ids = transitions.store_in_savepoint(connection, self._path, tasks)
        except sqlite3.Error as exc:
            doing = f"storing {len(tasks)} new task(s) in the application's transaction"
            raise self._fault(doing, exc) from exc
        self._notify()
        return task_ids

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
        expires = now + lease
        names = list(dict.fromkeys(queues))
        params: dict[str, object] = {
            "worker_id": worker_id,
            "now": now.timestamp(),
            "expires": expires.timestamp(),
            "limit": max(limit, 0),  # SQLite reads a negative LIMIT as no limit at all
        }
        if len(names) > queries.MERGED_QUEUES:
            params["queues"] = json.dumps(names)
        else:
            params.update((f"q{index}", name) for index, name in enumerate(names))

        def take(db: sqlite3.Connection) -> list[Any]:
            if not names or limit <= 0:
                return []
            limited = limits.limited_candidates(db, now, limit, json.dumps(names))
            if not limited:  # the common case: one statement, as without limits
                return db.execute(queries.claim_sql(len(names)), params).fetchall()
            free = db.execute(queries.candidates_sql(len(names)), params).fetchall()
            chosen = sorted(
                [*((-priority, eta, seq) for seq, priority, eta in free), *(c.sort for c in limited)]
            )[:limit]
            seqs = {sort[2] for sort in chosen}
            limits.remember_starts(db, [c for c in limited if c.ref in seqs], now)
            return db.execute(queries.CLAIM_SEQS, {**params, "seqs": json.dumps(sorted(seqs))}).fetchall()

        rows = await self._claim("claiming tasks", take, outcome_rows(outcomes), now)
        # RETURNING yields rows in no promised order: sort as the claim chose them.
        rows.sort(key=lambda row: (-row[9], row[7], row[0]))
        return [reserved(row, worker_id, now, expires) for row in rows]

    async def claim_task(
        self, task_id: str, *, worker_id: str, now: datetime, lease: timedelta
    ) -> ReservedTask | None:
        expires = now + lease
        params = {
            "task_id": task_id,
            "worker_id": worker_id,
            "now": now.timestamp(),
            "expires": expires.timestamp(),
        }

        def take(db: sqlite3.Connection) -> list[Any]:
            limited = limits.limited_task(db, task_id, now)
            if limited is not None and not limits.has_room_now(db, *limited, now):
                return []
            rows = db.execute(queries.CLAIM_TASK, params).fetchall()
            if rows and limited is not None:
                limits.remember_starts(db, [limited[0]], now)
            return rows

        rows = await self._claim(f"claiming task {task_id!r}", take, (), now)
        return reserved(rows[0], worker_id, now, expires) if rows else None

    async def _claim(
        self,
        doing: str,
        take: Callable[[sqlite3.Connection], list[Any]],
        outcomes: Sequence[dict[str, object]],
        now: datetime,
    ) -> list[Any]:
        """Record `outcomes`, recover the tasks of dead workers, then `take` tasks, in one write
        transaction."""

        def claim(db: sqlite3.Connection) -> list[Any]:
            transitions.record_outcomes(db, outcomes)
            transitions.recover_lost(db, now.timestamp(), end=False)
            return take(db)

        rows = await self._atomically(doing, claim)
        if outcomes:  # a finished task, which someone may be waiting for
            self._notify()
        return rows

    async def recover_lost(self, *, now: datetime) -> list[TaskRecord]:
        def recover(db: sqlite3.Connection) -> list[Any]:
            ended = transitions.recover_lost(db, now.timestamp(), end=True)
            return [db.execute(queries.GET, (task_id,)).fetchone() for task_id in ended]

        rows = await self._atomically("recovering the tasks of dead workers", recover)
        if rows:  # a finished task, which someone may be waiting for
            self._notify()
        return [record(row) for row in rows]

    async def renew(
        self, task_ids: Sequence[str], *, worker_id: str, now: datetime, lease: timedelta
    ) -> set[str]:
        params = {
            "expires": (now + lease).timestamp(),
            "task_ids": json.dumps(list(task_ids)),
            "worker_id": worker_id,
        }
        # A longer lease makes nothing claimable or finished, so no waiter needs waking (as in memory).
        async with self._connection(f"renewing the leases of {len(task_ids)} task(s)") as conn:
            rows = await self._fetch_all(conn, queries.RENEW, params)
        return {task_id for task_id, cancel_requested in rows if cancel_requested}

    async def release(self, task_ids: Sequence[str], *, worker_id: str, now: datetime) -> None:
        ids = list(dict.fromkeys(task_ids))
        params = {
            "now": now.timestamp(),
            "task_ids": json.dumps(ids),
            "worker_id": worker_id,
            "cancelled": CANCELLED_WHILE_RUNNING,
        }

        def release(db: sqlite3.Connection) -> int:
            released = db.execute(queries.RELEASE_HISTORY, params).rowcount
            if released:
                rows = db.execute(queries.RELEASE, params).fetchall()
                cancelled = [row for row in rows if row[2] == TaskStatus.CANCELLED]
                db.execute(queries.FORGET_RESULTS, (json.dumps([seq for seq, _, _ in cancelled]),))
                # In the order they were given: the order of the cascades is part of the stored errors.
                order = {task_id: index for index, task_id in enumerate(ids)}
                for seq, task_id, status in sorted(cancelled, key=lambda row: order[row[1]]):
                    transitions.cancel_dependents(db, seq, task_id, status, params["now"])
            return released

        if await self._atomically(f"releasing {len(task_ids)} task(s)", release):
            self._notify()

    async def cancel(self, task_id: str, *, now: datetime) -> TaskStatus | None:
        params = {"task_id": task_id, "now": now.timestamp()}

        def cancel(db: sqlite3.Connection) -> tuple[TaskStatus | None, bool]:
            changed = db.execute(queries.CANCEL, params).fetchall()
            if not changed:
                found = db.execute(queries.STATUS, (task_id,)).fetchall()
                return (TaskStatus(found[0][0]) if found else None), False
            [(seq, status)] = changed
            if status == TaskStatus.CANCELLED:
                transitions.cancel_dependents(db, seq, task_id, status, params["now"])
                return TaskStatus.CANCELLED, True
            return TaskStatus(status), False

        status, cancelled = await self._atomically(f"cancelling task {task_id!r}", cancel)
        if cancelled:
            self._notify()
        return status

    async def complete(self, outcomes: Sequence[TaskOutcome]) -> None:
        rows = outcome_rows(outcomes)
        doing = f"recording {len(rows)} finished task(s)"
        if not rows:
            async with self._connection(doing):
                return  # nothing to record, but using an unconnected backend is still an error
        await self._atomically(doing, functools.partial(transitions.record_outcomes, rows=rows))
        self._notify()

    async def history(self, task_id: str) -> list[AttemptRecord]:
        async with self._connection(f"reading the history of task {task_id!r}") as conn:
            rows = await self._fetch_all(conn, queries.HISTORY, (task_id,))
        return [attempt_record(row) for row in rows]

    async def get(self, task_id: str) -> TaskRecord | None:
        async with self._connection(f"reading task {task_id!r}") as conn:
            rows = await self._fetch_all(conn, queries.GET, (task_id,))
        return record(rows[0]) if rows else None

    async def list_tasks(
        self, *, statuses: Sequence[TaskStatus], queues: Sequence[str] | None, limit: int, after: str | None
    ) -> list[TaskRecord]:
        params = {
            "after": 0,
            "statuses": json.dumps([TaskStatus(status).value for status in statuses]),
            "queues": None if queues is None else json.dumps(list(queues)),
            "limit": max(limit, 0),  # SQLite reads a negative LIMIT as no limit at all
        }
        async with self._connection("listing tasks") as conn:
            if after is not None:
                found = await self._fetch_all(conn, queries.CURSOR, (after,))
                if not found:
                    raise TaskNotFoundError(after)
                params["after"] = found[0][0]
            rows = await self._fetch_all(conn, queries.LIST, params)
        return [record(row) for row in rows]

    async def stats(self) -> dict[tuple[str, TaskStatus], int]:
        async with self._connection("counting tasks") as conn:
            rows = await self._fetch_all(conn, queries.STATS)
        return {(queue, TaskStatus(status)): count for queue, status, count in rows}

    async def requeue(self, task_id: str, *, now: datetime) -> TaskStatus | None:
        params = {"task_id": task_id, "now": now.timestamp()}

        def requeue(db: sqlite3.Connection) -> tuple[TaskStatus | None, bool]:
            if requeued := db.execute(queries.REQUEUE, params).fetchall():
                db.execute(queries.FORGET_RESULTS, (json.dumps([seq for (seq,) in requeued]),))
                return TaskStatus.PENDING, True
            found = db.execute(queries.STATUS, (task_id,)).fetchall()
            return (TaskStatus(found[0][0]) if found else None), False

        status, changed = await self._atomically(f"requeueing task {task_id!r}", requeue)
        if changed:
            self._notify()
        return status

    async def purge(self, *, finished_before: datetime, queues: Sequence[str] | None) -> int:
        params = {
            "before": finished_before.timestamp(),
            "queues": None if queues is None else json.dumps(list(queues)),
        }

        def purge(db: sqlite3.Connection) -> int:
            seqs = [seq for (seq,) in db.execute(queries.PURGE, params).fetchall()]
            if seqs:
                encoded = json.dumps(seqs)
                for statement in queries.PURGE_SIDE_TABLES:
                    db.execute(statement, (encoded,))
                db.execute(queries.PURGE_DEPENDENCIES, {"seqs": encoded})
            return len(seqs)

        # Deleting finished tasks makes nothing claimable, so no waiter needs waking (as in memory).
        return await self._atomically("purging finished tasks", purge)

    async def workflow_counts(self, workflow_id: str) -> dict[TaskStatus, int]:
        async with self._connection(f"counting the tasks of workflow {workflow_id!r}") as conn:
            rows = await self._fetch_all(conn, queries.WORKFLOW_COUNTS, (workflow_id,))
        return {TaskStatus(status): count for status, count in rows}

    async def next_due(self, queues: Sequence[str]) -> datetime | None:
        params = {"queues": json.dumps(list(dict.fromkeys(queues)))}

        def due(db: sqlite3.Connection) -> datetime | None:
            ((free,),) = connection.fetch_all(db, self._waits, queries.NEXT_DUE, params)
            limited = limits.next_due(db, params["queues"])
            times = [time for time in (None if free is None else utc_time(free), limited) if time is not None]
            return min(times, default=None)

        async with self._connection("finding the next due task") as conn:
            result = await connection.on_thread(conn, due)
        self._keep_wal_small()  # asked when a worker is idle: a gap in which to shrink the WAL
        return result

    async def put_schedule(self, schedule: StoredSchedule) -> None:
        row = schedules.schedule_row(schedule)
        await self._atomically(
            f"storing schedule {schedule.name!r}", lambda db: db.execute(queries.PUT_SCHEDULE, row)
        )

    async def delete_schedule(self, name: str) -> bool:
        deleted = await self._atomically(
            f"deleting schedule {name!r}", lambda db: db.execute(queries.DELETE_SCHEDULE, (name,)).rowcount
        )
        return bool(deleted)

    async def list_schedules(self) -> list[StoredSchedule]:
        async with self._connection("listing schedules") as conn:
            rows = await self._fetch_all(conn, queries.LIST_SCHEDULES)
        return [schedules.stored_schedule(row) for row in rows]

    async def pause_schedule(self, name: str, *, paused: bool, next_run: datetime | None) -> bool:
        params = {
            "name": name,
            "paused": int(paused),
            "next_run": None if next_run is None else next_run.timestamp(),
        }
        changed = await self._atomically(
            f"pausing or resuming schedule {name!r}",
            lambda db: db.execute(queries.PAUSE_SCHEDULE, params).rowcount,
        )
        return bool(changed)

    async def fire_schedule(
        self, schedule_id: str, *, due: datetime, next_run: datetime, task: NewTask | None
    ) -> bool:
        params = {
            "id": schedule_id,
            "due": due.timestamp(),
            "next_run": next_run.timestamp(),
            "last_run": None if task is None else task.eta.timestamp(),
        }
        fired = await self._atomically(
            f"firing schedule {schedule_id!r}", functools.partial(schedules.fire, params=params, task=task)
        )
        if fired and task is not None:
            self._notify()
        return fired

    async def compact(self) -> Compaction:
        """Give free pages back to the file system and empty the WAL (see `maintenance`). The first
        compaction of a file created before schema version 4 rewrites it whole (VACUUM)."""
        async with self._connection("compacting the database") as conn:
            before = maintenance.disk_bytes(self._path)
            await connection.on_thread(conn, maintenance.compact, self._waits)
            return Compaction(bytes_before=before, bytes_after=maintenance.disk_bytes(self._path))

    # Change notification

    def subscribe(self) -> Subscription:
        """Woken by this object's commits, by other objects of this process open on the same file, and by
        other processes (seen by polling while anyone is subscribed)."""
        subscription = self._signal.subscribe()
        self._ensure_watching()
        return subscription

    def _ensure_watching(self) -> None:
        if self._commits is None or not self._signal.has_subscribers:
            return
        loop = asyncio.get_running_loop()
        if self._watcher is None or self._watcher.done() or self._watcher.get_loop() is not loop:
            self._watcher = loop.create_task(
                self._commits.watch(self._signal), name=f"sitq-sqlite change watcher for {self._path}"
            )

    async def describe(self) -> dict[str, str]:
        async with self._connection("describing the database") as conn:
            ((version, journal_mode, page_size, free_pages),) = await self._fetch_all(conn, queries.DESCRIBE)
        durability = (
            "every commit survives an application crash, an OS crash and a power cut (synchronous=full)"
            if self._synchronous == "full"
            else "commits survive an application crash; an OS crash or a power cut may lose the last "
            "ones (synchronous=normal)"
        )
        return {
            "path": self._path,
            "schema_version": str(version),
            "durability": durability,
            "journal_mode": str(journal_mode),
            "page_size": f"{page_size} bytes",
            "free_pages": f"{free_pages} ({free_pages * page_size} bytes; sitq compact gives them back)",
            "wal_size": f"{maintenance.file_bytes(self._path + '-wal')} bytes",
            "synchronous": self._synchronous,
            "busy_timeout": f"{self._busy_timeout:g}s",
            "sqlite_version": sqlite3.sqlite_version,
        }
