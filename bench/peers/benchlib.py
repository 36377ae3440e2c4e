"""What the three peer scripts share: the command line, worker processes, clocks and samplers.

Every peer script is run as ``python PEER_bench.py MEASURE --dir DIR ...`` and prints one JSON line, or as
``python PEER_bench.py worker ...`` by the script itself to get a worker process. A worker process imports
everything and builds its worker, prints ``ready``, and waits for ``go`` on its standard input: the clock
starts at ``go``, so interpreter start-up and imports are outside every figure, for every peer alike. It
ends by printing ``done {json}`` with its wall-clock times.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bench_tasks
import psutil

HERE = Path(__file__).resolve().parent

MEASURES = (
    "enqueue-one",
    "enqueue-one-sync",
    "enqueue-batch",
    "enqueue-concurrent",
    "drain-async",
    "drain-sync",
    "drain-async-plugin",
    "drain-4",
    "latency-cross",
    "latency-inprocess",
    "idle-cpu",
    "backlog-empty",
    "backlog-full",
    "memory-small",
    "memory-large",
    "drain-cpu-threads",
    "drain-cpu-processes",
)

PRODUCERS = 100
"""Concurrent producers in enqueue-concurrent."""
PRODUCERS_CAP_SECONDS = 30.0
"""enqueue-concurrent stops its producers after this long (only GigQ's take that long); the rate is over
the tasks stored by then."""
FILL_CHUNK = 10_000
"""Tasks per write when a measure fills a queue before it starts the clock."""
SETTLE_SECONDS = 1.0
"""How long an idle worker runs before latency or CPU is measured, so that its start-up is over."""
IDLE_CPU_SECONDS = 5.0
RSS_WINDOW_SECONDS = 3.0
"""How long the memory measure samples a worker's RSS after it starts on the filled file."""
GAP_SECONDS = (0.02, 0.05)
"""The pause before each latency sample, with jitter, so that the worker is idle each time."""


# The command line


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("measure", choices=(*MEASURES, "describe", "worker"))
    parser.add_argument("--dir", type=Path, help="a fresh temporary directory for the database and logs")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1_000, help="tasks per enqueue_many call")
    parser.add_argument("--samples", type=int, default=200, help="latency samples")
    parser.add_argument("--backlog", type=int, default=200_000, help="future tasks in backlog-full")
    parser.add_argument("--due", type=int, default=2_000, help="due tasks in the backlog measures")
    parser.add_argument("--memory-tasks", type=int, default=1_000_000, help="queued tasks in memory-large")
    parser.add_argument("--memory-small", type=int, default=1_000, help="queued tasks in memory-small")
    parser.add_argument("--cpu-tasks", type=int, default=400, help="CPU-bound tasks, drain-cpu-* (sitq)")
    parser.add_argument("--synchronous", choices=("full", "normal"), default="full", help="sitq only")
    parser.add_argument(
        "--signed", action="store_true", help="sitq only: sign with a key, given as $SITQ_SIGNING_KEY"
    )
    parser.add_argument(
        "--pg-url", help="a fresh PostgreSQL database for this measure (the PostgreSQL section only)"
    )
    # Worker processes only.
    parser.add_argument("--db", type=Path)
    parser.add_argument("--mode", choices=("burst", "serve"), default="burst")
    parser.add_argument("--kind", choices=("async", "sync"), default="async")
    parser.add_argument("--expect", type=int, default=0, help="completions that end a burst (huey)")
    parser.add_argument("--plugin", action="store_true", help="install a do-nothing plugin (sitq)")
    parser.add_argument("--processes", type=int, help="process mode with N children (sitq)")
    return parser.parse_args(argv)


def emit(metrics: dict[str, Any], durability: dict[str, str] | None = None, **extra: Any) -> None:
    """Print the measure's one JSON line (the driver reads the last line of standard output)."""
    print(json.dumps({"metrics": metrics, "durability": durability or {}, **extra}), flush=True)


# Worker processes


_usage_at_go: tuple[float, int] | None = None


def process_usage() -> tuple[float, int]:
    """This process's CPU seconds (user + system, all threads, and those of its children that have
    exited: a worker's child processes in process mode) and its own context switches (voluntary and
    involuntary; a child's are not counted once it has exited) so far."""
    process = psutil.Process()
    cpu, switches = process.cpu_times(), process.num_ctx_switches()
    seconds = cpu.user + cpu.system + cpu.children_user + cpu.children_system
    return seconds, switches.voluntary + switches.involuntary


