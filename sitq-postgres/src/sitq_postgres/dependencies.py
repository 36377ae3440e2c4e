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
from sitq.semantics import ENDED_WITHOUT_SUCCESS, dependents_to_cancel
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
    known = set(stored)
    for task in tasks:
        if missing := next((parent for parent in task.depends_on if parent not in known), None):
            raise TaskNotFoundError(missing)
        known.add(task.id)
    rows = [
        task_row(
            task,
            unmet=sum(
                parent not in stored or stored[parent][1] != TaskStatus.SUCCESS
                for parent in set(task.depends_on)
            ),
        )
        for task in tasks
    ]
    if tasks:
        await connection.execute(sql(queries.INSERT), *columns(rows, TASK_WIDTH))
        await connection.execute(queries.NOTIFY, channel)
    edges = [(parent, task.id) for task in tasks for parent in dict.fromkeys(task.depends_on)]
    if edges:
        await connection.execute(sql(queries.DEPEND), *columns(edges, 2))
    # A parent that already ended without success cancels the task at once, and what depends on it in
    # the batch: task by task, through its first such parent, as `sitq.backend.Backend.enqueue` says.
    for task in tasks:
        ended = next(
            (p for p in task.depends_on if p in stored and stored[p][1] in ENDED_WITHOUT_SUCCESS), None
        )
        if ended is None:
            continue
        seq, status, finished_at = stored[ended]
        at = task.enqueued_at if finished_at is None else finished_at
        for cancelled_seq, cancelled_id in await cancel_dependents(connection, sql, seq, ended, status, at):
            stored[cancelled_id] = (cancelled_seq, TaskStatus.CANCELLED, at)


async def cancel_dependents(
    connection: Any, sql: Callable[[str], str], seq: int, task_id: str, status: str, at: datetime
) -> list[tuple[int, str]]:
    """Cancel the pending tasks that depend on a task that ended without success, and theirs in turn,
    in the order and with the errors of `sitq.semantics.dependents_to_cancel`, on the subgraph one
    recursive query returns. Returns the cancelled tasks' seqs and ids."""
    children: dict[int, list[tuple[int, str]]] = {}
    for parent_seq, child_seq, child_id in await connection.fetch(sql(queries.DEPENDENTS), seq):
        children.setdefault(parent_seq, []).append((child_seq, child_id))
    if not children:
        return []
    for edges in children.values():
        edges.sort()
    cancelled = dependents_to_cancel(seq, task_id, status, lambda node: children.get(node, ()))
    await connection.execute(sql(queries.CANCEL_DEPENDENTS), at, list(cancelled), list(cancelled.values()))
    ids = {child_seq: child_id for edges in children.values() for child_seq, child_id in edges}
    return [(child_seq, ids[child_seq]) for child_seq in cancelled]
