"""The file format: marking, versioned in-place migrations, clear refusals, and index-backed queries."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sitq.errors import BackendError
from sitq.models import NewTask
from sitq_sqlite import SQLiteBackend, schema
from sitq_sqlite.backend import _CLAIM, _CLAIM_TASK, _NEXT_DUE  # the statements the indexes exist for

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
    upgrade = ("ALTER TABLE tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 0",)
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, upgrade])

    new = SQLiteBackend(path)
    await new.connect()
    record = await new.get("kept")
    await new.close()

    assert record is not None
    assert record.name == "tests.job"
    assert read_header(path)[1] == len(schema.MIGRATIONS)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT id, priority FROM tasks").fetchall() == [("kept", 0)]
    conn.close()

    monkeypatch.undo()
    with pytest.raises(BackendError, match=r"schema version 2.*up to 1.*upgrade sitq-sqlite"):
        await open_and_close(path)


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


def query_plan(path: Path, sql: str, params: dict[str, object]) -> list[str]:
    with sqlite3.connect(path) as conn:
        plan = [detail for *_, detail in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
    conn.close()
    return plan


@pytest.mark.parametrize(
    ("sql", "indexes"),
    [
        (_CLAIM, ["tasks_pending_by_eta (eta<?)", "tasks_in_progress_by_lease (lease_expires_at<?)"]),
        (_CLAIM_TASK, ["sqlite_autoindex_tasks_1 (id=?)"]),
        (_NEXT_DUE, ["tasks_pending_by_eta", "tasks_in_progress_by_lease"]),
    ],
)
async def test_queries_search_indexes_and_never_scan_the_table(
    tmp_path: Path, sql: str, indexes: list[str]
) -> None:
    await open_and_close(tmp_path / "tasks.db")
    params = {"worker_id": "w", "now": 1.0, "expires": 2.0, "limit": 10, "task_id": "a"}

    plan = query_plan(tmp_path / "tasks.db", sql, params)

    assert not [step for step in plan if step.startswith("SCAN tasks")], plan
    for index in indexes:
        assert any(step.startswith("SEARCH tasks USING") and step.endswith(index) for step in plan), plan
    # The claim merges both index walks in eta order, so it stops after `limit` rows.
    assert sql != _CLAIM or "MERGE (UNION ALL)" in plan
