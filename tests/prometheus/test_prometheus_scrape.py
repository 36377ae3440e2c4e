"""The installed plugin end to end: real tasks through TaskQueue and Worker on a SQLite file, no
`plugins=` argument, the endpoint started by the worker on $SITQ_PROMETHEUS_PORT and scraped over loopback.

The default registry lives as long as the process, so each test works in a queue of its own and reads
only the samples labelled with it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from scraping import Samples, free_port, scrape, value

import sitq
from sitq import RetryPolicy, Task, TaskQueue, TaskStatus, Worker
from sitq_prometheus import server

GATES: dict[str, asyncio.Event] = {}


async def add(a: int, b: int) -> int:
    return a + b


def fail(message: str) -> None:
    raise RuntimeError(message)


def flaky() -> str:
    if sitq.current_task().attempt == 1:
        raise ConnectionError("first attempt fails")
    return "second attempt"


async def wait_for_gate(gate: str) -> str:
    await GATES[gate].wait()
    return gate


@pytest.fixture(scope="module")
def metrics_port() -> Iterator[int]:
    """The port the process's endpoint is served on, once the first worker of these tests has started."""
    port = free_port()
    yield port
    if server._server is not None and server._server.server_port == port:
        server._server.shutdown()
        server._server.server_close()
        server._server = None


