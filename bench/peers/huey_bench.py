"""Huey's side of the benchmark: `SqliteHuey` at its defaults, and its consumer as
``huey.create_consumer()`` makes it (one worker thread, Huey's default polling backoff).

Huey has no burst mode, so a drain's worker process counts completions with Huey's own
``SIGNAL_COMPLETE`` and stops itself gracefully (SIGINT) after the last one; its clock ends at that
completion. Queues are filled before the clock starts with ``PRAGMA synchronous = OFF`` on the filling
connection (what ``SqliteHuey(fsync=False)`` sets), only to save time; every measured connection keeps
Huey's defaults.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import benchlib

SCRIPT = Path(__file__).name
NOT_AVAILABLE = {
    "enqueue-one-sync": "Huey's enqueue is a blocking call already: its one-at-a-time figure stands in",
    "enqueue-batch": "Huey has no batch enqueue: each enqueue is its own transaction",
    "drain-async": "Huey has no async tasks: its sync no-op is measured once, shown in both rows",
    "drain-async-plugin": "sitq only",
}


def tasks_module(args: argparse.Namespace) -> ModuleType:
    """`huey_tasks`, whose `SqliteHuey` opens ``$BENCH_DB``: set it before the first import."""
    os.environ["BENCH_DB"] = str(args.db)
    os.environ["BENCH_RECORDS"] = str(args.dir)
    import huey_tasks

    return huey_tasks


def fast_fill(args: argparse.Namespace, enqueue: Callable[[int], object], count: int) -> float:
    """Call `enqueue(i)` for i in range(count) with synchronous=OFF on this process's connection only."""
    tasks = tasks_module(args)
    tasks.huey.storage.conn.execute("PRAGMA synchronous = OFF")
    started = time.perf_counter()
    for i in range(count):
        enqueue(i)
    built = time.perf_counter() - started
    tasks.huey.storage.close()  # a later connection of this process gets the defaults again
    return built


def start_workers(
    args: argparse.Namespace, count: int, mode: str, expect: int = 0
) -> list[benchlib.WorkerProcess]:
    return benchlib.start_workers(
        SCRIPT,
        count,
        *("--db", str(args.db), "--dir", str(args.dir), "--mode", mode, "--expect", str(expect)),
    )


# Enqueue


def enqueue_one(args: argparse.Namespace) -> dict[str, Any]:
    return benchlib.enqueue_one_blocking(tasks_module(args).noop, args.tasks)


def enqueue_concurrent(args: argparse.Namespace) -> dict[str, Any]:
    """`PRODUCERS` threads sharing the module's `SqliteHuey`, as the threads of a web application do."""
    noop = tasks_module(args).noop
    for _ in range(benchlib.WARM_UP):
        noop()
    barrier = threading.Barrier(benchlib.PRODUCERS + 1)
    stored = [0] * benchlib.PRODUCERS
    deadline = time.perf_counter() + 3600.0

    def producer(k: int, count: int) -> None:
        barrier.wait()
        for _ in range(count):
            if time.perf_counter() > deadline:
                return
            noop()
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


def drain(args: argparse.Namespace) -> dict[str, Any]:
    noop = tasks_module(args).noop
    fast_fill(args, lambda _: noop(), args.tasks)
    metrics = benchlib.run_to_completion(start_workers(args, 1, "burst", args.tasks), args.tasks)
    return {**metrics, "done": metrics_done(args)}


def metrics_done(args: argparse.Namespace) -> int:
    """Tasks no longer queued (Huey keeps no record of a finished task that returned None)."""
    tasks = tasks_module(args)
    return args.tasks - tasks.huey.pending_count()


def drain_4(args: argparse.Namespace) -> dict[str, Any]:
    """Four consumer processes; this process watches the record files and stops them at N records."""
    record = tasks_module(args).record
    fast_fill(args, record, args.tasks)
    workers = start_workers(args, 4, "serve")
    benchlib.go(workers)
    benchlib.wait_until(
        lambda: benchlib.count_records(args.dir)[0] >= args.tasks, timeout=3600, interval=0.05
    )
    time.sleep(0.2)  # a duplicate run would show up here
    for worker in workers:
        worker.interrupt(signal.SIGINT, timeout=60)
    metrics = benchlib.drain_metrics([worker.finish() for worker in workers], args.tasks)
    return {**metrics, **benchlib.duplicates_metrics(args.dir, args.tasks)}


