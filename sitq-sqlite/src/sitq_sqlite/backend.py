"""The SQLite backend: one durable file shared by any number of producer and worker processes.

Each backend object owns one aiosqlite connection (one thread) in autocommit mode, guarded by one
asyncio.Lock so that coroutines never interleave statements into each other's transactions. A change that
is one statement (an enqueue without dependencies, a renewal) runs alone in autocommit mode; one that is
several (a claim recovers dead workers' tasks first, an ended attempt also writes its history row and may
cancel the tasks that depend on it) runs in one `BEGIN IMMEDIATE` transaction, which takes the write lock
before anything is read, so it is atomic across processes.

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
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

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
from sitq.semantics import (
    CANCELLED_WHILE_RUNNING,
    ENDED_WITHOUT_SUCCESS,
    LOST_AFTER_WORKER,
    LOST_BEFORE_WORKER,
    NO_ATTEMPTS_LEFT,
    dependents_to_cancel,
)
from sitq_sqlite import faults, files, maintenance, queries, schema
from sitq_sqlite.rows import attempt_record, outcome_rows, record, reserved, task_row, utc_time
from sitq_sqlite.watch import OtherCommits

if TYPE_CHECKING:
    import aiosqlite

logger = logging.getLogger(__name__)

Synchronous = Literal["full", "normal"]
_T = TypeVar("_T")

_URL_FORMS = (
    "'sqlite:///relative/tasks.db' or 'sqlite:////absolute/tasks.db', optionally with"
    " '?synchronous=normal' and/or '?busy_timeout=SECONDS'"
)
_URL_OPTIONS = ("synchronous", "busy_timeout")
BUSY_TIMEOUT = 30.0
"""Seconds a statement waits for another connection's write lock, unless told otherwise."""
_REQUIRED_SQLITE = (3, 35, 0)  # UPDATE ... RETURNING
# Waiting for another connection's write lock: see _begin_immediate.
_FIRST_BUSY_DELAY = 0.00005
_MAX_BUSY_DELAY = 0.005


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
        start an absolute one."""
        parts = urlsplit(url)
        path = unquote(parts.path.removeprefix("/"))
        if parts.scheme != "sqlite" or parts.netloc or not parts.path.startswith("/") or not path:
            raise ConfigurationError(f"a SQLite URL is {_URL_FORMS}, not {url!r}")
        if parts.fragment:
            raise ConfigurationError(f"a SQLite URL has no '#' part, but {url!r} does; use {_URL_FORMS}")
        try:
            options = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        except ValueError as exc:
            raise ConfigurationError(f"cannot read the query of {url!r} ({exc}); use {_URL_FORMS}") from exc
        keys = [key for key, _ in options]
        for key in keys:
            if key not in _URL_OPTIONS:
                raise ConfigurationError(
                    f"unknown option {key!r} in {url!r}: the options are "
                    f"{' and '.join(map(repr, _URL_OPTIONS))}; use {_URL_FORMS}"
                )
            if keys.count(key) > 1:
                raise ConfigurationError(f"{url!r} gives {key!r} more than once; give it once")
        given = dict(options)
        synchronous: Synchronous
        match given.get("synchronous", "full"):
            case "full" | "normal" as value:
                synchronous = value
            case value:
                raise ConfigurationError(f"synchronous must be 'full' or 'normal', not {value!r}, in {url!r}")
        return cls(
            path, synchronous=synchronous, busy_timeout=_url_seconds(given.get("busy_timeout", BUSY_TIMEOUT))
        )

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
        conn = _daemon_connection(opened)
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
        _open_files.add(self._file, self._signal)
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
            await _on_thread(conn, maintenance.configure)
            await _check_json(conn)
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
                _open_files.discard(self._file, self._signal)
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
            result: _T = await _on_thread(conn, _in_transaction, body, self._busy_timeout)
        self._keep_wal_small()
        return result

    def _keep_wal_small(self) -> None:
        """Checkpoint in the background when the WAL has grown past its limit (see `maintenance`)."""
        if (self._checkpointing is None or self._checkpointing.done()) and self._wal.due():
            self._checkpointing = asyncio.get_running_loop().create_task(
                self._checkpoint(), name=f"sitq-sqlite checkpoint of {self._path}"
            )

    async def _checkpoint(self) -> None:
        try:
            async with self._connection("checkpointing the WAL") as conn:
                await _on_thread(conn, maintenance.checkpoint, self._busy_timeout)
        except BackendError as exc:
            self._wal.failed(exc)
        else:
            self._wal.succeeded()

    def _notify(self) -> None:
        _open_files.notify(self._file)

    # The Backend protocol

    async def enqueue(self, tasks: Sequence[NewTask]) -> None:
        doing = f"storing {len(tasks)} new task(s)"
        if any(task.depends_on for task in tasks):
            await self._atomically(doing, functools.partial(_store_with_parents, tasks=tasks))
        else:
            rows = [task_row(task, unmet=0) for task in tasks]
            # Even an empty batch checks that the backend is connected.
            await self._atomically(doing, lambda db: _store(db, tasks, rows))
        if tasks:
            self._notify()

    async def enqueue_in_transaction(self, connection: object, tasks: Sequence[NewTask]) -> None:
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
            _store_in_savepoint(connection, self._path, tasks)
        except sqlite3.Error as exc:
            doing = f"storing {len(tasks)} new task(s) in the application's transaction"
            raise self._fault(doing, exc) from exc
        self._notify()

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
        sql = queries.claim_sql(len(names)) if names and limit > 0 else None
        rows = await self._claim("claiming tasks", sql, params, outcome_rows(outcomes))
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
        rows = await self._claim(f"claiming task {task_id!r}", queries.CLAIM_TASK, params)
        return reserved(rows[0], worker_id, now, expires) if rows else None

    async def _claim(
        self,
        doing: str,
        sql: str | None,
        params: dict[str, object],
        outcomes: Sequence[dict[str, object]] = (),
    ) -> list[Any]:
        """Record `outcomes`, recover the tasks of dead workers, then run the claim `sql`, in one write
        transaction."""

        def claim(db: sqlite3.Connection) -> list[Any]:
            _record_outcomes(db, outcomes)
            _recover_lost(db, params["now"], end=False)
            return [] if sql is None else db.execute(sql, params).fetchall()

        rows = await self._atomically(doing, claim)
        if outcomes:  # a finished task, which someone may be waiting for
            self._notify()
        return rows

    async def recover_lost(self, *, now: datetime) -> list[TaskRecord]:
        def recover(db: sqlite3.Connection) -> list[Any]:
            ended = _recover_lost(db, now.timestamp(), end=True)
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
            rows = await conn.execute_fetchall(queries.RENEW, params)
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
                    _cancel_dependents(db, seq, task_id, status, params["now"])
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
                _cancel_dependents(db, seq, task_id, status, params["now"])
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
        await self._atomically(doing, functools.partial(_record_outcomes, rows=rows))
        self._notify()

    async def history(self, task_id: str) -> list[AttemptRecord]:
        async with self._connection(f"reading the history of task {task_id!r}") as conn:
            rows = await conn.execute_fetchall(queries.HISTORY, (task_id,))
        return [attempt_record(row) for row in rows]

    async def get(self, task_id: str) -> TaskRecord | None:
        async with self._connection(f"reading task {task_id!r}") as conn:
            rows = list(await conn.execute_fetchall(queries.GET, (task_id,)))
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
                found = list(await conn.execute_fetchall(queries.CURSOR, (after,)))
                if not found:
                    raise TaskNotFoundError(after)
                params["after"] = found[0][0]
            rows = await conn.execute_fetchall(queries.LIST, params)
        return [record(row) for row in rows]

    async def stats(self) -> dict[tuple[str, TaskStatus], int]:
        async with self._connection("counting tasks") as conn:
            rows = await conn.execute_fetchall(queries.STATS)
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
            rows = await conn.execute_fetchall(queries.WORKFLOW_COUNTS, (workflow_id,))
        return {TaskStatus(status): count for status, count in rows}

    async def next_due(self, queues: Sequence[str]) -> datetime | None:
        params = {"queues": json.dumps(list(dict.fromkeys(queues)))}
        async with self._connection("finding the next due task") as conn:
            ((due,),) = await conn.execute_fetchall(queries.NEXT_DUE, params)
        self._keep_wal_small()  # asked when a worker is idle: a gap in which to shrink the WAL
        return None if due is None else utc_time(due)

    async def compact(self) -> Compaction:
        """Give free pages back to the file system and empty the WAL (see `maintenance`). The first
        compaction of a file created before schema version 4 rewrites it whole (VACUUM)."""
        async with self._connection("compacting the database") as conn:
            before = maintenance.disk_bytes(self._path)
            await _on_thread(conn, maintenance.compact, self._busy_timeout)
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
            ((version, journal_mode, page_size, free_pages),) = await conn.execute_fetchall(queries.DESCRIBE)
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


class _OpenFiles:
    """The change signals of this process's open backends, by real path of their file, so that a commit
    through one object wakes the waiters of every object on that file at once, without polling."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._signals: dict[str, weakref.WeakSet[ChangeSignal]] = {}

    def add(self, file: str, signal: ChangeSignal) -> None:
        with self._lock:
            self._signals.setdefault(file, weakref.WeakSet()).add(signal)

    def discard(self, file: str, signal: ChangeSignal) -> None:
        with self._lock:
            signals = self._signals.get(file)
            if signals is not None:
                signals.discard(signal)
                if not signals:
                    del self._signals[file]

    def notify(self, file: str) -> None:
        with self._lock:
            signals = list(self._signals.get(file, ()))
        for signal in signals:
            signal.notify()


