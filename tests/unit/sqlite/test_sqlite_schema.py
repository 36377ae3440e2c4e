"""The file format: marking, versioned in-place migrations, clear refusals, and index-backed queries."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sitq.errors import BackendError
from sitq.models import AttemptOutcome, NewTask, RetryPolicy, TaskOptions, TaskOutcome, TaskStatus
from sitq_sqlite import SQLiteBackend, queries, schema  # queries: the statements the indexes exist for

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def read_header(path: Path) -> tuple[int, int, str]:
    with sqlite3.connect(path) as conn:
        ((application_id, version, journal),) = conn.execute(
            "SELECT * FROM pragma_application_id(), pragma_user_version(), pragma_journal_mode()"
        ).fetchall()
    conn.close()
    return application_id, version, journal


def write_sql(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in statements:
        conn.execute(statement)
    conn.close()


async def open_and_close(path: Path) -> None:
    backend = SQLiteBackend(path)
    await backend.connect()
    await backend.close()


async def test_a_new_file_is_marked_as_sitq_in_wal_mode(tmp_path: Path) -> None:
    await open_and_close(tmp_path / "tasks.db")

    assert read_header(tmp_path / "tasks.db") == (schema.APPLICATION_ID, len(schema.MIGRATIONS), "wal")


async def test_an_older_file_is_upgraded_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "tasks.db"
    old = SQLiteBackend(path)
    await old.connect()
    await old.enqueue([NewTask("kept", "tests.job", b"call", "pickle", T0, T0)])
    await old.close()
    upgrade = ("ALTER TABLE tasks ADD COLUMN tag TEXT NOT NULL DEFAULT 'none'",)
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, upgrade])

    new = SQLiteBackend(path)
    await new.connect()
    record = await new.get("kept")
    await new.close()

    assert record is not None
    assert record.name == "tests.job"
    assert read_header(path)[1] == len(schema.MIGRATIONS)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT id, tag FROM tasks").fetchall() == [("kept", "none")]
    conn.close()

    monkeypatch.undo()
    with pytest.raises(
        BackendError,
        match=rf"schema version {len(schema.MIGRATIONS) + 1}.*up to {len(schema.MIGRATIONS)}.*upgrade",
    ):
        await open_and_close(path)


# Version 1 exactly as sitq-sqlite 0.1 wrote it: never change these, they stand for files in the field.
VERSION_1 = (
    """
    CREATE TABLE tasks (
        seq INTEGER PRIMARY KEY,
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
    f"PRAGMA application_id = {schema.APPLICATION_ID}",
    "PRAGMA user_version = 1",
)