@pytest.fixture
def served(metrics_port: int, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("SITQ_PROMETHEUS_PORT", str(metrics_port))
    monkeypatch.setenv("SITQ_PROMETHEUS_ADDR", "127.0.0.1")
    return metrics_port


@pytest.fixture
async def queue(tmp_path: Path) -> AsyncIterator[TaskQueue]:
    async with TaskQueue(f"sqlite:///{tmp_path / 'tasks.db'}") as queue:
        yield queue


@pytest.fixture
def gate() -> Iterator[str]:
    name = f"gate-{time.monotonic_ns()}"
    GATES[name] = asyncio.Event()
    yield name
    del GATES[name]


async def scraped(port: int) -> Samples:
    return await asyncio.to_thread(scrape, port)


async def until_status(queue: TaskQueue, task_ids: list[str], status: TaskStatus) -> None:
    deadline = time.monotonic() + 10
    while [await queue.get_status(task_id) for task_id in task_ids] != [status] * len(task_ids):
        assert time.monotonic() < deadline, f"tasks did not reach {status}"
        await asyncio.sleep(0.01)


def name(function: object) -> str:
    return f"{__name__}.{function.__qualname__}"  # type: ignore[attr-defined] # a function's name


async def test_every_outcome_is_counted_by_queue_and_task_name(
    queue: TaskQueue, served: int, queue_name: str, gate: str
) -> None:
    soon = RetryPolicy(backoff=0.05, jitter=0)
    tasks = [Task(add, args=[a, 1], queue=queue_name) for a in range(3)]
    tasks.append(Task(fail, args=["out of stock"], queue=queue_name))
    tasks.append(Task(flaky, queue=queue_name, max_attempts=2, retry=soon))
    # The gate never opens: both attempts time out.
    tasks.append(Task(wait_for_gate, args=[gate], queue=queue_name, timeout=0.1, max_attempts=2, retry=soon))

    async with Worker(queue, queues=[queue_name], max_concurrency=4):
        task_ids = [await queue.enqueue(task) for task in tasks]
        for task_id in task_ids:
            assert (await queue.get_result(task_id, timeout=10)) is not None
        samples = await scraped(served)

    def sample(metric: str, function: object) -> float | None:
        return value(samples, metric, queue=queue_name, task_name=name(function))

    expected = {  # per task function: enqueued, started, succeeded, failed, retried, timed out
        add: (3, 3, 3, None, None, None),
        fail: (1, 1, None, 1, None, None),
        flaky: (1, 2, 1, None, 1, None),
        wait_for_gate: (1, 2, None, 1, 1, 2),
    }
    counters = ("enqueued", "started", "succeeded", "failed", "retried", "timed_out")
    for function, counts in expected.items():
        got = tuple(sample(f"sitq_tasks_{counter}_total", function) for counter in counters)
        assert got == counts, function
        finished = (counts[2] or 0) + (counts[3] or 0)
        assert sample("sitq_task_duration_seconds_count", function) == finished
        assert sample("sitq_task_wait_seconds_count", function) == counts[0]  # first attempts only
        labels = {"queue": queue_name, "task_name": name(function), "le": "+Inf"}
        assert value(samples, "sitq_task_duration_seconds_bucket", **labels) == finished
    timed_out_run = sample("sitq_task_duration_seconds_sum", wait_for_gate)
    assert timed_out_run is not None and timed_out_run >= 0.1
    assert value(samples, "sitq_tasks_in_flight", queue=queue_name) == 0


async def test_the_gauge_counts_running_tasks_and_drops_them_when_they_finish(
    queue: TaskQueue, served: int, queue_name: str, gate: str
) -> None:
    async with Worker(queue, queues=[queue_name], poll_interval=0.05):
        running = [await queue.enqueue(Task(wait_for_gate, args=[gate], queue=queue_name)) for _ in range(2)]
        await until_status(queue, running, TaskStatus.IN_PROGRESS)
        during = await scraped(served)
        GATES[gate].set()
        for task_id in running:
            assert (await queue.get_result(task_id, timeout=10)) is not None
        after = await scraped(served)

    assert value(during, "sitq_tasks_in_flight", queue=queue_name) == 2
    assert value(after, "sitq_tasks_in_flight", queue=queue_name) == 0
    assert value(after, "sitq_tasks_succeeded_total", queue=queue_name, task_name=name(wait_for_gate)) == 2


async def test_cancelling_a_running_task_takes_it_out_of_flight_and_both_cancellations_count(
    queue: TaskQueue, served: int, queue_name: str, gate: str
) -> None:
    async with Worker(queue, queues=[queue_name], poll_interval=0.05):
        running = await queue.enqueue(Task(wait_for_gate, args=[gate], queue=queue_name))
        await until_status(queue, [running], TaskStatus.IN_PROGRESS)
        later = await queue.enqueue(Task(add, args=[1, 2], queue=queue_name, depends_on=[running]))
        assert await queue.cancel(later) is TaskStatus.CANCELLED  # pending: counted by this producer
        assert await queue.cancel(running) is TaskStatus.IN_PROGRESS  # running: by its worker
        result = await queue.get_result(running, timeout=10)
        assert result is not None and result.status is TaskStatus.CANCELLED
        samples = await scraped(served)

    assert value(samples, "sitq_tasks_cancelled_total", queue=queue_name, task_name=name(wait_for_gate)) == 1
    assert value(samples, "sitq_tasks_cancelled_total", queue=queue_name, task_name=name(add)) == 1
    assert value(samples, "sitq_tasks_in_flight", queue=queue_name) == 0


async def test_a_task_given_back_at_shutdown_leaves_the_gauge_with_its_worker(
    queue: TaskQueue, served: int, queue_name: str, gate: str
) -> None:
    worker = Worker(queue, queues=[queue_name], grace_period=0.1)
    await worker.start()
    task_id = await queue.enqueue(Task(wait_for_gate, args=[gate], queue=queue_name))
    await until_status(queue, [task_id], TaskStatus.IN_PROGRESS)
    during = await scraped(served)
    await worker.stop()  # the task outlives the grace period and goes back to the queue
    after = await scraped(served)

    assert await queue.get_status(task_id) is TaskStatus.PENDING
    assert value(during, "sitq_tasks_in_flight", queue=queue_name) == 1
    assert value(after, "sitq_tasks_in_flight", queue=queue_name) == 0
    assert value(after, "sitq_tasks_started_total", queue=queue_name, task_name=name(wait_for_gate)) == 1


async def test_the_endpoint_serves_the_default_registry(queue: TaskQueue, served: int) -> None:
    async with Worker(queue):
        samples = await scraped(served)

    assert any(sample_name == "python_info" for sample_name, _ in samples)  # prometheus_client's own
