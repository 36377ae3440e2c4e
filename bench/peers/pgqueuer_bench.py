"""PgQueuer's side of the PostgreSQL section, at its defaults.

Producers use ``Queries(AsyncpgDriver(connection))``, as PgQueuer's README does, on one asyncpg
connection; the 100 concurrent producers share one ``AsyncpgPoolDriver`` over ``asyncpg.create_pool()``
at asyncpg's defaults (10 connections) instead, since one connection would serialise them behind the
driver's lock. A worker is a ``QueueManager`` on its own asyncpg connection, run with
``QueueManager.run()``'s defaults (batches of 10, LISTEN/NOTIFY, a look every 30 s when idle); a drain
uses its ``mode=QueueExecutionMode.drain``, which stops once the queue is empty. PgQueuer runs only
``async def`` entrypoints (it refuses a plain ``def``). The schema is installed with ``Queries.install()``
before the clock starts, in the measure's fresh database.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import bench_tasks
import benchlib
import pglib
from pgqueuer import AsyncpgDriver, AsyncpgPoolDriver, Job, Queries, QueueManager
from pgqueuer.domain.types import QueueExecutionMode

SCRIPT = Path(__file__).name
NOT_AVAILABLE = {
    "drain-sync": "PgQueuer runs only async entrypoints: it refuses a plain def",
    "drain-async-plugin": "sitq only",
}
NOOP, RECORD, STAMP = "noop", "record", "stamp"


async def connect(args: argparse.Namespace) -> asyncpg.Connection:
    return await asyncpg.connect(args.pg_url)


async def install(args: argparse.Namespace) -> None:
    conn = await connect(args)
    try:
        await Queries(AsyncpgDriver(conn)).install()
    finally:
        await conn.close()


async def fill(args: argparse.Namespace, entrypoint: str, payloads: list[bytes | None]) -> None:
    """Install the schema and store the jobs before the clock starts, `FILL_CHUNK` per statement."""
    await install(args)
    conn = await connect(args)
    try:
        queries = Queries(AsyncpgDriver(conn))
        for start in range(0, len(payloads), benchlib.FILL_CHUNK):
            chunk = payloads[start : start + benchlib.FILL_CHUNK]
            await queries.enqueue([entrypoint] * len(chunk), chunk, [0] * len(chunk))
    finally:
        await conn.close()


def start_workers(args: argparse.Namespace, count: int, mode: str) -> list[benchlib.WorkerProcess]:
    return benchlib.start_workers(
        SCRIPT,
        count,
        *("--pg-url", args.pg_url, "--mode", mode),
        env={"BENCH_RECORDS": str(args.dir)},
    )


def remaining(args: argparse.Namespace) -> int:
    """Jobs still in the queue table (PgQueuer moves a finished job to its log)."""
    return int(pglib.scalar(args.pg_url, "SELECT count(*) FROM pgqueuer"))


# Enqueue


async def with_queries(
    args: argparse.Namespace, measure: Callable[[Queries], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    await install(args)
    conn = await connect(args)
    try:
        return await measure(Queries(AsyncpgDriver(conn)))
    finally:
        await conn.close()


async def enqueue_one(args: argparse.Namespace) -> dict[str, Any]:
    async def measure(queries: Queries) -> dict[str, Any]:
        return await benchlib.enqueue_one_async(lambda: queries.enqueue(NOOP, None), args.tasks)

    return await with_queries(args, measure)


async def enqueue_batch(args: argparse.Namespace) -> dict[str, Any]:
    async def measure(queries: Queries) -> dict[str, Any]:
        async def enqueue_many(size: int) -> object:
            return await queries.enqueue([NOOP] * size, [None] * size, [0] * size)

        return await benchlib.enqueue_batch_async(enqueue_many, args.tasks, args.batch)

    return await with_queries(args, measure)


async def enqueue_concurrent(args: argparse.Namespace) -> dict[str, Any]:
    await install(args)
    async with asyncpg.create_pool(args.pg_url) as pool:
        queries = Queries(AsyncpgPoolDriver(pool))
        return await benchlib.producers_async(lambda: queries.enqueue(NOOP, None), args.tasks)


# Drains


def drain(args: argparse.Namespace) -> dict[str, Any]:
    asyncio.run(fill(args, NOOP, [None] * args.tasks))
    metrics = benchlib.run_to_completion(start_workers(args, 1, "burst"), args.tasks)
    return {**metrics, "done": args.tasks - remaining(args)}


def drain_4(args: argparse.Namespace) -> dict[str, Any]:
    asyncio.run(fill(args, RECORD, [str(i).encode() for i in range(args.tasks)]))
    metrics = benchlib.run_to_completion(start_workers(args, 4, "burst"), args.tasks)
    return {**metrics, **benchlib.duplicates_metrics(args.dir, args.tasks)}


# Latency and idle CPU


async def sample_latency(args: argparse.Namespace, path: Path) -> dict[int, tuple[float, float]]:
    conn = await connect(args)
    try:
        queries = Queries(AsyncpgDriver(conn))
        return await benchlib.sample_latency_async(
            lambda where, i: queries.enqueue(STAMP, f"{where} {i}".encode()), path, args.samples
        )
    finally:
        await conn.close()


def latency_cross(args: argparse.Namespace) -> dict[str, Any]:
    path = args.dir / "stamps.txt"
    asyncio.run(install(args))
    (worker,) = start_workers(args, 1, "serve")
    try:
        benchlib.go([worker])
        time.sleep(benchlib.SETTLE_SECONDS)
        enqueued = asyncio.run(sample_latency(args, path))
    finally:
        worker.interrupt()
    return benchlib.latency_metrics(enqueued, path)


def latency_inprocess(args: argparse.Namespace) -> dict[str, Any]:
    """A `QueueManager` on the producer's event loop, on a connection of its own."""
    path = args.dir / "stamps.txt"

    async def produce() -> dict[int, tuple[float, float]]:
        await install(args)
        conn = await connect(args)
        manager = queue_manager(conn)
        running = asyncio.create_task(manager.run())
        try:
            await asyncio.sleep(benchlib.SETTLE_SECONDS)
            return await sample_latency(args, path)
        finally:
            manager.shutdown.set()
            await running
            await conn.close()

    return benchlib.latency_metrics(asyncio.run(produce()), path)