_open_files = _OpenFiles()


async def _on_thread(conn: aiosqlite.Connection, function: Callable[..., _T], *args: Any) -> _T:
    """Call `function` with the connection's `sqlite3.Connection` on aiosqlite's thread, in one hop:
    several statements, a whole transaction, with no event-loop round trip between them.

    The one place sitq-sqlite uses aiosqlite's private `_execute` and `_conn` (hence the pinned range
    in pyproject.toml): aiosqlite offers no public way to do this.
    """
    result: _T = await conn._execute(function, conn._conn, *args)  # type: ignore[no-untyped-call]  # aiosqlite leaves it untyped
    return result


def _in_transaction(
    db: sqlite3.Connection, body: Callable[[sqlite3.Connection], _T], busy_timeout: float
) -> _T:
    _begin_immediate(db, busy_timeout)
    try:
        result = body(db)
        db.execute("COMMIT")
    except BaseException as exc:
        _roll_back(db, exc)
        raise
    return result


def _roll_back(db: sqlite3.Connection, cause: BaseException) -> None:
    """Roll back after `cause`, which stays the error raised: a ROLLBACK that fails too is only noted.

    SQLite itself may have rolled the transaction back already: a COMMIT that finds the disk full, or
    an I/O error, ends the transaction, and a ROLLBACK then would fail with "no transaction is active".
    """
    if not db.in_transaction:
        return
    try:
        db.execute("ROLLBACK")
    except sqlite3.Error as failed:
        faults.rollback_failed(cause, failed)


