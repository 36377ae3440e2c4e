"""Procrastinate's side of the PostgreSQL section, at its defaults.

One ``App(connector=PsycopgConnector(conninfo=URL))`` per process (its psycopg pool at its defaults),
tasks declared with ``@app.task`` in `procrastinate_tasks`. Producers call ``defer_async`` and
``batch_defer_async``; the 100 concurrent producers share the process's app. A worker is
``app.run_worker_async()`` at its defaults (one job at a time, LISTEN/NOTIFY, a poll every 5 s when idle,
jobs kept after they finish); a drain passes ``wait=False``, which stops it once it has caught up with
the queue. The schema is applied with ``app.schema_manager.apply_schema_async()`` before the clock starts,
in the measure's fresh database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import benchlib
import pglib

SCRIPT = Path(__file__).name
NOT_AVAILABLE = {"drain-async-plugin": "sitq only"}


def tasks_module(args: argparse.Namespace) -> ModuleType:
    """`procrastinate_tasks`, whose app connects to ``$BENCH_PG_URL``: set it before the first import."""
    os.environ["BENCH_PG_URL"] = args.pg_url
    os.environ["BENCH_RECORDS"] = str(args.dir)
    import procrastinate_tasks

    return procrastinate_tasks


async def with_app(
    args: argparse.Namespace,
    body: Callable[[ModuleType], Awaitable[dict[str, Any]]],
    *,
    apply_schema: bool = True,
) -> dict[str, Any]:
    """Open the app, apply Procrastinate's schema to the fresh database (unless done already), and run
    `body` with the tasks module."""
    tasks = tasks_module(args)
    async with tasks.app.open_async():
        if apply_schema:
            await tasks.app.schema_manager.apply_schema_async()
        return await body(tasks)


async def schema_only(_tasks: ModuleType) -> dict[str, Any]:
    """For `with_app`: the schema alone, before a worker process starts on the database."""
    return {}


async def fill(args: argparse.Namespace, task_name: str, kwargs: list[dict[str, Any]]) -> None:
    """Store the jobs before the clock starts, `FILL_CHUNK` per call of ``batch_defer_async``."""

    async def body(tasks: ModuleType) -> dict[str, Any]:
        task = getattr(tasks, task_name)
        for start in range(0, len(kwargs), benchlib.FILL_CHUNK):
            await task.batch_defer_async(*kwargs[start : start + benchlib.FILL_CHUNK])
        return {}

    await with_app(args, body)


def start_workers(args: argparse.Namespace, count: int, mode: str) -> list[benchlib.WorkerProcess]:
    return benchlib.start_workers(
        SCRIPT, count, *("--pg-url", args.pg_url, "--dir", str(args.dir), "--mode", mode)
    )


def succeeded(args: argparse.Namespace) -> int:
    return int(
        pglib.scalar(args.pg_url, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'")
    )


# Enqueue


async def enqueue_one(args: argparse.Namespace) -> dict[str, Any]:
    async def body(tasks: ModuleType) -> dict[str, Any]:
        return await benchlib.enqueue_one_async(tasks.noop_async.defer_async, args.tasks)

    return await with_app(args, body)


async def enqueue_batch(args: argparse.Namespace) -> dict[str, Any]:
    async def body(tasks: ModuleType) -> dict[str, Any]:
        async def enqueue_many(size: int) -> object:
            return await tasks.noop_async.batch_defer_async(*({} for _ in range(size)))

        return await benchlib.enqueue_batch_async(enqueue_many, args.tasks, args.batch)

    return await with_app(args, body)


async def enqueue_concurrent(args: argparse.Namespace) -> dict[str, Any]:
    async def body(tasks: ModuleType) -> dict[str, Any]:
        return await benchlib.producers_async(tasks.noop_async.defer_async, args.tasks)

    return await with_app(args, body)


# Drains


def drain(args: argparse.Namespace, kind: str) -> dict[str, Any]:
    asyncio.run(fill(args, f"noop_{kind}", [{}] * args.tasks))
    metrics = benchlib.run_to_completion(start_workers(args, 1, "burst"), args.tasks)
    return {**metrics, "done": succeeded(args)}


def drain_4(args: argparse.Namespace) -> dict[str, Any]:
    asyncio.run(fill(args, "record_async", [{"i": i} for i in range(args.tasks)]))
    metrics = benchlib.run_to_completion(start_workers(args, 4, "burst"), args.tasks)
    return {**metrics, **benchlib.duplicates_metrics(args.dir, args.tasks)}


# Latency and idle CPU


def sampler(args: argparse.Namespace, path: Path) -> Callable[[ModuleType], Awaitable[dict[str, Any]]]:
    async def body(tasks: ModuleType) -> dict[str, Any]:
        enqueued = await benchlib.sample_latency_async(
            lambda where, i: tasks.stamp_async.defer_async(path=where, i=i), path, args.samples
        )
        return {"enqueued": enqueued}

    return body


def latency_cross(args: argparse.Namespace) -> dict[str, Any]:
    path = args.dir / "stamps.txt"
    asyncio.run(with_app(args, schema_only))
    (worker,) = start_workers(args, 1, "serve")
    try:
        benchlib.go([worker])
        time.sleep(benchlib.SETTLE_SECONDS)
        sampled = asyncio.run(with_app(args, sampler(args, path), apply_schema=False))
    finally:
        worker.interrupt()
    return benchlib.latency_metrics(sampled["enqueued"], path)


def latency_inprocess(args: argparse.Namespace) -> dict[str, Any]:
    """The worker as a task on the producer's event loop, sharing its app (Procrastinate's way to run a
    worker inside an application); cancelling the task stops it."""
    path = args.dir / "stamps.txt"
    sample = sampler(args, path)

    async def body(tasks: ModuleType) -> dict[str, Any]:
        running = asyncio.create_task(tasks.app.run_worker_async(install_signal_handlers=False))
        try:
            await asyncio.sleep(benchlib.SETTLE_SECONDS)
            return await sample(tasks)
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running

    return benchlib.latency_metrics(asyncio.run(with_app(args, body))["enqueued"], path)


def idle_cpu(args: argparse.Namespace) -> dict[str, Any]:
    asyncio.run(with_app(args, schema_only))
    (worker,) = start_workers(args, 1, "serve")
    return benchlib.idle_cpu(worker)


MEASURES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "enqueue-one": lambda args: asyncio.run(enqueue_one(args)),
    "enqueue-batch": lambda args: asyncio.run(enqueue_batch(args)),
    "enqueue-concurrent": lambda args: asyncio.run(enqueue_concurrent(args)),
    "drain-async": lambda args: drain(args, "async"),
    "drain-sync": lambda args: drain(args, "sync"),
    "drain-4": drain_4,
    "latency-cross": latency_cross,
    "latency-inprocess": latency_inprocess,
    "idle-cpu": idle_cpu,
}


async def worker_main(args: argparse.Namespace) -> None:
    """A worker process: ``wait=False`` stops once the queue is caught up; serve runs until SIGTERM,
    which Procrastinate's own signal handler turns into a graceful stop."""
    tasks = tasks_module(args)
    async with tasks.app.open_async():
        started = benchlib.wait_for_go()
        await tasks.app.run_worker_async(wait=args.mode != "burst")
        benchlib.report_done(t0=started, t1=time.time())


async def durability(args: argparse.Namespace) -> dict[str, str]:
    tasks = tasks_module(args)
    async with tasks.app.open_async():
        row = await tasks.app.connector.execute_query_one_async(pglib.SETTINGS)
    return pglib.durability(row.values(), "procrastinate")


def main() -> None:
    benchlib.run_async_peer(MEASURES, worker_main, durability, NOT_AVAILABLE)


if __name__ == "__main__":
    main()
