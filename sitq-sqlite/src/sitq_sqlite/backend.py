"""The SQLite backend: one durable file shared by any number of producer and worker processes.

Each backend object owns one aiosqlite connection (one thread) in autocommit mode, guarded by one
asyncio.Lock so that coroutines never interleave statements into each other's transactions. A change that
is one statement (an enqueue without dependencies, a renewal) runs alone in autocommit mode; one that is
several (a claim recovers dead workers' tasks first, an ended attempt also writes its history row and may
cancel the tasks that depend on it) runs in one `BEGIN IMMEDIATE` transaction, which takes the write lock
before anything is read, so it is atomic across processes.
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
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from sitq.backend import SharedConnection
from sitq.changes import ChangeSignal, Subscription
from sitq.errors import (
    BackendError,
    ConfigurationError,
    TaskCancelledError,
    TaskNotFoundError,
    WorkerLostError,
)
from sitq.models import (
    AttemptOutcome,
    AttemptRecord,
    Compaction,
    NewTask,
    ReservedTask,
    RetryPolicy,
    TaskOptions,
    TaskOutcome,
    TaskRecord,
    TaskStatus,
)
from sitq_sqlite import faults, files, maintenance, schema
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

# The literal status values in these WHERE clauses must match the partial indexes in schema.py.
# A task's payload, result and traceback live beside its row (see schema version 4), so that the
# statements that move a task along rewrite its small row only.
# A batch's rows are numbered in the write that stores them (see _store).
_LAST_SEQ = "SELECT coalesce(max(seq), 0) FROM tasks"
_INSERT = (
    "INSERT INTO tasks (seq, id, name, status, serializer, enqueued_at, eta, queue, priority,"
    " max_attempts, retry, timeout, description, unmet, depends_on, workflow_id)"
    " VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_PAYLOAD = "INSERT INTO payloads (task_seq, payload) VALUES (?, ?)"
_SET_RESULT = (
    "INSERT INTO results (task_seq, result, traceback) VALUES (?, ?, ?)"
    " ON CONFLICT (task_seq) DO UPDATE SET result = excluded.result, traceback = excluded.traceback"
)
_FORGET_RESULTS = "DELETE FROM results WHERE task_seq IN (SELECT value FROM json_each(?))"
_OPTIONS = "queue, priority, max_attempts, retry, timeout, description"
# Worded as the memory backend words them.
_CANCELLED_WHILE_RUNNING = f"{TaskCancelledError.__name__}: cancelled on request while running"
_PARENT_ENDED = f"{TaskCancelledError.__name__}: parent task {{}} ended {{}}"
_ENDED_WITHOUT_SUCCESS = frozenset({TaskStatus.FAILED, TaskStatus.TIMEOUT, TaskStatus.CANCELLED})
# Dependencies: the parents a batch names, as stored before it; its edges, by seq; a success meeting one
# of each child's unmet parents.
_PARENTS = (
    "SELECT id, seq, status, finished_at FROM tasks WHERE id IN (SELECT value FROM json_each(:parents))"
)
_DEPEND = (
    "INSERT INTO dependencies (parent_seq, task_seq)"
    " SELECT parent.seq, child.seq FROM tasks AS parent, tasks AS child WHERE parent.id = ? AND child.id = ?"
)
_MET = (
    "UPDATE tasks SET unmet = unmet - 1"
    " WHERE seq IN (SELECT task_seq FROM dependencies WHERE parent_seq = ?) AND status = 'pending'"
)
# The pending tasks that depend on a task, directly or through other pending tasks, as edges; each task
# is reached once (UNION), so the cost follows the size of that subgraph, not the number of paths.
_DEPENDENTS = """
WITH RECURSIVE reached (seq) AS (
    VALUES (?)
    UNION
    SELECT dependencies.task_seq FROM reached
    JOIN dependencies ON dependencies.parent_seq = reached.seq
    JOIN tasks ON tasks.seq = dependencies.task_seq
    WHERE tasks.status = 'pending'
)
SELECT dependencies.parent_seq, tasks.seq, tasks.id FROM reached
JOIN dependencies ON dependencies.parent_seq = reached.seq
JOIN tasks ON tasks.seq = dependencies.task_seq
WHERE tasks.status = 'pending'
"""
_CANCEL_DEPENDENT = (
    "UPDATE tasks SET status = 'cancelled', finished_at = ?, error = ? WHERE seq = ? AND status = 'pending'"
)
# Leases that ran out before :now: their workers are presumed dead. The history row is written first, from
# the row as it still is; it doubles as the check, so the common case (nothing lost) costs one index probe.
# A claim (:end = 0) takes back only the tasks that go pending again; recover_lost (:end = 1) all of them.
_LOST = f"{WorkerLostError.__name__}: worker "  # worded as the memory backend words it
_EXPIRED = (
    "status = 'in_progress' AND lease_expires_at < :now"
    " AND (:end OR (NOT cancel_requested AND attempts < max_attempts))"
)
# A history row: `ended` numbers the task's attempts in the order they end.
_ADD_ATTEMPT = """
INSERT INTO attempts (task_seq, ended, attempt, worker_id, started_at, finished_at, outcome, error)
SELECT seq, coalesce((SELECT max(ended) FROM attempts WHERE task_seq = tasks.seq), 0) + 1,
"""
_LOST_HISTORY = f"""{_ADD_ATTEMPT}
    attempts, worker_id, started_at, lease_expires_at, 'lost',
    :lost || worker_id || ' stopped renewing its lease'
