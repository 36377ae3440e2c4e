"""The SQLite backend's files are private to their owner, and its faults surface as what they are."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import sitq
from sitq import SyncTaskQueue, TaskQueue
from sitq_sqlite import SQLiteBackend, faults
from sitq_sqlite.connection import BusyWait, in_transaction

LEASE = timedelta(seconds=30)

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX mode bits")

SECOND_PROCESS = """
import os, sys
from sitq import SyncTaskQueue
db = sys.argv[1]
with SyncTaskQueue(f"sqlite:///{db}") as queue:
    queue.enqueue(len, b"x")
    print(*(oct(os.stat(db + suffix).st_mode & 0o777) for suffix in ("", "-wal", "-shm")))
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The common default umask, under which SQLite alone creates files 0644."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def warnings_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "sitq_sqlite.files" and record.levelno == logging.WARNING
    ]


@posix_only
@pytest.mark.usefixtures("umask_022")
def test_the_database_and_its_wal_and_shm_files_are_private(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    with SyncTaskQueue(f"sqlite:///{db}") as queue:
        queue.enqueue(len, b"x")
        assert [mode(Path(f"{db}{suffix}")) for suffix in ("", "-wal", "-shm")] == [0o600] * 3
    assert not Path(f"{db}-wal").exists()  # removed by the last close, so created afresh next time
    # Another process, which opens the file first now, creates the -wal and -shm files again: private too.
    opened = subprocess.run(
        [sys.executable, "-c", SECOND_PROCESS, str(db)], capture_output=True, text=True, timeout=60
    )
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout.split() == ["0o600"] * 3


@posix_only
async def test_an_existing_database_keeps_its_mode(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "tasks.db"
    db.touch(mode=0o640)
    db.chmod(0o640)
    async with TaskQueue(SQLiteBackend(db)) as queue:
        await queue.enqueue(len, b"x")
    assert mode(db) == 0o640
    assert warnings_logged(caplog) == []


@posix_only
async def test_a_database_others_may_write_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "tasks.db"
    db.touch()
    db.chmod(0o664)
    async with TaskQueue(SQLiteBackend(db)):
        pass
    assert warnings_logged(caplog) == [
        f"the SQLite file {db} is writable by other users (mode -rw-rw-r--): they could change the tasks "
        f"your workers run; make it private: chmod 600 {db}"
    ]


@posix_only
@pytest.mark.parametrize(("bits", "shown"), [(0o777, "drwxrwxrwx"), (0o1777, "drwxrwxrwt")])
async def test_a_directory_others_may_write_is_warned_about_even_when_sticky(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, bits: int, shown: str
) -> None:
    directory = tmp_path / "shared"
    directory.mkdir()
    directory.chmod(bits)
    async with TaskQueue(SQLiteBackend(directory / "tasks.db")):
        pass
    [warning] = warnings_logged(caplog)
    sticky = ", sticky, which does not stop that" if bits & stat.S_ISVTX else ""
    assert warning.startswith(
        f"the directory {directory}, which holds the SQLite database tasks.db, is writable by other users "
        f"(mode {shown}{sticky}): they could create or replace the database or its -wal and -shm files"
    )


@posix_only
async def test_private_files_are_not_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with TaskQueue(SQLiteBackend(tmp_path / "tasks.db")) as queue:
        await queue.enqueue(len, b"x")
    async with TaskQueue(SQLiteBackend(tmp_path / "tasks.db")):
        pass
    assert warnings_logged(caplog) == []


async def test_a_lock_held_past_the_busy_timeout_is_named(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    async with TaskQueue(SQLiteBackend(db, busy_timeout=0.2)) as queue:
        holder = sqlite3.connect(db, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            with pytest.raises(sitq.StorageBusyError) as raised:
                await queue.enqueue(len, b"x")
        finally:
            holder.close()
        await queue.enqueue(len, b"x")  # the lock let go: writing works again
    assert isinstance(raised.value, TimeoutError)
    assert str(raised.value).startswith(
        f"storing 1 new task(s) in the SQLite database '{db}' failed: the database is locked: another "
        "connection has held its write lock for longer than the busy timeout of 0.2s."
    )
    assert "'?busy_timeout=SECONDS' in the URL, or SQLiteBackend(path, busy_timeout=SECONDS)" in str(
        raised.value
    )
    assert isinstance(raised.value.__cause__, sqlite3.OperationalError)


async def test_a_statement_on_its_own_waits_for_a_lock_even_right_after_a_transaction(tmp_path: Path) -> None:
    """Transactions turn SQLite's busy handler off to wait by themselves; a renewal, one statement in
    autocommit mode, must still wait with it for another connection's write lock."""
    db = tmp_path / "tasks.db"
    backend = SQLiteBackend(db, busy_timeout=10)
    async with TaskQueue(backend) as queue:
        task_id = await queue.enqueue(len, b"x")
        now = datetime.now(UTC)
        [claimed] = await backend.claim(worker_id="w", now=now, lease=LEASE, limit=1, queues=["default"])
        holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        try:
            holder.execute("BEGIN IMMEDIATE")
            threading.Timer(0.2, holder.execute, ("COMMIT",)).start()
            started = time.monotonic()
            assert await backend.renew([task_id], worker_id="w", now=now, lease=LEASE) == set()
            assert time.monotonic() - started >= 0.1
        finally:
            holder.close()
    assert claimed.id == task_id


class _RollbackFails(sqlite3.Connection):
    """A connection whose ROLLBACK fails, as one may after an I/O error."""

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if sql == "ROLLBACK":
            raise sqlite3.OperationalError("disk I/O error")
        return super().execute(sql, *args)  # type: ignore[arg-type]


def test_a_failed_rollback_does_not_replace_the_error_that_caused_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = sqlite3.connect(tmp_path / "tasks.db", isolation_level=None, factory=_RollbackFails)

    def body(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE t (x)")
        raise ValueError("the real cause")

    try:
        with pytest.raises(ValueError, match="the real cause") as raised:
            in_transaction(db, body, BusyWait(1))
    finally:
        db.close()
    assert raised.value.__notes__ == ["rolling back after this error failed too: disk I/O error"]
    assert "rolling back after ValueError('the real cause') failed too: disk I/O error" in caplog.messages


def test_no_rollback_when_sqlite_has_rolled_back_already(tmp_path: Path) -> None:
    """As after a COMMIT that found the disk full: a ROLLBACK would fail with "no transaction is active"."""
    db = sqlite3.connect(tmp_path / "tasks.db", isolation_level=None)

    def body(db: sqlite3.Connection) -> None:
        db.execute("ROLLBACK")
        raise sqlite3.OperationalError("database or disk is full")

    try:
        with pytest.raises(sqlite3.OperationalError, match="database or disk is full") as raised:
            in_transaction(db, body, BusyWait(1))
    finally:
        db.close()
    assert not hasattr(raised.value, "__notes__")


def _sqlite_error(code: int, message: str) -> sqlite3.Error:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code
    error.sqlite_errorname = "SQLITE_TEST"
    return error


@pytest.mark.parametrize(
    ("code", "kind", "says"),
    [
        (sqlite3.SQLITE_FULL, sitq.StorageFullError, "the disk is full"),
        (sqlite3.SQLITE_BUSY, sitq.StorageBusyError, "the database is locked"),
        (sqlite3.SQLITE_READONLY, sitq.StorageReadOnlyError, "SQLite cannot write it"),
        (sqlite3.SQLITE_CORRUPT, sitq.BackendError, "database disk image is malformed (SQLITE_TEST)"),
        (sqlite3.SQLITE_IOERR, sitq.BackendError, "disk I/O error (SQLITE_TEST)"),
    ],
)
def test_result_codes_decide_the_kind_of_error(
    tmp_path: Path, code: int, kind: type[sitq.BackendError], says: str
) -> None:
    message = {
        sqlite3.SQLITE_CORRUPT: "database disk image is malformed",
        sqlite3.SQLITE_IOERR: "disk I/O error",
    }
    error = faults.backend_error(
        "testing", str(tmp_path / "tasks.db"), _sqlite_error(code, message.get(code, "x")), busy_timeout=1
    )
    assert type(error) is kind
    assert str(error).startswith(f"testing failed: {says}")
