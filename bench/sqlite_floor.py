"""The raw-`sqlite3` bound that any Python SQLite queue sits under: no queue library, only the standard
`sqlite3` module, one table and one index, in WAL mode, at ``synchronous=FULL`` and at ``NORMAL``.

- insert: one single-row ``INSERT`` per transaction (what one-at-a-time enqueue costs at least);
- batch insert: ``executemany`` of 1,000 rows (``--insert-batch``) per transaction (what
  ``enqueue_many`` costs at least);
- claim: claim-and-complete in batches of 100: one transaction sets 100 due rows running and returns
  them, a second marks them done (what draining costs at least, with group commit).

It also times a bare ``fsync`` of a small file in the same directory. Prints one JSON line;
``python3 bench/sqlite_floor.py --tasks 10000 [--insert-batch 1000] [--dir DIR]``. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path

BATCH = 100
"""Rows claimed, and then completed, per transaction."""
INSERT_BATCH = 1_000
"""Rows per transaction of the batched insert, by default (bench/run.py passes its ``--batch``)."""
SCHEMA = (
    "CREATE TABLE tasks (id INTEGER PRIMARY KEY, status TEXT NOT NULL, eta REAL NOT NULL, payload BLOB)",
    "CREATE INDEX tasks_status_eta ON tasks (status, eta)",
)
PAYLOAD = b"x" * 64


def connect(path: Path, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)  # autocommit: transactions are explicit below
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    return conn


INSERT = "INSERT INTO tasks (status, eta, payload) VALUES ('pending', ?, ?)"


def new_table(path: Path, synchronous: str) -> sqlite3.Connection:
    conn = connect(path, synchronous)
    for statement in SCHEMA:
        conn.execute(statement)
    return conn


def inserts_per_second(directory: Path, synchronous: str, tasks: int) -> float:
    """Rows/s stored by one single-row ``INSERT`` per transaction (autocommit)."""
    conn = new_table(directory / f"insert-{synchronous}.db", synchronous)
    started = time.perf_counter()
    for _ in range(tasks):
        conn.execute(INSERT, (time.time(), PAYLOAD))
    seconds = time.perf_counter() - started
    conn.close()
    return tasks / seconds


def batch_inserts_per_second(directory: Path, synchronous: str, tasks: int, batch: int) -> float:
    """Rows/s stored by one ``executemany`` of `batch` rows per transaction."""
    conn = new_table(directory / f"batch-{synchronous}.db", synchronous)
    started = time.perf_counter()
    for start in range(0, tasks, batch):
        now = time.time()
        conn.execute("BEGIN")
        conn.executemany(INSERT, ((now, PAYLOAD) for _ in range(min(batch, tasks - start))))
        conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    conn.close()
    return tasks / seconds


def claims_per_second(directory: Path, synchronous: str, tasks: int) -> float:
    conn = new_table(directory / f"claim-{synchronous}.db", synchronous)
    now = time.time()
    conn.execute("BEGIN")
    conn.executemany(INSERT, ((now, PAYLOAD) for _ in range(tasks)))
    conn.execute("COMMIT")
    done = 0
    started = time.perf_counter()
    while True:
        conn.execute("BEGIN IMMEDIATE")
        claimed = [
            row[0]
            for row in conn.execute(
                "UPDATE tasks SET status = 'running' WHERE id IN (SELECT id FROM tasks"
                " WHERE status = 'pending' AND eta <= ? ORDER BY eta LIMIT ?) RETURNING id, payload",
                (time.time(), BATCH),
            )
        ]
        conn.execute("COMMIT")
        if not claimed:
            break
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("UPDATE tasks SET status = 'done' WHERE id = ?", ((task_id,) for task_id in claimed))
        conn.execute("COMMIT")
        done += len(claimed)
    seconds = time.perf_counter() - started
    conn.close()
    assert done == tasks, (done, tasks)
    return tasks / seconds


def fsync_ms(directory: Path, times: int = 200) -> float:
    """Milliseconds per write-and-fsync of 4 KiB, the price of one durable commit on this disk."""
    fd = os.open(directory / "fsync.bin", os.O_WRONLY | os.O_CREAT)
    try:
        started = time.perf_counter()
        for _ in range(times):
            os.pwrite(fd, b"\0" * 4096, 0)
            os.fsync(fd)
        return (time.perf_counter() - started) / times * 1000
    finally:
        os.close(fd)


def measure(tasks: int, insert_batch: int = INSERT_BATCH, directory: Path | None = None) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="sitq-floor-", dir=directory) as name:
        where = Path(name)
        figures: dict[str, object] = {
            "tasks": tasks,
            "batch": BATCH,
            "insert_batch": insert_batch,
            "fsync_ms": fsync_ms(where),
        }
        for synchronous in ("FULL", "NORMAL"):
            level = synchronous.lower()
            figures[f"insert_{level}"] = inserts_per_second(where, synchronous, tasks)
            figures[f"batch_insert_{level}"] = batch_inserts_per_second(
                where, synchronous, tasks, insert_batch
            )
            figures[f"claim_{level}"] = claims_per_second(where, synchronous, tasks)
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument(
        "--insert-batch", type=int, default=INSERT_BATCH, help="rows per transaction of the batched insert"
    )
    parser.add_argument(
        "--dir", type=Path, default=None, help="where the throwaway files go (default: TMPDIR)"
    )
    args = parser.parse_args()
    print(json.dumps(measure(args.tasks, args.insert_batch, args.dir)), flush=True)


if __name__ == "__main__":
    main()
