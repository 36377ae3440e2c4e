"""sitq's side of the benchmark, at its defaults: `TaskQueue` and `Worker` on ``sqlite:///FILE``.

``--synchronous normal`` measures the same on ``sqlite:///FILE?synchronous=normal``, ``--signed`` with a
signing key (``$SITQ_SIGNING_KEY``); ``--pg-url URL``
measures the same on PostgreSQL, on ``URL?schema=sitq_bench`` (the PostgreSQL section). See benchlib for
the protocol and bench/README.md for what each measure means.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bench_tasks
import benchlib
import pglib

from sitq import SyncTaskQueue, Task, TaskQueue, TaskStatus, Worker

SCRIPT = Path(__file__).name
PROCESSES = 2
"""Child processes of the worker in process mode (`drain-cpu-processes`): one per core of a 2-core machine."""


class DoNothing:
    """A lifecycle observer that implements every task and worker hook, and does nothing in any."""

    def sitq_task_enqueued(self) -> None:
        return None

    def sitq_task_started(self) -> None:
        return None

    def sitq_task_succeeded(self) -> None:
        return None

    def sitq_task_failed(self) -> None:
        return None

    def sitq_task_retried(self) -> None:
        return None

    def sitq_task_timed_out(self) -> None:
        return None

    def sitq_task_cancelled(self) -> None:
        return None

    def sitq_worker_started(self) -> None:
        return None

    def sitq_worker_stopped(self) -> None:
        return None


PG_SCHEMA = "sitq_bench"
"""sitq's tables go into this schema of the measure's fresh database, as a user's ``?schema=`` would."""


def url(args: argparse.Namespace) -> str:
    if args.pg_url:
        return pglib.with_query(args.pg_url, schema=PG_SCHEMA)
    return f"sqlite:///{args.db}" + ("?synchronous=normal" if args.synchronous == "normal" else "")


def new_queue(args: argparse.Namespace, *, plugin: bool = False) -> TaskQueue:
    return TaskQueue(url(args), plugins=[DoNothing()] if plugin else [])


async def fill(args: argparse.Namespace, tasks: list[Task], *, plugin: bool = False) -> None:
    """Store `tasks` before the clock starts, in chunks of `FILL_CHUNK` per write."""
    async with new_queue(args, plugin=plugin) as queue:
        for start in range(0, len(tasks), benchlib.FILL_CHUNK):
            await queue.enqueue_many(tasks[start : start + benchlib.FILL_CHUNK])


async def fill_noops(args: argparse.Namespace, count: int, eta: datetime | None = None) -> None:
    async with new_queue(args) as queue:
        for size in benchlib.chunks(count, benchlib.FILL_CHUNK):
            await queue.enqueue_many([Task(bench_tasks.noop_async, eta=eta) for _ in range(size)])


async def finished(args: argparse.Namespace) -> int:
    """How many tasks succeeded, over every queue."""
    async with new_queue(args) as queue:
        stats = await queue.stats()
    return sum(counts.get(TaskStatus.SUCCESS, 0) for counts in stats.values())


def start_workers(
    args: argparse.Namespace, count: int, mode: str, *, plugin: bool = False, processes: int | None = None
) -> list[benchlib.WorkerProcess]:
    extra = ["--plugin"] if plugin else []
    if processes is not None:
        extra += ["--processes", str(processes)]
    if args.pg_url:
        extra += ["--pg-url", args.pg_url]
    return benchlib.start_workers(
        SCRIPT,
        count,
        *("--db", str(args.db), "--synchronous", args.synchronous, "--mode", mode, *extra),
        env={"BENCH_RECORDS": str(args.dir)},
    )


# Enqueue: the clock runs in this process, around the calls alone.


async def enqueue_one(args: argparse.Namespace) -> dict[str, Any]:
    async with new_queue(args) as queue:
        return await benchlib.enqueue_one_async(lambda: queue.enqueue(bench_tasks.noop_async), args.tasks)


def enqueue_one_sync(args: argparse.Namespace) -> dict[str, Any]:
    """The same from `SyncTaskQueue`, as a Django or Flask view calls it: each call blocks its thread
    while the queue's private event loop stores the task."""
    with SyncTaskQueue(url(args)) as queue:
        return benchlib.enqueue_one_blocking(lambda: queue.enqueue(bench_tasks.noop_async), args.tasks)


