"""GigQ's side of the benchmark: `JobQueue.submit(Job(...))` and `Worker(db_path)` at their defaults
(one job at a time, a 5-second polling interval when idle).

A drain's worker process calls `Worker.process_one()` until it finds no job: GigQ's own worker loop
without the sleep it takes when the queue is empty, so its burst. Queues are filled before the clock
starts with ``PRAGMA synchronous = OFF`` on the filling connection only, to save time; every measured
connection keeps GigQ's defaults. With its polling, a latency sample takes seconds, so GigQ gets fewer
of them (`MAX_SAMPLES`).
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bench_tasks
import benchlib
from gigq import Job, JobQueue, Worker
from gigq.db_utils import close_connection, get_connection

SCRIPT = Path(__file__).name
MAX_SAMPLES = 10
NOT_AVAILABLE = {
    "enqueue-one-sync": "GigQ's submit is a blocking call already: its one-at-a-time figure stands in",
    "enqueue-batch": "GigQ has no batch submit: each submit is its own transaction",
    "drain-async": "GigQ has no async jobs: its sync no-op is measured once, shown in both rows",
    "drain-async-plugin": "sitq only",
    "backlog-empty": "GigQ cannot schedule a job for later (no eta or delay on submit)",
    "backlog-full": "GigQ cannot schedule a job for later (no eta or delay on submit)",
}


def noop_job() -> Job:
    return Job("noop", bench_tasks.noop_sync)


def fast_fill(args: argparse.Namespace, jobs: Callable[[int], Job], count: int) -> None:
    """Submit `jobs(i)` for i in range(count) with synchronous=OFF on this thread's connection only."""
    queue = JobQueue(str(args.db))
    get_connection(str(args.db)).execute("PRAGMA synchronous = OFF")
    for i in range(count):
        queue.submit(jobs(i))
    close_connection(str(args.db))


def start_workers(args: argparse.Namespace, count: int, mode: str) -> list[benchlib.WorkerProcess]:
    return benchlib.start_workers(
        SCRIPT,
        count,
        *("--db", str(args.db), "--dir", str(args.dir), "--mode", mode),
        env={"BENCH_RECORDS": str(args.dir)},
    )


# Enqueue


def enqueue_one(args: argparse.Namespace) -> dict[str, Any]:
    queue = JobQueue(str(args.db))
    return benchlib.enqueue_one_blocking(lambda: queue.submit(noop_job()), args.tasks)


