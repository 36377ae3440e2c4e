"""Keeping a sitq SQLite file small: the WAL's size, checkpoints in the gaps between readers, compaction.

In WAL mode every commit appends the pages it changed to the ``-wal`` file; a checkpoint copies them back
into the database file, and once every page is back and no reader still looks at the old ones, the next
writer starts the WAL over from its beginning. SQLite checkpoints by itself (PASSIVE, after a commit
that leaves more than `AUTOCHECKPOINT_BYTES` in the WAL), but a checkpoint cannot go past the snapshot of
the oldest open read transaction: while a reader holds one (a report, a backup, a `sqlite3` shell left
in a transaction), the WAL only grows, and SQLite alone never shrinks its file afterwards.

So, on each connection, sitq:

- sets ``journal_size_limit`` to `WAL_LIMIT`: whenever the WAL starts over, its file is cut back to that;
- looks, at most once per `CHECK_INTERVAL` seconds, after its own writes and while a worker is idle,
  whether the WAL file is larger than `WAL_LIMIT`; if so it runs ``wal_checkpoint(TRUNCATE)`` in the
  background, without waiting for anyone (busy timeout 0). While a reader holds an old snapshot that
  copies back what it can and leaves the file alone; in the first gap with no reader behind, it empties
  the file. A long reader thus delays the shrinking, and about a second after it lets go, the WAL is
  small again.

What a long reader costs meanwhile is the WAL written per task, which schema version 4 keeps small.
Pages freed by deleting tasks go to the file's free list, and later writes reuse them; `compact` gives
them back to the file system (``PRAGMA incremental_vacuum``; a file created before sitq-sqlite set
``auto_vacuum = INCREMENTAL`` is converted by one ``VACUUM`` first) and then empties the WAL.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time

from sitq_sqlite.connection import BusyWait

logger = logging.getLogger(__name__)

WAL_LIMIT = 4 * 1024 * 1024
"""Bytes of WAL file kept between checkpoints; beyond this, sitq checkpoints it away when it can."""
AUTOCHECKPOINT_BYTES = 3 * 1024 * 1024
"""SQLite checkpoints after a commit that leaves more than this in the WAL, below `WAL_LIMIT` so that
its ordinary cycles never need cutting back."""
CHECK_INTERVAL = 1.0
"""Seconds between two looks at the WAL's size."""
_INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL


def file_bytes(path: str) -> int:
    """The size of a file, 0 if it does not exist."""
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def disk_bytes(path: str) -> int:
    """What the database takes on disk: its file and its WAL (the shared-memory index is left out: it is
    a few pages, rebuilt at will)."""
    return file_bytes(path) + file_bytes(path + "-wal")


def configure(db: sqlite3.Connection) -> None:
    """The per-connection settings above; `AUTOCHECKPOINT_BYTES` in pages of this file's size."""
    ((page_size,),) = db.execute("PRAGMA page_size").fetchall()
    # PRAGMA values cannot be bound as parameters; these are integers this module computes.
    db.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT}").fetchall()
    db.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_BYTES // page_size}").fetchall()


def checkpoint(db: sqlite3.Connection, waits: BusyWait) -> bool:
    """Copy the WAL back and empty its file, without waiting for readers or writers; True if it emptied
    it, False if someone still needed it (what could be copied is copied all the same)."""
    waits.by_sitq(db)
    ((busy, _, _),) = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    return not busy


def compact(db: sqlite3.Connection, waits: BusyWait) -> None:
    """Give the file's free pages back to the file system, then empty the WAL if no reader needs it."""
    waits.by_sqlite(db)
    ((auto_vacuum,),) = db.execute("PRAGMA auto_vacuum").fetchall()
    if auto_vacuum == _INCREMENTAL:
        # executescript steps it to the end; execute() would stop after its first page (it yields an
        # empty row per page freed).
        db.executescript("PRAGMA incremental_vacuum")
    else:
        # A file from before schema version 4: VACUUM rewrites it whole, which also applies the
        # auto_vacuum mode every connection asks for, so the next compaction is incremental.
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")
        db.execute("VACUUM")
    checkpoint(db, waits)


class WalWatch:
    """When to checkpoint: at most once per `CHECK_INTERVAL`, when the WAL file is past `WAL_LIMIT`; and
    a log line when checkpoints start or stop failing, not one per try."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._wal = path + "-wal"
        self._next_look = 0.0
        self._failing = False

    def due(self) -> bool:
        now = time.monotonic()
        if now < self._next_look:
            return False
        self._next_look = now + CHECK_INTERVAL
        return file_bytes(self._wal) > WAL_LIMIT

    def failed(self, exc: Exception) -> None:
        if not self._failing:
            self._failing = True
            logger.warning("cannot checkpoint the WAL of %s, so it stays large for now: %s", self._path, exc)

    def succeeded(self) -> None:
        if self._failing:
            self._failing = False
            logger.info("checkpointing the WAL of %s works again", self._path)