async def enqueue_batch(args: argparse.Namespace) -> dict[str, Any]:
    async with new_queue(args) as queue:

        async def enqueue_many(size: int) -> object:
            return await queue.enqueue_many([Task(bench_tasks.noop_async) for _ in range(size)])

        return await benchlib.enqueue_batch_async(enqueue_many, args.tasks, args.batch)


async def enqueue_concurrent(args: argparse.Namespace) -> dict[str, Any]:
    """`PRODUCERS` asyncio tasks on one `TaskQueue` (their calls share commits: group commit)."""
    async with new_queue(args) as queue:
        return await benchlib.producers_async(lambda: queue.enqueue(bench_tasks.noop_async), args.tasks)


# Drains: a filled file, then worker processes in burst mode; the clock runs from go to their exit.


def drain(args: argparse.Namespace, function: Callable[[], Any], *, plugin: bool = False) -> dict[str, Any]:
    asyncio.run(fill(args, [Task(function) for _ in range(args.tasks)], plugin=plugin))
    metrics = benchlib.run_to_completion(start_workers(args, 1, "burst", plugin=plugin), args.tasks)
    return {**metrics, "done": asyncio.run(finished(args))}


def drain_4(args: argparse.Namespace) -> dict[str, Any]:
    asyncio.run(fill(args, [Task(bench_tasks.record_async, [i]) for i in range(args.tasks)]))
    metrics = benchlib.run_to_completion(start_workers(args, 4, "burst"), args.tasks)
    return {**metrics, **benchlib.duplicates_metrics(args.dir, args.tasks)}


def drain_cpu(args: argparse.Namespace, processes: int | None) -> dict[str, Any]:
    """One worker process, in thread mode (`processes=None`) or process mode, drains `--cpu-tasks`
    CPU-bound sync tasks. The rate counts from the first task's start to the last one's end, as the
    tasks recorded them, so that starting and stopping the child processes stay outside it; the time
    from go to the first task (`startup_ms`) and the rate from go to the worker's end (`burst_rate`)
    show them."""
    asyncio.run(fill(args, [Task(bench_tasks.spin, [i]) for i in range(args.cpu_tasks)]))
    workers = start_workers(args, 1, "burst", processes=processes)
    burst = benchlib.run_to_completion(workers, args.cpu_tasks)
    metrics = benchlib.spin_metrics(args.dir, args.cpu_tasks, go=min(w.done["t0"] for w in workers))
    return {
        **metrics,
        "burst_rate": burst["rate"],
        "burst_cpu_us_per_task": burst.get("cpu_us_per_task"),
        "processes": processes,
        "task_ms": benchlib.cpu_ms(bench_tasks.burn),
    }


def backlog(args: argparse.Namespace, future: int) -> dict[str, Any]:
    later = datetime.now(UTC) + timedelta(hours=1)
    started = time.perf_counter()
    asyncio.run(fill_noops(args, future, eta=later))
    built = time.perf_counter() - started
    asyncio.run(fill_noops(args, args.due))
    metrics = benchlib.run_to_completion(start_workers(args, 1, "burst"), args.due)
    return {**metrics, "backlog": future, "build_seconds": built, "done": asyncio.run(finished(args))}


# Latency and idle CPU: a worker started with `run()` at its defaults, idle between samples.


async def sample_latency(queue: TaskQueue, path: Path, samples: int) -> dict[int, tuple[float, float]]:
    return await benchlib.sample_latency_async(
        lambda where, i: queue.enqueue(bench_tasks.stamp_async, where, i), path, samples
    )


def latency_cross(args: argparse.Namespace) -> dict[str, Any]:
    path = args.dir / "stamps.txt"
    (worker,) = start_workers(args, 1, "serve")
    try:
        benchlib.go([worker])
        time.sleep(benchlib.SETTLE_SECONDS)

        async def produce() -> dict[int, tuple[float, float]]:
            async with new_queue(args) as queue:
                return await sample_latency(queue, path, args.samples)

        enqueued = asyncio.run(produce())
    finally:
        worker.interrupt()
    return benchlib.latency_metrics(enqueued, path)