def enqueue_concurrent(args: argparse.Namespace) -> dict[str, Any]:
    """`PRODUCERS` threads sharing one `JobQueue`; GigQ gives each thread its own connection."""
    queue = JobQueue(str(args.db))
    barrier = threading.Barrier(benchlib.PRODUCERS + 1)
    stored = [0] * benchlib.PRODUCERS
    deadline = time.perf_counter() + 3600.0

    def producer(k: int, count: int) -> None:
        for _ in range(2):  # the thread's connection is opened here, before the clock starts
            queue.submit(noop_job())
        barrier.wait()
        for _ in range(count):
            if time.perf_counter() > deadline:
                return
            queue.submit(noop_job())
            stored[k] += 1

    counts = benchlib.split(args.tasks, benchlib.PRODUCERS)
    threads = [threading.Thread(target=producer, args=(k, n)) for k, n in enumerate(counts)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    deadline = started + benchlib.PRODUCERS_CAP_SECONDS
    for thread in threads:
        thread.join()
    return benchlib.producers_metrics(sum(stored), started, sum(stored) < args.tasks)


# Drains


def done(args: argparse.Namespace) -> int:
    return JobQueue(str(args.db)).stats().get("completed", 0)


def drain(args: argparse.Namespace) -> dict[str, Any]:
    fast_fill(args, lambda _: noop_job(), args.tasks)
    metrics = benchlib.run_to_completion(start_workers(args, 1, "burst"), args.tasks)
    return {**metrics, "done": done(args)}


def drain_4(args: argparse.Namespace) -> dict[str, Any]:
    fast_fill(args, lambda i: Job("record", bench_tasks.record_sync, params={"i": i}), args.tasks)
    metrics = benchlib.run_to_completion(start_workers(args, 4, "burst"), args.tasks)
    return {**metrics, **benchlib.duplicates_metrics(args.dir, args.tasks)}


# Latency and idle CPU


def sample_latency(queue: JobQueue, path: Path, samples: int) -> dict[int, tuple[float, float]]:
    enqueued: dict[int, tuple[float, float]] = {}
    for i in range(min(samples, MAX_SAMPLES)):
        time.sleep(benchlib.gap())
        called = time.time()
        queue.submit(Job("stamp", bench_tasks.stamp_sync, params={"path": str(path), "i": i}))
        enqueued[i] = (called, time.time())
        benchlib.wait_until(lambda i=i: benchlib.stamp_count(path) > i, timeout=30, interval=0.001)
    return enqueued


def latency_cross(args: argparse.Namespace) -> dict[str, Any]:
    path = args.dir / "stamps.txt"
    queue = JobQueue(str(args.db))
    (worker,) = start_workers(args, 1, "serve")
    try:
        benchlib.go([worker])
        time.sleep(benchlib.SETTLE_SECONDS)
        enqueued = sample_latency(queue, path, args.samples)
    finally:
        worker.interrupt(signal.SIGKILL)  # its SIGTERM handler would wait out a polling interval
    return benchlib.latency_metrics(enqueued, path)


def latency_inprocess(args: argparse.Namespace) -> dict[str, Any]:
    """`Worker.start()` in a thread of this process."""
    path = args.dir / "stamps.txt"
    queue = JobQueue(str(args.db))
    worker = Worker(str(args.db))
    thread = threading.Thread(target=worker.start, daemon=True)
    thread.start()
    try:
        time.sleep(benchlib.SETTLE_SECONDS)
        enqueued = sample_latency(queue, path, args.samples)
    finally:
        worker.stop()  # the thread ends after its current sleep; it is a daemon, so nobody waits
    return benchlib.latency_metrics(enqueued, path)


def idle_cpu(args: argparse.Namespace) -> dict[str, Any]:
    JobQueue(str(args.db))
    (worker,) = start_workers(args, 1, "serve")
    return benchlib.idle_cpu(worker, signal.SIGKILL)


def memory(args: argparse.Namespace, queued: int) -> dict[str, Any]:
    started = time.perf_counter()
    fast_fill(args, lambda _: noop_job(), queued)
    built = time.perf_counter() - started
    (worker,) = start_workers(args, 1, "serve")
    try:
        benchlib.go([worker])
        rss = benchlib.peak_rss_mb(worker.pid)
    finally:
        worker.interrupt(signal.SIGKILL)
    return {"rss_mb": rss, "queued": queued, "build_seconds": built, "done": done(args)}


MEASURES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "enqueue-one": enqueue_one,
    "enqueue-concurrent": enqueue_concurrent,
    "drain-sync": drain,
    "drain-4": drain_4,
    "latency-cross": latency_cross,
    "latency-inprocess": latency_inprocess,
    "idle-cpu": idle_cpu,
    "memory-small": lambda args: memory(args, args.memory_small),
    "memory-large": lambda args: memory(args, args.memory_tasks),
}


def worker_main(args: argparse.Namespace) -> None:
    worker = Worker(str(args.db))
    started = benchlib.wait_for_go()
    if args.mode == "burst":
        while worker.process_one():
            pass
    else:
        worker.start()
    benchlib.report_done(t0=started, t1=time.time())


def durability(args: argparse.Namespace) -> dict[str, str]:
    JobQueue(str(args.db))
    return benchlib.connection_durability(get_connection(str(args.db)))


def main() -> None:
    benchlib.run_sync_peer("gigq.db", MEASURES, worker_main, durability, NOT_AVAILABLE)


if __name__ == "__main__":
    main()
