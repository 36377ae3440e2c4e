"""Rows of the PostgreSQL backend's statements (see `queries`) to sitq's models, and models to rows.

Times are `timestamptz` (asyncpg hands back aware UTC datetimes); payloads and results `bytea`; options
are columns, the retry policy JSON text (`sitq.semantics`); a task's parents a JSON array of ids. A batch
travels as one array per column, which the statements unnest.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sitq.models import (
    AttemptOutcome,
    AttemptRecord,
    NewTask,
    ReservedTask,
    TaskOutcome,
    TaskRecord,
    TaskStatus,
)
from sitq.semantics import (
    first_outcomes,
    option_fields,
    parents_from_json,
    parents_to_json,
    task_options,
)


def columns(rows: Iterable[Sequence[object]], width: int) -> list[list[Any]]:
    """Rows turned into `width` column arrays, the parameters of a statement that unnests them."""
    arrays: list[list[Any]] = [[] for _ in range(width)]
    for row in rows:
        for array, value in zip(arrays, row, strict=True):
            array.append(value)
    return arrays


TASK_WIDTH = 21


def task_row(task: NewTask, *, unmet: int) -> tuple[object, ...]:
    """One row of `queries.INSERT`'s arrays for a new task."""
    return (
        task.id,
        task.name,
        task.serializer,
        task.payload,
        task.enqueued_at,
        task.eta,
        *option_fields(task.options),
        task.concurrency_key,
        unmet,
        parents_to_json(task.depends_on),
        task.workflow_id,
        task.unique_key,
    )


OUTCOME_WIDTH = 11


def outcome_rows(outcomes: Sequence[TaskOutcome]) -> list[tuple[object, ...]]:
    """The rows of `queries.COMPLETE`'s arrays for these outcomes (`sitq.semantics.first_outcomes` of
    them)."""
    rows: list[tuple[object, ...]] = []
    for outcome in first_outcomes(outcomes):
        retrying = outcome.status is TaskStatus.PENDING
        rows.append(
            (
                outcome.task_id,
                outcome.worker_id,
                outcome.status.value,
                outcome.outcome.value,
                outcome.finished_at,
                None if retrying else outcome.finished_at,
                outcome.retry_at if retrying else None,
                outcome.result,
                outcome.error,
                outcome.traceback,
                outcome.started_at,
            )
        )
    return rows


def record(row: Any) -> TaskRecord:
    """A TaskRecord from a row of `queries.GET`'s (or `queries.LIST`'s) columns."""
    (
        task_id,
        name,
        status,
        serializer,
        enqueued_at,
        eta,
        attempts,
        started_at,
        finished_at,
        worker_id,
        result,
        error,
        traceback,
        cancel_requested,
        depends_on,
        workflow_id,
        unique_key,
        limit_key,
        *options,
    ) = row
    return TaskRecord(
        id=task_id,
        name=name,
        status=TaskStatus(status),
        serializer=serializer,
        enqueued_at=enqueued_at,
        eta=eta,
        attempts=attempts,
        started_at=started_at,
        finished_at=finished_at,
        worker_id=worker_id,
        result=result,
        error=error,
        traceback=traceback,
        options=task_options(*options),
        cancel_requested=cancel_requested,
        depends_on=parents_from_json(depends_on),
        workflow_id=workflow_id,
        unique_key=unique_key,
        concurrency_key=limit_key,
    )


def claim_order(row: Any) -> tuple[int, datetime, int]:
    """The order a claim chose its rows in (RETURNING promises none): priority, eta, seq."""
    return (-row["priority"], row["eta"], row["seq"])


def reserved(row: Any, worker_id: str, now: datetime, expires: datetime) -> ReservedTask:
    """A ReservedTask from a row of a claim's columns (`queries.CLAIM_QUEUES`, `queries.CLAIM_TASK`)."""
    _, task_id, name, payload, serializer, attempts, enqueued_at, eta, *options, depends_on = row
    return ReservedTask(
        id=task_id,
        name=name,
        payload=payload,
        serializer=serializer,
        attempt=attempts,
        worker_id=worker_id,
        enqueued_at=enqueued_at,
        eta=eta,
        started_at=now,
        lease_expires_at=expires,
        options=task_options(*options),
        depends_on=parents_from_json(depends_on),
    )


def attempt_record(row: Any) -> AttemptRecord:
    """An AttemptRecord from a row of `queries.HISTORY`'s columns."""
    attempt, worker_id, started_at, finished_at, outcome, error = row
    return AttemptRecord(
        attempt=attempt,
        worker_id=worker_id,
        started_at=started_at,
        finished_at=finished_at,
        outcome=AttemptOutcome(outcome),
        error=error,
    )