def backlog(args: argparse.Namespace, future: int) -> dict[str, Any]:
    """The future tasks go straight to Huey's schedule table (`Huey.add_schedule`), where its consumer
    keeps them once it has read them from the queue: the state of a queue that has been running."""
    tasks = tasks_module(args)
    built = fast_fill(args, lambda _: tasks.huey.add_schedule(tasks.noop.s(delay=3600)), future)
    fast_fill(args, lambda _: tasks.noop(), args.due)
    metrics = benchlib.run_to_completion(start_workers(args, 1, "burst", args.due), args.due)
    return {**metrics, "backlog": future, "build_seconds": built, "scheduled": tasks.huey.scheduled_count()}


# Latency and idle CPU


def sample_latency(
    stamp: Callable[[str, int], object], path: Path, samples: int
) -> dict[int, tuple[float, float]]:
    enqueued: dict[int, tuple[float, float]] = {}
    for i in range(samples):
        time.sleep(benchlib.gap())
        called = time.time()
        stamp(str(path), i)
        enqueued[i] = (called, time.time())
        benchlib.wait_until(lambda i=i: benchlib.stamp_count(path) > i, timeout=30, interval=0.001)
    return enqueued


def latency_cross(args: argparse.Namespace) -> dict[str, Any]:
    path = args.dir / "stamps.txt"
    stamp = tasks_module(args).stamp
    (worker,) = start_workers(args, 1, "serve")
    try:
        benchlib.go([worker])
        time.sleep(benchlib.SETTLE_SECONDS)
        enqueued = sample_latency(stamp, path, args.samples)
    finally:
        worker.interrupt(signal.SIGINT)
    return benchlib.latency_metrics(enqueued, path)


def latency_inprocess(args: argparse.Namespace) -> dict[str, Any]:
    """The consumer's threads in this process (`Consumer.start()`), sharing its `SqliteHuey`."""
    path = args.dir / "stamps.txt"
    tasks = tasks_module(args)
    consumer = tasks.huey.create_consumer()
    consumer.start()
    try:
        time.sleep(benchlib.SETTLE_SECONDS)
        enqueued = sample_latency(tasks.stamp, path, args.samples)
    finally:
        consumer.stop(graceful=True)
    return benchlib.latency_metrics(enqueued, path)


def idle_cpu(args: argparse.Namespace) -> dict[str, Any]:
    tasks_module(args).huey.storage.close()  # creates the tables, as the other peers' set-up does
    (worker,) = start_workers(args, 1, "serve")
    return benchlib.idle_cpu(worker, signal.SIGINT)


def memory(args: argparse.Namespace, queued: int) -> dict[str, Any]:
    noop = tasks_module(args).noop
    built = fast_fill(args, lambda _: noop(), queued)
    (worker,) = start_workers(args, 1, "serve")
    try:
        benchlib.go([worker])
        rss = benchlib.peak_rss_mb(worker.pid)
    finally:
        worker.interrupt(signal.SIGINT)
    done = worker.finish()
    return {"rss_mb": rss, "queued": queued, "build_seconds": built, "done": done.get("completed")}


MEASURES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "enqueue-one": enqueue_one,
    "enqueue-concurrent": enqueue_concurrent,
    "drain-sync": drain,
    "drain-4": drain_4,
    "latency-cross": latency_cross,
    "latency-inprocess": latency_inprocess,
    "idle-cpu": idle_cpu,
    "backlog-empty": lambda args: backlog(args, 0),
    "backlog-full": lambda args: backlog(args, args.backlog),
    "memory-small": lambda args: memory(args, args.memory_small),
    "memory-large": lambda args: memory(args, args.memory_tasks),
}


def worker_main(args: argparse.Namespace) -> None:
    """A consumer process. It counts completions; in burst mode it stops itself after `--expect`."""
    from huey.signals import SIGNAL_COMPLETE

    tasks = tasks_module(args)
    completions = {"count": 0, "last": 0.0}

    @tasks.huey.signal(SIGNAL_COMPLETE)
    def completed(_signal: str, _task: object) -> None:
        completions["count"] += 1
        completions["last"] = time.time()
        if completions["count"] == args.expect:
            os.kill(os.getpid(), signal.SIGINT)  # Huey's graceful stop

    consumer = tasks.huey.create_consumer()
    started = benchlib.wait_for_go()
    consumer.run()
    benchlib.report_done(t0=started, t1=completions["last"] or started, completed=completions["count"])


def durability(args: argparse.Namespace) -> dict[str, str]:
    return benchlib.connection_durability(tasks_module(args).huey.storage.conn)


def main() -> None:
    benchlib.run_sync_peer("huey.db", MEASURES, worker_main, durability, NOT_AVAILABLE)


if __name__ == "__main__":
    main()