FROM tasks WHERE {_EXPIRED}
RETURNING task_seq
"""
_RECOVER_LOST = f"""
UPDATE tasks SET
    status = CASE
        WHEN cancel_requested THEN 'cancelled' WHEN attempts >= max_attempts THEN 'failed' ELSE 'pending'
    END,
    finished_at = CASE
        WHEN cancel_requested OR attempts >= max_attempts THEN lease_expires_at ELSE finished_at
    END,
    error = CASE WHEN cancel_requested THEN :cancelled ELSE
        :lost || worker_id || ' stopped renewing its lease'
        || CASE WHEN attempts >= max_attempts THEN ', and no attempts are left' ELSE '' END
    END,
    worker_id = NULL, lease_expires_at = NULL, cancel_requested = 0
WHERE {_EXPIRED}
RETURNING seq, id, status, finished_at
"""
_RESERVE = (
    "UPDATE tasks SET status = 'in_progress', attempts = attempts + 1, worker_id = :worker_id,"
    " started_at = :now, lease_expires_at = :expires"
)
_RESERVED_COLUMNS = (
    "RETURNING seq, id, name, (SELECT payload FROM payloads WHERE task_seq = tasks.seq), serializer,"
    f" attempts, enqueued_at, eta, {_OPTIONS}, depends_on"
)
_CLAIM_TASK = f"{_RESERVE} WHERE id = :task_id AND status = 'pending' AND unmet = 0 {_RESERVED_COLUMNS}"
# One arm per queue, each walking tasks_ready_by_priority in claim order; SQLite merges the arms and
# stops after `limit` rows, so a claim reads about `limit` rows however many tasks the file holds (plus
# the higher-priority tasks not yet due that it steps over). A compound SELECT has at most 500 arms.
# INDEXED BY: left to itself, the planner prefers tasks_ready_by_eta's range on eta, then sorts every due
# task of the queue to find the first `limit`.
_MERGED_QUEUES = 100
_CLAIM_ARM = (
    "SELECT seq, priority, eta FROM tasks INDEXED BY tasks_ready_by_priority"
    " WHERE status = 'pending' AND unmet = 0 AND queue = :q{} AND eta <= :now"
)
_CLAIM_MANY_QUEUES = (
    "SELECT seq, priority, eta FROM tasks INDEXED BY tasks_ready_by_priority"
    " WHERE status = 'pending' AND unmet = 0"
    " AND queue IN (SELECT value FROM json_each(:queues)) AND eta <= :now"
)
_RENEW = """
UPDATE tasks SET lease_expires_at = :expires
WHERE id IN (SELECT value FROM json_each(:task_ids)) AND status = 'in_progress' AND worker_id = :worker_id
RETURNING id, cancel_requested
"""
_HELD = (
    "FROM tasks WHERE id IN (SELECT value FROM json_each(:task_ids))"
    " AND status = 'in_progress' AND worker_id = :worker_id"
)
_RELEASE_HISTORY = f"""{_ADD_ATTEMPT}
    attempts, worker_id, started_at, :now, 'released', NULL {_HELD}
