"""The SQLite backend's changes of several statements, each run inside the caller's transaction on the
`sqlite3.Connection` of aiosqlite's thread (see `connection.in_transaction`): storing a batch and its
parents' edges, cancelling dependents, taking back lost leases, recording outcomes.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence

from sitq.errors import ConfigurationError, TaskNotFoundError
from sitq.models import NewTask, TaskStatus
from sitq.semantics import (
    CANCELLED_WHILE_RUNNING,
    ENDED_WITHOUT_SUCCESS,
    LOST_AFTER_WORKER,
    LOST_BEFORE_WORKER,
    NO_ATTEMPTS_LEFT,
    cached_since,
    cascade_over_edges,
    ended_parent,
    key_holders,
    keyed,
    missing_parent,
    unmet_parents,
)
from sitq_sqlite import queries
from sitq_sqlite.rows import task_row, utc_time


def store(db: sqlite3.Connection, tasks: Sequence[NewTask], rows: Sequence[tuple[object, ...]]) -> None:
    """Insert the tasks' rows (from `rows.task_row`), then their payloads beside them.

    A lone row (one `enqueue`) gets its seq from SQLite, and its payload the rowid SQLite reports. A
    batch's rows get the seqs SQLite would give them (one past the largest, in order), numbered here so
    that two `executemany` calls store it all, with no lookup by id: the caller's write lock keeps the
    largest from moving meanwhile.
    """
    if len(rows) == 1:
        seq = db.execute(queries.INSERT, (None, *rows[0])).lastrowid
        db.execute(queries.INSERT_PAYLOAD, (seq, tasks[0].payload))
        return
    ((last,),) = db.execute(queries.LAST_SEQ).fetchall()
    db.executemany(queries.INSERT, [(seq, *row) for seq, row in enumerate(rows, last + 1)])
    db.executemany(queries.INSERT_PAYLOAD, [(seq, task.payload) for seq, task in enumerate(tasks, last + 1)])


def store_checked(db: sqlite3.Connection, tasks: Sequence[NewTask]) -> list[str]:
    """Store a batch that may name parents or unique keys, in the caller's write transaction, leaving out
    the tasks whose key another task holds; return the id each task goes by (`Backend.enqueue`). The
    write lock is held from the read of the keys' holders to the insert, so nothing comes between."""
    task_ids = [task.id for task in tasks]
    if keys := keyed(tasks):
        since = cached_since(tasks)
        found = db.execute(
            queries.KEY_HOLDERS,
            {"keys": json.dumps(keys), "since": None if since is None else since.timestamp()},
        )
        stored = [
            (key, task_id, status, None if finished_at is None else utc_time(finished_at))
            for key, task_id, status, finished_at in found
        ]
        task_ids = key_holders(tasks, stored)
        tasks = [task for task, task_id in zip(tasks, task_ids, strict=True) if task.id == task_id]
    store_with_parents(db, tasks)
    return task_ids


def store_in_savepoint(connection: sqlite3.Connection, path: str, tasks: Sequence[NewTask]) -> list[str]:
    """Store a batch through the application's connection to `path`, in its transaction (begun if none
    is), inside a savepoint that undoes the batch alone when it is refused."""
    ((_, _, file),) = connection.execute("PRAGMA main.database_list").fetchall()
    if not file or os.path.realpath(file) != os.path.realpath(path):
        raise ConfigurationError(
            f"the application's connection is to {file or 'an in-memory database'!r}, not to the "
            f"queue's file {path!r}: open it with sqlite3.connect({path!r})"
        )
    if not connection.in_transaction:
        connection.execute("BEGIN")
    connection.execute("SAVEPOINT sitq_enqueue")
    try:
        return store_checked(connection, tasks)
    except BaseException:
        connection.execute("ROLLBACK TO sitq_enqueue")
        raise
    finally:
        connection.execute("RELEASE sitq_enqueue")


