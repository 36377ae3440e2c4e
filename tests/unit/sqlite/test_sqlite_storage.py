"""The file stays small: a task's payload is written once, purged space goes back to the file system, and
the WAL shrinks once readers let go. Real files, through the public API."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sitq import Compaction, Limits, SyncTaskQueue, Task, TaskQueue, TaskStatus, Worker
from sitq_sqlite import SQLiteBackend, maintenance

MB = 1024 * 1024


def length(data: bytes) -> int:
    return len(data)


async def slow_length(data: bytes) -> int:
    await asyncio.sleep(1.5)  # long enough for the worker to renew the lease
    return len(data)


def wal_bytes(path: Path) -> int:
    return maintenance.file_bytes(f"{path}-wal")


def hold_snapshot(path: Path) -> sqlite3.Connection:
    """Another connection in a read transaction: from here on, SQLite cannot start the WAL over."""
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM tasks").fetchall()
    return reader


async def test_a_large_payload_is_not_rewritten_when_claimed_renewed_and_completed(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    payload = os.urandom(50 * MB)
    async with TaskQueue(SQLiteBackend(path), limits=Limits(call_bytes=64 * MB)) as queue:
        task_id = await queue.enqueue(slow_length, payload)
        reader = hold_snapshot(path)
        try:
            before = wal_bytes(path)
            await Worker(queue, lease=3).run(burst=True)
            written = wal_bytes(path) - before
        finally:
            reader.close()
        result = await queue.get_result(task_id, timeout=0)
        info = await queue.get_task(task_id)

    assert result is not None and result.value == len(payload)
    assert info.status is TaskStatus.SUCCESS and len(info.history) == 1
    assert written < 200_000, f"claiming, renewing and completing wrote {written} bytes of WAL"


async def test_compact_gives_purged_space_back(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    async with TaskQueue(SQLiteBackend(path)) as queue:
        await queue.enqueue_many(Task(length, [os.urandom(20_000)]) for _ in range(300))
        await Worker(queue, max_concurrency=100).run(burst=True)
        assert await queue.purge(timedelta(0)) == 300
        kept = await queue.enqueue(length, b"still here")
        full = maintenance.file_bytes(str(path))

        compaction = await queue.compact()

        on_disk = maintenance.file_bytes(str(path))
        assert compaction == Compaction(bytes_before=compaction.bytes_before, bytes_after=on_disk)
        assert compaction.bytes_after < full - 5 * MB < compaction.bytes_before
        assert wal_bytes(path) == 0
        assert await queue.get_status(kept) is TaskStatus.PENDING


def test_sync_queue_compacts_too(tmp_path: Path) -> None:
    with SyncTaskQueue(SQLiteBackend(tmp_path / "tasks.db")) as queue:
        queue.enqueue(length, b"x" * 100_000)
        compaction = queue.compact()

    assert compaction.bytes_after == os.path.getsize(tmp_path / "tasks.db") > 100_000


async def test_the_wal_shrinks_soon_after_a_long_reader_lets_go(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    async with TaskQueue(SQLiteBackend(path)) as queue, Worker(queue, poll_interval=0.2):
        later = datetime.now(UTC) + timedelta(hours=1)  # so that the worker stays idle
        reader = hold_snapshot(path)
        try:
            while wal_bytes(path) <= 2 * maintenance.WAL_LIMIT:
                await queue.enqueue_many(Task(length, [os.urandom(4_000)], eta=later) for _ in range(200))
        finally:
            reader.close()
        # Nothing is written from here on: the idle worker's looks at the queue are the gaps it uses.
        for _ in range(600):  # a generous minute: the machine may be busy
            if wal_bytes(path) <= maintenance.WAL_LIMIT:
                break
            await asyncio.sleep(0.1)

        assert wal_bytes(path) <= maintenance.WAL_LIMIT