def _begin_immediate(db: sqlite3.Connection, busy_timeout: float) -> None:
    """Take the write lock, retrying every fraction of a millisecond while another connection holds it.

    SQLite's own busy handler sleeps 1, 2, 5, 10 ms and more between tries, while a sitq write holds the
    lock for well under a millisecond: with several workers on one file, they would spend more time
    asleep than writing. Here the waits start at 50 µs and double up to 5 ms (with jitter, so that
    waiters do not retry in step), until `busy_timeout` seconds have passed.
    """
    db.execute("PRAGMA busy_timeout = 0")
    try:
        deadline = time.monotonic() + busy_timeout
        delay = _FIRST_BUSY_DELAY
        while True:
            try:
                db.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorcode", 0) & 0xFF != sqlite3.SQLITE_BUSY:
                    raise
                if time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, _MAX_BUSY_DELAY)
    finally:
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")


async def _check_json(conn: aiosqlite.Connection) -> None:
    """Lists of ids and queues are bound as one JSON array each; SQLite before 3.38 could be built without
    its JSON functions."""
    try:
        await conn.execute(queries.JSON_CHECK)
    except sqlite3.OperationalError as exc:
        raise BackendError(
            f"sitq-sqlite needs SQLite's JSON functions, but this Python's SQLite {sqlite3.sqlite_version} "
            f"lacks them ({exc}); use a Python built with SQLite 3.38 or newer"
        ) from exc


