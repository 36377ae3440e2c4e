"""Rows of the SQLite backend's statements (see `queries`) to sitq's models, and models to rows.

Times are stored as seconds since the epoch (UTC); options as columns, the retry policy as JSON; a
task's parents as a JSON list of ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
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


def utc_time(seconds: float) -> datetime:
    """A stored time: seconds since the epoch, as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


def task_row(task: NewTask, *, unmet: int) -> tuple[object, ...]:
    """The parameters of `queries.INSERT` for a new task, but its seq (numbered when it is stored)."""
    return (
        task.id,
        task.name,
        task.serializer,
        task.enqueued_at.timestamp(),
        task.eta.timestamp(),
        *option_fields(task.options),
        task.concurrency_key,
        unmet,
        parents_to_json(task.depends_on),
        task.workflow_id,
        task.unique_key,
    )


def outcome_rows(outcomes: Sequence[TaskOutcome]) -> list[dict[str, object]]:
    """The parameters for recording these outcomes (`sitq.semantics.first_outcomes` of them)."""
    return [outcome_params(outcome) for outcome in first_outcomes(outcomes)]


def outcome_params(outcome: TaskOutcome) -> dict[str, object]:
    """The parameters of `queries.COMPLETE_HISTORY` and `queries.COMPLETE` (and of the results kept)."""
    retrying = outcome.status is TaskStatus.PENDING
    finished_at = outcome.finished_at.timestamp()
    return {
        "task_id": outcome.task_id,
        "worker_id": outcome.worker_id,
        "status": outcome.status.value,
        "outcome": outcome.outcome.value,
        "started_at": None if outcome.started_at is None else outcome.started_at.timestamp(),
        "finished_at": finished_at,
        "finished_at_or_null": None if retrying else finished_at,
        "retry_at": outcome.retry_at.timestamp() if retrying and outcome.retry_at else None,
        "result": outcome.result,
        "error": outcome.error,
        "traceback": outcome.traceback,
    }


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
        enqueued_at=utc_time(enqueued_at),
        eta=utc_time(eta),
        attempts=attempts,
        started_at=None if started_at is None else utc_time(started_at),
        finished_at=None if finished_at is None else utc_time(finished_at),
        worker_id=worker_id,
        result=result,
        error=error,
        traceback=traceback,
        options=task_options(*options),
        cancel_requested=bool(cancel_requested),
        depends_on=parents_from_json(depends_on),
        workflow_id=workflow_id,
        unique_key=unique_key,
        concurrency_key=limit_key,
    )


def reserved(row: Any, worker_id: str, now: datetime, expires: datetime) -> ReservedTask:
    """A ReservedTask from a row of a claim's columns (`queries.CLAIM_TASK`, `queries.claim_sql`)."""
    _, task_id, name, payload, serializer, attempts, enqueued_at, eta, *options, depends_on = row
    return ReservedTask(
        id=task_id,
        name=name,
        payload=payload,
        serializer=serializer,
        attempt=attempts,
        worker_id=worker_id,
        enqueued_at=utc_time(enqueued_at),
        eta=utc_time(eta),
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
        started_at=utc_time(started_at),
        finished_at=utc_time(finished_at),
        outcome=AttemptOutcome(outcome),
        error=error,
    )
