"""The hook implementations of sitq-tasklog, and nothing else.

sitq finds this module through the entry point ``tasklog`` in the group ``sitq``. Each function is named
after the hook it implements and declares only the arguments it uses. `hookimpl` is optional for
``sitq_*`` names; it is used here to make the intent explicit.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sitq import hookimpl
from sitq_tasklog import counts

logger = logging.getLogger("sitq_tasklog")  # the package logger, which has a NullHandler

# How long each running task waited in the queue, by task id: measured when it starts, logged when it ends.
_waited: dict[str, float] = {}


@hookimpl
def sitq_task_enqueued(task_id: str, task_name: str, eta: datetime) -> None:
    counts["task_enqueued"] += 1
    logger.debug("task %s (%s) enqueued, due at %s", task_id, task_name, eta.isoformat())


@hookimpl
def sitq_task_started(task_id: str, task_name: str, attempt: int, enqueued_at: datetime) -> None:
    counts["task_started"] += 1
    _waited[task_id] = (datetime.now(UTC) - enqueued_at).total_seconds()
    if attempt > 1:
        logger.info("task %s (%s) started again: attempt %d", task_id, task_name, attempt)


@hookimpl
def sitq_task_succeeded(task_id: str, task_name: str, duration: float) -> None:
    counts["task_succeeded"] += 1
    waited = _waited.pop(task_id, 0.0)
    logger.info("task %s (%s) succeeded in %.3fs after waiting %.3fs", task_id, task_name, duration, waited)


@hookimpl
def sitq_task_failed(task_id: str, task_name: str, duration: float, error: str, traceback: str) -> None:
    counts["task_failed"] += 1
    waited = _waited.pop(task_id, 0.0)
    logger.warning(
        "task %s (%s) failed in %.3fs after waiting %.3fs: %s", task_id, task_name, duration, waited, error
    )
    logger.debug("traceback of task %s:\n%s", task_id, traceback)


@hookimpl
def sitq_worker_started(worker_id: str, max_concurrency: int) -> None:
    counts["worker_started"] += 1
    logger.info("worker %s started, running up to %d tasks at once", worker_id, max_concurrency)


@hookimpl
async def sitq_worker_stopped(worker_id: str) -> None:
    # An async implementation: sitq awaits it. A real plugin might flush a metrics client here.
    counts["worker_stopped"] += 1
    logger.info(
        "worker %s stopped; this process has seen %d succeeded and %d failed tasks",
        worker_id,
        counts["task_succeeded"],
        counts["task_failed"],
    )