def _daemon_connection(opened: sqlite3.Connection) -> aiosqlite.Connection:
    """An aiosqlite connection on `opened` whose thread does not hold the interpreter open at exit.

    aiosqlite's thread is not a daemon, so a backend its user never closed (a module-level queue in a web
    app, say) would keep the interpreter from exiting. aiosqlite has no option for it, but a thread is a
    daemon when the thread that creates it is one, and aiosqlite creates its thread with the connection
    (0.20 to 0.22, the versions sitq-sqlite allows). Every write is committed before it returns, so
    letting the thread die with the process loses nothing.
    """
    import aiosqlite  # here, not at the top: listing the installed backends must stay cheap

    made: list[aiosqlite.Connection] = []
    creator = threading.Thread(
        target=lambda: made.append(aiosqlite.Connection(lambda: opened, iter_chunk_size=64)),
        name="sitq-sqlite-connect",
        daemon=True,
    )
    creator.start()
    creator.join()  # at once: creating a connection only builds objects, its thread starts on `await`
    return made[0]


def _url_seconds(value: str | float) -> float:
    """The ``busy_timeout`` of a URL: a number of seconds (the constructor checks its range)."""
    try:
        return float(value)
    except ValueError:
        raise ConfigurationError(
            f"busy_timeout is a number of seconds, such as '?busy_timeout=5', not {value!r}"
        ) from None


def _store(db: sqlite3.Connection, tasks: Sequence[NewTask], rows: Sequence[tuple[object, ...]]) -> None:
    """Insert the tasks' rows (from `rows.task_row`), then their payloads beside them.

    The rows get the seqs SQLite would give them (one past the largest, in order), numbered here so that
    the payloads need no lookup by id: the caller's write lock keeps the largest from moving meanwhile.
    """
    ((last,),) = db.execute(queries.LAST_SEQ).fetchall()
    db.executemany(queries.INSERT, [(seq, *row) for seq, row in enumerate(rows, last + 1)])
    db.executemany(queries.INSERT_PAYLOAD, [(seq, task.payload) for seq, task in enumerate(tasks, last + 1)])


def _store_in_savepoint(connection: sqlite3.Connection, path: str, tasks: Sequence[NewTask]) -> None:
    """Store a batch through the application's connection to `path`, in its transaction (begun if none
    is), inside a savepoint that undoes the batch alone when it is refused."""
    ((_, _, file),) = connection.execute("PRAGMA main.database_list").fetchall()
    if not file or os.path.realpath(file) != os.path.realpath(path):
        raise ConfigurationError(
            f"the application's connection is to {file or 'an in-memory database'!r}, not to the "
            f"queue's file {path!r}: open it with sqlite3.connect({path!r})"
        )
    if not connection.in_transaction:
        connection.execute("BEGIN")
    connection.execute("SAVEPOINT sitq_enqueue")
    try:
        _store_with_parents(connection, tasks)
    except BaseException:
        connection.execute("ROLLBACK TO sitq_enqueue")
        raise
    finally:
        connection.execute("RELEASE sitq_enqueue")


def _store_with_parents(db: sqlite3.Connection, tasks: Sequence[NewTask]) -> None:
    """Store a batch that names parents, in the caller's transaction; raise `TaskNotFoundError` (which
    rolls it back) for a parent neither stored nor earlier in the batch (`Backend.enqueue`)."""
    parent_ids = list(dict.fromkeys(parent for task in tasks for parent in task.depends_on))
    stored: dict[str, tuple[int, str, float | None]] = {
        task_id: (seq, status, finished_at)
        for task_id, seq, status, finished_at in db.execute(
            queries.PARENTS, {"parents": json.dumps(parent_ids)}
        )
    }
    rows = [
        task_row(
            task,
            unmet=sum(
                parent not in stored or stored[parent][1] != TaskStatus.SUCCESS
                for parent in set(task.depends_on)
            ),
        )
        for task in tasks
    ]
    _store(db, tasks, rows)  # a duplicate id fails here, before any parent is looked at
    known = set(stored)
    for task in tasks:
        if missing := next((parent for parent in task.depends_on if parent not in known), None):
            raise TaskNotFoundError(missing)
        known.add(task.id)
    db.executemany(
        queries.DEPEND, [(parent, task.id) for task in tasks for parent in dict.fromkeys(task.depends_on)]
    )
    # A parent that already ended without success cancels the task at once, and what depends on it in
    # the batch: task by task, through its first such parent, as `sitq.backend.Backend.enqueue` says.
    for task in tasks:
        ended = next(
            (
                parent
                for parent in task.depends_on
                if parent in stored and stored[parent][1] in ENDED_WITHOUT_SUCCESS
            ),
            None,
        )
        if ended is None:
            continue
        seq, status, finished_at = stored[ended]
        at = task.enqueued_at.timestamp() if finished_at is None else finished_at
        for cancelled_seq, cancelled_id in _cancel_dependents(db, seq, ended, status, at):
            stored[cancelled_id] = (cancelled_seq, TaskStatus.CANCELLED, at)


