"""`TaskMetrics`: the Prometheus metrics of sitq's tasks, and the hook implementations that update them."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LABELS = ("queue", "task_name")

# Tasks run from milliseconds to an hour, and may wait as long: prometheus_client's default buckets stop
# at 10 seconds, made for web requests.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class TaskMetrics:
    """Counters, histograms and a gauge of the task events seen in this process, in one registry.

    It is a complete sitq plugin: its methods are named after the hooks they implement. The installed
    plugin keeps one in prometheus_client's default registry, which takes each metric name once; pass one
    on a registry of your own with ``plugins=[TaskMetrics(CollectorRegistry())]`` to count there too.

    Counters and histograms are labelled by ``queue`` and ``task_name``; the gauge of tasks in flight by
    ``queue`` alone. Producers count ``enqueued`` (and ``cancelled`` for pending tasks); workers the rest.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        namespace: str = "sitq",
        buckets: Sequence[float] = BUCKETS,
    ) -> None:
        def counter(name: str, documentation: str) -> Counter:
            return Counter(name, documentation, LABELS, namespace=namespace, registry=registry)

        self.enqueued = counter("tasks_enqueued", "Tasks stored by a producer in this process.")
        self.started = counter("tasks_started", "Attempts started, the first and every retry.")
        self.succeeded = counter("tasks_succeeded", "Tasks that returned.")
        self.failed = counter(
            "tasks_failed", "Tasks that failed for good: their last attempt raised or timed out."
        )
        self.retried = counter("tasks_retried", "Attempts that failed or timed out and will run again.")
        self.timed_out = counter("tasks_timed_out", "Attempts that ran past their timeout.")
        self.cancelled = counter(
            "tasks_cancelled", "Tasks cancelled: pending ones by the caller of cancel(), running ones here."
        )
        self.duration = Histogram(
            "task_duration_seconds",
            "Run time of the attempt that ended the task, succeeded or failed.",
            LABELS,
            namespace=namespace,
            registry=registry,
            buckets=buckets,
        )
        self.wait = Histogram(
            "task_wait_seconds",
            "Time from enqueueing a task to the start of its first attempt (including any eta delay).",
            LABELS,
            namespace=namespace,
            registry=registry,
            buckets=buckets,
        )
        # livesum: in prometheus_client's multiprocess mode, the sum over the live worker processes.
        self.in_flight = Gauge(
            "tasks_in_flight",
            "Attempts running now.",
            ("queue",),
            namespace=namespace,
            registry=registry,
            multiprocess_mode="livesum",
        )
        # The attempts counted in `in_flight`, by (worker, task): hooks may come from several event loops
        # (workers in threads), and a retried or cancelled attempt ends without succeeded or failed.
        self._running: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def sitq_task_enqueued(self, task_name: str, queue: str) -> None:
        self.enqueued.labels(queue, task_name).inc()

    def sitq_task_started(
        self, task_id: str, task_name: str, queue: str, worker_id: str, attempt: int, enqueued_at: datetime
    ) -> None:
        self.started.labels(queue, task_name).inc()
        if attempt == 1:  # a retry's enqueued_at is the first attempt's: its wait would count them both
            waited = (datetime.now(UTC) - enqueued_at).total_seconds()
            self.wait.labels(queue, task_name).observe(max(waited, 0.0))
        with self._lock:
            if (worker_id, task_id) in self._running:
                return
            self._running[worker_id, task_id] = queue
        self.in_flight.labels(queue).inc()

    def sitq_task_succeeded(
        self, task_id: str, task_name: str, queue: str, worker_id: str, duration: float
    ) -> None:
        self.succeeded.labels(queue, task_name).inc()
        self.duration.labels(queue, task_name).observe(duration)
        self._ended(worker_id, task_id)

    def sitq_task_failed(
        self, task_id: str, task_name: str, queue: str, worker_id: str, duration: float
    ) -> None:
        self.failed.labels(queue, task_name).inc()
        self.duration.labels(queue, task_name).observe(duration)
        self._ended(worker_id, task_id)

    def sitq_task_retried(self, task_id: str, task_name: str, queue: str, worker_id: str) -> None:
        self.retried.labels(queue, task_name).inc()
        self._ended(worker_id, task_id)

    def sitq_task_timed_out(self, task_name: str, queue: str) -> None:
        # Not the end of the attempt's bookkeeping: sitq_task_retried or sitq_task_failed follows.
        self.timed_out.labels(queue, task_name).inc()

    def sitq_task_cancelled(self, task_id: str, task_name: str, queue: str, worker_id: str | None) -> None:
        self.cancelled.labels(queue, task_name).inc()
        if worker_id is not None:  # a running task, stopped by its worker; a pending one was not in flight
            self._ended(worker_id, task_id)

    def sitq_worker_stopped(self, worker_id: str) -> None:
        # A task still running when the grace period ran out was given back without an event of its own.
        with self._lock:
            abandoned = [key for key in self._running if key[0] == worker_id]
        for _, task_id in abandoned:
            self._ended(worker_id, task_id)

    def _ended(self, worker_id: str, task_id: str) -> None:
        with self._lock:
            queue = self._running.pop((worker_id, task_id), None)
        if queue is not None:
            self.in_flight.labels(queue).dec()
