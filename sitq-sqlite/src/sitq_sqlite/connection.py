"""sitq-sqlite's connection to its file: aiosqlite's thread, and transactions run on it in one hop.

Every change of several statements runs as one call on aiosqlite's thread (`on_thread`) inside one
`BEGIN IMMEDIATE` transaction (`in_transaction`), taken with a busy wait tuned to sitq's short writes;
every other statement runs with `fetch_all`, and waits with SQLite's own busy handler (`BusyWait`).
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sitq.errors import BackendError
from sitq_sqlite import faults, queries

if TYPE_CHECKING:
    import aiosqlite

_T = TypeVar("_T")

# Waiting for another connection's write lock: see begin_immediate.
_FIRST_BUSY_DELAY = 0.00005
_MAX_BUSY_DELAY = 0.005


async def on_thread(conn: aiosqlite.Connection, function: Callable[..., _T], *args: Any) -> _T:
    """Call `function` with the connection's `sqlite3.Connection` on aiosqlite's thread, in one hop:
    several statements, a whole transaction, with no event-loop round trip between them.

    The one place sitq-sqlite uses aiosqlite's private `_execute` and `_conn` (hence the pinned range
    in pyproject.toml): aiosqlite offers no public way to do this.
    """
    result: _T = await conn._execute(function, conn._conn, *args)  # type: ignore[no-untyped-call]  # aiosqlite leaves it untyped
    return result


class BusyWait:
    """Who waits for another connection's lock on one connection, for up to `seconds`: SQLite's own busy
    handler (``PRAGMA busy_timeout``) for a statement on its own, `begin_immediate` for a transaction.

    Only aiosqlite's thread uses it. The pragma is run only when the waiter changes, so that a run of
    transactions (a producer enqueueing one task after another) runs none.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._pragma = f"PRAGMA busy_timeout = {int(seconds * 1000)}"
        self._by_sqlite = True  # as sqlite3.connect(timeout=seconds) leaves a new connection

    def by_sqlite(self, db: sqlite3.Connection) -> None:
        if not self._by_sqlite:
            db.execute(self._pragma)
            self._by_sqlite = True

    def by_sitq(self, db: sqlite3.Connection) -> None:
        """SQLite's handler off: a busy lock fails at once, and the caller decides how to wait."""
        if self._by_sqlite:
            db.execute("PRAGMA busy_timeout = 0")
            self._by_sqlite = False


def fetch_all(db: sqlite3.Connection, waits: BusyWait, sql: str, parameters: Any = ()) -> list[Any]:
    """One statement on its own (a read, or a change of one statement), waiting as SQLite does."""
    waits.by_sqlite(db)
    return db.execute(sql, parameters).fetchall()


def in_transaction(db: sqlite3.Connection, body: Callable[[sqlite3.Connection], _T], waits: BusyWait) -> _T:
    begin_immediate(db, waits)
    try:
        result = body(db)
        db.execute("COMMIT")
    except BaseException as exc:
        roll_back(db, exc)
        raise
    return result


def roll_back(db: sqlite3.Connection, cause: BaseException) -> None:
    """Roll back after `cause`, which stays the error raised: a ROLLBACK that fails too is only noted.

    SQLite itself may have rolled the transaction back already: a COMMIT that finds the disk full, or
    an I/O error, ends the transaction, and a ROLLBACK then would fail with "no transaction is active".
    """
    if not db.in_transaction:
        return
    try:
        db.execute("ROLLBACK")
    except sqlite3.Error as failed:
        faults.rollback_failed(cause, failed)


def begin_immediate(db: sqlite3.Connection, waits: BusyWait) -> None:
    """Take the write lock, retrying every fraction of a millisecond while another connection holds it.

    SQLite's own busy handler sleeps 1, 2, 5, 10 ms and more between tries, while a sitq write holds the
    lock for well under a millisecond: with several workers on one file, they would spend more time
    asleep than writing. Here the waits start at 50 µs and double up to 5 ms (with jitter, so that
    waiters do not retry in step), until `waits.seconds` have passed. SQLite's handler stays off for the
    rest of the transaction, which holds the write lock and in WAL mode waits for no one.
    """
    waits.by_sitq(db)
    deadline = time.monotonic() + waits.seconds
    delay = _FIRST_BUSY_DELAY
    while True:
        try:
            db.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF != sqlite3.SQLITE_BUSY:
                raise
            if time.monotonic() + delay > deadline:
                raise
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, _MAX_BUSY_DELAY)


async def check_json(conn: aiosqlite.Connection) -> None:
    """Lists of ids and queues are bound as one JSON array each; SQLite before 3.38 could be built without
    its JSON functions."""
    try:
        await conn.execute(queries.JSON_CHECK)
    except sqlite3.OperationalError as exc:
        raise BackendError(
            f"sitq-sqlite needs SQLite's JSON functions, but this Python's SQLite {sqlite3.sqlite_version} "
            f"lacks them ({exc}); use a Python built with SQLite 3.38 or newer"
        ) from exc


def daemon_connection(opened: sqlite3.Connection) -> aiosqlite.Connection:
    """An aiosqlite connection on `opened` whose thread does not hold the interpreter open at exit.

    aiosqlite's thread is not a daemon, so a backend its user never closed (a module-level queue in a web
    app, say) would keep the interpreter from exiting. aiosqlite has no option for it, but a thread is a
    daemon when the thread that creates it is one, and aiosqlite creates its thread with the connection
    (0.20 to 0.22, the versions sitq-sqlite allows). Every write is committed before it returns, so
    letting the thread die with the process loses nothing.
    """
    import aiosqlite  # here, not at the top: listing the installed backends must stay cheap

    made: list[aiosqlite.Connection] = []
    creator = threading.Thread(
        target=lambda: made.append(aiosqlite.Connection(lambda: opened, iter_chunk_size=64)),
        name="sitq-sqlite-connect",
        daemon=True,
    )
    creator.start()
    creator.join()  # at once: creating a connection only builds objects, its thread starts on `await`
    return made[0]