def _cancel_dependents(
    db: sqlite3.Connection, seq: int, task_id: str, status: str, at: object
) -> list[tuple[int, str]]:
    """Cancel the pending tasks that depend on a task that ended without success, and theirs in turn,
    in the order and with the errors of `sitq.semantics.dependents_to_cancel`, on the subgraph one
    recursive query returns. Returns the cancelled tasks' seqs and ids."""
    children: dict[int, list[tuple[int, str]]] = {}
    for parent_seq, child_seq, child_id in db.execute(queries.DEPENDENTS, (seq,)):
        children.setdefault(parent_seq, []).append((child_seq, child_id))
    if not children:
        return []
    for edges in children.values():
        edges.sort()
    cancelled = dependents_to_cancel(seq, task_id, status, lambda node: children.get(node, ()))
    db.executemany(
        queries.CANCEL_DEPENDENT, [(at, error, child_seq) for child_seq, error in cancelled.items()]
    )
    ids = {child_seq: child_id for edges in children.values() for child_seq, child_id in edges}
    return [(child_seq, ids[child_seq]) for child_seq in cancelled]


def _recover_lost(db: sqlite3.Connection, now: object, *, end: bool) -> list[str]:
    """Take back the tasks whose leases expired before `now`, in the caller's transaction: pending again,
    or with `end`, also ended (failed, or cancelled as requested). Return the ids of those ended."""
    lost = {
        "now": now,
        "lost": LOST_BEFORE_WORKER,
        "lost_after": LOST_AFTER_WORKER,
        "no_attempts": NO_ATTEMPTS_LEFT,
        "cancelled": CANCELLED_WHILE_RUNNING,
        "end": end,
    }
    # The history insert doubles as the check: the common case, nothing lost, is one index probe.
    if not db.execute(queries.LOST_HISTORY, lost).fetchall():
        return []
    ended = []
    recovered = sorted(db.execute(queries.RECOVER_LOST, lost).fetchall())
    db.execute(queries.FORGET_RESULTS, (json.dumps([row[0] for row in recovered]),))
    # In enqueue order: the order of the cascades is part of the stored errors.
    for seq, task_id, status, finished_at in recovered:
        if status != TaskStatus.PENDING:
            ended.append(task_id)
            _cancel_dependents(db, seq, task_id, status, finished_at)
    return ended


def _record_outcomes(db: sqlite3.Connection, rows: Sequence[dict[str, object]]) -> None:
    """Apply ended attempts, inside the caller's transaction: history rows, task rows, dependents."""
    if not rows:
        return
    db.executemany(queries.COMPLETE_HISTORY, rows)
    ended: list[tuple[int, str, str, object]] = []
    left: list[tuple[int, object, object]] = []
    for row in rows:
        for seq, status in db.execute(queries.COMPLETE, row).fetchall():
            left.append((seq, row["result"], row["traceback"]))
            if status == TaskStatus.SUCCESS:
                db.execute(queries.MET, (seq,))
            elif status in ENDED_WITHOUT_SUCCESS:
                ended.append((seq, str(row["task_id"]), status, row["finished_at"]))
    # What each attempt left replaces what an earlier attempt of its task left, even when it is nothing.
    db.executemany(queries.SET_RESULT, [kept for kept in left if kept[1] is not None or kept[2] is not None])
    if nothing := [seq for seq, result, traceback in left if result is None and traceback is None]:
        db.execute(queries.FORGET_RESULTS, (json.dumps(nothing),))
    # Only pending tasks are cancelled, and only running ones completed: cancelling after every outcome is
    # applied ends the same tasks, with the same errors, as cancelling after each.
    for seq, task_id, status, finished_at in ended:
        _cancel_dependents(db, seq, task_id, status, finished_at)
