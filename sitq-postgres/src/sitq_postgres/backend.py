"""The PostgreSQL backend: one database shared by workers and producers on any number of hosts.

Each backend object owns an asyncpg pool (`pool_size` connections at most) and, once someone waits for
changes, joins the process's one connection that LISTENs on its schema's channel (see `listener`). A
change that is one statement (an enqueue without parents, a claim by id, a renewal) runs alone, atomic by
itself; one that is several (a claim records outcomes and takes back lost leases first; an ended attempt
may cancel the tasks depending on it) runs in one transaction, retried when PostgreSQL breaks a deadlock.
No transaction stays open while a task runs: a claim commits before its tasks start, and each outcome is
fenced by the worker that holds the task (`worker_id` in the WHERE clause), not by a lock.

The statements themselves are named in `queries`; `rows` maps their rows to sitq's models.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, Self, TypeVar

import asyncpg

from sitq.backend import Capability, SharedConnection
from sitq.changes import ChangeSignal, Subscription
from sitq.errors import BackendError, ConfigurationError, TaskNotFoundError
from sitq.models import AttemptRecord, Compaction, NewTask, ReservedTask, TaskOutcome, TaskRecord, TaskStatus
from sitq.schedules import StoredSchedule
from sitq.semantics import (
    CANCELLED_WHILE_RUNNING,
    ENDED_WITHOUT_SUCCESS,
    LOST_AFTER_WORKER,
    LOST_BEFORE_WORKER,
    NO_ATTEMPTS_LEFT,
)
from sitq_postgres import faults, limits, queries, schedules, url
from sitq_postgres import schema as sql_schema
from sitq_postgres.dependencies import cancel_dependents
from sitq_postgres.keys import store_checked
from sitq_postgres.listener import Listener, channel, listen, unlisten
from sitq_postgres.rows import (
    OUTCOME_WIDTH,
    TASK_WIDTH,
    attempt_record,
    claim_order,
    columns,
    outcome_rows,
    record,
    reserved,
    task_row,
)

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_DEADLOCK_RETRIES = 3
_RECOVERY_INTERVAL = timedelta(seconds=1)
"""How often claims look for lost leases while they find work (one after a short claim always looks)."""
_CLOSE_TIMEOUT = 10.0


class PostgresBackend:
    """Tasks in a schema of a PostgreSQL database, shared by every process that connects to it.

    `dsn` is a libpq URL or keyword string as asyncpg takes it; sitq's tables live in `schema`. `listen`
    wakes idle workers through LISTEN/NOTIFY; turn it off behind PgBouncer in transaction mode, and they
    look every `poll_interval` instead. `pool_size` bounds this object's connections (the process's
    listening connection comes on top), and `connect_timeout` how long opening one may take.
    """

    name: ClassVar[str] = "postgres"
    url_schemes: ClassVar[tuple[str, ...]] = url.SCHEMES
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.SHARED_STORE, Capability.TRANSACTIONAL_ENQUEUE}
    )

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = sql_schema.DEFAULT_SCHEMA,
        listen: bool = True,
        pool_size: int = url.DEFAULT_POOL_SIZE,
        connect_timeout: float = url.DEFAULT_CONNECT_TIMEOUT,
    ) -> None:
        if not isinstance(pool_size, int) or isinstance(pool_size, bool) or pool_size < 1:
            raise ConfigurationError(f"pool_size is a number of connections, at least 1, not {pool_size!r}")
        if not isinstance(connect_timeout, int | float) or not 0 < connect_timeout < math.inf:
            raise ConfigurationError(f"connect_timeout is seconds, more than 0, not {connect_timeout!r}")
        self._dsn = dsn
        self._schema = sql_schema.validate_name(schema)
        self._s = sql_schema.quoted(self._schema)
        self._listen = bool(listen)
        self._pool_size = pool_size
        self._connect_timeout = float(connect_timeout)
        self._where = str(url.parse(dsn).location) if dsn.startswith(url.SCHEMES) else "PostgreSQL"
        self._channel = channel(self._schema)
        self._lock_prefix = f"sitq limit {self._schema} "
        self._shared = SharedConnection()
        self._signal = ChangeSignal()
        self._pool: asyncpg.Pool | None = None
        self._database = ""
        self._version = 0
        self._listener: Listener | None = None
        self._next_recovery: datetime | None = None
        self._came_up_short = False

    def __repr__(self) -> str:
        return (
            f"PostgresBackend(<{self._where}>, schema={self._schema!r}, listen={self._listen!r}, "
            f"pool_size={self._pool_size!r})"
        )

    @property
    def schema(self) -> str:
        """The schema that holds sitq's tables."""
        return self._schema

    @property
    def listener(self) -> Listener | None:
        """The process's LISTEN connection this object has joined (by its first `subscribe` while
        connected), or None."""
        return self._listener

    @classmethod
    def from_url(cls, url_: str) -> Self:
        """Build from a libpq URL (see `sitq_postgres.url`), with sitq's options in its query."""
        parsed = url.parse(url_)
        options = parsed.options
        return cls(
            parsed.dsn,
            schema=options.get("schema", sql_schema.DEFAULT_SCHEMA),
            listen=url.flag("listen", options.get("listen", "true")),
            pool_size=int(
                url.number("pool_size", options.get("pool_size", str(url.DEFAULT_POOL_SIZE)), kind=int)
            ),
            connect_timeout=url.number(
                "connect_timeout",
                options.get("connect_timeout", str(url.DEFAULT_CONNECT_TIMEOUT)),
                kind=float,
            ),
        )

    # Opening and closing

    @property
    def is_connected(self) -> bool:
        return self._shared.is_open

    async def connect(self) -> None:
        await self._shared.acquire(self._open)

    async def close(self) -> None:
        await self._shared.release(self._close)

    async def _connect_one(self) -> asyncpg.Connection:
        """One connection outside the pool (the listener's)."""
        return await asyncpg.connect(self._dsn, timeout=self._connect_timeout)

    async def _open(self) -> None:
        try:
            pool = await asyncpg.create_pool(
                self._dsn,
                min_size=1,
                max_size=self._pool_size,
                timeout=self._connect_timeout,
                reset=_nothing_to_reset,
            )
        except faults.CONNECT_ERRORS as exc:
            raise faults.cannot_connect(self._where, exc) from exc
        try:
            async with pool.acquire() as connection:
                self._version = await sql_schema.prepare(connection, self._schema, self._where)
                self._database = await connection.fetchval("SELECT current_database()")
        except BaseException as exc:
            pool.terminate()
            if isinstance(exc, faults.DRIVER_ERRORS):
                raise faults.backend_error(
                    f"preparing schema {self._schema!r} of {self._where}", exc
                ) from exc
            raise
        self._pool = pool
        if self._signal.has_subscribers:
            self._ensure_listening()

    async def _close(self) -> None:
        pool, self._pool = self._pool, None
        joined, self._listener = self._listener, None
        try:
            if joined is not None:
                await unlisten(self._dsn, joined, self._signal)
        finally:
            # A pool left in a loop that has since ended (see SharedConnection) cannot be awaited.
            if pool is not None:
                try:
                    await asyncio.wait_for(pool.close(), _CLOSE_TIMEOUT)
                except faults.DRIVER_ERRORS:
                    pool.terminate()

    @contextlib.asynccontextmanager
    async def _connection(self, doing: str) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy]:
        """A pooled connection, for this coroutine alone; driver errors become `BackendError`s naming what
        was being done."""
        self._shared.check_loop()
        if self._pool is None:
            raise BackendError(
                f"the PostgreSQL backend for {self._where} is not connected; call connect() or use the queue"
            )
        try:
            async with self._pool.acquire() as connection:
                yield connection
        except faults.DRIVER_ERRORS as exc:
            raise faults.backend_error(f"{doing} in schema {self._schema!r} of {self._where}", exc) from exc

    async def _atomically(
        self, doing: str, body: Callable[[Any], Awaitable[_T]], *, transaction: bool = True
    ) -> _T:
        """Run `body` with a pooled connection, in one transaction unless its statements are each atomic
        alone (`transaction=False`: a round trip to the server each way fewer); run it again when
        PostgreSQL breaks a deadlock by rolling it back (two outcomes cascading into one dependent, say)."""
        async with self._connection(doing) as connection:
            for retry in range(_DEADLOCK_RETRIES, -1, -1):
                try:
                    return await (_in_transaction(connection, body) if transaction else body(connection))
                except asyncpg.TransactionRollbackError:
                    if not retry:
                        raise
        raise AssertionError("unreachable: the last try returns or raises")

    def _sql(self, statement: str) -> str:
        return queries.in_schema(statement, self._s)

    def _notify(self) -> None:
        """Wake this object's waiters at once (other processes hear the NOTIFY)."""
        self._signal.notify()

    # The Backend protocol

    async def enqueue(self, tasks: Sequence[NewTask]) -> list[str]:
        doing = f"storing {len(tasks)} new task(s)"
        task_ids = [task.id for task in tasks]
        if any(task.depends_on or task.unique_key is not None for task in tasks):
            task_ids = await self._atomically(
                doing,
                lambda connection: store_checked(connection, self._sql, self._channel, self._schema, tasks),
            )
        else:
            arrays = columns((task_row(task, unmet=0) for task in tasks), TASK_WIDTH)
            async with self._connection(doing) as connection:  # even an empty batch checks the connection
                if tasks:
                    await connection.execute(self._sql(queries.INSERT_AND_NOTIFY), *arrays, self._channel)
        if any(task.id == task_id for task, task_id in zip(tasks, task_ids, strict=True)):
            self._notify()
        return task_ids

    async def enqueue_in_transaction(self, connection: object, tasks: Sequence[NewTask]) -> list[str]:
        """Store the tasks through the application's own asyncpg connection (or pooled connection) to this
        backend's database, inside the transaction it has open; the application commits or rolls back.
        A savepoint keeps a refused batch from leaving rows (or an aborted transaction) behind."""
        if not isinstance(connection, asyncpg.Connection | asyncpg.pool.PoolConnectionProxy):
            raise ConfigurationError(
                "the PostgreSQL backend enqueues in a transaction through the application's own asyncpg "
                f"Connection (or a connection from an asyncpg pool) to {self._where}, not through "
                f"{type(connection).__name__}"
            )
        if not connection.is_in_transaction():
            raise ConfigurationError(
                "the application's asyncpg connection has no transaction open: enqueue inside "
                "`async with connection.transaction():`, so the tasks commit with the application's writes"
            )
        async with self._connection("checking the application's connection"):
            pass  # connected, in this loop: the schema is in place
        doing = f"storing {len(tasks)} new task(s) in the application's transaction"
        try:
            task_ids = await _in_transaction(connection, lambda same: self._store_in_application(same, tasks))
        except asyncpg.UndefinedTableError as exc:
            raise ConfigurationError(
                f"the application's connection does not see sitq's schema {self._schema!r} ({exc}): "
                f"connect it to the queue's database, {self._where}"
            ) from exc
        except faults.DRIVER_ERRORS as exc:
            raise faults.backend_error(doing, exc) from exc
        self._notify()
        return task_ids

    async def _store_in_application(self, connection: Any, tasks: Sequence[NewTask]) -> list[str]:
        """Check that the application's connection reaches this database and schema, then store."""
        database, version = await connection.fetchrow(self._sql(queries.SAME_STORE))
        if database != self._database or version != self._version:
            raise ConfigurationError(
                f"the application's connection is to database {database!r}, schema {self._schema!r} at "
                f"version {version}; the queue's is {self._database!r} at version {self._version}: "
                "connect it to the queue's database"
            )
        return await store_checked(connection, self._sql, self._channel, self._schema, tasks)

    async def _recover_lost(self, connection: Any, now: datetime, *, end: bool) -> list[str]:
        """Take back the tasks whose leases expired before `now`: pending again, or with `end`, also ended
        (failed, or cancelled as requested). Return the ids of those ended, their dependents cancelled,
        which needs the caller's transaction; without `end` it is one statement, atomic alone."""
        recovered = await connection.fetch(
            self._sql(queries.RECOVER_LOST),
            now,
            end,
            LOST_BEFORE_WORKER,
            LOST_AFTER_WORKER,
            NO_ATTEMPTS_LEFT,
            CANCELLED_WHILE_RUNNING,
        )
        ended = []
        # In enqueue order: the order of the cascades is part of the stored errors.
        for seq, task_id, status, finished_at in sorted(recovered):
            if status != TaskStatus.PENDING:
                ended.append(task_id)
                await cancel_dependents(connection, self._sql, seq, task_id, status, finished_at)
        return ended

    async def _record_outcomes(self, connection: Any, outcomes: Sequence[TaskOutcome]) -> bool:
        """Apply ended attempts (see `queries.COMPLETE`), and cancel the dependents of those that ended
        without success, in the caller's transaction if it has one; True if there were any."""
        rows = outcome_rows(outcomes)
        if not rows:
            return False
        ended = await connection.fetch(
            self._sql(queries.COMPLETE), *columns(rows, OUTCOME_WIDTH), self._channel
        )
        # Only pending tasks are cancelled, and only running ones completed: cancelling after every outcome
        # is applied ends the same tasks, with the same errors, as cancelling after each.
        for seq, task_id, status, finished_at in ended:
            await cancel_dependents(connection, self._sql, seq, task_id, status, finished_at)
        return True

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
        """Record the outcomes (see `_record`), then claim in one statement, no transaction around them:
        the worker's usual cycle costs two round trips to the server. Lost leases are taken back first
        once a second (by `now`), and after a claim that came up short, so that a dead worker's tasks are
        neither starved by a busy queue nor looked for at every claim."""
        if outcomes:
            await self._record(outcomes)
            self._notify()  # finished tasks, which someone may be waiting for
        expires = now + lease
        names = list(dict.fromkeys(queues))
        chosen: str | list[str] = names[0] if len(names) == 1 else names
        sql = self._sql(queries.CLAIM_ONE_QUEUE if len(names) == 1 else queries.CLAIM_QUEUES)

        async def claim(connection: Any) -> list[Any]:
            if self._came_up_short or self._next_recovery is None or now >= self._next_recovery:
                self._next_recovery = now + _RECOVERY_INTERVAL
                await self._recover_lost(connection, now, end=False)
            if not names or limit <= 0:
                return []
            # Tasks with a limit key: a first read of each key's first task, without locks, says which
            # keys may start one (a key held back costs one row).
            hopeful = (await limits.read(connection, self._sql, now, 1, names)).heads_admitted(now)
            if hopeful:
                async with connection.transaction():
                    rows = await limits.claim(
                        connection,
                        self._sql,
                        self._lock_prefix,
                        hopeful,
                        worker_id=worker_id,
                        now=now,
                        expires=expires,
                        limit=limit,
                        queues=names,
                    )
            else:
                rows = list(await connection.fetch(sql, worker_id, now, expires, limit, chosen))
            self._came_up_short = len(rows) < limit
            return rows

        rows = await self._atomically("claiming tasks", claim, transaction=False)
        return [reserved(row, worker_id, now, expires) for row in sorted(rows, key=claim_order)]

    async def claim_task(
        self, task_id: str, *, worker_id: str, now: datetime, lease: timedelta
    ) -> ReservedTask | None:
        expires = now + lease

        async def claim(connection: Any) -> Any:
            await self._recover_lost(connection, now, end=False)
            if not await limits.room_for_task(connection, self._sql, self._lock_prefix, task_id, now):
                return None
            return await connection.fetchrow(self._sql(queries.CLAIM_TASK), worker_id, now, expires, task_id)

        row = await self._atomically(f"claiming task {task_id!r}", claim)
        return None if row is None else reserved(row, worker_id, now, expires)

    async def recover_lost(self, *, now: datetime) -> list[TaskRecord]:
        async def recover(connection: Any) -> list[Any]:
            ended = await self._recover_lost(connection, now, end=True)
            return list(await connection.fetch(self._sql(queries.GET_MANY), ended)) if ended else []

        rows = await self._atomically("recovering the tasks of dead workers", recover)
        if rows:  # a finished task, which someone may be waiting for
            self._notify()
        return [record(row) for row in rows]

    async def renew(
        self, task_ids: Sequence[str], *, worker_id: str, now: datetime, lease: timedelta
    ) -> set[str]:
        # A longer lease makes nothing claimable or finished, so no waiter needs waking.
        async with self._connection(f"renewing the leases of {len(task_ids)} task(s)") as connection:
            rows = await connection.fetch(self._sql(queries.RENEW), now + lease, list(task_ids), worker_id)
        return {task_id for task_id, cancel_requested in rows if cancel_requested}

    async def release(self, task_ids: Sequence[str], *, worker_id: str, now: datetime) -> None:
        ids = list(dict.fromkeys(task_ids))

        async def release(connection: Any) -> bool:
            rows = await connection.fetch(
                self._sql(queries.RELEASE), now, ids, worker_id, CANCELLED_WHILE_RUNNING
            )
            # In the order they were given: the order of the cascades is part of the stored errors.
            order = {task_id: index for index, task_id in enumerate(ids)}
            for seq, task_id, status in sorted(rows, key=lambda row: order[row["id"]]):
                if status == TaskStatus.CANCELLED:
                    await cancel_dependents(connection, self._sql, seq, task_id, status, now)
            if rows:
                await connection.execute(queries.NOTIFY, self._channel)
            return bool(rows)

        if await self._atomically(f"releasing {len(task_ids)} task(s)", release):
            self._notify()

    async def cancel(self, task_id: str, *, now: datetime) -> TaskStatus | None:
        async def cancel(connection: Any) -> tuple[TaskStatus | None, bool]:
            changed = await connection.fetchrow(self._sql(queries.CANCEL), task_id, now)
            if changed is None:
                found = await connection.fetchval(self._sql(queries.STATUS), task_id)
                return (None if found is None else TaskStatus(found)), False
            seq, status = changed
            if status == TaskStatus.CANCELLED:
                await cancel_dependents(connection, self._sql, seq, task_id, status, now)
                await connection.execute(queries.NOTIFY, self._channel)
                return TaskStatus.CANCELLED, True
            return TaskStatus(status), False

        status, cancelled = await self._atomically(f"cancelling task {task_id!r}", cancel)
        if cancelled:
            self._notify()
        return status

    async def complete(self, outcomes: Sequence[TaskOutcome]) -> None:
        doing = f"recording {len(outcomes)} finished task(s)"
        if not outcomes:
            async with self._connection(doing):
                return  # nothing to record, but using an unconnected backend is still an error
        await self._record(outcomes)
        self._notify()

    async def _record(self, outcomes: Sequence[TaskOutcome]) -> None:
        """Record outcomes in one statement, atomic alone; in a transaction only where one may cancel
        dependents (a failure, a time-out, a cancellation), whose cascade must commit with it."""
        await self._atomically(
            f"recording {len(outcomes)} finished task(s)",
            lambda connection: self._record_outcomes(connection, outcomes),
            transaction=any(outcome.status in ENDED_WITHOUT_SUCCESS for outcome in outcomes),
        )

    async def history(self, task_id: str) -> list[AttemptRecord]:
        async with self._connection(f"reading the history of task {task_id!r}") as connection:
            rows = await connection.fetch(self._sql(queries.HISTORY), task_id)
        return [attempt_record(row) for row in rows]

    async def get(self, task_id: str) -> TaskRecord | None:
        async with self._connection(f"reading task {task_id!r}") as connection:
            row = await connection.fetchrow(self._sql(queries.GET), task_id)
        return None if row is None else record(row)

    async def list_tasks(
        self, *, statuses: Sequence[TaskStatus], queues: Sequence[str] | None, limit: int, after: str | None
    ) -> list[TaskRecord]:
        chosen = [TaskStatus(status).value for status in statuses]
        async with self._connection("listing tasks") as connection:
            cursor = 0
            if after is not None:
                cursor = await connection.fetchval(self._sql(queries.CURSOR), after)
                if cursor is None:
                    raise TaskNotFoundError(after)
            rows = await connection.fetch(
                self._sql(queries.LIST),
                cursor,
                chosen,
                None if queues is None else list(queues),
                max(limit, 0),
            )
        return [record(row) for row in rows]

    async def stats(self) -> dict[tuple[str, TaskStatus], int]:
        async with self._connection("counting tasks") as connection:
            rows = await connection.fetch(self._sql(queries.STATS))
        return {(queue, TaskStatus(status)): count for queue, status, count in rows}

    async def requeue(self, task_id: str, *, now: datetime) -> TaskStatus | None:
        async def requeue(connection: Any) -> TaskStatus | None:
            if await connection.fetchval(self._sql(queries.REQUEUE), task_id, now) is not None:
                await connection.execute(queries.NOTIFY, self._channel)
                return TaskStatus.PENDING
            found = await connection.fetchval(self._sql(queries.STATUS), task_id)
            return None if found is None else TaskStatus(found)

        status = await self._atomically(f"requeueing task {task_id!r}", requeue)
        if status is TaskStatus.PENDING:
            self._notify()
        return status

    async def purge(self, *, finished_before: datetime, queues: Sequence[str] | None) -> int:
        # Deleting finished tasks makes nothing claimable, so no waiter needs waking.
        async with self._connection("purging finished tasks") as connection:
            done = await connection.execute(
                self._sql(queries.PURGE), finished_before, None if queues is None else list(queues)
            )
        return int(done.rpartition(" ")[2])  # the command tag: "DELETE <count>"

    async def workflow_counts(self, workflow_id: str) -> dict[TaskStatus, int]:
        async with self._connection(f"counting the tasks of workflow {workflow_id!r}") as connection:
            rows = await connection.fetch(self._sql(queries.WORKFLOW_COUNTS), workflow_id)
        return {TaskStatus(status): count for status, count in rows}

    async def next_due(self, queues: Sequence[str]) -> datetime | None:
        names = list(dict.fromkeys(queues))
        async with self._connection("finding the next due task") as connection:
            free: datetime | None = await connection.fetchval(self._sql(queries.NEXT_DUE), names)
            limited = await limits.next_due(connection, self._sql, names)
        return min((due for due in (free, limited) if due is not None), default=None)

    async def put_schedule(self, schedule: StoredSchedule) -> None:
        async with self._connection(f"storing schedule {schedule.name!r}") as connection:
            await connection.execute(self._sql(queries.PUT_SCHEDULE), *schedules.schedule_row(schedule))

    async def delete_schedule(self, name: str) -> bool:
        async with self._connection(f"deleting schedule {name!r}") as connection:
            deleted: str = await connection.execute(self._sql(queries.DELETE_SCHEDULE), name)
        return deleted == "DELETE 1"

    async def list_schedules(self) -> list[StoredSchedule]:
        async with self._connection("listing schedules") as connection:
            rows = await connection.fetch(self._sql(queries.LIST_SCHEDULES))
        return [schedules.stored_schedule(row) for row in rows]

    async def pause_schedule(self, name: str, *, paused: bool, next_run: datetime | None) -> bool:
        async with self._connection(f"pausing or resuming schedule {name!r}") as connection:
            changed: str = await connection.execute(self._sql(queries.PAUSE_SCHEDULE), name, paused, next_run)
        return changed == "UPDATE 1"

    async def fire_schedule(
        self, schedule_id: str, *, due: datetime, next_run: datetime, task: NewTask | None
    ) -> bool:
        fields = (schedule_id, due, next_run, None if task is None else task.eta)
        fired = await self._atomically(
            f"firing schedule {schedule_id!r}",
            lambda connection: schedules.fire(connection, self._sql, self._channel, fields, task),
        )
        if fired and task is not None:
            self._notify()
        return fired

    async def compact(self) -> Compaction:
        """VACUUM sitq's tables: the space of deleted rows is reused, and empty pages at the end of a
        table are given back to the system. It never blocks workers (VACUUM FULL, which rewrites whole
        tables under an exclusive lock, would); the sizes are what PostgreSQL reports for the tables,
        their indexes and TOAST data."""
        async with self._connection("compacting sitq's tables") as connection:
            before = await connection.fetchval(queries.SIZE, self._schema, list(queries.TABLES))
            for table in queries.TABLES:  # VACUUM cannot run inside a transaction, nor take parameters
                await connection.execute(self._sql(queries.VACUUM).replace("{table}", table))
            after = await connection.fetchval(queries.SIZE, self._schema, list(queries.TABLES))
        return Compaction(bytes_before=before, bytes_after=after)

    # Change notification

    def subscribe(self) -> Subscription:
        """Woken by this object's commits and, through LISTEN (unless `listen` is off), by every other
        process's enqueues and outcomes."""
        subscription = self._signal.subscribe()
        self._ensure_listening()
        return subscription

    def _ensure_listening(self) -> None:
        if self._listen and self._pool is not None:
            self._listener = listen(self._dsn, self._channel, self._connect_one, self._signal)

    async def describe(self) -> dict[str, str]:
        async with self._connection("describing the database") as connection:
            synchronous_commit, fsync, server_version, database = await connection.fetchrow(queries.DESCRIBE)
        if fsync != "on":
            durability = (
                "fsync is off on the server: an OS crash or a power cut may lose committed tasks, or "
                "corrupt the database"
            )
        elif synchronous_commit == "off":
            durability = (
                "commits survive a PostgreSQL crash; an OS crash or a power cut may lose the last ones "
                "(synchronous_commit=off)"
            )
        else:
            durability = (
                "every commit survives a PostgreSQL crash, an OS crash and a power cut "
                f"(synchronous_commit={synchronous_commit}, fsync=on)"
            )
        return {
            "where": self._where,
            "database": database,
            "schema": self._schema,
            "schema_version": str(self._version),
            "durability": durability,
            "synchronous_commit": synchronous_commit,
            "fsync": fsync,
            "server_version": server_version,
            "pool_size": str(self._pool_size),
            "listen": "LISTEN/NOTIFY wakes idle workers" if self._listen else "off: idle workers poll",
        }


async def _nothing_to_reset(connection: asyncpg.Connection) -> None:
    """What a pooled connection needs reset before its next use: nothing. asyncpg's default resets
    settings, cursors, LISTENs and advisory locks with a round trip to the server at every release;
    sitq's pooled connections change none of those (the LISTEN is on a connection of its own, and the
    migration's advisory lock ends with its transaction), and asyncpg still rolls back a transaction
    left open."""


async def _in_transaction(connection: Any, body: Callable[[Any], Awaitable[_T]]) -> _T:
    """Run `body` in a transaction of `connection` (a savepoint, inside one already open): committed if
    it returns, rolled back if it raises; a failed rollback never replaces the error that caused it."""
    transaction = connection.transaction()
    await transaction.start()
    try:
        result = await body(connection)
    except BaseException as exc:
        try:
            await transaction.rollback()
        except faults.DRIVER_ERRORS as failed:
            faults.rollback_failed(exc, failed)
        raise
    await transaction.commit()
    return result
