"""The WAL while another process holds a read transaction: what each task adds to it, and how soon it
shrinks once that reader lets go. A real second process holds the snapshot; the worker runs in this one."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sitq import SQLiteBackend, TaskQueue, Worker
from sitq_sqlite import maintenance

TASKS = 200
WAL_PER_TASK = 20_000
"""Bytes of WAL one task may add, enqueued, claimed and completed one at a time (about 60,000 before
schema version 4)."""

READER = """
import sqlite3, sys
reader = sqlite3.connect(sys.argv[1], isolation_level=None)
reader.execute("BEGIN")
reader.execute("SELECT count(*) FROM tasks").fetchall()
print("holding", flush=True)
sys.stdin.readline()
reader.execute("COMMIT")
print("let go", flush=True)
sys.stdin.readline()  # the process stays, its connection open, outside any transaction
"""


async def noop() -> None:
    return None


@contextmanager
def reader_process(path: Path) -> Iterator[subprocess.Popen[str]]:
    with subprocess.Popen(
        [sys.executable, "-c", READER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as reader:
        try:
            assert reader.stdout is not None and reader.stdout.readline() == "holding\n"
            yield reader
        finally:
            reader.kill()


def let_go(reader: subprocess.Popen[str]) -> None:
    assert reader.stdin is not None and reader.stdout is not None
    reader.stdin.write("\n")
    reader.stdin.flush()
    assert reader.stdout.readline() == "let go\n"


def wal_bytes(path: Path) -> int:
    return maintenance.file_bytes(f"{path}-wal")


async def test_a_held_reader_costs_little_wal_per_task_and_the_wal_shrinks_once_it_lets_go(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tasks.db"
    async with TaskQueue(SQLiteBackend(path)) as queue, Worker(queue, poll_interval=0.2):
        await queue.get_result(await queue.enqueue(noop), timeout=30)  # the schema and a first task
        with reader_process(path) as reader:
            before = wal_bytes(path)
            for _ in range(TASKS):  # one at a time: each task is its own enqueue, claim and completion
                assert await queue.get_result(await queue.enqueue(noop), timeout=30) is not None
            per_task = (wal_bytes(path) - before) / TASKS
            # More tasks, in batches, until the WAL is well past its limit: only the reader holds it there.
            while wal_bytes(path) <= 3 * maintenance.WAL_LIMIT:
                await asyncio.gather(*(queue.enqueue(noop) for _ in range(100)))
            held = wal_bytes(path)
            let_go(reader)
            for _ in range(600):  # a generous minute: the machine may be busy
                if wal_bytes(path) <= maintenance.WAL_LIMIT:
                    break
                await asyncio.sleep(0.1)
            after = wal_bytes(path)

    assert per_task <= WAL_PER_TASK, f"{per_task:.0f} bytes of WAL per task"
    assert held > 3 * maintenance.WAL_LIMIT
    assert after <= maintenance.WAL_LIMIT, f"the WAL is still {after} bytes"