def store_with_parents(db: sqlite3.Connection, tasks: Sequence[NewTask]) -> None:
    """Store a batch that names parents, in the caller's transaction; raise `TaskNotFoundError` (which
    rolls it back) for a parent neither stored nor earlier in the batch (`Backend.enqueue`)."""
    parent_ids = list(dict.fromkeys(parent for task in tasks for parent in task.depends_on))
    stored: dict[str, tuple[int, str, float | None]] = {
        task_id: (seq, status, finished_at)
        for task_id, seq, status, finished_at in db.execute(
            queries.PARENTS, {"parents": json.dumps(parent_ids)}
        )
    }

    def status_of(parent: str) -> str | None:
        return stored[parent][1] if parent in stored else None

    store(db, tasks, [task_row(task, unmet=unmet_parents(task, status_of)) for task in tasks])
    # A duplicate id failed above, before any parent was looked at.
    if missing := missing_parent(tasks, stored):
        raise TaskNotFoundError(missing)
    db.executemany(
        queries.DEPEND, [(parent, task.id) for task in tasks for parent in dict.fromkeys(task.depends_on)]
    )
    # A parent that already ended without success cancels the task at once, and what depends on it in
    # the batch: task by task, through its first such parent, as `sitq.backend.Backend.enqueue` says.
    for task in tasks:
        if (ended := ended_parent(task, status_of)) is None:
            continue
        seq, status, finished_at = stored[ended]
        at = task.enqueued_at.timestamp() if finished_at is None else finished_at
        for cancelled_seq, cancelled_id in cancel_dependents(db, seq, ended, status, at):
            stored[cancelled_id] = (cancelled_seq, TaskStatus.CANCELLED, at)


def cancel_dependents(
    db: sqlite3.Connection, seq: int, task_id: str, status: str, at: object
) -> list[tuple[int, str]]:
    """Cancel the pending tasks that depend on a task that ended without success, and theirs in turn,
    as `sitq.semantics.cascade_over_edges` decides on the subgraph one recursive query returns. Returns
    the cancelled tasks' seqs and ids."""
    cancelled = cascade_over_edges(seq, task_id, status, db.execute(queries.DEPENDENTS, (seq,)))
    db.executemany(queries.CANCEL_DEPENDENT, [(at, error, node) for node, (_, error) in cancelled.items()])
    return [(node, child_id) for node, (child_id, _) in cancelled.items()]


def recover_lost(db: sqlite3.Connection, now: object, *, end: bool) -> list[str]:
    """Take back the tasks whose leases expired before `now`, in the caller's transaction: pending again,
    or with `end`, also ended (failed, or cancelled as requested). Return the ids of those ended."""
    lost = {
        "now": now,
        "lost": LOST_BEFORE_WORKER,
        "lost_after": LOST_AFTER_WORKER,
        "no_attempts": NO_ATTEMPTS_LEFT,
        "cancelled": CANCELLED_WHILE_RUNNING,
        "end": end,
    }
    # The history insert doubles as the check: the common case, nothing lost, is one index probe.
    if not db.execute(queries.LOST_HISTORY, lost).fetchall():
        return []
    ended = []
    recovered = sorted(db.execute(queries.RECOVER_LOST, lost).fetchall())
    db.execute(queries.FORGET_RESULTS, (json.dumps([row[0] for row in recovered]),))
    # In enqueue order: the order of the cascades is part of the stored errors.
    for seq, task_id, status, finished_at in recovered:
        if status != TaskStatus.PENDING:
            ended.append(task_id)
            cancel_dependents(db, seq, task_id, status, finished_at)
    return ended


def record_outcomes(db: sqlite3.Connection, rows: Sequence[dict[str, object]]) -> None:
    """Apply ended attempts, inside the caller's transaction: history rows, task rows, dependents."""
    if not rows:
        return
    db.executemany(queries.COMPLETE_HISTORY, rows)
    ended: list[tuple[int, str, str, object]] = []
    left: list[tuple[int, object, object]] = []
    for row in rows:
        for seq, status in db.execute(queries.COMPLETE, row).fetchall():
            left.append((seq, row["result"], row["traceback"]))
            if status == TaskStatus.SUCCESS:
                db.execute(queries.MET, (seq,))
            elif status in ENDED_WITHOUT_SUCCESS:
                ended.append((seq, str(row["task_id"]), status, row["finished_at"]))
    # What each attempt left replaces what an earlier attempt of its task left, even when it is nothing.
    db.executemany(queries.SET_RESULT, [kept for kept in left if kept[1] is not None or kept[2] is not None])
    if nothing := [seq for seq, result, traceback in left if result is None and traceback is None]:
        db.execute(queries.FORGET_RESULTS, (json.dumps(nothing),))
    # Only pending tasks are cancelled, and only running ones completed: cancelling after every outcome is
    # applied ends the same tasks, with the same errors, as cancelling after each.
    for seq, task_id, status, finished_at in ended:
        cancel_dependents(db, seq, task_id, status, finished_at)