"""
# A task asked to cancel ends cancelled instead, its attempt counted.
_RELEASE = f"""
UPDATE tasks SET
    status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'pending' END,
    eta = CASE WHEN cancel_requested THEN eta ELSE :now END,
    attempts = CASE WHEN cancel_requested THEN attempts ELSE attempts - 1 END,
    finished_at = CASE WHEN cancel_requested THEN :now ELSE finished_at END,
    error = CASE WHEN cancel_requested THEN :cancelled ELSE error END,
    worker_id = NULL, lease_expires_at = NULL, cancel_requested = 0
WHERE seq IN (SELECT seq {_HELD})
RETURNING seq, id, status
"""
_CANCEL = """
UPDATE tasks SET
    status = CASE status WHEN 'pending' THEN 'cancelled' ELSE status END,
    finished_at = CASE status WHEN 'pending' THEN :now ELSE finished_at END,
    cancel_requested = CASE status WHEN 'in_progress' THEN 1 ELSE cancel_requested END
WHERE id = :task_id AND status IN ('pending', 'in_progress')
RETURNING seq, status
"""
_STATUS = "SELECT status FROM tasks WHERE id = ?"
_COMPLETE_HISTORY = f"""{_ADD_ATTEMPT}
    attempts, worker_id, started_at, :finished_at, :outcome, :error
FROM tasks WHERE id = :task_id AND status = 'in_progress' AND worker_id = :worker_id
"""
_COMPLETE = """
UPDATE tasks SET status = :status, eta = coalesce(:retry_at, eta), finished_at = :finished_at_or_null,
    error = :error, worker_id = NULL, lease_expires_at = NULL, cancel_requested = 0
WHERE id = :task_id AND status = 'in_progress' AND worker_id = :worker_id
RETURNING seq, status
"""
_RECORD_COLUMNS = (
    "SELECT id, name, status, serializer, enqueued_at, eta, attempts, started_at, finished_at, worker_id,"
    f" result, error, traceback, cancel_requested, depends_on, workflow_id, {_OPTIONS}"
    " FROM tasks LEFT JOIN results ON results.task_seq = tasks.seq"
)
_GET = f"{_RECORD_COLUMNS} WHERE id = ?"
_HISTORY = """
SELECT attempts.attempt, attempts.worker_id, attempts.started_at, attempts.finished_at, attempts.outcome,
    attempts.error
FROM tasks JOIN attempts ON attempts.task_seq = tasks.seq WHERE tasks.id = ? ORDER BY attempts.ended
"""
# Inspection and administration. Listing walks the rowid (enqueue order) from the cursor on.
_CURSOR = "SELECT seq FROM tasks WHERE id = ?"
_LIST = (
    f"{_RECORD_COLUMNS} WHERE seq > :after"
    " AND status IN (SELECT value FROM json_each(:statuses))"
    " AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))"
    " ORDER BY seq LIMIT :limit"
)
# In the order each pair first appears in enqueue order, as the memory backend's dict has them.
_STATS = "SELECT queue, status, count(*) FROM tasks GROUP BY queue, status ORDER BY min(seq)"
# Attempts count from zero again; a parent's status did not change, so `unmet` is counted afresh from the
# parents as they are now (a parent no longer stored was finished and purged: it counts as met, as in
# the memory backend). A task that was cancelled by a cascade missed the decrements of parents
# succeeding meanwhile, hence the recount.
_REQUEUE = """
UPDATE tasks SET status = 'pending', eta = :now, attempts = 0, started_at = NULL, finished_at = NULL,
    error = NULL,
    unmet = (
        SELECT count(DISTINCT parents.value) FROM json_each(coalesce(tasks.depends_on, '[]')) AS parents
        WHERE EXISTS (SELECT 1 FROM tasks AS parent WHERE parent.id = parents.value
            AND parent.status != 'success')
    )
