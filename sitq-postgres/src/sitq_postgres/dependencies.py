"""A task's parents and dependents in PostgreSQL: storing a batch that names parents, and cancelling the
pending dependents of a task that ended without success (`sitq.semantics.dependents_to_cancel` decides
which and with what error; one recursive query fetches the subgraph it walks).

Both run inside the caller's transaction, on its connection; `sql` qualifies a statement of `queries`
with the backend's schema.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sitq.errors import TaskNotFoundError
from sitq.models import NewTask, TaskStatus
from sitq.semantics import cascade_over_edges, ended_parent, missing_parent, unmet_parents
from sitq_postgres import queries
from sitq_postgres.rows import TASK_WIDTH, columns, task_row


async def store_with_parents(
    connection: Any, sql: Callable[[str], str], channel: str, tasks: Sequence[NewTask]
) -> None:
    """Store a batch that may name parents, in the caller's transaction; raise `TaskNotFoundError`
    (which rolls it back) for a parent neither stored nor earlier in the batch (`Backend.enqueue`)."""
    parent_ids = list(dict.fromkeys(parent for task in tasks for parent in task.depends_on))
    stored: dict[str, tuple[int, str, datetime | None]] = {}
    if parent_ids:
        for row in await connection.fetch(sql(queries.PARENTS), parent_ids):
            stored[row["id"]] = (row["seq"], row["status"], row["finished_at"])
    if missing := missing_parent(tasks, stored):
        raise TaskNotFoundError(missing)

    def status_of(parent: str) -> str | None:
        return stored[parent][1] if parent in stored else None

    rows = [task_row(task, unmet=unmet_parents(task, status_of)) for task in tasks]
    if tasks:
        await connection.execute(sql(queries.INSERT), *columns(rows, TASK_WIDTH))
        await connection.execute(queries.NOTIFY, channel)
    edges = [(parent, task.id) for task in tasks for parent in dict.fromkeys(task.depends_on)]
    if edges:
        await connection.execute(sql(queries.DEPEND), *columns(edges, 2))
    # A parent that already ended without success cancels the task at once, and what depends on it in
    # the batch: task by task, through its first such parent, as `sitq.backend.Backend.enqueue` says.
    for task in tasks:
        if (ended := ended_parent(task, status_of)) is None:
            continue
        seq, status, finished_at = stored[ended]
        at = task.enqueued_at if finished_at is None else finished_at
        for cancelled_seq, cancelled_id in await cancel_dependents(connection, sql, seq, ended, status, at):
            stored[cancelled_id] = (cancelled_seq, TaskStatus.CANCELLED, at)


async def cancel_dependents(
    connection: Any, sql: Callable[[str], str], seq: int, task_id: str, status: str, at: datetime
) -> list[tuple[int, str]]:
    """Cancel the pending tasks that depend on a task that ended without success, and theirs in turn,
    as `sitq.semantics.cascade_over_edges` decides on the subgraph one recursive query returns. Returns
    the cancelled tasks' seqs and ids."""
    edges = await connection.fetch(sql(queries.DEPENDENTS), seq)
    cancelled = cascade_over_edges(seq, task_id, status, edges)
    if cancelled:
        errors = [error for _, error in cancelled.values()]
        await connection.execute(sql(queries.CANCEL_DEPENDENTS), at, list(cancelled), errors)
    return [(node, child_id) for node, (child_id, _) in cancelled.items()]
