"""The SQLite backend: one durable file shared by any number of producer and worker processes.

Each backend object owns one aiosqlite connection (one thread) in autocommit mode, guarded by one
asyncio.Lock so that coroutines never interleave statements into each other's transactions. Claims are
single `UPDATE ... RETURNING` statements: SQLite takes the write lock before such a statement reads, so a
claim is atomic across processes without an explicit transaction, and costs one awaited call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self
from urllib.parse import parse_qsl, unquote, urlsplit

from sitq.backend import SharedConnection
from sitq.changes import ChangeSignal, Subscription
from sitq.errors import BackendError, ConfigurationError
from sitq.models import NewTask, ReservedTask, TaskOutcome, TaskRecord, TaskStatus
from sitq_sqlite import schema

if TYPE_CHECKING:
    import aiosqlite

logger = logging.getLogger(__name__)

Synchronous = Literal["full", "normal"]

_URL_FORMS = (
    "'sqlite:///relative/tasks.db' or 'sqlite:////absolute/tasks.db', optionally '?synchronous=normal'"
)
_REQUIRED_SQLITE = (3, 35, 0)  # UPDATE ... RETURNING
# While someone waits, other processes' commits are looked for this often: quickly right after a change,
# when more usually follow, then backing off to a cheap steady rate.
_FIRST_POLL_DELAY = 0.002
_MAX_POLL_DELAY = 0.1

# The literal status values in these WHERE clauses must match the partial indexes in schema.py.
_INSERT = (
    "INSERT INTO tasks (id, name, status, payload, serializer, enqueued_at, eta)"
    " VALUES (?, ?, 'pending', ?, ?, ?, ?)"
)
_RESERVE = (
    "UPDATE tasks SET status = 'in_progress', attempts = attempts + 1, worker_id = :worker_id,"
    " started_at = :now, lease_expires_at = :expires"
)
_RESERVED_COLUMNS = "RETURNING seq, id, name, payload, serializer, attempts, enqueued_at, eta"
# Both branches walk their partial index; the merge stops after `limit` rows, so a claim reads about
# `limit` rows however many tasks the file holds. Ties on eta go to the older task, as in the memory backend.
_CLAIM = f"""
{_RESERVE}
WHERE seq IN (
    SELECT seq FROM (
        SELECT seq, eta FROM tasks WHERE status = 'pending' AND eta <= :now
        UNION ALL
        SELECT seq, eta FROM tasks WHERE status = 'in_progress' AND lease_expires_at < :now
        ORDER BY eta, seq LIMIT :limit
    )
)
{_RESERVED_COLUMNS}
"""
_CLAIM_TASK = f"""
{_RESERVE}
WHERE id = :task_id AND (status = 'pending' OR (status = 'in_progress' AND lease_expires_at < :now))
{_RESERVED_COLUMNS}
"""
_RENEW = "UPDATE tasks SET lease_expires_at = ? WHERE id = ? AND status = 'in_progress' AND worker_id = ?"
_COMPLETE = (
    "UPDATE tasks SET status = ?, finished_at = ?, result = ?, error = ?, traceback = ?,"
    " lease_expires_at = NULL WHERE id = ? AND status = 'in_progress' AND worker_id = ?"
)
_GET = (
    "SELECT id, name, status, serializer, enqueued_at, eta, attempts, started_at, finished_at, worker_id,"
    " result, error, traceback FROM tasks WHERE id = ?"
)
_NEXT_DUE = (
    "SELECT min(due) FROM (SELECT min(eta) AS due FROM tasks WHERE status = 'pending'"
    " UNION ALL SELECT min(lease_expires_at) FROM tasks WHERE status = 'in_progress')"
)


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
        self, path: str | os.PathLike[str], *, synchronous: Synchronous = "full", busy_timeout: float = 30.0
    ) -> None:
        if synchronous not in ("full", "normal"):
            raise ConfigurationError(f"synchronous must be 'full' or 'normal', not {synchronous!r}")
        if busy_timeout < 0:
            raise ConfigurationError(f"busy_timeout is seconds to wait, at least 0, not {busy_timeout!r}")
        self._path = os.path.abspath(path)
        # Objects on the same file find each other by this key, whatever symlinks led to it.
        self._file = os.path.realpath(path)
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._shared = SharedConnection()
        self._lock = asyncio.Lock()
        self._signal = ChangeSignal()
        self._conn: aiosqlite.Connection | None = None
        self._data_version = 0
        self._watcher: asyncio.Task[None] | None = None

    @property
    def path(self) -> str:
        """The absolute path of the database file."""
        return self._path

    def __repr__(self) -> str:
        return f"SQLiteBackend({self._path!r}, synchronous={self._synchronous!r})"

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
        synchronous: Synchronous = "full"
        for index, (key, value) in enumerate(options):
            if key != "synchronous":
                raise ConfigurationError(
                    f"unknown option {key!r} in {url!r}: the only one is 'synchronous'; use {_URL_FORMS}"
                )
            if any(other == key for other, _ in options[:index]):
                raise ConfigurationError(f"{url!r} gives {key!r} more than once; give it once")
            match value:
                case "full" | "normal":
                    synchronous = value
                case _:
                    raise ConfigurationError(
                        f"synchronous must be 'full' or 'normal', not {value!r}, in {url!r}"
                    )
        return cls(path, synchronous=synchronous)

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
            opened = await asyncio.to_thread(
                sqlite3.connect,
                self._path,
                isolation_level=None,
                timeout=self._busy_timeout,
                check_same_thread=False,  # from here on only aiosqlite's thread uses it
            )
        except sqlite3.Error as exc:
            raise BackendError(_cannot_open(self._path, exc)) from exc
        import aiosqlite  # here, not at the top: listing the installed backends must stay cheap

        conn = aiosqlite.Connection(lambda: opened, iter_chunk_size=64)
        # aiosqlite's thread is not a daemon, so a backend its user never closed (a module-level queue in
        # a web app, say) would keep the interpreter from exiting. Every write is committed before it
        # returns, so letting the thread die with the process loses nothing.
        conn._thread.daemon = True  # private, but aiosqlite offers no public way to set it
        await conn
        try:
            self._data_version = await self._prepare(conn)
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        _open_files.add(self._file, self._signal)
        self._ensure_watching()

    async def _prepare(self, conn: aiosqlite.Connection) -> int:
        """Configure the fresh connection and check (or migrate) the schema; return its data version."""
        try:
            await self._use_wal(conn)
            await conn.execute(f"PRAGMA synchronous = {self._synchronous.upper()}")
            await schema.prepare(conn, repr(self._path))
            return await _data_version(conn)
        except sqlite3.Error as exc:
            if getattr(exc, "sqlite_errorname", None) == "SQLITE_NOTADB":
                raise BackendError(
                    f"{self._path!r} is not a SQLite database; give sitq a new file or an existing sitq one"
                ) from exc
            raise BackendError(f"opening the SQLite database {self._path!r} failed: {exc}") from exc

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
        try:
            if watcher is not None:
                watcher.cancel()
                await asyncio.wait([watcher])
        finally:
            # Always reached: aiosqlite's thread is not a daemon, so an unclosed connection keeps the
            # process alive at exit.
            async with self._lock:
                conn, self._conn = self._conn, None
                _open_files.discard(self._file, self._signal)
                if conn is not None:
                    try:
                        await conn.close()
                    except sqlite3.Error as exc:
                        raise BackendError(
                            f"closing the SQLite database {self._path!r} failed: {exc}"
                        ) from exc

    @contextlib.asynccontextmanager
    async def _connection(self, doing: str) -> AsyncIterator[aiosqlite.Connection]:
        """The open connection, for this coroutine alone; driver errors become `BackendError`s naming
        what was being done."""
        async with self._lock:
            if self._conn is None:
                raise BackendError(
                    f"the SQLite backend for {self._path!r} is not connected; call connect() or use the queue"
                )
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise BackendError(f"{doing} in the SQLite database {self._path!r} failed: {exc}") from exc

    async def _write(self, doing: str, sql: str, rows: Sequence[Sequence[object]], *, notify: bool) -> None:
        """Run `sql` once per row, all or nothing.

        One row is one autocommit statement, so one awaited call; a batch shares one transaction, so
        it commits, and syncs to disk, once.
        """
        async with self._connection(doing) as conn:
            if len(rows) == 1:
                await conn.execute(sql, rows[0])
            elif rows:
                await conn.execute("BEGIN IMMEDIATE")
                try:
                    await conn.executemany(sql, rows)
                    await conn.execute("COMMIT")
                except BaseException:
                    await conn.rollback()
                    raise
        if rows and notify:
            _open_files.notify(self._file)

    # The Backend protocol

    async def enqueue(self, tasks: Sequence[NewTask]) -> None:
        rows = [
            (
                task.id,
                task.name,
                task.payload,
                task.serializer,
                task.enqueued_at.timestamp(),
                task.eta.timestamp(),
            )
            for task in tasks
        ]
        await self._write(f"storing {len(rows)} new task(s)", _INSERT, rows, notify=True)

    async def claim(
        self, *, worker_id: str, now: datetime, lease: timedelta, limit: int
    ) -> list[ReservedTask]:
        expires = now + lease
        params = {
            "worker_id": worker_id,
            "now": now.timestamp(),
            "expires": expires.timestamp(),
            "limit": max(limit, 0),  # SQLite reads a negative LIMIT as no limit at all
        }
        async with self._connection("claiming tasks") as conn:
            rows = await conn.execute_fetchall(_CLAIM, params)
        # RETURNING yields rows in no promised order: sort as the claim chose them, by eta then enqueue order.
        claimed = [
            _reserved(row, worker_id, now, expires) for row in sorted(rows, key=lambda r: (r[7], r[0]))
        ]
        return claimed

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
        async with self._connection(f"claiming task {task_id!r}") as conn:
            rows = list(await conn.execute_fetchall(_CLAIM_TASK, params))
        return _reserved(rows[0], worker_id, now, expires) if rows else None

    async def renew(
        self, task_ids: Sequence[str], *, worker_id: str, now: datetime, lease: timedelta
    ) -> None:
        expires = (now + lease).timestamp()
        rows = [(expires, task_id, worker_id) for task_id in task_ids]
        # A longer lease makes nothing claimable or finished, so no waiter needs waking (as in memory).
        await self._write(f"renewing the leases of {len(rows)} task(s)", _RENEW, rows, notify=False)

    async def complete(self, outcomes: Sequence[TaskOutcome]) -> None:
        rows = [
            (
                outcome.status.value,
                outcome.finished_at.timestamp(),
                outcome.result,
                outcome.error,
                outcome.traceback,
                outcome.task_id,
                outcome.worker_id,
            )
            for outcome in outcomes
        ]
        await self._write(f"recording {len(rows)} finished task(s)", _COMPLETE, rows, notify=True)

    async def get(self, task_id: str) -> TaskRecord | None:
        async with self._connection(f"reading task {task_id!r}") as conn:
            rows = list(await conn.execute_fetchall(_GET, (task_id,)))
        if not rows:
            return None
        (
            _,
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
        ) = rows[0]
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
        )

    async def next_due(self) -> datetime | None:
        async with self._connection("finding the next due task") as conn:
            ((due,),) = await conn.execute_fetchall(_NEXT_DUE)
        return None if due is None else _time(due)

    # Change notification

    def subscribe(self) -> Subscription:
        """Woken by this object's commits, by other objects of this process open on the same file, and by
        other processes (seen by polling while anyone is subscribed)."""
        subscription = self._signal.subscribe()
        self._ensure_watching()
        return subscription

    def _ensure_watching(self) -> None:
        if self._conn is None or not self._signal.has_subscribers:
            return
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(
                self._watch(), name=f"sitq-sqlite change watcher for {self._path}"
            )

    async def _watch(self) -> None:
        """Poll `PRAGMA data_version`, which moves when any other connection commits, while anyone waits."""
        delay = _FIRST_POLL_DELAY
        while self._signal.has_subscribers:
            await asyncio.sleep(delay)
            try:
                async with self._connection("looking for other processes' changes") as conn:
                    version = await _data_version(conn)
            except BackendError:
                logger.warning("cannot watch %s for changes; retrying", self._path, exc_info=True)
                delay = _MAX_POLL_DELAY
                continue
            if version == self._data_version:
                delay = min(delay * 2, _MAX_POLL_DELAY)
            else:
                self._data_version = version
                delay = _FIRST_POLL_DELAY
                self._signal.notify()


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


async def _data_version(conn: aiosqlite.Connection) -> int:
    ((version,),) = await conn.execute_fetchall("PRAGMA data_version")
    return int(version)


def _cannot_open(where: str, exc: sqlite3.Error) -> str:
    directory = os.path.dirname(where)
    if not os.path.isdir(directory):
        reason = f"the directory {directory!r} does not exist; create it first"
    elif os.path.isdir(where):
        reason = "that is a directory; give the path of a database file"
    else:
        reason = str(exc)
    return f"cannot open the SQLite database {where!r}: {reason}"


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _reserved(row: Any, worker_id: str, now: datetime, expires: datetime) -> ReservedTask:
    _, task_id, name, payload, serializer, attempts, enqueued_at, eta = row
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
    )