def latency_inprocess(args: argparse.Namespace) -> dict[str, Any]:
    path = args.dir / "stamps.txt"

    async def produce() -> dict[int, tuple[float, float]]:
        async with new_queue(args) as queue, Worker(queue):
            await asyncio.sleep(benchlib.SETTLE_SECONDS)
            return await sample_latency(queue, path, args.samples)

    return benchlib.latency_metrics(asyncio.run(produce()), path)


def idle_cpu(args: argparse.Namespace) -> dict[str, Any]:
    asyncio.run(fill(args, []))
    (worker,) = start_workers(args, 1, "serve")
    return benchlib.idle_cpu(worker)


def memory(args: argparse.Namespace, queued: int) -> dict[str, Any]:
    """Peak RSS of a worker started on a file with `queued` no-op tasks, while it runs them."""
    started = time.perf_counter()
    asyncio.run(fill_noops(args, queued))
    built = time.perf_counter() - started
    (worker,) = start_workers(args, 1, "serve")
    try:
        benchlib.go([worker])
        rss = benchlib.peak_rss_mb(worker.pid)
    finally:
        worker.interrupt()
    return {"rss_mb": rss, "queued": queued, "build_seconds": built, "done": asyncio.run(finished(args))}


MEASURES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "enqueue-one": lambda args: asyncio.run(enqueue_one(args)),
    "enqueue-one-sync": enqueue_one_sync,
    "enqueue-batch": lambda args: asyncio.run(enqueue_batch(args)),
    "enqueue-concurrent": lambda args: asyncio.run(enqueue_concurrent(args)),
    "drain-async": lambda args: drain(args, bench_tasks.noop_async),
    "drain-sync": lambda args: drain(args, bench_tasks.noop_sync),
    "drain-async-plugin": lambda args: drain(args, bench_tasks.noop_async, plugin=True),
    "drain-4": drain_4,
    "latency-cross": latency_cross,
    "latency-inprocess": latency_inprocess,
    "idle-cpu": idle_cpu,
    "backlog-empty": lambda args: backlog(args, 0),
    "backlog-full": lambda args: backlog(args, args.backlog),
    "memory-small": lambda args: memory(args, args.memory_small),
    "memory-large": lambda args: memory(args, args.memory_tasks),
    "drain-cpu-threads": lambda args: drain_cpu(args, None),
    "drain-cpu-processes": lambda args: drain_cpu(args, PROCESSES),
}


async def worker_main(args: argparse.Namespace) -> None:
    """A worker process: `Worker(url)` at its defaults (with `--processes N`, in process mode);
    `run(burst=True)` drains, `run()` serves until SIGTERM."""
    worker = Worker(url(args), processes=args.processes, plugins=[DoNothing()] if args.plugin else [])
    started = benchlib.wait_for_go()
    await worker.run(burst=args.mode == "burst")
    benchlib.report_done(t0=started, t1=time.time())


async def durability(args: argparse.Namespace) -> dict[str, str]:
    """The durability settings, as sitq's backend reports them when it has `describe()`.

    On PostgreSQL: what the server gives a new session of the measure's database, overridden by what
    sitq's backend reports of its own connections, if it reports it."""
    async with new_queue(args) as queue:
        describe = getattr(queue.backend, "describe", None)
        info = await describe() if describe is not None else {}
    if args.pg_url:
        found = pglib.durability(pglib.fetch_row(args.pg_url, pglib.SETTINGS), "sitq-postgres")
        return found | {key: str(info[key]) for key in ("synchronous_commit", "fsync") if key in info}
    if not info:
        return {"journal_mode": "wal", "synchronous": args.synchronous.upper()}
    return {"journal_mode": str(info["journal_mode"]), "synchronous": str(info["synchronous"]).upper()}


def main() -> None:
    args = benchlib.parse_args()
    if args.signed:  # read by every TaskQueue and Worker here, and by the worker processes started
        os.environ["SITQ_SIGNING_KEY"] = "bench-signing-key-" + "0" * 32
    if args.measure == "worker":
        asyncio.run(worker_main(args))
        return
    args.db = args.dir / "sitq.db"
    if args.measure == "describe":
        benchlib.emit({}, asyncio.run(durability(args)))
        return
    benchlib.emit(MEASURES[args.measure](args))


if __name__ == "__main__":
    main()