async def test_a_version_1_file_is_upgraded_and_its_tasks_keep_working(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    t0 = T0.timestamp()
    insert = (
        "INSERT INTO tasks (id, name, status, payload, serializer, enqueued_at, eta, attempts, worker_id,"
        " started_at, lease_expires_at, finished_at, result)"
    )
    write_sql(
        path,
        *VERSION_1,
        f"{insert} VALUES ('waiting', 'tests.job', 'pending', x'01', 'pickle', {t0}, {t0}, 0, NULL, NULL,"
        " NULL, NULL, NULL)",
        f"{insert} VALUES ('running', 'tests.job', 'in_progress', x'02', 'pickle', {t0}, {t0}, 1, 'old',"
        f" {t0}, {t0 + 30}, NULL, NULL)",
        f"{insert} VALUES ('done', 'tests.job', 'success', x'03', 'pickle', {t0}, {t0}, 1, 'old', {t0},"
        f" NULL, {t0 + 1}, x'2a')",
    )
    backend = SQLiteBackend(path)
    await backend.connect()
    try:
        done = await backend.get("done")
        assert done is not None
        assert (done.status, done.result, done.options, done.cancel_requested) == (
            TaskStatus.SUCCESS,
            b"*",
            TaskOptions(),
            False,
        )
        assert await backend.history("done") == []
        # The old worker died: its task, with the default single attempt, fails; the waiting one runs.
        [claimed] = await backend.claim(
            worker_id="new",
            now=T0 + timedelta(minutes=1),
            lease=timedelta(minutes=1),
            limit=5,
            queues=["default"],
        )
        assert (claimed.id, claimed.attempt, claimed.options) == ("waiting", 1, TaskOptions())
        [running] = await backend.recover_lost(now=T0 + timedelta(minutes=1))
        assert running is not None and running.status is TaskStatus.FAILED
        assert (
            running.error
            == "WorkerLostError: worker old stopped renewing its lease, and no attempts are left"
        )
        [lost] = await backend.history("running")
        assert (lost.attempt, lost.worker_id, lost.outcome) == (1, "old", AttemptOutcome.LOST)
        assert await backend.cancel("waiting", now=T0) is TaskStatus.IN_PROGRESS
        assert await backend.renew(["waiting"], worker_id="new", now=T0, lease=timedelta(minutes=1)) == {
            "waiting"
        }
        await backend.complete([TaskOutcome("waiting", "new", TaskStatus.CANCELLED, T0, error="cancelled")])
        assert [a.outcome for a in await backend.history("waiting")] == [AttemptOutcome.CANCELLED]
        # New tasks with options sit beside the old ones.
        retry = RetryPolicy(backoff=5, retry_on=[OSError])
        options = TaskOptions(queue="q", priority=3, max_attempts=2, retry=retry, timeout=9, description="d")
        await backend.enqueue([NewTask("new", "tests.job", b"", "json", T0, T0, options)])
        record = await backend.get("new")
        assert record is not None and record.options == options
    finally:
        await backend.close()
    assert read_header(path)[:2] == (schema.APPLICATION_ID, len(schema.MIGRATIONS))


# Version 2 exactly as sitq-sqlite 0.2 wrote it, on top of version 1: never change these either.
VERSION_2 = (
    *VERSION_1[:-1],
    "ALTER TABLE tasks ADD COLUMN queue TEXT NOT NULL DEFAULT 'default'",
    "ALTER TABLE tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE tasks ADD COLUMN max_attempts INTEGER NOT NULL DEFAULT 1",
    "ALTER TABLE tasks ADD COLUMN retry TEXT",
    "ALTER TABLE tasks ADD COLUMN timeout REAL",
    "ALTER TABLE tasks ADD COLUMN description TEXT",
    "ALTER TABLE tasks ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0",
    """
    CREATE TABLE attempts (
        id INTEGER PRIMARY KEY,
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
    "CREATE INDEX tasks_pending_by_priority ON tasks (queue, priority DESC, eta) WHERE status = 'pending'",
    "PRAGMA user_version = 2",
)


async def test_a_version_2_file_is_upgraded_and_its_tasks_keep_working(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    t0 = T0.timestamp()
    insert = (
        "INSERT INTO tasks (id, name, status, payload, serializer, enqueued_at, eta, attempts, worker_id,"
        " started_at, lease_expires_at, finished_at, queue, priority, max_attempts, cancel_requested)"
    )
    write_sql(
        path,
        *VERSION_2,
        f"{insert} VALUES ('waiting', 'tests.job', 'pending', x'01', 'pickle', {t0}, {t0 + 5}, 0, NULL,"
        " NULL, NULL, NULL, 'q', 2, 1, 0)",
        f"{insert} VALUES ('running', 'tests.job', 'in_progress', x'02', 'pickle', {t0}, {t0}, 1, 'old',"
        f" {t0}, {t0 + 30}, NULL, 'q', 0, 3, 1)",
        f"{insert} VALUES ('failed', 'tests.job', 'failed', x'03', 'pickle', {t0}, {t0}, 1, 'old', {t0},"
        f" NULL, {t0 + 1}, 'q', 0, 1, 0)",
    )
    backend = SQLiteBackend(path)
    await backend.connect()
    try:
        waiting = await backend.get("waiting")
        assert waiting is not None and (waiting.depends_on, waiting.workflow_id) == ((), None)
        # Old pending tasks have no parents: due, in their queue only.
        assert await backend.next_due(["q"]) == T0 + timedelta(seconds=5)
        assert await backend.next_due(["default"]) is None
        # New tasks may wait on old ones; one that ended without success cancels them at once.
        await backend.enqueue(
            [
                NewTask(
                    "child", "tests.job", b"", "json", T0, T0, TaskOptions(queue="q"), ("waiting",), "wf"
                ),
                NewTask(
                    "doomed", "tests.job", b"", "json", T0, T0, TaskOptions(queue="q"), ("failed",), "wf"
                ),
                NewTask("orphan", "tests.job", b"", "json", T0, T0, TaskOptions(queue="q"), ("running",)),
            ]
        )
        doomed = await backend.get("doomed")
        assert doomed is not None and doomed.status is TaskStatus.CANCELLED
        assert doomed.error == "TaskCancelledError: parent task failed ended failed"
        assert doomed.finished_at == T0 + timedelta(seconds=1)
        assert await backend.workflow_counts("wf") == {TaskStatus.PENDING: 1, TaskStatus.CANCELLED: 1}
        # The old running task was asked to cancel and its worker died: cancelled, and its child too.
        [claimed] = await backend.claim(
            worker_id="new", now=T0 + timedelta(minutes=1), lease=timedelta(minutes=1), limit=5, queues=["q"]
        )
        assert claimed.id == "waiting"
        [running] = await backend.recover_lost(now=T0 + timedelta(minutes=1))
        assert running.id == "running" and running.status is TaskStatus.CANCELLED
        orphan = await backend.get("orphan")
        assert (
            orphan is not None and orphan.error == "TaskCancelledError: parent task running ended cancelled"
        )
        await backend.complete([TaskOutcome("waiting", "new", TaskStatus.SUCCESS, T0 + timedelta(minutes=1))])
        [child] = await backend.claim(
            worker_id="new", now=T0 + timedelta(minutes=1), lease=timedelta(minutes=1), limit=5, queues=["q"]
        )
        assert (child.id, child.depends_on) == ("child", ("waiting",))
    finally:
        await backend.close()
    assert read_header(path)[:2] == (schema.APPLICATION_ID, len(schema.MIGRATIONS))
    with sqlite3.connect(path) as conn:
        indexes = {name for (name,) in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'index'")}
    conn.close()
    assert not indexes & {"tasks_pending_by_eta", "tasks_pending_by_priority"}


async def test_many_openers_of_a_new_file_migrate_it_once(tmp_path: Path) -> None:
    backends = [SQLiteBackend(tmp_path / "tasks.db") for _ in range(6)]

    await asyncio.gather(*(backend.connect() for backend in backends))
    await asyncio.gather(*(backend.close() for backend in backends))

    assert read_header(tmp_path / "tasks.db")[:2] == (schema.APPLICATION_ID, len(schema.MIGRATIONS))


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    write_sql(
        tmp_path / "tasks.db", f"PRAGMA application_id = {schema.APPLICATION_ID}", "PRAGMA user_version = 99"
    )

    with pytest.raises(BackendError, match=r"schema version 99.*upgrade sitq-sqlite"):
        await open_and_close(tmp_path / "tasks.db")


async def test_another_applications_database_is_refused(tmp_path: Path) -> None:
    write_sql(tmp_path / "theirs.db", "CREATE TABLE accounts (id INTEGER PRIMARY KEY)")
    write_sql(tmp_path / "marked.db", "PRAGMA application_id = 42")

    with pytest.raises(BackendError, match=r"theirs\.db' is a SQLite database of another application"):
        await open_and_close(tmp_path / "theirs.db")
    with pytest.raises(BackendError, match=r"marked\.db' is not a sitq database: its application_id is 0x2a"):
        await open_and_close(tmp_path / "marked.db")
    with sqlite3.connect(tmp_path / "theirs.db") as conn:
        assert conn.execute("SELECT name FROM sqlite_schema").fetchall() == [("accounts",)]
    conn.close()


async def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("dear diary " * 200)

    with pytest.raises(BackendError, match=r"notes\.txt' is not a SQLite database") as raised:
        await open_and_close(tmp_path / "notes.txt")

    assert isinstance(raised.value.__cause__, sqlite3.DatabaseError)


async def test_a_path_that_cannot_be_opened_says_why(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match=r"the directory '.*/missing' does not exist; create it first"):
        await open_and_close(tmp_path / "missing" / "tasks.db")
    with pytest.raises(BackendError, match="that is a directory"):
        await open_and_close(tmp_path)


async def test_an_old_sqlite_library_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))
    backend = SQLiteBackend(tmp_path / "tasks.db")

    with pytest.raises(BackendError, match=r"needs SQLite 3\.35 or newer"):
        await backend.connect()

    assert not backend.is_connected


@pytest.mark.parametrize("synchronous", ["full", "normal"])
async def test_the_durability_mode_is_applied(tmp_path: Path, synchronous: str) -> None:
    backend = SQLiteBackend(tmp_path / "tasks.db", synchronous=synchronous)  # type: ignore[arg-type]  # parametrized
    await backend.connect()
    assert backend._conn is not None  # the setting is per connection, so only this one can show it
    ((level,),) = await backend._conn.execute_fetchall("PRAGMA synchronous")
    await backend.close()

    assert level == {"full": 2, "normal": 1}[synchronous]


def query_plan(path: Path, sql: str, params: Mapping[str, object] | tuple[str, ...]) -> list[str]:
    with sqlite3.connect(path) as conn:
        plan = [detail for *_, detail in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
    conn.close()
    return plan


QUERY_PARAMS = {
    "worker_id": "w",
    "now": 1.0,
    "expires": 2.0,
    "limit": 10,
    "task_id": "a",
    "task_ids": '["a", "b"]',
    "lost": "lost",
    "lost_after": "after",
    "no_attempts": "none left",
    "end": 1,
    "q0": "default",
    "q1": "other",
    "queues": '["default", "other"]',
    "parents": '["a", "b"]',
    "seqs": "[1, 2]",
    "cancelled": "cancelled",
    "started_at": None,
    "finished_at": 1.0,
    "finished_at_or_null": 1.0,
    "outcome": "success",
    "status": "success",
    "retry_at": None,
    "result": None,
    "error": None,
    "traceback": None,
}
BY_ID = "sqlite_autoindex_tasks_1 (id=?)"


@pytest.mark.parametrize(
    ("sql", "indexes"),
    [
        # The claim, for one queue (the common case) and for two, merged in claim order.
        (queries.claim_sql(1), ["tasks_ready_by_priority (queue=?)"]),
        (queries.claim_sql(2), ["tasks_ready_by_priority (queue=?)"]),
        (queries.LOST_HISTORY, ["tasks_in_progress_by_lease (lease_expires_at<?)"]),
        (queries.RECOVER_LOST, ["tasks_in_progress_by_lease (lease_expires_at<?)"]),
        (queries.CLAIM_TASK, [BY_ID]),
        (queries.RENEW, [BY_ID]),
        (queries.RELEASE_HISTORY, [BY_ID]),
        (queries.RELEASE, [BY_ID]),
        (queries.CANCEL, [BY_ID]),
        (queries.COMPLETE_HISTORY, [BY_ID]),
        (queries.COMPLETE, [BY_ID]),
        (queries.GET, [BY_ID]),
        (queries.HISTORY, [BY_ID, "PRIMARY KEY (task_seq=?)"]),
        (
            queries.NEXT_DUE,
            [
                "tasks_ready_by_priority (queue=? AND priority<?)",
                "tasks_ready_by_priority (queue=? AND priority=?)",
                "tasks_in_progress_by_lease",
            ],
        ),
        (queries.LAST_SEQ, ["tasks"]),  # the last entry of the rowid b-tree
        (queries.WORKFLOW_COUNTS, ["tasks_by_workflow (workflow_id=?)"]),
        (queries.PARENTS, [BY_ID]),
        (queries.DEPEND, [BY_ID]),
        (queries.MET, ["PRIMARY KEY (parent_seq=?)"]),
        (queries.DEPENDENTS, ["PRIMARY KEY (parent_seq=?)", "INTEGER PRIMARY KEY (rowid=?)"]),
        (queries.CANCEL_DEPENDENT, ["INTEGER PRIMARY KEY (rowid=?)"]),
        # Limits per key: a probe per key, then at most a claim's limit of its tasks, in claim order.
        (
            queries.LIMITED_CANDIDATES,
            ["tasks_limited_by_key (limit_key>?)", "tasks_limited_by_key (limit_key=?)"],
        ),
        (queries.LIMITED_TASK, [BY_ID, "tasks_running_by_key (limit_key=? AND lease_expires_at>?)"]),
        (queries.FORGET_STARTS, ["limit_starts_by_until (until<?)"]),
        (queries.CLAIM_SEQS, ["INTEGER PRIMARY KEY (rowid=?)"]),
    ],
)
async def test_queries_search_indexes_and_never_scan_the_table(
    tmp_path: Path, sql: str, indexes: list[str]
) -> None:
    await open_and_close(tmp_path / "tasks.db")
    params: Mapping[str, object] | tuple[str, ...] = QUERY_PARAMS if ":" in sql else ("a",) * sql.count("?")

    plan = query_plan(tmp_path / "tasks.db", sql, params)

    scans = ("SCAN tasks", "SCAN attempts", "SCAN dependencies")
    assert not [step for step in plan if step.startswith(scans)], plan
    for index in indexes:
        assert any(step.startswith("SEARCH") and step.endswith(index) for step in plan), plan
    # Each queue's index walk is already in claim order, so the claim stops after `limit` rows.
    assert "USE TEMP B-TREE FOR ORDER BY" not in plan
    assert sql != queries.claim_sql(2) or "MERGE (UNION ALL)" in plan


async def test_a_sqlite_without_json_functions_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite cannot drop a built-in function, so ask for one that no SQLite has.
    monkeypatch.setattr(queries, "JSON_CHECK", "SELECT json_missing('[]')")
    backend = SQLiteBackend(tmp_path / "tasks.db")

    with pytest.raises(BackendError, match=r"needs SQLite's JSON functions.*json_missing"):
        await backend.connect()

    assert not backend.is_connected


# Version 3 exactly as sitq-sqlite wrote it before version 4, on top of version 2: never change these.
VERSION_3 = (
    *VERSION_2[:-1],
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
    "CREATE INDEX tasks_in_progress_by_queue ON tasks (queue, lease_expires_at) WHERE status = 'in_progress'",
    "CREATE INDEX tasks_by_workflow ON tasks (workflow_id, status) WHERE workflow_id IS NOT NULL",
    "PRAGMA user_version = 3",
)


async def test_a_version_3_file_keeps_payloads_and_results_beside_its_tasks(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    t0 = T0.timestamp()
    insert = (
        "INSERT INTO tasks (id, name, status, payload, serializer, enqueued_at, eta, attempts, worker_id,"
        " started_at, lease_expires_at, finished_at, result, error, traceback, workflow_id)"
    )
    write_sql(
        path,
        "PRAGMA journal_mode = WAL",
        *VERSION_3,
        f"{insert} VALUES ('waiting', 'tests.job', 'pending', x'01', 'pickle', {t0}, {t0}, 0, NULL, NULL,"
        " NULL, NULL, NULL, NULL, NULL, 'wf')",
        f"{insert} VALUES ('done', 'tests.job', 'success', x'03', 'pickle', {t0}, {t0}, 1, NULL, {t0},"
        f" NULL, {t0 + 1}, x'2a', NULL, NULL, 'wf')",
        f"{insert} VALUES ('broken', 'tests.job', 'failed', x'04', 'pickle', {t0}, {t0}, 1, NULL, {t0},"
        f" NULL, {t0 + 1}, NULL, 'E: no', 'Traceback (most recent call last): ...', NULL)",
        "INSERT INTO attempts (id, task_seq, attempt, worker_id, started_at, finished_at, outcome, error)"
        f" VALUES (7, 3, 1, 'old', {t0}, {t0}, 'released', NULL), (4, 2, 1, 'old', {t0}, {t0 + 1}, 'success',"
        f" NULL), (9, 3, 1, 'old', {t0}, {t0 + 1}, 'failed', 'E: no')",
    )
    backend = SQLiteBackend(path)
    await backend.connect()
    try:
        done, broken = await backend.get("done"), await backend.get("broken")
        assert done is not None and (done.status, done.result, done.traceback) == (
            TaskStatus.SUCCESS,
            b"*",
            None,
        )
        assert broken is not None
        assert (broken.result, broken.error, broken.traceback) == (
            None,
            "E: no",
            "Traceback (most recent call last): ...",
        )
        assert await backend.workflow_counts("wf") == {TaskStatus.PENDING: 1, TaskStatus.SUCCESS: 1}
        assert await backend.next_due(["default"]) == T0
        [claimed] = await backend.claim(
            worker_id="w", now=T0, lease=timedelta(minutes=1), limit=5, queues=["default"]
        )
        assert (claimed.id, claimed.payload) == ("waiting", b"\x01")
        assert [(a.outcome, a.error) for a in await backend.history("broken")] == [
            (AttemptOutcome.RELEASED, None),
            (AttemptOutcome.FAILED, "E: no"),
        ]
        assert await backend.requeue("broken", now=T0) is TaskStatus.PENDING
        requeued = await backend.get("broken")
        assert requeued is not None and (requeued.error, requeued.traceback) == (None, None)
        await backend.claim_task("broken", worker_id="w", now=T0, lease=timedelta(minutes=1))
        await backend.complete([TaskOutcome("broken", "w", TaskStatus.SUCCESS, T0, result=b"ok")])
        history = [(a.worker_id, a.outcome) for a in await backend.history("broken")]
        assert history == [("old", "released"), ("old", "failed"), ("w", "success")]
        assert [a.outcome for a in await backend.history("done")] == [AttemptOutcome.SUCCESS]
        # A file made before version 4 has 4 KiB pages and no incremental vacuum, until compacted once.
        assert pragmas(path) == (4096, 0)
        await backend.compact()
        assert pragmas(path) == (4096, 2)
        assert (await backend.get("done")) == done
        assert len(await backend.history("broken")) == 3
    finally:
        await backend.close()
    with sqlite3.connect(path) as conn:
        columns = {name for (_, name, *_) in conn.execute("PRAGMA table_info(tasks)")}
        indexes = {name for (name,) in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'index'")}
    conn.close()
    assert not columns & {"payload", "result", "traceback"}
    assert not indexes & {"tasks_ready_by_eta", "tasks_in_progress_by_queue"}


async def test_a_new_file_has_small_pages_and_gives_free_pages_back(tmp_path: Path) -> None:
    await open_and_close(tmp_path / "tasks.db")

    assert pragmas(tmp_path / "tasks.db") == (schema.PAGE_SIZE, 2)


def pragmas(path: Path) -> tuple[int, int]:
    """The file's page size and auto_vacuum mode (2: incremental)."""
    with sqlite3.connect(path) as conn:
        ((page_size, auto_vacuum),) = conn.execute(
            "SELECT * FROM pragma_page_size(), pragma_auto_vacuum()"
        ).fetchall()
    conn.close()
    return page_size, auto_vacuum