WHERE id = :task_id AND status IN ('failed', 'timeout', 'cancelled')
RETURNING seq
"""
# Finished before the cutoff, and no pending task depends on it (one primary-key probe per candidate).
_PURGE = """
DELETE FROM tasks WHERE finished_at < :before
    AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
    AND NOT EXISTS (
        SELECT 1 FROM dependencies JOIN tasks AS child ON child.seq = dependencies.task_seq
        WHERE dependencies.parent_seq = tasks.seq AND child.status = 'pending'
    )
RETURNING seq
"""
_PURGE_SIDE_TABLES = tuple(
    f"DELETE FROM {table} WHERE task_seq IN (SELECT value FROM json_each(?))"
    for table in ("attempts", "payloads", "results")
)
_PURGE_DEPENDENCIES = (
    "DELETE FROM dependencies WHERE parent_seq IN (SELECT value FROM json_each(:seqs))"
    " OR task_seq IN (SELECT value FROM json_each(:seqs))"
)
_WORKFLOW_COUNTS = "SELECT status, count(*) FROM tasks WHERE workflow_id = ? GROUP BY status"
# Per queue, the earliest ready eta and the earliest lease expiry. tasks_ready_by_priority holds each
# priority's tasks in eta order, so `levels` steps from one priority in use to the next (one index probe
# each), and the earliest eta of each is its first entry. Running tasks are few: their index is read whole.
_NEXT_DUE = """
WITH RECURSIVE levels (queue, priority) AS (
    SELECT queues.value, (
        SELECT max(priority) FROM tasks WHERE status = 'pending' AND unmet = 0 AND queue = queues.value
    ) FROM json_each(:queues) AS queues
    UNION ALL
    SELECT levels.queue, (
        SELECT max(priority) FROM tasks WHERE status = 'pending' AND unmet = 0 AND queue = levels.queue
            AND priority < levels.priority
    ) FROM levels WHERE levels.priority IS NOT NULL
)
SELECT min(due) FROM (
    SELECT (
        SELECT min(eta) FROM tasks WHERE status = 'pending' AND unmet = 0 AND queue = levels.queue
            AND priority = levels.priority
    ) AS due FROM levels WHERE levels.priority IS NOT NULL
    UNION ALL
    SELECT (
        SELECT min(lease_expires_at) FROM tasks WHERE status = 'in_progress' AND queue = queues.value
    ) FROM json_each(:queues) AS queues
)
"""


@functools.lru_cache(maxsize=32)
def _claim_sql(queues: int) -> str:
    """The claim for this many distinct queues (none: claim nothing, after recovering lost leases)."""
    if queues <= _MERGED_QUEUES:
        candidates = " UNION ALL ".join(_CLAIM_ARM.format(index) for index in range(queues))
    else:
        candidates = _CLAIM_MANY_QUEUES
    return f"""
{_RESERVE}
WHERE seq IN (SELECT seq FROM ({candidates} ORDER BY priority DESC, eta, seq LIMIT :limit))
{_RESERVED_COLUMNS}
"""


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
            await conn._execute(maintenance.configure, conn._conn)  # type: ignore[no-untyped-call]  # aiosqlite leaves it untyped
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
            # Private, but aiosqlite offers no public way to run several statements in one thread hop.
            result: _T = await conn._execute(_in_transaction, conn._conn, body, self._busy_timeout)  # type: ignore[no-untyped-call]  # aiosqlite leaves it untyped
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
                await conn._execute(maintenance.checkpoint, conn._conn, self._busy_timeout)  # type: ignore[no-untyped-call]  # aiosqlite leaves it untyped
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
            rows = [_task_row(task, unmet=0) for task in tasks]
            # Even an empty batch checks that the backend is connected.
            await self._atomically(doing, lambda db: _store(db, tasks, rows))
        if tasks:
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
        if len(names) > _MERGED_QUEUES:
            params["queues"] = json.dumps(names)
        else:
            params.update((f"q{index}", name) for index, name in enumerate(names))
        sql = _claim_sql(len(names)) if names and limit > 0 else None
        rows = await self._claim("claiming tasks", sql, params, _outcome_rows(outcomes))
        # RETURNING yields rows in no promised order: sort as the claim chose them.
        rows.sort(key=lambda row: (-row[9], row[7], row[0]))
        return [_reserved(row, worker_id, now, expires) for row in rows]

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
        rows = await self._claim(f"claiming task {task_id!r}", _CLAIM_TASK, params)
        return _reserved(rows[0], worker_id, now, expires) if rows else None

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
            return [db.execute(_GET, (task_id,)).fetchone() for task_id in ended]

        rows = await self._atomically("recovering the tasks of dead workers", recover)
        if rows:  # a finished task, which someone may be waiting for
            self._notify()
        return [_record(row) for row in rows]

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
            rows = await conn.execute_fetchall(_RENEW, params)
        return {task_id for task_id, cancel_requested in rows if cancel_requested}

    async def release(self, task_ids: Sequence[str], *, worker_id: str, now: datetime) -> None:
        ids = list(dict.fromkeys(task_ids))
        params = {
            "now": now.timestamp(),
            "task_ids": json.dumps(ids),
            "worker_id": worker_id,
            "cancelled": _CANCELLED_WHILE_RUNNING,
        }

        def release(db: sqlite3.Connection) -> int:
            released = db.execute(_RELEASE_HISTORY, params).rowcount
            if released:
                rows = db.execute(_RELEASE, params).fetchall()
                cancelled = [row for row in rows if row[2] == TaskStatus.CANCELLED]
                db.execute(_FORGET_RESULTS, (json.dumps([seq for seq, _, _ in cancelled]),))
                # In the order they were given, as the memory backend ends them.
                order = {task_id: index for index, task_id in enumerate(ids)}
                for seq, task_id, status in sorted(cancelled, key=lambda row: order[row[1]]):
                    _cancel_dependents(db, seq, task_id, status, params["now"])
            return released

        if await self._atomically(f"releasing {len(task_ids)} task(s)", release):
            self._notify()

    async def cancel(self, task_id: str, *, now: datetime) -> TaskStatus | None:
        params = {"task_id": task_id, "now": now.timestamp()}

        def cancel(db: sqlite3.Connection) -> tuple[TaskStatus | None, bool]:
            changed = db.execute(_CANCEL, params).fetchall()
            if not changed:
                found = db.execute(_STATUS, (task_id,)).fetchall()
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
        rows = _outcome_rows(outcomes)
        doing = f"recording {len(rows)} finished task(s)"
        if not rows:
            async with self._connection(doing):
                return  # nothing to record, but using an unconnected backend is still an error
        await self._atomically(doing, functools.partial(_record_outcomes, rows=rows))
        self._notify()

    async def history(self, task_id: str) -> list[AttemptRecord]:
        async with self._connection(f"reading the history of task {task_id!r}") as conn:
            rows = await conn.execute_fetchall(_HISTORY, (task_id,))
        return [
            AttemptRecord(
                attempt=attempt,
                worker_id=worker_id,
                started_at=_time(started_at),
                finished_at=_time(finished_at),
                outcome=AttemptOutcome(outcome),
                error=error,
            )
            for attempt, worker_id, started_at, finished_at, outcome, error in rows
        ]

    async def get(self, task_id: str) -> TaskRecord | None:
        async with self._connection(f"reading task {task_id!r}") as conn:
            rows = list(await conn.execute_fetchall(_GET, (task_id,)))
        return _record(rows[0]) if rows else None

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
                found = list(await conn.execute_fetchall(_CURSOR, (after,)))
                if not found:
                    raise TaskNotFoundError(after)
                params["after"] = found[0][0]
            rows = await conn.execute_fetchall(_LIST, params)
        return [_record(row) for row in rows]

    async def stats(self) -> dict[tuple[str, TaskStatus], int]:
        async with self._connection("counting tasks") as conn:
            rows = await conn.execute_fetchall(_STATS)
        return {(queue, TaskStatus(status)): count for queue, status, count in rows}

    async def requeue(self, task_id: str, *, now: datetime) -> TaskStatus | None:
        params = {"task_id": task_id, "now": now.timestamp()}

        def requeue(db: sqlite3.Connection) -> tuple[TaskStatus | None, bool]:
            if requeued := db.execute(_REQUEUE, params).fetchall():
                db.execute(_FORGET_RESULTS, (json.dumps([seq for (seq,) in requeued]),))
                return TaskStatus.PENDING, True
            found = db.execute(_STATUS, (task_id,)).fetchall()
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
            seqs = [seq for (seq,) in db.execute(_PURGE, params).fetchall()]
            if seqs:
                encoded = json.dumps(seqs)
                for statement in _PURGE_SIDE_TABLES:
                    db.execute(statement, (encoded,))
                db.execute(_PURGE_DEPENDENCIES, {"seqs": encoded})
            return len(seqs)

        # Deleting finished tasks makes nothing claimable, so no waiter needs waking (as in memory).
        return await self._atomically("purging finished tasks", purge)

    async def workflow_counts(self, workflow_id: str) -> dict[TaskStatus, int]:
        async with self._connection(f"counting the tasks of workflow {workflow_id!r}") as conn:
            rows = await conn.execute_fetchall(_WORKFLOW_COUNTS, (workflow_id,))
        return {TaskStatus(status): count for status, count in rows}

    async def next_due(self, queues: Sequence[str]) -> datetime | None:
        params = {"queues": json.dumps(list(dict.fromkeys(queues)))}
        async with self._connection("finding the next due task") as conn:
            ((due,),) = await conn.execute_fetchall(_NEXT_DUE, params)
        self._keep_wal_small()  # asked when a worker is idle: a gap in which to shrink the WAL
        return None if due is None else _time(due)

    async def compact(self) -> Compaction:
        """Give free pages back to the file system and empty the WAL (see `maintenance`). The first
        compaction of a file created before schema version 4 rewrites it whole (VACUUM)."""
        async with self._connection("compacting the database") as conn:
            before = maintenance.disk_bytes(self._path)
            await conn._execute(maintenance.compact, conn._conn, self._busy_timeout)  # type: ignore[no-untyped-call]  # aiosqlite leaves it untyped
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
            ((version, journal_mode, page_size, free_pages),) = await conn.execute_fetchall(
                "SELECT user_version, journal_mode, page_size, freelist_count FROM pragma_user_version(),"
                " pragma_journal_mode(), pragma_page_size(), pragma_freelist_count()"
            )
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


_JSON_CHECK = "SELECT json_valid('[]')"


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
        await conn.execute(_JSON_CHECK)
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


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _task_row(task: NewTask, *, unmet: int) -> tuple[object, ...]:
    return (
        task.id,
        task.name,
        task.serializer,
        task.enqueued_at.timestamp(),
        task.eta.timestamp(),
        *_option_columns(task.options),
        unmet,
        json.dumps(task.depends_on) if task.depends_on else None,
        task.workflow_id,
    )


def _store(db: sqlite3.Connection, tasks: Sequence[NewTask], rows: Sequence[tuple[object, ...]]) -> None:
    """Insert the tasks' rows (from `_task_row`), then their payloads beside them.

    The rows get the seqs SQLite would give them (one past the largest, in order), numbered here so that
    the payloads need no lookup by id: the caller's write lock keeps the largest from moving meanwhile.
    """
    ((last,),) = db.execute(_LAST_SEQ).fetchall()
    db.executemany(_INSERT, [(seq, *row) for seq, row in enumerate(rows, last + 1)])
    db.executemany(_INSERT_PAYLOAD, [(seq, task.payload) for seq, task in enumerate(tasks, last + 1)])


def _parents(stored: str | None) -> tuple[str, ...]:
    return () if stored is None else tuple(json.loads(stored))


def _store_with_parents(db: sqlite3.Connection, tasks: Sequence[NewTask]) -> None:
    """Store a batch that names parents, in the caller's transaction; raise `TaskNotFoundError` (which
    rolls it back) for a parent neither stored nor earlier in the batch, as the memory backend does."""
    parent_ids = list(dict.fromkeys(parent for task in tasks for parent in task.depends_on))
    stored: dict[str, tuple[int, str, float | None]] = {
        task_id: (seq, status, finished_at)
        for task_id, seq, status, finished_at in db.execute(_PARENTS, {"parents": json.dumps(parent_ids)})
    }
    rows = [
        _task_row(
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
        _DEPEND, [(parent, task.id) for task in tasks for parent in dict.fromkeys(task.depends_on)]
    )
    # A parent that already ended without success cancels the task at once, and what depends on it in
    # the batch: task by task, through its first such parent, as the memory backend does.
    for task in tasks:
        ended = next(
            (
                parent
                for parent in task.depends_on
                if parent in stored and stored[parent][1] in _ENDED_WITHOUT_SUCCESS
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
    """Cancel the pending tasks that depend on a task that ended without success, and theirs in turn.

    Each error names the task's parent that ended, the first one that a depth-first walk in enqueue
    order reaches (the memory backend's order), so the walk is done here on the subgraph SQLite returns.
    Returns the cancelled tasks' seqs and ids.
    """
    children: dict[int, list[tuple[int, str]]] = {}
    for parent_seq, child_seq, child_id in db.execute(_DEPENDENTS, (seq,)):
        children.setdefault(parent_seq, []).append((child_seq, child_id))
    if not children:
        return []
    for edges in children.values():
        edges.sort()
    cancelled: dict[int, tuple[str, str]] = {}
    walk = [(task_id, str(status), iter(children.get(seq, ())))]
    while walk:
        parent_id, parent_status, remaining = walk[-1]
        child = next(remaining, None)
        if child is None:
            walk.pop()
            continue
        child_seq, child_id = child
        if child_seq in cancelled:
            continue
        cancelled[child_seq] = (child_id, _PARENT_ENDED.format(parent_id, parent_status))
        walk.append((child_id, TaskStatus.CANCELLED.value, iter(children.get(child_seq, ()))))
    db.executemany(_CANCEL_DEPENDENT, [(at, error, child_seq) for child_seq, (_, error) in cancelled.items()])
    return [(child_seq, child_id) for child_seq, (child_id, _) in cancelled.items()]


_DEFAULT_RETRY = RetryPolicy()


@functools.lru_cache(maxsize=256)
def _option_columns(options: TaskOptions) -> tuple[object, ...]:
    """The option columns of a row; cached, since the tasks of one function usually share one options
    object. The default retry policy is stored as NULL, which keeps most rows shorter."""
    return (
        options.queue,
        options.priority,
        options.max_attempts,
        None if options.retry == _DEFAULT_RETRY else _retry_json(options.retry),
        options.timeout,
        options.description,
    )


def _retry_json(retry: RetryPolicy) -> str:
    policy = {
        "backoff": retry.backoff,
        "factor": retry.factor,
        "max_backoff": retry.max_backoff,
        "jitter": retry.jitter,
        "retry_on": list(retry.retry_on),
    }
    return json.dumps(policy, separators=(",", ":"))


@functools.lru_cache(maxsize=256)
def _retry_policy(stored: str | None) -> RetryPolicy:
    """A RetryPolicy from its JSON; NULL (a task stored before version 2) is the default policy."""
    return RetryPolicy() if stored is None else RetryPolicy(**json.loads(stored))


@functools.lru_cache(maxsize=256)
def _options(
    queue: str,
    priority: int,
    max_attempts: int,
    retry: str | None,
    timeout: float | None,
    description: str | None,
) -> TaskOptions:
    return TaskOptions(
        queue=queue,
        priority=priority,
        max_attempts=max_attempts,
        retry=_retry_policy(retry),
        timeout=timeout,
        description=description,
    )


def _recover_lost(db: sqlite3.Connection, now: object, *, end: bool) -> list[str]:
    """Take back the tasks whose leases expired before `now`, in the caller's transaction: pending again,
    or with `end`, also ended (failed, or cancelled as requested). Return the ids of those ended."""
    lost = {"now": now, "lost": _LOST, "cancelled": _CANCELLED_WHILE_RUNNING, "end": end}
    # The history insert doubles as the check: the common case, nothing lost, is one index probe.
    if not db.execute(_LOST_HISTORY, lost).fetchall():
        return []
    ended = []
    recovered = sorted(db.execute(_RECOVER_LOST, lost).fetchall())
    db.execute(_FORGET_RESULTS, (json.dumps([row[0] for row in recovered]),))
    # In enqueue order, as the memory backend ends them.
    for seq, task_id, status, finished_at in recovered:
        if status != TaskStatus.PENDING:
            ended.append(task_id)
            _cancel_dependents(db, seq, task_id, status, finished_at)
    return ended


def _outcome_rows(outcomes: Sequence[TaskOutcome]) -> list[dict[str, object]]:
    """The parameters for recording these outcomes; of two outcomes of one attempt only the first counts,
    as when they are sent one by one."""
    first: dict[tuple[str, str], TaskOutcome] = {}
    for outcome in outcomes:
        first.setdefault((outcome.task_id, outcome.worker_id), outcome)
    return [_outcome_params(outcome) for outcome in first.values()]


def _record_outcomes(db: sqlite3.Connection, rows: Sequence[dict[str, object]]) -> None:
    """Apply ended attempts, inside the caller's transaction: history rows, task rows, dependents."""
    if not rows:
        return
    db.executemany(_COMPLETE_HISTORY, rows)
    ended: list[tuple[int, str, str, object]] = []
    left: list[tuple[int, object, object]] = []
    for row in rows:
        for seq, status in db.execute(_COMPLETE, row).fetchall():
            left.append((seq, row["result"], row["traceback"]))
            if status == TaskStatus.SUCCESS:
                db.execute(_MET, (seq,))
            elif status in _ENDED_WITHOUT_SUCCESS:
                ended.append((seq, str(row["task_id"]), status, row["finished_at"]))
    # What each attempt left replaces what an earlier attempt of its task left, even when it is nothing.
    db.executemany(_SET_RESULT, [kept for kept in left if kept[1] is not None or kept[2] is not None])
    if nothing := [seq for seq, result, traceback in left if result is None and traceback is None]:
        db.execute(_FORGET_RESULTS, (json.dumps(nothing),))
    # Only pending tasks are cancelled, and only running ones completed: cancelling after every outcome is
    # applied ends the same tasks, with the same errors, as cancelling after each.
    for seq, task_id, status, finished_at in ended:
        _cancel_dependents(db, seq, task_id, status, finished_at)


def _outcome_params(outcome: TaskOutcome) -> dict[str, object]:
    retrying = outcome.status is TaskStatus.PENDING
    finished_at = outcome.finished_at.timestamp()
    return {
        "task_id": outcome.task_id,
        "worker_id": outcome.worker_id,
        "status": outcome.status.value,
        "outcome": outcome.outcome.value,
        "finished_at": finished_at,
        "finished_at_or_null": None if retrying else finished_at,
        "retry_at": outcome.retry_at.timestamp() if retrying and outcome.retry_at else None,
        "result": outcome.result,
        "error": outcome.error,
        "traceback": outcome.traceback,
    }


def _record(row: Any) -> TaskRecord:
    """A TaskRecord from a row of _GET's (or _LIST's) columns."""
    (
        task_id,
        name,
        status,
        serializer,
        enqueued_at,
        eta,
        attempts,
        started_at,
        finished_at,
        worker_id,
        result,
        error,
        traceback,
        cancel_requested,
        depends_on,
        workflow_id,
        *options,
    ) = row
    return TaskRecord(
        id=task_id,
        name=name,
        status=TaskStatus(status),
        serializer=serializer,
        enqueued_at=_time(enqueued_at),
        eta=_time(eta),
        attempts=attempts,
        started_at=None if started_at is None else _time(started_at),
        finished_at=None if finished_at is None else _time(finished_at),
        worker_id=worker_id,
        result=result,
        error=error,
        traceback=traceback,
        options=_options(*options),
        cancel_requested=bool(cancel_requested),
        depends_on=_parents(depends_on),
        workflow_id=workflow_id,
    )


def _reserved(row: Any, worker_id: str, now: datetime, expires: datetime) -> ReservedTask:
    _, task_id, name, payload, serializer, attempts, enqueued_at, eta, *options, depends_on = row
    return ReservedTask(
        id=task_id,
        name=name,
        payload=payload,
        serializer=serializer,
        attempt=attempts,
        worker_id=worker_id,
        enqueued_at=_time(enqueued_at),
        eta=_time(eta),
        started_at=now,
        lease_expires_at=expires,
        options=_options(*options),
        depends_on=_parents(depends_on),
    )