def idle_cpu(args: argparse.Namespace) -> dict[str, Any]:
    asyncio.run(install(args))
    (worker,) = start_workers(args, 1, "serve")
    return benchlib.idle_cpu(worker)


MEASURES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "enqueue-one": lambda args: asyncio.run(enqueue_one(args)),
    "enqueue-batch": lambda args: asyncio.run(enqueue_batch(args)),
    "enqueue-concurrent": lambda args: asyncio.run(enqueue_concurrent(args)),
    "drain-async": drain,
    "drain-4": drain_4,
    "latency-cross": latency_cross,
    "latency-inprocess": latency_inprocess,
    "idle-cpu": idle_cpu,
}


# The worker


def queue_manager(conn: asyncpg.Connection) -> QueueManager:
    """PgQueuer's worker with the three entrypoints of the benchmark (the tasks of `bench_tasks`)."""
    manager = QueueManager(Queries(AsyncpgDriver(conn)))

    @manager.entrypoint(NOOP)
    async def noop(job: Job) -> None:
        await bench_tasks.noop_async()

    @manager.entrypoint(RECORD)
    async def record(job: Job) -> None:
        assert job.payload is not None
        await bench_tasks.record_async(int(job.payload))

    @manager.entrypoint(STAMP)
    async def stamp(job: Job) -> None:
        assert job.payload is not None
        where, i = job.payload.decode().rsplit(" ", 1)
        await bench_tasks.stamp_async(where, int(i))

    return manager


async def worker_main(args: argparse.Namespace) -> None:
    """A worker process: drain mode stops when the queue is empty; serve runs until SIGTERM."""
    conn = await connect(args)
    manager = queue_manager(conn)
    started = benchlib.wait_for_go()
    mode = QueueExecutionMode.drain if args.mode == "burst" else QueueExecutionMode.continuous
    await manager.run(mode=mode)
    benchlib.report_done(t0=started, t1=time.time())
    await conn.close()


async def durability(args: argparse.Namespace) -> dict[str, str]:
    conn = await connect(args)
    try:
        return pglib.durability(await conn.fetchrow(pglib.SETTINGS), "pgqueuer")
    finally:
        await conn.close()


def main() -> None:
    benchlib.run_async_peer(MEASURES, worker_main, durability, NOT_AVAILABLE)


if __name__ == "__main__":
    main()