def wait_for_go() -> float:
    """In a worker process: say ready, block until the driver says go, and return the start time.
    It also notes the process's CPU time and context switches, which `report_done` counts from."""
    global _usage_at_go
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        sys.exit(0)  # the driver gave up on us
    _usage_at_go = process_usage()
    return time.time()


def report_done(**fields: Any) -> None:
    """The worker's ``done`` line: its times, and the CPU and context switches it used since go."""
    if _usage_at_go is not None:
        cpu, switches = process_usage()
        fields |= {"cpu_s": cpu - _usage_at_go[0], "ctx_switches": switches - _usage_at_go[1]}
    print("done " + json.dumps(fields), flush=True)


@dataclass
class WorkerProcess:
    """One worker process of a peer script, started with ``worker`` and driven through its pipes."""

    process: subprocess.Popen[str]
    done: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self) -> None:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.strip() != "ready":
            self.process.kill()
            raise RuntimeError(f"worker {self.pid} did not start: {line!r}{self._stderr()}")

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def finish(self, timeout: float = 600.0) -> dict[str, Any]:
        """Wait for the process to exit and return what it reported in its ``done`` line."""
        assert self.process.stdout is not None
        try:
            out, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            raise RuntimeError(f"worker {self.pid} did not finish within {timeout}s") from None
        for line in out.splitlines():
            if line.startswith("done "):
                self.done = json.loads(line[5:])
        if self.process.returncode != 0 or not self.done:
            raise RuntimeError(f"worker {self.pid} exited with {self.process.returncode}{self._stderr()}")
        return self.done

    def interrupt(self, signum: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        """Ask the worker to stop; kill it if it has not exited after `timeout` seconds."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _stderr(self) -> str:
        if self.process.stderr is None:
            return ""
        try:
            return "\n" + self.process.stderr.read()[-3000:]
        except ValueError:
            return ""


def start_workers(
    script: str, count: int, *args: str, env: dict[str, str] | None = None
) -> list[WorkerProcess]:
    """Start `count` worker processes of a peer script and wait until each is ready (not yet going)."""
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), environment.get("PYTHONPATH")]))
    workers = []
    for _ in range(count):
        process = subprocess.Popen(
            [sys.executable, str(HERE / script), "worker", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        workers.append(WorkerProcess(process))
    for worker in workers:
        worker.wait_ready()
    return workers


def go(workers: Sequence[WorkerProcess]) -> None:
    for worker in workers:
        worker.go()


def run_to_completion(workers: Sequence[WorkerProcess], tasks: int) -> dict[str, Any]:
    """Start the workers together, wait until each has exited, and return the drain rate.

    The clock runs from the earliest ``go`` to the latest end any worker reported (for sitq and GigQ, the
    end of their burst; for Huey, its last completion)."""
    go(workers)
    reports = [worker.finish() for worker in workers]
    return drain_metrics(reports, tasks)


# The enqueue measures: the clock runs in the measuring process, around the calls.

WARM_UP = 10
"""Tasks every producer enqueues before the clock starts, for every peer."""


def enqueue_one_blocking(enqueue: Callable[[], object], tasks: int) -> dict[str, Any]:
    """One producer makes one blocking `enqueue()` call after another, `tasks` times."""
    for _ in range(WARM_UP):
        enqueue()
    started = time.perf_counter()
    for _ in range(tasks):
        enqueue()
    return {"rate": tasks / (time.perf_counter() - started)}


async def enqueue_one_async(enqueue: Callable[[], Awaitable[object]], tasks: int) -> dict[str, Any]:
    """One producer awaits one `enqueue()` after another, `tasks` times."""
    for _ in range(WARM_UP):
        await enqueue()
    started = time.perf_counter()
    for _ in range(tasks):
        await enqueue()
    return {"rate": tasks / (time.perf_counter() - started)}


async def enqueue_batch_async(
    enqueue_many: Callable[[int], Awaitable[object]], tasks: int, batch: int
) -> dict[str, Any]:
    """`enqueue_many(n)` stores n tasks in one call: `tasks` of them in calls of `batch`."""
    await enqueue_many(WARM_UP)
    started = time.perf_counter()
    for size in chunks(tasks, batch):
        await enqueue_many(size)
    return {"rate": tasks / (time.perf_counter() - started), "batch": batch}


async def producers_async(enqueue: Callable[[], Awaitable[object]], tasks: int) -> dict[str, Any]:
    """`PRODUCERS` asyncio tasks sharing what `enqueue` uses, each awaiting one call after another;
    they stop after `PRODUCERS_CAP_SECONDS` and the rate counts what they stored."""
    stored = 0
    deadline = time.perf_counter() + PRODUCERS_CAP_SECONDS

    async def producer(count: int) -> None:
        nonlocal stored
        for _ in range(count):
            if time.perf_counter() > deadline:
                return
            await enqueue()
            stored += 1

    await producer(WARM_UP)
    stored = 0
    started = time.perf_counter()
    deadline = started + PRODUCERS_CAP_SECONDS
    await asyncio.gather(*(producer(count) for count in split(tasks, PRODUCERS)))
    return producers_metrics(stored, started, stored < tasks)


async def sample_latency_async(
    enqueue_stamp: Callable[[str, int], Awaitable[object]], path: Path, samples: int
) -> dict[int, tuple[float, float]]:
    """Enqueue one stamp task at a time (`enqueue_stamp(path, i)`), each after the last one started and
    a pause; return the times each call was made and returned. A sample waits at most 30 s."""
    enqueued: dict[int, tuple[float, float]] = {}
    for i in range(samples):
        await asyncio.sleep(gap())
        called = time.time()
        await enqueue_stamp(str(path), i)
        enqueued[i] = (called, time.time())
        deadline = time.monotonic() + 30
        # The task writes the file in another process (or thread): there is no event to await.
        while stamp_count(path) <= i and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.001)
    return enqueued


def producers_metrics(stored: int, started: float, capped: bool) -> dict[str, Any]:
    """The rate of enqueue-concurrent; `started` is a `time.perf_counter()` reading."""
    seconds = time.perf_counter() - started
    return {"rate": stored / seconds, "stored": stored, "producers": PRODUCERS, "capped": capped}


def drain_metrics(reports: Sequence[dict[str, Any]], tasks: int) -> dict[str, Any]:
    """The rate, and the worker processes' CPU time and context switches per task, summed over them
    (the database server's own work, for PostgreSQL, is not in them)."""
    start = min(report["t0"] for report in reports)
    end = max(report["t1"] for report in reports)
    metrics = {"rate": tasks / (end - start), "seconds": end - start}
    if all("cpu_s" in report for report in reports):
        metrics["cpu_us_per_task"] = 1e6 * sum(report["cpu_s"] for report in reports) / tasks
        metrics["ctx_per_task"] = sum(report["ctx_switches"] for report in reports) / tasks
    return metrics


# Side effects counted by the drain-4 measure, and timestamps written by the latency measures


def records_dir() -> Path:
    return Path(os.environ["BENCH_RECORDS"])


def count_records(directory: Path) -> tuple[int, int]:
    """(runs, distinct task numbers) over every worker's record file."""
    seen: list[str] = []
    for path in directory.glob("*.log"):
        seen.extend(path.read_text().split())
    return len(seen), len(set(seen))


def duplicates_metrics(directory: Path, tasks: int) -> dict[str, int]:
    runs, distinct = count_records(directory)
    return {"runs": runs, "duplicates": runs - tasks, "missing": tasks - distinct}


def spin_metrics(directory: Path, tasks: int, go: float) -> dict[str, Any]:
    """A CPU-bound drain's rate from the first `spin` start to the last one's end, as the tasks wrote
    them in `directory`; the time from `go` to the first start; and the runs counted."""
    runs = [
        line.split()
        for path in directory.glob("*" + bench_tasks.SPINS)
        for line in path.read_text().splitlines()
    ]
    numbers = {int(number) for number, _, _ in runs}
    counts = {"runs": len(runs), "duplicates": len(runs) - tasks, "missing": tasks - len(numbers)}
    if not runs:
        return counts
    first, last = min(float(run[1]) for run in runs), max(float(run[2]) for run in runs)
    return {
        **counts,
        "rate": tasks / (last - first),
        "seconds": last - first,
        "startup_ms": (first - go) * 1000,
    }


def cpu_ms(function: Callable[[], object], times: int = 5) -> float:
    """The CPU time of one call of `function`, in milliseconds: the median of `times` calls, alone."""
    spent = []
    for _ in range(times):
        started = time.process_time()
        function()
        spent.append((time.process_time() - started) * 1000)
    return statistics.median(spent)


def stamp_count(path: Path) -> int:
    try:
        with path.open("rb") as file:
            return file.read().count(b"\n")
    except FileNotFoundError:
        return 0


def read_stamps(path: Path) -> dict[int, float]:
    """Sample number to the time its task started, as the tasks wrote them."""
    stamps: dict[int, float] = {}
    for line in path.read_text().splitlines():
        number, started = line.split()
        stamps[int(number)] = float(started)
    return stamps


def gap() -> float:
    return random.uniform(*GAP_SECONDS)


def latency_metrics(enqueued: dict[int, tuple[float, float]], path: Path) -> dict[str, Any]:
    """Percentiles in milliseconds over the samples that started, of the time from the moment
    `enqueue` returned (the task was stored) to the moment the task began; `call_p50_ms` is the same
    counted from the moment `enqueue` was called."""
    stamps = read_stamps(path)
    started = [i for i in enqueued if i in stamps]
    if not started:
        return {"p50_ms": None, "p99_ms": None, "samples": 0, "lost": len(enqueued)}
    latencies = sorted((stamps[i] - enqueued[i][1]) * 1000 for i in started)
    from_call = sorted((stamps[i] - enqueued[i][0]) * 1000 for i in started)
    return {
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": latencies[-1],
        "call_p50_ms": percentile(from_call, 50),
        "call_p99_ms": percentile(from_call, 99),
        "samples": len(started),
        "lost": len(enqueued) - len(started),
    }


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between the closest ranks, on sorted `values`."""
    if len(values) == 1:
        return values[0]
    rank = (len(values) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (rank - low)


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.002) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


# Samplers


def idle_cpu(worker: WorkerProcess, stop: int = signal.SIGTERM) -> dict[str, Any]:
    """The idle-CPU measure of a worker process started in serve mode: go, settle, sample, stop it."""
    try:
        go([worker])
        time.sleep(SETTLE_SECONDS)
        percent = idle_cpu_percent(worker.pid)
    finally:
        worker.interrupt(stop)
    return {"cpu_percent": percent, "seconds": IDLE_CPU_SECONDS}


def run_sync_peer(
    database: str,
    measures: dict[str, Callable[[argparse.Namespace], dict[str, Any]]],
    worker_main: Callable[[argparse.Namespace], None],
    durability: Callable[[argparse.Namespace], dict[str, str]],
    not_available: dict[str, str],
) -> None:
    """The `main()` of a peer whose worker is plain code: run the measure the command line names."""
    args = parse_args()
    args.db = args.db or args.dir / database
    if args.measure == "worker":
        worker_main(args)
    elif args.measure == "describe":
        emit({}, durability(args), not_available=not_available)
    else:
        emit(measures[args.measure](args))


def run_async_peer(
    measures: dict[str, Callable[[argparse.Namespace], dict[str, Any]]],
    worker_main: Callable[[argparse.Namespace], Awaitable[None]],
    durability: Callable[[argparse.Namespace], Awaitable[dict[str, str]]],
    not_available: dict[str, str],
) -> None:
    """The `main()` of a peer whose worker and description are coroutines (the PostgreSQL peers)."""
    args = parse_args()
    if args.measure == "worker":
        asyncio.run(worker_main(args))
    elif args.measure == "describe":
        emit({}, asyncio.run(durability(args)), not_available=not_available)
    else:
        emit(measures[args.measure](args))


def idle_cpu_percent(pid: int, seconds: float = IDLE_CPU_SECONDS) -> float:
    """CPU time of the process and all its threads over `seconds`, in percent of one core."""
    process = psutil.Process(pid)
    before = process.cpu_times()
    time.sleep(seconds)
    after = process.cpu_times()
    used = (after.user - before.user) + (after.system - before.system)
    return 100 * used / seconds


def peak_rss_mb(pid: int, seconds: float = RSS_WINDOW_SECONDS, interval: float = 0.1) -> float:
    """The highest resident set size of the process seen over `seconds`, in MiB."""
    process = psutil.Process(pid)
    peak = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        peak = max(peak, process.memory_info().rss)
        time.sleep(interval)
    return peak / 2**20


def connection_durability(conn: sqlite3.Connection) -> dict[str, str]:
    """A peer's own connection's journal mode and `synchronous`, by name (PRAGMA returns a number)."""
    (journal_mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    (synchronous,) = conn.execute("PRAGMA synchronous").fetchone()
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    return {"journal_mode": journal_mode, "synchronous": names.get(int(synchronous), str(synchronous))}


def chunks(total: int, size: int) -> list[int]:
    return [min(size, total - start) for start in range(0, total, size)]


def split(total: int, parts: int) -> list[int]:
    """`total` spread over `parts` as evenly as whole numbers allow."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]
