"""The hook implementations of sitq-prometheus, and nothing else.

sitq registers this module through the entry point ``prometheus`` in the group ``sitq``, in every process
that uses sitq, so it imports prometheus_client only when the first event arrives. Each hook hands its
event to this process's `TaskMetrics`, in prometheus_client's default registry. A worker that starts also
serves the metrics on ``$SITQ_PROMETHEUS_PORT``, where that is set.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import TYPE_CHECKING

from sitq import hookimpl

if TYPE_CHECKING:
    from sitq_prometheus.metrics import TaskMetrics

_lock = threading.Lock()
_metrics: TaskMetrics | None = None


def process_metrics() -> TaskMetrics:
    """This process's metrics in the default registry, made on first use (a registry takes each name once)."""
    global _metrics
    with _lock:
        if _metrics is None:
            from prometheus_client import REGISTRY

            from sitq_prometheus.metrics import TaskMetrics

            _metrics = TaskMetrics(REGISTRY)
        return _metrics


@hookimpl
def sitq_task_enqueued(task_name: str, queue: str) -> None:
    process_metrics().sitq_task_enqueued(task_name, queue)


@hookimpl
def sitq_task_started(
    task_id: str, task_name: str, queue: str, worker_id: str, attempt: int, enqueued_at: datetime
) -> None:
    process_metrics().sitq_task_started(task_id, task_name, queue, worker_id, attempt, enqueued_at)


@hookimpl
def sitq_task_succeeded(task_id: str, task_name: str, queue: str, worker_id: str, duration: float) -> None:
    process_metrics().sitq_task_succeeded(task_id, task_name, queue, worker_id, duration)


@hookimpl
def sitq_task_failed(task_id: str, task_name: str, queue: str, worker_id: str, duration: float) -> None:
    process_metrics().sitq_task_failed(task_id, task_name, queue, worker_id, duration)


@hookimpl
def sitq_task_retried(task_id: str, task_name: str, queue: str, worker_id: str) -> None:
    process_metrics().sitq_task_retried(task_id, task_name, queue, worker_id)


@hookimpl
def sitq_task_timed_out(task_name: str, queue: str) -> None:
    process_metrics().sitq_task_timed_out(task_name, queue)


@hookimpl
def sitq_task_cancelled(task_id: str, task_name: str, queue: str, worker_id: str | None) -> None:
    process_metrics().sitq_task_cancelled(task_id, task_name, queue, worker_id)


@hookimpl
def sitq_worker_started() -> None:
    from sitq_prometheus.server import serve_from_environment

    process_metrics()  # registered before the first scrape, so that it lists every metric
    serve_from_environment()


@hookimpl
def sitq_worker_stopped(worker_id: str) -> None:
    process_metrics().sitq_worker_stopped(worker_id)
