"""`TaskMetrics` on a registry of its own: every sequence of hooks a worker can fire leaves the counters,
histograms and in-flight gauge right, and the plugin costs nothing until its first event."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

import sitq_prometheus.plugin
from sitq import MemoryBackend, TaskQueue, TaskStatus, Worker
from sitq.models import utcnow
from sitq_prometheus import TaskMetrics
from sitq_sqlite import SQLiteBackend

TASK = {"task_name": "shop.send_receipt", "queue": "mail"}
LABELS = {"queue": "mail", "task_name": "shop.send_receipt"}


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> TaskMetrics:
    return TaskMetrics(registry)


def started(metrics: TaskMetrics, task_id: str = "t1", worker_id: str = "w1", attempt: int = 1) -> None:
    metrics.sitq_task_started(
        task_id=task_id,
        worker_id=worker_id,
        attempt=attempt,
        enqueued_at=datetime.now(UTC) - timedelta(seconds=2),
        **TASK,
    )


def in_flight(registry: CollectorRegistry, queue: str = "mail") -> float | None:
    return registry.get_sample_value("sitq_tasks_in_flight", {"queue": queue})


def count(registry: CollectorRegistry, name: str) -> float | None:
    return registry.get_sample_value(name, LABELS)


def test_a_success_is_counted_timed_and_leaves_nothing_in_flight(
    metrics: TaskMetrics, registry: CollectorRegistry
) -> None:
    metrics.sitq_task_enqueued(**TASK)
    started(metrics)
    assert in_flight(registry) == 1
    metrics.sitq_task_succeeded(task_id="t1", worker_id="w1", duration=0.25, **TASK)

    assert in_flight(registry) == 0
    assert count(registry, "sitq_tasks_enqueued_total") == 1
    assert count(registry, "sitq_tasks_started_total") == 1
    assert count(registry, "sitq_tasks_succeeded_total") == 1
    assert count(registry, "sitq_task_duration_seconds_sum") == 0.25
    assert registry.get_sample_value("sitq_task_duration_seconds_bucket", {**LABELS, "le": "0.5"}) == 1
    assert registry.get_sample_value("sitq_task_duration_seconds_bucket", {**LABELS, "le": "0.1"}) == 0
    waited = count(registry, "sitq_task_wait_seconds_sum")
    assert waited is not None and 2 <= waited < 10


def test_a_retried_attempt_ends_with_retried_and_only_the_first_attempt_counts_its_wait(
    metrics: TaskMetrics, registry: CollectorRegistry
) -> None:
    started(metrics, attempt=1)
    metrics.sitq_task_retried(task_id="t1", worker_id="w1", **TASK)
    assert in_flight(registry) == 0
    started(metrics, attempt=2)
    assert in_flight(registry) == 1
    metrics.sitq_task_failed(task_id="t1", worker_id="w1", duration=0.5, **TASK)

    assert in_flight(registry) == 0
    assert count(registry, "sitq_tasks_started_total") == 2
    assert count(registry, "sitq_tasks_retried_total") == 1
    assert count(registry, "sitq_tasks_failed_total") == 1
    assert count(registry, "sitq_task_wait_seconds_count") == 1
    assert count(registry, "sitq_task_duration_seconds_count") == 1  # the attempt that ended the task


@pytest.mark.parametrize("then", ["retried", "failed"])
def test_a_timed_out_attempt_stays_in_flight_until_retried_or_failed(
    metrics: TaskMetrics, registry: CollectorRegistry, then: str
) -> None:
    started(metrics)
    metrics.sitq_task_timed_out(**TASK)
    assert in_flight(registry) == 1  # its thread may still run; the attempt ends with the next event
    if then == "retried":
        metrics.sitq_task_retried(task_id="t1", worker_id="w1", **TASK)
    else:
        metrics.sitq_task_failed(task_id="t1", worker_id="w1", duration=1.0, **TASK)

    assert in_flight(registry) == 0
    assert count(registry, "sitq_tasks_timed_out_total") == 1
    assert count(registry, f"sitq_tasks_{then}_total") == 1


def test_a_running_task_cancelled_by_its_worker_leaves_the_gauge_a_pending_one_does_not_touch_it(
    metrics: TaskMetrics, registry: CollectorRegistry
) -> None:
    started(metrics, task_id="running")
    started(metrics, task_id="other")
    metrics.sitq_task_cancelled(task_id="pending", worker_id=None, **TASK)
    assert in_flight(registry) == 2
    metrics.sitq_task_cancelled(task_id="running", worker_id="w1", **TASK)

    assert in_flight(registry) == 1
    assert count(registry, "sitq_tasks_cancelled_total") == 2


def test_a_stopped_worker_takes_its_abandoned_tasks_out_of_flight_and_no_other_workers(
    metrics: TaskMetrics, registry: CollectorRegistry
) -> None:
    started(metrics, task_id="a", worker_id="w1")
    started(metrics, task_id="b", worker_id="w1")
    started(metrics, task_id="c", worker_id="w2")
    metrics.sitq_worker_stopped(worker_id="w1")

    assert in_flight(registry) == 1
    metrics.sitq_task_succeeded(task_id="c", worker_id="w2", duration=0.1, **TASK)
    assert in_flight(registry) == 0


def test_the_gauge_never_counts_an_attempt_twice_or_below_zero(
    metrics: TaskMetrics, registry: CollectorRegistry
) -> None:
    metrics.sitq_task_succeeded(task_id="never-started", worker_id="w1", duration=0.1, **TASK)
    started(metrics)
    started(metrics)  # the same attempt reported twice
    metrics.sitq_task_failed(task_id="t1", worker_id="w1", duration=0.1, **TASK)
    metrics.sitq_task_retried(task_id="t1", worker_id="w1", **TASK)

    assert in_flight(registry) == 0


def test_a_task_taken_over_by_a_second_worker_of_the_process_is_in_flight_twice(
    metrics: TaskMetrics, registry: CollectorRegistry
) -> None:
    started(metrics, worker_id="w1")
    started(metrics, worker_id="w2", attempt=2)  # w1's lease ran out while its run went on
    assert in_flight(registry) == 2
    metrics.sitq_task_succeeded(task_id="t1", worker_id="w2", duration=0.1, **TASK)
    metrics.sitq_task_succeeded(task_id="t1", worker_id="w1", duration=0.1, **TASK)

    assert in_flight(registry) == 0


def test_a_start_stamped_later_than_now_waited_zero(
    metrics: TaskMetrics, registry: CollectorRegistry
) -> None:
    skewed = datetime.now(UTC) + timedelta(seconds=30)  # another host's clock, ahead of this one
    metrics.sitq_task_started(task_id="t1", worker_id="w1", attempt=1, enqueued_at=skewed, **TASK)

    assert count(registry, "sitq_task_wait_seconds_sum") == 0


def test_gauges_are_per_queue(metrics: TaskMetrics, registry: CollectorRegistry) -> None:
    started(metrics)
    resize = {"task_name": "shop.resize", "queue": "images"}
    metrics.sitq_task_started(
        task_id="t2", worker_id="w1", attempt=1, enqueued_at=datetime.now(UTC), **resize
    )

    assert (in_flight(registry, "mail"), in_flight(registry, "images")) == (1, 1)


def failing() -> None:
    raise RuntimeError("no stock")


async def test_passed_explicitly_it_counts_a_real_queue_and_worker_into_its_registry(
    registry: CollectorRegistry,
) -> None:
    metrics = TaskMetrics(registry)
    async with TaskQueue(MemoryBackend(), plugins=[metrics]) as queue, Worker(queue) as worker:
        ok, bad = await queue.enqueue(len, "abc"), await queue.enqueue(failing)
        await queue.get_result(ok, timeout=10)
        await queue.get_result(bad, timeout=10)
        assert worker.is_running

    def sample(name: str, task_name: str) -> float | None:
        return registry.get_sample_value(name, {"queue": "default", "task_name": task_name})

    assert sample("sitq_tasks_succeeded_total", "builtins.len") == 1
    assert sample("sitq_tasks_failed_total", "test_prometheus_metrics.failing") == 1
    assert registry.get_sample_value("sitq_tasks_in_flight", {"queue": "default"}) == 0


def test_the_entry_point_names_the_hook_module_of_the_distribution() -> None:
    [entry_point] = [ep for ep in importlib.metadata.entry_points(group="sitq") if ep.name == "prometheus"]

    assert entry_point.load() is sitq_prometheus.plugin
    assert entry_point.dist is not None and entry_point.dist.name == "sitq-prometheus"


def test_discovering_the_plugin_imports_no_prometheus_client_and_serves_nothing() -> None:
    program = (
        "import sys, threading\n"
        "from sitq import TaskQueue\n"
        "TaskQueue('memory://')  # loads every installed plugin\n"
        "assert 'sitq_prometheus.plugin' in sys.modules, sorted(sys.modules)\n"
        "assert 'prometheus_client' not in sys.modules\n"
        "assert threading.active_count() == 1\n"
    )
    completed = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)

    assert completed.returncode == 0, completed.stderr


async def test_tasks_lost_with_a_dead_worker_are_counted_by_the_worker_that_ends_them(
    registry: CollectorRegistry, tmp_path: Path
) -> None:
    metrics = TaskMetrics(registry)
    backend = SQLiteBackend(tmp_path / "tasks.db")
    async with TaskQueue(backend, plugins=[metrics]) as queue:
        lost, cancelled = await queue.enqueue(failing), await queue.enqueue(failing)
        # A worker that dies at once: it claims both with a short lease and never renews it.
        past = utcnow() - timedelta(minutes=1)
        for task_id in (lost, cancelled):
            await backend.claim_task(task_id, worker_id="dead", now=past, lease=timedelta(seconds=1))
        assert await queue.cancel(cancelled) is TaskStatus.IN_PROGRESS
        async with Worker(queue, poll_interval=0.05):
            lost_result = await queue.get_result(lost, timeout=10)
            cancelled_result = await queue.get_result(cancelled, timeout=10)
    assert lost_result is not None and lost_result.status is TaskStatus.FAILED
    assert cancelled_result is not None and cancelled_result.status is TaskStatus.CANCELLED
    labels = {"queue": "default", "task_name": "test_prometheus_metrics.failing"}
    assert registry.get_sample_value("sitq_tasks_failed_total", labels) == 1
    assert registry.get_sample_value("sitq_tasks_cancelled_total", labels) == 1
