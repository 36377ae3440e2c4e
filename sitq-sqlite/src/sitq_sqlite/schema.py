"""The tables sitq keeps in a SQLite file, and the migrations that bring an older file up to date.

A sitq file is marked by `PRAGMA application_id` and versioned by `PRAGMA user_version`: the version is the
number of migrations applied. Migrations only ever append to `MIGRATIONS`; an older file is upgraded in
place, inside one `BEGIN IMMEDIATE` transaction, so two processes opening a fresh file at once cannot both
migrate it, and a crash mid-upgrade leaves the old schema intact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from sitq.errors import BackendError
from sitq_sqlite.connection import on_thread, roll_back

if TYPE_CHECKING:
    import aiosqlite

APPLICATION_ID = 0x73697471
"""b"sitq" read as a big-endian integer, so that a hex dump of the header shows who owns the file."""

MIGRATIONS: list[tuple[str, ...]] = [
    # 1: one row per task. Times are REAL unix seconds (UTC). The two partial indexes are all that claiming
    # and next_due read, so their cost does not grow with the number of finished tasks; their WHERE clauses
    # must match the queries in queries.py word for word, or SQLite will not use them.
    (
        """
        CREATE TABLE tasks (
            seq INTEGER PRIMARY KEY,  -- enqueue order, which breaks ties on eta; VACUUM keeps it
            id TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            status TEXT NOT NULL,
            payload BLOB NOT NULL,
            serializer TEXT NOT NULL,
            enqueued_at REAL NOT NULL,
            eta REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            worker_id TEXT,
            started_at REAL,
            lease_expires_at REAL,
            finished_at REAL,
            result BLOB,
            error TEXT,
            traceback TEXT
        )
        """,
        "CREATE INDEX tasks_pending_by_eta ON tasks (eta) WHERE status = 'pending'",
        "CREATE INDEX tasks_in_progress_by_lease ON tasks (lease_expires_at) WHERE status = 'in_progress'",
    ),
    # 2: task options, cancellation requests and a history of attempts. Rows of version 1 get the default
    # options; a NULL `retry` means `RetryPolicy()`. `retry` is JSON of the RetryPolicy fields. Claims walk
    # tasks_pending_by_priority, one queue at a time (its rows already in claim order: the rowid `seq`
    # ends every index entry); tasks_pending_by_eta stays, because next_due wants the earliest pending eta
    # of any queue and priority.
    (
        "ALTER TABLE tasks ADD COLUMN queue TEXT NOT NULL DEFAULT 'default'",
        "ALTER TABLE tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE tasks ADD COLUMN max_attempts INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE tasks ADD COLUMN retry TEXT",
        "ALTER TABLE tasks ADD COLUMN timeout REAL",
        "ALTER TABLE tasks ADD COLUMN description TEXT",
        "ALTER TABLE tasks ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0",
        """
        CREATE TABLE attempts (
            id INTEGER PRIMARY KEY,  -- the order attempts ended in, which history returns
            task_seq INTEGER NOT NULL REFERENCES tasks (seq),
            attempt INTEGER NOT NULL,
            worker_id TEXT NOT NULL,
            started_at REAL NOT NULL,
            finished_at REAL NOT NULL,
            outcome TEXT NOT NULL,
            error TEXT
        )
        """,
        "CREATE INDEX attempts_by_task ON attempts (task_seq)",
        "CREATE INDEX tasks_pending_by_priority ON tasks (queue, priority DESC, eta)"
        " WHERE status = 'pending'",
    ),
    # 3: dependencies and workflows. `depends_on` is the task's parent ids as given (JSON, NULL for none),
    # `dependencies` the same edges by seq, looked up by parent when one ends; `unmet` counts the distinct
    # parents that have not succeeded yet, so that "ready" is one column the partial indexes can test.
    # A pending task is claimable and due only when unmet = 0; the ready indexes replace the pending ones
    # (rows of version 2 have no parents, so unmet = 0 is right for them), and next_due reads one queue
    # at a time, as claims do.
    (
        "ALTER TABLE tasks ADD COLUMN unmet INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE tasks ADD COLUMN depends_on TEXT",
        "ALTER TABLE tasks ADD COLUMN workflow_id TEXT",
        """
        CREATE TABLE dependencies (
            parent_seq INTEGER NOT NULL REFERENCES tasks (seq),
            task_seq INTEGER NOT NULL REFERENCES tasks (seq),
            PRIMARY KEY (parent_seq, task_seq)
        ) WITHOUT ROWID
        """,
        "DROP INDEX tasks_pending_by_eta",
        "DROP INDEX tasks_pending_by_priority",
        "CREATE INDEX tasks_ready_by_priority ON tasks (queue, priority DESC, eta)"
        " WHERE status = 'pending' AND unmet = 0",
        "CREATE INDEX tasks_ready_by_eta ON tasks (queue, eta) WHERE status = 'pending' AND unmet = 0",
        "CREATE INDEX tasks_in_progress_by_queue ON tasks (queue, lease_expires_at)"
        " WHERE status = 'in_progress'",
        "CREATE INDEX tasks_by_workflow ON tasks (workflow_id, status) WHERE workflow_id IS NOT NULL",
    ),
    # 4: less written per task. Every page a commit changes is appended whole to the WAL, so a task's
    # cost is the pages its enqueue, claim and completion touch. The call's payload moves to `payloads`,
    # written once at enqueue, and the result and traceback to `results`, written when an attempt ends:
    # claiming, renewing and completing rewrite only the small row in `tasks` (SQLite rewrites a whole
    # row, overflow pages and all, when its size changes). Two indexes go: tasks_ready_by_eta, since
    # next_due finds the earliest eta through tasks_ready_by_priority (one probe per priority in use),
    # and tasks_in_progress_by_queue, since tasks_in_progress_by_lease already holds every running task
    # (as few as the workers' slots). tasks_by_workflow drops `status`, which every claim changed.
    # `attempts` becomes a table clustered by task (WITHOUT ROWID), so that recording an attempt writes
    # one b-tree instead of a table and its index; `ended` numbers a task's attempts in the order they
    # ended, the order history returns.
    (
        """
        CREATE TABLE payloads (
            task_seq INTEGER PRIMARY KEY REFERENCES tasks (seq),
            payload BLOB NOT NULL
        )
        """,
        """
        CREATE TABLE results (
            task_seq INTEGER PRIMARY KEY REFERENCES tasks (seq),
            result BLOB,
            traceback TEXT
        )
        """,
        "INSERT INTO payloads (task_seq, payload) SELECT seq, payload FROM tasks",
        "INSERT INTO results (task_seq, result, traceback) SELECT seq, result, traceback FROM tasks"
        " WHERE result IS NOT NULL OR traceback IS NOT NULL",
        "DROP INDEX tasks_ready_by_eta",
        "DROP INDEX tasks_in_progress_by_queue",
        "DROP INDEX tasks_by_workflow",
        "ALTER TABLE tasks DROP COLUMN payload",
        "ALTER TABLE tasks DROP COLUMN result",
        "ALTER TABLE tasks DROP COLUMN traceback",
        "CREATE INDEX tasks_by_workflow ON tasks (workflow_id) WHERE workflow_id IS NOT NULL",
        """
        CREATE TABLE attempts_clustered (
            task_seq INTEGER NOT NULL REFERENCES tasks (seq),
            ended INTEGER NOT NULL,
            attempt INTEGER NOT NULL,
            worker_id TEXT NOT NULL,
            started_at REAL NOT NULL,
            finished_at REAL NOT NULL,
            outcome TEXT NOT NULL,
            error TEXT,
            PRIMARY KEY (task_seq, ended)
        ) WITHOUT ROWID
        """,
        """
        INSERT INTO attempts_clustered
            (task_seq, ended, attempt, worker_id, started_at, finished_at, outcome, error)
        SELECT task_seq, row_number() OVER (PARTITION BY task_seq ORDER BY id), attempt, worker_id,
            started_at, finished_at, outcome, error
        FROM attempts
        """,
        "DROP TABLE attempts",
        "ALTER TABLE attempts_clustered RENAME TO attempts",
    ),
    # unique keys: a task's `unique_key`, NULL for none (every task of an older file), and its option
    # `unique_for` (seconds, NULL for none), kept to be shown like the other options. An enqueue with
    # keys reads the tasks holding them (`queries.KEY_HOLDERS`) inside its BEGIN IMMEDIATE write, so
    # the check and the insert are atomic; the partial index makes that read one probe per key and
    # holds keyed tasks only, costing nothing to the others.
    (
        "ALTER TABLE tasks ADD COLUMN unique_key TEXT",
        "ALTER TABLE tasks ADD COLUMN unique_for REAL",
        "CREATE INDEX tasks_by_unique_key ON tasks (unique_key) WHERE unique_key IS NOT NULL",
    ),
    # schedules: periodic tasks (sitq.schedules), one row per schedule by name. `id` changes whenever a
    # schedule is replaced, and fire_schedule's compare-and-set checks it with next_run (REAL unix
    # seconds, as every time here: cron ticks are whole seconds, which a REAL holds exactly). `options`
    # is JSON (sitq.schedules.options_to_json); `payload` the sealed call.
    (
        """
        CREATE TABLE schedules (
            name TEXT PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            cron TEXT NOT NULL,
            timezone TEXT NOT NULL,
            catch_up TEXT NOT NULL,
            task_name TEXT NOT NULL,
            payload BLOB NOT NULL,
            serializer TEXT NOT NULL,
            options TEXT NOT NULL,
            next_run REAL NOT NULL,
            paused INTEGER NOT NULL DEFAULT 0,
            last_run REAL
        )
        """,
    ),
    # limits: concurrency and rate limits per key (sitq.limiting). `limit_key` is the key a task's limits
    # count by (NULL for a task without limits), `concurrency_limit`, `rate_count` and `rate_period`
    # (seconds) its limits. The claims' ready index keeps only tasks without a key, so a claim of them
    # never reads a held-back task; tasks with a key have their own index, by key first, then in claim
    # order (not by queue: one walk per key then gives its first tasks in claim order whatever queues
    # the worker takes), and running ones theirs, by key, for the counts. `limit_starts` remembers the
    # starts of rate-limited tasks until their period has passed (`until`), so it holds at most a few
    # windows' worth of rows.
    (
        "ALTER TABLE tasks ADD COLUMN limit_key TEXT",
        "ALTER TABLE tasks ADD COLUMN concurrency_limit INTEGER",
        "ALTER TABLE tasks ADD COLUMN rate_count INTEGER",
        "ALTER TABLE tasks ADD COLUMN rate_period REAL",
        "DROP INDEX tasks_ready_by_priority",
        "CREATE INDEX tasks_ready_by_priority ON tasks (queue, priority DESC, eta)"
        " WHERE status = 'pending' AND unmet = 0 AND limit_key IS NULL",
        "CREATE INDEX tasks_limited_by_key ON tasks (limit_key, priority DESC, eta)"
        " WHERE status = 'pending' AND unmet = 0 AND limit_key IS NOT NULL",
        "CREATE INDEX tasks_running_by_key ON tasks (limit_key, lease_expires_at)"
        " WHERE status = 'in_progress' AND limit_key IS NOT NULL",
        """
        CREATE TABLE limit_starts (
            limit_key TEXT NOT NULL,
            started_at REAL NOT NULL,
            until REAL NOT NULL
        )
        """,
        "CREATE INDEX limit_starts_by_until ON limit_starts (until)",
    ),
]

PAGE_SIZE = 1024
"""Bytes per page of a new file. A commit appends every page it changes to the WAL, whole; a task's rows
are a few hundred bytes, so smaller pages mean less written per task: about 14 KB of WAL per task instead
of 46 KB with 4 KiB pages. The price is SQLite CPU per row: `enqueue_many` stores about 15% fewer tasks a
second than with 4 KiB pages; draining and single enqueues measured the same. A file keeps the page size it
was created with."""

_NEW_FILE_PRAGMAS = (
    f"PRAGMA page_size = {PAGE_SIZE}",
    # Freed pages can be handed back to the file system (`PRAGMA incremental_vacuum`, which compact()
    # runs); a file made before this takes the setting at its first compaction, a VACUUM.
    "PRAGMA auto_vacuum = INCREMENTAL",
)


async def configure_new_file(connection: aiosqlite.Connection) -> None:
    """Settings that only an empty file takes: call before anything writes it (switching to WAL does).
    Only for an empty file, since setting auto_vacuum writes the header of an existing one."""
    ((pages,),) = await connection.execute_fetchall("PRAGMA page_count")
    if not pages:
        for pragma in _NEW_FILE_PRAGMAS:
            await connection.execute(pragma)


class _FileState(NamedTuple):
    application_id: int
    version: int
    objects: int


async def prepare(connection: aiosqlite.Connection, where: str) -> None:
    """Check that the file is a sitq database this code understands, creating or upgrading its schema.

    `where` names the file in error messages. The common case, a file already current, costs one read.
    """
    if not _needs_migration(await _read_state(connection), where):
        return
    await connection.execute("BEGIN IMMEDIATE")
    try:
        # Read again under the write lock: another process may have migrated while we waited for it.
        state = await _read_state(connection)
        if _needs_migration(state, where):
            applied = state.version if state.application_id == APPLICATION_ID else 0
            for migration in MIGRATIONS[applied:]:
                for statement in migration:
                    await connection.execute(statement)
            # PRAGMA values cannot be bound as parameters; both are integers this module controls.
            await connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            await connection.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
        await connection.execute("COMMIT")
    except BaseException as exc:
        await on_thread(connection, roll_back, exc)
        raise


async def _read_state(connection: aiosqlite.Connection) -> _FileState:
    rows = await connection.execute_fetchall(
        "SELECT application_id, user_version, (SELECT count(*) FROM sqlite_schema)"
        " FROM pragma_application_id(), pragma_user_version()"
    )
    application_id, version, objects = next(iter(rows))
    return _FileState(application_id, version, objects)


def _needs_migration(state: _FileState, where: str) -> bool:
    """False for a current sitq file, True for an empty or older one; raise for anything else."""
    if state.application_id == 0:
        if state.objects:
            raise BackendError(
                f"{where} is a SQLite database of another application (it has tables but no sitq "
                "application_id); give sitq a file of its own"
            )
        return True
    if state.application_id != APPLICATION_ID:
        raise BackendError(
            f"{where} is not a sitq database: its application_id is {state.application_id:#x}, sitq's is "
            f"{APPLICATION_ID:#x}; give sitq a file of its own"
        )
    if state.version > len(MIGRATIONS):
        raise BackendError(
            f"{where} has sitq schema version {state.version}, but this sitq-sqlite understands versions up "
            f"to {len(MIGRATIONS)}: a newer sitq-sqlite wrote it; upgrade sitq-sqlite"
        )
    return state.version < len(MIGRATIONS)
